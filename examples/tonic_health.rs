//! A gRPC health server (`grpc.health.v1.Health`, tonic-health) over
//! `ipc://`, served by `connkit::http::serve`, and a tonic client reaching
//! it through connkit's connector.
//!
//! ```text
//! cargo run --example tonic_health --features tonic
//! ```
//!
//! The client checks that the server is SERVING and watches its status;
//! then the server shuts down: the watcher sees NOT_SERVING, its stream
//! ends (so it does not hold the drain), the connection drains and the
//! report is printed. It always runs to completion (setting
//! `CONNKIT_EXAMPLE_ONESHOT` changes nothing).

use std::time::Duration;

use connkit::http::tonic::{channel, health_draining};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn whole_server() -> HealthCheckRequest {
    HealthCheckRequest {
        service: String::new(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let path = std::env::temp_dir().join(format!("connkit-health-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = connkit::ipc::IpcListener::bind(&path)?;
    let endpoint = connkit::core::Listener::local_endpoint(&listener);
    println!("listening on {endpoint}");

    let (mut reporter, health) = tonic_health::server::health_reporter();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        let _ = stopped.await;
        // Before the drain: NOT_SERVING to every watcher, and their streams end.
        health_draining(&mut reporter, &[]).await;
        println!("server: shutting down");
    };
    let server = tokio::spawn(
        connkit::http::serve(listener, tonic::service::Routes::new(health))
            .with_graceful_shutdown(signal, Duration::from_secs(10))
            .into_future(),
    );

    let mut client = HealthClient::new(channel(connkit::registry(), endpoint).await?);
    let status = client.check(whole_server()).await?.into_inner().status();
    println!("client: check says {status:?}");
    if status != ServingStatus::Serving {
        return Err(format!("expected SERVING, got {status:?}").into());
    }
    let mut watch = client.watch(whole_server()).await?.into_inner();
    let mut seen = Vec::new();
    let watcher = tokio::spawn(async move {
        while let Some(update) = watch.message().await? {
            println!("client: watch says {:?}", update.status());
            seen.push(update.status());
        }
        println!("client: watch ended");
        Ok::<_, tonic::Status>(seen)
    });
    // Let the watcher see SERVING first.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = stop.send(());

    let seen = watcher.await??;
    if seen != [ServingStatus::Serving, ServingStatus::NotServing] {
        return Err(format!("the watch saw {seen:?}").into());
    }
    let report = server.await??;
    println!("shutdown report: {report}");
    let _ = std::fs::remove_file(&path);
    Ok(())
}
