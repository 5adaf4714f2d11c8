//! The checks behind every `from_fd`: is this the socket we expect?

use std::fmt;
use std::os::fd::BorrowedFd;

use rustix::net::{AddressFamily, Protocol, SocketType, ipproto, sockopt};

use crate::{Error, ErrorKind, Result};

/// Whether an adopted socket must be listening or connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A listening socket (`SO_ACCEPTCONN` set), for a listener's `from_fd`.
    Listening,
    /// A connection (`SO_ACCEPTCONN` clear), for a stream's `from_fd`.
    Connection,
}

/// The kind of stream socket a transport adopts: its address families and,
/// where the family alone does not say it, its protocol.
#[derive(Clone, Copy, Debug)]
pub struct SocketKind {
    /// What errors call it: "not a {name} socket".
    pub name: &'static str,
    /// The address families it may have.
    pub families: &'static [AddressFamily],
    /// The protocol it must have (`SO_PROTOCOL`), if checked.
    pub protocol: Option<Protocol>,
}

impl SocketKind {
    /// Unix-domain stream sockets.
    pub const UNIX: SocketKind = SocketKind {
        name: "Unix-domain",
        families: &[AddressFamily::UNIX],
        protocol: None,
    };

    /// TCP sockets, IPv4 or IPv6.
    pub const TCP: SocketKind = SocketKind {
        name: "TCP",
        families: &[AddressFamily::INET, AddressFamily::INET6],
        protocol: Some(ipproto::TCP),
    };

    /// Checks that `fd` is a stream socket of this kind in `role`, and makes
    /// it non-blocking. Returns its address family.
    ///
    /// `NotSocket` when `fd` is not a socket; `InvalidType` when it has
    /// another family, type, protocol or role. Errors name `op` and
    /// `target`.
    pub(crate) fn adopt(
        &self,
        fd: BorrowedFd<'_>,
        role: Role,
        op: &'static str,
        target: impl fmt::Display,
    ) -> Result<AddressFamily> {
        let fail = |e: rustix::io::Errno| Error::io(e.into(), op, &target);
        let invalid = |why: std::borrow::Cow<'static, str>| {
            Error::new(ErrorKind::InvalidType)
                .during(op)
                .on(&target)
                .detail(why)
        };
        let not_this = || invalid(format!("not a {} socket", self.name).into());
        // ENOTSOCK (NotSocket) for anything that is not a socket.
        let ty = sockopt::socket_type(fd).map_err(fail)?;
        let family = sockopt::socket_domain(fd).map_err(fail)?;
        if !self.families.contains(&family) {
            return Err(not_this());
        }
        if ty != SocketType::STREAM {
            return Err(invalid("not a stream socket".into()));
        }
        if let Some(protocol) = self.protocol
            && sockopt::socket_protocol(fd).map_err(fail)? != Some(protocol)
        {
            return Err(not_this());
        }
        match (sockopt::socket_acceptconn(fd).map_err(fail)?, role) {
            (true, Role::Connection) => {
                return Err(invalid("a listening socket, not a connection".into()));
            }
            (false, Role::Listening) => return Err(invalid("not a listening socket".into())),
            _ => {}
        }
        rustix::io::ioctl_fionbio(fd, true).map_err(fail)?;
        Ok(family)
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn the_wrong_family_is_invalid_type_and_a_file_is_not_a_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        SocketKind::TCP
            .adopt(listener.as_fd(), Role::Listening, "adopt listener", "fd")
            .unwrap();
        let err = SocketKind::UNIX
            .adopt(listener.as_fd(), Role::Listening, "adopt listener", "fd")
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidType);
        assert_eq!(
            err.to_string(),
            "adopt listener on fd: invalid argument or handle type (EINVAL): not a Unix-domain socket"
        );
        let file = std::fs::File::open("/dev/null").unwrap();
        let err = SocketKind::TCP
            .adopt(file.as_fd(), Role::Connection, "adopt connection", "fd")
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotSocket);
    }
}
