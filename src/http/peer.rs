//! Who sent a request: the request extension every connkit HTTP server adds.

use std::sync::{Arc, OnceLock};

use crate::core::{Endpoint, PeerAddr, PeerCred};

/// The peer a request came from, in every request's extensions.
///
/// The endpoint is the transport's (`tcp://192.0.2.7:51234`,
/// `utcp://10.7.0.1:40000`; `None` on transports that cannot tell, such as
/// an unnamed Unix socket); the credentials are the kernel's `SO_PEERCRED`
/// on `ipc://`, so a handler can decide by uid without trusting anything
/// the client sent.
///
/// ```
/// use connkit::http::Peer;
///
/// async fn handler(req: http::Request<hyper::body::Incoming>) -> String {
///     let peer = req.extensions().get::<Peer>().expect("connkit adds it");
///     match peer.cred() {
///         Some(cred) => format!("hello, uid {}\n", cred.uid),
///         None => format!("hello, {:?}\n", peer.endpoint()),
///     }
/// }
/// # let _ = handler;
/// ```
#[derive(Clone, Debug)]
pub struct Peer {
    inner: Arc<PeerInner>,
}

#[derive(Debug)]
struct PeerInner {
    /// A socket address is formatted into the endpoint only when asked:
    /// most handlers never ask, and every connection has a peer.
    addr: Option<PeerAddr>,
    endpoint: OnceLock<Option<Endpoint>>,
    cred: Option<PeerCred>,
}

impl Peer {
    /// The peer of a connection.
    pub fn of<C: crate::core::Connection>(conn: &C) -> Self {
        let cred = conn.peer_cred();
        match conn.peer_addr() {
            Some(addr) => Peer {
                inner: Arc::new(PeerInner {
                    addr: Some(addr),
                    endpoint: OnceLock::new(),
                    cred,
                }),
            },
            None => Peer::new(conn.peer_endpoint(), cred),
        }
    }

    /// A peer with these details.
    pub fn new(endpoint: Option<Endpoint>, cred: Option<PeerCred>) -> Self {
        Peer {
            inner: Arc::new(PeerInner {
                addr: None,
                endpoint: OnceLock::from(endpoint),
                cred,
            }),
        }
    }

    /// Where the peer is, when the transport knows.
    pub fn endpoint(&self) -> Option<&Endpoint> {
        let inner = &*self.inner;
        inner
            .endpoint
            .get_or_init(|| inner.addr.map(|a| a.endpoint()))
            .as_ref()
    }

    /// The peer's socket address and scheme, on tcp:// and utcp://.
    pub fn addr(&self) -> Option<PeerAddr> {
        self.inner.addr
    }

    /// The peer's pid, uid and gid from `SO_PEERCRED` (`ipc://` only).
    pub fn cred(&self) -> Option<PeerCred> {
        self.inner.cred
    }
}
