//! conn-utcp against the kernel's TCP, each pair in one run, alternating
//! round by round, medians of the rounds:
//!
//! * over a MemLink (two smoltcp stacks, no kernel) vs kernel loopback TCP,
//!   both ends on one current-thread runtime: bulk throughput (16 MiB one
//!   way), 64-byte request/response rate, connection setup+close rate;
//! * over a TAP device vs kernel TCP over a veth pair (needs root; skipped
//!   loudly otherwise): the client is the kernel's TCP in a network
//!   namespace (its own thread and current-thread runtime) in both cases,
//!   the server is the utcp stack on the TAP, or the kernel behind the
//!   veth; both links have MTU 1500.

mod common;

use std::future::Future;
use std::net::{SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Row, write_table};
use conn_core::{Connection, Deadline};
use conn_utcp::{MemLink, Stack, Tap, UtcpListener, UtcpStream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BULK: usize = 16 << 20;
const MSG: usize = 64;
const RR_ITERS: u32 = 2000;
const CONNS: u32 = 200;
/// Rounds per pair: a full measurement, or one under `cargo test` (smoke).
fn rounds() -> usize {
    if common::measuring() { 5 } else { 1 }
}

/// Bytes each bulk transfer moves: 16 MiB, or 1 MiB in a smoke run.
fn bulk_bytes() -> usize {
    if common::measuring() { BULK } else { 1 << 20 }
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
        let chunk = vec![7u8; 64 * 1024];
        for _ in 0..bulk_bytes() / chunk.len() {
            c.write_all(&chunk).await.unwrap();
        }
        c.shutdown().await.unwrap();
        c
    });
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        let n = s.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        total += n;
    }
    assert_eq!(total, bulk_bytes());
    let secs = start.elapsed().as_secs_f64();
    drop(writer.await.unwrap());
    bulk_bytes() as f64 / (1 << 20) as f64 / secs
}

/// 64-byte request/response on `c` against an echo on `s`; requests/s.
async fn rr<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(mut c: S, mut s: S) -> f64 {
    let echo = tokio::spawn(async move {
        let mut buf = [0u8; MSG];
        while s.read_exact(&mut buf).await.is_ok() {
            if s.write_all(&buf).await.is_err() {
                break;
            }
        }
    });
    let mut buf = [7u8; MSG];
    let start = Instant::now();
    for _ in 0..RR_ITERS {
        c.write_all(&buf).await.unwrap();
        c.read_exact(&mut buf).await.unwrap();
    }
    let rate = f64::from(RR_ITERS) / start.elapsed().as_secs_f64();
    drop(c);
    let _ = echo.await;
    rate
}

/// Half-closes and reads to the peer's end: the kernel twin of `close`.
async fn close_raw(mut s: TcpStream) {
    s.shutdown().await.unwrap();
    let mut buf = [0u8; 256];
    while s.read(&mut buf).await.unwrap_or(0) > 0 {}
}

/// Runs `ours` and `peer` alternately, `rounds()` times each; their medians.
async fn alternate<A, B, FA, FB>(mut ours: A, mut peer: B) -> (f64, f64)
where
    A: FnMut() -> FA,
    B: FnMut() -> FB,
    FA: Future<Output = f64>,
    FB: Future<Output = f64>,
{
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..rounds() {
        a.push(ours().await);
        b.push(peer().await);
    }
    (median(a), median(b))
}

async fn memlink(rows: &mut Vec<Row>) {
    // Kernel loopback's MTU is 64 KiB; give the link the same.
    let (a, b) = MemLink::pair_with_mtu(65535);
    let server = Stack::builder(a)
        .address("10.0.9.1/24".parse().unwrap())
        .buffers(256 * 1024, 256 * 1024)
        .build()
        .unwrap();
    let client = Stack::builder(b)
        .address("10.0.9.2/24".parse().unwrap())
        .buffers(256 * 1024, 256 * 1024)
        .build()
        .unwrap();
    let to: SocketAddrV4 = "10.0.9.1:5000".parse().unwrap();
    let ul = tokio::sync::Mutex::new(UtcpListener::bind(&server, 5000, 64).unwrap());
    let kl = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let kaddr = kl.local_addr().unwrap();
    let upair = || async {
        let c = UtcpStream::connect(&client, to.into(), soon())
            .await
            .unwrap();
        let s = ul.lock().await.accept(soon()).await.unwrap();
        (c, s)
    };
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
            .await
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
            let start = Instant::now();
            for _ in 0..CONNS {
                let (c, s) = upair().await;
                let (a, b) = tokio::join!(c.close(soon()), s.close(soon()));
                a.unwrap();
                b.unwrap();
            }
            f64::from(CONNS) / start.elapsed().as_secs_f64()
        },
        || async {
            let start = Instant::now();
            for _ in 0..CONNS {
                let (c, s) = kpair().await;
                tokio::join!(close_raw(c), close_raw(s));
            }
            f64::from(CONNS) / start.elapsed().as_secs_f64()
        },
    )
    .await;
    rows.push(Row {
        what: "MemLink vs loopback: connect + close both ends".into(),
        ours: o,
        peer: p,
        unit: "conn/s",
        goal: "none stated".into(),
        met: true,
    });
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

