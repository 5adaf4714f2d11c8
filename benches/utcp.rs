//! conn-utcp against the kernel's TCP, each pair in one run, alternating
//! round by round, medians of the rounds:
//!
//! * over a MemLink (two smoltcp stacks, no kernel) vs kernel loopback TCP,
//!   both ends on one current-thread runtime: bulk throughput (16 MiB one
//!   way), 64-byte request/response rate, connection setup+close rate;
//! * the cost of a request as a stack holds more sockets: 64-byte
//!   request/response over a MemLink pair of stacks holding 10,000 idle
//!   established connections, or 10,000 in TIME-WAIT, against an identical
//!   pair holding none;
//! * over a TAP device vs kernel TCP over a veth pair (needs root and
//!   /dev/net/tun; skipped loudly otherwise): the clients are the kernel's
//!   TCP in a network namespace (their own thread and current-thread
//!   runtime) in both cases, the server is the utcp stack on the TAP, or
//!   the kernel behind the veth; both links have MTU 1500. Bulk (64 MiB)
//!   both ways, and for 1 s each: connect+close with one client and with
//!   32 at once, 64-byte request/response with one client and with 32.
//!
//! Beside every connect+close rate: minor page faults, context switches
//! and syscalls per connection, counted for the whole process, so both
//! ends are counted whichever of them is the kernel.

mod common;

