//! conn-ipc against raw tokio `UnixStream`, each pair in one run, both on a
//! current-thread runtime with both ends on its one thread (the
//! floor every bench compares against: no cross-thread wake-ups).
//!
//! * 64-byte ping-pong round trip;
//! * connect + accept + orderly close (both sides end and see the other's end);
//! * 1 MiB one-way stream throughput.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use conn_core::{Connection, Deadline};
use conn_ipc::{IpcListener, IpcStream};
use criterion::Criterion;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::runtime::Runtime;

const MSG: usize = 64;
const BULK: usize = 1 << 20;

fn socket(name: &str) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("connkit-bench-{name}-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// Echoes 64-byte messages until the peer ends.
async fn echo<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) {
    let mut buf = [0u8; MSG];
    while s.read_exact(&mut buf).await.is_ok() {
        if s.write_all(&buf).await.is_err() {
            break;
        }
    }
}

async fn ping_pong<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, iters: u64) -> Duration {
    let mut buf = [7u8; MSG];
    let start = Instant::now();
    for _ in 0..iters {
        s.write_all(&buf).await.unwrap();
        s.read_exact(&mut buf).await.unwrap();
    }
    start.elapsed()
}

/// Reads and drops everything until the peer ends.
async fn sink<S: AsyncRead + Unpin>(mut s: S) -> S {
    let mut buf = vec![0u8; 64 * 1024];
    while s.read(&mut buf).await.unwrap() > 0 {}
    s
}

fn rtt(c: &mut Criterion, rt: &Runtime) {
    let mut group = c.benchmark_group("ipc_rtt_64b");
    let path = socket("rtt");
    let mut ours = rt.block_on(async {
        let mut listener = IpcListener::bind(&path).unwrap();
        let client = IpcStream::connect(&path, Deadline::NEVER).await.unwrap();
        let server = listener.accept(Deadline::NEVER).await.unwrap();
        tokio::spawn(echo(server));
        client
    });
    group.bench_function("connkit", |b| {
        b.iter_custom(|n| rt.block_on(ping_pong(&mut ours, n)))
    });
    let path = socket("rtt-raw");
    let mut raw = rt.block_on(async {
        let listener = UnixListener::bind(&path).unwrap();
        let client = UnixStream::connect(&path).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        tokio::spawn(echo(server));
        client
    });
    // tokio's listener leaves its socket file; connected, we need it no more.
    let _ = std::fs::remove_file(&path);
    group.bench_function("tokio", |b| {
        b.iter_custom(|n| rt.block_on(ping_pong(&mut raw, n)))
    });
    group.finish();
}

async fn cycle_connkit(listener: &mut IpcListener, path: &Path, iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        let client = IpcStream::connect(path, Deadline::NEVER).await.unwrap();
        let server = listener.accept(Deadline::NEVER).await.unwrap();
        let (a, b) = tokio::join!(client.close(Deadline::NEVER), server.close(Deadline::NEVER));
        a.unwrap();
        b.unwrap();
    }
    start.elapsed()
}

async fn cycle_tokio(listener: &UnixListener, path: &Path, iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        let mut client = UnixStream::connect(path).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        tokio::join!(end_raw(&mut client), end_raw(&mut server));
    }
    start.elapsed()
}

/// The raw equivalent of an orderly close: shutdown, then read to end-of-stream.
async fn end_raw(s: &mut UnixStream) {
    s.shutdown().await.unwrap();
    let mut buf = [0u8; 64];
    while s.read(&mut buf).await.unwrap() > 0 {}
}

fn cycle(c: &mut Criterion, rt: &Runtime) {
    let mut group = c.benchmark_group("ipc_connect_close");
    let path = socket("cycle");
    let mut listener = rt.block_on(async { IpcListener::bind(&path).unwrap() });
    group.bench_function("connkit", |b| {
        b.iter_custom(|n| rt.block_on(cycle_connkit(&mut listener, &path, n)))
    });
    let path = socket("cycle-raw");
    let raw = rt.block_on(async { UnixListener::bind(&path).unwrap() });
    group.bench_function("tokio", |b| {
        b.iter_custom(|n| rt.block_on(cycle_tokio(&raw, &path, n)))
    });
    group.finish();
    drop(listener);
    let _ = std::fs::remove_file(&path);
}

