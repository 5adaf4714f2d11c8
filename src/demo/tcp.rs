//! Kernel TCP on loopback: an orderly close and an abort as the peer saw
//! them, and an HTTP call through the connkit client over ipc.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::AsyncReadExt;

use connkit::core::{Connection, Deadline, Error, Result, serve};
use connkit::http::{Http, Routes, Stats, connector};
use connkit::tcp::{TcpListener, TcpStream};

async fn peer_saw(conn: &mut TcpStream) -> String {
    let mut got = Vec::new();
    match conn.read_to_end(&mut got).await {
        Ok(_) if got.is_empty() => "end-of-stream (FIN)".into(),
        Ok(_) => format!("{:?} then end-of-stream", String::from_utf8_lossy(&got)),
        Err(e) => format!("{}", Error::from(e)),
    }
}

pub(super) async fn run(out: &mut dyn Write) -> Result<()> {
    let mut listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr();
    writeln!(out, "\n== tcp://{addr}: kernel TCP on loopback")?;
    let within = Deadline::after(Duration::from_secs(5));

    let client = TcpStream::connect(addr, within).await?;
    let mut server = listener.accept(within).await?;
    let closing = tokio::spawn(client.close(within));
    let seen = peer_saw(&mut server).await;
    server.close(within).await?;
    let closed = closing.await?;
    writeln!(
        out,
        "  close: the peer saw {seen}; close returned {}",
        closed.map_or_else(|e| e.to_string(), |()| "Ok".into())
    )?;

    let client = TcpStream::connect(addr, within).await?;
    let mut server = listener.accept(within).await?;
    client.abort()?;
    let seen = peer_saw(&mut server).await;
    server.kill();
    writeln!(out, "  abort: the peer saw {seen}")?;
    drop(listener);

    // The HTTP server of `connkit http`, here over ipc, called through the
    // connkit connector by hyper-util's own Client.
    let path = std::env::temp_dir().join(format!("connkit-demo-http-{}.sock", std::process::id()));
    let url = format!("ipc://{}", path.display());
    let registry = connkit::registry();
    let http_listener = registry.bind(&url).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stats = Arc::new(Stats::default());
    let server = tokio::spawn(
        serve(
            http_listener,
            stats.count_connections(Http::new().handler(Routes::new(stats.clone()))),
        )
        .with_graceful_shutdown(
            async {
                stopped.await.ok();
            },
            Duration::from_secs(2),
        )
        .into_future(),
    );
    let dial = connector(registry, Some(url.parse()?), Duration::from_secs(2));
    let client = Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(dial);
    let uri = http::Uri::from_static("http://connkit/");
    let response = client
        .get(uri)
        .await
        .map_err(|e| Error::from_boxed(e.into()))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| Error::from_boxed(e.into()))?
        .to_bytes();
    writeln!(
        out,
        "  connkit client -> GET http://connkit/ via {url}: {status} {:?}",
        String::from_utf8_lossy(&body)
    )?;
    drop(client);
    stop.send(()).ok();
    let report = server.await.map_err(Error::from)??;
    writeln!(out, "  HTTP server shutdown report: {report}")?;
    Ok(())
}
