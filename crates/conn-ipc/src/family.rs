//! What Unix-domain sockets add to conn-core's socket skeleton.

use std::fmt;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};

use conn_core::socket::{Family, SocketKind};
use conn_core::{Endpoint, Error, ErrorKind, PeerCred, Result};

use crate::addr::{IpcAddr, Unnamed};
use crate::listener::SocketFile;

/// The Unix-domain family: `ipc://` paths and abstract names.
#[derive(Debug)]
pub(crate) enum Ipc {}

/// What an IPC connection knows of its peer: the address it goes
/// through, when it has one, and whether this side dialed it (so it names
/// the peer).
#[derive(Debug)]
pub(crate) struct IpcPeer {
    pub(crate) endpoint: Option<Endpoint>,
    pub(crate) dialed: bool,
}

impl Family for Ipc {
    const KIND: SocketKind = SocketKind::UNIX;
    const SCHEME: &'static str = "ipc";
    type Peer = IpcPeer;
    /// The socket file this listener removes when it goes, if any.
    type Local = Option<SocketFile>;

    fn unnamed(fd: RawFd) -> impl fmt::Display {
        Unnamed(fd)
    }

    fn target(peer: &IpcPeer, fd: RawFd) -> impl fmt::Display + '_ {
        Target(peer.endpoint.as_ref(), fd)
    }

    fn peer_endpoint(peer: &IpcPeer) -> Option<Endpoint> {
        peer.dialed.then(|| peer.endpoint.clone()).flatten()
    }

    fn peer_cred(fd: BorrowedFd<'_>) -> Option<PeerCred> {
        peer_cred(fd).ok()
    }

    fn accept(
        listener: BorrowedFd<'_>,
        endpoint: &Endpoint,
        _: &Option<SocketFile>,
    ) -> io::Result<(OwnedFd, IpcPeer)> {
        let fd = conn_core::socket::accept_nonblocking(listener)?;
        let peer = IpcPeer {
            endpoint: Some(endpoint.clone()),
            dialed: false,
        };
        Ok((fd, peer))
    }

    fn adopted_peer(fd: BorrowedFd<'_>) -> Result<IpcPeer> {
        Ok(match IpcAddr::of_socket(fd, true) {
            Some(peer) => IpcPeer {
                endpoint: peer.endpoint(),
                dialed: true,
            },
            None => IpcPeer {
                endpoint: IpcAddr::of_socket(fd, false).and_then(|a| a.endpoint()),
                dialed: false,
            },
        })
    }

    fn adopted_listener(fd: BorrowedFd<'_>) -> Result<(Endpoint, Option<SocketFile>)> {
        // The socket file, if any, belongs to whoever created it.
        let endpoint = IpcAddr::of_socket(fd, false)
            .and_then(|addr| addr.endpoint())
            .ok_or_else(|| {
                Error::new(ErrorKind::InvalidType).detail("the socket has no address")
            })?;
        Ok((endpoint, None))
    }
}

/// The peer's process, user and group ids (`SO_PEERCRED`).
pub(crate) fn peer_cred(fd: BorrowedFd<'_>) -> io::Result<PeerCred> {
    let cred = rustix::net::sockopt::socket_peercred(fd)?;
    Ok(PeerCred {
        pid: rustix::process::Pid::as_raw(Some(cred.pid)).unsigned_abs(),
        uid: cred.uid.as_raw(),
        gid: cred.gid.as_raw(),
    })
}

/// What errors on a connection name: its address, or its descriptor.
struct Target<'a>(Option<&'a Endpoint>, RawFd);

impl fmt::Display for Target<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(ep) => ep.fmt(f),
            None => Unnamed(self.1).fmt(f),
        }
    }
}
