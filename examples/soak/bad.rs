//! Misbehaving clients. Each runs as a child process of the driver (the
//! soak binary re-run with `--bad KIND --target TARGET`), so that a
//! SIGKILL mid-frame is a real process dying with its socket open.
//!
//! What each server is sent is what its own misbehaving-client tests send
//! (crates/conn-mailbox/tests/budget.rs, slow.rs, errors.rs;
//! crates/signal-session/tests/budget.rs, sessiond.rs; tests/http_serve.rs).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use connkit::core::wire::Repr as _;
use connkit::mailbox::wire::{MAX_FRAME_BODY, Repr};
use connkit::session::wire::{MAX_PAYLOAD, Message};

/// Which server a bad client goes to, and how it is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `connkit http` over `tcp://`: its address.
    HttpTcp(String),
    /// `connkit http` over `ipc://`: its socket.
    HttpIpc(String),
    /// mailboxd: its socket.
    Mailbox(String),
    /// sessiond: its socket.
    Session(String),
}

impl Target {
    /// As passed on the command line: `http-tcp:ADDR`, `http-ipc:PATH`,
    /// `mailbox:PATH`, `session:PATH`.
    pub fn to_arg(&self) -> String {
        match self {
            Target::HttpTcp(a) => format!("http-tcp:{a}"),
            Target::HttpIpc(p) => format!("http-ipc:{p}"),
            Target::Mailbox(p) => format!("mailbox:{p}"),
            Target::Session(p) => format!("session:{p}"),
        }
    }

    /// The inverse of [`Target::to_arg`].
    pub fn parse(arg: &str) -> Result<Target, String> {
        let (kind, rest) = arg
            .split_once(':')
            .ok_or_else(|| format!("target {arg:?}: want KIND:ADDRESS"))?;
        let rest = rest.to_owned();
        Ok(match kind {
            "http-tcp" => Target::HttpTcp(rest),
            "http-ipc" => Target::HttpIpc(rest),
            "mailbox" => Target::Mailbox(rest),
            "session" => Target::Session(rest),
            other => return Err(format!("target {arg:?}: unknown server {other:?}")),
        })
    }

    fn connect(&self) -> std::io::Result<Box<dyn Stream>> {
        let s: Box<dyn Stream> = match self {
            Target::HttpTcp(a) => Box::new(std::net::TcpStream::connect(a)?),
            Target::HttpIpc(p) | Target::Mailbox(p) | Target::Session(p) => {
                Box::new(UnixStream::connect(p)?)
            }
        };
        s.timeouts(Duration::from_secs(20))?;
        Ok(s)
    }

    /// Bytes a well-behaved client starts with (HTTP's request line,
    /// mailboxd's hello; sessiond has none).
    fn opening(&self) -> Vec<u8> {
        match self {
            Target::HttpTcp(_) | Target::HttpIpc(_) => b"GET / HTTP/1.1\r\nHost: soak\r\n".to_vec(),
            Target::Mailbox(_) => hello(),
            Target::Session(_) => Vec::new(),
        }
    }

    /// The start of the largest request the server accepts and the length
    /// of what would follow it.
    fn max_frame_head(&self) -> (Vec<u8>, usize) {
        match self {
            // The head limit is 64 KiB: stay below it, never end it.
            Target::HttpTcp(_) | Target::HttpIpc(_) => (
                b"GET / HTTP/1.1\r\nHost: soak\r\nX-Big: ".to_vec(),
                60 * 1024,
            ),
            Target::Mailbox(_) => {
                let mut head = hello();
                head.extend((MAX_FRAME_BODY as u32).to_be_bytes());
                head.push(4); // a multicast, never finished
                (head, MAX_FRAME_BODY)
            }
            Target::Session(_) => {
                let list = Message::List.to_vec().expect("a List frame");
                let mut head = list[..4].to_vec();
                head.extend((MAX_PAYLOAD as u32).to_be_bytes());
                (head, MAX_PAYLOAD)
            }
        }
    }

    /// A whole, valid request (its answer is read when it matters).
    fn request(&self) -> Vec<u8> {
        match self {
            Target::HttpTcp(_) | Target::HttpIpc(_) => {
                b"GET /bytes?n=1000000 HTTP/1.1\r\nHost: soak\r\n\r\n".to_vec()
            }
            Target::Mailbox(_) => {
                let mut bytes = hello();
                bytes.extend(
                    Repr::Join {
                        req: 1,
                        group: "soak-bad",
                    }
                    .to_vec()
                    .expect("a Join frame"),
                );
                bytes
            }
            Target::Session(_) => Message::List.to_vec().expect("a List frame"),
        }
    }

    /// A head cut short: the server must wait for the rest, then give up.
    fn half_head(&self) -> Vec<u8> {
        match self {
            Target::HttpTcp(_) | Target::HttpIpc(_) => {
                b"GET / HTTP/1.1\r\nHost: soak\r\nX-Half:".to_vec()
            }
            Target::Mailbox(_) => {
                let mut bytes = hello();
                bytes.extend([0, 0, 0]);
                bytes
            }
            Target::Session(_) => b"SD".to_vec(),
        }
    }
}

/// mailboxd's hello under a name unique to this child.
fn hello() -> Vec<u8> {
    let name = format!("bad{}", std::process::id());
    Repr::Connect {
        version: Repr::VERSION,
        priority: 0,
        membership: true,
        name: &name,
    }
    .to_vec()
    .expect("a Connect frame")
}

trait Stream: Read + Write + Send {
    fn timeouts(&self, t: Duration) -> std::io::Result<()>;
}

impl Stream for std::net::TcpStream {
    fn timeouts(&self, t: Duration) -> std::io::Result<()> {
        self.set_read_timeout(Some(t))?;
        self.set_write_timeout(Some(t))
    }
}