use std::fmt::Write as _;
use std::future::Future;
use std::net::{SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{Row, write_table_with};
use conn_core::{Connection, Deadline};
use conn_utcp::{MemLink, Stack, Tap, TcpState, UtcpListener, UtcpStream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BULK: usize = 16 << 20;
const MSG: usize = 64;
const RR_ITERS: u32 = 2000;
const CONNS: u32 = 200;
/// Kernel clients at once in the concurrent TAP/veth rows.
const CLIENTS: usize = 32;
/// Sockets the loaded stack of the socket-count rows holds.
const HELD: usize = 10_000;

/// Rounds per pair: a full measurement, or one under `cargo test` (smoke).
fn rounds() -> usize {
    if common::measuring() { 5 } else { 1 }
}

/// Bytes each MemLink bulk transfer moves: 16 MiB, or 1 MiB in a smoke run.
fn bulk_bytes() -> usize {
    if common::measuring() { BULK } else { 1 << 20 }
}

/// Bytes each TAP/veth bulk transfer moves: 64 MiB, or 1 MiB in a smoke
/// run. 16 MiB took 10-50 ms there, and its rounds spread by 2-4x on this
/// shared machine, slow start and scheduling more than the stacks.
fn tap_bulk_bytes() -> usize {
    if common::measuring() {
        4 * BULK
    } else {
        1 << 20
    }
}

/// How long the fixed-time (concurrent) workloads run each round.
fn window() -> Duration {
    if common::measuring() {
        Duration::from_secs(1)
    } else {
        Duration::from_millis(200)
    }
}

/// Sockets the socket-count rows hold: 10,000, or 500 in a smoke run,
/// which stays short (a debug build opens about 2,000 a second).
fn held() -> usize {
    if common::measuring() { HELD } else { 500 }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn soon() -> Deadline {
    Deadline::after(Duration::from_secs(10))
}

/// What the whole process has used so far: both ends of every pair this
/// bench measures run in it (the kernel's share shows as syscalls).
#[derive(Clone, Copy)]
struct Usage {
    minflt: i64,
    csw: i64,
    syscalls: Option<u64>,
}

/// The syscall counter: a perf tracepoint counter on `raw_syscalls:sys_enter`
/// opened on the main thread before any other thread exists, inheriting, so
/// it counts every thread the bench starts; or why there is none.
static SYSCALLS: OnceLock<Result<OwnedFd, String>> = OnceLock::new();

/// perf_event_attr up to PERF_ATTR_SIZE_VER0 (64 bytes), which every
/// kernel with perf accepts; libc does not define it.
#[repr(C)]
struct PerfAttr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
}

fn open_syscall_counter() -> Result<OwnedFd, String> {
    const PERF_TYPE_TRACEPOINT: u32 = 2;
    const INHERIT: u64 = 1 << 1;
    const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;
    let id = std::fs::read_to_string("/sys/kernel/tracing/events/raw_syscalls/sys_enter/id")
        .map_err(|e| format!("no raw_syscalls:sys_enter tracepoint: {e}"))?;
    let attr = PerfAttr {
        kind: PERF_TYPE_TRACEPOINT,
        size: std::mem::size_of::<PerfAttr>() as u32,
        config: id
            .trim()
            .parse()
            .map_err(|e| format!("tracepoint id: {e}"))?,
        sample_period: 0,
        sample_type: 0,
        read_format: 0,
        flags: INHERIT,
        wakeup_events: 0,
        bp_type: 0,
        config1: 0,
    };
    // SAFETY: `attr` is a valid perf_event_attr of the size it states and
    // outlives the call; pid 0, cpu -1: this thread (and, inherited, the
    // threads it starts) on any CPU; no group.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const PerfAttr,
            0,
            -1,
            -1,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(format!(
            "perf_event_open: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: the kernel just returned this descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn usage() -> Usage {
    // SAFETY: all-zero is a valid `rusage` (integers and timevals).
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage for the call.
    let got = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    assert_eq!(got, 0, "getrusage");
    let syscalls = SYSCALLS.get().and_then(|c| c.as_ref().ok()).map(|fd| {
        let mut count = [0u8; 8];
        // A counter reads as one u64 (read_format 0): this thread's count
        // plus its descendants', live and exited.
        let n = rustix::io::read(fd, &mut count).expect("read the syscall counter");
        assert_eq!(n, 8);
        u64::from_ne_bytes(count)
    });
    Usage {
        minflt: ru.ru_minflt,
        csw: ru.ru_nvcsw + ru.ru_nivcsw,
        syscalls,
    }
}

/// One run of a workload: its rate, and what it cost the process per unit
/// (connection, request, or MiB) of that rate.
#[derive(Clone, Copy)]
struct Run {
    rate: f64,
    minflt: f64,
    csw: f64,
    syscalls: Option<f64>,
}

impl Run {
    /// `units` done between `before` and now, in `secs`.
    fn since(before: Usage, units: f64, secs: f64) -> Run {
        let after = usage();
        Run {
            rate: units / secs,
            minflt: (after.minflt - before.minflt) as f64 / units,
            csw: (after.csw - before.csw) as f64 / units,
            syscalls: before
                .syscalls
                .zip(after.syscalls)
                .map(|(b, a)| (a - b) as f64 / units),
        }
    }

    /// Field by field, the medians of `runs`.
    fn median(runs: &[Run]) -> Run {
        let of = |f: fn(&Run) -> f64| median(runs.iter().map(f).collect());
        Run {
            rate: of(|r| r.rate),
            minflt: of(|r| r.minflt),
            csw: of(|r| r.csw),
            syscalls: runs
                .iter()
                .map(|r| r.syscalls)
                .collect::<Option<Vec<_>>>()
                .map(median),
        }
    }
}

/// The per-connection costs printed under the table, one line a row.
struct Costs(String);

impl Costs {
    fn new() -> Costs {
        let md = String::from(
            "Per connection during the connect + close rows, whole process (both ends; the \
             kernel's work for its own TCP shows as syscalls of the same process), medians of \
             the rounds. Faults and context switches: getrusage(RUSAGE_SELF) deltas; \
             syscalls: a perf counter on raw_syscalls:sys_enter that every thread inherits:\n\n| row | minor faults connkit | peer | context switches connkit \
             | peer | syscalls connkit | peer |\n|---|---|---|---|---|---|---|\n",
        );
        Costs(md)
    }

    fn add(&mut self, what: &str, ours: Run, peer: Run) {
        let sys = |r: Run| match (r.syscalls, SYSCALLS.get()) {
            (Some(s), _) => format!("{s:.1}"),
            (None, Some(Err(why))) => format!("n/a ({why})"),
            (None, _) => "n/a".into(),
        };
        let _ = writeln!(
            self.0,
            "| {what} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} |",
            ours.minflt,
            peer.minflt,
            ours.csw,
            peer.csw,
            sys(ours),
            sys(peer)
        );
    }
}

/// Sends `bulk_bytes()` bytes on `c`, reads them on `s`; MiB/s.
async fn bulk<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(mut c: S, mut s: S) -> f64 {
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        send_bulk(&mut c, bulk_bytes()).await;
        c
    });
    read_bulk(&mut s, bulk_bytes()).await;
    let secs = start.elapsed().as_secs_f64();
    drop(writer.await.unwrap());
    bulk_bytes() as f64 / (1 << 20) as f64 / secs
}

/// Writes `bytes` (a multiple of 64 KiB) on `c` and half-closes it.
async fn send_bulk<S: AsyncWrite + Unpin>(c: &mut S, bytes: usize) {
    let chunk = vec![7u8; 64 * 1024];
    for _ in 0..bytes / chunk.len() {
        c.write_all(&chunk).await.unwrap();
    }
    c.shutdown().await.unwrap();
}

/// Reads `s` to its end, which must come after `bytes` bytes.
async fn read_bulk<S: AsyncRead + Unpin>(s: &mut S, bytes: usize) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        let n = s.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        total += n;
    }
    assert_eq!(total, bytes);
}

