//! sessiond's frame format, in smoltcp's pattern: [`Frame`] is a checked,
//! zero-copy view over the bytes of one frame, [`Message`] the parsed form
//! that parses from and emits into it, and [`io`] reads and writes whole
//! frames on a stream without ever trusting a length it has not checked.
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

mod codec;
mod frame;
pub mod io;
mod message;

pub use frame::{Frame, HEADER_LEN, MAX_PAYLOAD};
pub use message::{Kind, Message, NodeOutcome, NodeResult};
