//! Object-safe twins of the lifecycle traits, for transports chosen at run time.
//!
//! Every static implementation is also a dynamic one through blanket bridges,
//! and the boxed forms ([`BoxConnection`], [`BoxListener`], [`BoxConnector`])
//! implement the static traits again, so they plug into the serve loop and
//! the layers unchanged.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Connection, Connector, Listener, PeerAddr, PeerCred};
use crate::{Deadline, Endpoint, Result};

/// The object-safe twin of [`Connection`].
///
/// ```
/// use conn_core::{BoxConnection, Connection, Deadline, mem::{MemListener, MemStream}};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let _listener = MemListener::bind("dyn-conn-doc")?;
/// let conn: BoxConnection = Box::new(MemStream::connect("dyn-conn-doc", Deadline::NEVER).await?);
/// conn.kill(); // the boxed form is a Connection too
/// # Ok(()) }
/// ```
#[async_trait]
pub trait DynConnection: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// See [`Connection::done`].
    async fn done_dyn(&mut self, deadline: Deadline) -> Result<()>;
    /// See [`Connection::close`].
    async fn close_dyn(self: Box<Self>, deadline: Deadline) -> Result<()>;
    /// See [`Connection::kill`].
    fn kill_dyn(self: Box<Self>);
    /// See [`Connection::peer_endpoint`].
    fn peer_endpoint_dyn(&self) -> Option<Endpoint>;
    /// See [`Connection::peer_addr`].
    fn peer_addr_dyn(&self) -> Option<PeerAddr>;
    /// See [`Connection::peer_cred`].
    fn peer_cred_dyn(&self) -> Option<PeerCred>;
}

/// A connection of a transport chosen at run time.
pub type BoxConnection = Box<dyn DynConnection>;

#[async_trait]
impl<C: Connection> DynConnection for C {
    async fn done_dyn(&mut self, deadline: Deadline) -> Result<()> {
        self.done(deadline).await
    }
    async fn close_dyn(self: Box<Self>, deadline: Deadline) -> Result<()> {
        (*self).close(deadline).await
    }
    fn kill_dyn(self: Box<Self>) {
        (*self).kill()
    }
    fn peer_endpoint_dyn(&self) -> Option<Endpoint> {
        self.peer_endpoint()
    }
    fn peer_addr_dyn(&self) -> Option<PeerAddr> {
        self.peer_addr()
    }
    fn peer_cred_dyn(&self) -> Option<PeerCred> {
        self.peer_cred()
    }
}

/// Boxes a connection without boxing twice: a [`BoxConnection`] passed here
/// comes back as it is.
///
/// ```
/// use conn_core::{BoxConnection, lifecycle::dynamic::box_connection, mem::MemStream};
/// let (a, _b) = MemStream::pair();
/// let boxed: BoxConnection = box_connection(a);
/// let again: BoxConnection = box_connection(boxed); // not boxed a second time
/// # drop(again);
/// ```
pub fn box_connection<C: Connection>(conn: C) -> BoxConnection {
    let mut slot = Some(conn);
    if let Some(boxed) =
        (&mut slot as &mut dyn std::any::Any).downcast_mut::<Option<BoxConnection>>()
    {
        return boxed.take().expect("just set");
    }
    Box::new(slot.take().expect("just set"))
}

impl Connection for BoxConnection {
    async fn done(&mut self, deadline: Deadline) -> Result<()> {
        (**self).done_dyn(deadline).await
    }
    async fn close(self, deadline: Deadline) -> Result<()> {
        self.close_dyn(deadline).await
    }
    fn kill(self) {
        self.kill_dyn()
    }
    fn peer_endpoint(&self) -> Option<Endpoint> {
        (**self).peer_endpoint_dyn()
    }
    fn peer_addr(&self) -> Option<PeerAddr> {
        (**self).peer_addr_dyn()
    }
    fn peer_cred(&self) -> Option<PeerCred> {
        (**self).peer_cred_dyn()
    }
}

/// The object-safe twin of [`Listener`].
#[async_trait]
pub trait DynListener: Send + 'static {
    /// See [`Listener::accept`].
    async fn accept_dyn(&mut self, deadline: Deadline) -> Result<BoxConnection>;
    /// See [`Listener::local_endpoint`].
    fn local_endpoint_dyn(&self) -> Endpoint;
}

/// A listener of a transport chosen at run time.
pub type BoxListener = Box<dyn DynListener>;

#[async_trait]
impl<L: Listener> DynListener for L {
    async fn accept_dyn(&mut self, deadline: Deadline) -> Result<BoxConnection> {
        self.accept(deadline).await.map(box_connection)
    }
    fn local_endpoint_dyn(&self) -> Endpoint {
        self.local_endpoint()
    }
}

impl Listener for BoxListener {
    type Conn = BoxConnection;
    async fn accept(&mut self, deadline: Deadline) -> Result<BoxConnection> {
        (**self).accept_dyn(deadline).await
    }
    fn local_endpoint(&self) -> Endpoint {
        (**self).local_endpoint_dyn()
    }
}

/// The object-safe twin of [`Connector`].
#[async_trait]
pub trait DynConnector: Send + Sync + 'static {
    /// See [`Connector::connect`].
    async fn connect_dyn(&self, endpoint: &Endpoint, deadline: Deadline) -> Result<BoxConnection>;
}

/// A connector of a transport chosen at run time; cheap to clone.
pub type BoxConnector = Arc<dyn DynConnector>;

#[async_trait]
impl<C: Connector> DynConnector for C {
    async fn connect_dyn(&self, endpoint: &Endpoint, deadline: Deadline) -> Result<BoxConnection> {
        self.connect(endpoint, deadline).await.map(box_connection)
    }
}

impl Connector for BoxConnector {
    type Conn = BoxConnection;
    async fn connect(&self, endpoint: &Endpoint, deadline: Deadline) -> Result<BoxConnection> {
        (**self).connect_dyn(endpoint, deadline).await
    }
}

impl std::fmt::Debug for dyn DynConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.peer_endpoint_dyn() {
            Some(peer) => write!(f, "DynConnection(peer {peer})"),
            None => f.write_str("DynConnection"),
        }
    }
}

impl std::fmt::Debug for dyn DynListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DynListener({})", self.local_endpoint_dyn())
    }
}

impl std::fmt::Debug for dyn DynConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DynConnector")
    }
}
