use std::task::{Context, Poll};

use tower_service::Service;

use super::{DeadlineFuture, DeadlinePolicy, Fixed};
use crate::Error;

/// The service [`DeadlineLayer`](super::DeadlineLayer) makes.
#[derive(Clone, Debug)]
pub struct DeadlineService<S, P = Fixed> {
    inner: S,
    policy: P,
}

impl<S, P> DeadlineService<S, P> {
    /// Wraps `inner` with a deadline policy.
    pub fn new(inner: S, policy: P) -> Self {
        DeadlineService { inner, policy }
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

impl<S, P, Req> Service<Req> for DeadlineService<S, P>
where
    S: Service<Req>,
    S::Error: Into<Error>,
    P: DeadlinePolicy<Req>,
{
    type Response = S::Response;
    type Error = Error;
    type Future = DeadlineFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        let deadline = self.policy.deadline(&req);
        DeadlineFuture::new(self.inner.call(req), deadline)
    }
}
