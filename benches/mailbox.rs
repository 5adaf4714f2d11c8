//! mailboxd against redis-server's pub/sub, in the same run, both over Unix
//! sockets: one publisher, 8 subscribers of one group/channel, 100-byte and
//! 10 KiB messages; delivered messages/s and p50/p99 delivery latency.
//!
//! Setup, identical for both: the server runs on a thread of its own
//! (mailboxd: conn-mailbox's daemon on a current-thread runtime in this
//! process; redis: its own single-threaded process), all 9 clients run on
//! one current-thread runtime on the bench's main thread. The publisher
//! keeps at most WINDOW messages in flight beyond the slowest subscriber
//! (both servers drop subscribers that fall too far behind). Each payload
//! starts with its send time; latency is receive time minus that.
//! Rounds alternate mailboxd and redis; figures are medians over rounds.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use common::{Row, write_table};
use conn_core::Deadline;
use conn_mailbox::daemon::{DaemonConfig, run as daemon};
use conn_mailbox::{Event, Mailbox, Service};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::Notify;

const SUBSCRIBERS: usize = 8;
const WINDOW: u64 = 64;
const ROUNDS: usize = 7;

fn socket(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("connkit-bench-{name}-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// What one round measured.
struct Round {
    msgs_per_s: f64,
    p50_us: f64,
    p99_us: f64,
}

/// Shared between the publisher and the subscribers of one round.
struct Flow {
    base: Instant,
    received: Vec<AtomicU64>,
    progress: Notify,
}

impl Flow {
    fn new() -> Arc<Flow> {
        Arc::new(Flow {
            base: Instant::now(),
            received: (0..SUBSCRIBERS).map(|_| AtomicU64::new(0)).collect(),
            progress: Notify::new(),
        })
    }
    fn slowest(&self) -> u64 {
        self.received
            .iter()
            .map(|r| r.load(Ordering::Relaxed))
            .min()
            .unwrap_or(0)
    }
    fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }
    fn payload(&self, size: usize) -> Vec<u8> {
        let mut p = vec![0x42u8; size];
        p[..8].copy_from_slice(&self.now_ns().to_le_bytes());
        p
    }
    fn latency(&self, payload: &[u8]) -> u64 {
        let sent = u64::from_le_bytes(payload[..8].try_into().unwrap());
        self.now_ns().saturating_sub(sent)
    }
    async fn wait_window(&self, sent: u64) {
        while sent - self.slowest() >= WINDOW {
            self.progress.notified().await;
        }
    }
    fn got(&self, sub: usize) {
        self.received[sub].fetch_add(1, Ordering::Relaxed);
        self.progress.notify_one();
    }
}

fn summarize(start: Instant, count: u64, mut lat: Vec<u64>) -> Round {
    let elapsed = start.elapsed().as_secs_f64();
    // MAILBOX_BENCH_DUMP=FILE appends each round's latencies (ns, subscriber
    // by subscriber, in arrival order) as one line, to study their shape.
    if let Ok(path) = std::env::var("MAILBOX_BENCH_DUMP") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        let line: Vec<String> = lat.iter().map(|l| l.to_string()).collect();
        writeln!(f, "{}", line.join(" ")).unwrap();
    }
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64 / 1000.0;
    Round {
        msgs_per_s: (count * SUBSCRIBERS as u64) as f64 / elapsed,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
    }
}

async fn mailbox_round(path: &Path, size: usize, count: u64) -> Round {
    let within = Deadline::after(Duration::from_secs(30));
    let flow = Flow::new();
    let mut subs = Vec::new();
    for i in 0..SUBSCRIBERS {
        let (mut m, _) = Mailbox::connect(path, &format!("sub{i}"), 0, false, within)
            .await
            .unwrap();
        m.join("bench", within).await.unwrap();
        let flow = flow.clone();
        subs.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(count as usize);
            while (lat.len() as u64) < count {
                // No deadline: redis's subscribers wait without one too.
                if let Event::Message(msg) = m.receive(Deadline::NEVER).await.unwrap() {
                    lat.push(flow.latency(msg.data()));
                    flow.got(i);
                }
            }
            m.disconnect(within).await.unwrap();
            lat
        }));
    }
    let (mut publisher, _) = Mailbox::connect(path, "pub", 0, false, within)
        .await
        .unwrap();
    let start = Instant::now();
    for sent in 0..count {
        flow.wait_window(sent).await;
        publisher
            .multicast(Service::AGREED, &["bench"], 0, &flow.payload(size))
            .await
            .unwrap();
    }
    let mut lat = Vec::new();
    for s in subs {
        lat.extend(s.await.unwrap());
    }
    let round = summarize(start, count, lat);
    publisher.disconnect(within).await.unwrap();
    round
}

