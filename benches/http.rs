//! `connkit::http::serve` against the server a user would otherwise run,
//! serving the same application, in the same run:
//!
//! * one axum `Router` over TCP on 127.0.0.1: connkit (conn-tcp's listener)
//!   vs `axum::serve` (tokio's `TcpListener`), loaded by `wrk` (keep-alive,
//!   and a new connection per request) and by `h2load` (HTTP/2 with prior
//!   knowledge);
//! * tonic-health's `Check` over a Unix socket: connkit (conn-ipc's
//!   listener, a `tonic::service::Routes`) vs tonic's own
//!   `Server::builder()` on tokio's `UnixListener`, loaded by one tonic
//!   client in this process, the same code for both servers.
//!
//! Every server runs on a multi-thread runtime of its own with [`WORKERS`]
//! workers and has its graceful shutdown wired, as a deployed one would.
//! Rounds take every pair in turn, the side that goes first alternating,
//! so drift on the shared machine hits both sides alike; figures are
//! medians over rounds.

mod common;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use axum::serve::ListenerExt;
use common::{Row, measuring, write_table};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tokio::sync::oneshot;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// Worker threads of every server's runtime (and of the gRPC client's):
/// the machine's two cores, shared with the load generator.
const WORKERS: usize = 2;
/// Connections of wrk and h2load, and concurrent gRPC callers.
const CONNECTIONS: usize = 32;
/// Streams h2load keeps open on each connection.
const STREAMS: usize = 10;
/// HTTP/2 connections the gRPC callers share, as a ghz run would.
const CHANNELS: usize = 4;

/// Rounds and seconds per run: a full measurement, or a smoke test under
/// `cargo test` (one short round; the table is not written then).
fn settings() -> (usize, u64) {
    if measuring() { (3, 5) } else { (1, 1) }
}

/// The application both HTTP servers serve: a couple of tiny routes, made
/// into services once (`with_state(())`, as `axum::serve` does itself).
fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "hello, world\n" }))
        .route(
            "/status",
            get(|| async {
                (
                    [(http::header::CONTENT_TYPE, "application/json")],
                    "{\"ok\":true}\n",
                )
            }),
        )
        .with_state(())
}

/// A server running on a runtime of its own; stopping it fires its
/// graceful shutdown and waits for the drain.
struct Running<A> {
    addr: A,
    stop: Option<oneshot::Sender<()>>,
    runtime: tokio::runtime::Runtime,
    done: tokio::task::JoinHandle<String>,
}

impl<A> Running<A> {
    /// Builds a multi-thread runtime of [`WORKERS`] workers named `name`
    /// (so `perf report --sort comm` tells the servers apart); `bind` runs on
    /// it to make the listener and say its address, then `serve` runs until
    /// the stop signal and says how it ended.
    fn start<L, B, S, F>(name: &str, bind: B, serve: S) -> Running<A>
    where
        B: Future<Output = (L, A)>,
        S: FnOnce(L, oneshot::Receiver<()>) -> F,
        F: Future<Output = String> + Send + 'static,
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKERS)
            .thread_name(name)
            .enable_all()
            .build()
            .unwrap();
        let (listener, addr) = runtime.block_on(bind);
        let (stop, stopped) = oneshot::channel();
        let done = runtime.spawn(serve(listener, stopped));
        Running {
            addr,
            stop: Some(stop),
            runtime,
            done,
        }
    }

    /// Fires the shutdown signal; returns what the server said of its end.
    fn stop(mut self) -> String {
        let _ = self.stop.take().map(|s| s.send(()));
        let done = self.done;
        self.runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(5), done).await })
            .map(|r| r.unwrap_or_else(|e| format!("panicked: {e}")))
            .unwrap_or_else(|_| "still draining after 5 s".into())
    }
}

/// A stop signal for a server's graceful shutdown.
async fn stopped(rx: oneshot::Receiver<()>) {
    let _ = rx.await;
}

fn connkit_axum() -> Running<SocketAddr> {
    Running::start(
        "connkit-http",
        async {
            let l = conn_tcp::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr();
            (l, addr)
        },
        |l, stop| async move {
            match connkit::http::serve(l, app())
                .with_graceful_shutdown(stopped(stop), Duration::from_secs(1))
                .await
            {
                Ok(report) => report.to_string(),
                Err(e) => format!("error: {e}"),
            }
        },
    )
}