/// Echoes `n`-byte messages on `s` until its peer ends; the server side of
/// request/response and of a connection's one-byte exchange.
async fn echo<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, n: usize) {
    let mut buf = [0u8; MSG];
    while s.read_exact(&mut buf[..n]).await.is_ok() {
        if s.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
}

/// One 64-byte request and its response on `c`.
async fn request<S: AsyncRead + AsyncWrite + Unpin>(c: &mut S, buf: &mut [u8; MSG]) {
    c.write_all(buf).await.unwrap();
    c.read_exact(buf).await.unwrap();
}

/// `RR_ITERS` 64-byte request/responses on `c` against an echo on `s`;
/// requests/s.
async fn rr<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(c: S, s: S) -> f64 {
    rr_until(c, s, |done, _| done < RR_ITERS).await
}

/// 64-byte request/responses on `c` against an echo on `s` while
/// `more(requests done, time taken)`; requests/s.
async fn rr_until<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    mut c: S,
    mut s: S,
    more: impl Fn(u32, Duration) -> bool,
) -> f64 {
    let echo = tokio::spawn(async move { echo(&mut s, MSG).await });
    let mut buf = [7u8; MSG];
    let start = Instant::now();
    let mut done = 0;
    while more(done, start.elapsed()) {
        request(&mut c, &mut buf).await;
        done += 1;
    }
    let rate = f64::from(done) / start.elapsed().as_secs_f64();
    drop(c);
    let _ = echo.await;
    rate
}

/// Half-closes and reads to the peer's end: the kernel twin of `close`.
async fn close_raw(mut s: TcpStream) {
    let _ = s.shutdown().await;
    let mut buf = [0u8; 256];
    while s.read(&mut buf).await.unwrap_or(0) > 0 {}
}

/// Runs `ours` and `peer` alternately, `rounds()` times each; every
/// round's result of each.
async fn alternate<T, A, B, FA, FB>(mut ours: A, mut peer: B) -> (Vec<T>, Vec<T>)
where
    A: FnMut() -> FA,
    B: FnMut() -> FB,
    FA: Future<Output = T>,
    FB: Future<Output = T>,
{
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..rounds() {
        a.push(ours().await);
        b.push(peer().await);
    }
    (a, b)
}

/// The medians of what `alternate` measured.
fn medians((a, b): (Vec<f64>, Vec<f64>)) -> (f64, f64) {
    (median(a), median(b))
}

/// Two stacks on one MemLink (`10.0.9.1` serving port 5000, `10.0.9.2`
/// dialling), `mtu` and `buffer` bytes each way for each connection.
fn mem_stacks(mtu: usize, buffer: usize) -> (Stack, Stack, UtcpListener) {
    let (a, b) = MemLink::pair_with_mtu(mtu);
    let server = Stack::builder(a)
        .address("10.0.9.1/24".parse().unwrap())
        .buffers(buffer, buffer)
        .build()
        .unwrap();
    let client = Stack::builder(b)
        .address("10.0.9.2/24".parse().unwrap())
        .buffers(buffer, buffer)
        .build()
        .unwrap();
    let listener = UtcpListener::bind(&server, 5000, 64).unwrap();
    (server, client, listener)
}

const MEM_SERVER: &str = "10.0.9.1:5000";
/// The socket-count rows' link: Ethernet's MTU.
const MEM_MTU: usize = 1514;

/// A connection from `client` and its accepted end on `listener`.
async fn mem_pair(client: &Stack, listener: &mut UtcpListener) -> (UtcpStream, UtcpStream) {
    let to: SocketAddrV4 = MEM_SERVER.parse().unwrap();
    let c = UtcpStream::connect(client, to.into(), soon())
        .await
        .unwrap();
    let s = listener.accept(soon()).await.unwrap();
    (c, s)
}

