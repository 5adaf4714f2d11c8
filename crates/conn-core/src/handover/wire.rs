//! The handover frames on the wire: [`Frame`] is a checked view over bytes,
//! [`Repr`] the parsed meaning of one frame, which also emits itself.
//!
//! Every frame is `magic "HO" | version: u8 | kind: u8 | length: u32 BE |
//! payload`, the length at most [`MAX_PAYLOAD`]. An `Offer`'s payload is a
//! `u16` count of names, then each name as a `u16` length and that many
//! UTF-8 bytes; its descriptors travel beside it as `SCM_RIGHTS`, one per
//! name, in the same order. A `Refused` payload is the reason in UTF-8.

use crate::{Error, ErrorKind, Result};

/// The two bytes every frame starts with.
pub const MAGIC: [u8; 2] = *b"HO";
/// The only version spoken.
pub const VERSION: u8 = 1;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 8;
/// The largest payload accepted: names and reasons are short, and a length
/// beyond this is garbage, not a reason to allocate.
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// The most listeners one offer carries (the receiver's control buffer is
/// sized for it).
pub const MAX_FDS: usize = 64;

mod field {
    use std::ops::Range;
    pub const MAGIC: Range<usize> = 0..2;
    pub const VERSION: usize = 2;
    pub const KIND: usize = 3;
    pub const LENGTH: Range<usize> = 4..8;
}

/// The kinds of frame.
mod kind {
    pub const TAKE: u8 = 1;
    pub const OFFER: u8 = 2;
    pub const CONFIRM: u8 = 3;
    pub const REFUSED: u8 = 4;
}

fn malformed(what: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::Protocol)
        .during("parse handover frame")
        .detail(what)
}

/// A zero-copy view over one frame.
///
/// [`Frame::new_checked`] verifies the magic, the version, a payload length
/// within [`MAX_PAYLOAD`] and that the buffer holds all of it, so every
/// accessor after it is in bounds.
///
/// ```
/// use conn_core::handover::wire::Frame;
///
/// let bytes = [b'H', b'O', 1, 4, 0, 0, 0, 2, b'n', b'o'];
/// let frame = Frame::new_checked(&bytes[..]).unwrap();
/// assert_eq!(frame.payload(), b"no");
/// // A length that promises more than is there is refused, never over-read.
/// assert!(Frame::new_checked(&bytes[..9]).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps `buffer` after checking the header and that the whole payload
    /// is present.
    pub fn new_checked(buffer: T) -> Result<Frame<T>> {
        let frame = Frame { buffer };
        let total = frame.check_header()?;
        let have = frame.buffer.as_ref().len();
        if have < total {
            return Err(malformed(format!(
                "the header announces {total} bytes, only {have} are here"
            )));
        }
        Ok(frame)
    }

    /// Checks the header of `buffer` alone (it may hold only part of the
    /// payload) and returns the frame's whole length.
    pub fn checked_len(buffer: T) -> Result<usize> {
        Frame { buffer }.check_header()
    }

    /// Checks the header alone and returns the frame's whole length, header
    /// and payload: enough to know how much more to read.
    pub fn check_header(&self) -> Result<usize> {
        let data = self.buffer.as_ref();
        if data.len() < HEADER_LEN {
            return Err(malformed(format!(
                "{} bytes are too short for a header",
                data.len()
            )));
        }
        if data[field::MAGIC] != MAGIC {
            return Err(malformed(format!(
                "bad magic {:02x?}, expected \"HO\"",
                &data[field::MAGIC]
            )));
        }
        if data[field::VERSION] != VERSION {
            return Err(malformed(format!(
                "version {} is not spoken here (expected {VERSION})",
                data[field::VERSION]
            )));
        }
        let b = &data[field::LENGTH];
        let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if len > MAX_PAYLOAD {
            return Err(Error::new(ErrorKind::MessageTooLong)
                .during("parse handover frame")
                .detail(format!("payload of {len} bytes exceeds {MAX_PAYLOAD}")));
        }
        Ok(HEADER_LEN + len)
    }

    /// The kind byte.
    pub fn kind(&self) -> u8 {
        self.buffer.as_ref()[field::KIND]
    }

    /// The payload (in bounds: checked by [`Frame::new_checked`]).
    pub fn payload(&self) -> &[u8] {
        let b = &self.buffer.as_ref()[field::LENGTH];
        let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + len]
    }
}

