//! How each protocol lays out its header, and the checked view over the
//! bytes of one frame.

use std::marker::PhantomData;

use super::{Problem, WireError};

/// Where a header keeps its length and kind. Both layouts here put the
/// length in a big-endian `u32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `length: u32 | kind: u8 | body`, the length counting the kind byte
    /// and the body (so at least 1). The mailbox protocol and the cluster
    /// ops inside a batch.
    LengthKind,
    /// `magic: [u8; 2] | version: u8 | kind: u8 | length: u32 | payload`,
    /// the length counting the payload alone. sessiond's and the handover's
    /// frames.
    Tagged {
        /// The two bytes every frame starts with.
        magic: [u8; 2],
        /// The only version spoken.
        version: u8,
    },
}

impl Layout {
    /// Bytes before the body.
    pub const fn header_len(self) -> usize {
        match self {
            Layout::LengthKind => 5,
            Layout::Tagged { .. } => 8,
        }
    }

    /// Bytes of a header that must be there before the frame's length is
    /// known: through the end of the length field.
    pub const fn length_end(self) -> usize {
        match self {
            Layout::LengthKind => 4,
            Layout::Tagged { .. } => 8,
        }
    }
}

/// One protocol's frame format: declared once, as a type, so a frame of
/// one protocol cannot be handed to the parser of another.
pub trait Format {
    /// The protocol's name in errors (`"mailbox"`, `"sessiond"`, ...).
    const PROTOCOL: &'static str;
    /// The header.
    const LAYOUT: Layout;
    /// The largest body (kind byte not counted) a frame may have: a length
    /// beyond it is garbage, not a reason to allocate.
    const MAX_BODY: usize;
    /// The protocol's frame kinds, each declared once.
    type Kind: Copy + Into<u8> + TryFrom<u8>;

    /// An error of this protocol.
    fn error(problem: Problem) -> WireError {
        WireError::new(Self::PROTOCOL, problem)
    }
}

/// The header length of `F`'s frames.
pub const fn header_len<F: Format>() -> usize {
    F::LAYOUT.header_len()
}

/// How long the frame at the front of `prefix` is in all, once enough of
/// its header is there to say: `Ok(None)` before that, an error for a
/// header no frame of `F` may have (checked before the length is trusted,
/// so a lying length never makes anyone wait for, or allocate, more).
///
/// ```
/// use conn_core::wire::{Format, Layout, frame_len};
/// struct Demo;
/// impl Format for Demo {
///     const PROTOCOL: &'static str = "demo";
///     const LAYOUT: Layout = Layout::LengthKind;
///     const MAX_BODY: usize = 100;
///     type Kind = u8;
/// }
/// assert_eq!(frame_len::<Demo>(&[0, 0]), Ok(None));
/// assert_eq!(frame_len::<Demo>(&[0, 0, 0, 3, 1]), Ok(Some(7)));
/// assert!(frame_len::<Demo>(&[0, 0, 0, 0]).is_err());
/// assert!(frame_len::<Demo>(&[0xff; 4]).is_err());
/// ```
pub fn frame_len<F: Format>(prefix: &[u8]) -> Result<Option<usize>, WireError> {
    let u32_at = |at: usize| -> Option<usize> {
        let b = prefix.get(at..at + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    match F::LAYOUT {
        Layout::LengthKind => {
            let Some(len) = u32_at(0) else {
                return Ok(None);
            };
            if len == 0 || len > F::MAX_BODY + 1 {
                return Err(F::error(Problem::BadLength {
                    len,
                    min: 1,
                    max: F::MAX_BODY + 1,
                }));
            }
            Ok(Some(4 + len))
        }
        Layout::Tagged { magic, version } => {
            let Some(len) = u32_at(4) else {
                return Ok(None);
            };
            if prefix[0..2] != magic {
                return Err(F::error(Problem::BadMagic([prefix[0], prefix[1]])));
            }
            if prefix[2] != version {
                return Err(F::error(Problem::BadVersion {
                    got: prefix[2],
                    expected: version,
                }));
            }
            if len > F::MAX_BODY {
                return Err(F::error(Problem::BadLength {
                    len,
                    min: 0,
                    max: F::MAX_BODY,
                }));
            }
            Ok(Some(8 + len))
        }
    }
}

/// Writes `F`'s header for a `kind` frame with a body of `body_len` bytes
/// into the front of `out`; the caller checked `out` is long enough and the
/// body within [`Format::MAX_BODY`].
fn put_header<F: Format>(out: &mut [u8], kind: u8, body_len: usize) {
    match F::LAYOUT {
        Layout::LengthKind => {
            out[..4].copy_from_slice(&((body_len + 1) as u32).to_be_bytes());
            out[4] = kind;
        }
        Layout::Tagged { magic, version } => {
            out[..2].copy_from_slice(&magic);
            out[2] = version;
            out[3] = kind;
            out[4..8].copy_from_slice(&(body_len as u32).to_be_bytes());
        }
    }
}

/// A checked view over the bytes of exactly one whole frame of `F`.
///
/// Made only by [`Frame::new_checked`], so every accessor is in bounds.
///
/// ```
/// use conn_core::wire::{Format, Frame, Layout};
/// struct Demo;
/// impl Format for Demo {
///     const PROTOCOL: &'static str = "demo";
///     const LAYOUT: Layout = Layout::Tagged { magic: *b"DM", version: 1 };
///     const MAX_BODY: usize = 100;
///     type Kind = u8;
/// }
/// let bytes = [b'D', b'M', 1, 4, 0, 0, 0, 2, 0xab, 0xcd];
/// let frame = Frame::<Demo>::new_checked(&bytes[..]).unwrap();
/// assert_eq!((frame.kind(), frame.body()), (4, &[0xab, 0xcd][..]));
/// // A length that promises more than is there is refused, never over-read.
/// assert!(Frame::<Demo>::new_checked(&bytes[..9]).is_err());
/// ```
pub struct Frame<'a, F: Format> {
    bytes: &'a [u8],
    format: PhantomData<F>,
}

impl<F: Format> Clone for Frame<'_, F> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<F: Format> Copy for Frame<'_, F> {}

impl<F: Format> std::fmt::Debug for Frame<'_, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("protocol", &F::PROTOCOL)
            .field("kind", &self.kind())
            .field("body_len", &self.body().len())
            .finish()
    }
}

