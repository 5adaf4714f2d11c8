use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project::pin_project;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::{Error, ErrorKind};

/// The response future of [`CancelService`](super::CancelService).
#[pin_project]
#[must_use = "futures do nothing unless polled"]
pub struct CancelFuture<F> {
    #[pin]
    state: State<F>,
}

#[pin_project(project = StateProj)]
enum State<F> {
    Refused,
    Running {
        #[pin]
        inner: F,
        token: Arc<CancellationToken>,
        // Registered only once the inner future is pending, so a call that
        // completes on its first poll never touches the token's waiter list.
        #[pin]
        wait: Option<WaitForCancellationFutureOwned>,
    },
}

impl<F> CancelFuture<F> {
    pub(super) fn refused() -> Self {
        CancelFuture {
            state: State::Refused,
        }
    }

    pub(super) fn running(inner: F, token: Arc<CancellationToken>) -> Self {
        CancelFuture {
            state: State::Running {
                inner,
                token,
                wait: None,
            },
        }
    }
}

fn canceled(detail: &'static str) -> Error {
    Error::new(ErrorKind::Canceled)
        .during("call")
        .detail(detail)
}

impl<F, T, E> Future for CancelFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<Error>,
{
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Refused => Poll::Ready(Err(canceled("the token fired before the call"))),
            StateProj::Running {
                inner,
                token,
                mut wait,
            } => {
                if token.is_cancelled() {
                    return Poll::Ready(Err(canceled("the token fired during the call")));
                }
                if let Poll::Ready(out) = inner.poll(cx) {
                    return Poll::Ready(out.map_err(Into::into));
                }
                if wait.is_none() {
                    wait.set(Some(CancellationToken::clone(token).cancelled_owned()));
                }
                match wait.as_pin_mut().map(|w| w.poll(cx)) {
                    Some(Poll::Ready(())) => {
                        Poll::Ready(Err(canceled("the token fired during the call")))
                    }
                    _ => Poll::Pending,
                }
            }
        }
    }
}

impl<F> std::fmt::Debug for CancelFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelFuture").finish_non_exhaustive()
    }
}
