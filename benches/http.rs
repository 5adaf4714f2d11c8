//! `connkit http`'s server (hyper on connkit's `serve()` over conn-tcp, with
//! graceful shutdown wired in) against a plain hyper-util server (tokio's
//! `TcpListener` and hyper's http1 connection) serving the same route
//! handler, both on a current-thread
//! runtime of their own thread, loaded in turn by the same `wrk` (one
//! thread, 32 connections) in the same run: keep-alive, and a new
//! connection per request (`Connection: close`).

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use conn_core::serve;
use connkit::http::{Http, Routes, Stats};

/// Rounds and seconds per wrk run: a full measurement, or a smoke test.
fn settings() -> (usize, u32) {
    if common::measuring() { (3, 3) } else { (1, 1) }
}

/// Runs `server` on a current-thread runtime on its own thread; returns its address.
fn spawn_server<F, Fut>(server: F) -> SocketAddr
where
    F: FnOnce(std::sync::mpsc::Sender<SocketAddr>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(server(tx));
    });
    rx.recv().unwrap()
}

fn connkit_server() -> SocketAddr {
    spawn_server(|tx| async move {
        let listener = conn_tcp::TcpListener::bind("127.0.0.1:0").unwrap();
        tx.send(listener.local_addr()).unwrap();
        let routes = Routes::new(Arc::new(Stats::default()));
        let _ = serve(listener, Http::new().handler(routes))
            .with_graceful_shutdown(std::future::pending(), Duration::from_secs(1))
            .await;
    })
}

fn hyper_server() -> SocketAddr {
    spawn_server(|tx| async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        tx.send(listener.local_addr().unwrap()).unwrap();
        let routes = Routes::new(Arc::new(Stats::default()));
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(common::hyper_peer_connection(stream, routes.clone()));
        }
    })
}

/// Requests per second `wrk` reached against `addr`.
fn wrk(addr: SocketAddr, close: bool) -> f64 {
    let (_, seconds) = settings();
    let mut cmd = Command::new("wrk");
    cmd.args(["-t1", "-c32", &format!("-d{seconds}s")]);
    if close {
        cmd.args(["-H", "Connection: close"]);
    }
    let out = cmd
        .arg(format!("http://{addr}/"))
        .output()
        .expect("wrk runs (cargo xtask bench installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk's output:\n{text}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes --bench; nothing else to configure.
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("!!! benches/http.rs needs wrk (cargo xtask bench installs it); skipped");
        return;
    }
    let (rounds, seconds) = settings();
    let ours = connkit_server();
    let peer = hyper_server();
    let mut rows = Vec::new();
    for (close, what) in [(false, "keep-alive"), (true, "new connection per request")] {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            // Alternate which goes first so drift hits both.
            if round % 2 == 0 {
                a.push(wrk(ours, close));
                b.push(wrk(peer, close));
            } else {
                b.push(wrk(peer, close));
                a.push(wrk(ours, close));
            }
            println!(
                "{what}, round {round}: connkit {:.0} req/s, hyper-util {:.0} req/s",
                a[round], b[round]
            );
        }
        let (ours_rps, peer_rps) = (median(a), median(b));
        rows.push(common::Row {
            what: format!("requests/s, {what}"),
            ours: ours_rps,
            peer: peer_rps,
            unit: "req/s",
            goal: "rate ratio >= 0.95".into(),
            met: ours_rps / peer_rps >= 0.95,
        });
    }
    common::write_table(
        "http",
        "HTTP/1.1 over TCP: connkit http vs plain hyper-util (benches/http.rs)",
        &format!(
            "wrk -t1 -c32 -d{seconds}s against each server in turn, {rounds} rounds alternated, medians; \
             both servers on a current-thread runtime of their own thread, sharing the 2 cores with wrk. \
             The connkit side is conn-tcp + serve() (graceful shutdown wired) + the http handler (stats counters, \
             orderly close of each connection); the peer is tokio's TcpListener + hyper's http1 serving the same route handler."
        ),
        &rows,
    );
}
