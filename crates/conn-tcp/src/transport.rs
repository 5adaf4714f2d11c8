use std::sync::Arc;

use async_trait::async_trait;
use conn_core::lifecycle::SplitListener;
use conn_core::{
    BoxConnector, BoxListener, Connector, Deadline, Endpoint, Registry, Result, Transport,
};

use crate::{TcpListener, TcpStream};

/// The `tcp://` transport, for a [`Registry`]: `tcp://host:port`,
/// `tcp://[::1]:port`.
///
/// ```
/// use conn_core::{Connection, Deadline, Listener, Registry};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let mut registry = Registry::with_defaults();
/// conn_tcp::register(&mut registry);
/// let mut listener = registry.bind("tcp://127.0.0.1:0").await?;
/// let url = listener.local_endpoint().to_string(); // the port the kernel picked
/// let client = registry.connect(&url, Deadline::NEVER).await?;
/// let server = listener.accept(Deadline::NEVER).await?;
/// client.kill();
/// server.kill();
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpTransport;

#[async_trait]
impl Transport for TcpTransport {
    fn scheme(&self) -> &'static str {
        "tcp"
    }
    async fn bind(&self, endpoint: &Endpoint) -> Result<BoxListener> {
        Ok(Box::new(TcpListener::bind(endpoint.address())?))
    }
    /// `SO_REUSEPORT` listeners, one per thread, each with its own queue.
    async fn bind_per_core(&self, endpoint: &Endpoint, threads: usize) -> Result<Vec<BoxListener>> {
        let first = TcpListener::options()
            .reuse_port(true)
            .bind(endpoint.address())?;
        let listeners = first.per_core(threads)?;
        Ok(listeners
            .into_iter()
            .map(|l| Box::new(l) as BoxListener)
            .collect())
    }
    fn connector(&self) -> BoxConnector {
        Arc::new(TcpConnector)
    }
}

/// Registers [`TcpTransport`] under `tcp` in `registry`.
pub fn register(registry: &mut Registry) {
    registry.register(TcpTransport);
}

/// Dials `tcp://host:port` endpoints.
///
/// ```
/// use conn_core::{Connector, Deadline, Endpoint};
/// use conn_tcp::{TcpConnector, TcpListener};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let conn = TcpConnector.connect(listener.endpoint(), Deadline::NEVER).await?;
/// assert_eq!(conn_core::Connection::peer_endpoint(&conn).as_ref(), Some(listener.endpoint()));
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpConnector;

impl Connector for TcpConnector {
    type Conn = TcpStream;
    async fn connect(&self, endpoint: &Endpoint, deadline: Deadline) -> Result<TcpStream> {
        TcpStream::connect(endpoint.connect_address("tcp")?, deadline).await
    }
}
