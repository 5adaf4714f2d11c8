//! The lifecycle every transport implements: accept, connect, done, close, kill.
//!
//! Two surfaces per trait. The static traits here use native `async fn` in
//! traits and are what generic, allocation-free code (the serve loop, the
//! layers) is written against. Their object-safe twins in [`dynamic`] let a
//! program pick a transport at run time; a blanket bridge makes every static
//! implementation a dynamic one too.

pub mod dynamic;
mod orderly;

pub use orderly::{close_in_order, half_close};

use std::future::Future;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::slot::Slot;
use crate::{Deadline, Endpoint, Result};

/// One established byte stream, whatever carries it.
///
/// | step | what it does |
/// |---|---|
/// | [`done`](Connection::done) | half-close: no more sends, the peer reads end-of-stream, receiving goes on |
/// | [`close`](Connection::close) | orderly end: tell the peer, drain and drop inbound data until the peer's own end, release |
/// | [`kill`](Connection::kill) | release this process's handle without telling the peer |
///
/// Dropping a connection is the same as [`kill`](Connection::kill): no
/// implementation may call `shutdown(2)` in `Drop`, because after `fork` that
/// would end the connection for every process holding a copy.
///
/// # Examples
///
/// ```
/// use conn_core::{Connection, Deadline, mem::{MemListener, MemStream}};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let mut listener = MemListener::bind("lifecycle-doc")?;
/// let mut client = MemStream::connect("lifecycle-doc", Deadline::NEVER).await?;
/// let mut server = conn_core::Listener::accept(&mut listener, Deadline::NEVER).await?;
///
/// client.write_all(b"bye").await?;
/// client.done(Deadline::NEVER).await?;          // the server reads end-of-stream...
/// let mut got = Vec::new();
/// server.read_to_end(&mut got).await?;
/// assert_eq!(got, b"bye");
/// server.write_all(b"ok").await?;               // ...and can still answer.
/// server.close(Deadline::NEVER).await?;
///
/// let mut answer = Vec::new();
/// client.read_to_end(&mut answer).await?;
/// assert_eq!(answer, b"ok");
/// client.close(Deadline::NEVER).await?;
/// # Ok(()) }
/// ```
pub trait Connection: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Half-closes: no more sends; the peer reads end-of-stream while this
    /// side goes on receiving (libdill `ipc_done`).
    fn done(&mut self, deadline: Deadline) -> impl Future<Output = Result<()>> + Send;

    /// The orderly terminal handshake (libdill `ipc_close`): sends this side's
    /// end, drains and drops inbound data until the peer's own end, then
    /// releases the handle. The handle is released even when this fails:
    /// `TimedOut` when the peer did not end within `deadline`,
    /// `ConnectionReset` when it vanished.
    fn close(self, deadline: Deadline) -> impl Future<Output = Result<()>> + Send
    where
        Self: Sized;

    /// Releases this process's handle without telling the peer (Spread
    /// `SP_kill`, libdill `hclose`). After `fork`, other copies stay usable;
    /// the peer sees only what the OS shows when the last copy goes.
    fn kill(self)
    where
        Self: Sized;

    /// Where the peer is, as a transport-qualified endpoint, when known.
    fn peer_endpoint(&self) -> Option<Endpoint> {
        None
    }

    /// Where the peer is, for transports with a socket address (tcp, utcp),
    /// without formatting it: what a server that looks at its peer only now
    /// and then takes for every connection. [`PeerAddr::endpoint`] gives
    /// the same [`Endpoint`] as [`peer_endpoint`](Connection::peer_endpoint).
    fn peer_addr(&self) -> Option<PeerAddr> {
        None
    }

    /// Who the peer is, where the kernel says (`SO_PEERCRED` on Unix-domain
    /// sockets); `None` on transports that cannot tell.
    fn peer_cred(&self) -> Option<PeerCred> {
        None
    }
}

/// Who is at the other end of a connection, from `SO_PEERCRED`: the
/// credentials the peer had when it connected (or created the pair).
/// Unix-domain sockets (`conn_ipc::IpcStream`) know it; the in-memory
/// transport and TCP do not.
///
/// ```
/// use conn_core::{Connection, Deadline, mem::{MemListener, MemStream}};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let _listener = MemListener::bind("peer-cred-doc")?;
/// let conn = MemStream::connect("peer-cred-doc", Deadline::NEVER).await?;
/// assert_eq!(conn.peer_cred(), None);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeerCred {
    /// The peer's process id.
    pub pid: u32,
    /// The peer's effective user id.
    pub uid: u32,
    /// The peer's effective group id.
    pub gid: u32,
}

