//! The transport as hyper sees it: hyper's shutdown becomes connkit's
//! orderly close.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::Relaxed};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How the orderly close of a connection went, as [`ClosingIo`] saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CloseOutcome {
    /// hyper never shut the transport down (it ended with an error).
    NotClosed = 0,
    /// Both ends ended in order.
    InOrder = 1,
    /// The peer reset the connection while we waited for its end.
    Reset = 2,
    /// The peer did not end its side in time.
    TimedOut = 3,
}

/// Where [`ClosingIo`] leaves what it saw for the connection's driver: the
/// close's outcome, and whether the peer opened with HTTP/2's preface.
#[derive(Debug, Default)]
pub(super) struct CloseCell {
    outcome: AtomicU8,
    http2: AtomicBool,
    closing: AtomicBool,
}

/// How an HTTP/2 connection's preface begins (RFC 9113, 3.4); no HTTP/1
/// method is `PRI`.
const H2_PREFACE_START: &[u8] = b"PRI ";

impl CloseCell {
    fn set(&self, outcome: CloseOutcome) {
        self.outcome.store(outcome as u8, Relaxed);
    }

    /// hyper has shut the transport down: the close is under way, bounded
    /// by its own deadline.
    pub(super) fn is_closing(&self) -> bool {
        self.closing.load(Relaxed)
    }

    /// The peer's first bytes were HTTP/2's preface.
    pub(super) fn is_http2(&self) -> bool {
        self.http2.load(Relaxed)
    }

    pub(super) fn get(&self) -> CloseOutcome {
        match self.outcome.load(Relaxed) {
            1 => CloseOutcome::InOrder,
            2 => CloseOutcome::Reset,
            3 => CloseOutcome::TimedOut,
            _ => CloseOutcome::NotClosed,
        }
    }
}

/// A connection whose `poll_shutdown` is libdill's orderly close: send our
/// end, then read and drop until the peer's end (or its reset, or
/// `within`). hyper shuts the transport down when an HTTP/1 connection ends
/// and when an HTTP/2 connection has sent GOAWAY and finished its streams;
/// this completes the handshake hyper cannot (it owns the transport to the
/// end, so the connection's own `close` can never be called).
pub(super) struct ClosingIo<C> {
    inner: C,
    state: State,
    within: Duration,
    outcome: Arc<CloseCell>,
    /// Nothing has been read yet: the first bytes tell the protocol.
    first_read: bool,
    /// What the first read took beyond what hyper asked for, and how much
    /// of it hyper has had (see `poll_read`).
    ahead: [u8; READ_AHEAD],
    ahead_at: usize,
    ahead_end: usize,
}

/// How much the connection's first read takes when hyper asks for less.
/// hyper-util's protocol detection asks for the 24 bytes of HTTP/2's
/// preface first, and hyper then for the rest of the request: read at once,
/// a typical first request costs one `read(2)` instead of two.
const READ_AHEAD: usize = 1024;

enum State {
    Open,
    /// Reading until the peer's end, at the latest until `until`; the timer
    /// is made only if the drain has to wait.
    Draining {
        until: Instant,
        timer: Option<Pin<Box<Sleep>>>,
    },
    Closed,
}

/// Reads per poll while draining, so a peer that keeps sending cannot keep
/// the task from yielding.
const DRAIN_READS_PER_POLL: usize = 16;

impl<C> ClosingIo<C> {
    pub(super) fn new(inner: C, within: Duration, outcome: Arc<CloseCell>) -> Self {
        ClosingIo {
            inner,
            state: State::Open,
            within,
            outcome,
            first_read: true,
            ahead: [0; READ_AHEAD],
            ahead_at: 0,
            ahead_end: 0,
        }
    }
}

