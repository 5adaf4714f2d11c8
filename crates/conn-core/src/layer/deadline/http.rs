//! A request's deadline from its HTTP headers (feature `http`).

use std::time::Duration;

use super::HasDeadline;
use crate::Deadline;

/// gRPC's deadline header: a timeout of at most 8 digits and a unit
/// (`H`, `M`, `S`, `m`, `u`, `n`), e.g. `grpc-timeout: 250m`.
pub const GRPC_TIMEOUT: &str = "grpc-timeout";

/// connkit's deadline header for plain HTTP: a timeout with gRPC's syntax,
/// e.g. `connkit-timeout: 250m` for 250 ms, `connkit-timeout: 2S` for two
/// seconds.
pub const CONNKIT_TIMEOUT: &str = "connkit-timeout";

/// An HTTP request's deadline: `grpc-timeout`, else `connkit-timeout`,
/// counted from when the header is read. A header that does not parse is
/// ignored (the layer's default applies), as gRPC servers do.
///
/// ```
/// use conn_core::layer::HasDeadline;
///
/// let req = http::Request::builder().header("grpc-timeout", "100m").body(()).unwrap();
/// assert!(!req.deadline().unwrap().is_expired());
/// let req = http::Request::builder().header("connkit-timeout", "0n").body(()).unwrap();
/// assert!(req.deadline().unwrap().is_expired());
/// let req = http::Request::builder().header("grpc-timeout", "soon").body(()).unwrap();
/// assert_eq!(req.deadline(), None);
/// ```
impl<B> HasDeadline for http::Request<B> {
    fn deadline(&self) -> Option<Deadline> {
        let headers = self.headers();
        let value = headers
            .get(GRPC_TIMEOUT)
            .or_else(|| headers.get(CONNKIT_TIMEOUT))?;
        parse_timeout(value.as_bytes()).map(Deadline::after)
    }
}

/// Parses gRPC's `TimeoutValue TimeoutUnit` (at most 8 ASCII digits).
pub fn parse_timeout(value: &[u8]) -> Option<Duration> {
    let (&unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::parse_timeout;
    use std::time::Duration;

    #[test]
    fn grpc_timeout_units_parse_as_the_spec_says() {
        assert_eq!(parse_timeout(b"1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_timeout(b"2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_timeout(b"3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse_timeout(b"250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_timeout(b"7u"), Some(Duration::from_micros(7)));
        assert_eq!(
            parse_timeout(b"99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
    }

    #[test]
    fn malformed_grpc_timeouts_are_refused() {
        for bad in [
            &b""[..],
            b"m",
            b"123456789m",
            b"12x",
            b"-1S",
            b"1.5S",
            b"\xff\xfeS",
        ] {
            assert_eq!(parse_timeout(bad), None, "{bad:?}");
        }
    }
}
