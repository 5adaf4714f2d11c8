//! `UtcpStream`: one connection of a [`Stack`], with connkit's lifecycle.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use conn_core::{Connection, Deadline, Endpoint, Error, ErrorKind, Result};
use smoltcp::socket::tcp::{self, RecvError, State};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::conns::{Key, Owner};
use crate::demux::Flow;
use crate::id::{Entry, SockId};
use crate::stack::{Inner, Stack, bad_handle, endpoint_of};

/// One end of a userspace TCP connection.
///
/// ```
/// use conn_core::{Connection, Deadline, ErrorKind, Listener};
/// use conn_utcp::{MemLink, Stack, UtcpListener, UtcpStream};
/// use tokio::io::AsyncReadExt;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let (a, b) = MemLink::pair();
/// let server = Stack::builder(a).address("10.5.0.1/24".parse().unwrap()).build()?;
/// let client = Stack::builder(b).address("10.5.0.2/24".parse().unwrap()).build()?;
/// let mut listener = UtcpListener::bind(&server, 9, 1)?;
/// let c = UtcpStream::connect(&client, "10.5.0.1:9".parse().unwrap(), Deadline::NEVER).await?;
/// let mut s = listener.accept(Deadline::NEVER).await?;
///
/// c.kill();                                      // a reset (mTCP mtcp_abort)
/// let err = s.read(&mut [0; 8]).await.unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
/// assert_eq!(s.close(Deadline::NOW).await.unwrap_err().kind(), ErrorKind::NotConnected);
/// # Ok(()) }
/// ```
///
/// * [`done`](Connection::done) sends a FIN; the peer reads end-of-stream,
///   this side goes on receiving.
/// * [`close`](Connection::close) sends the FIN, reads and drops inbound
///   data until the peer's FIN or the deadline, and releases the socket
///   (mTCP `mtcp_close`); on `TimedOut` the connection is reset. The side
///   that closed first keeps the smoltcp socket in TIME-WAIT after its id
///   is freed.
/// * [`kill`](Connection::kill) and drop reset the connection (mTCP
///   `mtcp_abort`): no other process holds a copy of a userspace socket, so
///   releasing it is ending it.
pub struct UtcpStream {
    stack: Stack,
    id: SockId,
    generation: u32,
    local: SocketAddr,
    peer: SocketAddr,
    /// False once `close`/`kill` released the id, so drop does nothing.
    live: bool,
}

impl fmt::Debug for UtcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UtcpStream({} {} -> {})", self.id, self.local, self.peer)
    }
}

fn socket_addr(endpoint: Option<smoltcp::wire::IpEndpoint>) -> SocketAddr {
    match endpoint {
        Some(e) => SocketAddr::new(IpAddr::from(e.addr), e.port),
        None => SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0),
    }
}

/// States in which the peer's FIN has arrived.
fn peer_ended(state: State) -> bool {
    matches!(
        state,
        State::CloseWait | State::LastAck | State::Closing | State::TimeWait
    )
}

impl UtcpStream {
    /// Wraps the established socket in slot `index` (of `generation`).
    pub(crate) fn new(stack: &Stack, inner: &mut Inner, index: u32, generation: u32) -> Self {
        let Some(Entry::Stream(key)) = inner.table.get_mut(index, Some(generation)) else {
            unreachable!("a fresh stream slot");
        };
        let key = *key;
        let socket = inner.conns.socket(key);
        UtcpStream {
            stack: stack.clone(),
            id: stack.id(index),
            generation,
            local: socket_addr(socket.local_endpoint()),
            peer: socket_addr(socket.remote_endpoint()),
            live: true,
        }
    }

    /// Connects from `stack` to `peer` until `deadline` (an ephemeral local
    /// port). `ConnectionRefused` when the peer resets the SYN,
    /// `TimedOut` when no answer came in time (the attempt is abandoned).
    /// A `peer` of either family needs a stack with an address of that
    /// family ([`StackBuilder::address`](crate::StackBuilder::address),
    /// [`StackBuilder::address_v6`](crate::StackBuilder::address_v6)):
    /// `AddrNotAvailable` otherwise.
    pub async fn connect(stack: &Stack, peer: SocketAddr, deadline: Deadline) -> Result<Self> {
        let step = conn_core::lifecycle_span!("connect", "utcp", endpoint_of(peer));
        let connected = UtcpStream::connect_inner(stack, peer, deadline).await;
        step.end(&connected);
        connected
    }

