use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use conn_core::lifecycle::{close_in_order, half_close};
use conn_core::sys::{LazyFd, Role, SocketKind};
use conn_core::{Connection, Deadline, Endpoint, Error, ErrorKind, PeerCred, Result};
use rustix::io::Errno;
use rustix::net::{AddressFamily, Shutdown, SocketFlags, SocketType};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::addr::{IpcAddr, Unnamed};

/// One end of a Unix-domain stream connection, with connkit's lifecycle.
///
/// ```
/// use conn_core::{Connection, Deadline};
/// use conn_ipc::IpcStream;
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let (mut a, mut b) = IpcStream::pair()?;
/// a.write_all(b"ping").await?;
/// a.done(Deadline::NEVER).await?;            // b reads end-of-stream...
/// let mut got = Vec::new();
/// b.read_to_end(&mut got).await?;
/// assert_eq!(got, b"ping");
/// b.write_all(b"pong").await?;               // ...and a still receives.
/// b.close(Deadline::NEVER).await?;
/// let mut answer = Vec::new();
/// a.read_to_end(&mut answer).await?;
/// assert_eq!(answer, b"pong");
/// a.close(Deadline::NEVER).await?;
/// # Ok(()) }
/// ```
///
/// * [`done`](Connection::done) is `shutdown(SHUT_WR)`: the peer reads
///   end-of-stream, this side goes on receiving.
/// * [`close`](Connection::close) sends this side's end, reads and drops
///   inbound data until the peer's end, then releases the descriptor; it is
///   released whatever `close` returns: `TimedOut` when the peer did not end
///   within the deadline, `ConnectionReset` when it vanished (on `AF_UNIX`,
///   a peer that closes with unread data in its receive queue resets).
/// * [`kill`](Connection::kill) and drop close this process's descriptor and
///   nothing else; neither ever calls `shutdown(2)`, so after `fork` the
///   other process's copy stays fully usable.
///
/// A stream joins tokio's reactor only when an operation would block (see
/// [`IpcListener::accept_into`](crate::IpcListener::accept_into)); until then
/// it needs no runtime at all.
pub struct IpcStream {
    io: LazyFd,
    /// The address the connection goes through, when it has one.
    endpoint: Option<Endpoint>,
    /// True when this side dialed `endpoint` (so it names the peer).
    dialed: bool,
}

/// How long `connect` first waits when the listener's backlog is full; the
/// pause doubles up to [`CONNECT_RETRY_MAX`].
const CONNECT_RETRY_FIRST: Duration = Duration::from_millis(1);
const CONNECT_RETRY_MAX: Duration = Duration::from_millis(50);

impl IpcStream {
    /// Connects to the listener at `path`: a filesystem path or a Linux
    /// abstract name written `@name`, with or without `ipc://` (libdill
    /// `ipc_connect`).
    ///
    /// `ConnectionRefused` when nobody listens there, `NotFound` when the
    /// file does not exist. When the listener's backlog is full the kernel
    /// refuses at once (`EAGAIN`); `connect` then retries with a growing
    /// pause (1 ms doubling to 50 ms) until `deadline`, then `TimedOut`.
    pub async fn connect(path: impl AsRef<Path>, deadline: Deadline) -> Result<IpcStream> {
        let (addr, endpoint) = IpcAddr::parse(path.as_ref(), "connect")?;
        let sockaddr = addr
            .socket_addr()
            .map_err(|e| Error::io(e, "connect", &endpoint))?;
        let fd = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| Error::io(e.into(), "connect", &endpoint))?;
        let mut pause = CONNECT_RETRY_FIRST;
        loop {
            match rustix::net::connect(&fd, &sockaddr) {
                Ok(()) => break,
                Err(Errno::INTR) => continue,
                Err(Errno::AGAIN) => {
                    let full = || {
                        Error::new(ErrorKind::TimedOut)
                            .during("connect")
                            .on(&endpoint)
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
                Err(e) => return Err(Error::io(e.into(), "connect", &endpoint)),
            }
        }
        Ok(IpcStream {
            io: LazyFd::new(fd),
            endpoint: Some(endpoint),
            dialed: true,
        })
    }

    /// A connected pair with no listener (`socketpair(2)`, libdill
    /// `ipc_pair`).
    pub fn pair() -> Result<(IpcStream, IpcStream)> {
        let (a, b) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| Error::from(io::Error::from(e)).during("socketpair"))?;
        Ok((IpcStream::unnamed(a), IpcStream::unnamed(b)))
    }

