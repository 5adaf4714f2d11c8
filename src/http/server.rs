use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tower::Service;

use super::{Routes, route};
use crate::core::serve::Incoming;
use crate::core::{Connection, Deadline, Error, ErrorKind, Result};

/// Serves HTTP/1.1 on each connection `serve()` hands it.
///
/// Keep-alive is on. When graceful shutdown begins, an idle keep-alive
/// connection ends at once and a busy one after its response; either way the
/// transport is then closed in order, not dropped.
///
/// ```
/// use std::time::Duration;
/// use connkit::core::{mem::MemListener, serve::serve};
/// use connkit::http::{Routes, http_handler};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> connkit::core::Result<()> {
/// let server = serve(MemListener::bind("http-handler-doc")?, http_handler(Routes::default()))
///     .with_graceful_shutdown(async {}, Duration::from_secs(1));
/// let report = server.await?;
/// assert_eq!(report.accepted, 0);
/// # Ok(()) }
/// ```
pub fn http_handler(routes: Routes) -> HttpHandler {
    HttpHandler { routes }
}

/// The connection handler [`http_handler`] makes.
#[derive(Clone, Debug)]
pub struct HttpHandler {
    routes: Routes,
}

/// How long the closing handshake may take once hyper is done.
const CLOSE_WITHIN: Duration = Duration::from_secs(5);

impl<C: Connection> Service<Incoming<C>> for HttpHandler {
    type Response = ();
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, incoming: Incoming<C>) -> Self::Future {
        let routes = self.routes.clone();
        Box::pin(async move {
            let _open = routes.stats().connection();
            let (conn, graceful) = incoming.into_parts();
            // Requests are not boxed: hyper keeps one in-flight slot per
            // connection and reuses it.
            let service = hyper::service::service_fn(move |req| {
                let routes = routes.clone();
                async move { Ok::<_, std::convert::Infallible>(route(routes, req).await) }
            });
            let mut http = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(conn), service);
            // Wait for the graceful signal without re-polling its future on
            // every wake-up of a busy keep-alive connection (that costs a lock
            // per request): register once, and again only if the waker
            // changes; in between an atomic load tells whether it fired.
            let cancelled = graceful.token().cancelled();
            tokio::pin!(cancelled);
            let mut registered: Option<std::task::Waker> = None;
            let mut asked_to_end = false;
            let served = std::future::poll_fn(|cx| {
                if !asked_to_end {
                    let stale = registered.as_ref().is_none_or(|w| !w.will_wake(cx.waker()));
                    let fired = graceful.is_shutting_down()
                        || (stale && cancelled.as_mut().poll(cx).is_ready());
                    if fired {
                        asked_to_end = true;
                        Pin::new(&mut http).graceful_shutdown();
                    } else if stale {
                        registered = Some(cx.waker().clone());
                    }
                }
                // Polled as a future (not `poll_without_shutdown`, which would
                // want every request's future boxed): at the end hyper
                // half-closes the transport, and the orderly close below
                // completes the handshake.
                Pin::new(&mut http).poll(cx)
            })
            .await;
            let conn = http.into_parts().io.into_inner();
            match served {
                Ok(()) => conn.close(Deadline::after(CLOSE_WITHIN)).await,
                Err(e) => {
                    // A broken peer or malformed request: nothing to hand-shake with.
                    conn.kill();
                    let kind = if e.is_parse() {
                        ErrorKind::Protocol
                    } else {
                        ErrorKind::ConnectionReset
                    };
                    if e.is_incomplete_message() || e.is_canceled() {
                        return Ok(());
                    }
                    Err(Error::new(kind).during("serve http").with_source(e))
                }
            }
        })
    }
}
