use std::sync::Arc;
use std::sync::atomic::{
    AtomicBool,
    Ordering::{Acquire, Release},
};

use tokio_util::sync::CancellationToken;

use super::Work;

/// A connection handed to the serve loop's service, with the signal that asks
/// it to end gracefully.
///
/// When graceful shutdown begins, [`Graceful`] fires. A handler then takes no
/// new requests: an idle connection half-closes at once
/// ([`Connection::done`](crate::Connection::done)) and closes in order; one
/// with work in flight finishes it first. What has not ended by the drain
/// deadline is killed by the serve loop. [`lines`](super::lines) is a
/// complete handler that does all of this for line-based protocols.
#[derive(Debug)]
pub struct Incoming<C> {
    conn: C,
    graceful: Graceful,
    work: Work,
    id: u64,
}

impl<C> Incoming<C> {
    /// Pairs `conn` with a graceful-shutdown signal and its loop's request
    /// tally; `id` numbers connections.
    pub fn new(conn: C, graceful: Graceful, work: Work, id: u64) -> Self {
        Incoming {
            conn,
            graceful,
            work,
            id,
        }
    }

    /// Where the handler counts the requests it serves, for the loop's
    /// [`ShutdownReport`](super::ShutdownReport).
    pub fn work(&self) -> &Work {
        &self.work
    }

    /// The connection.
    pub fn conn(&mut self) -> &mut C {
        &mut self.conn
    }

    /// The signal that graceful shutdown has begun.
    pub fn graceful(&self) -> &Graceful {
        &self.graceful
    }

    /// This connection's number, counting accepted connections from 1.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Splits into the connection and its signal.
    pub fn into_parts(self) -> (C, Graceful) {
        (self.conn, self.graceful)
    }
}

/// Fires when the server begins its graceful shutdown.
///
/// ```
/// use conn_core::serve::Graceful;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let graceful = Graceful::default();
/// let seen_by_a_connection = graceful.clone();
/// assert!(!seen_by_a_connection.is_shutting_down());
/// graceful.fire();
/// seen_by_a_connection.wait().await;
/// assert!(seen_by_a_connection.is_shutting_down());
/// # }
/// ```
///
/// Clones share one signal. Connections ask [`is_shutting_down`]
/// (Graceful::is_shutting_down) on every wake-up, from every thread, so for
/// a signal fired by [`fire`](Graceful::fire) it is one atomic load, not
/// the lock a [`CancellationToken`]'s own check takes.
#[derive(Clone, Debug, Default)]
pub struct Graceful {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    token: CancellationToken,
    /// Set by `fire` before the token is cancelled.
    fired: AtomicBool,
    /// The token is someone else's, who may cancel it without `fire`.
    foreign: bool,
}

impl Graceful {
    /// A signal that fires when `token` is cancelled (or [`fire`]
    /// (Graceful::fire) is called).
    pub fn new(token: CancellationToken) -> Self {
        Graceful {
            shared: Arc::new(Shared {
                token,
                fired: AtomicBool::new(false),
                foreign: true,
            }),
        }
    }

    /// Begins the graceful shutdown: every clone sees it.
    pub fn fire(&self) {
        self.shared.fired.store(true, Release);
        self.shared.token.cancel();
    }

    /// True once graceful shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        let s = &*self.shared;
        s.fired.load(Acquire) || (s.foreign && s.token.is_cancelled())
    }

    /// Resolves when graceful shutdown begins.
    pub async fn wait(&self) {
        self.shared.token.cancelled().await
    }

    /// The token behind the signal.
    pub fn token(&self) -> &CancellationToken {
        &self.shared.token
    }
}
