//! Temporary profiling server (not committed).
use axum::Router;
use axum::routing::get;
use axum::serve::ListenerExt;
use std::time::Duration;

fn app() -> Router {
    Router::new().route("/", get(|| async { "hello, world\n" }))
}

async fn term() {
    let mut s = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
    s.recv().await;
}

fn main() {
    let which = std::env::args().nth(1).unwrap();
    let port: u16 = std::env::args().nth(2).unwrap().parse().unwrap();
    let threads: usize = std::env::args()
        .nth(3)
        .map(|s| s.parse().unwrap())
        .unwrap_or(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        match which.as_str() {
            "connkit" => {
                let l = conn_tcp::TcpListener::bind(format!("127.0.0.1:{port}").as_str()).unwrap();
                let r = connkit::http::serve(l, app())
                    .with_graceful_shutdown(term(), Duration::from_secs(1))
                    .await
                    .unwrap();
                eprintln!("{r}");
            }
            _ => {
                let l = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}"))
                    .await
                    .unwrap();
                let l = l.tap_io(|t| {
                    let _ = t.set_nodelay(true);
                });
                axum::serve(l, app())
                    .with_graceful_shutdown(term())
                    .await
                    .unwrap();
            }
        }
    });
}