/// The kernel client in a namespace: `bulk_bytes()` bytes, then `CONNS`
/// connect+close, to `server`. Returns (bulk MiB/s, conn/s) as it saw them.
async fn kernel_client(server: SocketAddr) -> (f64, f64) {
    let mut c = TcpStream::connect(server).await.unwrap();
    let chunk = vec![7u8; 64 * 1024];
    let start = Instant::now();
    for _ in 0..bulk_bytes() / chunk.len() {
        c.write_all(&chunk).await.unwrap();
    }
    c.shutdown().await.unwrap();
    // The server answers one byte once it has read everything.
    let mut done = [0u8; 1];
    c.read_exact(&mut done).await.unwrap();
    let bulk = bulk_bytes() as f64 / (1 << 20) as f64 / start.elapsed().as_secs_f64();
    drop(c);
    let start = Instant::now();
    for _ in 0..CONNS {
        let c = TcpStream::connect(server).await.unwrap();
        close_raw(c).await;
    }
    (bulk, f64::from(CONNS) / start.elapsed().as_secs_f64())
}

/// The server side of `kernel_client` over any stream type.
async fn serve_bulk<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) -> S {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        let n = s.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        total += n;
    }
    assert_eq!(total, bulk_bytes());
    s.write_all(&[1]).await.unwrap();
    s
}

async fn tap_round(n: u32) -> (f64, f64) {
    let ns = Ns(format!("utb-{}-{n}", std::process::id()));
    let tap = format!("utb{}x{n}", std::process::id() % 100_000);
    ip(&["netns", "add", &ns.0]);
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
    let client = in_ns(&ns.0, || kernel_client("10.79.0.2:6000".parse().unwrap()));
    let s = listener.accept(soon()).await.unwrap();
    let s = serve_bulk(s).await;
    let _ = s.close(soon()).await;
    for _ in 0..CONNS {
        let s = listener.accept(soon()).await.unwrap();
        tokio::spawn(async move {
            let _ = s.close(soon()).await;
        });
    }
    client.await.unwrap()
}

/// The kernel's TCP between two namespaces of its own (server and client,
/// one veth between them), so nothing is added to the host's namespace and
/// dropping the namespaces removes everything.
async fn veth_round(n: u32) -> (f64, f64) {
    let server_ns = Ns(format!("vtb-{}-{n}-s", std::process::id()));
    let client_ns = Ns(format!("vtb-{}-{n}-c", std::process::id()));
    let (server_end, client_end) = (
        format!("vb{}s{n}", std::process::id() % 100_000),
        format!("vb{}c{n}", std::process::id() % 100_000),
    );
    ip(&["netns", "add", &server_ns.0]);
    ip(&["netns", "add", &client_ns.0]);
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
    let listener = TcpListener::from_std(listener).unwrap();
    let client = in_ns(&client_ns.0, || {
        kernel_client("10.80.0.2:6000".parse().unwrap())
    });
    let (s, _) = listener.accept().await.unwrap();
    let s = serve_bulk(s).await;
    close_raw(s).await;
    for _ in 0..CONNS {
        let (s, _) = listener.accept().await.unwrap();
        tokio::spawn(close_raw(s));
    }
    client.await.unwrap()
}

async fn tap(rows: &mut Vec<Row>) {
    if !rustix::process::geteuid().is_root() {
        conn_test_support::skip("the TAP vs veth part of benches/utcp.rs", "it needs root");
        return;
    }
    let (mut ob, mut pb, mut oc, mut pc) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for n in 0..rounds() as u32 {
        let (b, c) = tap_round(n).await;
        ob.push(b);
        oc.push(c);
        let (b, c) = veth_round(n).await;
        pb.push(b);
        pc.push(c);
    }
    let (ob, pb, oc, pc) = (median(ob), median(pb), median(oc), median(pc));
    rows.push(Row {
        what: "TAP vs veth: bulk 16 MiB, kernel client".into(),
        ours: ob,
        peer: pb,
        unit: "MiB/s",
        goal: ">= 0.5".into(),
        met: ob >= 0.5 * pb,
    });
    rows.push(Row {
        what: "TAP vs veth: connect + close, kernel client".into(),
        ours: oc,
        peer: pc,
        unit: "conn/s",
        goal: ">= 0.7".into(),
        met: oc >= 0.7 * pc,
    });
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    rt.block_on(memlink(&mut rows));
    rt.block_on(tap(&mut rows));
    write_table(
        "utcp",
        "conn-utcp (smoltcp) vs the kernel's TCP",
        "Current-thread runtimes. MemLink rows: both ends on one thread, MemLink MTU 65535 like \
         loopback's 64 KiB, 256 KiB socket buffers. TAP rows: kernel client in a namespace on its \
         own thread, server on the TAP (utcp) or behind a veth (kernel), MTU 1500 both. Medians \
         of 5 alternating rounds; ratio = connkit / peer, higher is better.",
        &rows,
    );
}
