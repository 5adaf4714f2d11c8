//! The demo application `connkit http` serves: an ordinary tower service,
//! served through [`serve`](super::serve()) like any user's.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{Either, Full};

use super::Stats;

/// The routes `connkit http` serves, as a `tower::Service`:
///
/// * `/`: `hello from connkit`
/// * `/slow?ms=N`: the same after N milliseconds (at most 10 minutes)
/// * `/bytes?n=N`: N zero bytes, streamed in 64 KiB frames (for throughput)
/// * `/stats`: JSON with connections open, accepted, requests in flight
/// * anything else: 404
///
/// ```
/// use connkit::http::Routes;
/// use http_body_util::BodyExt;
/// use tower::ServiceExt;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let req = http::Request::get("/bytes?n=100000").body(()).unwrap();
/// let response = Routes::default().oneshot(req).await.unwrap();
/// let body = response.into_body().collect().await.unwrap().to_bytes();
/// assert_eq!(body.len(), 100_000);
/// # }
/// ```
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

/// The body of a [`Routes`] response: a short text, or `/bytes`'s stream.
pub type RouteBody = Either<Full<Bytes>, Zeros>;

impl<B: Send + 'static> tower::Service<Request<B>> for Routes {
    type Response = Response<RouteBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<RouteBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let routes = self.clone();
        Box::pin(async move { Ok(route(routes, req).await) })
    }
}

/// Answers one request as [`Routes`] does.
pub async fn route<B>(routes: Routes, req: Request<B>) -> Response<RouteBody> {
    let _in_flight = routes.stats.request();
    // Only the URI is read; the body (which need not be `Sync`) goes now.
    let uri = req.into_parts().0.uri;
    let text = |status: StatusCode, body: String| {
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Either::Left(Full::new(Bytes::from(body))))
            .expect("a valid response")
    };
    let query = |key: &str| {
        uri.query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix(key)))
            .map(str::parse::<u64>)
    };
    match uri.path() {
        "/" => text(StatusCode::OK, "hello from connkit\n".into()),
        "/slow" => match query("ms=") {
            Some(Ok(ms)) if ms <= 600_000 => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                text(StatusCode::OK, format!("slept {ms} ms\n"))
            }
            _ => text(
                StatusCode::BAD_REQUEST,
                "usage: /slow?ms=N with N at most 600000\n".into(),
            ),
        },
        "/bytes" => match query("n=") {
            Some(Ok(n)) => Response::builder()
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header(header::CONTENT_LENGTH, n)
                .body(Either::Right(Zeros { left: n }))
                .expect("a valid response"),
            _ => text(StatusCode::BAD_REQUEST, "usage: /bytes?n=N\n".into()),
        },
        "/stats" => Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(Either::Left(Full::new(Bytes::from(
                routes.stats.snapshot().to_json() + "\n",
            ))))
            .expect("a valid response"),
        path => text(StatusCode::NOT_FOUND, format!("no route for {path}\n")),
    }
}

/// A body of `left` zero bytes, sent from one static buffer (nothing is
/// allocated or copied per frame).
#[derive(Debug)]
pub struct Zeros {
    left: u64,
}

static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

impl Body for Zeros {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(ZEROS.len() as u64) as usize;
        self.left -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&ZEROS[..n])))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}
