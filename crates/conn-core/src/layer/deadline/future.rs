use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project::pin_project;

use super::CallDeadline;
use crate::deadline::Timed;
use crate::{Deadline, Error};

/// The response future of [`DeadlineService`](super::DeadlineService).
#[pin_project]
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct DeadlineFuture<F> {
    #[pin]
    timed: Timed<F>,
}

impl<F> DeadlineFuture<F> {
    pub(super) fn new(inner: F, deadline: CallDeadline) -> Self {
        let timed = match deadline {
            CallDeadline::After(timeout) => Deadline::run_for(timeout, inner),
            CallDeadline::At(at) => at.run(inner),
        };
        DeadlineFuture { timed }
    }
}

impl<F, T, E> Future for DeadlineFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<Error>,
{
    type Output = Result<T, Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().timed.poll(cx) {
            Poll::Ready(Ok(result)) => Poll::Ready(result.map_err(Into::into)),
            Poll::Ready(Err(elapsed)) => Poll::Ready(Err(elapsed.during("call"))),
            Poll::Pending => Poll::Pending,
        }
    }
}
