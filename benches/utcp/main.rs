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

#[path = "../common/mod.rs"]
mod common;
mod costs;
mod memlink;
mod tap;

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
use costs::{Costs, Run, SYSCALLS, open_syscall_counter, usage};
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
    // UTCP_BENCH_ONLY=memlink|count|tap runs one part alone, for profiling.
    let only = std::env::var("UTCP_BENCH_ONLY").ok();
    let part = |name: &str| only.as_deref().is_none_or(|o| o == name);
    if part("memlink") {
        rt.block_on(memlink::memlink(&mut rows, &mut costs));
    }
    if part("count") {
        rt.block_on(memlink::socket_count(&mut rows));
    }
    if part("tap") {
        rt.block_on(tap::tap(&mut rows, &mut costs));
    }
    if only.is_some() || std::env::var_os("UTCP_BENCH_WORKS").is_some() {
        // A part alone is for profiling: its rows must not replace the table.
        for r in &rows {
            println!(
                "{}: {:.1} vs {:.1} {} ({:.2})",
                r.what,
                r.ours,
                r.peer,
                r.unit,
                r.ours / r.peer
            );
        }
        return;
    }
    let notes = format!(
        "Current-thread runtimes. MemLink rows: both ends on one thread, MemLink MTU 65535 like \
         loopback's 64 KiB, 256 KiB socket buffers. Socket-count rows: the \"peer\" is an \
         identical pair of stacks (MTU 1514, 4 KiB buffers) holding no other connection, \
         alternated with the loaded pair, 0.4 s a round; ratio = with / without; the held \
         connections are checked before and after (all ESTABLISHED; or the client stack's \
         lingering() = 10,000 and the server's 0, so all in TIME-WAIT). TAP rows: kernel clients in a \
         namespace on their own thread (the 32 clients are tasks on it), server on the TAP \
         (utcp, 1 MiB socket buffers; the kernel's grow on their own) or behind a veth \
         (kernel), MTU 1500 both, the client namespace's ports 1024-65535 and tcp_tw_reuse=1 \
         in both cases; 64 MiB bulk, the other TAP rows run \
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
