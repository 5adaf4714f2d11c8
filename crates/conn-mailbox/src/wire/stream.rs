//! Frames out of a byte stream: the one reader both the client and the
//! daemon use, so neither trusts a length it has not checked.

use bytes::{Bytes, BytesMut};

use super::{WireError, frame_len};

/// The least room a read into a stream buffer gets. Large, so a burst of
/// small frames arrives in one system call (a reader that takes 4 KiB at a
/// time pays one `read(2)` per few dozen 100-byte frames).
pub const READ_ROOM: usize = 64 * 1024;

/// Splits the next whole frame off the front of `buf`, sharing its bytes
/// (no copy). `Ok(None)` when the frame is not all there yet; `buf` then
/// has room for at least the rest of it, and never less than
/// [`READ_ROOM`]. A length no frame may have is an error before anything
/// is allocated for it.
///
/// ```
/// use bytes::BytesMut;
/// use conn_mailbox::wire::{Repr, next_frame};
///
/// let mut buf = BytesMut::from(&Repr::Disconnect.to_vec()[..]);
/// buf.extend_from_slice(&[0, 0]); // half of the next frame's length
/// assert_eq!(&next_frame(&mut buf)?.unwrap()[..], &Repr::Disconnect.to_vec()[..]);
/// assert!(next_frame(&mut buf)?.is_none());
/// assert!(buf.capacity() - buf.len() >= conn_mailbox::wire::READ_ROOM);
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
    let room = need.max(READ_ROOM);
    if buf.capacity() - buf.len() < room {
        buf.reserve(room);
    }
    Ok(None)
}