fn axum_serve() -> Running<SocketAddr> {
    Running::start(
        "axum-serve",
        async {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            (l, addr)
        },
        |l, stop| async move {
            // TCP_NODELAY as conn-tcp sets it (and as axum's docs show with
            // tap_io), so the sockets are configured alike.
            let l = l.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            match axum::serve(l, app())
                .with_graceful_shutdown(stopped(stop))
                .await
            {
                Ok(()) => "stopped".into(),
                Err(e) => format!("error: {e}"),
            }
        },
    )
}

fn socket(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("connkit-bench-{name}-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

fn connkit_tonic() -> Running<PathBuf> {
    let path = socket("http-connkit-grpc");
    Running::start(
        "connkit-grpc",
        async move {
            let l = conn_ipc::IpcListener::bind(&path).unwrap();
            (l, path)
        },
        |l, stop| async move {
            // The reporter lives as long as the server, as in a real one.
            let (_reporter, health) = tonic_health::server::health_reporter();
            match connkit::http::serve(l, tonic::service::Routes::new(health))
                .with_graceful_shutdown(stopped(stop), Duration::from_secs(1))
                .await
            {
                Ok(report) => report.to_string(),
                Err(e) => format!("error: {e}"),
            }
        },
    )
}

fn tonic_server() -> Running<PathBuf> {
    let path = socket("http-tonic-grpc");
    Running::start(
        "tonic-server",
        async move {
            let l = tokio::net::UnixListener::bind(&path).unwrap();
            (l, path)
        },
        |l, stop| async move {
            let (_reporter, health) = tonic_health::server::health_reporter();
            match tonic::transport::Server::builder()
                .add_service(health)
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::UnixListenerStream::new(l),
                    stopped(stop),
                )
                .await
            {
                Ok(()) => "stopped".into(),
                Err(e) => format!("error: {e}"),
            }
        },
    )
}

/// What one load run measured.
#[derive(Clone, Copy)]
struct Load {
    rps: f64,
    /// None where the load generator does not report it (h2load).
    p99_us: Option<f64>,
}

/// wrk's durations (`226.00us`, `1.20ms`, `1.01s`) in microseconds.
fn wrk_duration_us(v: &str) -> Option<f64> {
    let (num, scale) = if let Some(n) = v.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1e3)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1e6)
    } else {
        return None;
    };
    num.parse::<f64>().ok().map(|n| n * scale)
}

/// One wrk run against `addr`: requests/s and the p99 latency.
fn wrk(addr: SocketAddr, close: bool, seconds: u64) -> Load {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t1",
        &format!("-c{CONNECTIONS}"),
        &format!("-d{seconds}s"),
        "--latency",
    ]);
    if close {
        cmd.args(["-H", "Connection: close"]);
    }
    let out = cmd
        .arg(format!("http://{addr}/"))
        .output()
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&out.stdout);
    // A wrong answer would make the figures meaningless, not just slow.
    assert!(
        !text.contains("Non-2xx"),
        "wrk got error responses:\n{text}"
    );
    if let Some(errors) = text.lines().find(|l| l.contains("Socket errors")) {
        println!("  wrk against {addr}: {}", errors.trim());
    }
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk's output:\n{text}"));
    let p99_us = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .and_then(|v| wrk_duration_us(v.trim()));
    Load { rps, p99_us }
}

/// One h2load run (HTTP/2, prior knowledge) against `addr`: requests/s.
fn h2load(addr: SocketAddr, seconds: u64) -> Load {
    let out = Command::new("h2load")
        .args(["-c", &CONNECTIONS.to_string(), "-m", &STREAMS.to_string()])
        .args(["-D", &seconds.to_string()])
        .arg(format!("http://{addr}/"))
        .output()
        .expect("h2load runs");
    let text = String::from_utf8_lossy(&out.stdout);
    // `requests: 10 total, 10 started, 10 done, 10 succeeded, 0 failed, ...`
    let succeeded = text
        .lines()
        .find_map(|l| l.strip_prefix("requests:"))
        .and_then(|l| l.split(',').find(|f| f.ends_with("succeeded")))
        .and_then(|f| f.split_whitespace().next()?.parse::<u64>().ok());
    assert!(
        succeeded.is_some_and(|n| n > 0),
        "h2load had no successful request:\n{text}"
    );
    // `finished in 5.00s, 98765.40 req/s, 3.12MB/s`
    let rps = text
        .lines()
        .find(|l| l.starts_with("finished in"))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|f| f.strip_suffix(" req/s"))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no req/s in h2load's output:\n{text}"));
    Load { rps, p99_us: None }
}