/// A peer's socket address and its transport's scheme (see
/// [`Connection::peer_addr`]).
///
/// ```
/// use conn_core::PeerAddr;
/// let peer = PeerAddr { scheme: "tcp", addr: "10.0.0.7:40000".parse().unwrap() };
/// assert_eq!(peer.endpoint().to_string(), "tcp://10.0.0.7:40000");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeerAddr {
    /// The transport's scheme, e.g. `"tcp"`.
    pub scheme: &'static str,
    /// The peer's address.
    pub addr: std::net::SocketAddr,
}

impl PeerAddr {
    /// The peer as an endpoint, `scheme://addr`.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint::new(self.scheme, self.addr).expect("a socket address is a valid endpoint")
    }
}

/// Waits for peers and hands out [`Connection`]s.
pub trait Listener: Send + 'static {
    /// The connections this listener accepts.
    type Conn: Connection;

    /// Waits for the next peer until `deadline` (libdill `ipc_accept`).
    /// [`Deadline::NOW`] returns `TimedOut` at once when no peer is waiting.
    fn accept(&mut self, deadline: Deadline) -> impl Future<Output = Result<Self::Conn>> + Send;

    /// Accepts into caller-owned storage (libdill `ipc_accept_mem`): the
    /// connection is placed in `slot`, whose buffer is kept for it, and a
    /// steady accept loop that reuses one slot needs no fresh storage for
    /// either. A connection still in the slot is killed first (even when
    /// the accept then fails).
    ///
    /// ```
    /// use conn_core::{Connection, Deadline, Listener, slot::Slot, mem::{MemListener, MemStream}};
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
    /// let mut listener = MemListener::bind("accept-into-doc")?;
    /// let mut slot = Slot::with_buffer(512); // allocated once, reused
    /// for _ in 0..3 {
    ///     let mut client = MemStream::connect("accept-into-doc", Deadline::NEVER).await?;
    ///     client.write_all(b"hi").await?;
    ///     client.done(Deadline::NEVER).await?;
    ///
    ///     listener.accept_into(&mut slot, Deadline::NEVER).await?;
    ///     let (conn, buf) = slot.parts();
    ///     let n = conn.unwrap().read(buf).await?;
    ///     assert_eq!(&buf[..n], b"hi");
    ///     slot.close(Deadline::NEVER).await?;
    /// }
    /// # Ok(()) }
    /// ```
    fn accept_into<'s>(
        &mut self,
        slot: &'s mut Slot<Self::Conn>,
        deadline: Deadline,
    ) -> impl Future<Output = Result<&'s mut Self::Conn>> + Send {
        async move {
            slot.kill();
            let conn = self.accept(deadline).await?;
            Ok(slot.put(conn))
        }
    }

    /// The endpoint this listener is bound to.
    fn local_endpoint(&self) -> Endpoint;
}

/// A listener that can give another thread its own handle on the same
/// listening address, so each core runs its own accept loop
/// ([`Server::per_core`](crate::serve::Server::per_core)).
///
/// How the handles share the incoming peers is the transport's: a Unix
/// socket's handles share one accept queue; TCP listeners bound with
/// `SO_REUSEPORT` get one queue each, and the kernel spreads connections
/// over them; `mem://` names alternate between their listeners. A split
/// handle never removes what the original owns (a socket file, a name).
///
/// ```
/// use conn_core::{Deadline, Listener, lifecycle::SplitListener, mem::{MemListener, MemStream}};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let mut first = MemListener::bind("split-doc")?;
/// let mut second = first.split()?;
/// let _a = MemStream::connect("split-doc", Deadline::NEVER).await?;
/// let _b = MemStream::connect("split-doc", Deadline::NEVER).await?;
/// // One peer went to each listener.
/// first.accept(Deadline::NOW).await?;
/// second.accept(Deadline::NOW).await?;
/// # Ok(()) }
/// ```
pub trait SplitListener: Listener + Sized {
    /// Another handle on the same listening address, for another accept loop.
    fn split(&self) -> Result<Self>;

    /// This listener and `threads - 1` splits of it, one per thread.
    fn per_core(self, threads: usize) -> Result<Vec<Self>> {
        let mut all = Vec::with_capacity(threads.max(1));
        for _ in 1..threads {
            all.push(self.split()?);
        }
        all.insert(0, self);
        Ok(all)
    }
}

/// Opens connections to endpoints of one transport.
pub trait Connector: Send + Sync + 'static {
    /// The connections this connector opens.
    type Conn: Connection;

    /// Opens a connection to `endpoint` until `deadline`.
    fn connect(
        &self,
        endpoint: &Endpoint,
        deadline: Deadline,
    ) -> impl Future<Output = Result<Self::Conn>> + Send;
}
