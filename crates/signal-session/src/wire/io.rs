//! Whole frames on a byte stream.

use conn_core::{Error, ErrorKind, Result};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{Frame, HEADER_LEN, Message};

/// Reads one frame and parses it; `Ok(None)` at a clean end of stream
/// (before any byte of a frame). The header is checked before the payload
/// is read, so a bad length never allocates, and a good one allocates only
/// as its bytes arrive (see [`read_frame_within`]).
pub async fn read_message<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Option<Message>> {
    Ok(match read_frame(stream).await? {
        Some(bytes) => Some(Message::parse(&Frame::new_checked(&bytes[..])?)?),
        None => None,
    })
}

/// Reads one frame's bytes, header checked; `Ok(None)` at a clean end.
pub async fn read_frame<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Option<Vec<u8>>> {
    read_frame_within(stream, &mut FrameLimits::default()).await
}

/// The room a payload buffer starts with, and the least it grows by.
pub const READ_ROOM: usize = 64 * 1024;

/// What one frame may cost while it arrives: [`read_frame_within`] asks
/// `grow` before its buffer grows to a size (an error ends the read with
/// it), and gives up on a frame begun whose next byte is `stall` away.
#[derive(Default)]
pub struct FrameLimits<'a> {
    /// Asked before the buffer grows to the given capacity.
    pub grow: Option<&'a mut (dyn FnMut(usize) -> Result<()> + Send)>,
    /// How long a frame begun may wait for its next byte.
    pub stall: Option<std::time::Duration>,
}

impl FrameLimits<'_> {
    fn allow(&mut self, size: usize) -> Result<()> {
        match &mut self.grow {
            Some(grow) => grow(size),
            None => Ok(()),
        }
    }
}

/// One read; inside a frame (`begun`), at most `stall` long.
async fn timed(
    stall: Option<std::time::Duration>,
    read: impl std::future::Future<Output = std::io::Result<usize>>,
    begun: bool,
) -> Result<usize> {
    let got = match stall.filter(|_| begun) {
        None => read.await,
        Some(stall) => tokio::time::timeout(stall, read).await.map_err(|_| {
            Error::new(ErrorKind::TimedOut)
                .during("read sessiond frame")
                .detail(format!(
                    "stalled: a frame begun and no byte more within {stall:?}"
                ))
        })?,
    };
    got.map_err(|e| Error::from(e).during("read sessiond frame"))
}

/// Like [`read_frame`], within `limits`. The buffer grows with the bytes
/// that arrived, never with the length the header states: it starts at
/// most [`READ_ROOM`] and at most doubles, never past the frame's end, so
/// a header announcing [`MAX_PAYLOAD`](super::MAX_PAYLOAD) followed by
/// nothing costs one [`READ_ROOM`] (and only once `limits` allowed it).
pub async fn read_frame_within<S: AsyncRead + Unpin>(
    stream: &mut S,
    limits: &mut FrameLimits<'_>,
) -> Result<Option<Vec<u8>>> {
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        let n = timed(limits.stall, stream.read(&mut header[got..]), got > 0).await?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(Error::new(ErrorKind::UnexpectedEof)
                .during("read sessiond frame")
                .detail(format!("the stream ended {got} bytes into a header")));
        }
        got += n;
    }
    let frame = Frame::new_unchecked(&header[..]);
    frame.check_header()?;
    let total = HEADER_LEN + frame.payload_len();
    let mut bytes: Vec<u8> = Vec::new();
    grow_to(&mut bytes, total.min(READ_ROOM), limits)?;
    bytes.extend_from_slice(&header);
    while bytes.len() < total {
        if bytes.len() == bytes.capacity() {
            let size = (bytes.capacity() * 2).clamp(READ_ROOM, total);
            grow_to(&mut bytes, size, limits)?;
        }
        // Into the spare capacity, untouched until bytes land in it, and
        // never a byte of the next frame.
        let rest = (total - bytes.len()) as u64;
        let mut part = (&mut *stream).take(rest);
        if timed(limits.stall, part.read_buf(&mut bytes), true).await? == 0 {
            return Err(Error::new(ErrorKind::UnexpectedEof)
                .during("read sessiond frame")
                .detail("the stream ended inside a payload"));
        }
    }
    Ok(Some(bytes))
}

/// Grows `bytes` to exactly `size` bytes of capacity, once `limits` allow.
fn grow_to(bytes: &mut Vec<u8>, size: usize, limits: &mut FrameLimits<'_>) -> Result<()> {
    limits.allow(size)?;
    bytes.reserve_exact(size - bytes.len());
    Ok(())
}

/// Writes one message as a frame.
pub async fn write_message<S: AsyncWrite + Unpin>(stream: &mut S, msg: &Message) -> Result<()> {
    let bytes = msg.to_bytes()?;
    stream
        .write_all(&bytes)
        .await
        .map_err(|e| Error::from(e).during("write sessiond frame"))?;
    stream
        .flush()
        .await
        .map_err(|e| Error::from(e).during("write sessiond frame"))
}
