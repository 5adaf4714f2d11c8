//! The connected socket every kernel-socket transport's stream wraps.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use rustix::io::Errno;
use rustix::net::addr::SocketAddrArg;
use rustix::net::{Shutdown, sockopt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::Family;
use crate::lifecycle::{close_in_order, half_close};
use crate::sys::{LazyFd, Role, Wait};
use crate::{Connection, Deadline, Endpoint, Error, ErrorKind, PeerAddr, PeerCred, Result};

/// How long [`SocketStream::connect`] first waits when the listener's
/// backlog is full (a Unix-domain `EAGAIN`); the pause doubles up to
/// [`CONNECT_RETRY_MAX`].
const CONNECT_RETRY_FIRST: Duration = Duration::from_millis(1);
const CONNECT_RETRY_MAX: Duration = Duration::from_millis(50);

/// One connected stream socket of family `F`, with connkit's lifecycle.
///
/// * [`done`](Connection::done) is `shutdown(SHUT_WR)`: the peer reads
///   end-of-stream, this side goes on receiving.
/// * [`close`](Connection::close) sends this side's end, reads and drops
///   inbound data until the peer's end, then releases the descriptor,
///   whatever it returns: `TimedOut` when the peer did not end within the
///   deadline, `ConnectionReset` when it vanished.
/// * [`kill`](Connection::kill) and drop close this process's descriptor
///   and nothing else: no `shutdown(2)`, so after `fork` another process's
///   copy stays fully usable.
///
/// Writes go out with `MSG_NOSIGNAL` (a vanished peer is `EPIPE`, never
/// `SIGPIPE`); vectored writes are one `sendmsg(2)`. The descriptor joins
/// tokio's reactor only when a call would block, so until then the stream
/// needs no runtime at all.
pub struct SocketStream<F: Family> {
    io: LazyFd,
    peer: F::Peer,
}

impl<F: Family> SocketStream<F> {
    /// Wraps the connected, non-blocking socket `fd`, whose peer is `peer`.
    pub fn new(fd: OwnedFd, peer: F::Peer) -> SocketStream<F> {
        SocketStream {
            io: LazyFd::new(fd),
            peer,
        }
    }

    /// Connects `fd`, a fresh non-blocking socket of this family, to `addr`
    /// until `deadline`; the stream's peer is `peer`.
    ///
    /// A connection the kernel completes later (`EINPROGRESS`) is waited
    /// for until `deadline`. When the listener's backlog is full the kernel
    /// refuses at once (`EAGAIN`, on Unix-domain sockets); the connect is
    /// then retried with a growing pause (1 ms doubling to 50 ms) until
    /// `deadline`, then `TimedOut`. Errors carry no operation or target;
    /// the caller names them.
    pub async fn connect(
        fd: OwnedFd,
        addr: &impl SocketAddrArg,
        peer: F::Peer,
        deadline: Deadline,
    ) -> Result<SocketStream<F>> {
        let step = crate::lifecycle_span!("connect", F::SCHEME, F::target(&peer, fd.as_raw_fd()));
        let connected = Self::connect_inner(fd, addr, peer, deadline).await;
        step.end(&connected);
        connected
    }

    async fn connect_inner(
        fd: OwnedFd,
        addr: &impl SocketAddrArg,
        peer: F::Peer,
        deadline: Deadline,
    ) -> Result<SocketStream<F>> {
        let mut io = LazyFd::new(fd);
        let mut pause = CONNECT_RETRY_FIRST;
        loop {
            match io.with_fd(|fd| Ok(rustix::net::connect(fd, addr)?)) {
                Ok(()) => break,
                Err(e) => match Errno::from_io_error(&e) {
                    // EINTR: the connection goes on being established, as
                    // with EINPROGRESS.
                    Some(Errno::INPROGRESS | Errno::INTR) => {
                        deadline
                            .run(std::future::poll_fn(|cx| {
                                io.poll_io(cx, Wait::Write, connect_finished)
                            }))
                            .await??;
                        break;
                    }
                    Some(Errno::AGAIN) => {
                        let full = || {
                            Error::new(ErrorKind::TimedOut)
                                .detail("the listener's backlog stayed full")
                        };
                        if deadline.is_expired() {
                            return Err(full());
                        }
                        deadline
                            .run(tokio::time::sleep(pause))
                            .await
                            .map_err(|_| full())?;
                        pause = (pause * 2).min(CONNECT_RETRY_MAX);
                    }
                    _ => return Err(e.into()),
                },
            }
        }
        Ok(SocketStream { io, peer })
    }

    /// Adopts a connected stream socket of this family, e.g. one inherited
    /// across `fork`/`exec`, and makes it non-blocking.
    ///
    /// `NotSocket` when `fd` is not a socket; `InvalidType` when it is of
    /// another family or type, or is listening.
    pub fn from_fd(fd: OwnedFd) -> Result<SocketStream<F>> {
        let raw = fd.as_raw_fd();
        F::KIND.adopt(
            fd.as_fd(),
            Role::Connection,
            "adopt connection",
            F::unnamed(raw),
        )?;
        let peer = F::adopted_peer(fd.as_fd())
            .map_err(|e| e.during("adopt connection").on(F::unnamed(raw)))?;
        Ok(SocketStream::new(fd, peer))
    }

    /// What this stream knows of its peer.
    pub fn peer(&self) -> &F::Peer {
        &self.peer
    }

    /// What errors on this stream name: its peer, or its descriptor.
    pub fn target(&self) -> impl fmt::Display + '_ {
        F::target(&self.peer, self.as_raw_fd())
    }

    /// True once the stream has had to wait and so joined tokio's reactor
    /// (which costs tokio one allocation).
    pub fn is_registered(&self) -> bool {
        self.io.is_registered()
    }
}