    /// Adopts a connected Unix-domain stream socket, e.g. one inherited
    /// across `fork`/`exec` (libdill `ipc_fromfd`). The descriptor is made
    /// non-blocking.
    ///
    /// `NotSocket` when `fd` is not a socket; `InvalidType` when it is not
    /// a Unix-domain stream socket, or is a listening one (use
    /// [`IpcListener::from_fd`](crate::IpcListener::from_fd) for those).
    pub fn from_fd(fd: OwnedFd) -> Result<IpcStream> {
        SocketKind::UNIX.adopt(
            fd.as_fd(),
            Role::Connection,
            "adopt connection",
            Unnamed(fd.as_raw_fd()),
        )?;
        let (endpoint, dialed) = match IpcAddr::of_socket(fd.as_fd(), true) {
            Some(peer) => (peer.endpoint(), true),
            None => (
                IpcAddr::of_socket(fd.as_fd(), false).and_then(|a| a.endpoint()),
                false,
            ),
        };
        Ok(IpcStream {
            io: LazyFd::new(fd),
            endpoint,
            dialed,
        })
    }

    pub(crate) fn accepted(fd: OwnedFd, endpoint: Endpoint) -> IpcStream {
        IpcStream {
            io: LazyFd::new(fd),
            endpoint: Some(endpoint),
            dialed: false,
        }
    }

    fn unnamed(fd: OwnedFd) -> IpcStream {
        IpcStream {
            io: LazyFd::new(fd),
            endpoint: None,
            dialed: false,
        }
    }

    /// The peer's process, user and group ids (`SO_PEERCRED`).
    pub fn peer_cred(&self) -> Result<PeerCred> {
        let cred = rustix::net::sockopt::socket_peercred(self.as_fd())
            .map_err(|e| Error::io(e.into(), "peer credentials", self.target()))?;
        Ok(PeerCred {
            pid: rustix::process::Pid::as_raw(Some(cred.pid)).unsigned_abs(),
            uid: cred.uid.as_raw(),
            gid: cred.gid.as_raw(),
        })
    }

    /// True once the stream has had to wait and so joined tokio's reactor
    /// (which costs tokio one allocation).
    pub fn is_registered(&self) -> bool {
        self.io.is_registered()
    }

    /// What errors on this stream name: its address, or its descriptor.
    fn target(&self) -> Target<'_> {
        match &self.endpoint {
            Some(ep) => Target::Endpoint(ep),
            None => Target::Unnamed(Unnamed(self.as_raw_fd())),
        }
    }
}

enum Target<'a> {
    Endpoint(&'a Endpoint),
    Unnamed(Unnamed),
}

impl fmt::Display for Target<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Endpoint(ep) => ep.fmt(f),
            Target::Unnamed(u) => u.fmt(f),
        }
    }
}

impl Connection for IpcStream {
    fn peer_cred(&self) -> Option<PeerCred> {
        IpcStream::peer_cred(self).ok()
    }

    async fn done(&mut self, deadline: Deadline) -> Result<()> {
        half_close(self, deadline)
            .await
            .map_err(|e| e.during("done").on(self.target()))
    }

    async fn close(mut self, deadline: Deadline) -> Result<()> {
        let result = close_in_order(&mut self, deadline).await;
        // The descriptor goes with `self`, whatever the handshake gave.
        result.map_err(|e| e.during("close").on(self.target()))
    }

    fn kill(self) {}

    fn peer_endpoint(&self) -> Option<Endpoint> {
        if self.dialed {
            self.endpoint.clone()
        } else {
            None
        }
    }
}

impl AsyncRead for IpcStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.get_mut().io.poll_read(cx, buf)
    }
}

impl AsyncWrite for IpcStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // MSG_NOSIGNAL: a vanished peer is EPIPE, never SIGPIPE.
        self.get_mut().io.poll_send(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
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
        // shutdown(2) never blocks on AF_UNIX.
        Poll::Ready(self.io.shutdown(Shutdown::Write))
    }
}

impl AsFd for IpcStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io
            .fd()
            .expect("an IpcStream always holds its descriptor")
    }
}

impl AsRawFd for IpcStream {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl fmt::Debug for IpcStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IpcStream")
            .field("fd", &self.as_raw_fd())
            .field("endpoint", &self.endpoint)
            .field("registered", &self.is_registered())
            .finish()
    }
}