async fn memlink(rows: &mut Vec<Row>, costs: &mut Costs) {
    // Kernel loopback's MTU is 64 KiB; give the link the same.
    let (_server, client, ul) = mem_stacks(65535, 256 * 1024);
    let ul = tokio::sync::Mutex::new(ul);
    let kl = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let kaddr = kl.local_addr().unwrap();
    let upair = || async { mem_pair(&client, &mut *ul.lock().await).await };
    let kpair = || async {
        let c = TcpStream::connect(kaddr).await.unwrap();
        c.set_nodelay(true).unwrap();
        let (s, _) = kl.accept().await.unwrap();
        s.set_nodelay(true).unwrap();
        (c, s)
    };

    // One workload (generic over the stream) on a fresh pair of each kind.
    macro_rules! on_both {
        ($work:ident) => {
            medians(
                alternate(
                    || async {
                        let (c, s) = upair().await;
                        $work(c, s).await
                    },
                    || async {
                        let (c, s) = kpair().await;
                        $work(c, s).await
                    },
                )
                .await,
            )
        };
    }

    let (o, p) = on_both!(bulk);
    rows.push(Row {
        what: "MemLink vs loopback: bulk 16 MiB".into(),
        ours: o,
        peer: p,
        unit: "MiB/s",
        goal: "none stated".into(),
        met: true,
    });

    let (o, p) = on_both!(rr);
    rows.push(Row {
        what: "MemLink vs loopback: 64 B request/response".into(),
        ours: o,
        peer: p,
        unit: "req/s",
        goal: "ahead of loopback (>1)".into(),
        met: o > p,
    });

    let (o, p) = alternate(
        || async {
            let (before, start) = (usage(), Instant::now());
            for _ in 0..CONNS {
                let (c, s) = upair().await;
                let (a, b) = tokio::join!(c.close(soon()), s.close(soon()));
                a.unwrap();
                b.unwrap();
            }
            Run::since(before, f64::from(CONNS), start.elapsed().as_secs_f64())
        },
        || async {
            let (before, start) = (usage(), Instant::now());
            for _ in 0..CONNS {
                let (c, s) = kpair().await;
                tokio::join!(close_raw(c), close_raw(s));
            }
            Run::since(before, f64::from(CONNS), start.elapsed().as_secs_f64())
        },
    )
    .await;
    let (o, p) = (Run::median(&o), Run::median(&p));
    let what = "MemLink vs loopback: connect + close both ends";
    rows.push(Row {
        what: what.into(),
        ours: o.rate,
        peer: p.rate,
        unit: "conn/s",
        goal: ">= 1.0".into(),
        met: o.rate >= p.rate,
    });
    costs.add(what, o, p);
}

/// What the loaded pair of stacks holds in a socket-count row.
#[derive(Clone, Copy, PartialEq)]
enum Held {
    Idle,
    TimeWait,
}

