//! tonic over connkit transports: a tonic-health server under
//! `connkit::http::serve` and a tonic client through connkit's connector,
//! over ipc:// and tcp://.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use connkit::core::{Endpoint, Listener, ShutdownReport};
use connkit::http::Peer;
use connkit::http::tonic::{channel, health_draining};
use tokio::sync::oneshot;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// Long enough that a drain held by a watcher would show in the elapsed time.
const DRAIN: Duration = Duration::from_secs(20);

/// Serves tonic-health on `listener` until `stop` fires; the uid of every
/// request's `Peer` (None where it has none) goes into `seen`.
fn spawn_health<L: Listener>(
    listener: L,
    seen: Arc<Mutex<Vec<Option<u32>>>>,
) -> (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<connkit::core::Result<ShutdownReport>>,
) {
    let (mut reporter, health) = tonic_health::server::health_reporter();
    let health = tonic::service::interceptor::InterceptedService::new(
        health,
        move |req: tonic::Request<()>| {
            let peer = req.extensions().get::<Peer>().cloned();
            seen.lock()
                .unwrap()
                .push(peer.and_then(|p| p.cred()).map(|c| c.uid));
            Ok(req)
        },
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let signal = async move {
        let _ = stopped.await;
        health_draining(&mut reporter, &[]).await;
    };
    let server = connkit::http::serve(listener, tonic::service::Routes::new(health))
        .with_graceful_shutdown(signal, DRAIN);
    (stop, tokio::spawn(server.into_future()))
}

fn request() -> HealthCheckRequest {
    HealthCheckRequest {
        service: String::new(),
    }
}

/// Check says SERVING; a Watch says SERVING, then NOT_SERVING when the
/// shutdown signal fires, then ends, and the drain finishes at once rather
/// than at its deadline with the watcher killed.
async fn health_round_trip<L: Listener>(listener: L) -> Vec<Option<u32>> {
    let endpoint: Endpoint = listener.local_endpoint();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (stop, server) = spawn_health(listener, seen.clone());

    let mut client = HealthClient::new(channel(connkit::registry(), endpoint).await.unwrap());
    let status = client.check(request()).await.unwrap().into_inner().status();
    assert_eq!(status, ServingStatus::Serving);

    let mut watch = client.watch(request()).await.unwrap().into_inner();
    let first = watch.message().await.unwrap().expect("a first status");
    assert_eq!(first.status(), ServingStatus::Serving);

    let signalled = Instant::now();
    stop.send(()).unwrap();
    let next = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .expect("NOT_SERVING within 5 s")
        .unwrap()
        .expect("a status before the stream ends");
    assert_eq!(next.status(), ServingStatus::NotServing);
    let end = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .expect("the watch ends within 5 s");
    assert!(matches!(end, Ok(None)), "the watch ends cleanly: {end:?}");

    let report = server.await.unwrap().unwrap();
    assert!(
        signalled.elapsed() < DRAIN / 4,
        "the watcher held the drain: {:?}",
        signalled.elapsed()
    );
    assert_eq!(report.killed, 0, "{report}");
    assert_eq!(report.requests.cut_at_deadline, 0, "{report}");
    assert!(report.requests.finished >= 2, "{report}");
    Arc::try_unwrap(seen).unwrap().into_inner().unwrap()
}

#[tokio::test]
async fn health_over_ipc_with_the_peers_uid() {
    let path = std::env::temp_dir().join(format!("connkit-tonic-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = connkit::ipc::IpcListener::bind(&path).unwrap();
    let seen = health_round_trip(listener).await;
    let uid = rustix::process::geteuid().as_raw();
    assert_eq!(seen, vec![Some(uid), Some(uid)]);
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn health_over_tcp() {
    let listener = connkit::tcp::TcpListener::bind("127.0.0.1:0").unwrap();
    let seen = health_round_trip(listener).await;
    // TCP has no SO_PEERCRED: the Peer is there, without credentials.
    assert_eq!(seen, vec![None, None]);
}

/// `connkit http` built with `tonic` serves the health service beside its
/// routes on one listener; on SIGTERM a watcher sees NOT_SERVING, its
/// stream ends, and the process exits well before the drain deadline.
#[tokio::test]
async fn connkit_http_serves_health_beside_the_routes() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};

    let path = std::env::temp_dir().join(format!("connkit-tonic-cli-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listen = format!("ipc://{}", path.display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_connkit"))
        .args(["http", "--listen", &listen, "--drain-ms", "20000"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start connkit http");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.contains("listening on ipc://"), "{line:?}");
    let endpoint: Endpoint = listen.parse().unwrap();

    // The routes answer plain HTTP on the same listener.
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, http_body_util::Empty<bytes::Bytes>>(connkit::http::connector(
        connkit::registry(),
        Some(endpoint.clone()),
        Duration::from_secs(5),
    ));
    let response = http.get("http://connkit/".parse().unwrap()).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(&body[..], b"hello from connkit\n");

    let mut client = HealthClient::new(channel(connkit::registry(), endpoint).await.unwrap());
    let status = client.check(request()).await.unwrap().into_inner().status();
    assert_eq!(status, ServingStatus::Serving);
    let mut watch = client.watch(request()).await.unwrap().into_inner();
    assert_eq!(
        watch.message().await.unwrap().unwrap().status(),
        ServingStatus::Serving
    );

    let signalled = Instant::now();
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let next = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .expect("NOT_SERVING within 5 s")
        .unwrap()
        .expect("a status before the stream ends");
    assert_eq!(next.status(), ServingStatus::NotServing);
    let end = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .expect("the watch ends within 5 s");
    assert!(matches!(end, Ok(None)), "the watch ends cleanly: {end:?}");
    drop(client);
    drop(http);

    let exit = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(
        signalled.elapsed() < DRAIN / 4,
        "the watcher held the drain: {:?}",
        signalled.elapsed()
    );
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("killed at the deadline 0"), "{rest}");
    let _ = std::fs::remove_file(&path);
}
