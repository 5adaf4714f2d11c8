//! The checked view over one frame's bytes.

use conn_core::{Error, ErrorKind, Result};

/// The two bytes every frame starts with.
pub const MAGIC: [u8; 2] = *b"SD";
/// The only version spoken.
pub const VERSION: u8 = 1;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 8;
/// The largest payload accepted: requests and reports are small, and a
/// length beyond this is garbage, not a reason to allocate.
pub const MAX_PAYLOAD: usize = 1 << 20;

mod field {
    use std::ops::Range;
    pub const MAGIC: Range<usize> = 0..2;
    pub const VERSION: usize = 2;
    pub const KIND: usize = 3;
    pub const LENGTH: Range<usize> = 4..8;
}

/// A zero-copy view over one frame (smoltcp's `Packet` pattern).
///
/// [`Frame::new_checked`] verifies the magic, the version and that the
/// buffer holds the whole payload the length field announces, so every
/// accessor after it is in bounds.
///
/// # Examples
///
/// ```
/// use signal_session::wire::Frame;
///
/// let bytes = [b'S', b'D', 1, 4, 0, 0, 0, 2, 0xab, 0xcd];
/// let frame = Frame::new_checked(&bytes[..]).unwrap();
/// assert_eq!(frame.kind(), 4);
/// assert_eq!(frame.payload(), &[0xab, 0xcd]);
///
/// // A length that promises more than is there is refused.
/// assert!(Frame::new_checked(&bytes[..9]).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

fn malformed(what: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::Protocol)
        .during("parse sessiond frame")
        .detail(what)
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps `buffer` without checking it; accessors may panic.
    pub const fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }

    /// Wraps `buffer` after [`Frame::check_header`] and a check that the
    /// whole payload is present.
    pub fn new_checked(buffer: T) -> Result<Frame<T>> {
        let frame = Frame::new_unchecked(buffer);
        frame.check_header()?;
        let total = HEADER_LEN + frame.payload_len();
        if frame.buffer.as_ref().len() < total {
            return Err(malformed(format!(
                "the header announces {total} bytes, only {} are here",
                frame.buffer.as_ref().len()
            )));
        }
        Ok(frame)
    }

    /// Checks the header alone: length, magic, version, and a payload
    /// length within [`MAX_PAYLOAD`]. Enough to know how much to read.
    pub fn check_header(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        if data.len() < HEADER_LEN {
            return Err(malformed(format!(
                "{} bytes are too short for a header",
                data.len()
            )));
        }
        if data[field::MAGIC] != MAGIC {
            return Err(malformed(format!(
                "bad magic {:02x?}, expected \"SD\"",
                &data[field::MAGIC]
            )));
        }
        if data[field::VERSION] != VERSION {
            return Err(malformed(format!(
                "version {} is not spoken here (expected {VERSION})",
                data[field::VERSION]
            )));
        }
        let len = self.payload_len();
        if len > MAX_PAYLOAD {
            return Err(Error::new(ErrorKind::MessageTooLong)
                .during("parse sessiond frame")
                .detail(format!("payload of {len} bytes exceeds {MAX_PAYLOAD}")));
        }
        Ok(())
    }

    /// The message kind byte.
    pub fn kind(&self) -> u8 {
        self.buffer.as_ref()[field::KIND]
    }

    /// The payload length the header announces.
    pub fn payload_len(&self) -> usize {
        let b = &self.buffer.as_ref()[field::LENGTH];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + self.payload_len()]
    }

    /// The frame's bytes, header and payload, without anything after.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[..HEADER_LEN + self.payload_len()]
    }

    /// The whole buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Writes a header for a payload of `len` bytes of `kind`.
    pub fn set_header(&mut self, kind: u8, len: usize) {
        let data = self.buffer.as_mut();
        data[field::MAGIC].copy_from_slice(&MAGIC);
        data[field::VERSION] = VERSION;
        data[field::KIND] = kind;
        data[field::LENGTH].copy_from_slice(&(len as u32).to_be_bytes());
    }

    /// The payload, to write into.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = self.payload_len();
        &mut self.buffer.as_mut()[HEADER_LEN..HEADER_LEN + len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_magic_version_and_length_are_protocol_errors() {
        let good = [b'S', b'D', 1, 1, 0, 0, 0, 0];
        assert!(Frame::new_checked(&good[..]).is_ok());
        let mut bad = good;
        bad[0] = b'X';
        assert_eq!(
            Frame::new_checked(&bad[..]).unwrap_err().kind(),
            ErrorKind::Protocol
        );
        let mut bad = good;
        bad[2] = 9;
        assert!(
            Frame::new_checked(&bad[..])
                .unwrap_err()
                .to_string()
                .contains("version 9")
        );
        let huge = [b'S', b'D', 1, 1, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(
            Frame::new_checked(&huge[..]).unwrap_err().kind(),
            ErrorKind::MessageTooLong
        );
        assert!(Frame::new_checked(&good[..5]).is_err());
    }
}
