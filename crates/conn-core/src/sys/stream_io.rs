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
        let wanted = dst.len();
        let n = ready!(self.poll_transfer(cx, Wait::Read, wanted, |fd| {
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
        self.poll_transfer(cx, Wait::Write, buf.len(), |fd| {
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
        let wanted = bufs.iter().map(|b| b.len()).sum();
        self.poll_transfer(cx, Wait::Write, wanted, |fd| {
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

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::fd::OwnedFd;
    use std::time::Duration;

    use super::*;

    fn pair() -> (LazyFd, std::os::unix::net::UnixStream) {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        (LazyFd::new(OwnedFd::from(a)), b)
    }

    async fn read(fd: &mut LazyFd, room: usize) -> Vec<u8> {
        let mut storage = vec![0u8; room];
        let mut buf = ReadBuf::new(&mut storage);
        std::future::poll_fn(|cx| fd.poll_read(cx, &mut buf))
            .await
            .unwrap();
        buf.filled().to_vec()
    }

    /// A short read clears the reactor's readiness; bytes that arrive later
    /// must still wake the reader (no lost wake-up).
    #[tokio::test(flavor = "current_thread")]
    async fn bytes_after_a_short_read_still_wake_the_reader() {
        let (mut fd, mut peer) = pair();
        // The first read finds nothing: the descriptor joins the reactor.
        let writer = tokio::task::spawn_blocking({
            let mut peer = peer.try_clone().unwrap();
            move || {
                std::thread::sleep(Duration::from_millis(20));
                peer.write_all(b"ab").unwrap();
            }
        });
        assert_eq!(read(&mut fd, 16).await, b"ab");
        assert!(fd.is_registered());
        writer.await.unwrap();
        // That read was short; more bytes come while nobody waits, then later.
        peer.write_all(b"c").unwrap();
        assert_eq!(read(&mut fd, 16).await, b"c");
        let late = tokio::task::spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(20));
            peer.write_all(b"d").unwrap();
            peer
        });
        let got = tokio::time::timeout(Duration::from_secs(5), read(&mut fd, 16)).await;
        assert_eq!(got.expect("the late byte woke the reader"), b"d");
        drop(late.await.unwrap());
    }

    /// A read that fills its buffer keeps the readiness: the rest is read
    /// at once, without waiting for another edge.
    #[tokio::test(flavor = "current_thread")]
    async fn a_full_read_leaves_the_rest_readable() {
        let (mut fd, peer) = pair();
        let writer = tokio::task::spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(20));
            (&peer).write_all(b"0123456789").unwrap();
            peer
        });
        assert_eq!(read(&mut fd, 4).await, b"0123");
        let _peer = writer.await.unwrap();
        let rest = tokio::time::timeout(Duration::from_secs(5), read(&mut fd, 16)).await;
        assert_eq!(rest.expect("the rest is readable"), b"456789");
    }

    /// A task that always finds its descriptor ready still lets the other
    /// tasks of its thread run (tokio's cooperative budget).
    #[tokio::test(flavor = "current_thread")]
    async fn an_always_ready_descriptor_still_yields_to_other_tasks() {
        let (mut fd, peer) = pair();
        (&peer).write_all(&[0u8; 4096]).unwrap();
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        tokio::spawn({
            let ran = ran.clone();
            async move { ran.store(true, std::sync::atomic::Ordering::SeqCst) }
        });
        let mut reads = 0;
        while !ran.load(std::sync::atomic::Ordering::SeqCst) && reads < 4096 {
            assert_eq!(read(&mut fd, 1).await.len(), 1);
            reads += 1;
        }
        assert!(!fd.is_registered(), "data was always there");
        assert!(reads < 4096, "the other task never ran");
    }

    /// A read that must wait registers the descriptor; the send that
    /// answers it goes out in the same turn, without waiting for the
    /// reactor to report the new registration writable.
    #[tokio::test(flavor = "current_thread")]
    async fn a_send_after_the_registering_read_goes_out_without_a_reactor_turn() {
        let (mut fd, mut peer) = pair();
        let sent = std::future::poll_fn(|cx| {
            let mut storage = [0u8; 16];
            let mut buf = ReadBuf::new(&mut storage);
            assert!(
                fd.poll_read(cx, &mut buf).is_pending(),
                "nothing to read yet"
            );
            assert!(fd.is_registered());
            Poll::Ready(fd.poll_send(cx, b"answer"))
        })
        .await;
        match sent {
            Poll::Ready(Ok(6)) => {}
            other => panic!("the send waited or failed: {other:?}"),
        }
        let mut got = [0u8; 6];
        std::io::Read::read_exact(&mut peer, &mut got).unwrap();
        assert_eq!(&got, b"answer");
    }
}
