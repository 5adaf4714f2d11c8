//! The orderly close and half-close every byte-stream transport shares.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{Deadline, Error, ErrorKind, Result};

/// Half-closes `stream` (shuts down its write side) within `deadline`.
///
/// Transports whose write shutdown is the half-close (`shutdown(SHUT_WR)`,
/// a TCP FIN, a closed duplex pipe) implement [`Connection::done`] with this.
///
/// [`Connection::done`]: crate::Connection::done
pub async fn half_close<S>(stream: &mut S, deadline: Deadline) -> Result<()>
where
    S: AsyncWrite + Unpin + ?Sized,
{
    deadline.run(stream.shutdown()).await?.map_err(Error::from)
}

/// The orderly terminal handshake (libdill `ipc_close`): half-closes, then
/// reads and drops inbound data until the peer's own end-of-stream.
///
/// Returns `Ok` once the peer has ended too, `TimedOut` when it has not by
/// `deadline`, and `ConnectionReset` when it vanished with a reset. The
/// caller releases the handle afterwards whatever this returns.
///
/// The drain buffer lives in the future itself, so closing allocates nothing.
pub async fn close_in_order<S>(stream: &mut S, deadline: Deadline) -> Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    deadline
        .run(async {
            match stream.shutdown().await {
                Ok(()) => {}
                // The peer is gone already; its end is what we wait for, so
                // go on and read it (or its reset) below.
                Err(e) if e.kind() == std::io::ErrorKind::NotConnected => {}
                Err(e) => return Err(Error::from(e)),
            }
            let mut sink = [0u8; 4096];
            loop {
                match stream.read(&mut sink).await {
                    Ok(0) => return Ok(()),
                    Ok(_) => continue,
                    Err(e) => return Err(Error::from(e)),
                }
            }
        })
        .await
        .and_then(|r| r)
        .map_err(|e| match e.kind() {
            ErrorKind::TimedOut => e.detail("the peer did not end its side in time"),
            _ => e,
        })
}
