use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use conn_core::socket::SocketStream;
use conn_core::{Deadline, Error, PeerCred, Result};
use rustix::net::{AddressFamily, SocketFlags, SocketType};

use crate::addr::IpcAddr;
use crate::family::{Ipc, IpcPeer, peer_cred};

conn_core::socket_stream! {
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
    /// * [`done`](conn_core::Connection::done) is `shutdown(SHUT_WR)`: the
    ///   peer reads end-of-stream, this side goes on receiving.
    /// * [`close`](conn_core::Connection::close) sends this side's end,
    ///   reads and drops inbound data until the peer's end, then releases
    ///   the descriptor; it is released whatever `close` returns: `TimedOut`
    ///   when the peer did not end within the deadline, `ConnectionReset`
    ///   when it vanished (on `AF_UNIX`, a peer that closes with unread data
    ///   in its receive queue resets).
    /// * [`kill`](conn_core::Connection::kill) and drop close this process's
    ///   descriptor and nothing else; neither ever calls `shutdown(2)`, so
    ///   after `fork` the other process's copy stays fully usable.
    ///
    /// The stream is conn-core's
    /// [`SocketStream`](conn_core::socket::SocketStream) for Unix-domain
    /// sockets: it joins tokio's reactor only when an operation would
    /// block; until then it needs no runtime at all.
    pub struct IpcStream(Ipc);
}

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
        let fail = |e: Error| e.during("connect").on(&endpoint);
        let sockaddr = addr.socket_addr().map_err(|e| fail(e.into()))?;
        let fd = new_socket().map_err(|e| fail(e.into()))?;
        let peer = IpcPeer {
            endpoint: Some(endpoint.clone()),
            dialed: true,
        };
        SocketStream::connect(fd, &sockaddr, peer, deadline)
            .await
            .map(IpcStream)
            .map_err(fail)
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
        let unnamed = |fd| {
            let peer = IpcPeer {
                endpoint: None,
                dialed: false,
            };
            IpcStream(SocketStream::new(fd, peer))
        };
        Ok((unnamed(a), unnamed(b)))
    }

    /// Adopts a connected Unix-domain stream socket, e.g. one inherited
    /// across `fork`/`exec` (libdill `ipc_fromfd`). The descriptor is made
    /// non-blocking.
    ///
    /// `NotSocket` when `fd` is not a socket; `InvalidType` when it is not
    /// a Unix-domain stream socket, or is a listening one (use
    /// [`IpcListener::from_fd`](crate::IpcListener::from_fd) for those).
    pub fn from_fd(fd: OwnedFd) -> Result<IpcStream> {
        SocketStream::from_fd(fd).map(IpcStream)
    }

    /// The peer's process, user and group ids (`SO_PEERCRED`).
    pub fn peer_cred(&self) -> Result<PeerCred> {
        peer_cred(self.as_fd()).map_err(|e| Error::io(e, "peer credentials", self.0.target()))
    }
}

/// A fresh non-blocking, close-on-exec Unix-domain stream socket.
pub(crate) fn new_socket() -> io::Result<OwnedFd> {
    Ok(rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )?)
}
