use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

use super::{MEM_BUFFER, MemListener};
use crate::lifecycle::{close_in_order, half_close};
use crate::{Connection, Deadline, Endpoint, Error, ErrorKind, Result};

/// One end of a `mem://` connection.
///
/// Reads, writes, [`done`](Connection::done), [`close`](Connection::close)
/// and [`kill`](Connection::kill) behave as on a socket: after `done` the peer
/// reads end-of-stream and this end still receives; `close` waits for the
/// peer's own end; `kill` (or drop) just lets go, and the peer reads
/// end-of-stream and gets `BrokenPipe` when it writes.
///
/// ```
/// use conn_core::{Connection, Deadline, Listener, mem::{MemListener, MemStream}};
/// use tokio::io::AsyncReadExt;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let mut listener = MemListener::bind("stream-doc")?;
/// let client = MemStream::connect("mem://stream-doc", Deadline::NEVER).await?;
/// let mut server = listener.accept(Deadline::NEVER).await?;
/// client.kill();
/// let mut rest = Vec::new();
/// assert_eq!(server.read_to_end(&mut rest).await?, 0); // end-of-stream, no handshake
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MemStream {
    io: DuplexStream,
    peer: Endpoint,
}

impl MemStream {
    /// Connects to the listener bound to `name` (with or without `mem://`).
    /// `ConnectionRefused` when no listener holds the name; waits for room in
    /// a full backlog until `deadline`.
    pub async fn connect(name: &str, deadline: Deadline) -> Result<MemStream> {
        let step = crate::lifecycle_span!("connect", "mem", name);
        let connected = MemStream::connect_inner(name, deadline).await;
        step.end(&connected);
        connected
    }

    async fn connect_inner(name: &str, deadline: Deadline) -> Result<MemStream> {
        let name = name.strip_prefix("mem://").unwrap_or(name);
        let endpoint = Endpoint::new("mem", name)?;
        let refused = || {
            Error::new(ErrorKind::ConnectionRefused)
                .during("connect")
                .on(&endpoint)
        };
        let backlog = MemListener::lookup(name).ok_or_else(refused)?;
        let (ours, theirs) = tokio::io::duplex(MEM_BUFFER);
        let server_side = MemStream {
            io: theirs,
            peer: Endpoint::new("mem", format_args!("{name}#client"))?,
        };
        match deadline.run(backlog.send(server_side)).await {
            Ok(Ok(())) => Ok(MemStream {
                io: ours,
                peer: endpoint,
            }),
            Ok(Err(_closed)) => Err(refused()),
            Err(e) => Err(e
                .during("connect")
                .on(&endpoint)
                .detail("the listener's backlog is full")),
        }
    }

    /// A connected pair with no listener, like `socketpair(2)`.
    pub fn pair() -> (MemStream, MemStream) {
        let (a, b) = tokio::io::duplex(MEM_BUFFER);
        let peer = Endpoint::parse("mem://pair").expect("valid");
        (
            MemStream {
                io: a,
                peer: peer.clone(),
            },
            MemStream { io: b, peer },
        )
    }
}

impl Connection for MemStream {
    async fn done(&mut self, deadline: Deadline) -> Result<()> {
        let step = crate::lifecycle_span!("done", "mem", &self.peer);
        let result = half_close(&mut self.io, deadline)
            .await
            .map_err(|e| e.during("done").on(&self.peer));
        step.end(&result);
        result
    }

    async fn close(mut self, deadline: Deadline) -> Result<()> {
        let step = crate::lifecycle_span!("close", "mem", &self.peer);
        let result = close_in_order(&mut self.io, deadline)
            .await
            .map_err(|e| e.during("close").on(&self.peer));
        step.end(&result);
        result
    }

    fn kill(self) {
        crate::lifecycle_span!("kill", "mem", &self.peer).end(&Ok(()));
    }

    fn peer_endpoint(&self) -> Option<Endpoint> {
        Some(self.peer.clone())
    }
}

impl AsyncRead for MemStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for MemStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Listener;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn connected(name: &str) -> (MemListener, MemStream, MemStream) {
        let mut listener = MemListener::bind(name).unwrap();
        let client = MemStream::connect(name, Deadline::NEVER).await.unwrap();
        let server = listener.accept(Deadline::NEVER).await.unwrap();
        (listener, client, server)
    }

    #[tokio::test]
    async fn kill_is_seen_as_end_of_stream_and_writes_then_break() {
        let (_l, client, mut server) = connected("t-kill").await;
        client.kill();
        let mut buf = [0u8; 8];
        assert_eq!(server.read(&mut buf).await.unwrap(), 0);
        let err = server.write_all(b"anyone?").await.unwrap_err();
        assert_eq!(Error::from(err).kind(), ErrorKind::BrokenPipe);
    }

    #[tokio::test]
    async fn connect_without_a_listener_is_refused() {
        let err = MemStream::connect("t-nobody", Deadline::NOW)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
        assert_eq!(
            err.to_string(),
            "connect on mem://t-nobody: connection refused (ECONNREFUSED)"
        );
    }

    #[tokio::test]
    async fn a_dropped_listener_frees_its_name() {
        let l = MemListener::bind("t-rebind").unwrap();
        drop(l);
        let _again = MemListener::bind("t-rebind").unwrap();
        assert!(MemStream::connect("t-rebind", Deadline::NOW).await.is_ok());
    }

    #[tokio::test]
    async fn a_full_backlog_makes_connect_wait_until_its_deadline() {
        let _l = MemListener::bind("t-backlog").unwrap();
        let mut queued = Vec::new();
        for _ in 0..crate::mem::MEM_BACKLOG {
            queued.push(
                MemStream::connect("t-backlog", Deadline::NOW)
                    .await
                    .unwrap(),
            );
        }
        let err = MemStream::connect("t-backlog", Deadline::NOW)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
    }
}
