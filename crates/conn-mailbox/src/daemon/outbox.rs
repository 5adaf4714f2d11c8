//! One client's bounded outbound queue, filled by the router and drained by
//! the client's writer.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How much one client may have queued before it counts as fallen behind.
///
/// ```
/// use conn_mailbox::daemon::QueueLimits;
/// let d = QueueLimits::default();
/// assert_eq!((d.messages, d.bytes), (10_000, 32 << 20));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueLimits {
    /// Most frames queued.
    pub messages: usize,
    /// Most bytes queued.
    pub bytes: usize,
}

impl Default for QueueLimits {
    fn default() -> Self {
        QueueLimits {
            messages: 10_000,
            bytes: 32 << 20,
        }
    }
}

/// How a client's connection is to end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// Send what is queued, then close in order.
    Goodbye,
    /// Drop the connection now, queued frames and all, for this reason.
    Drop(String),
}

/// Whether a push found room.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Push {
    Queued,
    Full,
}

#[derive(Default)]
struct State {
    frames: VecDeque<Bytes>,
    bytes: usize,
    /// The most bytes ever queued at once.
    peak: usize,
    end: Option<End>,
}

/// The queue. The router and the writer run on one thread (a current-thread
/// runtime), so the lock is never contended; it is there for `Send`.
pub(crate) struct Outbox {
    state: Mutex<State>,
    notify: Notify,
    /// Fires on `End::Drop`, to cut a write blocked on a client that reads nothing.
    dropped: CancellationToken,
    limits: QueueLimits,
}

impl Outbox {
    pub(crate) fn new(limits: QueueLimits) -> Outbox {
        Outbox {
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            dropped: CancellationToken::new(),
            limits,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `frame` unless the queue is at a limit or ended.
    pub(crate) fn push(&self, frame: Bytes) -> Push {
        let mut st = self.lock();
        if st.end.is_some() {
            return Push::Queued; // ending anyway; nothing more goes out
        }
        if st.frames.len() >= self.limits.messages || st.bytes + frame.len() > self.limits.bytes {
            return Push::Full;
        }
        let was_empty = st.frames.is_empty();
        st.bytes += frame.len();
        st.peak = st.peak.max(st.bytes);
        st.frames.push_back(frame);
        drop(st);
        // The writer drains everything it finds, so it needs a wake-up only
        // when the queue turns non-empty.
        if was_empty {
            self.notify.notify_one();
        }
        Push::Queued
    }

    /// What is queued now: (frames, bytes).
    /// Takes every queued frame at once, without waiting (for the fuzz
    /// target, which plays the client's writer).
    pub(crate) fn take_queued(&self) -> Vec<Bytes> {
        let mut st = self.lock();
        st.bytes = 0;
        st.frames.drain(..).collect()
    }

    pub(crate) fn depth(&self) -> (usize, usize) {
        let st = self.lock();
        (st.frames.len(), st.bytes)
    }

    /// The most bytes that were ever queued at once.
    pub(crate) fn peak(&self) -> usize {
        self.lock().peak
    }

    /// Asks the writer to end; the first request wins.
    pub(crate) fn end(&self, end: End) {
        let mut st = self.lock();
        if st.end.is_none() {
            if matches!(end, End::Drop(_)) {
                self.dropped.cancel();
            }
            st.end = Some(end);
        }
        drop(st);
        self.notify.notify_one();
    }

    /// Resolves once the client is to be dropped.
    pub(crate) async fn dropped(&self) {
        self.dropped.cancelled().await
    }

    /// The reason the client is to be dropped, if it is.
    pub(crate) fn drop_reason(&self) -> Option<End> {
        match &self.lock().end {
            Some(End::Drop(r)) => Some(End::Drop(r.clone())),
            _ => None,
        }
    }

    /// Waits for frames or an end. Moves every queued frame into `batch`;
    /// returns the end once nothing is queued before it (or at once for
    /// `Drop`).
    pub(crate) async fn next(&self, batch: &mut Vec<Bytes>) -> Option<End> {
        loop {
            {
                let mut st = self.lock();
                if let Some(End::Drop(reason)) = &st.end {
                    return Some(End::Drop(reason.clone()));
                }
                if !st.frames.is_empty() {
                    batch.extend(st.frames.drain(..));
                    st.bytes = 0;
                    return None;
                }
                if let Some(end) = &st.end {
                    return Some(end.clone());
                }
            }
            // notify_one leaves a permit when nobody waits, so a push between
            // the check above and this await is not lost.
            self.notify.notified().await;
        }
    }
}
