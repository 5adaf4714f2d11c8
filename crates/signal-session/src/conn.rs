//! Connections as session members: SIGTERM closes them in order, SIGKILL
//! kills them.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use conn_core::{Connection, Deadline, Endpoint, Error, ErrorKind, Result};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::local::Control;
use crate::session::Inner;
use crate::{Ash, MemberId, Outcome, Signal};

type Closing = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

/// A connection that is a member of a session. Use it as the connection
/// itself (it reads, writes, and has the whole lifecycle); the session
/// acts on it when signalled:
///
/// * SIGKILL kills it at once ([`Connection::kill`]: the handle goes, the
///   peer is not told), whatever the handler is doing; every later read or
///   write fails with `ConnectionAborted`.
/// * SIGTERM closes it in order ([`Connection::close`]) at the next moment
///   its handler waits for input, so a request being answered is finished
///   first. That read then returns end-of-stream once the peer has ended
///   its side too (or the drain time passed), and the handler's loop ends
///   as it would for a peer that left. A handler that drops the connection
///   after SIGTERM still gets it closed in order, on a task of its own.
///
/// Dropping it leaves the session.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conn_core::{Connection, Deadline, mem::MemStream};
/// use signal_session::Session;
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let session = Session::create()?;
/// let (ours, mut peer) = MemStream::pair();
/// let mut conn = session.add_connection(ours, Duration::from_secs(5));
///
/// // An echo handler: it ends when a read says end-of-stream.
/// let handler = tokio::spawn(async move {
///     let mut buf = [0u8; 64];
///     loop {
///         let n = conn.read(&mut buf).await?;
///         if n == 0 { return Ok::<_, std::io::Error>(()) }
///         conn.write_all(&buf[..n]).await?;
///     }
/// });
/// peer.write_all(b"ping").await?;
/// let mut got = [0u8; 4];
/// peer.read_exact(&mut got).await?;
///
/// session.signal(libc::SIGTERM)?;             // graceful: close in order
/// assert_eq!(peer.read(&mut got).await?, 0);  // the peer reads our end...
/// peer.close(Deadline::NEVER).await?;         // ...and ends its own side
/// handler.await.unwrap()?;                    // the handler saw end-of-stream
/// # Ok(()) }
/// ```
pub struct SessionConn<C: Connection> {
    shared: Arc<Shared<C>>,
    /// The orderly close started after SIGTERM, driven by our reads.
    closing: Option<Closing>,
    drain: Duration,
    id: MemberId,
    ash: Ash,
    session: Weak<Inner>,
}

struct Shared<C> {
    slot: Mutex<Slot<C>>,
}

struct Slot<C> {
    /// `None` once killed, closing or closed.
    conn: Option<C>,
    state: State,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Open,
    /// SIGTERM arrived: close in order at the next read.
    Draining,
    /// Closed in order (or the close failed; the handle is released).
    Closed,
    /// SIGKILL arrived: the handle was killed.
    Killed,
}

impl<C> Shared<C> {
    fn lock(&self) -> MutexGuard<'_, Slot<C>> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<C: Connection> Control for Shared<C> {
    fn signal(&self, sig: Signal) -> Outcome {
        let mut slot = self.lock();
        if matches!(slot.state, State::Closed | State::Killed) {
            return Outcome::AlreadyGone;
        }
        match sig {
            Signal::NULL => return Outcome::Checked,
            Signal::KILL => {
                if let Some(conn) = slot.conn.take() {
                    conn.kill();
                }
                slot.state = State::Killed;
            }
            Signal::TERM => {
                if slot.state == State::Open {
                    slot.state = State::Draining;
                }
            }
            _ => return Outcome::Ignored,
        }
        for waker in [slot.reader.take(), slot.writer.take()]
            .into_iter()
            .flatten()
        {
            waker.wake();
        }
        Outcome::Signalled
    }
}

impl<C: Connection> SessionConn<C> {
    pub(crate) fn new(
        conn: C,
        drain: Duration,
        ash: Ash,
        session: Weak<Inner>,
        register: impl FnOnce(Arc<dyn Control>) -> MemberId,
    ) -> SessionConn<C> {
        let shared = Arc::new(Shared {
            slot: Mutex::new(Slot {
                conn: Some(conn),
                state: State::Open,
                reader: None,
                writer: None,
            }),
        });
        let id = register(shared.clone());
        SessionConn {
            shared,
            closing: None,
            drain,
            id,
            ash,
            session,
        }
    }

    /// This member's id, as [`SignalReport`](crate::SignalReport) names it.
    pub fn id(&self) -> MemberId {
        self.id
    }

    /// True once a SIGKILL to the session killed this connection.
    pub fn is_killed(&self) -> bool {
        self.shared.lock().state == State::Killed
    }

    /// True once a SIGTERM to the session asked this connection to close.
    pub fn is_draining(&self) -> bool {
        self.shared.lock().state != State::Open
    }

    fn killed(&self, op: &'static str) -> io::Error {
        Error::new(ErrorKind::ConnectionAborted)
            .during(op)
            .on(format_args!("{} of session {}", self.id, self.ash))
            .detail("killed by SIGKILL to its session")
            .into()
    }

