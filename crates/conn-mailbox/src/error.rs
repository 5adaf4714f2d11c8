//! The mailbox's errors as named values (Spread's error codes), each
//! convertible into `conn_core::Error` with its kind.

use std::fmt;

use conn_core::{Error, ErrorKind};

/// A refusal code as the daemon sends it on the wire.
///
/// ```
/// use conn_mailbox::error::Code;
/// assert_eq!(Code::from_u16(Code::NotAllowed as u16), Some(Code::NotAllowed));
/// assert_eq!(Code::from_u16(0), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum Code {
    /// Private name too long or with illegal characters (`ILLEGAL_NAME`).
    IllegalName = 1,
    /// Another client holds this private name (`REJECT_NOT_UNIQUE`).
    NotUnique = 2,
    /// Group name too long or illegal, or not a member when leaving (`ILLEGAL_GROUP`).
    IllegalGroup = 3,
    /// Too many groups in one message, or joined by one client.
    TooManyGroups = 4,
    /// Message longer than the stated maximum (`MESSAGE_TOO_LONG`).
    MessageTooLong = 5,
    /// Unknown service level or flags (`ILLEGAL_SERVICE`).
    IllegalService = 6,
    /// The access list refuses this uid (`REJECT_AUTH`).
    NotAllowed = 7,
    /// Bytes that broke the protocol.
    Protocol = 8,
    /// The daemon is shutting down.
    ShuttingDown = 9,
    /// A TCP client did not prove it holds the daemon's secret: a wrong
    /// answer to the challenge, none in time, or a hello without one.
    Unauthenticated = 10,
}

impl Code {
    /// The code for a wire value.
    pub fn from_u16(v: u16) -> Option<Code> {
        Some(match v {
            1 => Code::IllegalName,
            2 => Code::NotUnique,
            3 => Code::IllegalGroup,
            4 => Code::TooManyGroups,
            5 => Code::MessageTooLong,
            6 => Code::IllegalService,
            7 => Code::NotAllowed,
            8 => Code::Protocol,
            9 => Code::ShuttingDown,
            10 => Code::Unauthenticated,
            _ => return None,
        })
    }
}

