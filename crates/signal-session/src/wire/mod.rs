//! sessiond's frame format, built with the [wire kit](conn_core::wire):
//! [`Frame`] is a checked, zero-copy view over the bytes of one frame,
//! [`Message`] the parsed form that parses from and emits into it, and
//! [`io`] reads and writes whole frames on a stream without ever trusting
//! a length it has not checked.
//!
//! ```text
//! 0      2        3      4            8
//! +------+--------+------+------------+----------------------+
//! | "SD" | ver. 1 | kind | length u32 | payload (length B)   |
//! +------+--------+------+------------+----------------------+
//! ```
//!
//! Integers are big-endian; strings and byte strings are a u32 length and
//! the bytes; lists are a u32 count and the items.
//!
//! ```
//! use signal_session::wire::Frame;
//!
//! let bytes = [b'S', b'D', 1, 4, 0, 0, 0, 2, 0xab, 0xcd];
//! let frame = Frame::new_checked(&bytes[..]).unwrap();
//! assert_eq!(frame.kind(), 4);
//! assert_eq!(frame.body(), &[0xab, 0xcd]);
//!
//! // A length that promises more than is there is refused.
//! assert!(Frame::new_checked(&bytes[..9]).is_err());
//! ```

use conn_core::wire::{Format, Layout};

pub mod io;
mod message;

pub use message::{Kind, Message, NodeOutcome, NodeResult};

/// Bytes before the payload.
pub const HEADER_LEN: usize = Sessiond::LAYOUT.header_len();
/// The largest payload accepted: requests and reports are small, and a
/// length beyond this is garbage, not a reason to allocate.
pub const MAX_PAYLOAD: usize = 1 << 20;

/// sessiond's frame format.
#[derive(Debug)]
pub struct Sessiond;

impl Format for Sessiond {
    const PROTOCOL: &'static str = "sessiond";
    const LAYOUT: Layout = Layout::Tagged {
        magic: *b"SD",
        version: 1,
    };
    const MAX_BODY: usize = MAX_PAYLOAD;
    type Kind = Kind;
}

/// A checked view over one sessiond frame.
pub type Frame<'a> = conn_core::wire::Frame<'a, Sessiond>;
