//! `axum::serve` over connkit listeners through `AxumListener`.

use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::{Router, routing::get};
use bytes::Bytes;
use connkit::core::Listener;
use connkit::http::Peer;
use connkit::http::axum::AxumListener;
use http_body_util::{BodyExt, Empty};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};

/// Serves a router that answers with its `ConnectInfo<Peer>` on
/// `listener`, GETs it through connkit's connector, then shuts the serve
/// down.
async fn round_trip<L: Listener>(listener: L) -> String {
    let endpoint = listener.local_endpoint();
    let listener = AxumListener::new(listener);
    let local = axum::serve::Listener::local_addr(&listener).unwrap();
    assert_eq!(local.endpoint(), Some(&endpoint));
    let app = Router::new().route(
        "/",
        get(|ConnectInfo(peer): ConnectInfo<Peer>| async move {
            let scheme = peer.endpoint().map_or("unnamed", |p| p.scheme());
            let uid = peer.cred().map(|c| c.uid);
            format!("{scheme} {uid:?}")
        }),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        axum::serve(listener, app.into_make_service_with_connect_info::<Peer>())
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .into_future(),
    );
    let body = {
        let client = Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(
            connkit::http::connector(connkit::registry(), Some(endpoint), Duration::from_secs(5)),
        );
        let response = client.get("http://axum/".parse().unwrap()).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    };
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("axum's graceful shutdown ends once the client is gone")
        .unwrap()
        .unwrap();
    body
}

#[tokio::test]
async fn axum_serve_over_ipc() {
    let path = std::env::temp_dir().join(format!("connkit-axum-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = connkit::ipc::IpcListener::bind(&path).unwrap();
    // A client's Unix socket has no name, but the kernel says who it is.
    let uid = rustix::process::geteuid().as_raw();
    assert_eq!(round_trip(listener).await, format!("unnamed Some({uid})"));
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn axum_serve_over_tcp() {
    let listener = connkit::tcp::TcpListener::bind("127.0.0.1:0").unwrap();
    assert_eq!(round_trip(listener).await, "tcp None");
}
