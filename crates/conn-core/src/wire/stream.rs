//! Frames out of a byte stream that is read ahead: the one splitter every
//! reader with a buffer uses, so none trusts a length it has not checked.

use bytes::{Bytes, BytesMut};

use super::{Format, WireError, frame_len};

/// The size a stream buffer is given, and the room
/// [`read_frame`](super::read_frame) starts a frame with: a burst of small
/// frames arrives in one system call (a reader that takes 4 KiB at a time
/// pays one `read(2)` per few dozen 100-byte frames).
pub const READ_ROOM: usize = 64 * 1024;

/// The least room a read gets before the buffer is made over.
const MIN_ROOM: usize = 16 * 1024;

/// Splits the next whole frame off the front of `buf`, sharing its bytes
/// (no copy). `Ok(None)` when the frame is not all there yet; `buf` then
/// has room for more of it. A length no frame may have is an error before
/// anything is allocated for it.
///
/// The room grows with the bytes that actually arrived, never with the
/// length a frame states: at most [`READ_ROOM`] or as much as the buffer
/// already holds, whichever is more, and never past the frame's end. A peer
/// that announces a maximum-size frame and sends five bytes of it costs one
/// [`READ_ROOM`], not the megabyte it announced; one that sends most of it
/// costs about what it sent.
///
/// Otherwise the buffer keeps its size ([`READ_ROOM`], or the largest
/// frame): when room runs short, the partial frame at its end moves to the
/// front of the same memory (once every frame split off before has been
/// dropped) rather than the buffer growing. A growing buffer touches fresh
/// pages, and a page fault costs more than the read.
///
/// ```
/// use bytes::BytesMut;
/// use conn_core::wire::{Format, Layout, READ_ROOM, split_frame};
/// struct Demo;
/// impl Format for Demo {
///     const PROTOCOL: &'static str = "demo";
///     const LAYOUT: Layout = Layout::LengthKind;
///     const MAX_BODY: usize = 1 << 20;
///     type Kind = u8;
/// }
///
/// let mut buf = BytesMut::from(&[0, 0, 0, 1, 5][..]);
/// buf.extend_from_slice(&[0, 0]); // half of the next frame's length
/// assert_eq!(&split_frame::<Demo>(&mut buf)?.unwrap()[..], &[0, 0, 0, 1, 5]);
/// assert!(split_frame::<Demo>(&mut buf)?.is_none());
/// assert!(buf.capacity() - buf.len() >= 1024);
/// buf.clear();
/// // A maximum-size frame announced: the room is READ_ROOM, not a megabyte.
/// buf.extend_from_slice(&(1u32 << 20).to_be_bytes());
/// assert!(split_frame::<Demo>(&mut buf)?.is_none());
/// assert!(buf.capacity() <= 2 * READ_ROOM);
/// buf.clear();
/// buf.extend_from_slice(&[0xff; 4]); // a length no frame may have
/// assert!(split_frame::<Demo>(&mut buf).is_err());
/// # Ok::<(), conn_core::wire::WireError>(())
/// ```
pub fn split_frame<F: Format>(buf: &mut BytesMut) -> Result<Option<Bytes>, WireError> {
    let need = match frame_len::<F>(buf)? {
        Some(total) if buf.len() >= total => return Ok(Some(buf.split_to(total).freeze())),
        Some(total) => total - buf.len(),
        None => F::LAYOUT.length_end().saturating_sub(buf.len()),
    };
    make_room(buf, need);
    Ok(None)
}

