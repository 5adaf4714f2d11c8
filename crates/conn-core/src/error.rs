//! One error taxonomy for every connkit crate, each kind with its errno twin.

use std::borrow::Cow;
use std::fmt;
use std::io;

/// A `Result` whose error is connkit's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

macro_rules! error_kinds {
    ($( $(#[$doc:meta])* $kind:ident = $errno:ident, $name:literal, $text:literal; )*) => {
        /// What went wrong, one list for every connkit crate.
        ///
        /// Each kind has an errno twin ([`ErrorKind::errno`]) so logs, C-minded
        /// users and the kernel agree on names.
        ///
        /// ```
        /// use conn_core::ErrorKind;
        /// assert_eq!(ErrorKind::ProcessFdLimit.errno(), libc::EMFILE);
        /// assert_eq!(ErrorKind::from_errno(libc::ETIMEDOUT), ErrorKind::TimedOut);
        /// assert_eq!(ErrorKind::TimedOut.errno_name(), "ETIMEDOUT");
        /// ```
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorKind {
            $( $(#[$doc])* $kind, )*
        }

        impl ErrorKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$kind),*];

            /// The errno this kind stands for.
            pub fn errno(self) -> i32 {
                match self { $(ErrorKind::$kind => libc::$errno,)* }
            }

            /// The errno's symbolic name, e.g. `"EMFILE"`.
            pub fn errno_name(self) -> &'static str {
                match self { $(ErrorKind::$kind => $name,)* }
            }

            /// A short description, e.g. `"process fd limit reached"`.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorKind::$kind => $text,)* }
            }

            /// The kind an errno stands for; [`ErrorKind::Other`] for errnos
            /// connkit has no kind of its own for.
            pub fn from_errno(errno: i32) -> ErrorKind {
                $( if errno == libc::$errno { return ErrorKind::$kind; } )*
                ErrorKind::Other
            }
        }
    };
}

error_kinds! {
    /// The handle is not (or no longer) valid here.
    BadHandle = EBADF, "EBADF", "bad handle";
    /// The operation was cancelled before it finished.
    Canceled = ECANCELED, "ECANCELED", "canceled";
    /// The peer reset the connection, or vanished while we waited for its end.
    ConnectionReset = ECONNRESET, "ECONNRESET", "connection reset by peer";
    /// Nobody listens at the address.
    ConnectionRefused = ECONNREFUSED, "ECONNREFUSED", "connection refused";
    /// The connection was aborted before it was accepted.
    ConnectionAborted = ECONNABORTED, "ECONNABORTED", "connection aborted";
    /// The operation is not supported by this transport or handle.
    NotSupported = ENOTSUP, "ENOTSUP", "operation not supported";
    /// The deadline passed before the operation finished.
    TimedOut = ETIMEDOUT, "ETIMEDOUT", "deadline passed";
    /// The process has no free file descriptors.
    ProcessFdLimit = EMFILE, "EMFILE", "process fd limit reached";
    /// The system-wide file table is full.
    SystemFdLimit = ENFILE, "ENFILE", "system fd limit reached";
    /// Memory could not be allocated.
    OutOfMemory = ENOMEM, "ENOMEM", "out of memory";
    /// No buffer space is available.
    NoBufferSpace = ENOBUFS, "ENOBUFS", "no buffer space";
    /// The connection is not (or no longer) established.
    NotConnected = ENOTCONN, "ENOTCONN", "not connected";
    /// Refused for now: overloaded, or would block.
    Refused = EAGAIN, "EAGAIN", "refused, try again later";
    /// Refused for good: the service or server is shutting down.
    ShuttingDown = ESHUTDOWN, "ESHUTDOWN", "shutting down";
    /// The handle belongs to another context (stack, runtime, core).
    WrongContext = EACCES, "EACCES", "wrong context";
    /// The handle or argument is of the wrong type or value.
    InvalidType = EINVAL, "EINVAL", "invalid argument or handle type";
    /// The descriptor is not a socket.
    NotSocket = ENOTSOCK, "ENOTSOCK", "not a socket";
    /// The caller may not do this.
    PermissionDenied = EPERM, "EPERM", "permission denied";
    /// No such session, process or group.
    NoSuchSession = ESRCH, "ESRCH", "no such session";
    /// The address is already in use.
    AddrInUse = EADDRINUSE, "EADDRINUSE", "address in use";
    /// The address is not available on this machine.
    AddrNotAvailable = EADDRNOTAVAIL, "EADDRNOTAVAIL", "address not available";
    /// The file, name or path does not exist.
    NotFound = ENOENT, "ENOENT", "not found";
    /// The name exists already.
    AlreadyExists = EEXIST, "EEXIST", "already exists";
    /// Writing to a connection whose peer is gone.
    BrokenPipe = EPIPE, "EPIPE", "broken pipe";
    /// The message exceeds the stated maximum.
    MessageTooLong = EMSGSIZE, "EMSGSIZE", "message too long";
    /// Bytes on the wire broke the protocol.
    Protocol = EPROTO, "EPROTO", "protocol error";
    /// No route to the host.
    HostUnreachable = EHOSTUNREACH, "EHOSTUNREACH", "host unreachable";
    /// The network is unreachable.
    NetworkUnreachable = ENETUNREACH, "ENETUNREACH", "network unreachable";
    /// A system call was interrupted.
    Interrupted = EINTR, "EINTR", "interrupted";
    /// Input ended before a whole unit could be read.
    UnexpectedEof = ENODATA, "ENODATA", "unexpected end of stream";
    /// Anything else; the source error says more.
    Other = EIO, "EIO", "i/o error";
}