/// A tonic channel over a Unix socket at `path`, through tokio's
/// UnixStream: the client for both gRPC servers, so only the server differs.
async fn unix_channel(path: &Path) -> Channel {
    let path = path.to_owned();
    Endpoint::from_static("http://bench")
        .connect_with_connector(tower::service_fn(move |_: http::Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
        .await
        .unwrap()
}

/// [`CONNECTIONS`] callers over [`CHANNELS`] channels, each doing unary
/// health Checks back to back for `seconds`: Checks/s and the p99 latency.
async fn grpc_load(path: &Path, seconds: u64) -> Load {
    let mut channels = Vec::new();
    for _ in 0..CHANNELS {
        channels.push(unix_channel(path).await);
    }
    let start = Instant::now();
    let until = start + Duration::from_secs(seconds);
    let callers: Vec<_> = (0..CONNECTIONS)
        .map(|i| {
            let mut client = HealthClient::new(channels[i % CHANNELS].clone());
            tokio::spawn(async move {
                let mut latencies_ns = Vec::new();
                while Instant::now() < until {
                    let sent = Instant::now();
                    client
                        .check(HealthCheckRequest {
                            service: String::new(),
                        })
                        .await
                        .expect("Check answers");
                    latencies_ns.push(sent.elapsed().as_nanos() as u64);
                }
                latencies_ns
            })
        })
        .collect();
    let mut all = Vec::new();
    for c in callers {
        all.extend(c.await.unwrap());
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let p99 = all[((all.len() as f64 * 0.99) as usize).min(all.len() - 1)];
    Load {
        rps: all.len() as f64 / elapsed,
        p99_us: Some(p99 as f64 / 1000.0),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One pair of loads measured round after round: connkit's and its peer's.
struct Pair {
    what: &'static str,
    peer_name: &'static str,
    ours: Vec<Load>,
    peer: Vec<Load>,
}

impl Pair {
    fn new(what: &'static str, peer_name: &'static str) -> Pair {
        Pair {
            what,
            peer_name,
            ours: Vec::new(),
            peer: Vec::new(),
        }
    }

    /// Runs both loads, `ours_first` choosing the order, and prints them.
    fn round(
        &mut self,
        ours_first: bool,
        mut ours: impl FnMut() -> Load,
        mut peer: impl FnMut() -> Load,
    ) {
        if ours_first {
            self.ours.push(ours());
            self.peer.push(peer());
        } else {
            self.peer.push(peer());
            self.ours.push(ours());
        }
        let (o, p) = (self.ours.last().unwrap(), self.peer.last().unwrap());
        let p99 = |l: &Load| {
            l.p99_us
                .map_or(String::new(), |v| format!(", p99 {v:.0} µs"))
        };
        println!(
            "  {}: connkit {:.0} req/s{} vs {} {:.0} req/s{}: ratio {:.2}",
            self.what,
            o.rps,
            p99(o),
            self.peer_name,
            p.rps,
            p99(p),
            o.rps / p.rps
        );
    }

    /// The medians as table rows: the rate, and the p99 where measured.
    fn rows(&self) -> Vec<Row> {
        let (o, p) = (
            median(self.ours.iter().map(|l| l.rps).collect()),
            median(self.peer.iter().map(|l| l.rps).collect()),
        );
        println!(
            "{}: connkit {o:.0} req/s vs {} {p:.0} req/s: ratio {:.2}",
            self.what,
            self.peer_name,
            o / p
        );
        let mut rows = vec![Row {
            what: format!(
                "{}: requests/s vs {} (higher is better)",
                self.what, self.peer_name
            ),
            ours: o,
            peer: p,
            unit: "req/s",
            goal: "ratio >= 1.0".into(),
            met: o >= p,
        }];
        let p99s = |v: &[Load]| v.iter().map(|l| l.p99_us).collect::<Option<Vec<f64>>>();
        if let (Some(ov), Some(pv)) = (p99s(&self.ours), p99s(&self.peer)) {
            let (o, p) = (median(ov), median(pv));
            println!(
                "{}: p99 connkit {o:.0} µs vs {} {p:.0} µs: ratio {:.2}",
                self.what,
                self.peer_name,
                o / p
            );
            rows.push(Row {
                what: format!(
                    "{}: p99 latency vs {} (lower is better)",
                    self.what, self.peer_name
                ),
                ours: o,
                peer: p,
                unit: "µs",
                goal: "ratio <= 1.0".into(),
                met: o <= p,
            });
        }
        rows
    }
}

fn main() {
    // `cargo bench` passes --bench; under `cargo test` this is a smoke run.
    for (tool, arg) in [("wrk", "--version"), ("h2load", "--version")] {
        if Command::new(tool).arg(arg).output().is_err() {
            eprintln!(
                "!!! benches/http.rs needs {tool} (cargo xtask bench installs wrk and nghttp2-client); skipped"
            );
            return;
        }
    }
    let (rounds, seconds) = settings();
    let ours_http = connkit_axum();
    let peer_http = axum_serve();
    let ours_grpc = connkit_tonic();
    let peer_grpc = tonic_server();
    let (a, b) = (ours_http.addr, peer_http.addr);
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .thread_name("grpc-client")
        .enable_all()
        .build()
        .unwrap();
    let grpc = |path: &Path, seconds| client.block_on(grpc_load(path, seconds));

    if measuring() {
        // A short warm-up of every server, so the first round does not pay
        // for first connections and allocator growth on one side only.
        wrk(a, false, 1);
        wrk(b, false, 1);
        grpc(&ours_grpc.addr, 1);
        grpc(&peer_grpc.addr, 1);
    }

    let mut keep_alive = Pair::new("HTTP/1.1 keep-alive", "axum::serve");
    let mut close = Pair::new("HTTP/1.1 new connection per request", "axum::serve");
    let mut h2 = Pair::new("HTTP/2 prior knowledge", "axum::serve");
    let mut check = Pair::new("gRPC health Check over a Unix socket", "tonic Server");
    for round in 0..rounds {
        println!("round {round}:");
        let first = round % 2 == 0;
        keep_alive.round(first, || wrk(a, false, seconds), || wrk(b, false, seconds));
        close.round(first, || wrk(a, true, seconds), || wrk(b, true, seconds));
        h2.round(first, || h2load(a, seconds), || h2load(b, seconds));
        check.round(
            first,
            || grpc(&ours_grpc.addr, seconds),
            || grpc(&peer_grpc.addr, seconds),
        );
    }
    let rows: Vec<Row> = [&keep_alive, &close, &h2, &check]
        .iter()
        .flat_map(|p| p.rows())
        .collect();
    for (who, server) in [
        ("connkit http (axum)", ours_http.stop()),
        ("axum::serve", peer_http.stop()),
        ("connkit http (tonic)", ours_grpc.stop()),
        ("tonic Server", peer_grpc.stop()),
    ] {
        println!("{who}: {server}");
    }
    write_table(
        "http",
        "HTTP: connkit::http::serve vs axum::serve and tonic's Server (benches/http.rs)",
        &format!(
            "The same axum Router (`GET /`, 13 bytes; `with_state(())`, as axum::serve applies it) over TCP on 127.0.0.1, connkit (conn-tcp) vs `axum::serve` (tokio TcpListener, \
             TCP_NODELAY set as conn-tcp does): wrk -t1 -c{CONNECTIONS} --latency, keep-alive and `Connection: close`; \
             h2load -c {CONNECTIONS} -m {STREAMS}. Then tonic-health's Check over a Unix socket, connkit (conn-ipc, tonic Routes) \
             vs tonic's `Server::builder()` on tokio's UnixListener, driven by one tonic client in the bench process \
             ({CONNECTIONS} callers over {CHANNELS} channels through tokio UnixStream, the same for both). Every server on a \
             multi-thread runtime of {WORKERS} workers with its graceful shutdown wired. {rounds} rounds of {seconds} s, each \
             taking every pair in turn with the side going first alternating; medians. Load generators share the 2 cores."
        ),
        &rows,
    );
}