impl Stream for UnixStream {
    fn timeouts(&self, t: Duration) -> std::io::Result<()> {
        self.set_read_timeout(Some(t))?;
        self.set_write_timeout(Some(t))
    }
}

/// What a bad client does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Pseudo-random bytes, then read what comes back until the end.
    Garbage,
    /// A request head trickled one byte every 400 ms: slower than the HTTP
    /// head timeout and mailboxd's hello timeout allow (ended), within
    /// sessiond's per-byte stall timeout (answered).
    SlowHead,
    /// Half a head, then silence until the server ends it.
    HalfThenIdle,
    /// All but 4 KiB of the largest frame (head) the server takes, then
    /// silence.
    PartialMax,
    /// A maximum-size frame begun and still being written when the driver
    /// SIGKILLs the process (it prints `READY` once the frame is begun).
    KilledMidFrame,
    /// A whole request, then gone before the answer; and a connection
    /// closed at once.
    EarlyClose,
    /// A few hundred connections at once, held 1.5 s, then all closed.
    Flood,
}

impl Kind {
    /// Every kind, in the order the driver cycles through them.
    pub const ALL: [Kind; 7] = [
        Kind::Garbage,
        Kind::SlowHead,
        Kind::HalfThenIdle,
        Kind::PartialMax,
        Kind::KilledMidFrame,
        Kind::EarlyClose,
        Kind::Flood,
    ];

    /// Its name on the command line and in the summary.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Garbage => "garbage",
            Kind::SlowHead => "slow-head",
            Kind::HalfThenIdle => "half-then-idle",
            Kind::PartialMax => "partial-max-frame",
            Kind::KilledMidFrame => "kill-9-mid-frame",
            Kind::EarlyClose => "early-close",
            Kind::Flood => "flood",
        }
    }

    /// The inverse of [`Kind::name`].
    pub fn parse(name: &str) -> Result<Kind, String> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| format!("unknown bad client {name:?}"))
    }
}

/// How many connections a flood opens.
pub const FLOOD: usize = 300;

/// The printed line that tells the driver a frame is begun.
pub const READY: &str = "READY";

/// Reads until the server ends the connection (or 20 s pass); how many
/// bytes came back.
fn read_to_end(s: &mut dyn Stream) -> usize {
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0;
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return total,
            Ok(n) => total += n,
        }
    }
}

/// Runs one bad client against `target`; what it saw, for its exit line.
pub fn run(kind: Kind, target: &Target) -> Result<String, String> {
    let connect = || {
        target
            .connect()
            .map_err(|e| format!("connect to {}: {e}", target.to_arg()))
    };
    let started = Instant::now();
    match kind {
        Kind::Garbage => {
            let mut s = connect()?;
            let mut x: u32 = std::process::id() | 1;
            let bytes: Vec<u8> = (0..4096)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let _ = s.write_all(&bytes);
            let answered = read_to_end(&mut *s);
            Ok(format!(
                "{answered} bytes back, ended after {:.1?}",
                started.elapsed()
            ))
        }
        Kind::SlowHead => {
            let mut s = connect()?;
            let mut head = target.opening();
            if head.is_empty() {
                head = target.request();
            }
            let mut sent = 0;
            for b in &head {
                if s.write_all(&[*b]).is_err() {
                    break;
                }
                sent += 1;
                std::thread::sleep(Duration::from_millis(400));
                if started.elapsed() > Duration::from_secs(12) {
                    break;
                }
            }
            // A head that got through is answered (sessiond's List, which
            // then waits for the next request): read the answer, not for ever.
            let _ = s.timeouts(Duration::from_secs(2));
            read_to_end(&mut *s);
            Ok(format!(
                "{sent} of {} bytes trickled, ended after {:.1?}",
                head.len(),
                started.elapsed()
            ))
        }
        Kind::HalfThenIdle => {
            let mut s = connect()?;
            let _ = s.write_all(&target.half_head());
            read_to_end(&mut *s);
            Ok(format!("ended after {:.1?}", started.elapsed()))
        }
        Kind::PartialMax => {
            let mut s = connect()?;
            let (head, len) = target.max_frame_head();
            let body = vec![0x5a; len - 4096];
            let sent = s.write_all(&head).is_ok() && s.write_all(&body).is_ok();
            read_to_end(&mut *s);
            Ok(format!(
                "all sent: {sent}, ended after {:.1?}",
                started.elapsed()
            ))
        }
        Kind::KilledMidFrame => {
            let mut s = connect()?;
            let (head, len) = target.max_frame_head();
            s.write_all(&head)
                .map_err(|e| format!("write a frame's head to {}: {e}", target.to_arg()))?;
            println!("{READY}");
            let _ = std::io::stdout().flush();
            // Written slowly, so the SIGKILL lands mid-frame.
            let chunk = vec![0x6b; 4096];
            for _ in 0..(len / chunk.len()).saturating_sub(1) {
                if s.write_all(&chunk).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            // Not killed in time: hold the frame open until we are.
            std::thread::sleep(Duration::from_secs(60));
            Err("never killed".into())
        }
        Kind::EarlyClose => {
            let mut s = connect()?;
            let _ = s.write_all(&target.request());
            drop(s);
            drop(connect()?);
            Ok("closed twice".into())
        }
        Kind::Flood => {
            let mut held = Vec::with_capacity(FLOOD);
            let mut failed = None;
            for _ in 0..FLOOD {
                match target.connect() {
                    Ok(s) => held.push(s),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(1500));
            let n = held.len();
            drop(held);
            match failed {
                None => Ok(format!("{n} connections held")),
                Some(e) => Ok(format!("{n} connections held, then: {e}")),
            }
        }
    }
}
