//! Many HTTP/2 connections, each with a stream in flight, through a drain:
//! when did each see GOAWAY, and did each stream finish? Shared by
//! tests/http_drain.rs (the behaviour) and benches/drain.rs (the times).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// HTTP/2's GOAWAY frame type.
const GOAWAY: u8 = 0x7;

/// A client transport that reads the server's frame headers as they pass
/// and notes when the first GOAWAY arrived. The server sends no preface of
/// bytes before its frames, so the byte stream is frames from the start.
pub struct GoawayWatch {
    inner: TcpStream,
    header: [u8; 9],
    filled: usize,
    skip: usize,
    seen: Arc<OnceLock<Instant>>,
}

impl GoawayWatch {
    fn new(inner: TcpStream, seen: Arc<OnceLock<Instant>>) -> Self {
        GoawayWatch {
            inner,
            header: [0; 9],
            filled: 0,
            skip: 0,
            seen,
        }
    }

    fn observe(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (9 - self.filled).min(bytes.len());
            self.header[self.filled..self.filled + n].copy_from_slice(&bytes[..n]);
            self.filled += n;
            bytes = &bytes[n..];
            if self.filled == 9 {
                let h = self.header;
                self.skip =
                    (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]);
                if h[3] == GOAWAY {
                    let _ = self.seen.set(Instant::now());
                }
                self.filled = 0;
            }
        }
    }
}

impl AsyncRead for GoawayWatch {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let new = buf.filled()[before..].to_vec();
            this.observe(&new);
        }
        polled
    }
}

impl AsyncWrite for GoawayWatch {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, b)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// What one connection saw.
#[derive(Debug)]
pub struct Seen {
    /// When its first GOAWAY arrived, if one did.
    pub goaway: Option<Instant>,
    /// When its stream's whole response had arrived, and what it said.
    pub finished: Result<(Instant, String), String>,
}

/// Opens one HTTP/2 connection to `addr` and sends `GET path` on it;
/// resolves once the request has been sent, with a handle that resolves to
/// what the connection saw.
pub async fn open(addr: SocketAddr, path: &'static str) -> tokio::task::JoinHandle<Seen> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let seen = Arc::new(OnceLock::new());
    let io = TokioIo::new(GoawayWatch::new(stream, seen.clone()));
    let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .expect("HTTP/2 handshake");
    tokio::spawn(conn);
    let req = http::Request::get(format!("http://drain{path}"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = send.send_request(req);
    tokio::spawn(async move {
        let finished = async {
            let response = response.await.map_err(|e| e.to_string())?;
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok((Instant::now(), String::from_utf8_lossy(&body).into_owned()))
        }
        .await;
        Seen {
            goaway: seen.get().copied(),
            finished,
        }
    })
}

/// Raises the soft descriptor limit to the hard one: a thousand
/// connections need two thousand descriptors in one process.
pub fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    setrlimit(Resource::Nofile, limit).expect("raise RLIMIT_NOFILE");
}

/// The slowest GOAWAY after `signal`, and the count of connections that saw one.
pub fn goaway_latency(seen: &[Seen], signal: Instant) -> (Duration, usize) {
    let times: Vec<Duration> = seen
        .iter()
        .filter_map(|s| s.goaway)
        .map(|t| t.saturating_duration_since(signal))
        .collect();
    (times.iter().copied().max().unwrap_or_default(), times.len())
}
