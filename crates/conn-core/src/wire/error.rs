//! The one error every frame format here gives for bytes that are not a
//! frame, and for a frame that cannot be emitted.

use std::fmt;

use crate::{Error, ErrorKind};

/// Why bytes are not a frame of a protocol, or a value cannot become one.
///
/// It names the protocol and, once a parser knows it, the frame kind, so a
/// log line says which peer spoke which format wrongly; a field error also
/// says at which byte of the body. Into [`crate::Error`] it is always
/// [`ErrorKind::Protocol`]: a peer that sends it, or a caller that asks to
/// emit it, is not speaking the protocol.
///
/// ```
/// use conn_core::wire::{Problem, WireError};
/// use conn_core::ErrorKind;
///
/// let err = WireError::new("mailbox", Problem::Truncated { at: 3 }).in_kind("join");
/// assert_eq!(err.to_string(), "mailbox frame (join): truncated at byte 3 of the body");
/// assert_eq!(conn_core::Error::from(err).kind(), ErrorKind::Protocol);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireError {
    protocol: &'static str,
    kind: Option<&'static str>,
    problem: Problem,
}

/// What is wrong with the bytes or the value.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// Fewer bytes than the header or the next field needs; `at` is where
    /// in the body the field began (0 for a header).
    Truncated {
        /// The body offset of the field that did not fit.
        at: usize,
    },
    /// The length field states a size no frame of the protocol may have.
    BadLength {
        /// The stated length.
        len: usize,
        /// The least it may be.
        min: usize,
        /// The most it may be.
        max: usize,
    },
    /// The frame does not start with the protocol's magic bytes.
    BadMagic([u8; 2]),
    /// A version the protocol does not speak.
    BadVersion {
        /// What the frame says.
        got: u8,
        /// What is spoken.
        expected: u8,
    },
    /// A kind byte no frame of the protocol has.
    UnknownKind(u8),
    /// A string that is not UTF-8.
    BadString {
        /// Its body offset.
        at: usize,
    },
    /// A field with a value its frame does not allow.
    BadField(&'static str),
    /// A count that cannot fit in the bytes left (checked before anything
    /// is allocated for it).
    BadCount {
        /// The count stated.
        count: usize,
        /// The bytes left for its items.
        left: usize,
    },
    /// Bytes left over after the last field.
    Trailing(usize),
    /// A value too long for the field that carries its length (a name over
    /// 255 bytes in a `u8` length, a payload over the frame limit).
    TooLong {
        /// What was too long.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The most the field carries.
        max: usize,
    },
    /// The caller's buffer is shorter than the frame to emit.
    NoRoom {
        /// Bytes the frame takes.
        need: usize,
        /// Bytes the buffer has.
        have: usize,
    },
}

impl WireError {
    /// A `problem` with a frame of `protocol` (`"mailbox"`, `"sessiond"`...).
    pub fn new(protocol: &'static str, problem: Problem) -> WireError {
        WireError {
            protocol,
            kind: None,
            problem,
        }
    }

    /// Names the frame kind the problem is in; keeps a kind named before.
    pub fn in_kind(mut self, kind: &'static str) -> WireError {
        self.kind.get_or_insert(kind);
        self
    }

    /// The protocol whose frame it is.
    pub fn protocol(&self) -> &'static str {
        self.protocol
    }

    /// The frame kind, once known.
    pub fn kind(&self) -> Option<&'static str> {
        self.kind
    }

    /// What is wrong.
    pub fn problem(&self) -> &Problem {
        &self.problem
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} frame", self.protocol)?;
        if let Some(kind) = self.kind {
            write!(f, " ({kind})")?;
        }
        write!(f, ": {}", self.problem)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Truncated { at } => write!(f, "truncated at byte {at} of the body"),
            Problem::BadLength { len, min, max } => {
                write!(f, "length {len} outside {min}..={max}")
            }
            Problem::BadMagic(m) => write!(f, "bad magic {m:02x?}"),
            Problem::BadVersion { got, expected } => {
                write!(f, "version {got} is not spoken here (expected {expected})")
            }
            Problem::UnknownKind(k) => write!(f, "unknown frame kind {k}"),
            Problem::BadString { at } => write!(f, "the string at byte {at} is not UTF-8"),
            Problem::BadField(what) => write!(f, "bad field: {what}"),
            Problem::BadCount { count, left } => {
                write!(
                    f,
                    "a count of {count} does not fit in the {left} bytes left"
                )
            }
            Problem::Trailing(n) => write!(f, "{n} bytes after the last field"),
            Problem::TooLong { what, len, max } => {
                write!(f, "{what} of {len} bytes, at most {max}")
            }
            Problem::NoRoom { need, have } => {
                write!(f, "the frame takes {need} bytes, the buffer has {have}")
            }
        }
    }
}

impl std::error::Error for WireError {}

impl From<WireError> for Error {
    fn from(e: WireError) -> Error {
        let op = if matches!(e.problem, Problem::TooLong { .. } | Problem::NoRoom { .. }) {
            "emit"
        } else {
            "parse"
        };
        Error::new(ErrorKind::Protocol)
            .during(format!("{op} {} frame", e.protocol))
            .detail(e.to_string())
    }
}
