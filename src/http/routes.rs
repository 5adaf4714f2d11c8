use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;

use super::Stats;

/// The routes `connkit http` serves.
#[derive(Clone, Debug, Default)]
pub struct Routes {
    stats: Arc<Stats>,
}

impl Routes {
    /// Routes that count into `stats`.
    pub fn new(stats: Arc<Stats>) -> Self {
        Routes { stats }
    }

    /// The server's counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }
}

/// Answers one request:
///
/// * `/`: `hello from connkit`
/// * `/slow?ms=N`: the same after N milliseconds (at most 10 minutes)
/// * `/stats`: JSON with connections open, accepted, requests in flight
/// * anything else: 404
pub async fn route<B>(routes: Routes, req: Request<B>) -> Response<Full<Bytes>> {
    let _in_flight = routes.stats.request();
    let text = |status: StatusCode, body: String| {
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Full::new(Bytes::from(body)))
            .expect("a valid response")
    };
    match req.uri().path() {
        "/" => text(StatusCode::OK, "hello from connkit\n".into()),
        "/slow" => {
            let ms = req
                .uri()
                .query()
                .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("ms=")))
                .map(str::parse::<u64>);
            match ms {
                Some(Ok(ms)) if ms <= 600_000 => {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    text(StatusCode::OK, format!("slept {ms} ms\n"))
                }
                _ => text(
                    StatusCode::BAD_REQUEST,
                    "usage: /slow?ms=N with N at most 600000\n".into(),
                ),
            }
        }
        "/stats" => Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(
                routes.stats.snapshot().to_json() + "\n",
            )))
            .expect("a valid response"),
        path => text(StatusCode::NOT_FOUND, format!("no route for {path}\n")),
    }
}
