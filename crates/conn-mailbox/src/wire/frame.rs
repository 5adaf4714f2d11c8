//! The checked view over one frame's bytes.

use std::fmt;

/// Bytes before the body: the `u32` length and the kind byte.
pub const HEADER_LEN: usize = 5;
/// The largest `length` a frame may state: the largest message plus room
/// for its header (sender, up to 128 group names, type, service).
pub const MAX_FRAME_BODY: usize = crate::limits::MAX_MESSAGE + 8 * 1024;

/// Why bytes are not a frame (or not a frame of the kind they claim).
///
/// ```
/// use conn_mailbox::wire::{Frame, WireError};
/// let err = Frame::new_checked(&[0u8, 0, 0, 0, 1][..]).unwrap_err();
/// assert_eq!(err, WireError::BadLength(0));
/// assert_eq!(err.to_string(), "frame length 0 outside 1..=1056768");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireError {
    /// Fewer bytes than the header or a field needs.
    Truncated,
    /// The stated length is zero or above [`MAX_FRAME_BODY`].
    BadLength(u32),
    /// A kind byte no frame has.
    UnknownKind(u8),
    /// A string that is not UTF-8.
    BadString,
    /// A field with a value its frame does not allow.
    BadField(&'static str),
    /// Bytes left over after the last field.
    Trailing(usize),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated => f.write_str("frame truncated"),
            WireError::BadLength(n) => write!(f, "frame length {n} outside 1..={MAX_FRAME_BODY}"),
            WireError::UnknownKind(k) => write!(f, "unknown frame kind {k}"),
            WireError::BadString => f.write_str("string is not UTF-8"),
            WireError::BadField(what) => write!(f, "bad field: {what}"),
            WireError::Trailing(n) => write!(f, "{n} bytes after the last field"),
        }
    }
}

impl std::error::Error for WireError {}

/// How long the frame starting at `prefix` is in total, once its length is
/// there: `Ok(None)` until four bytes have arrived, an error for a length
/// that no frame may have.
///
/// ```
/// use conn_mailbox::wire::frame_len;
/// assert_eq!(frame_len(&[0, 0]), Ok(None));
/// assert_eq!(frame_len(&[0, 0, 0, 3, 1]), Ok(Some(7)));
/// assert!(frame_len(&[0xff, 0xff, 0xff, 0xff]).is_err());
/// ```
pub fn frame_len(prefix: &[u8]) -> Result<Option<usize>, WireError> {
    let Some(len) = prefix.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
    if len == 0 || len as usize > MAX_FRAME_BODY {
        return Err(WireError::BadLength(len));
    }
    Ok(Some(4 + len as usize))
}

/// A checked view over the bytes of one frame.
///
/// ```
/// use conn_mailbox::wire::Frame;
/// let f = Frame::new_checked(&[0u8, 0, 0, 2, 5, 0xaa][..]).unwrap();
/// assert_eq!((f.kind(), f.body()), (5, &[0xaa][..]));
/// ```
#[derive(Clone, Debug)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps `buffer` without checking it; accessors may then panic.
    /// Use [`Frame::new_checked`] for bytes from outside.
    pub fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }

    /// Wraps `buffer` after checking that it holds exactly one whole frame
    /// whose length is within bounds.
    pub fn new_checked(buffer: T) -> Result<Frame<T>, WireError> {
        let frame = Frame::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Checks the stated length against the bounds and the buffer.
    pub fn check_len(&self) -> Result<(), WireError> {
        let buf = self.buffer.as_ref();
        match frame_len(buf)? {
            None => Err(WireError::Truncated),
            Some(total) if total > buf.len() => Err(WireError::Truncated),
            Some(total) if total < buf.len() => Err(WireError::Trailing(buf.len() - total)),
            Some(_) => Ok(()),
        }
    }

    /// The stated length (kind byte plus body).
    pub fn length(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// The kind byte.
    pub fn kind(&self) -> u8 {
        self.buffer.as_ref()[4]
    }

    /// The body after the kind byte.
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// The bytes behind the view.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}