/// What a mailbox operation can fail with.
///
/// ```
/// use conn_mailbox::MailboxError;
/// use conn_core::ErrorKind;
/// let e = MailboxError::MessageTooLong { len: 2 << 20, max: 1 << 20 };
/// assert_eq!(e.kind(), ErrorKind::MessageTooLong);
/// let core: conn_core::Error = e.into();
/// assert_eq!(core.kind(), ErrorKind::MessageTooLong);
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum MailboxError {
    /// The private name is too long or has illegal characters.
    IllegalName(String),
    /// Another client of this daemon holds the private name.
    NotUnique(String),
    /// A group name is too long or illegal, or one left a group one is not in.
    IllegalGroup(String),
    /// Too many groups in one message (or joined at once).
    TooManyGroups {
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The message body is longer than the maximum.
    MessageTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The caller's buffer cannot hold the next message; unless the caller
    /// asked to drop it, it stays queued.
    BufferTooShort {
        /// The body length needed.
        needed: usize,
        /// True when the message was dropped.
        dropped: bool,
    },
    /// The service bits name no single level.
    IllegalService(u32),
    /// The access list refuses this client the group.
    NotAllowed {
        /// What was refused: `"join"` or `"send"`.
        op: &'static str,
        /// The group.
        group: String,
    },
    /// The session was disconnected or killed, or the daemon ended it.
    ConnectionClosed,
    /// The daemon sent bytes that break the protocol, or refused ours.
    Protocol(String),
    /// The daemon is shutting down.
    ShuttingDown,
    /// A transport error (connect, read, write, deadline).
    Io(Error),
    /// Over TCP: the daemon refused this client's secret (or its missing
    /// one), or could not prove it holds the secret itself. Kind
    /// `PermissionDenied`; the error names the daemon's address.
    Unauthenticated(Error),
}

impl MailboxError {
    /// The taxonomy kind this error maps onto.
    pub fn kind(&self) -> ErrorKind {
        match self {
            MailboxError::IllegalName(_)
            | MailboxError::IllegalGroup(_)
            | MailboxError::TooManyGroups { .. }
            | MailboxError::IllegalService(_) => ErrorKind::InvalidType,
            MailboxError::NotUnique(_) => ErrorKind::AlreadyExists,
            MailboxError::MessageTooLong { .. } => ErrorKind::MessageTooLong,
            MailboxError::BufferTooShort { .. } => ErrorKind::NoBufferSpace,
            MailboxError::NotAllowed { .. } => ErrorKind::PermissionDenied,
            MailboxError::ConnectionClosed => ErrorKind::NotConnected,
            MailboxError::Protocol(_) => ErrorKind::Protocol,
            MailboxError::ShuttingDown => ErrorKind::ShuttingDown,
            MailboxError::Io(e) | MailboxError::Unauthenticated(e) => e.kind(),
        }
    }

    /// The error for a daemon refusal `code` about `what`.
    pub fn from_code(code: Code, what: &str) -> MailboxError {
        match code {
            Code::IllegalName => MailboxError::IllegalName(what.into()),
            Code::NotUnique => MailboxError::NotUnique(what.into()),
            Code::IllegalGroup => MailboxError::IllegalGroup(what.into()),
            Code::TooManyGroups => MailboxError::TooManyGroups {
                count: 0,
                max: crate::limits::MAX_GROUPS_PER_CLIENT,
            },
            Code::MessageTooLong => MailboxError::MessageTooLong {
                len: 0,
                max: crate::limits::MAX_MESSAGE,
            },
            Code::IllegalService => MailboxError::IllegalService(0),
            Code::NotAllowed => {
                let (op, group) = match what.split_once(' ') {
                    Some(("join", g)) => ("join", g),
                    Some((_, g)) => ("send", g),
                    None => ("send", what),
                };
                MailboxError::NotAllowed {
                    op,
                    group: group.into(),
                }
            }
            Code::Protocol => MailboxError::Protocol(what.into()),
            Code::ShuttingDown => MailboxError::ShuttingDown,
            Code::Unauthenticated => MailboxError::Unauthenticated(
                Error::new(ErrorKind::PermissionDenied)
                    .during("authenticate to mailboxd")
                    .detail(what.to_owned()),
            ),
        }
    }
}

impl fmt::Display for MailboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MailboxError::IllegalName(n) => write!(
                f,
                "illegal private name {n:?}: 1 to {} characters from '$' to '~', no '#'",
                crate::limits::MAX_PRIVATE_NAME
            ),
            MailboxError::NotUnique(n) => write!(f, "private name {n:?} is taken"),
            MailboxError::IllegalGroup(g) => write!(f, "illegal group {g:?}"),
            MailboxError::TooManyGroups { count, max } => {
                write!(f, "too many groups ({count}, at most {max})")
            }
            MailboxError::MessageTooLong { len, max } => {
                write!(f, "message too long ({len} bytes, at most {max})")
            }
            MailboxError::BufferTooShort { needed, dropped } => write!(
                f,
                "buffer too short: the message needs {needed} bytes ({})",
                if *dropped { "dropped" } else { "still queued" }
            ),
            MailboxError::IllegalService(s) => write!(f, "illegal service {s:#x}"),
            MailboxError::NotAllowed { op, group } => {
                write!(f, "{op} {group:?} not allowed for this uid")
            }
            MailboxError::ConnectionClosed => f.write_str("session closed"),
            MailboxError::Protocol(d) => write!(f, "protocol error: {d}"),
            MailboxError::ShuttingDown => f.write_str("daemon shutting down"),
            MailboxError::Io(e) | MailboxError::Unauthenticated(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for MailboxError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MailboxError::Io(e) | MailboxError::Unauthenticated(e) => Some(e),
            _ => None,
        }
    }
}

impl From<Error> for MailboxError {
    fn from(e: Error) -> MailboxError {
        MailboxError::Io(e)
    }
}

/// Bytes that are no frame, or a frame this side cannot emit: the protocol
/// broken, saying which frame and where.
impl From<conn_core::wire::WireError> for MailboxError {
    fn from(e: conn_core::wire::WireError) -> MailboxError {
        MailboxError::Protocol(e.to_string())
    }
}

impl From<std::io::Error> for MailboxError {
    fn from(e: std::io::Error) -> MailboxError {
        MailboxError::Io(e.into())
    }
}

impl From<MailboxError> for Error {
    fn from(e: MailboxError) -> Error {
        match e {
            MailboxError::Io(e) | MailboxError::Unauthenticated(e) => e,
            other => Error::new(other.kind())
                .during("mailbox")
                .detail(other.to_string()),
        }
    }
}
