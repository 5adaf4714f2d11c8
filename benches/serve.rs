//! Per-core serving against the ways servers are usually built, over Unix
//! sockets, in one run: the same hello-world HTTP handler and the same load
//! (8 concurrent clients on one client thread, keep-alive and a new
//! connection per request), against
//!
//! * the single-thread floor: connkit's `serve()` on one current-thread
//!   runtime, what one core does with no hand-off between threads;
//! * connkit per-core: `Server::per_core(2)`, one runtime per core;
//! * connkit on tokio's multi-thread runtime (2 workers);
//! * a plain hyper-util server (tokio's UnixListener, hyper's http1, a task
//!   per connection) on tokio's multi-thread runtime (2 workers).
//!
//! Reports RTT p50/p99 and requests/s for each; the table compares per-core
//! with the floor (latency) and with the multi-thread servers (rate).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conn_core::serve::{Server, serve};
use conn_ipc::IpcListener;
use connkit::http::{Http, Routes, Stats};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

const CLIENTS: usize = 8;
/// Rounds, and how long each load runs: a full measurement, or a smoke test.
fn settings() -> (usize, Duration) {
    if common::measuring() {
        (3, Duration::from_millis(1500))
    } else {
        (1, Duration::from_millis(100))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Floor,
    PerCore,
    PerCorePinned,
    ConnkitMulti,
    HyperMulti,
}

const KINDS: [Kind; 5] = [
    Kind::Floor,
    Kind::PerCore,
    Kind::PerCorePinned,
    Kind::ConnkitMulti,
    Kind::HyperMulti,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Floor => "connkit, one thread (floor)",
            Kind::PerCore => "connkit per-core (2)",
            Kind::PerCorePinned => "connkit per-core (2), pinned",
            Kind::ConnkitMulti => "connkit, multi-thread runtime",
            Kind::HyperMulti => "hyper-util, multi-thread runtime",
        }
    }
}

fn routes() -> Routes {
    Routes::new(Arc::new(Stats::default()))
}

fn socket(kind: Kind) -> PathBuf {
    std::env::temp_dir().join(format!(
        "connkit-bench-serve-{kind:?}-{}.sock",
        std::process::id()
    ))
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Starts the server of `kind` on its socket; it runs until the bench exits.
fn start(kind: Kind) -> PathBuf {
    let path = socket(kind);
    let listener = IpcListener::bind(&path).unwrap();
    match kind {
        Kind::Floor => {
            std::thread::spawn(move || {
                current_thread().block_on(async {
                    let _ = serve(listener, Http::new().handler(routes())).await;
                })
            });
        }
        Kind::PerCore | Kind::PerCorePinned => {
            std::thread::spawn(move || {
                current_thread().block_on(async {
                    let _ = Server::per_core(2)
                        .pin_threads(kind == Kind::PerCorePinned)
                        .serve(listener, Http::new().handler(routes()))
                        .await;
                })
            });
        }
        Kind::ConnkitMulti => {
            std::thread::spawn(move || {
                multi_thread().block_on(async {
                    let _ = serve(listener, Http::new().handler(routes())).await;
                })
            });
        }
        Kind::HyperMulti => {
            drop(listener);
            let path = path.clone();
            std::thread::spawn(move || multi_thread().block_on(hyper_server(&path)));
        }
    }
    path
}

async fn hyper_server(path: &Path) {
    let _ = std::fs::remove_file(path);
    let listener = tokio::net::UnixListener::bind(path).unwrap();
    let routes = routes();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(common::hyper_peer_connection(stream, routes.clone()));
    }
}

/// Reads one HTTP/1.1 response (head and Content-Length body) off `conn`.
async fn read_response(conn: &mut UnixStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    buf.clear();
    let mut chunk = [0u8; 1024];
    loop {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).unwrap_or("");
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                assert!(buf.starts_with(b"HTTP/1.1 200"), "not a 200 response");
                return Ok(());
            }
        }
    }
}

/// One client: requests until `until`, each RTT recorded in microseconds.
async fn client(path: PathBuf, close: bool, until: Instant) -> Vec<u32> {
    const KEEP: &[u8] = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
    const CLOSE: &[u8] = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
    let mut rtts = Vec::with_capacity(1 << 16);
    let mut buf = Vec::with_capacity(1024);
    let mut kept: Option<UnixStream> = None;
    while Instant::now() < until {
        let start = Instant::now();
        let mut conn = match kept.take() {
            Some(conn) => conn,
            None => UnixStream::connect(&path).await.unwrap(),
        };
        conn.write_all(if close { CLOSE } else { KEEP })
            .await
            .unwrap();
        read_response(&mut conn, &mut buf).await.unwrap();
        if close {
            // Wait for the server's end, as a client that closes in order does.
            let mut rest = [0u8; 64];
            while conn.read(&mut rest).await.unwrap_or(0) > 0 {}
        } else {
            kept = Some(conn);
        }
        rtts.push(start.elapsed().as_micros().min(u32::MAX as u128) as u32);
    }
    rtts
}

