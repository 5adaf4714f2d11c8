//! The wire kit: one way to frame, parse and emit bytes for every protocol
//! in connkit (the mailbox protocol, sessiond's frames, the mailbox
//! daemons' cluster ops, the handover), in smoltcp's pattern.
//!
//! * A protocol declares its [`Format`] once: its header [`Layout`], its
//!   largest body, its kinds (one enum with `TryFrom<u8>`).
//! * [`Frame`] is a checked view over the bytes of exactly one frame;
//!   [`frame_len`] says how long the frame at the front of a buffer is as
//!   soon as its header is there, checked before the length is trusted.
//! * [`Repr`] is a frame's parsed meaning: `parse` from a [`Frame`],
//!   `buffer_len` by arithmetic, `emit` into the caller's buffer, an error
//!   rather than a panic for a value the format cannot carry.
//! * [`Reader`] and [`Writer`] read and write a body's fields, every
//!   length checked.
//! * [`split_frame`] takes whole frames off a read-ahead buffer without a
//!   copy; [`read_frame`] reads exactly one frame from a stream; both grow
//!   their buffers with the bytes that arrived, never with a stated length.
//! * [`WireError`] says which protocol, which kind and where; it becomes
//!   [`ErrorKind::Protocol`](crate::ErrorKind::Protocol).

mod error;
mod field;
mod frame;
mod io;
mod stream;

pub use error::{Problem, WireError};
pub use field::{Reader, Writer};
pub use frame::{Format, Frame, Layout, Repr, frame_len, header_len};
pub use io::{FrameLimits, read_frame, write_frame};
pub use stream::{READ_ROOM, split_frame};

/// Declares a protocol's frame kinds once: the enum, its `u8` values, the
/// name each has in errors, and the conversions both ways.
///
/// ```
/// conn_core::wire_kinds! {
///     /// The demo kinds.
///     pub enum Kind {
///         /// A greeting.
///         Hello = 1 => "hello",
///         /// A farewell.
///         Bye = 2 => "bye",
///     }
/// }
/// assert_eq!(Kind::try_from(2), Ok(Kind::Bye));
/// assert!(Kind::try_from(3).is_err());
/// assert_eq!((u8::from(Kind::Hello), Kind::Hello.name()), (1, "hello"));
/// ```
#[macro_export]
macro_rules! wire_kinds {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant = $value, )+
        }

        impl $name {
            /// The kind's name in errors and logs.
            pub const fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl ::core::convert::TryFrom<u8> for $name {
            type Error = u8;
            fn try_from(b: u8) -> ::core::result::Result<$name, u8> {
                match b {
                    $( $value => Ok($name::$variant), )+
                    other => Err(other),
                }
            }
        }

        impl ::core::convert::From<$name> for u8 {
            fn from(k: $name) -> u8 {
                k as u8
            }
        }
    };
}

#[cfg(test)]
mod tests;
