//! A service's error as a response a client understands.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

use crate::core::{BoxError, Error, ErrorKind};

/// gRPC status codes connkit answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GrpcCode {
    /// 1: the call was cancelled.
    Cancelled = 1,
    /// 3: the request was invalid.
    InvalidArgument = 3,
    /// 4: the deadline passed.
    DeadlineExceeded = 4,
    /// 5: nothing there.
    NotFound = 5,
    /// 7: the caller may not.
    PermissionDenied = 7,
    /// 8: out of a resource (a limit).
    ResourceExhausted = 8,
    /// 13: the server failed.
    Internal = 13,
    /// 14: the server cannot serve now (shutting down, overloaded): retry
    /// elsewhere.
    Unavailable = 14,
}

/// The status a service error maps to, for HTTP and for gRPC.
///
/// | connkit error ([`ErrorKind`])          | HTTP | gRPC                 |
/// |----------------------------------------|------|----------------------|
/// | `ShuttingDown` (`ShutdownLayer`)        | 503  | 14 UNAVAILABLE       |
/// | `Refused` (overloaded, load shed)       | 503  | 14 UNAVAILABLE       |
/// | `TimedOut` (`DeadlineLayer`)            | 504  | 4 DEADLINE_EXCEEDED  |
/// | `Canceled` (`CancelLayer`)              | 503  | 1 CANCELLED          |
/// | `PermissionDenied`                      | 403  | 7 PERMISSION_DENIED  |
/// | `NotFound`                              | 404  | 5 NOT_FOUND          |
/// | `InvalidType`                           | 400  | 3 INVALID_ARGUMENT   |
/// | `MessageTooLong`                        | 413  | 8 RESOURCE_EXHAUSTED |
/// | anything else, or not a connkit error   | 500  | 13 INTERNAL          |
///
/// tower's own `timeout::error::Elapsed` counts as `TimedOut` and
/// `load_shed::error::Overloaded` as `Refused`.
///
/// ```
/// use connkit::core::{Error, ErrorKind};
/// use connkit::http::{GrpcCode, status_of};
///
/// let late: connkit::core::BoxError = Error::new(ErrorKind::TimedOut).into();
/// assert_eq!(status_of(&late), (http::StatusCode::GATEWAY_TIMEOUT, GrpcCode::DeadlineExceeded));
/// ```
pub fn status_of(error: &BoxError) -> (StatusCode, GrpcCode) {
    let kind = if let Some(e) = error.downcast_ref::<Error>() {
        e.kind()
    } else if error.is::<tower::timeout::error::Elapsed>() {
        ErrorKind::TimedOut
    } else if error.is::<tower::load_shed::error::Overloaded>() {
        ErrorKind::Refused
    } else {
        ErrorKind::Other
    };
    match kind {
        ErrorKind::ShuttingDown | ErrorKind::Refused => {
            (StatusCode::SERVICE_UNAVAILABLE, GrpcCode::Unavailable)
        }
        ErrorKind::TimedOut => (StatusCode::GATEWAY_TIMEOUT, GrpcCode::DeadlineExceeded),
        ErrorKind::Canceled => (StatusCode::SERVICE_UNAVAILABLE, GrpcCode::Cancelled),
        ErrorKind::PermissionDenied => (StatusCode::FORBIDDEN, GrpcCode::PermissionDenied),
        ErrorKind::NotFound => (StatusCode::NOT_FOUND, GrpcCode::NotFound),
        ErrorKind::InvalidType => (StatusCode::BAD_REQUEST, GrpcCode::InvalidArgument),
        ErrorKind::MessageTooLong => (StatusCode::PAYLOAD_TOO_LARGE, GrpcCode::ResourceExhausted),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, GrpcCode::Internal),
    }
}

/// True for a gRPC request (`content-type: application/grpc...`).
pub(crate) fn is_grpc<B>(req: &http::Request<B>) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// The response for a service's error: a plain-text status for HTTP, a
/// trailers-only response with `grpc-status` and `grpc-message` for gRPC.
pub fn error_response(error: &BoxError, grpc: bool) -> Response<Full<Bytes>> {
    let (status, code) = status_of(error);
    let text = error.to_string();
    let mut response = if grpc {
        let mut r = Response::new(Full::new(Bytes::new()));
        let headers = r.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        headers.insert("grpc-status", HeaderValue::from(code as u16));
        if let Ok(message) = HeaderValue::from_str(&percent_encode(&text)) {
            headers.insert("grpc-message", message);
        }
        r
    } else {
        let mut r = Response::new(Full::new(Bytes::from(text + "\n")));
        *r.status_mut() = status;
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    };
    if status == StatusCode::SERVICE_UNAVAILABLE && !grpc {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// gRPC's percent-encoding of `grpc-message`: printable ASCII but `%`
/// stays, everything else becomes `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: ErrorKind) -> BoxError {
        Error::new(kind).during("call").into()
    }

    #[test]
    fn shutting_down_is_503_and_grpc_unavailable() {
        let r = error_response(&boxed(ErrorKind::ShuttingDown), false);
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let r = error_response(&boxed(ErrorKind::ShuttingDown), true);
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["grpc-status"], "14");
    }

    #[test]
    fn a_missed_deadline_is_504_and_grpc_deadline_exceeded() {
        let r = error_response(&boxed(ErrorKind::TimedOut), false);
        assert_eq!(r.status(), StatusCode::GATEWAY_TIMEOUT);
        let r = error_response(&boxed(ErrorKind::TimedOut), true);
        assert_eq!(r.headers()["grpc-status"], "4");
        let elapsed: BoxError = tower::timeout::error::Elapsed::new().into();
        assert_eq!(status_of(&elapsed).1, GrpcCode::DeadlineExceeded);
    }

    #[test]
    fn cancelled_is_grpc_cancelled_and_others_internal() {
        assert_eq!(
            status_of(&boxed(ErrorKind::Canceled)).1,
            GrpcCode::Cancelled
        );
        let other: BoxError = "boom".into();
        assert_eq!(
            status_of(&other),
            (StatusCode::INTERNAL_SERVER_ERROR, GrpcCode::Internal)
        );
    }

    #[test]
    fn grpc_messages_are_percent_encoded() {
        assert_eq!(percent_encode("a%b\né"), "a%25b%0A%C3%A9");
    }
}