/// 64-byte request/response on a pair of stacks holding `held()`
/// connections (idle, or in TIME-WAIT), against an identical pair holding
/// none, alternating round by round. Two pairs rather than one pair before
/// and after: TIME-WAIT lasts 10 s, too short to hold for every "with"
/// round and too long to wait out before every "without" round.
async fn socket_count(rows: &mut Vec<Row>) {
    // 4 KiB each way, so 10,000 connections (20,000 sockets) take 160 MB.
    const BUF: usize = 4096;
    // Each round's time: all 2 x rounds() of them, after the fill, must
    // end inside the first connection's 10 s of TIME-WAIT.
    let slot = window() * 2 / 5;
    for kind in [Held::Idle, Held::TimeWait] {
        let (_base_server, base_client, base_l) = mem_stacks(MEM_MTU, BUF);
        let (loaded_server, loaded_client, mut loaded_l) = mem_stacks(MEM_MTU, BUF);
        let filling = Instant::now();
        let mut idle = Vec::new();
        for _ in 0..held() {
            let (c, mut s) = mem_pair(&loaded_client, &mut loaded_l).await;
            match kind {
                Held::Idle => idle.push((c, s)),
                Held::TimeWait => {
                    // The client, whose rate `rr` measures, closes first
                    // and keeps the TIME-WAIT; the server closes when it
                    // reads the client's FIN.
                    let server = async move {
                        let _ = s.read(&mut [0u8; 1]).await;
                        s.close(soon()).await.unwrap();
                    };
                    let (closed, ()) = tokio::join!(c.close(soon()), server);
                    closed.unwrap();
                }
            }
        }
        // The server's last ACKs, then nothing lingers there.
        let settle = Instant::now();
        while loaded_server.lingering() > 0 && settle.elapsed() < Duration::from_secs(2) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let check = |when: &str| match kind {
            Held::Idle => {
                assert!(
                    idle.iter()
                        .all(|(c, s)| c.state().unwrap() == TcpState::Established
                            && s.state().unwrap() == TcpState::Established),
                    "{when}: every held connection established"
                );
            }
            Held::TimeWait => {
                // Every client connection read the server's FIN, and the
                // server's sockets are all CLOSED (each had the client's
                // last ACK), so nothing on the client is in FIN-WAIT: what
                // lingers there is in TIME-WAIT.
                assert_eq!(
                    loaded_server.lingering(),
                    0,
                    "{when}: server sockets closed"
                );
                assert_eq!(
                    loaded_client.lingering(),
                    held(),
                    "{when}: client connections in TIME-WAIT"
                );
            }
        };
        check("before measuring");
        eprintln!(
            "utcp bench: {} connections {} in {:.1} s",
            held(),
            if kind == Held::Idle {
                "held idle"
            } else {
                "put in TIME-WAIT"
            },
            filling.elapsed().as_secs_f64()
        );
        let (base_l, loaded_l) = (
            tokio::sync::Mutex::new(base_l),
            tokio::sync::Mutex::new(loaded_l),
        );
        let (with, without) = medians(
            alternate(
                || async {
                    let (c, s) = mem_pair(&loaded_client, &mut *loaded_l.lock().await).await;
                    rr_until(c, s, |_, taken| taken < slot).await
                },
                || async {
                    let (c, s) = mem_pair(&base_client, &mut *base_l.lock().await).await;
                    rr_until(c, s, |_, taken| taken < slot).await
                },
            )
            .await,
        );
        // Still all there: none expired (or closed) while measured.
        check("after measuring");
        drop(idle);
        rows.push(Row {
            what: format!(
                "MemLink 64 B request/response: {} held {} vs none",
                held(),
                if kind == Held::Idle {
                    "idle established"
                } else {
                    "in TIME-WAIT (client closed)"
                }
            ),
            ours: with,
            peer: without,
            unit: "req/s",
            goal: ">= 0.9".into(),
            met: with >= 0.9 * without,
        });
    }
}

/// A namespace removed on drop.
struct Ns(String);

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip(args: &[&str]) {
    assert!(
        Command::new("ip").args(args).status().unwrap().success(),
        "ip {}",
        args.join(" ")
    );
}

/// The client namespace's sysctls, the same for the TAP and the veth: the
/// concurrent rows open tens of thousands of connections a round, each
/// leaving a TIME-WAIT on the kernel client that closes first.
fn client_sysctls(ns: &str) {
    for setting in [
        "net.ipv4.ip_local_port_range=1024 65535",
        "net.ipv4.tcp_tw_reuse=1",
    ] {
        ip(&["netns", "exec", ns, "sysctl", "-qw", setting]);
    }
}

/// Moves the calling thread (only) into network namespace `ns`.
fn enter(ns: &str) {
    let file = std::fs::File::open(format!("/var/run/netns/{ns}")).unwrap();
    // SAFETY: `file` is an open namespace file; setns moves this thread only.
    let moved = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(moved, 0, "setns into the namespace");
}

/// Runs `f` to its end on a thread inside namespace `ns`: what it creates
/// (a TAP device) is made there, never in the host's namespace.
fn in_ns_blocking<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = ns.to_owned();
    std::thread::spawn(move || {
        enter(&ns);
        f()
    })
    .join()
    .unwrap()
}

/// Runs `f` on a thread inside namespace `ns` with its own runtime.
fn in_ns<F, Fut, T>(ns: &str, f: F) -> tokio::sync::oneshot::Receiver<T>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let ns = ns.to_owned();
    std::thread::spawn(move || {
        enter(&ns);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _ = tx.send(rt.block_on(f()));
    });
    rx
}

/// The TAP/veth workloads, run in this order every round.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Work {
    /// `tap_bulk_bytes()` from the kernel client to the server.
    Upload,
    /// `tap_bulk_bytes()` from the server to the kernel client.
    Download,
    /// Connect+close, one after another, from one client, for `window()`.
    Serial,
    /// `CLIENTS` clients each connecting, exchanging a byte, closing, in
    /// a loop for `window()`.
    Churn,
    /// 64-byte request/responses on one connection for `window()`.
    Rr,
    /// `CLIENTS` connections each doing 64-byte request/responses for
    /// `window()`.
    RrMany,
}

