//! The connection limit: how many connections are served at once, shared by
//! every loop of one server, and a wait for a free place past it.
//!
//! A count and a [`Notify`], not a semaphore: the serve loop asks "is there
//! room" before every accept and each connection takes and returns a place,
//! and a semaphore's release takes a lock every time, on a line every
//! thread shares. Here taking and returning are one atomic each; only a
//! return from a full limit wakes anyone.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{
    AtomicUsize,
    Ordering::{AcqRel, Acquire, Relaxed},
};
use std::task::{Context, Poll};

use tokio::sync::Notify;
use tokio::sync::futures::OwnedNotified;

/// A limit of `max` places.
#[derive(Debug)]
pub(super) struct Limit {
    max: usize,
    used: AtomicUsize,
    freed: Arc<Notify>,
}

/// One place taken; returned on drop.
#[derive(Debug)]
pub(super) struct Place(Arc<Limit>);

impl Limit {
    pub(super) fn new(max: usize) -> Arc<Limit> {
        Arc::new(Limit {
            max: max.max(1),
            used: AtomicUsize::new(0),
            freed: Arc::new(Notify::new()),
        })
    }

    /// Places in use now.
    #[cfg(test)]
    fn used(&self) -> usize {
        self.used.load(Relaxed)
    }

    fn has_room(&self) -> bool {
        self.used.load(Acquire) < self.max
    }

    /// A place, if one is free.
    pub(super) fn try_take(self: &Arc<Self>) -> Option<Place> {
        let mut used = self.used.load(Relaxed);
        loop {
            if used >= self.max {
                return None;
            }
            match self
                .used
                .compare_exchange_weak(used, used + 1, AcqRel, Relaxed)
            {
                Ok(_) => return Some(Place(self.clone())),
                Err(now) => used = now,
            }
        }
    }

    /// A place, waiting for one to be returned if none is free.
    pub(super) async fn take(self: &Arc<Self>) -> Place {
        loop {
            let freed = self.freed.clone().notified_owned();
            tokio::pin!(freed);
            // Listening before looking: a place returned in between wakes it.
            freed.as_mut().enable();
            if let Some(place) = self.try_take() {
                return place;
            }
            freed.await;
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let limit = &*self.0;
        if limit.used.fetch_sub(1, AcqRel) == limit.max {
            limit.freed.notify_waiters();
        }
    }
}

/// Waits, in a `poll_ready`, until the limit has room, without taking a
/// place: a place held while the loop waits in accept would starve the
/// other loops that share the limit.
#[derive(Debug)]
pub(super) struct RoomWait {
    limit: Arc<Limit>,
    waiting: Option<Pin<Box<OwnedNotified>>>,
}

impl Clone for RoomWait {
    fn clone(&self) -> Self {
        RoomWait::new(self.limit.clone())
    }
}

impl RoomWait {
    pub(super) fn new(limit: Arc<Limit>) -> Self {
        RoomWait {
            limit,
            waiting: None,
        }
    }

    pub(super) fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if let Some(waiting) = &mut self.waiting {
                if waiting.as_mut().poll(cx).is_pending() && !self.limit.has_room() {
                    return Poll::Pending;
                }
                self.waiting = None;
            }
            if self.limit.has_room() {
                return Poll::Ready(());
            }
            let mut waiting = Box::pin(self.limit.freed.clone().notified_owned());
            waiting.as_mut().enable();
            self.waiting = Some(waiting);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "current_thread")]
    async fn past_the_limit_a_taker_waits_until_a_place_is_returned() {
        let limit = Limit::new(2);
        let a = limit.try_take().expect("room");
        let _b = limit.try_take().expect("room");
        assert!(limit.try_take().is_none(), "full");
        let waiter = tokio::spawn({
            let limit = limit.clone();
            async move { limit.take().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "took a place past the limit");
        drop(a);
        let c = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken by the return")
            .unwrap();
        assert_eq!(limit.used(), 2);
        drop(c);
        assert_eq!(limit.used(), 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn room_is_awaited_without_taking_a_place() {
        let limit = Limit::new(1);
        let mut room = RoomWait::new(limit.clone());
        assert!(std::future::poll_fn(|cx| Poll::Ready(room.poll_room(cx).is_ready())).await);
        assert_eq!(limit.used(), 0, "looking took a place");
        let held = limit.try_take().unwrap();
        let waiting = tokio::spawn(async move {
            std::future::poll_fn(|cx| room.poll_room(cx)).await;
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "saw room in a full limit");
        drop(held);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken by the return")
            .unwrap();
    }
}
