use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, OwnedFd};

use conn_core::lifecycle::SplitListener;
use conn_core::socket::SocketListener;
use conn_core::{Error, Result};
use rustix::net::{AddressFamily, SocketFlags, SocketType, ipproto, sockopt};

use crate::TcpStream;
use crate::addr::{Target, ToTcpAddr, of_socket};
use crate::family::{Tcp, TcpLocal, endpoint_of};

conn_core::socket_listener! {
/// A listening TCP socket, IPv4 or IPv6, with connkit's lifecycle.
///
/// ```
/// use conn_core::{Connection, Deadline, ErrorKind};
/// use conn_tcp::{TcpListener, TcpStream};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let mut listener = TcpListener::bind("127.0.0.1:0")?; // port 0: the kernel picks
/// assert_eq!(listener.endpoint().to_string(), format!("tcp://{}", listener.local_addr()));
///
/// // Nobody waiting: NOW gives up at once.
/// let err = listener.accept(Deadline::NOW).await.unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::TimedOut);
///
/// let client = TcpStream::connect(listener.local_addr(), Deadline::NEVER).await?;
/// let server = listener.accept(Deadline::NEVER).await?;
/// assert_eq!(server.peer_addr(), client.local_addr()?);
/// client.kill();
/// server.kill();
/// # Ok(()) }
/// ```
///
/// Binding sets `SO_REUSEADDR`, so a restarted server binds again while
/// old connections linger in `TIME_WAIT`. [`TcpListenerOptions`] adds
/// `SO_REUSEPORT` (one listener per core on one port, the kernel spreading
/// connections among them) and the backlog.
///
/// # Cancel safety
///
/// [`accept`](TcpListener::accept) is cancel safe: its only effect is the
/// `accept4(2)` call, and a connection it accepts is returned in the same
/// poll. `conn_core::serve` relies on this.
///
/// `accept_into` (from [`Listener`](conn_core::Listener)) places accepted
/// streams in a [`TcpSlot`](crate::TcpSlot) without allocating. The
/// listener is conn-core's
/// [`SocketListener`](conn_core::socket::SocketListener) for TCP, whose
/// docs say what accepting allocates (nothing).
pub struct TcpListener(Tcp) -> TcpStream;
}

/// How [`TcpListener::options`] binds: `SO_REUSEADDR`, `SO_REUSEPORT`,
/// `IPV6_V6ONLY`, the backlog, and `TCP_NODELAY` on accepted streams.
///
/// ```
/// use conn_tcp::TcpListenerOptions;
///
/// // Two listeners on one port, e.g. one per core.
/// let options = TcpListenerOptions::new().reuse_port(true).backlog(64);
/// let a = options.bind("127.0.0.1:0")?;
/// let b = options.bind(a.local_addr())?;
/// assert_eq!(a.local_addr(), b.local_addr());
/// # Ok::<(), conn_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct TcpListenerOptions {
    backlog: i32,
    reuse_address: bool,
    reuse_port: bool,
    only_v6: Option<bool>,
    nodelay: bool,
}

impl Default for TcpListenerOptions {
    fn default() -> Self {
        TcpListenerOptions {
            backlog: 1024,
            reuse_address: true,
            reuse_port: false,
            only_v6: None,
            nodelay: true,
        }
    }
}

impl TcpListenerOptions {
    /// The defaults: a backlog of 1024, `SO_REUSEADDR` on, `SO_REUSEPORT`
    /// off, `IPV6_V6ONLY` as the system has it, `TCP_NODELAY` on accepted
    /// streams.
    pub fn new() -> Self {
        TcpListenerOptions::default()
    }

    /// Sets the `listen(2)` backlog: connections the kernel completes and
    /// queues before `accept` takes them.
    pub fn backlog(mut self, backlog: i32) -> Self {
        self.backlog = backlog;
        self
    }

    /// Whether to set `SO_REUSEADDR` (default `true`): bind again while old
    /// connections on the port are in `TIME_WAIT`.
    pub fn reuse_address(mut self, reuse: bool) -> Self {
        self.reuse_address = reuse;
        self
    }

    /// Whether to set `SO_REUSEPORT` (default `false`): several listeners,
    /// all with it set and of one user, bind the same address and port and
    /// the kernel spreads incoming connections among them — one listener
    /// per core, each with its own accept loop (mTCP's per-core model).
    pub fn reuse_port(mut self, reuse: bool) -> Self {
        self.reuse_port = reuse;
        self
    }

    /// Sets `IPV6_V6ONLY` on IPv6 listeners: `true` accepts IPv6 only,
    /// `false` also IPv4-mapped peers on `[::]`. Ignored for IPv4.
    pub fn only_v6(mut self, only: bool) -> Self {
        self.only_v6 = Some(only);
        self
    }

    /// Whether accepted streams get `TCP_NODELAY` (default `true`).
    pub fn nodelay(mut self, nodelay: bool) -> Self {
        self.nodelay = nodelay;
        self
    }

