//! Counting the requests a serve loop's connections carry, for the report.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use super::{Graceful, RequestCounts};

/// Counts the requests (units of work) of one serve loop, for its
/// [`ShutdownReport`](super::ShutdownReport).
///
/// A handler calls [`Work::begin`] when a request arrives and
/// [`Request::finish`] when its response is complete; a request dropped
/// unfinished was cut: by the drain deadline if the loop had reached it, by
/// the peer otherwise. Each serve loop (each thread, in per-core serving)
/// has its own, so counting never contends across threads.
///
/// ```
/// use conn_core::serve::{Graceful, Work};
///
/// let work = Work::new(Graceful::default());
/// let done = work.begin();
/// let abandoned = work.begin();
/// done.finish();
/// drop(abandoned);
/// let counts = work.counts();
/// assert_eq!((counts.started, counts.finished, counts.cut_by_peer), (2, 1, 1));
/// ```
#[derive(Clone, Debug)]
pub struct Work {
    inner: Arc<Counters>,
}

#[derive(Debug)]
struct Counters {
    graceful: Graceful,
    started: AtomicU64,
    finished: AtomicU64,
    finished_after_signal: AtomicU64,
    cut_by_peer: AtomicU64,
    /// Set by the loop at the drain deadline; fixed from then on.
    cut_at_deadline: AtomicU64,
    past_deadline: AtomicBool,
}

impl Work {
    /// A tally whose "after the signal" is `graceful`'s.
    pub fn new(graceful: Graceful) -> Self {
        Work {
            inner: Arc::new(Counters {
                graceful,
                started: AtomicU64::new(0),
                finished: AtomicU64::new(0),
                finished_after_signal: AtomicU64::new(0),
                cut_by_peer: AtomicU64::new(0),
                cut_at_deadline: AtomicU64::new(0),
                past_deadline: AtomicBool::new(false),
            }),
        }
    }

    /// A request has arrived; finish or drop the guard when it ends.
    pub fn begin(&self) -> Request {
        self.inner.started.fetch_add(1, Relaxed);
        Request {
            work: Some(self.clone()),
        }
    }

    /// What was counted so far.
    pub fn counts(&self) -> RequestCounts {
        let c = &self.inner;
        RequestCounts {
            started: c.started.load(Relaxed),
            finished: c.finished.load(Relaxed),
            finished_after_signal: c.finished_after_signal.load(Relaxed),
            cut_at_deadline: c.cut_at_deadline.load(Relaxed),
            cut_by_peer: c.cut_by_peer.load(Relaxed),
        }
    }

    /// The loop reached its drain deadline: whatever is still running is cut
    /// by it, whenever its task gets to drop it.
    pub(super) fn deadline_passed(&self) {
        let c = &self.inner;
        if c.past_deadline.swap(true, Relaxed) {
            return;
        }
        let running =
            c.started.load(Relaxed) - c.finished.load(Relaxed) - c.cut_by_peer.load(Relaxed);
        c.cut_at_deadline.store(running, Relaxed);
    }
}

/// One request in flight, counted by [`Work`]: [`finish`](Request::finish)
/// it when its response is complete; dropping it unfinished counts it cut.
#[derive(Debug)]
#[must_use = "a request dropped at once counts as cut"]
pub struct Request {
    work: Option<Work>,
}

impl Request {
    /// The request's response is complete.
    pub fn finish(mut self) {
        if let Some(work) = self.work.take() {
            let c = &work.inner;
            if c.past_deadline.load(Relaxed) {
                return; // already counted as cut at the deadline
            }
            c.finished.fetch_add(1, Relaxed);
            if c.graceful.is_shutting_down() {
                c.finished_after_signal.fetch_add(1, Relaxed);
            }
        }
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        if let Some(work) = self.work.take() {
            let c = &work.inner;
            if !c.past_deadline.load(Relaxed) {
                c.cut_by_peer.fetch_add(1, Relaxed);
            }
        }
    }
}