/// A minimal RESP reader: one reply (arrays of bulk strings and integers).
enum Resp {
    Int,
    Bulk(BytesMut),
    Array(Vec<Resp>),
}

fn parse(buf: &mut BytesMut) -> Option<Resp> {
    fn line(b: &[u8], at: usize) -> Option<(usize, usize)> {
        let end = b[at..].windows(2).position(|w| w == b"\r\n")? + at;
        Some((end, end + 2))
    }
    fn one(b: &[u8], at: usize) -> Option<(Resp, usize)> {
        let (end, next) = line(b, at)?;
        let n: i64 = std::str::from_utf8(&b[at + 1..end]).ok()?.parse().ok()?;
        match b[at] {
            b':' => Some((Resp::Int, next)),
            b'$' => {
                let n = n as usize;
                if b.len() < next + n + 2 {
                    return None;
                }
                Some((Resp::Bulk(BytesMut::from(&b[next..next + n])), next + n + 2))
            }
            b'*' => {
                let mut items = Vec::new();
                let mut at = next;
                for _ in 0..n {
                    let (item, after) = one(b, at)?;
                    items.push(item);
                    at = after;
                }
                Some((Resp::Array(items), at))
            }
            other => panic!("unexpected RESP type {:?}", other as char),
        }
    }
    if buf.is_empty() {
        return None;
    }
    let (resp, used) = one(buf, 0)?;
    buf.advance(used);
    Some(resp)
}

async fn read_resp(s: &mut UnixStream, buf: &mut BytesMut) -> Resp {
    loop {
        if let Some(r) = parse(buf) {
            return r;
        }
        buf.reserve(64 * 1024);
        assert!(
            s.read_buf(buf).await.unwrap() > 0,
            "redis closed the connection"
        );
    }
}

fn bulk(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

async fn redis_round(path: &Path, size: usize, count: u64) -> Round {
    let flow = Flow::new();
    let mut subs = Vec::new();
    for i in 0..SUBSCRIBERS {
        let mut s = UnixStream::connect(path).await.unwrap();
        let mut cmd = b"*2\r\n".to_vec();
        bulk(&mut cmd, b"SUBSCRIBE");
        bulk(&mut cmd, b"bench");
        s.write_all(&cmd).await.unwrap();
        let mut buf = BytesMut::with_capacity(64 * 1024);
        read_resp(&mut s, &mut buf).await; // the subscribe confirmation
        let flow = flow.clone();
        subs.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(count as usize);
            while (lat.len() as u64) < count {
                if let Resp::Array(mut items) = read_resp(&mut s, &mut buf).await
                    && let Some(Resp::Bulk(data)) = items.pop()
                {
                    lat.push(flow.latency(&data));
                    flow.got(i);
                }
            }
            lat
        }));
    }
    let publisher = UnixStream::connect(path).await.unwrap();
    let (mut rd, mut wr) = publisher.into_split();
    // PUBLISH replies (receiver counts) are read and dropped alongside.
    let replies = tokio::spawn(async move {
        let mut buf = BytesMut::with_capacity(64 * 1024);
        let mut s = 0;
        while s < count {
            buf.reserve(4096);
            if rd.read_buf(&mut buf).await.unwrap() == 0 {
                break;
            }
            s += buf.iter().filter(|&&b| b == b'\n').count() as u64;
            buf.clear();
        }
    });
    let start = Instant::now();
    let mut cmd = Vec::with_capacity(size + 64);
    for sent in 0..count {
        flow.wait_window(sent).await;
        cmd.clear();
        cmd.extend_from_slice(b"*3\r\n");
        bulk(&mut cmd, b"PUBLISH");
        bulk(&mut cmd, b"bench");
        bulk(&mut cmd, &flow.payload(size));
        wr.write_all(&cmd).await.unwrap();
    }
    let mut lat = Vec::new();
    for s in subs {
        lat.extend(s.await.unwrap());
    }
    let round = summarize(start, count, lat);
    replies.await.unwrap();
    round
}

struct Redis {
    child: Child,
    socket: PathBuf,
}

