use std::sync::Arc;
use std::task::{Context, Poll};

use tokio_util::sync::CancellationToken;
use tower_service::Service;

use super::CancelFuture;
use crate::Error;

/// The service [`CancelLayer`](super::CancelLayer) makes.
#[derive(Clone, Debug)]
pub struct CancelService<S> {
    inner: S,
    token: Arc<CancellationToken>,
}

impl<S> CancelService<S> {
    pub(super) fn new(inner: S, token: Arc<CancellationToken>) -> Self {
        CancelService { inner, token }
    }

    /// The token that cancels this service's calls.
    pub fn token(&self) -> &CancellationToken {
        &self.token
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

impl<S, Req> Service<Req> for CancelService<S>
where
    S: Service<Req>,
    S::Error: Into<Error>,
{
    type Response = S::Response;
    type Error = Error;
    type Future = CancelFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.token.is_cancelled() {
            // Ready, so the caller reaches `call` and gets the clear error.
            return Poll::Ready(Ok(()));
        }
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        if self.token.is_cancelled() {
            return CancelFuture::refused();
        }
        CancelFuture::running(self.inner.call(req), self.token.clone())
    }
}