    /// Binds and listens at `addr`. A host name is resolved here, blocking
    /// (`getaddrinfo`), and the first of its addresses that binds is used.
    pub fn bind(&self, addr: impl ToTcpAddr) -> Result<TcpListener> {
        let target = Target::from_spec(addr.spec(), "bind")?;
        let addrs: Vec<SocketAddr> = match &target {
            Target::Addr(addr) => vec![*addr],
            Target::Name(name) => name
                .to_socket_addrs()
                .map_err(|e| resolve_error(e, "bind", &target))?
                .collect(),
        };
        let mut last = None;
        for addr in &addrs {
            match self.bind_one(*addr) {
                Ok(listener) => return Ok(listener),
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) => Error::io(e, "bind", &target),
            None => no_address("bind", &target),
        })
    }

    fn bind_one(&self, addr: SocketAddr) -> io::Result<TcpListener> {
        let family = match addr {
            SocketAddr::V4(_) => AddressFamily::INET,
            SocketAddr::V6(_) => AddressFamily::INET6,
        };
        let fd = rustix::net::socket_with(
            family,
            SocketType::STREAM,
            SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            Some(ipproto::TCP),
        )?;
        if self.reuse_address {
            sockopt::set_socket_reuseaddr(&fd, true)?;
        }
        if self.reuse_port {
            sockopt::set_socket_reuseport(&fd, true)?;
        }
        if let (Some(only), SocketAddr::V6(_)) = (self.only_v6, addr) {
            sockopt::set_ipv6_v6only(&fd, only)?;
        }
        rustix::net::bind(&fd, &addr)?;
        rustix::net::listen(&fd, self.backlog)?;
        let addr = of_socket(fd.as_fd(), false)?;
        let local = TcpLocal {
            addr,
            nodelay: self.nodelay,
            options: Some(self.clone()),
        };
        Ok(TcpListener(SocketListener::new(
            fd,
            endpoint_of(addr),
            local,
        )))
    }
}

pub(crate) fn resolve_error(e: io::Error, op: &'static str, target: &Target) -> Error {
    let detail = format!("the host name did not resolve: {e}");
    Error::new(conn_core::ErrorKind::NotFound)
        .during(op)
        .on(target)
        .detail(detail)
        .with_source(e)
}

pub(crate) fn no_address(op: &'static str, target: &Target) -> Error {
    Error::new(conn_core::ErrorKind::NotFound)
        .during(op)
        .on(target)
        .detail("the host name resolved to no address")
}

impl TcpListener {
    /// Binds and listens at `addr` with the default options (see
    /// [`TcpListenerOptions`]): `127.0.0.1:0`, `[::1]:8080`,
    /// `tcp://0.0.0.0:80`, `localhost:0`, a `SocketAddr`, ...
    pub fn bind(addr: impl ToTcpAddr) -> Result<TcpListener> {
        TcpListenerOptions::new().bind(addr)
    }

    /// Options for binding: `SO_REUSEPORT`, backlog, ...
    pub fn options() -> TcpListenerOptions {
        TcpListenerOptions::new()
    }

    /// Adopts a listening TCP socket, e.g. one passed by systemd (see
    /// `conn_core::activation::listen_fds`) or inherited across `exec`. The
    /// descriptor is made non-blocking; accepted streams get `TCP_NODELAY`.
    ///
    /// `NotSocket` when `fd` is not a socket; `InvalidType` when it is not a
    /// listening IPv4 or IPv6 TCP socket.
    ///
    /// ```
    /// use conn_tcp::TcpListener;
    ///
    /// let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let addr = std_listener.local_addr()?;
    /// let listener = TcpListener::from_fd(std_listener.into())?;
    /// assert_eq!(listener.local_addr(), addr);
    /// # Ok::<(), conn_core::Error>(())
    /// ```
    pub fn from_fd(fd: OwnedFd) -> Result<TcpListener> {
        SocketListener::from_fd(fd).map(TcpListener)
    }

    /// The address this listener is bound to (with the port the kernel
    /// picked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.0.local().addr
    }
}

/// Bound with [`reuse_port`](TcpListenerOptions::reuse_port): a new socket
/// on the same address with its own accept queue, the kernel spreading
/// connections over the queues. Otherwise (or adopted): another descriptor
/// (`dup`) for the one socket, both accepting from its queue.
impl SplitListener for TcpListener {
    fn split(&self) -> Result<TcpListener> {
        let local = self.0.local();
        match &local.options {
            Some(options) if options.reuse_port => options
                .bind_one(local.addr)
                .map_err(|e| Error::io(e, "split listener", self.endpoint())),
            _ => {
                let copy = TcpLocal {
                    addr: local.addr,
                    nodelay: local.nodelay,
                    options: None,
                };
                self.0.duplicate(copy).map(TcpListener)
            }
        }
    }
}
