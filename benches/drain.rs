//! The drain at scale, timed: N HTTP/2 connections each with a stream in
//! flight when the signal comes. How long until the last of them has
//! GOAWAY, and until the server is done, for `connkit::http::serve`
//! against hyper-util's own `GracefulShutdown` (what axum's graceful
//! shutdown is built on) serving the same routes, in the same run.
//! (tests/http_drain.rs checks the behaviour; this reports the times.)

mod common;
#[path = "../tests/common/h2drain.rs"]
mod h2drain;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Row, write_table};
use connkit::http::{Http, Routes, Stats};
use h2drain::{goaway_latency, open, raise_fd_limit};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;

/// How long each in-flight stream takes (longer than any GOAWAY could),
/// and the route that takes it.
const STREAM_MS: u64 = 2000;
const STREAM_PATH: &str = "/slow?ms=2000";

/// What one round measured: the slowest GOAWAY after the signal, and the
/// drain from the signal until the server returned.
struct Round {
    goaway: Duration,
    drained: Duration,
}

async fn connkit_round(connections: usize) -> Round {
    let listener = connkit::tcp::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr();
    let stats = Arc::new(Stats::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(std::future::IntoFuture::into_future(
        Http::new()
            .serve(listener, Routes::new(stats.clone()))
            .with_graceful_shutdown(
                async {
                    stopped.await.ok();
                },
                Duration::from_secs(30),
            ),
    ));
    let signal = load(addr, connections, &stats).await;
    stop.send(()).unwrap();
    let signal_at = signal.0;
    server.await.unwrap().unwrap();
    let drained = signal_at.elapsed();
    finish(signal, drained).await
}

async fn hyper_round(connections: usize) -> Round {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = Arc::new(Stats::default());
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let routes = Routes::new(stats.clone());
    let server = tokio::spawn(async move {
        let graceful = GracefulShutdown::new();
        let builder = auto::Builder::new(TokioExecutor::new());
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, _) = accepted.unwrap();
                    let routes = routes.clone();
                    let service = hyper::service::service_fn(move |req| {
                        let routes = routes.clone();
                        async move { Ok::<_, std::convert::Infallible>(connkit::http::route(routes, req).await) }
                    });
                    let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                    tokio::spawn(graceful.watch(conn));
                }
                _ = &mut stopped => break,
            }
        }
        drop(listener);
        graceful.shutdown().await;
    });
    let signal = load(addr, connections, &stats).await;
    stop.send(()).unwrap();
    let signal_at = signal.0;
    server.await.unwrap();
    let drained = signal_at.elapsed();
    finish(signal, drained).await
}

type Loaded = (Instant, Vec<tokio::task::JoinHandle<h2drain::Seen>>);

/// Opens the connections, waits until every stream is in flight, and
/// returns the moment of the signal (taken just before it is sent).
async fn load(addr: std::net::SocketAddr, connections: usize, stats: &Stats) -> Loaded {
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        clients.push(open(addr, STREAM_PATH).await);
    }
    while stats.snapshot().requests_in_flight < connections as u64 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (Instant::now(), clients)
}

async fn finish((signal, clients): Loaded, drained: Duration) -> Round {
    let mut seen = Vec::with_capacity(clients.len());
    for c in clients {
        let s = c.await.unwrap();
        assert!(
            s.finished.is_ok(),
            "a stream did not finish: {:?}",
            s.finished
        );
        seen.push(s);
    }
    let (goaway, told) = goaway_latency(&seen, signal);
    assert_eq!(told, seen.len(), "every connection gets GOAWAY");
    Round { goaway, drained }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    raise_fd_limit();
    let (connections, rounds) = if common::measuring() {
        (1000, 5)
    } else {
        (50, 1)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    runtime.block_on(async {
        // Interleaved, so the machine's noise falls on both alike.
        for _ in 0..rounds {
            ours.push(connkit_round(connections).await);
            peer.push(hyper_round(connections).await);
        }
    });
    let ms = |rs: &[Round], f: fn(&Round) -> Duration| {
        median(rs.iter().map(|r| f(r).as_secs_f64() * 1e3).collect())
    };
    let (goaway, goaway_peer) = (ms(&ours, |r| r.goaway), ms(&peer, |r| r.goaway));
    let (drained, drained_peer) = (ms(&ours, |r| r.drained), ms(&peer, |r| r.drained));
    let rows = [
        Row {
            what: format!(
                "GOAWAY on all of {connections} HTTP/2 connections, each with a stream in flight (slowest, median of {rounds})"
            ),
            ours: goaway,
            peer: goaway_peer,
            unit: "ms",
            goal: "connkit ≤ 100 ms".into(),
            met: goaway <= 100.0,
        },
        Row {
            what: format!("signal until the server is done ({STREAM_MS} ms streams finish)"),
            ours: drained,
            peer: drained_peer,
            unit: "ms",
            goal: "≤ 1.05".into(),
            met: drained / drained_peer <= 1.05,
        },
    ];
    write_table(
        "drain",
        "HTTP/2 drain at scale: connkit::http::serve vs hyper-util GracefulShutdown",
        "Both serve connkit's demo routes on a 2-worker tokio runtime over kernel TCP on loopback; the clients (hyper's HTTP/2 client, one connection each) run in the same process and note when each connection's first GOAWAY frame arrives. The peer waits for its connections without a deadline; connkit's drain has one (30 s here, never reached).",
        &rows,
    );
}
