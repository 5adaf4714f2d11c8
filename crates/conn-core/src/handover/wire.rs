//! The handover frames on the wire, built with the [wire kit](crate::wire):
//! [`Frame`] is a checked view over bytes, [`Repr`] the parsed meaning of
//! one frame, which also emits itself.
//!
//! Every frame is `magic "HO" | version: u8 | kind: u8 | length: u32 BE |
//! payload`, the length at most [`MAX_PAYLOAD`]. An `Offer`'s payload is a
//! `u16` count of names, then each name as a `u16` length and that many
//! UTF-8 bytes; its descriptors travel beside it as `SCM_RIGHTS`, one per
//! name, in the same order. A `Refused` payload is the reason in UTF-8.

use bytes::BytesMut;

use crate::Result;
use crate::wire::{self, Format, Layout, Problem, Reader, WireError, Writer};

/// Bytes before the payload.
pub const HEADER_LEN: usize = Handover::LAYOUT.header_len();
/// The largest payload accepted: names and reasons are short, and a length
/// beyond this is garbage, not a reason to allocate.
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// The most listeners one offer carries (the receiver's control buffer is
/// sized for it).
pub const MAX_FDS: usize = 64;

/// The handover's frame format.
#[derive(Debug)]
pub struct Handover;

impl Format for Handover {
    const PROTOCOL: &'static str = "handover";
    const LAYOUT: Layout = Layout::Tagged {
        magic: *b"HO",
        version: 1,
    };
    const MAX_BODY: usize = MAX_PAYLOAD;
    type Kind = Kind;
}

crate::wire_kinds! {
    /// The kinds of handover frame.
    pub enum Kind {
        /// [`Repr::Take`]
        Take = 1 => "take",
        /// [`Repr::Offer`]
        Offer = 2 => "offer",
        /// [`Repr::Confirm`]
        Confirm = 3 => "confirm",
        /// [`Repr::Refused`]
        Refused = 4 => "refused",
    }
}

/// A checked view over one handover frame.
///
/// ```
/// use conn_core::handover::wire::Frame;
///
/// let bytes = [b'H', b'O', 1, 4, 0, 0, 0, 2, b'n', b'o'];
/// let frame = Frame::new_checked(&bytes[..]).unwrap();
/// assert_eq!(frame.body(), b"no");
/// // A length that promises more than is there is refused, never over-read.
/// assert!(Frame::new_checked(&bytes[..9]).is_err());
/// ```
pub type Frame<'a> = wire::Frame<'a, Handover>;

/// What one frame means.
///
/// ```
/// use conn_core::handover::wire::{Frame, Repr};
/// use conn_core::wire::Repr as _;
///
/// let repr = Repr::Offer { names: vec!["tcp://0.0.0.0:80".into(), "ipc:///run/app.sock".into()] };
/// let bytes = repr.to_vec()?;
/// assert_eq!(Repr::parse(&Frame::new_checked(&bytes[..])?)?, repr);
/// // A name count that promises more names than the payload holds is an error.
/// let lying = [b'H', b'O', 1, 2, 0, 0, 0, 2, 0, 9];
/// assert!(Repr::parse(&Frame::new_checked(&lying[..])?).is_err());
/// # Ok::<(), conn_core::wire::WireError>(())
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

impl wire::Repr<'_> for Repr {
    type Format = Handover;

    fn kind(&self) -> Kind {
        match self {
            Repr::Take => Kind::Take,
            Repr::Offer { .. } => Kind::Offer,
            Repr::Confirm => Kind::Confirm,
            Repr::Refused { .. } => Kind::Refused,
        }
    }

    fn parse(frame: &Frame<'_>) -> std::result::Result<Repr, WireError> {
        let kind = frame.checked_kind()?;
        let mut r = Reader::new(Handover::PROTOCOL, frame.body()).in_kind(kind.name());
        let repr = match kind {
            Kind::Take => Repr::Take,
            Kind::Confirm => Repr::Confirm,
            Kind::Offer => {
                let count = usize::from(r.u16()?);
                if count > MAX_FDS {
                    return Err(r.error(Problem::TooLong {
                        what: "an offer's listeners",
                        len: count,
                        max: MAX_FDS,
                    }));
                }
                let count = r.fit(count, 2)?;
                let names = (0..count)
                    .map(|_| r.str16().map(str::to_owned))
                    .collect::<std::result::Result<_, _>>()?;
                Repr::Offer { names }
            }
            Kind::Refused => Repr::Refused {
                why: r.rest_str()?.to_owned(),
            },
        };
        r.finish()?;
        Ok(repr)
    }

    fn body_len(&self) -> usize {
        match self {
            Repr::Take | Repr::Confirm => 0,
            Repr::Offer { names } => 2 + names.iter().map(|n| 2 + n.len()).sum::<usize>(),
            Repr::Refused { why } => why.len(),
        }
    }

    fn emit_body(&self, w: &mut Writer<'_>) -> std::result::Result<(), WireError> {
        match self {
            Repr::Take | Repr::Confirm => Ok(()),
            Repr::Offer { names } => {
                if names.len() > MAX_FDS {
                    return Err(WireError::new(
                        Handover::PROTOCOL,
                        Problem::TooLong {
                            what: "an offer's listeners",
                            len: names.len(),
                            max: MAX_FDS,
                        },
                    ));
                }
                w.u16(w.len("an offer's listeners", names.len())?)?;
                names.iter().try_for_each(|n| w.str16(n))
            }
            Repr::Refused { why } => w.bytes(why.as_bytes()),
        }
    }
}

/// Takes the next whole frame off the front of `buf`, parsed: `Ok(None)`
/// while it is not all there. The header is checked before its length is
/// trusted, so a lying length is an error once eight bytes have arrived,
/// never a reason to wait for (or allocate) more.
///
/// ```
/// use bytes::BytesMut;
/// use conn_core::handover::wire::{Repr, next_frame};
/// use conn_core::wire::Repr as _;
///
/// let mut buf = BytesMut::from(&Repr::Confirm.to_vec()?[..]);
/// buf.extend_from_slice(b"HO"); // the start of the next frame
/// assert_eq!(next_frame(&mut buf)?, Some(Repr::Confirm));
/// assert_eq!(next_frame(&mut buf)?, None);
/// assert_eq!(&buf[..], b"HO");
/// buf.extend_from_slice(&[1, 2, 0xff, 0xff, 0xff, 0xff]);
/// assert!(next_frame(&mut buf).is_err());
/// # Ok::<(), conn_core::Error>(())
/// ```
pub fn next_frame(buf: &mut BytesMut) -> Result<Option<Repr>> {
    match wire::split_frame::<Handover>(buf)? {
        Some(bytes) => Ok(Some(<Repr as wire::Repr>::decode(&bytes)?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use crate::wire::Repr as _;

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
            let bytes = repr.to_vec().unwrap();
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
        .to_vec()
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
        let ok = Repr::Take.to_vec().unwrap();
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
            crate::Error::from(Frame::new_checked(&bad[..]).unwrap_err()).kind(),
            ErrorKind::Protocol
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
            crate::Error::from(Repr::Offer { names }.to_vec().unwrap_err()).kind(),
            ErrorKind::Protocol
        );
        let mut bytes = vec![b'H', b'O', 1, 2, 0, 0, 0, 2];
        bytes.extend_from_slice(&((MAX_FDS + 1) as u16).to_be_bytes());
        assert!(Repr::parse(&Frame::new_checked(&bytes[..]).unwrap()).is_err());
    }
}
