//! The mailbox protocol on the wire, built with the
//! [wire kit](conn_core::wire): [`Frame`] is a checked zero-copy view over
//! bytes, [`Repr`] the parsed meaning of one frame, which also emits itself.
//!
//! Every frame is `length: u32 BE | kind: u8 | body`, where `length` counts
//! the kind byte and the body and is at most [`MAX_FRAME_BODY`]. Strings are
//! a `u8` length and that many UTF-8 bytes; numbers are big-endian; nonces
//! and MACs are 32 bytes as they are.
//!
//! A session on the Unix socket is `Connect`, `Welcome`, then requests and
//! events. Over TCP with a secret, three frames come first: the daemon's
//! `Challenge` (its nonce), the client's `Answer` (its nonce and MAC) and the
//! daemon's `Proof` (its MAC), or a `Reply` refusing the answer; only then
//! the client's `Connect`.
//!
//! ```
//! use conn_mailbox::wire::{Frame, Repr};
//! use conn_core::wire::Repr as _;
//!
//! let repr = Repr::Join { req: 7, group: "chat" };
//! let bytes = repr.to_vec()?;
//! let frame = Frame::new_checked(&bytes[..])?;
//! assert_eq!(Repr::parse(&frame)?, repr);
//! // A lying length is an error, never a panic or an over-read.
//! assert!(Frame::new_checked(&[0, 0, 0, 9, 2][..]).is_err());
//! // A name too long for its u8 length is an error to emit, not a panic.
//! assert!(Repr::Join { req: 7, group: &"g".repeat(256) }.to_vec().is_err());
//! # Ok::<(), conn_mailbox::wire::WireError>(())
//! ```

use bytes::{Bytes, BytesMut};
use conn_core::wire::{Format, Layout, split_frame};
pub use conn_core::wire::{READ_ROOM, WireError};

mod names;
mod repr;

pub use names::{Names, NamesIter};
pub use repr::{Kind, Nonce, Repr, Tag, frame_bytes};

/// Bytes before the body: the `u32` length and the kind byte.
pub const HEADER_LEN: usize = Mailbox::LAYOUT.header_len();
/// The largest `length` a frame may state: the largest message plus room
/// for its header (sender, up to 128 group names, type, service).
pub const MAX_FRAME_BODY: usize = crate::limits::MAX_MESSAGE + 8 * 1024;

/// The mailbox protocol's frame format.
#[derive(Debug)]
pub struct Mailbox;

impl Format for Mailbox {
    const PROTOCOL: &'static str = "mailbox";
    const LAYOUT: Layout = Layout::LengthKind;
    // The length counts the kind byte too.
    const MAX_BODY: usize = MAX_FRAME_BODY - 1;
    type Kind = Kind;
}

/// A checked view over the bytes of one mailbox frame.
///
/// ```
/// use conn_mailbox::wire::Frame;
/// let f = Frame::new_checked(&[0u8, 0, 0, 2, 5, 0xaa][..]).unwrap();
/// assert_eq!((f.kind(), f.body()), (5, &[0xaa][..]));
/// ```
pub type Frame<'a> = conn_core::wire::Frame<'a, Mailbox>;

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
    conn_core::wire::frame_len::<Mailbox>(prefix)
}

/// Splits the next whole mailbox frame off the front of `buf`, sharing its
/// bytes: the kit's [`split_frame`], whose buffer keeps its size and grows
/// only with the bytes that arrived.
pub fn next_frame(buf: &mut BytesMut) -> Result<Option<Bytes>, WireError> {
    split_frame::<Mailbox>(buf)
}
