use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::Deadline;

/// The high bit of `state` says shutdown has begun; the rest counts calls in
/// flight. One word, so admitting a call and starting shutdown cannot race:
/// a call is admitted exactly when its increment lands before the flag.
const DRAINING: usize = 1 << (usize::BITS - 1);

/// Drives the graceful shutdown of everything built with its
/// [`ShutdownLayer`](super::ShutdownLayer): refuse new calls, let the ones in
/// flight finish until a deadline, then cancel what is left.
///
/// Cloning is cheap; every clone controls the same shutdown.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conn_core::{Deadline, ErrorKind, layer::Shutdown};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let shutdown = Shutdown::new();
/// let svc = ServiceBuilder::new()
///     .layer(shutdown.layer())
///     .service(service_fn(|ms: u64| async move {
///         tokio::time::sleep(Duration::from_millis(ms)).await;
///         Ok::<_, conn_core::Error>(ms)
///     }));
///
/// let quick = tokio::spawn(svc.clone().oneshot(10));
/// let stuck = tokio::spawn(svc.clone().oneshot(60_000));
/// tokio::task::yield_now().await; // let both calls start
///
/// let report = shutdown.shutdown(Deadline::after(Duration::from_millis(100))).await;
/// assert_eq!((report.finished, report.cancelled), (1, 1));
/// assert_eq!(quick.await.unwrap().unwrap(), 10);
/// assert_eq!(stuck.await.unwrap().unwrap_err().kind(), ErrorKind::Canceled);
///
/// // After shutdown, calls are refused with a clear error.
/// let err = svc.oneshot(1).await.unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::ShuttingDown);
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    state: AtomicUsize,
    drained: Notify,
    started: CancellationToken,
    abort: CancellationToken,
    refused: AtomicU64,
}

/// What a drain achieved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Calls in flight when shutdown began that finished within the deadline.
    pub finished: usize,
    /// Calls still in flight at the deadline, ended with `Canceled`.
    pub cancelled: usize,
    /// Calls refused because shutdown had begun.
    pub refused: u64,
    /// How long the drain took.
    pub elapsed: Duration,
}

/// A unit of work counted as in flight until dropped (see [`Shutdown::enter`]).
#[derive(Debug)]
#[must_use = "the work counts as in flight only while this guard lives"]
pub struct InFlight {
    shared: Arc<Shared>,
}

impl Shutdown {
    /// A shutdown controller that has not begun.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// The layer whose services this controller shuts down.
    pub fn layer(&self) -> super::ShutdownLayer {
        super::ShutdownLayer::new(self.clone())
    }

    /// Counts a unit of work as in flight, or returns `None` once shutdown
    /// has begun. The layer calls this per call; a connection or task can
    /// call it to be waited for as well.
    pub fn enter(&self) -> Option<InFlight> {
        let before = self.shared.state.fetch_add(1, Ordering::SeqCst);
        if before & DRAINING != 0 {
            self.shared.release();
            self.shared.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(InFlight {
            shared: self.shared.clone(),
        })
    }

    /// Begins shutdown: new calls are refused from now on. Returns how many
    /// were in flight at that moment. Calling it again changes nothing.
    pub fn trigger(&self) -> usize {
        let before = self.shared.state.fetch_or(DRAINING, Ordering::SeqCst);
        self.shared.started.cancel();
        before & !DRAINING
    }

    /// True once shutdown has begun.
    pub fn is_triggered(&self) -> bool {
        self.shared.state.load(Ordering::SeqCst) & DRAINING != 0
    }

    /// Resolves when shutdown begins.
    pub async fn triggered(&self) {
        self.shared.started.cancelled().await
    }

    /// A token that fires when shutdown begins, for code that selects on it.
    pub fn token(&self) -> CancellationToken {
        self.shared.started.clone()
    }

    /// Calls (and [`InFlight`] guards) in flight now.
    pub fn in_flight(&self) -> usize {
        self.shared.state.load(Ordering::SeqCst) & !DRAINING
    }

    /// Resolves when nothing is in flight any more.
    pub async fn idle(&self) {
        loop {
            let notified = self.shared.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.in_flight() == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Ends every call still in flight with `Canceled`, now.
    pub fn abort(&self) {
        self.trigger();
        self.shared.abort.cancel();
    }

    /// The whole graceful shutdown: refuse new calls, wait until those in
    /// flight finish or `deadline` passes, cancel the rest, report.
    pub async fn shutdown(&self, deadline: Deadline) -> DrainReport {
        let start = tokio::time::Instant::now();
        let at_start = self.trigger();
        let _ = deadline.run(self.idle()).await;
        let left = self.in_flight();
        if left > 0 {
            self.abort();
        }
        DrainReport {
            finished: at_start.saturating_sub(left),
            cancelled: left,
            refused: self.shared.refused.load(Ordering::Relaxed),
            elapsed: start.elapsed(),
        }
    }
}

impl Shared {
    fn release(&self) {
        let before = self.state.fetch_sub(1, Ordering::SeqCst);
        if before & !DRAINING == 1 {
            self.drained.notify_waiters();
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.shared.release();
    }
}

impl InFlight {
    /// The token that fires when the drain deadline passes and this work
    /// should stop.
    pub fn abort_token(&self) -> &CancellationToken {
        &self.shared.abort
    }
}
