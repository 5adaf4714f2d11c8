use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection as HyperConnection};
use hyper_util::rt::TokioIo;
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceBuilder};

use crate::core::layer::DeadlineLayer;
use crate::core::lifecycle::dynamic::box_connection;
use crate::core::{
    BoxConnection, Connector as DialEndpoint, Deadline, Endpoint, Error, ErrorKind, Registry,
    Result,
};

/// Makes any connkit [`Connector`](crate::core::Connector) a
/// `tower::Service<Uri>` of the shape hyper-util's `Client` expects: a
/// [`Registry`] (every transport, picked by scheme) or one transport's own
/// connector (`conn_ipc::IpcConnector`, `conn_tcp::TcpConnector`, ...).
///
/// Without [`via`](Connector::via), `http://host:port/...` goes to
/// `tcp://host:port`; with it, every request goes to that endpoint (an
/// `ipc://` socket, a `mem://` name...) and the URI is only what the request
/// asks for.
///
/// ```
/// use std::time::Duration;
/// use connkit::core::mem::MemListener;
/// use connkit::http::{Routes, connector, serve as serve_http};
/// use http_body_util::{BodyExt, Empty};
/// use hyper_util::{client::legacy::Client, rt::TokioExecutor};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = serve_http(MemListener::bind("connector-doc-http")?, Routes::default());
/// tokio::spawn(server.into_future());
///
/// let dial = connector(connkit::registry(), Some("mem://connector-doc-http".parse()?), Duration::from_secs(1));
/// let client = Client::builder(TokioExecutor::new()).build::<_, Empty<bytes::Bytes>>(dial);
/// let response = client.get("http://example/".parse()?).await?;
/// let body = response.into_body().collect().await?.to_bytes();
/// assert_eq!(&body[..], b"hello from connkit\n");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Connector<C = Registry> {
    dial: Arc<C>,
    via: Option<Endpoint>,
}

impl<C> Clone for Connector<C> {
    fn clone(&self) -> Self {
        Connector {
            dial: self.dial.clone(),
            via: self.via.clone(),
        }
    }
}

impl<C: DialEndpoint> Connector<C> {
    /// Dials through `dial`, picking the endpoint from each URI.
    pub fn new(dial: C) -> Self {
        Connector {
            dial: Arc::new(dial),
            via: None,
        }
    }

    /// Sends every request to `endpoint` instead.
    pub fn via(mut self, endpoint: Endpoint) -> Self {
        self.via = Some(endpoint);
        self
    }

    fn endpoint_for(&self, uri: &Uri) -> Result<Endpoint> {
        if let Some(via) = &self.via {
            return Ok(via.clone());
        }
        let bad = |why: &'static str| {
            Error::new(ErrorKind::InvalidType)
                .during("connect")
                .on(uri)
                .detail(why)
        };
        match uri.scheme_str() {
            Some("http") => {}
            Some(_) => {
                return Err(bad(
                    "only http:// URIs can be dialled (https needs TLS, which connkit leaves to the caller)",
                ));
            }
            None => return Err(bad("the URI has no scheme")),
        }
        let host = uri.host().ok_or_else(|| bad("the URI has no host"))?;
        let port = uri.port_u16().unwrap_or(80);
        Endpoint::new("tcp", format_args!("{host}:{port}"))
    }
}

impl<C: DialEndpoint> Service<Uri> for Connector<C> {
    type Response = HttpConnection;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<HttpConnection>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let endpoint = self.endpoint_for(&uri);
        let dial = self.dial.clone();
        Box::pin(async move {
            let endpoint = endpoint?;
            let conn = box_connection(dial.connect(&endpoint, Deadline::NEVER).await?);
            Ok(HttpConnection {
                io: TokioIo::new(conn),
            })
        })
    }
}

/// A connector with a connect deadline from [`DeadlineLayer`], boxed into the
/// `Clone + Send + Sync` service with an `Unpin` future that hyper-util's
/// `Client` takes.
pub fn connector(
    registry: Registry,
    via: Option<Endpoint>,
    connect_timeout: Duration,
) -> BoxCloneSyncService<Uri, HttpConnection, Error> {
    let mut dial = Connector::new(registry);
    if let Some(via) = via {
        dial = dial.via(via);
    }
    BoxCloneSyncService::new(
        ServiceBuilder::new()
            .layer(DeadlineLayer::new(connect_timeout))
            .service(dial),
    )
}

/// A connection as hyper sees it: hyper's I/O traits over any connkit
/// transport.
#[derive(Debug)]
pub struct HttpConnection {
    io: TokioIo<BoxConnection>,
}

impl HttpConnection {
    /// The transport connection underneath.
    pub fn into_inner(self) -> BoxConnection {
        self.io.into_inner()
    }
}

impl HyperConnection for HttpConnection {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for HttpConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for HttpConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
