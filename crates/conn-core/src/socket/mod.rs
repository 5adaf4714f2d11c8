//! One skeleton for the kernel-socket transports (`conn-ipc`, `conn-tcp`):
//! the stream, the listener and the way they wait, accept, adopt and
//! release descriptors, written once and generic over a small [`Family`]
//! trait. A transport crate says only what differs between socket
//! families (its addresses, what its errors name, how it accepts, what it
//! knows of a peer) and keeps its own options and constructors.
//!
//! | part | what it does |
//! |---|---|
//! | [`SocketStream`] | a connected socket: `AsyncRead` / `AsyncWrite` (vectored sends), `done`, `close`, `kill`, `from_fd`, `connect` |
//! | [`SocketListener`] | a listening socket: `accept` until a deadline or a token, `from_fd`, `duplicate` for per-core loops |
//! | [`Family`] | what a socket family adds: its [`SocketKind`], peer and listener state, the accept call, what errors name |
//! | [`socket_stream!`](crate::socket_stream) / [`socket_listener!`](crate::socket_listener) | a transport's own named types over the two, with every trait forwarded |
//!
//! Descriptors join tokio's reactor only when a call would block, so a
//! connection served without waiting costs neither an allocation nor a
//! registration; dropping one closes this process's descriptor and never
//! calls `shutdown(2)`, so after `fork` another process's copy stays usable.

mod listener;
mod newtype;
mod stream;

use std::fmt;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};

pub use crate::sys::SocketKind;
pub use crate::sys::{accept_from, accept_nonblocking};
pub use listener::SocketListener;
pub use stream::SocketStream;

use crate::{Endpoint, PeerAddr, PeerCred, Result};

/// What one socket family (Unix-domain, TCP) adds to the shared skeleton.
///
/// Every method is called with the descriptor at hand and returns what the
/// skeleton cannot know; the skeleton names its errors (`accept on …`,
/// `adopt connection on …`), so errors from here carry no operation.
pub trait Family: Sized + Send + Sync + 'static {
    /// The sockets `from_fd` adopts: their families and protocol.
    const KIND: SocketKind;

    /// The transport's scheme (`ipc`, `tcp`), as its lifecycle spans name
    /// it ([`crate::trace`]).
    const SCHEME: &'static str;

    /// What a connection knows of its peer, kept by value in the stream
    /// (so accepting allocates nothing for it).
    type Peer: fmt::Debug + Send + Sync + Unpin + 'static;

    /// What a listener knows of itself besides its endpoint (options for
    /// the streams it accepts, a socket file to remove).
    type Local: fmt::Debug + Send + Sync + Unpin + 'static;

    /// What errors name for a socket known only by its descriptor, e.g.
    /// `tcp socket (fd 7)`.
    fn unnamed(fd: RawFd) -> impl fmt::Display;

    /// What errors on a connection name: its peer, or its descriptor.
    fn target(peer: &Self::Peer, fd: RawFd) -> impl fmt::Display + '_;

    /// The peer as an endpoint, when the family can tell
    /// ([`Connection::peer_endpoint`](crate::Connection::peer_endpoint)).
    fn peer_endpoint(peer: &Self::Peer) -> Option<Endpoint>;

    /// The peer's socket address
    /// ([`Connection::peer_addr`](crate::Connection::peer_addr)).
    fn peer_addr(_peer: &Self::Peer) -> Option<PeerAddr> {
        None
    }

    /// The peer's credentials, where the kernel knows them
    /// ([`Connection::peer_cred`](crate::Connection::peer_cred)).
    fn peer_cred(_fd: BorrowedFd<'_>) -> Option<PeerCred> {
        None
    }

    /// One non-blocking accept on `listener`, a socket of this family:
    /// `WouldBlock` when no peer waits. Returns the connection (already
    /// non-blocking and close-on-exec) and what it knows of its peer.
    fn accept(
        listener: BorrowedFd<'_>,
        endpoint: &Endpoint,
        local: &Self::Local,
    ) -> io::Result<(OwnedFd, Self::Peer)>;

    /// The peer of an adopted connection (`from_fd`), already checked to be
    /// a connected stream socket of [`KIND`](Family::KIND).
    fn adopted_peer(fd: BorrowedFd<'_>) -> Result<Self::Peer>;

    /// The endpoint and state of an adopted listener (`from_fd`), already
    /// checked to be a listening stream socket of [`KIND`](Family::KIND).
    fn adopted_listener(fd: BorrowedFd<'_>) -> Result<(Endpoint, Self::Local)>;
}

#[doc(hidden)]
pub mod __private {
    //! What the newtype macros expand to, reachable from the crates that
    //! use them without naming tokio themselves.
    pub use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
    pub use tokio_util::sync::CancellationToken;
}
