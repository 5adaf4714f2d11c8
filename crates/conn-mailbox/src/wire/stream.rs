//! Frames out of a byte stream: the one reader both the client and the
//! daemon use, so neither trusts a length it has not checked.

use bytes::{Bytes, BytesMut};

use super::{WireError, frame_len};

/// The size a stream buffer is given: a burst of small frames arrives in
/// one system call (a reader that takes 4 KiB at a time pays one `read(2)`
/// per few dozen 100-byte frames).
pub const READ_ROOM: usize = 64 * 1024;

/// The least room a read gets before the buffer is made over.
const MIN_ROOM: usize = 16 * 1024;

/// Splits the next whole frame off the front of `buf`, sharing its bytes
/// (no copy). `Ok(None)` when the frame is not all there yet; `buf` then
/// has room for at least the rest of it. A length no frame may have is an
/// error before anything is allocated for it.
///
/// The buffer keeps its size ([`READ_ROOM`], or the largest frame): when
/// room runs short, the partial frame at its end moves to the front of the
/// same memory (once every frame split off before has been dropped) rather
/// than the buffer growing. A growing buffer touches fresh pages, and a
/// page fault costs more than the read.
///
/// ```
/// use bytes::BytesMut;
/// use conn_mailbox::wire::{Repr, next_frame};
///
/// let mut buf = BytesMut::from(&Repr::Disconnect.to_vec()[..]);
/// buf.extend_from_slice(&[0, 0]); // half of the next frame's length
/// assert_eq!(&next_frame(&mut buf)?.unwrap()[..], &Repr::Disconnect.to_vec()[..]);
/// assert!(next_frame(&mut buf)?.is_none());
/// assert!(buf.capacity() - buf.len() >= 1024);
/// buf.clear();
/// buf.extend_from_slice(&[0xff; 4]); // a length no frame may have
/// assert!(next_frame(&mut buf).is_err());
/// # Ok::<(), conn_mailbox::wire::WireError>(())
/// ```
pub fn next_frame(buf: &mut BytesMut) -> Result<Option<Bytes>, WireError> {
    let need = match frame_len(buf)? {
        Some(total) if buf.len() >= total => return Ok(Some(buf.split_to(total).freeze())),
        Some(total) => total - buf.len(),
        None => 4 - buf.len(),
    };
    let want = need.max(MIN_ROOM);
    if buf.capacity() - buf.len() < want && !buf.try_reclaim(want) {
        buf.reserve(need.max(READ_ROOM));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Repr;

    fn frames(n: usize, body: usize) -> Vec<u8> {
        let payload = vec![7u8; body];
        let one = Repr::Reply {
            req: 1,
            code: 0,
            detail: std::str::from_utf8(&payload).unwrap(),
        }
        .to_vec();
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
