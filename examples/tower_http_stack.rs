//! tower-http's layers and connkit's in one stack in front of an axum
//! `Router`, served over `ipc://` by `connkit::http::serve`:
//!
//! - `TraceLayer`: a span and events per request (`RUST_LOG=tower_http=debug`);
//! - `CompressionLayer`: gzip when the client accepts it;
//! - `DeadlineLayer::from_request(Some(10 s))`: each request's deadline from
//!   its `grpc-timeout` or `connkit-timeout` header, 10 s without one; past
//!   it the client gets 504;
//! - `ShutdownLayer`: once its `Shutdown` is triggered new requests get 503
//!   while the ones in flight finish.
//!
//! ```text
//! cargo run --example tower_http_stack --features axum [-- /tmp/stack.sock]
//! curl --unix-socket /tmp/stack.sock -H 'connkit-timeout: 100m' http://x/slow
//! ```
//!
//! Ctrl-C triggers the `Shutdown` and the server's drain. With
//! `CONNKIT_EXAMPLE_ONESHOT=1` it makes its own requests (compressed, timed
//! out, refused while shutting down), shuts down and exits.

use std::convert::Infallible;
use std::time::Duration;

use axum::{Router, routing::get};
use bytes::Bytes;
use connkit::core::layer::{DeadlineLayer, Shutdown};
use connkit::http::connector;
use http_body_util::{BodyExt, Empty};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use tower::ServiceBuilder;
use tower_http::{compression::CompressionLayer, trace::TraceLayer};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "tower_http=debug".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let oneshot = std::env::var_os("CONNKIT_EXAMPLE_ONESHOT").is_some();
    let path = std::env::args().nth(1).map_or_else(
        || std::env::temp_dir().join(format!("connkit-stack-{}.sock", std::process::id())),
        Into::into,
    );
    let _ = std::fs::remove_file(&path);
    let listener = connkit::ipc::IpcListener::bind(&path)?;
    let endpoint = connkit::core::Listener::local_endpoint(&listener);
    println!("listening on {endpoint}");

    let router = Router::new()
        .route("/", get(|| async { "hello\n".repeat(1000) }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(2)).await;
                "done\n"
            }),
        )
        // Handlers made into services once, as axum::serve does.
        .with_state::<()>(());
    let shutdown = Shutdown::new();
    let app = ServiceBuilder::new()
        .layer(TraceLayer::new_for_http())
        .layer(CompressionLayer::new())
        .layer(DeadlineLayer::from_request(Some(Duration::from_secs(10))))
        .layer(shutdown.layer())
        // connkit's layers speak connkit's error; a Router never fails.
        .map_err(|never: Infallible| -> connkit::core::Error { match never {} })
        .service(router);

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let signal = {
        let shutdown = shutdown.clone();
        async move {
            if oneshot {
                let _ = stopped.await;
            } else {
                let _ = tokio::signal::ctrl_c().await;
            }
            // The layer refuses from now on; the server's drain follows.
            shutdown.trigger();
            println!("shutting down");
        }
    };
    let server = tokio::spawn(
        connkit::http::serve(listener, app)
            .with_graceful_shutdown(signal, Duration::from_secs(10))
            .into_future(),
    );

    if oneshot {
        let client = Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(connector(
            connkit::registry(),
            Some(endpoint),
            Duration::from_secs(5),
        ));
        let get = |path: &'static str, header: (&'static str, &'static str)| {
            let client = client.clone();
            async move {
                let request = http::Request::get(format!("http://stack{path}"))
                    .header(header.0, header.1)
                    .body(Empty::new())?;
                let response = client.request(request).await?;
                let status = response.status().as_u16();
                let encoding = response
                    .headers()
                    .get(http::header::CONTENT_ENCODING)
                    .map(|v| v.to_str().unwrap_or("?").to_owned());
                let body = response.into_body().collect().await?.to_bytes();
                println!(
                    "GET {path} ({}: {}): {status}, {} bytes, encoding {encoding:?}",
                    header.0,
                    header.1,
                    body.len()
                );
                Ok::<_, Error>((status, encoding))
            }
        };
        let expect = |what: &str, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(Error::from(format!("unexpected answer: {what}")))
            }
        };
        let (status, encoding) = get("/", ("accept-encoding", "gzip")).await?;
        expect(
            "compressed /",
            status == 200 && encoding.as_deref() == Some("gzip"),
        )?;
        let (status, _) = get("/slow", ("connkit-timeout", "100m")).await?;
        expect("/slow past its deadline is 504", status == 504)?;
        shutdown.trigger();
        let (status, _) = get("/", ("accept-encoding", "identity")).await?;
        expect("shutting down is 503", status == 503)?;
        let _ = stop.send(());
    }

    let report = server.await??;
    println!("shutdown report: {report}");
    let _ = std::fs::remove_file(&path);
    Ok(())
}
