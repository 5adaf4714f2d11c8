//! One registry from URL scheme to transport.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::lifecycle::Connector;
use crate::lifecycle::dynamic::{BoxConnection, BoxConnector, BoxListener};
use crate::{Deadline, Endpoint, Error, ErrorKind, Result};

/// A transport as the registry knows it: a scheme, a way to bind listeners
/// and a connector. Adding a transport is one crate and one registration.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// The URL scheme this transport serves, e.g. `"ipc"`.
    fn scheme(&self) -> &'static str;
    /// Binds a listener at `endpoint` (whose scheme is [`Transport::scheme`]).
    async fn bind(&self, endpoint: &Endpoint) -> Result<BoxListener>;
    /// The connector that dials this transport's endpoints.
    fn connector(&self) -> BoxConnector;

    /// Binds `endpoint` once per serving thread, for
    /// [`Server::serve_each`](crate::serve::Server::serve_each): `threads`
    /// listeners on the one address. Transports that can split a listener
    /// override this; the default serves one thread and refuses more with
    /// `NotSupported`.
    async fn bind_per_core(&self, endpoint: &Endpoint, threads: usize) -> Result<Vec<BoxListener>> {
        if threads <= 1 {
            return Ok(vec![self.bind(endpoint).await?]);
        }
        Err(Error::new(ErrorKind::NotSupported)
            .during("bind per core")
            .on(endpoint)
            .detail(format!(
                "the {} transport cannot give {threads} threads their own listener",
                self.scheme()
            )))
    }
}

/// Maps URL schemes to transports, so a program can pick its transport from
/// configuration at run time.
///
/// ```
/// use conn_core::{Connection, Deadline, Listener, Registry};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let registry = Registry::with_defaults(); // knows mem://
/// let mut listener = registry.bind("mem://registry-doc").await?;
/// let client = registry.connect("mem://registry-doc", Deadline::NEVER).await?;
/// let server = listener.accept(Deadline::NEVER).await?;
/// client.kill();
/// server.kill();
///
/// let err = registry.bind("carrier-pigeon://coop").await.unwrap_err();
/// assert_eq!(err.kind(), conn_core::ErrorKind::NotSupported);
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct Registry {
    transports: Arc<BTreeMap<&'static str, Arc<dyn Transport>>>,
}

impl Registry {
    /// A registry that knows no transport.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// A registry that knows the transports built into conn-core (`mem://`).
    pub fn with_defaults() -> Registry {
        let mut registry = Registry::new();
        registry.register(crate::mem::MemTransport);
        registry
    }

    /// Registers `transport` under its scheme, replacing (and returning) any
    /// transport registered for that scheme before.
    pub fn register(&mut self, transport: impl Transport) -> Option<Arc<dyn Transport>> {
        Arc::make_mut(&mut self.transports).insert(transport.scheme(), Arc::new(transport))
    }

    /// The schemes this registry knows, sorted.
    pub fn schemes(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.transports.keys().copied()
    }

    /// The transport for `endpoint`'s scheme.
    pub fn transport(&self, endpoint: &Endpoint, op: &'static str) -> Result<&Arc<dyn Transport>> {
        self.transports.get(endpoint.scheme()).ok_or_else(|| {
            let known: Vec<_> = self.schemes().collect();
            Error::new(ErrorKind::NotSupported)
                .during(op)
                .on(endpoint)
                .detail(format!(
                    "no transport registered for scheme {:?} (known: {})",
                    endpoint.scheme(),
                    known.join(", ")
                ))
        })
    }

    /// Binds a listener at `url`, e.g. `"ipc:///run/x.sock"`.
    pub async fn bind(&self, url: impl AsRef<str>) -> Result<BoxListener> {
        let endpoint = Endpoint::parse(url.as_ref())?;
        self.transport(&endpoint, "bind")?.bind(&endpoint).await
    }

    /// Binds `url` once per serving thread: `threads` listeners on one
    /// address, for [`Server::serve_each`](crate::serve::Server::serve_each).
    ///
    /// ```
    /// use conn_core::Registry;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
    /// let listeners = Registry::with_defaults().bind_per_core("mem://per-core-registry", 2).await?;
    /// assert_eq!(listeners.len(), 2);
    /// # Ok(()) }
    /// ```
    pub async fn bind_per_core(
        &self,
        url: impl AsRef<str>,
        threads: usize,
    ) -> Result<Vec<BoxListener>> {
        let endpoint = Endpoint::parse(url.as_ref())?;
        self.transport(&endpoint, "bind")?
            .bind_per_core(&endpoint, threads)
            .await
    }

    /// Connects to `url` until `deadline`.
    pub async fn connect(&self, url: impl AsRef<str>, deadline: Deadline) -> Result<BoxConnection> {
        let endpoint = Endpoint::parse(url.as_ref())?;
        self.connect_endpoint(&endpoint, deadline).await
    }

    async fn connect_endpoint(
        &self,
        endpoint: &Endpoint,
        deadline: Deadline,
    ) -> Result<BoxConnection> {
        let connector = self.transport(endpoint, "connect")?.connector();
        connector.connect(endpoint, deadline).await
    }
}

/// Every registry is a connector that dials by scheme.
impl Connector for Registry {
    type Conn = BoxConnection;
    async fn connect(&self, endpoint: &Endpoint, deadline: Deadline) -> Result<BoxConnection> {
        self.connect_endpoint(endpoint, deadline).await
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.schemes()).finish()
    }
}