const WORKS: [Work; 6] = [
    Work::Upload,
    Work::Download,
    Work::Serial,
    Work::Churn,
    Work::Rr,
    Work::RrMany,
];

/// A kernel client socket to `server`, TCP_NODELAY as connkit's streams are.
async fn dial(server: SocketAddr) -> TcpStream {
    let c = TcpStream::connect(server).await.unwrap();
    c.set_nodelay(true).unwrap();
    c
}

/// Runs `CLIENTS` copies of `one` (given the time to stop, it returns how
/// many units it did) at once for `window()`; their total.
async fn many<F, Fut>(one: F) -> f64
where
    F: Fn(Instant) -> Fut,
    Fut: Future<Output = u64> + Send + 'static,
{
    let end = Instant::now() + window();
    let tasks: Vec<_> = (0..CLIENTS).map(|_| tokio::spawn(one(end))).collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64
}

/// The kernel client's side of `work` against `server`, in a namespace:
/// its rate as the client saw it (MiB/s, conn/s or req/s) and the
/// process's costs per unit meanwhile.
async fn kernel_client(work: Work, server: SocketAddr) -> Run {
    let mb = tap_bulk_bytes() as f64 / (1 << 20) as f64;
    match work {
        Work::Upload => {
            let mut c = dial(server).await;
            let (before, start) = (usage(), Instant::now());
            send_bulk(&mut c, tap_bulk_bytes()).await;
            // The server answers one byte once it has read everything.
            c.read_exact(&mut [0u8; 1]).await.unwrap();
            Run::since(before, mb, start.elapsed().as_secs_f64())
        }
        Work::Download => {
            let mut c = dial(server).await;
            let (before, start) = (usage(), Instant::now());
            read_bulk(&mut c, tap_bulk_bytes()).await;
            Run::since(before, mb, start.elapsed().as_secs_f64())
        }
        Work::Serial => {
            let (before, start) = (usage(), Instant::now());
            let mut conns = 0u32;
            while start.elapsed() < window() {
                close_raw(dial(server).await).await;
                conns += 1;
            }
            Run::since(before, f64::from(conns), start.elapsed().as_secs_f64())
        }
        Work::Churn => {
            let (before, start) = (usage(), Instant::now());
            let conns = many(|end| async move {
                let mut n = 0;
                while Instant::now() < end {
                    let mut c = dial(server).await;
                    let mut byte = [1u8];
                    c.write_all(&byte).await.unwrap();
                    c.read_exact(&mut byte).await.unwrap();
                    close_raw(c).await;
                    n += 1;
                }
                n
            })
            .await;
            Run::since(before, conns, start.elapsed().as_secs_f64())
        }
        Work::Rr => {
            let mut c = dial(server).await;
            let mut buf = [7u8; MSG];
            let (before, start) = (usage(), Instant::now());
            let mut requests = 0u32;
            while start.elapsed() < window() {
                request(&mut c, &mut buf).await;
                requests += 1;
            }
            Run::since(before, f64::from(requests), start.elapsed().as_secs_f64())
        }
        Work::RrMany => {
            // Every connection is up before the clock starts.
            let mut conns = Vec::new();
            for _ in 0..CLIENTS {
                conns.push(dial(server).await);
            }
            let conns = std::sync::Mutex::new(conns);
            let (before, start) = (usage(), Instant::now());
            let requests = many(|end| {
                let mut c = conns.lock().unwrap().pop().unwrap();
                async move {
                    let mut buf = [7u8; MSG];
                    let mut n = 0;
                    while Instant::now() < end {
                        request(&mut c, &mut buf).await;
                        n += 1;
                    }
                    n
                }
            })
            .await;
            Run::since(before, requests, start.elapsed().as_secs_f64())
        }
    }
}

/// A server the kernel clients connect to: the utcp stack's listener on
/// the TAP, or the kernel's behind the veth.
trait Server: 'static {
    type S: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// The next connection; `None` when none came in time.
    fn take(&mut self) -> impl Future<Output = Option<Self::S>>;
    /// Closes `s` in order.
    fn finish(s: Self::S) -> impl Future<Output = ()> + Send;
}

impl Server for UtcpListener {
    type S = UtcpStream;
    async fn take(&mut self) -> Option<UtcpStream> {
        self.accept(soon()).await.ok()
    }
    async fn finish(s: UtcpStream) {
        let _ = s.close(soon()).await;
    }
}

