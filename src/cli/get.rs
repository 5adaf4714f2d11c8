//! `connkit get URL`: one request through the connkit client stack.

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use connkit::core::{Deadline, Endpoint, Error, ErrorKind, Registry};
use connkit::http::connector;

/// Fetches `url` (through `via` when given) and prints the body, over
/// HTTP/1.1 or, with `http2`, HTTP/2 with prior knowledge. Errors name what
/// failed: refused, timed out, or the HTTP status.
pub async fn run(
    registry: &Registry,
    url: &str,
    via: Option<&str>,
    timeout: Duration,
    http2: bool,
) -> Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("{url}: not a URL: {e}"))?;
    let via = via
        .map(Endpoint::parse)
        .transpose()
        .map_err(|e| e.to_string())?;
    let client = Client::builder(TokioExecutor::new())
        .http2_only(http2)
        .build::<_, Empty<Bytes>>(connector(registry.clone(), via, timeout));
    let fetch = async {
        let response = client.get(uri.clone()).await.map_err(|e| explain(&e))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| explain(&e))?
            .to_bytes();
        Ok::<_, String>((status, body))
    };
    let (status, body) = match Deadline::after(timeout).run(fetch).await {
        Ok(result) => result?,
        Err(e) => return Err(e.during("get").on(&uri).to_string()),
    };
    std::io::stdout()
        .write_all(&body)
        .map_err(|e| e.to_string())?;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("get on {uri}: HTTP {status}"))
    }
}

/// The most precise message in an error's chain: connkit's own error when
/// one is there (it names the operation, the target and the errno).
fn explain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cause {
        if let Some(ours) = e.downcast_ref::<Error>() {
            return ours.to_string();
        }
        cause = e.source();
    }
    Error::new(ErrorKind::Other)
        .during("get")
        .detail(err.to_string())
        .to_string()
}
