//! The drain at scale: a thousand HTTP/2 connections, each with a stream in
//! flight, when the signal comes. Every one gets GOAWAY before any stream
//! finishes, every stream finishes, and the server is done inside its
//! deadline. (benches/drain.rs reports how long the GOAWAYs took.)

mod common {
    pub mod h2drain;
}

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::h2drain::{goaway_latency, open, raise_fd_limit};
use connkit::http::{Http, Routes, Stats};

const CONNECTIONS: usize = 1000;
/// How long each stream runs: long enough that the last of the thousand
/// connections opens before the first stream ends, even on a loaded CI
/// machine in a debug build (3 s was not: opening took longer there).
const STREAM: &str = "/slow?ms=10000";

/// The demo routes on a tcp port of their own, draining for `drain` once
/// the returned sender fires (or drops): its address, its stats, the
/// sender and the serve task.
fn demo_server(
    drain: Duration,
) -> (
    std::net::SocketAddr,
    Arc<Stats>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<connkit::core::Result<connkit::core::ShutdownReport>>,
) {
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
                drain,
            ),
    ));
    (addr, stats, stop, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_http2_connections_get_goaway_at_once_and_every_stream_finishes() {
    raise_fd_limit();
    let drain = Duration::from_secs(30);
    let (addr, stats, stop, server) = demo_server(drain);

    let mut clients = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        clients.push(open(addr, STREAM).await);
    }
    // Every stream is in the server's hands before the signal.
    let waited = Instant::now();
    while stats.snapshot().requests_in_flight < CONNECTIONS as u64 {
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "{:?}",
            stats.snapshot()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let signal = Instant::now();
    stop.send(()).unwrap();
    let report = server.await.unwrap().unwrap();
    let drained = signal.elapsed();

    let mut seen = Vec::with_capacity(CONNECTIONS);
    for c in clients {
        seen.push(c.await.unwrap());
    }
    let (slowest_goaway, with_goaway) = goaway_latency(&seen, signal);
    println!(
        "{CONNECTIONS} connections: GOAWAY on all within {slowest_goaway:?}; drained in {drained:?}"
    );
    assert_eq!(with_goaway, CONNECTIONS, "every connection is told at once");
    let first_finish = seen
        .iter()
        .map(|s| match &s.finished {
            Ok((at, body)) => {
                assert_eq!(body, "slept 10000 ms\n");
                *at
            }
            Err(e) => panic!("a stream did not finish: {e}"),
        })
        .min()
        .unwrap();
    assert!(
        seen.iter().all(|s| s.goaway.unwrap() < first_finish),
        "GOAWAY reached every connection before the first stream finished"
    );
    assert!(drained < drain, "{drained:?}: {report}");
    assert_eq!(report.accepted, CONNECTIONS as u64, "{report}");
    assert_eq!(report.killed, 0, "{report}");
    assert_eq!(
        report.requests.finished_after_signal, CONNECTIONS as u64,
        "{report}"
    );
    assert_eq!(report.requests.cut_at_deadline, 0, "{report}");
}

/// A connection the drain finds before its first request began (accepted,
/// its request still on the way: in a handover, the old process may have
/// taken it from the queue it shares with the new) is not ended empty: its
/// request, arriving just after the signal, is answered, and then the
/// connection ends in order.
#[tokio::test]
async fn a_connection_accepted_before_the_signal_whose_request_comes_after_is_still_answered() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (addr, _stats, stop, server) = demo_server(Duration::from_secs(10));
    let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
    // Accepted (the serve loop runs while this task sleeps), nothing sent.
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    client
        .write_all(b"GET / HTTP/1.1\r\nhost: connkit\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    client.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response).to_lowercase();
    assert!(response.starts_with("http/1.1 200"), "{response:?}");
    drop(client); // our end, which the server's orderly close waits for
    let report = server.await.unwrap().unwrap();
    assert_eq!(
        (report.accepted, report.closed, report.killed),
        (1, 1, 0),
        "{report}"
    );
}
