use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use conn_core::socket::SocketStream;
use conn_core::{Deadline, Error, Result};
use rustix::net::{AddressFamily, SocketFlags, SocketType, ipproto, sockopt};

use crate::ToTcpAddr;
use crate::addr::{Target, Tcp, of_socket};
use crate::family::Tcp as TcpFamily;
use crate::listener::{no_address, resolve_error};

conn_core::socket_stream! {
/// One end of a TCP connection, with connkit's lifecycle.
///
/// ```
/// use conn_core::{Connection, Deadline};
/// use conn_tcp::{TcpListener, TcpStream};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let mut listener = TcpListener::bind("[::1]:0")?;
/// let mut a = TcpStream::connect(listener.endpoint().address(), Deadline::NEVER).await?;
/// let mut b = listener.accept(Deadline::NEVER).await?;
/// assert!(a.nodelay()?); // TCP_NODELAY by default
///
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
/// * [`done`](conn_core::Connection::done) is `shutdown(SHUT_WR)`: a FIN; the peer
///   reads end-of-stream, this side goes on receiving.
/// * [`close`](conn_core::Connection::close) sends the FIN, reads and drops inbound
///   data until the peer's FIN, then releases the descriptor (libdill
///   `tcp_close`, mTCP `mtcp_close`). The descriptor is released whatever
///   `close` returns: `TimedOut` when the peer did not end within the
///   deadline, `ConnectionReset` when it reset.
/// * [`kill`](conn_core::Connection::kill) and drop close this process's descriptor and
///   nothing else; neither calls `shutdown(2)`, so after `fork` the other
///   process's copy stays fully usable. The peer sees what the kernel sends
///   when the last copy goes (a FIN, or a reset if unread data was queued).
/// * [`abort`](TcpStream::abort) ends at once with a reset the peer reads
///   as `ECONNRESET` (mTCP `mtcp_abort`).
///
/// The stream is conn-core's
/// [`SocketStream`](conn_core::socket::SocketStream) for TCP: it joins
/// tokio's reactor only when an operation would block.
pub struct TcpStream(TcpFamily);
}

impl TcpStream {
    /// Connects to `addr` until `deadline`, with `TCP_NODELAY` set.
    ///
    /// `addr` is a socket address or text (`127.0.0.1:80`, `[::1]:80`,
    /// `localhost:80`, with or without `tcp://`). A host name is resolved
    /// (`tokio::net::lookup_host`) and every address it resolves to is
    /// tried in turn until one connects or the deadline passes; the error
    /// names the host and is the last address's error:
    /// `connect on tcp://127.0.0.1:1: connection refused (ECONNREFUSED)`.
    /// `NotFound` when the name does not resolve.
    pub async fn connect(addr: impl ToTcpAddr, deadline: Deadline) -> Result<TcpStream> {
        let target = Target::from_spec(addr.spec(), "connect")?;
        let addrs: Vec<SocketAddr> = match &target {
            Target::Addr(addr) => vec![*addr],
            Target::Name(name) => deadline
                .run(tokio::net::lookup_host(name.as_str()))
                .await
                .map_err(|e| {
                    e.during("connect")
                        .on(&target)
                        .detail("resolving the host name")
                })?
                .map_err(|e| resolve_error(e, "connect", &target))?
                .collect(),
        };
        let mut last = None;
        for (tried, addr) in addrs.iter().enumerate() {
            if tried > 0 && deadline.is_expired() {
                break;
            }
            match connect_one(*addr, deadline).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some((*addr, e)),
            }
        }
        let Some((addr, err)) = last else {
            return Err(no_address("connect", &target));
        };
        let err = err.during("connect").on(&target);
        Err(match &target {
            Target::Name(_) if addrs.len() > 1 => {
                err.detail(format!("tried {} addresses, the last {addr}", addrs.len()))
            }
            Target::Name(_) => err.detail(format!("tried {addr}")),
            Target::Addr(_) => err,
        })
    }

    /// Adopts a connected TCP socket, e.g. one inherited across `fork` and
    /// `exec`. The descriptor is made non-blocking; its other options
    /// (`TCP_NODELAY` among them) are left as they are, since they belong
    /// to the socket every copy shares.
    ///
    /// `NotSocket` when `fd` is not a socket; `InvalidType` when it is not
    /// an IPv4 or IPv6 TCP socket, or is a listening one (use
    /// [`TcpListener::from_fd`](crate::TcpListener::from_fd) for those);
    /// `NotConnected` when it is not connected.
    ///
    /// ```
    /// use conn_tcp::TcpStream;
    ///
    /// let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let std_stream = std::net::TcpStream::connect(std_listener.local_addr()?)?;
    /// let stream = TcpStream::from_fd(std_stream.into())?;
    /// assert_eq!(stream.peer_addr(), std_listener.local_addr()?);
    /// # Ok::<(), conn_core::Error>(())
    /// ```
    pub fn from_fd(fd: OwnedFd) -> Result<TcpStream> {
        SocketStream::from_fd(fd).map(TcpStream)
    }

    /// Ends the connection at once with a reset (mTCP `mtcp_abort`): sets
    /// `SO_LINGER` to zero and releases the descriptor, so the kernel
    /// discards what is queued and sends RST; the peer's next read or
    /// write fails with `ECONNRESET`.
    ///
    /// The descriptor is released in every case. `SO_LINGER` belongs to
    /// the socket, which copies made by `fork` share: the reset goes out
    /// when the last copy is closed. An error here means the option could
    /// not be set, and the descriptor was released without it.
    ///
    /// ```
    /// use std::io::Read;
    /// use conn_core::Deadline;
    /// use conn_tcp::TcpStream;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
    /// let peer_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(peer_listener.local_addr()?, Deadline::NEVER).await?;
    /// let (mut peer, _) = peer_listener.accept()?;
    /// stream.abort()?;
    /// let err = peer.read(&mut [0u8; 8]).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    /// # Ok(()) }
    /// ```
    pub fn abort(self) -> Result<()> {
        sockopt::set_socket_linger(self.as_fd(), Some(Duration::ZERO))
            .map_err(|e| Error::io(e.into(), "abort", Tcp(self.peer_addr())))
    }

    /// The address the peer connected from, or that this side connected to.
    pub fn peer_addr(&self) -> SocketAddr {
        *self.0.peer()
    }

    /// This side's address (`getsockname`).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        of_socket(self.as_fd(), false)
            .map_err(|e| Error::io(e, "local address", Tcp(self.peer_addr())))
    }

    /// Sets `TCP_NODELAY` (on by default): `true` sends small writes at
    /// once instead of waiting to coalesce them (Nagle's algorithm).
    pub fn set_nodelay(&self, nodelay: bool) -> Result<()> {
        sockopt::set_tcp_nodelay(self.as_fd(), nodelay)
            .map_err(|e| Error::io(e.into(), "set TCP_NODELAY", Tcp(self.peer_addr())))
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> Result<bool> {
        sockopt::tcp_nodelay(self.as_fd())
            .map_err(|e| Error::io(e.into(), "get TCP_NODELAY", Tcp(self.peer_addr())))
    }
}

/// One non-blocking connect to `addr` until `deadline`; errors name nothing.
async fn connect_one(addr: SocketAddr, deadline: Deadline) -> Result<TcpStream> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    };
    let fd = rustix::net::socket_with(
        family,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        Some(ipproto::TCP),
    )
    .map_err(io::Error::from)?;
    sockopt::set_tcp_nodelay(&fd, true).map_err(io::Error::from)?;
    SocketStream::connect(fd, &addr, addr, deadline)
        .await
        .map(TcpStream)
}