/// Gives `buf` room for up to `need` more bytes: the same memory reused if
/// it can be, else a buffer grown by at most what it already holds.
fn make_room(buf: &mut BytesMut, need: usize) {
    let step = need.min(buf.len().max(READ_ROOM));
    let want = step.max(MIN_ROOM);
    if buf.capacity() - buf.len() >= want || buf.try_reclaim(want) {
        return;
    }
    // Exactly this much, not `reserve`'s doubling: a buffer for a frame
    // ends at the frame's end (plus room for the next few small ones).
    let target = buf.len() + if need <= READ_ROOM { READ_ROOM } else { step };
    let mut grown = BytesMut::with_capacity(target);
    grown.extend_from_slice(buf);
    *buf = grown;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Layout;

    const MAX_BODY: usize = 1 << 20;

    struct Demo;
    impl Format for Demo {
        const PROTOCOL: &'static str = "demo";
        const LAYOUT: Layout = Layout::LengthKind;
        const MAX_BODY: usize = MAX_BODY;
        type Kind = u8;
    }

    fn next_frame(buf: &mut BytesMut) -> Result<Option<Bytes>, WireError> {
        split_frame::<Demo>(buf)
    }

    /// `n` frames of kind 1 whose bodies are `body` bytes.
    fn frames(n: usize, body: usize) -> Vec<u8> {
        let mut one = ((body + 1) as u32).to_be_bytes().to_vec();
        one.push(1);
        one.resize(5 + body, 7);
        one.repeat(n)
    }

    /// Feeds `stream` in reads of the room next_frame leaves (at most
    /// `chunk`), dropping every frame at once; returns the frames and the
    /// largest capacity the buffer had.
    fn drain(stream: &[u8], chunk: usize) -> (usize, usize) {
        let mut buf = BytesMut::new();
        let (mut at, mut got, mut largest) = (0, 0, 0);
        loop {
            while let Some(f) = next_frame(&mut buf).unwrap() {
                drop(f);
                got += 1;
            }
            largest = largest.max(buf.capacity());
            if at == stream.len() {
                return (got, largest);
            }
            let n = (buf.capacity() - buf.len())
                .min(chunk)
                .min(stream.len() - at);
            buf.extend_from_slice(&stream[at..at + n]);
            at += n;
        }
    }

    #[test]
    fn a_buffer_keeps_its_size_over_a_long_stream() {
        // 10 KiB frames whose ends never line up with the reads.
        let stream = frames(500, 10_000);
        let (got, largest) = drain(&stream, usize::MAX);
        assert_eq!(got, 500);
        assert!(largest <= READ_ROOM, "grew to {largest}");
    }

    #[test]
    fn a_frame_larger_than_the_room_gets_room_for_all_of_it() {
        let stream = frames(3, 300_000);
        let (got, largest) = drain(&stream, 4096);
        assert_eq!(got, 3);
        assert!(largest >= 300_000);
    }

    #[test]
    fn a_buffer_grows_with_what_arrived_not_with_what_was_announced() {
        let frame = frames(1, MAX_BODY - 64);
        let mut buf = BytesMut::new();
        let mut at = 0;
        while at < frame.len() - 1 {
            assert!(next_frame(&mut buf).unwrap().is_none());
            // Never more than twice what arrived, plus one READ_ROOM.
            assert!(
                buf.capacity() <= 2 * buf.len() + READ_ROOM,
                "{} for {}",
                buf.capacity(),
                buf.len()
            );
            let n = (buf.capacity() - buf.len()).min(frame.len() - 1 - at);
            buf.extend_from_slice(&frame[at..at + n]);
            at += n;
        }
        // Almost all of it here: the buffer ends near the frame's end.
        assert!(next_frame(&mut buf).unwrap().is_none());
        assert!(
            buf.capacity() <= frame.len() + READ_ROOM,
            "{}",
            buf.capacity()
        );
        buf.extend_from_slice(&frame[at..]);
        assert_eq!(next_frame(&mut buf).unwrap().unwrap().len(), frame.len());
    }

    #[test]
    fn a_frame_still_held_is_never_overwritten() {
        let stream = frames(40, 5_000);
        let mut buf = BytesMut::new();
        let mut held = Vec::new();
        let mut at = 0;
        while at < stream.len() || !buf.is_empty() {
            while let Some(f) = next_frame(&mut buf).unwrap() {
                held.push((f.clone(), f.to_vec()));
            }
            if at == stream.len() {
                break;
            }
            let n = (buf.capacity() - buf.len())
                .min(7_000)
                .min(stream.len() - at);
            buf.extend_from_slice(&stream[at..at + n]);
            at += n;
        }
        assert_eq!(held.len(), 40);
        assert!(held.iter().all(|(f, copy)| f[..] == copy[..]));
    }
}
