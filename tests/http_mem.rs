//! HTTP over mem://: hyper-util's own Client against connkit's HTTP handler
//! through `serve()`, in one process.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use connkit::core::mem::MemListener;
use connkit::core::serve;
use connkit::http::{Http, Routes, Stats, connector};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

type HttpClient = Client<
    tower::util::BoxCloneSyncService<
        http::Uri,
        connkit::http::HttpConnection,
        connkit::core::Error,
    >,
    Empty<Bytes>,
>;

fn client(name: &str) -> HttpClient {
    let via = format!("mem://{name}").parse().unwrap();
    Client::builder(TokioExecutor::new()).build(connector(
        connkit::registry(),
        Some(via),
        Duration::from_secs(5),
    ))
}

async fn get(client: &HttpClient, path: &str) -> (u16, String) {
    let response = client
        .get(format!("http://connkit{path}").parse().unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn keep_alive_reuses_one_connection_as_stats_show() {
    let stats = Arc::new(Stats::default());
    let server = serve(
        MemListener::bind("http-keepalive").unwrap(),
        stats.count_connections(Http::new().handler(Routes::new(stats.clone()))),
    );
    tokio::spawn(server.into_future());
    let client = client("http-keepalive");
    for _ in 0..3 {
        assert_eq!(
            get(&client, "/").await,
            (200, "hello from connkit\n".into())
        );
    }
    let (status, body) = get(&client, "/stats").await;
    assert_eq!(status, 200);
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(stats["accepted"], 1, "{body}");
    assert_eq!(stats["connections_open"], 1, "{body}");
    assert_eq!(stats["requests"], 4, "{body}");
    assert_eq!(
        stats["requests_in_flight"], 1,
        "the /stats request itself: {body}"
    );
    assert_eq!(get(&client, "/nowhere").await.0, 404);
    assert_eq!(get(&client, "/slow?ms=x").await.0, 400);
}

#[tokio::test]
async fn a_slow_request_in_flight_at_shutdown_still_completes() {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        serve(
            MemListener::bind("http-graceful").unwrap(),
            Http::new().handler(Routes::default()),
        )
        .with_graceful_shutdown(
            async {
                stopped.await.ok();
            },
            Duration::from_secs(10),
        )
        .into_future(),
    );
    let idle = client("http-graceful");
    assert_eq!(get(&idle, "/").await.0, 200); // leaves an idle keep-alive connection
    let busy = client("http-graceful");
    let slow = tokio::spawn(async move { get(&busy, "/slow?ms=300").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(()).unwrap();
    assert_eq!(slow.await.unwrap(), (200, "slept 300 ms\n".into()));
    let report = server.await.unwrap().unwrap();
    assert_eq!(report.accepted, 2, "{report}");
    assert_eq!(report.killed, 0, "{report}");
    assert!(report.errors.is_empty(), "{report}");
    assert!(
        report.drain < Duration::from_secs(10),
        "nothing waited for the deadline: {report}"
    );
}
