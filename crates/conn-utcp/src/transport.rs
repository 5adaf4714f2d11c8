//! The `utcp://` scheme: a [`Transport`] and a [`Connector`] bound to one
//! [`Stack`], the connector also a `tower::Service<http::Uri>`.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use conn_core::{
    BoxConnector, BoxListener, Connector, Deadline, Endpoint, Error, ErrorKind, Registry, Result,
    Transport,
};

use crate::{Stack, UtcpListener, UtcpStream};

/// The backlog of listeners bound through the registry and by `connkit
/// http --tap`: Linux's default (`net.core.somaxconn`). A listener's
/// backlog costs a socket only for each SYN that arrives, so it need not
/// be small.
pub const DEFAULT_BACKLOG: usize = 4096;

/// The `utcp://` transport of one [`Stack`], for a [`Registry`].
///
/// A userspace stack is not a process-wide thing like the kernel's, so the
/// registry's `utcp://` means *this* stack: `utcp://ADDR:PORT` binds port
/// `PORT` of the stack (`ADDR` must be the stack's address or `0.0.0.0`),
/// and connects dial out from it.
///
/// ```
/// use conn_core::{Connection, Deadline, Listener, Registry};
/// use conn_utcp::{MemLink, Stack};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let (a, b) = MemLink::pair();
/// let server = Stack::builder(a).address("10.3.0.1/24".parse().unwrap()).build()?;
/// let client = Stack::builder(b).address("10.3.0.2/24".parse().unwrap()).build()?;
/// let mut servers = Registry::new();
/// conn_utcp::register(&mut servers, server);
/// let mut clients = Registry::new();
/// conn_utcp::register(&mut clients, client);
///
/// let mut listener = servers.bind("utcp://10.3.0.1:80").await?;
/// let conn = clients.connect("utcp://10.3.0.1:80", Deadline::NEVER).await?;
/// let accepted = listener.accept(Deadline::NEVER).await?;
/// conn.kill();
/// accepted.kill();
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct UtcpTransport {
    stack: Stack,
}

impl UtcpTransport {
    /// The transport of `stack`.
    pub fn new(stack: Stack) -> UtcpTransport {
        UtcpTransport { stack }
    }
}

/// Registers `stack` as the `utcp://` transport of `registry`.
pub fn register(registry: &mut Registry, stack: Stack) {
    registry.register(UtcpTransport::new(stack));
}

fn parse(endpoint: &Endpoint, op: &'static str) -> Result<SocketAddr> {
    endpoint.address().parse::<SocketAddr>().map_err(|_| {
        Error::new(ErrorKind::InvalidType)
            .during(op)
            .on(endpoint)
            .detail(
                "utcp:// takes an IP address and port, e.g. utcp://10.7.0.2:8080 or \
                 utcp://[fd00::2]:8080",
            )
    })
}

#[async_trait]
impl Transport for UtcpTransport {
    fn scheme(&self) -> &'static str {
        "utcp"
    }

    async fn bind(&self, endpoint: &Endpoint) -> Result<BoxListener> {
        let addr = parse(endpoint, "bind")?;
        if !addr.ip().is_unspecified() && !self.stack.has_address(addr.ip()) {
            let ours: Vec<String> = [
                self.stack.address().map(|a| a.to_string()),
                self.stack.address_v6().map(|a| a.to_string()),
            ]
            .into_iter()
            .flatten()
            .collect();
            let ours = ours.join(" and ");
            return Err(Error::new(ErrorKind::AddrNotAvailable)
                .during("bind")
                .on(endpoint)
                .detail(format!("the stack's addresses are {ours}")));
        }
        let listener = UtcpListener::bind(&self.stack, addr.port(), DEFAULT_BACKLOG)?;
        Ok(Box::new(match addr.ip().is_unspecified() {
            true => listener,
            false => listener.named(addr.ip()),
        }))
    }

    fn connector(&self) -> BoxConnector {
        Arc::new(UtcpConnector::new(self.stack.clone()))
    }
}

/// Dials `utcp://ADDR:PORT` endpoints from one [`Stack`]; also a
/// `tower::Service<http::Uri>` (`http://10.7.0.1:8080/` dials
/// `10.7.0.1:8080`, port 80 by default), the shape hyper-util's client
/// expects of a connector.
///
/// ```
/// use conn_core::{Connector, Deadline, Endpoint};
/// use conn_utcp::{MemLink, Stack, UtcpConnector, UtcpListener};
/// use tower_service::Service;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let (a, b) = MemLink::pair();
/// let server = Stack::builder(a).address("10.2.0.1/24".parse().unwrap()).build()?;
/// let client = Stack::builder(b).address("10.2.0.2/24".parse().unwrap()).build()?;
/// let _listener = UtcpListener::bind(&server, 8080, 4)?;
/// let mut dial = UtcpConnector::new(client);
/// let a = dial.connect(&"utcp://10.2.0.1:8080".parse()?, Deadline::NEVER).await?;
/// let b = dial.call("http://10.2.0.1:8080/".parse().unwrap()).await?;
/// assert_eq!(b.peer_addr().port(), 8080);
/// # drop((a, b)); Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct UtcpConnector {
    stack: Stack,
}

impl UtcpConnector {
    /// A connector dialling from `stack`.
    pub fn new(stack: Stack) -> UtcpConnector {
        UtcpConnector { stack }
    }
}

impl Connector for UtcpConnector {
    type Conn = UtcpStream;

    async fn connect(&self, endpoint: &Endpoint, deadline: Deadline) -> Result<UtcpStream> {
        endpoint.connect_address("utcp")?;
        let addr = parse(endpoint, "connect")?;
        UtcpStream::connect(&self.stack, addr, deadline).await
    }
}

impl tower_service::Service<http::Uri> for UtcpConnector {
    type Response = UtcpStream;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<UtcpStream>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let stack = self.stack.clone();
        Box::pin(async move {
            let host = uri.host().unwrap_or_default();
            let ip: IpAddr = host.trim_matches(['[', ']']).parse().map_err(|_| {
                Error::new(ErrorKind::InvalidType)
                    .during("connect")
                    .on(&uri)
                    .detail("the utcp connector needs an IP address as the host")
            })?;
            let addr = SocketAddr::new(ip, uri.port_u16().unwrap_or(80));
            UtcpStream::connect(&stack, addr, Deadline::NEVER).await
        })
    }
}
