use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project::pin_project;
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::InFlight;
use crate::{Error, ErrorKind};

/// The response future of [`ShutdownService`](super::ShutdownService).
#[pin_project]
#[must_use = "futures do nothing unless polled"]
pub struct ShutdownFuture<F> {
    #[pin]
    state: State<F>,
}

#[pin_project(project = StateProj)]
enum State<F> {
    Refused,
    Running {
        #[pin]
        inner: F,
        guard: Option<InFlight>,
        // Registered only once the inner future is pending.
        #[pin]
        abort: Option<WaitForCancellationFutureOwned>,
    },
}

impl<F> ShutdownFuture<F> {
    pub(super) fn refused() -> Self {
        ShutdownFuture {
            state: State::Refused,
        }
    }

    pub(super) fn running(inner: F, guard: InFlight) -> Self {
        ShutdownFuture {
            state: State::Running {
                inner,
                guard: Some(guard),
                abort: None,
            },
        }
    }
}

impl<F, T, E> Future for ShutdownFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<Error>,
{
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Refused => Poll::Ready(Err(Error::new(ErrorKind::ShuttingDown)
                .during("call")
                .detail("shutdown has begun; no new calls are taken"))),
            StateProj::Running {
                inner,
                guard,
                mut abort,
            } => {
                if let Poll::Ready(out) = inner.poll(cx) {
                    // Leave the in-flight count as soon as the call is done,
                    // not when the caller gets round to dropping us.
                    guard.take();
                    return Poll::Ready(out.map_err(Into::into));
                }
                let Some(g) = guard.as_ref() else {
                    return Poll::Pending;
                };
                if abort.is_none() {
                    abort.set(Some(g.abort_token().clone().cancelled_owned()));
                }
                match abort.as_pin_mut().map(|a| a.poll(cx)) {
                    Some(Poll::Ready(())) => {
                        guard.take();
                        Poll::Ready(Err(Error::new(ErrorKind::Canceled)
                            .during("call")
                            .detail("the shutdown's drain deadline passed")))
                    }
                    _ => Poll::Pending,
                }
            }
        }
    }
}

impl<F> std::fmt::Debug for ShutdownFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShutdownFuture").finish_non_exhaustive()
    }
}