impl Server for TcpListener {
    type S = TcpStream;
    async fn take(&mut self) -> Option<TcpStream> {
        let (s, _) = self.accept().await.ok()?;
        s.set_nodelay(true).unwrap();
        Some(s)
    }
    async fn finish(s: TcpStream) {
        close_raw(s).await;
    }
}

/// The server's side of `work` on one connection.
async fn handle<L: Server>(mut s: L::S, work: Work) {
    match work {
        Work::Upload => {
            read_bulk(&mut s, tap_bulk_bytes()).await;
            s.write_all(&[1]).await.unwrap();
        }
        Work::Download => send_bulk(&mut s, tap_bulk_bytes()).await,
        Work::Serial => {}
        Work::Churn => echo(&mut s, 1).await,
        Work::Rr | Work::RrMany => echo(&mut s, MSG).await,
    }
    L::finish(s).await;
}

/// Runs `work` with a kernel client in namespace `ns` against `listener`,
/// serving every connection on this runtime, until the client is done.
async fn run_work<L: Server>(listener: &mut L, ns: &str, server: SocketAddr, work: Work) -> Run {
    let mut client = in_ns(ns, move || kernel_client(work, server));
    loop {
        tokio::select! {
            run = &mut client => return run.expect("the kernel client ended early"),
            s = listener.take() => if let Some(s) = s {
                tokio::spawn(handle::<L>(s, work));
            },
        }
    }
}

/// Every workload once over a TAP: the kernel client in a namespace, the
/// utcp stack on the TAP in it. One `Run` per `WORKS`, in order.
async fn tap_round(n: u32) -> Vec<Run> {
    let ns = Ns(format!("utb-{}-{n}", std::process::id()));
    let tap = format!("utb{}x{n}", std::process::id() % 100_000);
    ip(&["netns", "add", &ns.0]);
    client_sysctls(&ns.0);
    let (name, runtime) = (tap.clone(), tokio::runtime::Handle::current());
    // Made inside the namespace, registered with this runtime's reactor.
    let device = in_ns_blocking(&ns.0, move || {
        let _in = runtime.enter();
        Tap::open(&name)
    })
    .unwrap();
    ip(&["-n", &ns.0, "addr", "add", "10.79.0.1/24", "dev", &tap]);
    ip(&["-n", &ns.0, "link", "set", &tap, "up"]);
    let stack = Stack::builder(device)
        .address("10.79.0.2/24".parse().unwrap())
        .buffers(256 * 1024, 256 * 1024)
        .build()
        .unwrap();
    let mut listener = UtcpListener::bind(&stack, 6000, 64).unwrap();
    let mut runs = Vec::new();
    for work in WORKS {
        runs.push(
            run_work(
                &mut listener,
                &ns.0,
                "10.79.0.2:6000".parse().unwrap(),
                work,
            )
            .await,
        );
    }
    runs
}

/// The same over the kernel's TCP between two namespaces of its own
/// (server and client, one veth between them), so nothing is added to the
/// host's namespace and dropping the namespaces removes everything.
async fn veth_round(n: u32) -> Vec<Run> {
    let server_ns = Ns(format!("vtb-{}-{n}-s", std::process::id()));
    let client_ns = Ns(format!("vtb-{}-{n}-c", std::process::id()));
    let (server_end, client_end) = (
        format!("vb{}s{n}", std::process::id() % 100_000),
        format!("vb{}c{n}", std::process::id() % 100_000),
    );
    ip(&["netns", "add", &server_ns.0]);
    ip(&["netns", "add", &client_ns.0]);
    client_sysctls(&client_ns.0);
    ip(&[
        "-n",
        &client_ns.0,
        "link",
        "add",
        &client_end,
        "mtu",
        "1500",
        "type",
        "veth",
        "peer",
        "name",
        &server_end,
        "mtu",
        "1500",
        "netns",
        &server_ns.0,
    ]);
    ip(&[
        "-n",
        &client_ns.0,
        "addr",
        "add",
        "10.80.0.1/24",
        "dev",
        &client_end,
    ]);
    ip(&["-n", &client_ns.0, "link", "set", &client_end, "up"]);
    ip(&[
        "-n",
        &server_ns.0,
        "addr",
        "add",
        "10.80.0.2/24",
        "dev",
        &server_end,
    ]);
    ip(&["-n", &server_ns.0, "link", "set", &server_end, "up"]);
    // Bound in the server's namespace; served here, as the TAP's stack is.
    let listener = in_ns_blocking(&server_ns.0, || {
        std::net::TcpListener::bind("10.80.0.2:6000").unwrap()
    });
    listener.set_nonblocking(true).unwrap();
    let mut listener = TcpListener::from_std(listener).unwrap();
    let mut runs = Vec::new();
    for work in WORKS {
        let server = "10.80.0.2:6000".parse().unwrap();
        runs.push(run_work(&mut listener, &client_ns.0, server, work).await);
    }
    runs
}