impl ErrorKind {
    /// The closest [`io::ErrorKind`].
    pub fn io_kind(self) -> io::ErrorKind {
        use io::ErrorKind as Io;
        match self {
            ErrorKind::TimedOut => Io::TimedOut,
            ErrorKind::ConnectionReset => Io::ConnectionReset,
            ErrorKind::ConnectionRefused => Io::ConnectionRefused,
            ErrorKind::ConnectionAborted => Io::ConnectionAborted,
            ErrorKind::NotConnected => Io::NotConnected,
            ErrorKind::Refused => Io::WouldBlock,
            ErrorKind::InvalidType => Io::InvalidInput,
            ErrorKind::PermissionDenied | ErrorKind::WrongContext => Io::PermissionDenied,
            ErrorKind::AddrInUse => Io::AddrInUse,
            ErrorKind::AddrNotAvailable => Io::AddrNotAvailable,
            ErrorKind::NotFound | ErrorKind::NoSuchSession => Io::NotFound,
            ErrorKind::AlreadyExists => Io::AlreadyExists,
            ErrorKind::BrokenPipe | ErrorKind::ShuttingDown => Io::BrokenPipe,
            ErrorKind::Protocol | ErrorKind::MessageTooLong => Io::InvalidData,
            ErrorKind::OutOfMemory | ErrorKind::NoBufferSpace => Io::OutOfMemory,
            ErrorKind::NotSupported => Io::Unsupported,
            ErrorKind::HostUnreachable => Io::HostUnreachable,
            ErrorKind::NetworkUnreachable => Io::NetworkUnreachable,
            ErrorKind::Interrupted => Io::Interrupted,
            ErrorKind::UnexpectedEof => Io::UnexpectedEof,
            _ => Io::Other,
        }
    }

    /// The kind an [`io::ErrorKind`] stands for.
    pub fn from_io_kind(kind: io::ErrorKind) -> ErrorKind {
        use io::ErrorKind as Io;
        match kind {
            Io::TimedOut => ErrorKind::TimedOut,
            Io::ConnectionReset => ErrorKind::ConnectionReset,
            Io::ConnectionRefused => ErrorKind::ConnectionRefused,
            Io::ConnectionAborted => ErrorKind::ConnectionAborted,
            Io::NotConnected => ErrorKind::NotConnected,
            Io::WouldBlock => ErrorKind::Refused,
            Io::InvalidInput => ErrorKind::InvalidType,
            Io::PermissionDenied => ErrorKind::PermissionDenied,
            Io::AddrInUse => ErrorKind::AddrInUse,
            Io::AddrNotAvailable => ErrorKind::AddrNotAvailable,
            Io::NotFound => ErrorKind::NotFound,
            Io::AlreadyExists => ErrorKind::AlreadyExists,
            Io::BrokenPipe => ErrorKind::BrokenPipe,
            Io::InvalidData => ErrorKind::Protocol,
            Io::OutOfMemory => ErrorKind::OutOfMemory,
            Io::Unsupported => ErrorKind::NotSupported,
            Io::HostUnreachable => ErrorKind::HostUnreachable,
            Io::NetworkUnreachable => ErrorKind::NetworkUnreachable,
            Io::Interrupted => ErrorKind::Interrupted,
            Io::UnexpectedEof => ErrorKind::UnexpectedEof,
            _ => ErrorKind::Other,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.as_str(), self.errno_name())
    }
}

/// A kind serializes as its errno name (`"ETIMEDOUT"`), as the text
/// reports name kinds.
#[cfg(feature = "serde")]
impl serde::Serialize for ErrorKind {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.errno_name())
    }
}

