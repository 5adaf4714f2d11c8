//! Transport-qualified addresses: `scheme://rest`.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::error::{Error, ErrorKind};

/// An address qualified by its transport, as a URL: `ipc:///run/x.sock`,
/// `tcp://0.0.0.0:80`, `utcp://10.0.0.2:80`, `mailbox://group`, `mem://name`.
///
/// Cloning is cheap (one reference count), so endpoints travel with
/// connections and errors freely.
///
/// ```
/// use conn_core::Endpoint;
///
/// let ep: Endpoint = "ipc:///run/x.sock".parse().unwrap();
/// assert_eq!(ep.scheme(), "ipc");
/// assert_eq!(ep.address(), "/run/x.sock");
/// assert_eq!(ep.to_string(), "ipc:///run/x.sock");
///
/// assert!("no-scheme".parse::<Endpoint>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    url: Arc<str>,
    scheme_len: usize,
}

impl Endpoint {
    /// Parses `scheme://address`. The scheme is lower-case letters, digits,
    /// `+`, `-` and `.`, starting with a letter; the address is not empty.
    pub fn parse(url: &str) -> Result<Endpoint, Error> {
        let invalid = |why: &'static str| {
            Error::new(ErrorKind::InvalidType)
                .during("parse endpoint")
                .on(format!("{url:?}"))
                .detail(why)
        };
        let (scheme, address) = url
            .split_once("://")
            .ok_or_else(|| invalid("expected scheme://address"))?;
        let mut chars = scheme.chars();
        if !chars.next().is_some_and(|c| c.is_ascii_lowercase())
            || !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
        {
            return Err(invalid(
                "the scheme must be lower-case letters, digits, '+', '-' or '.'",
            ));
        }
        if address.is_empty() {
            return Err(invalid("the address is empty"));
        }
        Ok(Endpoint {
            url: url.into(),
            scheme_len: scheme.len(),
        })
    }

    /// Builds an endpoint from a scheme and an address.
    pub fn new(scheme: &str, address: impl fmt::Display) -> Result<Endpoint, Error> {
        Endpoint::parse(&format!("{scheme}://{address}"))
    }

    /// The transport's scheme, e.g. `"ipc"`.
    pub fn scheme(&self) -> &str {
        &self.url[..self.scheme_len]
    }

    /// Everything after `scheme://`.
    pub fn address(&self) -> &str {
        &self.url[self.scheme_len + 3..]
    }

    /// The whole URL.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The address a connector of `scheme` dials: every [`Connector`]
    /// refuses another transport's endpoint the same way, `InvalidType`
    /// naming the endpoint, rather than misreading its address.
    ///
    /// ```
    /// use conn_core::{Endpoint, ErrorKind};
    /// let ep: Endpoint = "mem://x".parse().unwrap();
    /// assert_eq!(ep.connect_address("mem").unwrap(), "x");
    /// let err = ep.connect_address("tcp").unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidType);
    /// assert_eq!(err.to_string(), "connect on mem://x: invalid argument or handle type (EINVAL): the tcp connector dials tcp:// endpoints only");
    /// ```
    ///
    /// [`Connector`]: crate::Connector
    pub fn connect_address(&self, scheme: &str) -> Result<&str, Error> {
        if self.scheme() == scheme {
            return Ok(self.address());
        }
        Err(Error::new(ErrorKind::InvalidType)
            .during("connect")
            .on(self)
            .detail(format!(
                "the {scheme} connector dials {scheme}:// endpoints only"
            )))
    }
}

impl FromStr for Endpoint {
    type Err = Error;
    fn from_str(s: &str) -> Result<Endpoint, Error> {
        Endpoint::parse(s)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint({})", self.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_form() {
        for (url, scheme, addr) in [
            ("ipc:///run/x.sock", "ipc", "/run/x.sock"),
            ("ipc://@abstract", "ipc", "@abstract"),
            ("tcp://0.0.0.0:80", "tcp", "0.0.0.0:80"),
            ("utcp://10.0.0.2:80", "utcp", "10.0.0.2:80"),
            ("mailbox://group", "mailbox", "group"),
            ("mem://name", "mem", "name"),
        ] {
            let ep = Endpoint::parse(url).unwrap();
            assert_eq!((ep.scheme(), ep.address()), (scheme, addr));
        }
    }

    #[test]
    fn rejects_malformed_urls_with_a_clear_error() {
        for bad in ["", "mem:/x", "Mem://x", "1x://y", "mem://", "://x"] {
            let err = Endpoint::parse(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidType, "{bad}");
            assert!(err.to_string().starts_with("parse endpoint on "), "{err}");
        }
    }
}