    async fn connect_inner(stack: &Stack, peer: SocketAddr, deadline: Deadline) -> Result<Self> {
        let target = endpoint_of(peer);
        let (has_family, family) = match peer {
            SocketAddr::V4(_) => (stack.address().is_some(), "IPv4"),
            SocketAddr::V6(_) => (stack.address_v6().is_some(), "IPv6"),
        };
        if !has_family {
            return Err(Error::new(ErrorKind::AddrNotAvailable)
                .during("connect")
                .on(&target)
                .detail(format!("the stack has no {family} address to dial from")));
        }
        let (index, generation) = {
            let mut guard = stack.lock();
            let inner = &mut *guard;
            if let Some(e) = inner.device_gone() {
                return Err(e.during("connect").on(&target));
            }
            let port = inner.ephemeral_port(Some(peer)).ok_or_else(|| {
                Error::new(ErrorKind::AddrNotAvailable)
                    .during("connect")
                    .on(&target)
                    .detail("no free ephemeral port")
            })?;
            let flow = Flow {
                peer: peer.ip(),
                peer_port: peer.port(),
                port,
            };
            let key = inner.conns.open(Owner::Stream, flow, true);
            let socket = inner.conns.socket(key);
            if let Err(e) = socket.connect(inner.iface.context(), peer, port) {
                inner.conns.recycle(key);
                return Err(Error::new(ErrorKind::InvalidType)
                    .during("connect")
                    .on(&target)
                    .detail(e.to_string()));
            }
            inner.conns.touch(key);
            inner.table.insert(Entry::Stream(key))
        };
        stack.kick();
        let id = stack.id(index);
        let established = poll_fn(|cx| {
            let mut inner = stack.lock();
            let Some(Entry::Stream(key)) = inner.table.get_mut(index, Some(generation)) else {
                return Poll::Ready(Err(bad_handle(id, "connect")));
            };
            let key = *key;
            let socket = inner.conns.socket(key);
            match socket.state() {
                State::SynSent | State::SynReceived => {
                    socket.register_recv_waker(cx.waker());
                    Poll::Pending
                }
                State::Closed => Poll::Ready(Err(Error::new(ErrorKind::ConnectionRefused))),
                _ => Poll::Ready(Ok(UtcpStream::new(stack, &mut inner, index, generation))),
            }
        });
        match deadline.run(established).await.and_then(|r| r) {
            Ok(stream) => Ok(stream),
            Err(e) => {
                // Give the id back; an attempt still under way is reset.
                let mut inner = stack.lock();
                if inner.table.get_mut(index, Some(generation)).is_some() {
                    inner.abort_stream(index);
                }
                drop(inner);
                stack.kick();
                Err(e.during("connect").on(&target))
            }
        }
    }

    /// This connection's socket id.
    pub fn id(&self) -> SockId {
        self.id
    }

    /// The stack this connection belongs to.
    pub fn stack(&self) -> &Stack {
        &self.stack
    }

    /// The local address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The connection's TCP state.
    pub fn state(&self) -> Result<State> {
        self.with_socket("state", false, |s| s.state())
    }

    /// Ends the connection at once with a reset (mTCP `mtcp_abort`); the
    /// same as [`kill`](Connection::kill).
    pub fn abort(mut self) {
        self.release_with_reset();
    }

    fn release_with_reset(&mut self) {
        if !std::mem::take(&mut self.live) {
            return;
        }
        let mut inner = self.stack.lock();
        if inner
            .table
            .get_mut(self.id.index(), Some(self.generation))
            .is_some()
        {
            inner.abort_stream(self.id.index());
        }
        drop(inner);
        self.stack.kick();
    }