async fn tap(rows: &mut Vec<Row>, costs: &mut Costs) {
    if !rustix::process::geteuid().is_root() {
        conn_test_support::skip("the TAP vs veth part of benches/utcp.rs", "it needs root");
        return;
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        conn_test_support::skip(
            "the TAP vs veth part of benches/utcp.rs",
            "it needs /dev/net/tun",
        );
        return;
    }
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    for n in 0..rounds() as u32 {
        ours.push(tap_round(n).await);
        peer.push(veth_round(n).await);
        // Each round's figures, to see the spread the medians hide.
        for (at, work) in WORKS.iter().enumerate() {
            eprintln!(
                "utcp bench: round {n} {work:?}: TAP {:.1}, veth {:.1}",
                ours[n as usize][at].rate, peer[n as usize][at].rate
            );
        }
    }
    let of = |runs: &[Vec<Run>], work: Work| {
        let at = WORKS.iter().position(|w| *w == work).unwrap();
        Run::median(&runs.iter().map(|r| r[at]).collect::<Vec<_>>())
    };
    for (work, what, unit, goal) in [
        (
            Work::Upload,
            "TAP vs veth: bulk 64 MiB upload (kernel client → server)",
            "MiB/s",
            1.0,
        ),
        (
            Work::Download,
            "TAP vs veth: bulk 64 MiB download (server → kernel client)",
            "MiB/s",
            1.0,
        ),
        (
            Work::Serial,
            "TAP vs veth: connect + close, one kernel client",
            "conn/s",
            1.0,
        ),
        (
            Work::Churn,
            "TAP vs veth: connect + 1 B each way + close, 32 kernel clients",
            "conn/s",
            1.2,
        ),
        (
            Work::Rr,
            "TAP vs veth: 64 B request/response, one kernel client",
            "req/s",
            1.0,
        ),
        (
            Work::RrMany,
            "TAP vs veth: 64 B request/response, 32 kernel clients",
            "req/s",
            1.0,
        ),
    ] {
        let (o, p) = (of(&ours, work), of(&peer, work));
        rows.push(Row {
            what: what.into(),
            ours: o.rate,
            peer: p.rate,
            unit,
            goal: format!(">= {goal:.1}"),
            met: o.rate >= goal * p.rate,
        });
        if unit == "conn/s" {
            costs.add(what, o, p);
        }
    }
}

/// The 1-minute load average: how busy the machine was around the run.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

fn main() {
    // Before any other thread: the counter counts the threads started after.
    let _ = SYSCALLS.set(open_syscall_counter());
    let load_before = load();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    let mut costs = Costs::new();
    rt.block_on(memlink(&mut rows, &mut costs));
    rt.block_on(socket_count(&mut rows));
    rt.block_on(tap(&mut rows, &mut costs));
    let notes = format!(
        "Current-thread runtimes. MemLink rows: both ends on one thread, MemLink MTU 65535 like \
         loopback's 64 KiB, 256 KiB socket buffers. Socket-count rows: the \"peer\" is an \
         identical pair of stacks (MTU 1514, 4 KiB buffers) holding no other connection, \
         alternated with the loaded pair, 0.4 s a round; ratio = with / without; the held \
         connections are checked before and after (all ESTABLISHED; or the client stack's \
         lingering() = 10,000 and the server's 0, so all in TIME-WAIT). TAP rows: kernel clients in a \
         namespace on their own thread (the 32 clients are tasks on it), server on the TAP \
         (utcp) or behind a veth (kernel), MTU 1500 both, the client namespace's ports \
         1024-65535 and tcp_tw_reuse=1 in both cases; 64 MiB bulk, the other TAP rows run \
         1 s a round. Medians of 5 alternating rounds; ratio = connkit / peer, higher is \
         better. Load average (1 min) {load_before} before the run, {} after, on 2 cores.",
        load()
    );
    write_table_with(
        "utcp",
        "conn-utcp (smoltcp) vs the kernel's TCP",
        &notes,
        &rows,
        &costs.0,
    );
}