impl<'a, F: Format> Frame<'a, F> {
    /// Checks that `bytes` hold exactly one whole frame of `F`: a header
    /// `F` allows, and as many bytes after it as it states, no more.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Frame<'a, F>, WireError> {
        match frame_len::<F>(bytes)? {
            Some(total) if total <= bytes.len() => {
                if total < bytes.len() {
                    return Err(F::error(Problem::Trailing(bytes.len() - total)));
                }
                Ok(Frame {
                    bytes,
                    format: PhantomData,
                })
            }
            _ => Err(F::error(Problem::Truncated { at: 0 })),
        }
    }

    /// The kind byte as it is.
    pub fn kind(&self) -> u8 {
        match F::LAYOUT {
            Layout::LengthKind => self.bytes[4],
            Layout::Tagged { .. } => self.bytes[3],
        }
    }

    /// The kind, if `F` has it.
    pub fn checked_kind(&self) -> Result<F::Kind, WireError> {
        F::Kind::try_from(self.kind()).map_err(|_| F::error(Problem::UnknownKind(self.kind())))
    }

    /// The body after the header.
    pub fn body(&self) -> &'a [u8] {
        &self.bytes[header_len::<F>()..]
    }

    /// The frame's bytes, header and body.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// The parsed meaning of one frame, smoltcp's `Repr`: it parses from a
/// checked [`Frame`], knows its length by arithmetic, and emits itself into
/// the caller's buffer, an error (never a panic) when a value does not fit
/// the format.
pub trait Repr<'a>: Sized {
    /// The format it is a frame of.
    type Format: Format;

    /// Its kind.
    fn kind(&self) -> <Self::Format as Format>::Kind;

    /// Parses a checked frame; every length inside is checked against the
    /// bytes that are there.
    fn parse(frame: &Frame<'a, Self::Format>) -> Result<Self, WireError>;

    /// The bytes its body takes, by arithmetic.
    fn body_len(&self) -> usize;

    /// Writes the body; `w` holds exactly [`Repr::body_len`] bytes.
    fn emit_body(&self, w: &mut super::Writer<'_>) -> Result<(), WireError>;

    /// The bytes the whole frame takes, header included.
    fn buffer_len(&self) -> usize {
        header_len::<Self::Format>() + self.body_len()
    }

    /// Writes the whole frame into the front of `out` and returns its
    /// length: an error when `out` is short, the body is over the format's
    /// limit, or a field does not fit its length (a name too long).
    fn emit(&self, out: &mut [u8]) -> Result<usize, WireError> {
        let body = self.body_len();
        let max = <Self::Format as Format>::MAX_BODY;
        if body > max {
            return Err(<Self::Format as Format>::error(Problem::TooLong {
                what: "a body",
                len: body,
                max,
            }));
        }
        let total = header_len::<Self::Format>() + body;
        let have = out.len();
        let Some(out) = out.get_mut(..total) else {
            return Err(<Self::Format as Format>::error(Problem::NoRoom {
                need: total,
                have,
            }));
        };
        let (head, rest) = out.split_at_mut(header_len::<Self::Format>());
        put_header::<Self::Format>(head, self.kind().into(), body);
        let mut w = super::Writer::new(<Self::Format as Format>::PROTOCOL, rest);
        self.emit_body(&mut w)?;
        w.finish()?;
        Ok(total)
    }

    /// The whole frame in a fresh vector, allocated once.
    fn to_vec(&self) -> Result<Vec<u8>, WireError> {
        let mut v = vec![0; self.buffer_len()];
        self.emit(&mut v)?;
        Ok(v)
    }

    /// Checks `bytes` as one whole frame and parses it.
    fn decode(bytes: &'a [u8]) -> Result<Self, WireError> {
        Self::parse(&Frame::new_checked(bytes)?)
    }
}
