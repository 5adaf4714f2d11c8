//! Counting the requests a serve loop's connections carry, for the report.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};

use super::{Graceful, RequestCounts};

/// Counts the requests (units of work) of one serve loop, for its
/// [`ShutdownReport`](super::ShutdownReport).
///
/// A handler calls [`Work::begin`] (or [`ConnectionWork::begin`]) when a
/// request arrives and [`Request::finish`] when its response is complete; a
/// request dropped unfinished was cut: by the drain deadline if the loop had
/// reached it, by the peer otherwise.
///
/// Counting never makes threads contend: each thread counts into a slot of
/// its own (a serve loop on a multi-thread runtime is served by every
/// worker), and the report sums the slots.
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

/// Slots a loop's counts are spread over; threads share one only past this.
const SLOTS: usize = 16;

#[derive(Debug)]
struct Counters {
    graceful: Graceful,
    slots: [Slot; SLOTS],
    /// Set by the loop at the drain deadline; fixed from then on.
    cut_at_deadline: AtomicU64,
    past_deadline: AtomicBool,
}

/// One thread's counts, on a cache line of its own.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Slot {
    started: AtomicU64,
    finished: AtomicU64,
    finished_after_signal: AtomicU64,
    cut_by_peer: AtomicU64,
}

/// The slot of the calling thread: threads take slots in turn.
fn slot_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    SLOT.with(|slot| {
        let mut i = slot.get();
        if i == usize::MAX {
            i = NEXT.fetch_add(1, Relaxed) % SLOTS;
            slot.set(i);
        }
        i
    })
}

impl Counters {
    fn slot(&self) -> &Slot {
        &self.slots[slot_index()]
    }

    fn sum(&self, field: impl Fn(&Slot) -> &AtomicU64) -> u64 {
        self.slots.iter().map(|s| field(s).load(Relaxed)).sum()
    }
}

impl Work {
    /// A tally whose "after the signal" is `graceful`'s.
    pub fn new(graceful: Graceful) -> Self {
        Work {
            inner: Arc::new(Counters {
                graceful,
                slots: Default::default(),
                cut_at_deadline: AtomicU64::new(0),
                past_deadline: AtomicBool::new(false),
            }),
        }
    }

    /// A request has arrived; finish or drop the guard when it ends.
    pub fn begin(&self) -> Request {
        self.inner.slot().started.fetch_add(1, Relaxed);
        Request {
            owner: Some(Owner::Loop(self.clone())),
        }
    }

    /// The counts of one connection: its requests count into this loop's
    /// report as [`begin`](Work::begin)'s do, and the connection can ask
    /// how many it has carried and how many are running (its idleness),
    /// without touching anything another connection touches.
    ///
    /// ```
    /// use conn_core::serve::{Graceful, Work};
    ///
    /// let work = Work::new(Graceful::default());
    /// let conn = work.connection();
    /// let request = conn.begin();
    /// assert_eq!((conn.started(), conn.running()), (1, 1));
    /// request.finish();
    /// assert_eq!((conn.started(), conn.running()), (1, 0));
    /// assert_eq!(work.counts().finished, 1);
    /// ```
    pub fn connection(&self) -> ConnectionWork {
        ConnectionWork {
            inner: Arc::new(ConnCounters {
                work: self.clone(),
                started: AtomicU64::new(0),
                ended: AtomicU64::new(0),
            }),
        }
    }

    /// What was counted so far.
    pub fn counts(&self) -> RequestCounts {
        let c = &self.inner;
        RequestCounts {
            started: c.sum(|s| &s.started),
            finished: c.sum(|s| &s.finished),
            finished_after_signal: c.sum(|s| &s.finished_after_signal),
            cut_at_deadline: c.cut_at_deadline.load(Relaxed),
            cut_by_peer: c.sum(|s| &s.cut_by_peer),
        }
    }

    /// The loop reached its drain deadline: whatever is still running is cut
    /// by it, whenever its task gets to drop it.
    pub(super) fn deadline_passed(&self) {
        let c = &self.inner;
        if c.past_deadline.swap(true, Relaxed) {
            return;
        }
        let running = c.sum(|s| &s.started) - c.sum(|s| &s.finished) - c.sum(|s| &s.cut_by_peer);
        c.cut_at_deadline.store(running, Relaxed);
    }

    /// A request that was counted started has ended: finished, or cut.
    fn end(&self, finished: bool) {
        let c = &*self.inner;
        if c.past_deadline.load(Relaxed) {
            return; // already counted as cut at the deadline
        }
        let slot = c.slot();
        if !finished {
            slot.cut_by_peer.fetch_add(1, Relaxed);
            return;
        }
        slot.finished.fetch_add(1, Relaxed);
        if c.graceful.is_shutting_down() {
            slot.finished_after_signal.fetch_add(1, Relaxed);
        }
    }
}

/// One connection's share of a [`Work`] tally (see [`Work::connection`]);
/// clones count together.
#[derive(Clone, Debug)]
pub struct ConnectionWork {
    inner: Arc<ConnCounters>,
}

#[derive(Debug)]
struct ConnCounters {
    work: Work,
    started: AtomicU64,
    ended: AtomicU64,
}

impl ConnectionWork {
    /// A request of this connection has arrived; finish or drop the guard
    /// when it ends.
    pub fn begin(&self) -> Request {
        let c = &*self.inner;
        c.started.fetch_add(1, Relaxed);
        c.work.inner.slot().started.fetch_add(1, Relaxed);
        Request {
            owner: Some(Owner::Connection(self.clone())),
        }
    }

    /// Requests this connection has carried, running ones included.
    pub fn started(&self) -> u64 {
        self.inner.started.load(Relaxed)
    }

    /// Requests of this connection running now.
    pub fn running(&self) -> u64 {
        let c = &*self.inner;
        // `ended` is read first: it never passes `started`.
        let ended = c.ended.load(Relaxed);
        c.started.load(Relaxed).saturating_sub(ended)
    }
}

/// One request in flight, counted by [`Work`]: [`finish`](Request::finish)
/// it when its response is complete; dropping it unfinished counts it cut.
#[derive(Debug)]
#[must_use = "a request dropped at once counts as cut"]
pub struct Request {
    owner: Option<Owner>,
}

#[derive(Debug)]
enum Owner {
    Loop(Work),
    Connection(ConnectionWork),
}

impl Owner {
    fn end(self, finished: bool) {
        match self {
            Owner::Loop(work) => work.end(finished),
            Owner::Connection(conn) => {
                conn.inner.work.end(finished);
                conn.inner.ended.fetch_add(1, Relaxed);
            }
        }
    }
}

impl Request {
    /// The request's response is complete.
    pub fn finish(mut self) {
        if let Some(owner) = self.owner.take() {
            owner.end(true);
        }
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        if let Some(owner) = self.owner.take() {
            owner.end(false);
        }
    }
}
