//! The connection tasks of one serve loop.
//!
//! Each task counts its own end into the loop's tally, so the loop is not
//! woken as every connection ends (a `JoinSet` wakes its owner once per
//! task, and on a busy multi-thread runtime that wake-up, often across
//! threads, costs more than the rest of a short connection's bookkeeping).
//! The loop keeps only what it needs to kill them at the drain deadline and
//! to wait for them: an abort handle per running task and a count.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use pin_project::pin_project;
use slab::Slab;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::{ErrorTally, ShutdownReport};
use crate::{Error, ErrorKind, Result};

/// The connection tasks of one serve loop, and how they ended.
#[derive(Debug, Default)]
pub(super) struct Tasks {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    /// The abort handles of running tasks; a task takes its own out as it
    /// ends. A slot is reserved before the spawn, so a task that ends before
    /// its handle is stored finds its slot and frees it.
    running: Mutex<Slab<Option<AbortHandle>>>,
    /// Tasks spawned.
    spawned: AtomicU64,
    /// Tasks whose futures have been dropped; all have ended when it
    /// reaches `spawned`.
    ended: AtomicU64,
    /// Set while the loop waits for an end: only then do ends notify.
    watched: AtomicBool,
    notify: Notify,
    closed: AtomicU64,
    cut_by_peer: AtomicU64,
    killed: AtomicU64,
    errors: Mutex<ErrorTally>,
}

/// Slots of the abort-handle table kept once every connection has gone.
const RETAINED_SLOTS: usize = 1024;

/// A handler that ends with one of these lost its peer: the connection was
/// not closed in order, and the server did nothing wrong.
fn cut_by_peer(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
            | ErrorKind::NotConnected
            | ErrorKind::UnexpectedEof
    )
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; a poisoned one still holds
    // consistent counts.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Tasks {
    /// Runs `fut`, one connection's handler, on a task of its own.
    pub(super) fn spawn<F, E>(&self, fut: F)
    where
        F: Future<Output = std::result::Result<(), E>> + Send + 'static,
        E: Into<Error>,
    {
        let key = lock(&self.shared.running).insert(None);
        self.shared.spawned.fetch_add(1, SeqCst);
        let tracked = Tracked {
            inner: fut,
            guard: Guard {
                shared: self.shared.clone(),
                key,
                ended: false,
            },
        };
        let handle = tokio::spawn(tracked).abort_handle();
        // The slot is still there unless the task has ended already; only
        // this loop inserts, so it cannot have been reused meanwhile.
        if let Some(slot) = lock(&self.shared.running).get_mut(key) {
            *slot = Some(handle);
        }
    }

    /// Tasks that have ended so far.
    pub(super) fn ended(&self) -> u64 {
        self.shared.ended.load(SeqCst)
    }

    /// Resolves once more than `seen` tasks have ended in all (a task ending
    /// frees its connection's descriptor).
    pub(super) async fn ended_past(&self, seen: u64) {
        self.wait(|s| s.ended.load(SeqCst) > seen).await
    }

    /// Resolves once every task spawned has ended.
    pub(super) async fn all_ended(&self) {
        self.wait(|s| s.ended.load(SeqCst) == s.spawned.load(SeqCst))
            .await
    }

    async fn wait(&self, done: impl Fn(&Shared) -> bool) {
        let s = &*self.shared;
        s.watched.store(true, SeqCst);
        loop {
            let notified = s.notify.notified();
            tokio::pin!(notified);
            // Registered before the look, so an end between the two wakes it.
            notified.as_mut().enable();
            if done(s) {
                break;
            }
            notified.await;
        }
        s.watched.store(false, SeqCst);
    }

    /// Aborts every running task; each counts itself killed as it goes.
    pub(super) fn kill_all(&self) {
        let handles: Vec<AbortHandle> = lock(&self.shared.running)
            .iter_mut()
            .filter_map(|(_, h)| h.take())
            .collect();
        for handle in handles {
            handle.abort();
        }
    }

    /// Adds how the tasks ended to `report`.
    pub(super) fn tally_into(&self, report: &mut ShutdownReport) {
        let s = &*self.shared;
        report.closed += s.closed.load(SeqCst);
        report.cut_by_peer += s.cut_by_peer.load(SeqCst);
        report.killed += s.killed.load(SeqCst);
        report.errors = std::mem::take(&mut *lock(&s.errors));
    }
}

impl Drop for Tasks {
    /// A loop dropped before it finished (its future cancelled) takes its
    /// connections with it, as a `JoinSet` would.
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// One task's handler, with the guard that counts its end.
#[pin_project]
struct Tracked<F> {
    // Declared first, so dropped first: the connection is gone (its
    // descriptor free) before the guard says the task has ended.
    #[pin]
    inner: F,
    guard: Guard,
}

impl<F, E> Future for Tracked<F>
where
    F: Future<Output = std::result::Result<(), E>>,
    E: Into<Error>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        if this.guard.ended {
            return Poll::Ready(());
        }
        let inner = this.inner;
        // A panicking handler is this connection's error, not the server's:
        // caught here (free while nothing panics) with its message.
        let outcome = match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(result)) => result.map_err(Into::into),
            Err(payload) => Err(Error::from_panic(&*payload, "task").during("serve connection")),
        };
        this.guard.finished(outcome);
        Poll::Ready(())
    }
}

/// Counts its task's end: as the handler returned, or killed if the task is
/// dropped first (aborted at the deadline, or its runtime shut down).
#[derive(Debug)]
struct Guard {
    shared: Arc<Shared>,
    key: usize,
    ended: bool,
}

impl Guard {
    fn finished(&mut self, outcome: Result<()>) {
        self.ended = true;
        let s = &*self.shared;
        match outcome {
            Ok(()) => {
                s.closed.fetch_add(1, SeqCst);
            }
            Err(e) if cut_by_peer(e.kind()) => {
                s.cut_by_peer.fetch_add(1, SeqCst);
            }
            Err(e) => lock(&s.errors).push(e),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let s = &*self.shared;
        if !self.ended {
            s.killed.fetch_add(1, SeqCst);
        }
        {
            let mut running = lock(&s.running);
            running.try_remove(self.key);
            // A burst of connections leaves no table its size behind.
            if running.is_empty() && running.capacity() > RETAINED_SLOTS {
                running.shrink_to_fit();
            }
        }
        s.ended.fetch_add(1, SeqCst);
        if s.watched.load(SeqCst) {
            s.notify.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn the_handle_table_shrinks_once_a_burst_has_gone() {
        let tasks = Tasks::default();
        let (release, released) = tokio::sync::watch::channel(false);
        for _ in 0..3000 {
            let mut released = released.clone();
            tasks.spawn(async move {
                let _ = released.wait_for(|r| *r).await;
                Ok::<(), Error>(())
            });
        }
        assert!(lock(&tasks.shared.running).capacity() >= 3000);
        release.send(true).unwrap();
        tasks.all_ended().await;
        assert!(lock(&tasks.shared.running).capacity() <= RETAINED_SLOTS);
        let mut report = ShutdownReport::default();
        tasks.tally_into(&mut report);
        assert_eq!((report.closed, report.killed), (3000, 0));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_task_killed_before_it_ever_ran_is_counted_killed() {
        let tasks = Tasks::default();
        tasks.spawn(std::future::pending::<Result<()>>());
        tasks.kill_all();
        tasks.all_ended().await;
        let mut report = ShutdownReport::default();
        tasks.tally_into(&mut report);
        assert_eq!((report.closed, report.killed), (0, 1));
    }
}
