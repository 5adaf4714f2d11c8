//! An axum app over a Unix socket (`ipc://`), under connkit's drain.
//!
//! ```text
//! cargo run --example axum_unix --features axum [-- /tmp/app.sock]
//! curl --unix-socket /tmp/app.sock http://app/whoami
//! ```
//!
//! Ctrl-C shuts down: accepting stops, connections drain for up to 10 s,
//! and the report says what happened to each. With
//! `CONNKIT_EXAMPLE_ONESHOT=1` it makes its own requests, shuts itself
//! down and exits.

use std::time::Duration;

use axum::{Extension, Router, routing::get};
use bytes::Bytes;
use connkit::http::{Peer, connector};
use http_body_util::{BodyExt, Empty};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};

/// The handler sees who called, from the kernel: `SO_PEERCRED` on ipc://.
async fn whoami(Extension(peer): Extension<Peer>) -> String {
    match peer.cred() {
        Some(cred) => format!("uid {} pid {}\n", cred.uid, cred.pid),
        None => "a peer without credentials\n".to_owned(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let oneshot = std::env::var_os("CONNKIT_EXAMPLE_ONESHOT").is_some();
    let path = std::env::args().nth(1).map_or_else(
        || std::env::temp_dir().join(format!("connkit-axum-{}.sock", std::process::id())),
        Into::into,
    );
    let _ = std::fs::remove_file(&path);
    let listener = connkit::ipc::IpcListener::bind(&path)?;
    let endpoint = connkit::core::Listener::local_endpoint(&listener);
    println!("listening on {endpoint}");

    // `with_state(())` makes the handlers services once, as axum::serve
    // does, rather than on every request.
    let app: Router = Router::new()
        .route("/", get(|| async { "hello from axum over connkit\n" }))
        .route("/whoami", get(whoami))
        .with_state(());

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        if oneshot {
            let _ = stopped.await;
        } else {
            let _ = tokio::signal::ctrl_c().await;
        }
        println!("shutting down");
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
        for path in ["/", "/whoami"] {
            let response = client.get(format!("http://app{path}").parse()?).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            print!("GET {path}: {status} {}", String::from_utf8_lossy(&body));
            if !status.is_success() {
                return Err(format!("GET {path} answered {status}").into());
            }
        }
        let _ = stop.send(());
    }

    let report = server.await??;
    println!("shutdown report: {report}");
    let _ = std::fs::remove_file(&path);
    Ok(())
}