/// One load run against `path`: (p50 µs, p99 µs, requests/s).
fn load(path: &Path, close: bool, run: Duration) -> (f64, f64, f64) {
    let rt = current_thread();
    let start = Instant::now();
    let until = start + run;
    let mut all: Vec<u32> = rt.block_on(async {
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|_| tokio::spawn(client(path.to_owned(), close, until)))
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)] as f64;
    (at(0.50), at(0.99), all.len() as f64 / elapsed)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let (rounds, run) = settings();
    let paths: Vec<(Kind, PathBuf)> = KINDS.iter().map(|&k| (k, start(k))).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut rows = Vec::new();
    let mut notes = format!(
        "Unix sockets; {CLIENTS} concurrent clients on one current-thread client thread, raw HTTP/1.1 GET /; \
         {rounds} rounds of {run:?} per server and mode, servers taken in a rotating order, medians. \
         Everything shares the 2 cores.\n\n\
         | server | mode | p50 RTT | p99 RTT | requests/s |\n|---|---|---|---|---|\n"
    );
    for (close, mode) in [(false, "keep-alive"), (true, "new connection per request")] {
        let mut got: Vec<(Vec<f64>, Vec<f64>, Vec<f64>)> =
            vec![(Vec::new(), Vec::new(), Vec::new()); KINDS.len()];
        for round in 0..rounds {
            for i in 0..KINDS.len() {
                let k = (i + round) % KINDS.len();
                let (p50, p99, rps) = load(&paths[k].1, close, run);
                println!(
                    "{mode}, round {round}: {:32} p50 {p50:6.0} µs  p99 {p99:6.0} µs  {rps:8.0} req/s",
                    KINDS[k].name()
                );
                got[k].0.push(p50);
                got[k].1.push(p99);
                got[k].2.push(rps);
            }
        }
        let med: Vec<(f64, f64, f64)> = got
            .into_iter()
            .map(|(a, b, c)| (median(a), median(b), median(c)))
            .collect();
        for (k, (p50, p99, rps)) in med.iter().enumerate() {
            notes.push_str(&format!(
                "| {} | {mode} | {p50:.0} µs | {p99:.0} µs | {rps:.0} |\n",
                KINDS[k].name()
            ));
        }
        let at = |kind: Kind| med[KINDS.iter().position(|&k| k == kind).unwrap()];
        let (floor, per_core, connkit_multi, hyper_multi) = (
            at(Kind::Floor),
            at(Kind::PerCore),
            at(Kind::ConnkitMulti),
            at(Kind::HyperMulti),
        );
        rows.push(common::Row {
            what: format!("p50 RTT, {mode}: per-core vs the single-thread floor"),
            ours: per_core.0,
            peer: floor.0,
            unit: "µs",
            goal: "ratio <= 1.5".into(),
            met: per_core.0 / floor.0 <= 1.5,
        });
        rows.push(common::Row {
            what: format!("p99 RTT, {mode}: per-core vs hyper-util multi-thread"),
            ours: per_core.1,
            peer: hyper_multi.1,
            unit: "µs",
            goal: "(reported)".into(),
            met: true,
        });
        let rate_goal = if close { 5.0 } else { 1.0 };
        rows.push(common::Row {
            what: format!("requests/s, {mode}: per-core vs hyper-util multi-thread"),
            ours: per_core.2,
            peer: hyper_multi.2,
            unit: "req/s",
            goal: format!("ratio >= {rate_goal}"),
            met: per_core.2 / hyper_multi.2 >= rate_goal,
        });
        rows.push(common::Row {
            what: format!("requests/s, {mode}: per-core vs connkit multi-thread"),
            ours: per_core.2,
            peer: connkit_multi.2,
            unit: "req/s",
            goal: "(reported)".into(),
            met: true,
        });
    }
    for (_, path) in &paths {
        let _ = std::fs::remove_file(path);
    }
    common::write_table(
        "serve",
        "Per-core serving over Unix sockets (benches/serve.rs)",
        &notes,
        &rows,
    );
}
