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
/// use tokio_util::sync::CancellationToken;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let token = CancellationToken::new();
/// let graceful = Graceful::new(token.clone());
/// assert!(!graceful.is_shutting_down());
/// token.cancel();
/// graceful.wait().await;
/// assert!(graceful.is_shutting_down());
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct Graceful {
    token: CancellationToken,
}

impl Graceful {
    /// A signal that fires when `token` does.
    pub fn new(token: CancellationToken) -> Self {
        Graceful { token }
    }

    /// True once graceful shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves when graceful shutdown begins.
    pub async fn wait(&self) {
        self.token.cancelled().await
    }

    /// The token behind the signal.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }
}