/// What one frame means.
///
/// ```
/// use conn_core::handover::wire::{Frame, Repr};
///
/// let repr = Repr::Offer { names: vec!["tcp://0.0.0.0:80".into(), "ipc:///run/app.sock".into()] };
/// let bytes = repr.emit()?;
/// assert_eq!(Repr::parse(&Frame::new_checked(&bytes[..])?)?, repr);
/// // A name count that promises more names than the payload holds is an error.
/// let lying = [b'H', b'O', 1, 2, 0, 0, 0, 2, 0, 9];
/// assert!(Repr::parse(&Frame::new_checked(&lying[..])?).is_err());
/// # Ok::<(), conn_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repr {
    /// Successor to running server: give me your listeners.
    Take,
    /// Running server to successor: these listeners, by name; their
    /// descriptors ride along as `SCM_RIGHTS`, in the same order.
    Offer {
        /// Each listener's endpoint, e.g. `tcp://0.0.0.0:80`.
        names: Vec<String>,
    },
    /// Successor to running server: I accept on them now; stop accepting.
    Confirm,
    /// Either way: no handover, and why (the running server goes on).
    Refused {
        /// The reason, for the other side to show.
        why: String,
    },
}

impl Repr {
    /// Parses a checked frame.
    pub fn parse<T: AsRef<[u8]>>(frame: &Frame<T>) -> Result<Repr> {
        let payload = frame.payload();
        let empty = |repr: Repr| {
            if payload.is_empty() {
                Ok(repr)
            } else {
                Err(malformed(format!("{repr:?} carries no payload")))
            }
        };
        match frame.kind() {
            kind::TAKE => empty(Repr::Take),
            kind::CONFIRM => empty(Repr::Confirm),
            kind::OFFER => {
                let mut rest = payload;
                let count = take_u16(&mut rest)? as usize;
                if count > MAX_FDS {
                    return Err(malformed(format!(
                        "an offer of {count} listeners exceeds {MAX_FDS}"
                    )));
                }
                let mut names = Vec::with_capacity(count);
                for _ in 0..count {
                    let len = take_u16(&mut rest)? as usize;
                    if rest.len() < len {
                        return Err(malformed(format!(
                            "a name of {len} bytes, only {} are left",
                            rest.len()
                        )));
                    }
                    let (name, tail) = rest.split_at(len);
                    names.push(utf8(name)?);
                    rest = tail;
                }
                if !rest.is_empty() {
                    return Err(malformed(format!("{} bytes after the names", rest.len())));
                }
                Ok(Repr::Offer { names })
            }
            kind::REFUSED => Ok(Repr::Refused {
                why: utf8(payload)?,
            }),
            other => Err(malformed(format!("unknown frame kind {other}"))),
        }
    }

    /// The frame's bytes. `MessageTooLong` when the payload would exceed
    /// [`MAX_PAYLOAD`] (or an offer [`MAX_FDS`] names, or a name 65535 bytes).
    pub fn emit(&self) -> Result<Vec<u8>> {
        let too_long = |what: String| {
            Error::new(ErrorKind::MessageTooLong)
                .during("emit handover frame")
                .detail(what)
        };
        let mut payload = Vec::new();
        let kind = match self {
            Repr::Take => kind::TAKE,
            Repr::Confirm => kind::CONFIRM,
            Repr::Offer { names } => {
                if names.len() > MAX_FDS {
                    return Err(too_long(format!(
                        "{} listeners, at most {MAX_FDS}",
                        names.len()
                    )));
                }
                payload.extend_from_slice(&(names.len() as u16).to_be_bytes());
                for name in names {
                    let len = u16::try_from(name.len())
                        .map_err(|_| too_long(format!("a name of {} bytes", name.len())))?;
                    payload.extend_from_slice(&len.to_be_bytes());
                    payload.extend_from_slice(name.as_bytes());
                }
                kind::OFFER
            }
            Repr::Refused { why } => {
                payload.extend_from_slice(why.as_bytes());
                kind::REFUSED
            }
        };
        if payload.len() > MAX_PAYLOAD {
            return Err(too_long(format!("a payload of {} bytes", payload.len())));
        }
        let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
        bytes.extend_from_slice(&MAGIC);
        bytes.push(VERSION);
        bytes.push(kind);
        bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&payload);
        Ok(bytes)
    }
}

