//! `tcp://` addresses: socket addresses and `host:port` names.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use conn_core::{Error, ErrorKind, Result};

/// What [`TcpListener::bind`](crate::TcpListener::bind) and
/// [`TcpStream::connect`](crate::TcpStream::connect) take: a socket
/// address, an `(ip, port)` or `(host, port)` pair, or text —
/// `127.0.0.1:80`, `[::1]:80`, `localhost:80` — with or without `tcp://`.
///
/// ```
/// use std::net::{Ipv6Addr, SocketAddr};
/// use conn_tcp::TcpListener;
///
/// let a = TcpListener::bind("tcp://127.0.0.1:0")?;
/// let b = TcpListener::bind((Ipv6Addr::LOCALHOST, 0))?;
/// let c = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
/// assert!(b.local_addr().is_ipv6());
/// # let _ = (a, c);
/// # Ok::<(), conn_core::Error>(())
/// ```
pub trait ToTcpAddr: sealed::Sealed {}

pub(crate) mod sealed {
    /// What a [`ToTcpAddr`](super::ToTcpAddr) names.
    pub trait Sealed {
        /// The address, or the text to parse.
        fn spec(&self) -> super::Spec;
    }
}

/// An address as given: resolved already, or text still to parse.
#[derive(Debug)]
pub enum Spec {
    /// A socket address.
    Addr(SocketAddr),
    /// `host:port` text, perhaps with `tcp://`.
    Text(String),
}

/// An address ready to use: a socket address, or a host name and port to
/// resolve (kept as `host:port` text).
#[derive(Clone, Debug)]
pub(crate) enum Target {
    Addr(SocketAddr),
    Name(String),
}

impl Target {
    /// Parses what a caller gave, naming `op` in errors.
    pub(crate) fn from_spec(spec: Spec, op: &'static str) -> Result<Target> {
        let text = match spec {
            Spec::Addr(addr) => return Ok(Target::Addr(addr)),
            Spec::Text(text) => text,
        };
        let bare = text.strip_prefix("tcp://").unwrap_or(&text);
        if let Ok(addr) = bare.parse::<SocketAddr>() {
            return Ok(Target::Addr(addr));
        }
        let invalid = |why: &'static str| {
            Error::new(ErrorKind::InvalidType)
                .during(op)
                .on(format_args!("tcp://{bare}"))
                .detail(why)
        };
        let Some((host, port)) = bare.rsplit_once(':') else {
            return Err(invalid("expected host:port"));
        };
        if port.parse::<u16>().is_err() {
            return Err(invalid("the port is not a number from 0 to 65535"));
        }
        if host.is_empty() {
            return Err(invalid("the host is empty"));
        }
        if host.contains(':') && !host.starts_with('[') {
            return Err(invalid("an IPv6 address needs brackets: [::1]:80"));
        }
        if host.starts_with('[') {
            return Err(invalid("not an IPv6 address in brackets"));
        }
        Ok(Target::Name(bare.to_owned()))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Addr(addr) => write!(f, "tcp://{addr}"),
            Target::Name(name) => write!(f, "tcp://{name}"),
        }
    }
}

/// `tcp://addr`, what errors on a known address name.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tcp(pub(crate) SocketAddr);

impl fmt::Display for Tcp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tcp://{}", self.0)
    }
}

/// What errors name when a socket's address is not known: its descriptor.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Unnamed(pub(crate) i32);

impl fmt::Display for Unnamed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tcp socket (fd {})", self.0)
    }
}

macro_rules! addr_impls {
    ($($ty:ty),*) => {$(
        impl ToTcpAddr for $ty {}
        impl sealed::Sealed for $ty {
            fn spec(&self) -> Spec {
                Spec::Addr(SocketAddr::from(*self))
            }
        }
    )*};
}

addr_impls!(
    SocketAddr,
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16)
);

impl ToTcpAddr for str {}
impl sealed::Sealed for str {
    fn spec(&self) -> Spec {
        Spec::Text(self.to_owned())
    }
}

impl ToTcpAddr for String {}
impl sealed::Sealed for String {
    fn spec(&self) -> Spec {
        Spec::Text(self.clone())
    }
}

impl ToTcpAddr for (&str, u16) {}
impl sealed::Sealed for (&str, u16) {
    fn spec(&self) -> Spec {
        match self.0.parse::<IpAddr>() {
            Ok(ip) => Spec::Addr(SocketAddr::new(ip, self.1)),
            Err(_) => Spec::Text(format!("{}:{}", self.0, self.1)),
        }
    }
}

impl<T: ToTcpAddr + ?Sized> ToTcpAddr for &T {}
impl<T: sealed::Sealed + ?Sized> sealed::Sealed for &T {
    fn spec(&self) -> Spec {
        (**self).spec()
    }
}

/// The address a socket is bound to (`getsockname`) or connected to
/// (`getpeername`).
pub(crate) fn of_socket(
    fd: std::os::fd::BorrowedFd<'_>,
    peer: bool,
) -> std::io::Result<SocketAddr> {
    let any = if peer {
        rustix::net::getpeername(fd)?.ok_or(rustix::io::Errno::NOTCONN)?
    } else {
        rustix::net::getsockname(fd)?
    };
    Ok(SocketAddr::try_from(any)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Target> {
        Target::from_spec(Spec::Text(text.into()), "bind")
    }

    #[test]
    fn literal_addresses_need_no_resolving() {
        for text in [
            "127.0.0.1:80",
            "tcp://127.0.0.1:80",
            "[::1]:80",
            "tcp://[::1]:0",
        ] {
            assert!(matches!(parse(text).unwrap(), Target::Addr(_)), "{text}");
        }
        assert!(matches!(parse("localhost:80").unwrap(), Target::Name(n) if n == "localhost:80"));
    }

    #[test]
    fn malformed_addresses_are_invalid_and_named() {
        for bad in [
            "localhost",
            "host:port",
            ":80",
            "::1:80",
            "[nope]:80",
            "tcp://x:99999",
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidType, "{bad}");
            assert!(err.to_string().starts_with("bind on tcp://"), "{err}");
        }
    }
}
