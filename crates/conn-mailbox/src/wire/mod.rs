//! The mailbox protocol on the wire, in smoltcp's pattern: [`Frame`] is a
//! checked zero-copy view over bytes, [`Repr`] the parsed meaning of one
//! frame, which also emits itself.
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
//!
//! let repr = Repr::Join { req: 7, group: "chat" };
//! let mut bytes = Vec::new();
//! repr.emit(&mut bytes);
//! let frame = Frame::new_checked(&bytes[..])?;
//! assert_eq!(Repr::parse(&frame)?, repr);
//! // A lying length is an error, never a panic or an over-read.
//! assert!(Frame::new_checked(&[0, 0, 0, 9, 2][..]).is_err());
//! # Ok::<(), conn_mailbox::wire::WireError>(())
//! ```

mod frame;
mod names;
mod repr;
mod stream;

pub use frame::{Frame, HEADER_LEN, MAX_FRAME_BODY, WireError, frame_len};
pub use names::{Names, NamesIter};
pub use repr::{Kind, Nonce, Repr, Tag};
pub use stream::{READ_ROOM, next_frame};
