//! The HTTP server: any tower service over any connkit listener, HTTP/1.1
//! and HTTP/2 on one listener, under connkit's drain.

mod conn;
mod io;
mod limit;
mod request;

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioTimer;
use hyper_util::server::conn::auto;

use crate::core::serve::{Serve, serve as serve_loop};
use limit::Limit;

pub use conn::HttpHandler;
pub use request::{ResponseBody, ResponseFuture};

/// Serves `service` over HTTP/1.1 and HTTP/2 on every connection `listener`
/// accepts, with [`Http`]'s default settings.
///
/// `service` is any `tower::Service<http::Request<hyper::body::Incoming>>`
/// that is `Clone + Send + 'static` and answers `http::Response<B>` for a
/// body `B` of `Bytes`: an axum `Router`, a `tower::ServiceBuilder` stack
/// with tower-http layers, a tonic `Routes`, a `service_fn`. Every request
/// carries its [`Peer`](crate::http::Peer) in its extensions. An error of
/// the service becomes a response ([`status_of`](crate::http::status_of)
/// says which), so connkit's layers compose in front of any application.
///
/// Hand an axum `Router` over as `router.with_state(())`, which is what
/// `axum::serve` does with it: its handlers are then made into services
/// once, instead of on every request (an allocation and a clone each).
///
/// `.with_graceful_shutdown(signal, drain)` drains as
/// [`serve`](crate::core::serve()) does and returns its
/// [`ShutdownReport`](crate::core::ShutdownReport), with the requests
/// counted: on the signal accepting stops; an idle HTTP/1 connection closes
/// at once, a busy one after its response (sent with `Connection: close`);
/// an HTTP/2 connection gets GOAWAY at once and its open streams finish; at
/// the drain deadline whatever is left is killed, its streams with it.
///
/// ```
/// use std::time::Duration;
/// use connkit::core::mem::MemListener;
/// use http_body_util::Full;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> connkit::core::Result<()> {
/// let app = tower::service_fn(|_req: http::Request<hyper::body::Incoming>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(bytes::Bytes::from("hi\n"))))
/// });
/// let report = connkit::http::serve(MemListener::bind("http-serve-doc")?, app)
///     .with_graceful_shutdown(async {}, Duration::from_secs(5))
///     .await?;
/// assert_eq!(report.accepted, 0);
/// # Ok(()) }
/// ```
pub fn serve<L, S>(listener: L, service: S) -> Serve<L, HttpHandler<S>> {
    Http::new().serve(listener, service)
}

/// Which protocols a server speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Protocols {
    /// HTTP/1.1, and HTTP/2 with prior knowledge (h2c), told apart by the
    /// first bytes of each connection.
    #[default]
    Auto,
    /// HTTP/1.1 only: an HTTP/2 preface is a malformed request.
    Http1,
    /// HTTP/2 only (prior knowledge).
    Http2,
}

/// An HTTP server's settings, each with a sane default.
///
/// ```
/// use std::time::Duration;
/// use connkit::http::{Http, Protocols};
///
/// let http = Http::new()
///     .header_read_timeout(Duration::from_secs(10))
///     .idle_timeout(Duration::from_secs(30))
///     .max_connections(10_000)
///     .max_concurrent_streams(128)
///     .protocols(Protocols::Auto);
/// # let _ = http;
/// ```
///
/// Per-core serving takes the handler:
///
/// ```no_run
/// use connkit::core::serve::Server;
/// use connkit::http::Http;
///
/// # async fn run(listener: conn_tcp::TcpListener) -> connkit::core::Result<()> {
/// let app = tower::service_fn(|_req: http::Request<hyper::body::Incoming>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Empty::<bytes::Bytes>::new()))
/// });
/// let report = Server::per_core(2)
///     .serve(listener, Http::new().handler(app))
///     .with_graceful_shutdown(async { tokio::signal::ctrl_c().await.ok(); }, std::time::Duration::from_secs(10))
///     .await?;
/// println!("{report}");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Http {
    settings: Settings,
}

#[derive(Clone, Debug)]
pub(crate) struct Settings {
    protocols: Protocols,
    header_read_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    h2_keep_alive_interval: Option<Duration>,
    h2_keep_alive_timeout: Duration,
    max_concurrent_streams: u32,
    max_header_bytes: usize,
    max_connections: usize,
    limit: Arc<Limit>,
    close_within: Duration,
}

/// Descriptors kept free below the process's limit by the default
/// connection limit, for the listener, logs and the application's own.
const FD_RESERVE: u64 = 64;

/// hyper's HTTP/1 read buffer cannot be smaller.
const MIN_HEADER_BYTES: usize = 8192;

impl Default for Http {
    fn default() -> Self {
        Http::new()
    }
}

impl Http {
    /// The defaults: both protocols; a request's head within 30 s
    /// (and the first request of a connection within 30 s of its accept); a
    /// connection with no request for 60 s closed; no HTTP/2 pings (see
    /// [`http2_keep_alive`](Http::http2_keep_alive)); 256 concurrent streams per HTTP/2
    /// connection; heads of at most 64 KiB (HTTP/1 answers 431 beyond);
    /// as many connections as the process's descriptor limit allows less 64
    /// (`RLIMIT_NOFILE` read now; past it accept waits); and 5 s for a
    /// closing peer to end its side.
    pub fn new() -> Self {
        let max_connections = default_max_connections();
        Http {
            settings: Settings {
                protocols: Protocols::Auto,
                header_read_timeout: Some(Duration::from_secs(30)),
                idle_timeout: Some(Duration::from_secs(60)),
                h2_keep_alive_interval: None,
                h2_keep_alive_timeout: Duration::from_secs(20),
                max_concurrent_streams: 256,
                max_header_bytes: 64 * 1024,
                max_connections,
                limit: Limit::new(max_connections),
                close_within: Duration::from_secs(5),
            },
        }
    }

