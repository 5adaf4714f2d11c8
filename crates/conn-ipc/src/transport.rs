use std::sync::Arc;

use async_trait::async_trait;
use conn_core::lifecycle::SplitListener;
use conn_core::{
    BoxConnector, BoxListener, Connector, Deadline, Endpoint, Registry, Result, Transport,
};

use crate::{IpcListener, IpcStream};

/// The `ipc://` transport, for a [`Registry`].
///
/// ```
/// use conn_core::{Connection, Deadline, Registry};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let mut registry = Registry::with_defaults();
/// conn_ipc::register(&mut registry);
/// let url = format!("ipc://@conn-ipc-transport-doc-{}", std::process::id());
/// let mut listener = registry.bind(&url).await?;
/// let client = registry.connect(&url, Deadline::NEVER).await?;
/// let server = conn_core::Listener::accept(&mut listener, Deadline::NEVER).await?;
/// client.kill();
/// server.kill();
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct IpcTransport;

#[async_trait]
impl Transport for IpcTransport {
    fn scheme(&self) -> &'static str {
        "ipc"
    }
    async fn bind(&self, endpoint: &Endpoint) -> Result<BoxListener> {
        Ok(Box::new(IpcListener::bind(endpoint.address())?))
    }
    async fn bind_per_core(&self, endpoint: &Endpoint, threads: usize) -> Result<Vec<BoxListener>> {
        let listeners = IpcListener::bind(endpoint.address())?.per_core(threads)?;
        Ok(listeners
            .into_iter()
            .map(|l| Box::new(l) as BoxListener)
            .collect())
    }
    fn connector(&self) -> BoxConnector {
        Arc::new(IpcConnector)
    }
}

/// Registers [`IpcTransport`] under `ipc` in `registry`.
pub fn register(registry: &mut Registry) {
    registry.register(IpcTransport);
}

/// Dials `ipc:///path` and `ipc://@abstract` endpoints.
///
/// ```
/// use conn_core::{Connector, Deadline, Endpoint};
/// use conn_ipc::{IpcConnector, IpcListener};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let name = format!("@conn-ipc-connector-doc-{}", std::process::id());
/// let _listener = IpcListener::bind(&name)?;
/// let ep: Endpoint = format!("ipc://{name}").parse()?;
/// let conn = IpcConnector.connect(&ep, Deadline::NEVER).await?;
/// assert_eq!(conn_core::Connection::peer_endpoint(&conn), Some(ep));
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct IpcConnector;

impl Connector for IpcConnector {
    type Conn = IpcStream;
    async fn connect(&self, endpoint: &Endpoint, deadline: Deadline) -> Result<IpcStream> {
        IpcStream::connect(endpoint.connect_address("ipc")?, deadline).await
    }
}
