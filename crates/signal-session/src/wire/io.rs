//! Whole sessiond frames on a byte stream: the kit's bounded
//! [`read_frame`](conn_core::wire::read_frame) and
//! [`write_frame`](conn_core::wire::write_frame) for [`Sessiond`].

use conn_core::Result;
use conn_core::wire::{self, Repr as _};
pub use conn_core::wire::{FrameLimits, READ_ROOM};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Message, Sessiond};

/// Reads one frame and parses it; `Ok(None)` at a clean end of stream
/// (before any byte of a frame). The header is checked before the payload
/// is read, so a bad length never allocates, and a good one allocates only
/// as its bytes arrive (see [`read_frame_within`]).
pub async fn read_message<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Option<Message>> {
    Ok(match read_frame(stream).await? {
        Some(bytes) => Some(Message::decode(&bytes)?),
        None => None,
    })
}

/// Reads one frame's bytes, header checked; `Ok(None)` at a clean end.
pub async fn read_frame<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Option<Vec<u8>>> {
    read_frame_within(stream, &mut FrameLimits::default()).await
}

/// Like [`read_frame`], within `limits`: the buffer grows with the bytes
/// that arrived, never with the length the header states, and never a
/// byte past the frame's end is read.
pub async fn read_frame_within<S: AsyncRead + Unpin>(
    stream: &mut S,
    limits: &mut FrameLimits<'_>,
) -> Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    let read = wire::read_frame::<Sessiond, _>(stream, &mut bytes, limits).await?;
    Ok(read.map(|_| bytes))
}

/// Writes one message as a frame.
pub async fn write_message<S: AsyncWrite + Unpin>(stream: &mut S, msg: &Message) -> Result<()> {
    wire::write_frame(stream, msg, &mut Vec::new()).await
}