async fn bulk_once<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    mut client: S,
    server: S,
    data: &[u8],
) {
    let reader = tokio::spawn(sink(server));
    client.write_all(data).await.unwrap();
    client.shutdown().await.unwrap();
    reader.await.unwrap();
}

fn bulk(c: &mut Criterion, rt: &Runtime) {
    let mut group = c.benchmark_group("ipc_bulk_1mib");
    group.throughput(criterion::Throughput::Bytes(BULK as u64));
    let data = vec![0x5au8; BULK];
    let path = socket("bulk");
    let mut listener = rt.block_on(async { IpcListener::bind(&path).unwrap() });
    group.bench_function("connkit", |b| {
        b.iter_custom(|n| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..n {
                    let client = IpcStream::connect(&path, Deadline::NEVER).await.unwrap();
                    let server = listener.accept(Deadline::NEVER).await.unwrap();
                    let start = Instant::now();
                    bulk_once(client, server, &data).await;
                    total += start.elapsed();
                }
                total
            })
        })
    });
    let path = socket("bulk-raw");
    let raw = rt.block_on(async { UnixListener::bind(&path).unwrap() });
    group.bench_function("tokio", |b| {
        b.iter_custom(|n| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..n {
                    let client = UnixStream::connect(&path).await.unwrap();
                    let (server, _) = raw.accept().await.unwrap();
                    let start = Instant::now();
                    bulk_once(client, server, &data).await;
                    total += start.elapsed();
                }
                total
            })
        })
    });
    group.finish();
    let _ = std::fs::remove_file(&path);
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut c = Criterion::default()
        .output_directory(&common::criterion_dir())
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    rtt(&mut c, &rt);
    cycle(&mut c, &rt);
    bulk(&mut c, &rt);
    c.final_summary();

    let m = |group, id| common::median_ns(group, id).unwrap_or(f64::NAN);
    let (rtt_ours, rtt_peer) = (
        m("ipc_rtt_64b", "connkit") / 1e3,
        m("ipc_rtt_64b", "tokio") / 1e3,
    );
    let per_sec = |ns: f64| 1e9 / ns;
    let (cyc_ours, cyc_peer) = (
        per_sec(m("ipc_connect_close", "connkit")),
        per_sec(m("ipc_connect_close", "tokio")),
    );
    let mib_s = |ns: f64| (BULK as f64 / (1 << 20) as f64) / (ns / 1e9);
    let (bulk_ours, bulk_peer) = (
        mib_s(m("ipc_bulk_1mib", "connkit")),
        mib_s(m("ipc_bulk_1mib", "tokio")),
    );
    common::write_table(
        "ipc",
        "conn-ipc vs raw tokio UnixStream (benches/ipc.rs)",
        "Current-thread runtime, both ends on its one thread; medians from criterion. \
         RTT is time (lower is better); the other two rows are rates (higher is better).",
        &[
            common::Row {
                what: "64-byte ping-pong round trip".into(),
                ours: rtt_ours,
                peer: rtt_peer,
                unit: "µs",
                goal: "time ratio <= 1.05".into(),
                met: rtt_ours / rtt_peer <= 1.05,
            },
            common::Row {
                what: "connect + accept + orderly close, per second".into(),
                ours: cyc_ours,
                peer: cyc_peer,
                unit: "/s",
                goal: "rate ratio >= 0.95".into(),
                met: cyc_ours / cyc_peer >= 0.95,
            },
            common::Row {
                what: "1 MiB stream throughput".into(),
                ours: bulk_ours,
                peer: bulk_peer,
                unit: "MiB/s",
                goal: "rate ratio >= 0.97".into(),
                met: bulk_ours / bulk_peer >= 0.97,
            },
        ],
    );
}
