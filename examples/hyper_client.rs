//! hyper-util's `Client` dialling connkit transports through
//! `connkit::http::connector`: a server on `ipc://`, and one on `utcp://`
//! (connkit's userspace TCP).
//!
//! ```text
//! cargo run --example hyper_client
//! ```
//!
//! A real utcp:// server needs root and a TAP device (`connkit http
//! --tap`); here the two utcp stacks, server's and client's, are joined by
//! a `MemLink` in this process, so the example runs anywhere. It serves,
//! makes its requests, drains both servers and exits (setting
//! `CONNKIT_EXAMPLE_ONESHOT` changes nothing: it always does).

use std::time::Duration;

use bytes::Bytes;
use connkit::core::{Endpoint, Listener, Registry};
use connkit::http::{Routes, connector};
use connkit::utcp::{MemLink, Stack, UtcpListener};
use http_body_util::{BodyExt, Empty};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// GETs `path` from `endpoint` through `registry`'s transports.
async fn get(registry: Registry, endpoint: Endpoint, path: &str) -> Result<String, Error> {
    let client = Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(connector(
        registry,
        Some(endpoint.clone()),
        Duration::from_secs(5),
    ));
    let response = client.get(format!("http://connkit{path}").parse()?).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    let body = String::from_utf8_lossy(&body).into_owned();
    println!("GET {endpoint}{path}: {status}, {} bytes", body.len());
    if !status.is_success() {
        return Err(format!("{endpoint}{path} answered {status}").into());
    }
    Ok(body)
}

/// Serves the demo routes on `listener` until `stop`, then prints the report.
async fn serve_until<L: Listener>(
    listener: L,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> Result<(), Error> {
    let endpoint = listener.local_endpoint();
    let report = connkit::http::serve(listener, Routes::default())
        .with_graceful_shutdown(
            async {
                let _ = stop.await;
            },
            Duration::from_secs(5),
        )
        .await?;
    println!("{endpoint} shutdown report: {report}");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    // ipc://: the registry connkit::registry() gives knows it already.
    let path = std::env::temp_dir().join(format!("connkit-hyper-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let ipc = connkit::ipc::IpcListener::bind(&path)?;
    let ipc_endpoint = ipc.local_endpoint();
    let (stop_ipc, stopped) = tokio::sync::oneshot::channel();
    let ipc_server = tokio::spawn(serve_until(ipc, stopped));
    get(connkit::registry(), ipc_endpoint, "/").await?;

    // utcp://: two userspace stacks on one in-process link; the client's
    // stack is registered as the registry's utcp:// transport.
    let (a, b) = MemLink::pair();
    let cidr = |s: &str| s.parse().map_err(|()| format!("bad address {s}"));
    let server_stack = Stack::builder(a).address(cidr("10.77.0.1/24")?).build()?;
    let client_stack = Stack::builder(b).address(cidr("10.77.0.2/24")?).build()?;
    let utcp = UtcpListener::bind(&server_stack, 8080, 16)?;
    let utcp_endpoint = utcp.local_endpoint();
    let (stop_utcp, stopped) = tokio::sync::oneshot::channel();
    let utcp_server = tokio::spawn(serve_until(utcp, stopped));
    let mut registry = connkit::registry();
    connkit::utcp::register(&mut registry, client_stack);
    get(registry.clone(), utcp_endpoint.clone(), "/").await?;
    get(registry.clone(), utcp_endpoint, "/bytes?n=100000").await?;

    let _ = stop_ipc.send(());
    let _ = stop_utcp.send(());
    ipc_server.await??;
    utcp_server.await??;
    // The client's stack lives in the registry: kept until the drain is
    // over, so it can still answer the server's close.
    drop(registry);
    let _ = std::fs::remove_file(&path);
    Ok(())
}