    /// Runs `f` on this connection's socket; `touch`: it may have given
    /// the socket something to send.
    fn with_socket<R>(
        &self,
        op: &'static str,
        touch: bool,
        f: impl FnOnce(&mut tcp::Socket) -> R,
    ) -> Result<R> {
        let mut inner = self.stack.lock();
        match inner.table.get_mut(self.id.index(), Some(self.generation)) {
            Some(Entry::Stream(key)) => {
                let key = *key;
                let r = f(inner.conns.socket(key));
                if touch {
                    inner.conns.touch(key);
                }
                Ok(r)
            }
            _ => Err(bad_handle(self.id, op)),
        }
    }

    fn io_error(&self, kind: ErrorKind, op: &'static str) -> io::Error {
        Error::new(kind).during(op).on(self.id).into()
    }
}

/// mTCP `mtcp_close` on an established connection: FIN, drain until the
/// peer's FIN or `deadline`, release. Shared by [`UtcpStream`]'s `close`
/// and [`Stack::close`].
pub(crate) async fn close_conn(
    stack: &Stack,
    id: SockId,
    generation: Option<u32>,
    key: Key,
    deadline: Deadline,
) -> Result<()> {
    let index = id.index();
    {
        let mut inner = stack.lock();
        let conn = inner
            .conns
            .get(key)
            .expect("a stream's connection is in the table");
        if conn.observe() == State::Closed {
            // Both FINs went and were acknowledged before this call (the
            // peer closed first, and our FIN was answered): that is the
            // orderly close, already done.
            let in_order = conn.ended_in_order();
            inner.table.remove(index);
            inner.release(key);
            return match in_order {
                true => Ok(()),
                false => Err(Error::new(ErrorKind::NotConnected)
                    .during("close")
                    .on(id)
                    .detail("the connection had already ended (reset or aborted)")),
            };
        }
        let socket = inner.conns.socket(key);
        socket.close();
        inner.conns.touch(key);
    }
    stack.kick();
    let mut saw_fin = false;
    let drained = poll_fn(|cx| {
        let mut inner = stack.lock();
        if inner.table.get_mut(index, generation).is_none() {
            return Poll::Ready(Err(bad_handle(id, "close")));
        }
        let socket = inner.conns.socket(key);
        let mut read = false;
        // Drop whatever the peer still sends; it must not hold up its FIN.
        while let Ok(n) = socket.recv(|b| (b.len(), b.len())) {
            if n == 0 {
                break;
            }
            read = true;
        }
        let state = socket.state();
        saw_fin |= peer_ended(state);
        let result = if saw_fin {
            Poll::Ready(Ok(()))
        } else if state == State::Closed {
            Poll::Ready(Err(Error::new(ErrorKind::ConnectionReset)))
        } else {
            socket.register_recv_waker(cx.waker());
            Poll::Pending
        };
        if read {
            inner.conns.touch(key); // the window opened
            drop(inner);
            stack.kick();
        }
        result
    });
    let result = deadline.run(drained).await.and_then(|r| r);
    let mut inner = stack.lock();
    if inner.table.get_mut(index, generation).is_some() {
        inner.table.remove(index);
        if result.is_err() {
            // Released on failure too; a peer that never ended gets a reset.
            inner.conns.socket(key).abort();
        }
        inner.release(key);
    }
    drop(inner);
    stack.kick();
    result.map_err(|e| match e.kind() {
        ErrorKind::TimedOut => e
            .during("close")
            .on(id)
            .detail("the peer did not end its side in time"),
        _ => e.during("close").on(id),
    })
}

