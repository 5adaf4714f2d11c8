//! The byte-stream calls of a connected socket: read, send, shutdown.

use std::io;
use std::task::{Context, Poll, ready};

use rustix::net::{SendFlags, Shutdown};
use tokio::io::ReadBuf;

use super::{LazyFd, Wait};

impl LazyFd {
    /// Reads into `buf` (`read(2)`), waiting for data when there is none;
    /// the body of an `AsyncRead::poll_read`.
    pub fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // Read straight into the uninitialised part: zeroing it first, as
        // `initialize_unfilled` would, costs a memset of hyper's whole read
        // buffer on every read.
        // SAFETY: we only hand the slice to read(2), which writes bytes and
        // never de-initialises any.
        let dst = unsafe { buf.unfilled_mut() };
        let n = ready!(self.poll_io(cx, Wait::Read, |fd| {
            Ok(rustix::io::read(fd, &mut *dst)?.0.len())
        }))?;
        // SAFETY: read(2) initialised the first `n` bytes of the unfilled part.
        unsafe { buf.assume_init(n) };
        buf.advance(n);
        Poll::Ready(Ok(()))
    }

    /// Sends from `buf` (`send(2)` with `MSG_NOSIGNAL`: a vanished peer is
    /// `EPIPE`, never `SIGPIPE`), waiting for room when there is none; the
    /// body of an `AsyncWrite::poll_write`.
    pub fn poll_send(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_io(cx, Wait::Write, |fd| {
            Ok(rustix::net::send(fd, buf, SendFlags::NOSIGNAL)?)
        })
    }

    /// Sends the buffers of `bufs` in order with one `sendmsg(2)`
    /// (`MSG_NOSIGNAL`), returning how many bytes went: the body of an
    /// `AsyncWrite::poll_write_vectored`, so a header and a body leave in
    /// one call without being copied together first.
    pub fn poll_send_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_io(cx, Wait::Write, |fd| {
            let mut no_control = rustix::net::SendAncillaryBuffer::default();
            Ok(rustix::net::sendmsg(
                fd,
                bufs,
                &mut no_control,
                SendFlags::NOSIGNAL,
            )?)
        })
    }

    /// `shutdown(2)`: `Shutdown::Write` is the half-close behind
    /// `Connection::done`. It never blocks on Unix-domain or TCP sockets.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.with_fd(|fd| Ok(rustix::net::shutdown(fd, how)?))
    }
}
