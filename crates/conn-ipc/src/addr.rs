//! `ipc://` addresses: filesystem paths and Linux abstract names (`@name`).

use std::ffi::OsStr;
use std::fmt;
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use conn_core::{Endpoint, Error, ErrorKind, Result};
use rustix::net::SocketAddrUnix;

/// Where a Unix-domain socket lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum IpcAddr {
    /// A socket file.
    Path(PathBuf),
    /// A Linux abstract name, written `@name`; no file, gone with its socket.
    Abstract(Vec<u8>),
}

impl IpcAddr {
    /// Parses `/path`, `relative/path`, `@abstract`, with or without `ipc://`.
    pub(crate) fn parse(input: &Path, op: &'static str) -> Result<(IpcAddr, Endpoint)> {
        let bytes = input.as_os_str().as_bytes();
        let bytes = bytes.strip_prefix(b"ipc://").unwrap_or(bytes);
        let invalid = |why: &'static str| {
            Error::new(ErrorKind::InvalidType)
                .during(op)
                .on(format_args!("ipc://{}", String::from_utf8_lossy(bytes)))
                .detail(why)
        };
        let addr = match bytes.strip_prefix(b"@") {
            Some([]) => return Err(invalid("the abstract name is empty")),
            Some(name) => IpcAddr::Abstract(name.to_vec()),
            None if bytes.is_empty() => return Err(invalid("the path is empty")),
            None => IpcAddr::Path(PathBuf::from(OsStr::from_bytes(bytes))),
        };
        // Reject what the kernel would reject, with the address named.
        addr.socket_addr()
            .map_err(|e| Error::io(e, op, addr.endpoint_text()))?;
        let endpoint = Endpoint::new("ipc", addr.display())?;
        Ok((addr, endpoint))
    }

    /// The kernel's form of this address.
    pub(crate) fn socket_addr(&self) -> std::io::Result<SocketAddrUnix> {
        Ok(match self {
            IpcAddr::Path(path) => SocketAddrUnix::new(path.as_path())?,
            IpcAddr::Abstract(name) => SocketAddrUnix::new_abstract_name(name)?,
        })
    }

    /// The address a socket is bound to (`getsockname`) or connected to
    /// (`getpeername`), when it has a name.
    pub(crate) fn of_socket(fd: BorrowedFd<'_>, peer: bool) -> Option<IpcAddr> {
        let any = if peer {
            rustix::net::getpeername(fd).ok()??
        } else {
            rustix::net::getsockname(fd).ok()?
        };
        let unix = SocketAddrUnix::try_from(any).ok()?;
        if let Some(path) = unix.path_bytes() {
            return Some(IpcAddr::Path(PathBuf::from(OsStr::from_bytes(path))));
        }
        unix.abstract_name()
            .map(|name| IpcAddr::Abstract(name.to_vec()))
    }

    /// The endpoint naming this address.
    pub(crate) fn endpoint(&self) -> Option<Endpoint> {
        Endpoint::new("ipc", self.display()).ok()
    }

    fn endpoint_text(&self) -> String {
        format!("ipc://{}", self.display())
    }

    fn display(&self) -> impl fmt::Display + '_ {
        struct D<'a>(&'a IpcAddr);
        impl fmt::Display for D<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.0 {
                    IpcAddr::Path(p) => write!(f, "{}", p.display()),
                    IpcAddr::Abstract(n) => write!(f, "@{}", String::from_utf8_lossy(n)),
                }
            }
        }
        D(self)
    }
}

/// What errors name when a socket has no address (a socketpair, an unnamed
/// inherited socket): its descriptor number.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Unnamed(pub(crate) i32);

impl fmt::Display for Unnamed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unnamed ipc socket (fd {})", self.0)
    }
}