impl AsyncRead for UtcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let mut inner = this.stack.lock();
        let Some(Entry::Stream(key)) = inner.table.get_mut(this.id.index(), Some(this.generation))
        else {
            return Poll::Ready(Err(this.io_error(ErrorKind::BadHandle, "read")));
        };
        let key = *key;
        let socket = inner.conns.socket(key);
        // A nearly shut window must be reopened by a segment from the driver.
        let window_was_low =
            socket.recv_capacity() - socket.recv_queue() < socket.recv_capacity() / 2;
        match socket.recv_slice(buf.initialize_unfilled()) {
            Ok(0) => {
                socket.register_recv_waker(cx.waker());
                Poll::Pending
            }
            Ok(n) => {
                buf.advance(n);
                if window_was_low {
                    inner.conns.touch(key);
                    drop(inner);
                    this.stack.kick();
                }
                Poll::Ready(Ok(()))
            }
            Err(RecvError::Finished) => Poll::Ready(Ok(())),
            Err(RecvError::InvalidState) => {
                let kind = if socket.state() == State::Closed {
                    ErrorKind::ConnectionReset
                } else {
                    ErrorKind::NotConnected
                };
                Poll::Ready(Err(this.io_error(kind, "read")))
            }
        }
    }
}

impl AsyncWrite for UtcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut inner = this.stack.lock();
        let Some(Entry::Stream(key)) = inner.table.get_mut(this.id.index(), Some(this.generation))
        else {
            return Poll::Ready(Err(this.io_error(ErrorKind::BadHandle, "write")));
        };
        let key = *key;
        let socket = inner.conns.socket(key);
        if !socket.may_send() {
            let kind = if socket.state() == State::Closed {
                ErrorKind::ConnectionReset
            } else {
                ErrorKind::BrokenPipe
            };
            return Poll::Ready(Err(this.io_error(kind, "write")));
        }
        match socket.send_slice(data) {
            Ok(0) if !data.is_empty() => {
                socket.register_send_waker(cx.waker());
                Poll::Pending
            }
            Ok(n) => {
                inner.conns.touch(key);
                drop(inner);
                this.stack.kick();
                Poll::Ready(Ok(n))
            }
            Err(_) => Poll::Ready(Err(this.io_error(ErrorKind::BrokenPipe, "write"))),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Bytes in the socket's buffer are the stack's to send, as with a
        // kernel socket.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.with_socket("done", true, |s| {
            let state = s.state();
            s.close();
            state
        }) {
            Ok(State::Closed) => Poll::Ready(Err(this.io_error(ErrorKind::NotConnected, "done"))),
            Ok(_) => {
                this.stack.kick();
                Poll::Ready(Ok(()))
            }
            Err(e) => Poll::Ready(Err(e.into())),
        }
    }
}

impl UtcpStream {
    /// `close`, without its span.
    async fn close_released(self, deadline: Deadline) -> Result<()> {
        // `live` stays set: should this future be dropped half-way, drop
        // resets what is left; once released, drop finds nothing to do.
        let key = {
            let mut inner = self.stack.lock();
            match inner.table.get_mut(self.id.index(), Some(self.generation)) {
                Some(Entry::Stream(key)) => *key,
                _ => return Err(bad_handle(self.id, "close")),
            }
        };
        close_conn(&self.stack, self.id, Some(self.generation), key, deadline).await
    }
}

impl Connection for UtcpStream {
    async fn done(&mut self, deadline: Deadline) -> Result<()> {
        let step = conn_core::lifecycle_span!("done", "utcp", self.id);
        let result = conn_core::lifecycle::half_close(self, deadline)
            .await
            .map_err(|e| e.during("done").on(self.id));
        step.end(&result);
        result
    }

    async fn close(self, deadline: Deadline) -> Result<()> {
        let step = conn_core::lifecycle_span!("close", "utcp", self.id);
        let result = self.close_released(deadline).await;
        step.end(&result);
        result
    }

    fn kill(mut self) {
        conn_core::lifecycle_span!("kill", "utcp", self.id).end(&Ok(()));
        self.release_with_reset();
    }

    fn peer_endpoint(&self) -> Option<Endpoint> {
        Some(endpoint_of(self.peer))
    }

    fn peer_addr(&self) -> Option<conn_core::PeerAddr> {
        Some(conn_core::PeerAddr {
            scheme: "utcp",
            addr: self.peer,
        })
    }
}

impl Drop for UtcpStream {
    fn drop(&mut self) {
        self.release_with_reset();
    }
}
