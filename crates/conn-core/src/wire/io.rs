//! Whole frames on a byte stream read one at a time: the bounded reader
//! for streams that must not be read past a frame's end, and the writer.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{Format, READ_ROOM, Repr, frame_len, header_len};
use crate::{Error, ErrorKind, Result};

/// What one frame may cost while it arrives: [`read_frame`] asks `grow`
/// before its buffer grows to a size (an error ends the read with it), and
/// gives up on a frame begun whose next byte is `stall` away.
#[derive(Default)]
pub struct FrameLimits<'a> {
    /// Asked before the buffer grows to the given capacity.
    pub grow: Option<&'a mut (dyn FnMut(usize) -> Result<()> + Send)>,
    /// How long a frame begun may wait for its next byte.
    pub stall: Option<Duration>,
}

impl FrameLimits<'_> {
    fn allow(&mut self, size: usize) -> Result<()> {
        match &mut self.grow {
            Some(grow) => grow(size),
            None => Ok(()),
        }
    }
}

/// Reads exactly one frame of `F` into `buf` (cleared first, its memory
/// kept for the next frame) and returns its length; `Ok(None)` at a clean
/// end of stream, before any byte of a frame. Never reads a byte of the
/// next frame, so the stream can be handed on after it.
///
/// The header is checked before its length is trusted, and the buffer
/// grows with the bytes that arrived, never with the length stated: it
/// starts at most [`READ_ROOM`] and at most doubles, never past the
/// frame's end, so a header announcing the largest frame followed by
/// nothing costs one [`READ_ROOM`] (and only once `limits` allowed it).
///
/// ```
/// use conn_core::wire::{Format, FrameLimits, Layout, read_frame};
/// struct Demo;
/// impl Format for Demo {
///     const PROTOCOL: &'static str = "demo";
///     const LAYOUT: Layout = Layout::LengthKind;
///     const MAX_BODY: usize = 100;
///     type Kind = u8;
/// }
/// # tokio_test::block_on(async {
/// let mut stream = &[0, 0, 0, 2, 9, 1, 0, 0, 0, 1][..];
/// let mut buf = Vec::new();
/// let n = read_frame::<Demo, _>(&mut stream, &mut buf, &mut FrameLimits::default()).await?;
/// assert_eq!((n, &buf[..]), (Some(6), &[0, 0, 0, 2, 9, 1][..]));
/// // Four bytes of a length, then the end: a frame cut off.
/// assert!(read_frame::<Demo, _>(&mut stream, &mut buf, &mut FrameLimits::default()).await.is_err());
/// # Ok::<(), conn_core::Error>(()) }).unwrap();
/// ```
pub async fn read_frame<F: Format, S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    limits: &mut FrameLimits<'_>,
) -> Result<Option<usize>> {
    let during = || format!("read {} frame", F::PROTOCOL);
    buf.clear();
    let mut header = [0u8; 8];
    let header = &mut header[..header_len::<F>()];
    let mut got = 0;
    while got < header.len() {
        let n = timed::<F, _>(limits.stall, stream.read(&mut header[got..]), got > 0).await?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(Error::new(ErrorKind::UnexpectedEof)
                .during(during())
                .detail(format!("the stream ended {got} bytes into a header")));
        }
        got += n;
    }
    // A whole header always states the length; `None` cannot come back.
    let Some(total) = frame_len::<F>(header)? else {
        return Ok(None);
    };
    if buf.capacity() < total.min(READ_ROOM) {
        grow_to(buf, total.min(READ_ROOM), limits)?;
    }
    buf.extend_from_slice(header);
    while buf.len() < total {
        if buf.len() == buf.capacity() {
            let size = (buf.capacity() * 2).clamp(READ_ROOM, total);
            grow_to(buf, size, limits)?;
        }
        // Into the spare capacity, untouched until bytes land in it, and
        // never a byte of the next frame.
        let rest = (total - buf.len()) as u64;
        let mut part = (&mut *stream).take(rest);
        if timed::<F, _>(limits.stall, part.read_buf(buf), true).await? == 0 {
            return Err(Error::new(ErrorKind::UnexpectedEof)
                .during(during())
                .detail("the stream ended inside a frame"));
        }
    }
    Ok(Some(total))
}

/// One read; inside a frame (`begun`), at most `stall` long.
async fn timed<F: Format, R>(
    stall: Option<Duration>,
    read: impl Future<Output = std::io::Result<R>>,
    begun: bool,
) -> Result<R> {
    let during = || format!("read {} frame", F::PROTOCOL);
    let got = match stall.filter(|_| begun) {
        None => read.await,
        Some(stall) => tokio::time::timeout(stall, read).await.map_err(|_| {
            Error::new(ErrorKind::TimedOut)
                .during(during())
                .detail(format!(
                    "stalled: a frame begun and no byte more within {stall:?}"
                ))
        })?,
    };
    got.map_err(|e| Error::from(e).during(during()))
}

/// Grows `buf` to exactly `size` bytes of capacity, once `limits` allow.
fn grow_to(buf: &mut Vec<u8>, size: usize, limits: &mut FrameLimits<'_>) -> Result<()> {
    limits.allow(size)?;
    buf.reserve_exact(size - buf.len());
    Ok(())
}

/// Emits `repr` into `buf` (its memory kept for the next frame), writes it
/// whole and flushes.
pub async fn write_frame<'a, R: Repr<'a>, S: AsyncWrite + Unpin>(
    stream: &mut S,
    repr: &R,
    buf: &mut Vec<u8>,
) -> Result<()> {
    buf.clear();
    buf.resize(repr.buffer_len(), 0);
    let n = repr.emit(buf)?;
    let during = || format!("write {} frame", R::Format::PROTOCOL);
    stream
        .write_all(&buf[..n])
        .await
        .map_err(|e| Error::from(e).during(during()))?;
    stream
        .flush()
        .await
        .map_err(|e| Error::from(e).during(during()))
}
