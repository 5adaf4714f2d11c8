use async_trait::async_trait;

use super::{MemListener, MemStream};
use crate::lifecycle::SplitListener;
use crate::lifecycle::dynamic::{BoxConnector, BoxListener};
use crate::registry::Transport;
use crate::{Connector, Deadline, Endpoint, Result};

/// The `mem://` transport, for the [`Registry`](crate::Registry).
#[derive(Clone, Copy, Debug, Default)]
pub struct MemTransport;

#[async_trait]
impl Transport for MemTransport {
    fn scheme(&self) -> &'static str {
        "mem"
    }
    async fn bind(&self, endpoint: &Endpoint) -> Result<BoxListener> {
        Ok(Box::new(MemListener::bind(endpoint.address())?))
    }
    async fn bind_per_core(&self, endpoint: &Endpoint, threads: usize) -> Result<Vec<BoxListener>> {
        let listeners = MemListener::bind(endpoint.address())?.per_core(threads)?;
        Ok(listeners
            .into_iter()
            .map(|l| Box::new(l) as BoxListener)
            .collect())
    }
    fn connector(&self) -> BoxConnector {
        std::sync::Arc::new(MemConnector)
    }
}

/// Dials `mem://name` endpoints.
///
/// ```
/// use conn_core::{Connector, Deadline, Endpoint, mem::{MemConnector, MemListener}};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let _l = MemListener::bind("connector-doc")?;
/// let ep: Endpoint = "mem://connector-doc".parse()?;
/// let _conn = MemConnector.connect(&ep, Deadline::NEVER).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct MemConnector;

impl Connector for MemConnector {
    type Conn = MemStream;
    async fn connect(&self, endpoint: &Endpoint, deadline: Deadline) -> Result<MemStream> {
        MemStream::connect(endpoint.connect_address("mem")?, deadline).await
    }
}
