//! What TCP sockets add to conn-core's socket skeleton.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};

use conn_core::socket::{Family, SocketKind};
use conn_core::{Endpoint, Error, PeerAddr, Result};
use rustix::net::sockopt;

use crate::TcpListenerOptions;
use crate::addr::{Tcp as TcpTarget, Unnamed, of_socket};

/// The TCP family, IPv4 and IPv6.
#[derive(Debug)]
pub(crate) enum Tcp {}

/// What a TCP listener keeps besides its endpoint.
#[derive(Debug)]
pub(crate) struct TcpLocal {
    /// The address it is bound to (with the port the kernel picked).
    pub(crate) addr: SocketAddr,
    /// Whether accepted streams get `TCP_NODELAY`.
    pub(crate) nodelay: bool,
    /// How it was bound, so a split can bind its `SO_REUSEPORT` sibling;
    /// `None` for an adopted descriptor or a `dup`.
    pub(crate) options: Option<TcpListenerOptions>,
}

impl Family for Tcp {
    const KIND: SocketKind = SocketKind::TCP;
    const SCHEME: &'static str = "tcp";
    /// The peer's address, kept by value.
    type Peer = SocketAddr;
    type Local = TcpLocal;

    fn unnamed(fd: RawFd) -> impl fmt::Display {
        Unnamed(fd)
    }

    fn target(peer: &SocketAddr, _: RawFd) -> impl fmt::Display + '_ {
        TcpTarget(*peer)
    }

    fn peer_endpoint(peer: &SocketAddr) -> Option<Endpoint> {
        Endpoint::new("tcp", peer).ok()
    }

    fn peer_addr(peer: &SocketAddr) -> Option<PeerAddr> {
        Some(PeerAddr {
            scheme: "tcp",
            addr: *peer,
        })
    }

    fn accept(
        listener: BorrowedFd<'_>,
        _: &Endpoint,
        local: &TcpLocal,
    ) -> io::Result<(OwnedFd, SocketAddr)> {
        let (fd, peer) = conn_core::socket::accept_from(listener)?;
        // A connection reset while queued may have no address any more;
        // it is still returned, its first read reports the reset.
        let peer = peer
            .and_then(|p| SocketAddr::try_from(p).ok())
            .unwrap_or(match local.addr {
                SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
                SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
            });
        if local.nodelay {
            // Only fails for a bad descriptor or option, neither possible
            // here; a stream without it still works.
            let _ = sockopt::set_tcp_nodelay(&fd, true);
        }
        Ok((fd, peer))
    }

    fn adopted_peer(fd: BorrowedFd<'_>) -> Result<SocketAddr> {
        of_socket(fd, true).map_err(Error::from)
    }

    fn adopted_listener(fd: BorrowedFd<'_>) -> Result<(Endpoint, TcpLocal)> {
        let addr = of_socket(fd, false)?;
        let local = TcpLocal {
            addr,
            nodelay: true,
            options: None,
        };
        Ok((endpoint_of(addr), local))
    }
}

/// `tcp://addr`.
pub(crate) fn endpoint_of(addr: SocketAddr) -> Endpoint {
    Endpoint::new("tcp", addr).expect("a socket address is a valid endpoint")
}