    fn closed(&self, op: &'static str) -> io::Error {
        Error::new(ErrorKind::NotConnected)
            .during(op)
            .on(format_args!("{} of session {}", self.id, self.ash))
            .detail("closed in order after SIGTERM to its session")
            .into()
    }

    /// Drives the orderly close begun after SIGTERM.
    fn poll_closing(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(closing) = self.closing.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let result = std::task::ready!(closing.as_mut().poll(cx));
        self.closing = None;
        self.shared.lock().state = State::Closed;
        Poll::Ready(result.map_err(io::Error::from))
    }
}

impl<C: Connection> AsyncRead for SessionConn<C> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.closing.is_some() {
            return this.poll_closing(cx);
        }
        let mut slot = this.shared.lock();
        match slot.state {
            State::Killed => Poll::Ready(Err(this.killed("read"))),
            State::Closed => Poll::Ready(Ok(())),
            State::Draining => {
                let conn = slot.conn.take();
                drop(slot);
                match conn {
                    Some(conn) => {
                        this.closing = Some(Box::pin(conn.close(Deadline::after(this.drain))));
                        this.poll_closing(cx)
                    }
                    None => Poll::Ready(Ok(())),
                }
            }
            State::Open => {
                slot.reader = Some(cx.waker().clone());
                let conn = slot
                    .conn
                    .as_mut()
                    .expect("an open slot holds its connection");
                Pin::new(conn).poll_read(cx, buf)
            }
        }
    }
}

impl<C: Connection> SessionConn<C> {
    /// Runs a write-side poll on the connection, unless it is gone.
    fn poll_write_side<T>(
        &mut self,
        cx: &mut Context<'_>,
        op: &'static str,
        f: impl FnOnce(Pin<&mut C>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        let mut slot = self.shared.lock();
        match (slot.state, slot.conn.as_mut()) {
            (State::Killed, _) => Poll::Ready(Err(self.killed(op))),
            (_, None) => Poll::Ready(Err(self.closed(op))),
            (_, Some(conn)) => {
                let polled = f(Pin::new(conn), cx);
                slot.writer = Some(cx.waker().clone());
                polled
            }
        }
    }
}

impl<C: Connection> AsyncWrite for SessionConn<C> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_write_side(cx, "write", |c, cx| c.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut()
            .poll_write_side(cx, "flush", |c, cx| c.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut()
            .poll_write_side(cx, "shutdown", |c, cx| c.poll_shutdown(cx))
    }
}

impl<C: Connection> Connection for SessionConn<C> {
    async fn done(&mut self, deadline: Deadline) -> Result<()> {
        // Borrow the connection out of the slot for the call; a SIGKILL
        // meanwhile is carried out when it comes back.
        let mut conn = {
            let mut slot = self.shared.lock();
            match (slot.state, slot.conn.take()) {
                (_, Some(conn)) => conn,
                (State::Killed, None) => return Err(self.killed("done").into()),
                (_, None) => return Err(self.closed("done").into()),
            }
        };
        let result = conn.done(deadline).await;
        let mut slot = self.shared.lock();
        if slot.state == State::Killed {
            conn.kill();
        } else {
            slot.conn = Some(conn);
        }
        result
    }

    async fn close(mut self, deadline: Deadline) -> Result<()> {
        if let Some(closing) = self.closing.take() {
            self.shared.lock().state = State::Closed;
            return closing.await;
        }
        let conn = {
            let mut slot = self.shared.lock();
            let conn = slot.conn.take();
            if conn.is_some() {
                slot.state = State::Closed;
            }
            conn
        };
        match conn {
            Some(conn) => conn.close(deadline).await,
            None if self.is_killed() => Err(self.killed("close").into()),
            None => Ok(()),
        }
    }

    fn kill(self) {
        let mut slot = self.shared.lock();
        if let Some(conn) = slot.conn.take() {
            conn.kill();
        }
        slot.state = State::Killed;
    }

    fn peer_endpoint(&self) -> Option<Endpoint> {
        self.shared.lock().conn.as_ref()?.peer_endpoint()
    }
}

impl<C: Connection> Drop for SessionConn<C> {
    fn drop(&mut self) {
        if let Some(session) = self.session.upgrade() {
            session.remove_local(self.id);
        }
        // Closing in order was asked for: finish it even though the handler
        // let go, when there is a runtime to do it on.
        let mut slot = self.shared.lock();
        let closing = match (slot.state, slot.conn.take(), self.closing.take()) {
            (_, _, Some(closing)) => Some(closing),
            (State::Draining, Some(conn), None) => {
                Some(Box::pin(conn.close(Deadline::after(self.drain))) as Closing)
            }
            _ => None,
        };
        slot.state = State::Closed;
        drop(slot);
        if let (Some(closing), Ok(rt)) = (closing, tokio::runtime::Handle::try_current()) {
            rt.spawn(async move {
                if let Err(e) = closing.await {
                    tracing::debug!("closing a session connection after SIGTERM: {e}");
                }
            });
        }
    }
}

impl<C: Connection> fmt::Debug for SessionConn<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConn")
            .field("id", &self.id)
            .field("session", &self.ash)
            .field("state", &self.shared.lock().state)
            .finish()
    }
}