/// Whether a non-blocking connect has finished: its error (`SO_ERROR`),
/// `Ok` once connected, `WouldBlock` while in progress.
fn connect_finished(fd: BorrowedFd<'_>) -> io::Result<()> {
    sockopt::socket_error(fd)??;
    match rustix::net::getpeername(fd) {
        Ok(_) => Ok(()),
        Err(Errno::NOTCONN) => Err(io::ErrorKind::WouldBlock.into()),
        Err(e) => Err(e.into()),
    }
}

impl<F: Family> Connection for SocketStream<F> {
    async fn done(&mut self, deadline: Deadline) -> Result<()> {
        let step = crate::lifecycle_span!("done", F::SCHEME, self.target());
        let result = half_close(self, deadline)
            .await
            .map_err(|e| e.during("done").on(self.target()));
        step.end(&result);
        result
    }

    async fn close(mut self, deadline: Deadline) -> Result<()> {
        let step = crate::lifecycle_span!("close", F::SCHEME, self.target());
        let result = close_in_order(&mut self, deadline).await;
        // The descriptor goes with `self`, whatever the handshake gave.
        let result = result.map_err(|e| e.during("close").on(self.target()));
        step.end(&result);
        result
    }

    fn kill(self) {
        crate::lifecycle_span!("kill", F::SCHEME, self.target()).end(&Ok(()));
    }

    fn peer_endpoint(&self) -> Option<Endpoint> {
        F::peer_endpoint(&self.peer)
    }

    fn peer_addr(&self) -> Option<PeerAddr> {
        F::peer_addr(&self.peer)
    }

    fn peer_cred(&self) -> Option<PeerCred> {
        F::peer_cred(self.as_fd())
    }
}

impl<F: Family> AsyncRead for SocketStream<F> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.get_mut().io.poll_read(cx, buf)
    }
}

impl<F: Family> AsyncWrite for SocketStream<F> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().io.poll_send(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().io.poll_send_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // shutdown(2) never blocks on Unix-domain or TCP sockets.
        Poll::Ready(self.io.shutdown(Shutdown::Write))
    }
}

impl<F: Family> AsFd for SocketStream<F> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io
            .fd()
            .expect("a socket stream always holds its descriptor")
    }
}

impl<F: Family> AsRawFd for SocketStream<F> {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl<F: Family> fmt::Debug for SocketStream<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketStream")
            .field("fd", &self.as_raw_fd())
            .field("peer", &self.peer)
            .field("registered", &self.is_registered())
            .finish()
    }
}
