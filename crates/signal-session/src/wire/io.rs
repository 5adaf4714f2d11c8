//! Whole frames on a byte stream.

use conn_core::{Error, ErrorKind, Result};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{Frame, HEADER_LEN, Message};

/// Reads one frame and parses it; `Ok(None)` at a clean end of stream
/// (before any byte of a frame). The header is checked before the payload
/// is read, so a bad length never allocates.
pub async fn read_message<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Option<Message>> {
    Ok(match read_frame(stream).await? {
        Some(bytes) => Some(Message::parse(&Frame::new_checked(&bytes[..])?)?),
        None => None,
    })
}

/// Reads one frame's bytes, header checked; `Ok(None)` at a clean end.
pub async fn read_frame<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Option<Vec<u8>>> {
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        let n = stream
            .read(&mut header[got..])
            .await
            .map_err(|e| Error::from(e).during("read sessiond frame"))?;
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
    let mut bytes = vec![0u8; HEADER_LEN + frame.payload_len()];
    bytes[..HEADER_LEN].copy_from_slice(&header);
    stream
        .read_exact(&mut bytes[HEADER_LEN..])
        .await
        .map_err(|e| {
            Error::from(e)
                .during("read sessiond frame")
                .detail("the stream ended inside a payload")
        })?;
    Ok(Some(bytes))
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