/// Takes the next whole frame off the front of `buf`, parsed: `Ok(None)`
/// while it is not all there. The header is checked before its length is
/// trusted, so a lying length is an error once eight bytes have arrived,
/// never a reason to wait for (or allocate) more.
///
/// ```
/// use conn_core::handover::wire::{Repr, next_frame};
///
/// let mut buf = Repr::Confirm.emit()?;
/// buf.extend_from_slice(b"HO"); // the start of the next frame
/// assert_eq!(next_frame(&mut buf)?, Some(Repr::Confirm));
/// assert_eq!(next_frame(&mut buf)?, None);
/// assert_eq!(buf, b"HO");
/// buf.extend_from_slice(&[1, 2, 0xff, 0xff, 0xff, 0xff]);
/// assert!(next_frame(&mut buf).is_err());
/// # Ok::<(), conn_core::Error>(())
/// ```
pub fn next_frame(buf: &mut Vec<u8>) -> Result<Option<Repr>> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let total = Frame::checked_len(&buf[..])?;
    if buf.len() < total {
        return Ok(None);
    }
    let repr = Repr::parse(&Frame::new_checked(&buf[..total])?)?;
    buf.drain(..total);
    Ok(Some(repr))
}

fn take_u16(rest: &mut &[u8]) -> Result<u16> {
    if rest.len() < 2 {
        return Err(malformed("the payload ends inside a length"));
    }
    let (b, tail) = rest.split_at(2);
    *rest = tail;
    Ok(u16::from_be_bytes([b[0], b[1]]))
}

fn utf8(bytes: &[u8]) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| malformed("a string is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_repr_round_trips() {
        for repr in [
            Repr::Take,
            Repr::Confirm,
            Repr::Offer { names: vec![] },
            Repr::Offer {
                names: vec!["tcp://127.0.0.1:80".into(), "ipc:///run/ä.sock".into()],
            },
            Repr::Refused {
                why: "uid 65534 is not uid 0".into(),
            },
        ] {
            let bytes = repr.emit().unwrap();
            assert_eq!(
                Repr::parse(&Frame::new_checked(&bytes[..]).unwrap()).unwrap(),
                repr
            );
        }
    }

    #[test]
    fn no_prefix_of_a_frame_parses_and_none_panics() {
        let bytes = Repr::Offer {
            names: vec!["tcp://[::]:8080".into(), "ipc:///x".into()],
        }
        .emit()
        .unwrap();
        for end in 0..bytes.len() {
            assert!(
                Frame::new_checked(&bytes[..end]).is_err(),
                "prefix of {end}"
            );
        }
        // A payload cut inside: lengths inside it no longer fit.
        for end in HEADER_LEN..bytes.len() {
            let mut cut = bytes[..end].to_vec();
            cut[4..8].copy_from_slice(&((end - HEADER_LEN) as u32).to_be_bytes());
            let frame = Frame::new_checked(&cut[..]).unwrap();
            assert!(Repr::parse(&frame).is_err(), "payload cut at {end}");
        }
    }

    #[test]
    fn bad_headers_are_refused_by_name() {
        let ok = Repr::Take.emit().unwrap();
        let mut bad = ok.clone();
        bad[0] = b'X';
        assert!(
            Frame::new_checked(&bad[..])
                .unwrap_err()
                .to_string()
                .contains("magic")
        );
        let mut bad = ok.clone();
        bad[2] = 9;
        assert!(
            Frame::new_checked(&bad[..])
                .unwrap_err()
                .to_string()
                .contains("version 9")
        );
        let mut bad = ok.clone();
        bad[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            Frame::new_checked(&bad[..]).unwrap_err().kind(),
            ErrorKind::MessageTooLong
        );
        let mut bad = ok;
        bad[3] = 77;
        let frame = Frame::new_checked(&bad[..]).unwrap();
        assert!(
            Repr::parse(&frame)
                .unwrap_err()
                .to_string()
                .contains("kind 77")
        );
        let take_with_payload = [b'H', b'O', 1, 1, 0, 0, 0, 1, 0];
        assert!(Repr::parse(&Frame::new_checked(&take_with_payload[..]).unwrap()).is_err());
    }

    #[test]
    fn an_offer_of_more_listeners_than_fit_is_refused_both_ways() {
        let names = vec![String::from("x"); MAX_FDS + 1];
        assert_eq!(
            Repr::Offer { names }.emit().unwrap_err().kind(),
            ErrorKind::MessageTooLong
        );
        let mut bytes = vec![b'H', b'O', 1, 2, 0, 0, 0, 2];
        bytes.extend_from_slice(&((MAX_FDS + 1) as u16).to_be_bytes());
        assert!(Repr::parse(&Frame::new_checked(&bytes[..]).unwrap()).is_err());
    }
}