/// connkit's error: a kind, the operation that failed, what it failed on,
/// and the underlying cause.
///
/// Its `Display` names all of them:
///
/// ```
/// use conn_core::{Error, ErrorKind};
///
/// let err = Error::new(ErrorKind::ProcessFdLimit)
///     .during("accept")
///     .on("ipc:///run/x.sock");
/// assert_eq!(
///     err.to_string(),
///     "accept on ipc:///run/x.sock: process fd limit reached (EMFILE)"
/// );
///
/// // io::Error converts both ways, raw OS errors included.
/// let io = std::io::Error::from_raw_os_error(libc::ECONNRESET);
/// assert_eq!(Error::from(io).kind(), ErrorKind::ConnectionReset);
/// let back: std::io::Error = err.into();
/// assert_eq!(Error::from(back).kind(), ErrorKind::ProcessFdLimit);
/// ```
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    op: Option<Cow<'static, str>>,
    target: Option<String>,
    detail: Option<Cow<'static, str>>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// An error of `kind`, with no operation or target yet.
    pub fn new(kind: ErrorKind) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                op: None,
                target: None,
                detail: None,
                source: None,
            }),
        }
    }

    /// Names the operation that failed (`"accept"`, `"connect"`, ...).
    /// Keeps an operation set earlier, which is the more precise one.
    pub fn during(mut self, op: impl Into<Cow<'static, str>>) -> Error {
        if self.inner.op.is_none() {
            self.inner.op = Some(op.into());
        }
        self
    }

    /// Names what the operation failed on (an address, path, socket id, session).
    /// Keeps a target set earlier.
    pub fn on(mut self, target: impl fmt::Display) -> Error {
        if self.inner.target.is_none() {
            self.inner.target = Some(target.to_string());
        }
        self
    }

    /// Adds a detail shown after the kind (`"...: deadline passed (ETIMEDOUT): peer sent no FIN"`).
    pub fn detail(mut self, detail: impl Into<Cow<'static, str>>) -> Error {
        self.inner.detail = Some(detail.into());
        self
    }

    /// Attaches the underlying cause.
    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Error {
        self.inner.source = Some(source.into());
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The errno twin of [`Error::kind`].
    pub fn errno(&self) -> i32 {
        self.inner.kind.errno()
    }

    /// The operation that failed, if named.
    pub fn operation(&self) -> Option<&str> {
        self.inner.op.as_deref()
    }

    /// What the operation failed on, if named.
    pub fn target(&self) -> Option<&str> {
        self.inner.target.as_deref()
    }

    /// Converts an I/O error, naming the operation and target.
    pub fn io(
        err: io::Error,
        op: impl Into<Cow<'static, str>>,
        target: impl fmt::Display,
    ) -> Error {
        Error::from(err).during(op).on(target)
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Error {
        Error::new(kind)
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Error {
        if err.get_ref().is_some_and(|e| e.is::<Error>()) {
            // An Error that travelled through io::Error comes back whole.
            return *err
                .into_inner()
                .and_then(|e| e.downcast::<Error>().ok())
                .expect("checked");
        }
        let kind = match err.raw_os_error() {
            Some(errno) => ErrorKind::from_errno(errno),
            None => ErrorKind::from_io_kind(err.kind()),
        };
        Error::new(kind).with_source(err)
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        io::Error::new(err.kind().io_kind(), err)
    }
}

/// The error type of tower's own middleware.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Error {
    /// Converts the boxed errors tower's middleware returns, recognising
    /// connkit's own errors, I/O errors, and tower's timeout
    /// (`TimedOut`) and load-shed (`Refused`) errors.
    pub fn from_boxed(err: BoxError) -> Error {
        let err = match err.downcast::<Error>() {
            Ok(e) => return *e,
            Err(e) => e,
        };
        let err = match err.downcast::<io::Error>() {
            Ok(e) => return Error::from(*e),
            Err(e) => e,
        };
        let kind = if err.is::<tower::timeout::error::Elapsed>()
            || err.is::<tokio::time::error::Elapsed>()
        {
            ErrorKind::TimedOut
        } else if err.is::<tower::load_shed::error::Overloaded>() {
            ErrorKind::Refused
        } else {
            ErrorKind::Other
        };
        Error::new(kind).with_source(err)
    }
}

impl From<BoxError> for Error {
    fn from(err: BoxError) -> Error {
        Error::from_boxed(err)
    }
}

/// A service that cannot fail (an axum `Router`, a `service_fn` answering
/// `Infallible`) composes with connkit's layers, whose errors are [`Error`].
impl From<std::convert::Infallible> for Error {
    fn from(never: std::convert::Infallible) -> Error {
        match never {}
    }
}

/// A task that panicked is `Other`, with the panic's message; one that was
/// aborted is `Canceled`.
impl From<tokio::task::JoinError> for Error {
    fn from(err: tokio::task::JoinError) -> Error {
        if err.is_cancelled() {
            return Error::new(ErrorKind::Canceled).detail("the task was aborted");
        }
        match err.try_into_panic() {
            Ok(payload) => Error::from_panic(&*payload, "task"),
            Err(e) => Error::new(ErrorKind::Other).detail(format!("the task failed: {e}")),
        }
    }
}

impl Error {
    /// `Other`, saying that `who` (a task, a thread) panicked and with what
    /// message, from the payload `catch_unwind` or a `JoinError` hands over.
    pub fn from_panic(payload: &(dyn std::any::Any + Send), who: &str) -> Error {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-string payload".into());
        Error::new(ErrorKind::Other).detail(format!("the {who} panicked: {what}"))
    }
}

impl From<tokio::time::error::Elapsed> for Error {
    fn from(_: tokio::time::error::Elapsed) -> Error {
        Error::new(ErrorKind::TimedOut)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        match (&inner.op, &inner.target) {
            (Some(op), Some(target)) => write!(f, "{op} on {target}: ")?,
            (Some(op), None) => write!(f, "{op}: ")?,
            (None, Some(target)) => write!(f, "{target}: ")?,
            (None, None) => {}
        }
        write!(f, "{}", inner.kind)?;
        if let Some(detail) = &inner.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind);
        if let Some(op) = &self.inner.op {
            d.field("op", op);
        }
        if let Some(target) = &self.inner.target {
            d.field("target", target);
        }
        if let Some(detail) = &self.inner.detail {
            d.field("detail", detail);
        }
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Adds the operation and target to any error that converts into [`Error`].
///
/// ```
/// use conn_core::{ErrorKind, ResultExt};
///
/// let r: Result<(), std::io::Error> = Err(std::io::ErrorKind::AddrInUse.into());
/// let err = r.context("bind", "tcp://127.0.0.1:80").unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::AddrInUse);
/// assert_eq!(err.to_string(), "bind on tcp://127.0.0.1:80: address in use (EADDRINUSE)");
/// ```
pub trait ResultExt<T> {
    /// Names the failed operation and its target.
    fn context(self, op: &'static str, target: impl fmt::Display) -> Result<T>;
}

impl<T, E: Into<Error>> ResultExt<T> for std::result::Result<T, E> {
    fn context(self, op: &'static str, target: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.into().during(op).on(target))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_errno() {
        for &kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_errno(kind.errno()), kind, "{kind:?}");
        }
    }

    #[test]
    fn every_kind_round_trips_through_io_error() {
        for &kind in ErrorKind::ALL {
            let io: io::Error = Error::new(kind).during("op").into();
            let back = Error::from(io);
            assert_eq!(back.kind(), kind);
            assert_eq!(back.operation(), Some("op"));
        }
    }

    #[test]
    fn raw_os_errors_map_to_their_kind() {
        let cases = [
            (libc::EMFILE, ErrorKind::ProcessFdLimit),
            (libc::ENFILE, ErrorKind::SystemFdLimit),
            (libc::EBADF, ErrorKind::BadHandle),
            (libc::ENOTSOCK, ErrorKind::NotSocket),
            (libc::ESRCH, ErrorKind::NoSuchSession),
            (libc::EAGAIN, ErrorKind::Refused),
            (libc::E2BIG, ErrorKind::Other),
        ];
        for (errno, kind) in cases {
            assert_eq!(
                Error::from(io::Error::from_raw_os_error(errno)).kind(),
                kind
            );
        }
    }

    #[test]
    fn io_kinds_without_errno_map_by_kind() {
        let err = Error::from(io::Error::new(io::ErrorKind::ConnectionReset, "gone"));
        assert_eq!(err.kind(), ErrorKind::ConnectionReset);
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn display_names_operation_target_kind_and_errno() {
        let err = Error::from(io::Error::from_raw_os_error(libc::EMFILE))
            .during("accept")
            .on("ipc:///run/x.sock");
        assert_eq!(
            err.to_string(),
            "accept on ipc:///run/x.sock: process fd limit reached (EMFILE)"
        );
        let bare = Error::new(ErrorKind::TimedOut).detail("peer sent no FIN");
        assert_eq!(
            bare.to_string(),
            "deadline passed (ETIMEDOUT): peer sent no FIN"
        );
    }

    #[test]
    fn the_first_context_wins() {
        let err = Error::new(ErrorKind::TimedOut)
            .during("close")
            .on("mem://a");
        let err = err.during("serve").on("elsewhere");
        assert_eq!(err.operation(), Some("close"));
        assert_eq!(err.target(), Some("mem://a"));
    }
}