impl Redis {
    fn start() -> Option<Redis> {
        let socket = socket("redis");
        let child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(&socket)
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--unixsocketperm",
                "700",
            ])
            .stdout(Stdio::null())
            .spawn()
            .ok()?;
        let start = Instant::now();
        while !socket.exists() {
            if start.elapsed() > Duration::from_secs(10) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(Redis { child, socket })
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let Some(redis) = Redis::start() else {
        conn_test_support::skip(
            "benches/mailbox.rs",
            "redis-server is not installed (cargo xtask bench installs it)",
        );
        return;
    };
    let mbx = socket("mailboxd");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = DaemonConfig::new(&mbx);
    let server = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(daemon(config, async {
                stopped.await.ok();
            }))
            .unwrap();
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(conn_mailbox::daemon::wait_ready(
        &mbx,
        Deadline::after(Duration::from_secs(10)),
    ))
    .expect("mailboxd listens");
    // Under `cargo test` (no --bench) this is a smoke test: a tenth of the
    // messages, one round.
    let quick = !common::measuring()
        || std::env::args().any(|a| a == "--quick")
        || std::env::var_os("MAILBOX_BENCH_QUICK").is_some();
    let rounds = if common::measuring() { ROUNDS } else { 1 };
    // MAILBOX_BENCH_ONLY=mailboxd|redis runs one side alone, for profiling.
    let only = std::env::var("MAILBOX_BENCH_ONLY").ok();
    let only = only.as_deref();
    let mut rows = Vec::new();
    // MAILBOX_BENCH_SIZE=100 (or 10240) measures one message size alone.
    let only_size: Option<usize> = std::env::var("MAILBOX_BENCH_SIZE")
        .ok()
        .and_then(|s| s.parse().ok());
    for (size, count) in [(100usize, 20_000u64), (10 * 1024, 4_000)] {
        if only_size.is_some_and(|s| s != size) {
            continue;
        }
        let count = if quick { count / 10 } else { count };
        let (mut ours, mut peer) = (Vec::new(), Vec::new());
        // Warm-up of both, then alternating rounds.
        rt.block_on(mailbox_round(&mbx, size, count / 10));
        rt.block_on(redis_round(&redis.socket, size, count / 10));
        for _ in 0..rounds {
            if only != Some("redis") {
                ours.push(rt.block_on(mailbox_round(&mbx, size, count)));
            }
            if only != Some("mailboxd") {
                peer.push(rt.block_on(redis_round(&redis.socket, size, count)));
            }
        }
        if only.is_some() {
            // A profiling run of one side: no comparison, no table.
            for (who, v) in [("mailboxd", &ours), ("redis", &peer)] {
                for r in v.iter() {
                    println!(
                        "{who} {size} B: {:.0} msg/s, p50 {:.1} µs, p99 {:.1} µs",
                        r.msgs_per_s, r.p50_us, r.p99_us
                    );
                }
            }
            continue;
        }
        let label = if size >= 1024 {
            format!("{} KiB", size / 1024)
        } else {
            format!("{size} B")
        };
        let pick = |v: &[Round], f: fn(&Round) -> f64| median(v.iter().map(f).collect());
        let (tp_o, tp_p) = (pick(&ours, |r| r.msgs_per_s), pick(&peer, |r| r.msgs_per_s));
        let (p50_o, p50_p) = (pick(&ours, |r| r.p50_us), pick(&peer, |r| r.p50_us));
        let (p99_o, p99_p) = (pick(&ours, |r| r.p99_us), pick(&peer, |r| r.p99_us));
        println!(
            "{label}: delivered/s mailboxd {tp_o:.0} redis {tp_p:.0} (ratio {:.2}); p50 {p50_o:.1}/{p50_p:.1} µs; p99 {p99_o:.1}/{p99_p:.1} µs",
            tp_o / tp_p
        );
        rows.push(Row {
            what: format!("{label}: delivered messages/s (higher is better)"),
            ours: tp_o,
            peer: tp_p,
            unit: "msg/s",
            goal: "≥ 1.0".into(),
            met: tp_o >= tp_p,
        });
        rows.push(Row {
            what: format!("{label}: p50 latency"),
            ours: p50_o,
            peer: p50_p,
            unit: "µs",
            goal: "—".into(),
            met: true,
        });
        rows.push(Row {
            what: format!("{label}: p99 latency"),
            ours: p99_o,
            peer: p99_p,
            unit: "µs",
            goal: "≤ 1.0".into(),
            met: p99_o <= p99_p,
        });
    }
    let _ = stop.send(());
    let _ = server.join();
    if only.is_some() {
        return;
    }
    write_table(
        "mailbox",
        "mailboxd vs redis-server pub/sub over Unix sockets (benches/mailbox.rs)",
        &format!(
            "One publisher, {SUBSCRIBERS} subscribers of one group/channel, at most {WINDOW} messages in flight beyond the slowest subscriber; \
             server on its own thread (mailboxd: current-thread runtime in the bench process; redis-server: its own process), \
             all clients on one current-thread runtime. Median of {rounds} alternating rounds. Peer = redis-server."
        ),
        &rows,
    );
}
