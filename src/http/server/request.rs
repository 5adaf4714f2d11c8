//! Each request: the user's service called with the peer in its extensions,
//! counted from arrival to the end of its response body, and its error (if
//! any) answered as a status the client understands.

use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use pin_project::pin_project;
use tower::Service;
use tower::util::{Oneshot, ServiceExt};

use crate::core::BoxError;
use crate::core::serve::{ConnectionWork, Request as Counted};
use crate::http::Peer;
use crate::http::error::{error_response, is_grpc};

/// The hyper service of one connection, around the user's tower service.
#[derive(Clone, Debug)]
pub(super) struct RequestService<S> {
    pub(super) inner: S,
    pub(super) peer: Peer,
    pub(super) work: ConnectionWork,
}

impl<S, B> hyper::service::Service<Request<hyper::body::Incoming>> for RequestService<S>
where
    S: Service<Request<hyper::body::Incoming>, Response = Response<B>> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody<B>>;
    type Error = Infallible;
    type Future = ResponseFuture<Oneshot<S, Request<hyper::body::Incoming>>>;

    fn call(&self, mut req: Request<hyper::body::Incoming>) -> Self::Future {
        let grpc = is_grpc(&req);
        req.extensions_mut().insert(self.peer.clone());
        let guard = self.work.begin();
        ResponseFuture {
            inner: self.inner.clone().oneshot(req),
            guard: Some(guard),
            grpc,
        }
    }
}

/// The future of one request's response.
#[pin_project]
#[derive(Debug)]
pub struct ResponseFuture<F> {
    #[pin]
    inner: F,
    guard: Option<Counted>,
    grpc: bool,
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<ResponseBody<B>>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let answer = ready!(this.inner.poll(cx));
        let guard = Cell::new(this.guard.take());
        Poll::Ready(Ok(match answer {
            Ok(response) => response.map(|body| ResponseBody {
                kind: Kind::Service(body),
                guard,
            }),
            Err(e) => error_response(&e.into(), *this.grpc).map(|body| ResponseBody {
                kind: Kind::Error(body),
                guard,
            }),
        }))
    }
}

/// A response body: the service's own, or connkit's answer to its error.
/// The request counts as finished when the body ends.
#[pin_project]
pub struct ResponseBody<B> {
    #[pin]
    kind: Kind<B>,
    // A Cell so that `is_end_stream`, which takes `&self`, can finish the
    // request: hyper does not poll a body again once it says it has ended.
    guard: Cell<Option<Counted>>,
}

impl<B: std::fmt::Debug> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("kind", &self.kind)
            .finish()
    }
}

#[pin_project(project = KindProj)]
#[derive(Debug)]
enum Kind<B> {
    Service(#[pin] B),
    Error(#[pin] Full<Bytes>),
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let frame = match this.kind.project() {
            KindProj::Service(body) => ready!(body.poll_frame(cx)).map(|f| f.map_err(Into::into)),
            KindProj::Error(body) => ready!(body.poll_frame(cx)).map(|f| f.map_err(|e| match e {})),
        };
        match &frame {
            None => {
                if let Some(guard) = this.guard.take() {
                    guard.finish();
                }
            }
            // Trailers end a message (HTTP/2 sends them with END_STREAM),
            // and hyper polls a body no more after them: a gRPC response,
            // whose status is in its trailers, finishes here.
            Some(Ok(frame)) if frame.is_trailers() => {
                if let Some(guard) = this.guard.take() {
                    guard.finish();
                }
            }
            // A body that failed did not finish: its guard counts it cut.
            Some(Err(_)) => drop(this.guard.take()),
            Some(Ok(_)) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        let ended = match &self.kind {
            Kind::Service(body) => body.is_end_stream(),
            Kind::Error(body) => body.is_end_stream(),
        };
        if ended && let Some(guard) = self.guard.take() {
            guard.finish();
        }
        ended
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Service(body) => body.size_hint(),
            Kind::Error(body) => body.size_hint(),
        }
    }
}
