use std::task::{Context, Poll};

use tower_service::Service;

use super::{Shutdown, ShutdownFuture};
use crate::Error;

/// The service [`ShutdownLayer`](super::ShutdownLayer) makes.
#[derive(Clone, Debug)]
pub struct ShutdownService<S> {
    inner: S,
    shutdown: Shutdown,
}

impl<S> ShutdownService<S> {
    pub(super) fn new(inner: S, shutdown: Shutdown) -> Self {
        ShutdownService { inner, shutdown }
    }

    /// The controller of this service's shutdown.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, Req> Service<Req> for ShutdownService<S>
where
    S: Service<Req>,
    S::Error: Into<Error>,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ShutdownFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.shutdown.is_triggered() {
            // Ready, so the caller reaches `call` and gets the clear error.
            return Poll::Ready(Ok(()));
        }
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        match self.shutdown.enter() {
            Some(guard) => ShutdownFuture::running(self.inner.call(req), guard),
            None => ShutdownFuture::refused(),
        }
    }
}
