//! The shutdown signal as the serve loop waits for it: polled only after it
//! has woken, not on every accept.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::AcqRel};
use std::task::{Context, Poll, Wake, Waker};

use futures::task::AtomicWaker;

/// A future polled only when it has asked to be: at first, and after each
/// wake-up of its own. The serve loop looks at its signal before every
/// accept; a signal such as `ctrl_c()` or a channel's receiver costs far
/// more to poll than the flag this checks.
pub(super) struct WokenOnly<F> {
    fut: Pin<Box<F>>,
    flag: Arc<Flag>,
    waker: Waker,
}

struct Flag {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, std::sync::atomic::Ordering::Release);
        self.task.wake();
    }
}

impl<F: Future> WokenOnly<F> {
    pub(super) fn new(fut: F) -> Self {
        let flag = Arc::new(Flag {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        WokenOnly {
            fut: Box::pin(fut),
            waker: Waker::from(flag.clone()),
            flag,
        }
    }
}

impl<F: Future> Future for WokenOnly<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        this.flag.task.register(cx.waker());
        if !this.flag.woken.swap(false, AcqRel) {
            return Poll::Pending;
        }
        this.fut
            .as_mut()
            .poll(&mut Context::from_waker(&this.waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

    /// Counts its polls; ready once `ready` is set, waking whoever waits.
    struct Counted {
        polls: Arc<AtomicUsize>,
        rx: tokio::sync::oneshot::Receiver<()>,
    }

    impl Future for Counted {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Relaxed);
            Pin::new(&mut self.rx).poll(cx).map(|_| ())
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_signal_is_polled_once_then_only_after_it_wakes() {
        let polls = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut signal = WokenOnly::new(Counted {
            polls: polls.clone(),
            rx,
        });
        for _ in 0..100 {
            let pending =
                std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut signal).poll(cx).is_pending()))
                    .await;
            assert!(pending);
        }
        assert_eq!(polls.load(Relaxed), 1, "polled again without a wake-up");
        tx.send(()).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), &mut signal)
            .await
            .expect("the wake-up reaches the loop");
        assert_eq!(polls.load(Relaxed), 2);
    }
}