    /// Which protocols to speak.
    pub fn protocols(mut self, protocols: Protocols) -> Self {
        self.settings.protocols = protocols;
        self
    }

    /// How long a new connection may take to send its first request (both
    /// protocols; killed past it, as a peer that never spoke), and an
    /// HTTP/1 keep-alive client the next request's head, counted from the
    /// end of the previous response as hyper counts it (noticed up to a
    /// quarter of the timeout late; the connection is then closed as the
    /// drain closes an idle one, so a half-sent head cannot hold it).
    /// `None`: no limit.
    pub fn header_read_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.settings.header_read_timeout = timeout.into();
        self
    }

    /// How long a connection may go with no request arriving and none
    /// running before it is ended as the drain ends it (HTTP/1 closes,
    /// HTTP/2 gets GOAWAY). A quiet spell is noticed up to a quarter of the
    /// timeout late, so an idle connection ends between 1 and 1.25 times the
    /// timeout after its last request, never early. For HTTP/1
    /// the header timeout also runs while a keep-alive connection waits, so
    /// the shorter of the two ends it. `None`: no limit.
    pub fn idle_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.settings.idle_timeout = timeout.into();
        self
    }

    /// How often an HTTP/2 connection is pinged, and how long the answer
    /// may take before the connection is closed as dead. `None`: no pings.
    ///
    /// Off by default, as in hyper, tonic, axum and Go's `net/http`: the
    /// idle timeout already ends a connection with nothing to do, and a
    /// dead peer of a busy one is found by TCP's own retransmission timeout
    /// (or by the drain deadline). Turn it on where a middlebox drops quiet
    /// flows or dead peers must go within seconds; it costs every request a
    /// little (hyper reads the clock and a timer on each frame: about 650
    /// instructions a request, 2 %, measured with callgrind on `h2load -c 32
    /// -m 10`).
    ///
    /// ```
    /// use std::time::Duration;
    /// let http = connkit::http::Http::new()
    ///     .http2_keep_alive(Duration::from_secs(20), Duration::from_secs(10));
    /// # let _ = http;
    /// ```
    pub fn http2_keep_alive(
        mut self,
        interval: impl Into<Option<Duration>>,
        timeout: Duration,
    ) -> Self {
        self.settings.h2_keep_alive_interval = interval.into();
        self.settings.h2_keep_alive_timeout = timeout;
        self
    }

    /// Streams an HTTP/2 client may have open at once on one connection;
    /// more are refused (`REFUSED_STREAM`), the connection goes on.
    pub fn max_concurrent_streams(mut self, streams: u32) -> Self {
        self.settings.max_concurrent_streams = streams;
        self
    }

    /// The largest request head accepted (at least 8 KiB for HTTP/1):
    /// HTTP/1 answers 431 past it, HTTP/2 refuses the stream.
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.settings.max_header_bytes = bytes;
        self
    }

    /// Connections served at once; past it the serve loop accepts no more
    /// until one ends, and peers wait in the listener's backlog. Clones of
    /// the handler (per-core threads) share the one limit.
    pub fn max_connections(mut self, connections: usize) -> Self {
        let connections = connections.max(1);
        self.settings.max_connections = connections;
        self.settings.limit = Limit::new(connections);
        self
    }

    /// How long a closing connection waits for its peer to end its side.
    pub fn close_within(mut self, within: Duration) -> Self {
        self.settings.close_within = within;
        self
    }

    /// The connection limit in force.
    pub fn connection_limit(&self) -> usize {
        self.settings.max_connections
    }

    /// The connection handler for [`serve`](crate::core::serve()) and
    /// [`Server::per_core`](crate::core::serve::Server::per_core).
    pub fn handler<S>(&self, service: S) -> HttpHandler<S> {
        HttpHandler::new(service, Arc::new(self.settings.clone()))
    }

    /// Serves `service` on `listener` with these settings (see [`serve`]).
    pub fn serve<L, S>(&self, listener: L, service: S) -> Serve<L, HttpHandler<S>> {
        serve_loop(listener, self.handler(service))
    }
}

impl Settings {
    /// hyper-util's auto builder with these settings, for one connection.
    fn builder<E: Clone>(&self, exec: E) -> auto::Builder<E> {
        let mut builder = auto::Builder::new(exec);
        builder = match self.protocols {
            Protocols::Auto => builder,
            Protocols::Http1 => builder.http1_only(),
            Protocols::Http2 => builder.http2_only(),
        };
        // No timer for HTTP/1: the connection's driver keeps its header
        // timeout (conn.rs, `Quiet`), instead of hyper's timer per request.
        builder
            .http1()
            .keep_alive(true)
            .header_read_timeout(None)
            .max_buf_size(self.max_header_bytes.max(MIN_HEADER_BYTES));
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(self.max_concurrent_streams)
            .keep_alive_interval(self.h2_keep_alive_interval)
            .keep_alive_timeout(self.h2_keep_alive_timeout)
            .max_header_list_size(u32::try_from(self.max_header_bytes).unwrap_or(u32::MAX));
        builder
    }
}

fn default_max_connections() -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    usize::try_from(soft.saturating_sub(FD_RESERVE).max(1)).unwrap_or(usize::MAX)
}