impl<C: AsyncRead + AsyncWrite + Unpin> AsyncRead for ClosingIo<C> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.ahead_at < this.ahead_end {
            let (at, end) = (this.ahead_at, this.ahead_end);
            let n = (end - at).min(buf.remaining());
            buf.put_slice(&this.ahead[at..at + n]);
            this.ahead_at += n;
            return Poll::Ready(Ok(()));
        }
        if !this.first_read {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let read = if buf.remaining() < READ_AHEAD {
            let mut ahead = ReadBuf::new(&mut this.ahead);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut ahead))?;
            let got = ahead.filled().len();
            let n = got.min(buf.remaining());
            buf.put_slice(&this.ahead[..n]);
            (this.ahead_at, this.ahead_end) = (n, got);
            &this.ahead[..got]
        } else {
            let before = buf.filled().len();
            ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
            &buf.filled()[before..]
        };
        if !read.is_empty() {
            this.first_read = false;
            let n = read.len().min(H2_PREFACE_START.len());
            if read[..n] == H2_PREFACE_START[..n] {
                this.outcome.http2.store(true, Relaxed);
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<C: AsyncRead + AsyncWrite + Unpin> AsyncWrite for ClosingIo<C> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Open => {
                    match ready!(Pin::new(&mut this.inner).poll_shutdown(cx)) {
                        Ok(()) => {}
                        // The peer is gone already: its end (or reset) is
                        // what the drain reads next.
                        Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
                        Err(e) => {
                            this.outcome.set(CloseOutcome::Reset);
                            this.state = State::Closed;
                            return Poll::Ready(Err(e));
                        }
                    }
                    this.outcome.closing.store(true, Relaxed);
                    this.state = State::Draining {
                        until: Instant::now() + this.within,
                        timer: None,
                    };
                }
                State::Draining { until, timer } => {
                    let mut sink = [0u8; 512];
                    for _ in 0..DRAIN_READS_PER_POLL {
                        let mut buf = ReadBuf::new(&mut sink);
                        match Pin::new(&mut this.inner).poll_read(cx, &mut buf) {
                            Poll::Ready(Ok(())) if buf.filled().is_empty() => {
                                return this.finish(CloseOutcome::InOrder);
                            }
                            Poll::Ready(Ok(())) => continue,
                            Poll::Ready(Err(_)) => return this.finish(CloseOutcome::Reset),
                            Poll::Pending => {
                                let until = *until;
                                let timer = timer.get_or_insert_with(|| {
                                    Box::pin(tokio::time::sleep_until(until))
                                });
                                if timer.as_mut().poll(cx).is_ready() {
                                    return this.finish(CloseOutcome::TimedOut);
                                }
                                return Poll::Pending;
                            }
                        }
                    }
                    // A peer that keeps sending: yield, and end the wait at
                    // its deadline all the same.
                    if Instant::now() >= *until {
                        return this.finish(CloseOutcome::TimedOut);
                    }
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                State::Closed => return Poll::Ready(Ok(())),
            }
        }
    }
}

impl<C> ClosingIo<C> {
    fn finish(&mut self, outcome: CloseOutcome) -> Poll<io::Result<()>> {
        self.outcome.set(outcome);
        self.state = State::Closed;
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// hyper-util asks for the 24 bytes of the HTTP/2 preface first; the
    /// rest of what that read took reaches hyper's next read unchanged.
    #[tokio::test(flavor = "current_thread")]
    async fn the_first_read_takes_ahead_and_hands_every_byte_on_in_order() {
        let (mut client, server) = tokio::io::duplex(4096);
        let request: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
        client.write_all(&request).await.unwrap();
        drop(client);
        let cell = Arc::new(CloseCell::default());
        let mut io = ClosingIo::new(server, Duration::from_secs(1), cell.clone());
        let mut got = vec![0u8; 24];
        io.read_exact(&mut got).await.unwrap();
        let mut rest = Vec::new();
        io.read_to_end(&mut rest).await.unwrap();
        got.extend(rest);
        assert_eq!(got, request);
        assert!(!cell.is_http2());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_preface_read_ahead_is_still_seen_as_http2() {
        let (mut client, server) = tokio::io::duplex(4096);
        client
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .unwrap();
        let cell = Arc::new(CloseCell::default());
        let mut io = ClosingIo::new(server, Duration::from_secs(1), cell.clone());
        let mut got = [0u8; 4];
        io.read_exact(&mut got).await.unwrap();
        assert!(cell.is_http2());
    }
}
