//! connkit listeners as `axum::serve` listeners.
//!
//! `axum::serve(listener, router)` takes any [`axum::serve::Listener`]; the
//! orphan rule keeps connkit from implementing axum's trait for
//! `conn_ipc::IpcListener` and the others directly, so [`AxumListener`]
//! wraps any of them.

use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;

use crate::core::serve::{AcceptBackoff, AcceptVerdict, accept_verdict};
use crate::core::{Deadline, Error, Listener};
use crate::http::Peer;

/// Any connkit [`Listener`] as an [`axum::serve::Listener`]: `ipc://`,
/// `tcp://`, `mem://`, `utcp://` under `axum::serve`.
///
/// `accept` never fails, as axum's own `TcpListener` impl: an error of one
/// peer (reset, aborted) is skipped, an exhausted resource (EMFILE, ENFILE,
/// ENOMEM, ENOBUFS) pauses accepting, 5 ms doubling to 1 s, and anything
/// else is logged and retried after 1 s.
///
/// The address of a connection is its [`Peer`]: the peer's endpoint (none
/// where the transport cannot tell, as an unnamed Unix socket) and on
/// `ipc://` its `SO_PEERCRED`, so `ConnectInfo<Peer>` gives an axum handler
/// the caller's uid (with
/// `router.into_make_service_with_connect_info::<Peer>()`).
/// [`local_addr`](axum::serve::Listener::local_addr) is the listener's
/// endpoint, as a `Peer` with no credentials (axum has one address type for
/// both).
///
/// ```
/// use axum::{Router, routing::get};
/// use connkit::core::mem::MemListener;
/// use connkit::http::axum::AxumListener;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let app = Router::new().route("/", get(|| async { "hi\n" }));
/// let listener = AxumListener::new(MemListener::bind("axum-listener-doc")?);
/// let local = axum::serve::Listener::local_addr(&listener)?;
/// assert_eq!(local.endpoint().unwrap().as_str(), "mem://axum-listener-doc");
/// axum::serve(listener, app)
///     .with_graceful_shutdown(async {})
///     .await?;
/// # Ok(()) }
/// ```
///
/// # Which serve to use
///
/// `axum::serve(...).with_graceful_shutdown(signal)` stops accepting on
/// the signal and then waits for every open connection to end, with no
/// limit: one client holding a stream (a long poll, a gRPC watch, a
/// keep-alive connection that never goes idle) holds the process forever,
/// and it tells nothing of what happened. An axum `Router` is a tower
/// service, so [`connkit::http::serve`](crate::http::serve()) serves it
/// directly on any connkit listener, without this wrapper, and its
/// `.with_graceful_shutdown(signal, drain)` is the one with a drain
/// deadline: idle connections close at once, busy ones after their
/// response, HTTP/2 gets GOAWAY, whatever is left at the deadline is killed,
/// and it returns a [`ShutdownReport`](crate::core::ShutdownReport) saying
/// how many connections and requests finished, were cut or killed. Use
/// `AxumListener` where code is already written against `axum::serve`.
#[derive(Debug)]
pub struct AxumListener<L> {
    inner: L,
    backoff: AcceptBackoff,
}

impl<L: Listener> AxumListener<L> {
    /// Wraps `listener`.
    pub fn new(listener: L) -> Self {
        AxumListener {
            inner: listener,
            backoff: AcceptBackoff::new(),
        }
    }

    /// The connkit listener inside.
    pub fn into_inner(self) -> L {
        self.inner
    }

    /// How long to wait before the next accept after `err`, if at all: the
    /// serve loop's own verdict.
    fn pause_after(&mut self, err: &Error) -> Option<Duration> {
        match accept_verdict(err) {
            // That one peer's problem: the next may be fine.
            AcceptVerdict::Retry => None,
            // A resource ran out: give connections time to end and free it.
            AcceptVerdict::Backoff => Some(self.backoff.pause().0),
            // axum's contract leaves no way to report a broken listener, so
            // keep trying as axum's own listeners do, slowly.
            AcceptVerdict::Fatal => Some(AcceptBackoff::MAX),
        }
    }
}

impl<L: Listener> axum::serve::Listener for AxumListener<L> {
    type Io = L::Conn;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept(Deadline::NEVER).await {
                Ok(conn) => {
                    self.backoff.recovered();
                    let peer = Peer::of(&conn);
                    return (conn, peer);
                }
                Err(err) => {
                    if let Some(pause) = self.pause_after(&err) {
                        tracing::error!(error = %err, ?pause, "accept failed; pausing");
                        tokio::time::sleep(pause).await;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(Peer::new(Some(self.inner.local_endpoint()), None))
    }
}

/// `ConnectInfo<Peer>` in handlers served from an [`AxumListener`].
impl<L: Listener> Connected<IncomingStream<'_, AxumListener<L>>> for Peer {
    fn connect_info(stream: IncomingStream<'_, AxumListener<L>>) -> Self {
        stream.remote_addr().clone()
    }
}
