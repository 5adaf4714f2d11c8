//! serve() survives a full descriptor table: accept fails with EMFILE, the
//! loop pauses (logged once, no busy loop) and recovers when connections end.
//!
//! RLIMIT_NOFILE is per process, so the server runs in a child process (this
//! same binary, re-executed) whose limit is lowered, and the clients run in
//! the parent with ordinary limits. The listener is a real Unix socket,
//! wrapped here in the smallest `Listener` that conn-core's traits allow.

use std::io::{BufRead, BufReader as StdBufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use conn_core::lifecycle::{close_in_order, half_close};
use conn_core::serve::{lines, serve};
use conn_core::{Connection, Deadline, Endpoint, Listener, Result};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

const CLIENTS: usize = 24;
/// Descriptors the server may open beyond those it has at start.
const HEADROOM: u64 = 6;

struct Uds(UnixListener, Endpoint);
struct UdsConn(UnixStream);

impl Listener for Uds {
    type Conn = UdsConn;
    async fn accept(&mut self, _deadline: Deadline) -> Result<UdsConn> {
        Ok(UdsConn(self.0.accept().await?.0))
    }
    fn local_endpoint(&self) -> Endpoint {
        self.1.clone()
    }
}

impl Connection for UdsConn {
    async fn done(&mut self, deadline: Deadline) -> Result<()> {
        half_close(&mut self.0, deadline).await
    }
    async fn close(mut self, deadline: Deadline) -> Result<()> {
        close_in_order(&mut self.0, deadline).await
    }
    fn kill(self) {}
}

impl tokio::io::AsyncRead for UdsConn {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for UdsConn {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as u64)
        .unwrap_or(64)
}

/// The child: serve with a lowered fd limit until stdin closes, then print the report.
fn server(path: PathBuf) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = Uds(
            UnixListener::bind(&path).unwrap(),
            Endpoint::new("ipc", path.display()).unwrap(),
        );
        let limit = open_fds() + HEADROOM;
        let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
        rustix::process::setrlimit(
            rustix::process::Resource::Nofile,
            rustix::process::Rlimit {
                current: Some(limit),
                maximum: hard,
            },
        )
        .expect("lower RLIMIT_NOFILE");
        // Each answer takes a moment, as real work does, so connections stay
        // open while the loop takes the next peers and the table fills
        // whatever the clients' timing.
        let echo = tower::service_fn(|line: String| async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok::<_, conn_core::Error>(line)
        });
        let stdin_closed = async {
            let mut stdin = tokio::io::stdin();
            let mut sink = Vec::new();
            let _ = stdin.read_to_end(&mut sink).await;
        };
        println!("READY");
        let report = serve(listener, lines(echo))
            .with_graceful_shutdown(stdin_closed, Duration::from_secs(5))
            .await
            .unwrap();
        println!(
            "REPORT accepted={} closed={} fd_limit_episodes={} accept_errors={}",
            report.accepted, report.closed, report.fd_limit_episodes, report.accept_errors
        );
    });
}

/// The parent: more clients than the child has descriptors for.
fn main() {
    if let Ok(path) = std::env::var("CONNKIT_EMFILE_SERVER") {
        return server(path.into());
    }
    let dir = std::env::temp_dir().join(format!("connkit-emfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.sock");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("CONNKIT_EMFILE_SERVER", &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = StdBufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "READY");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut clients = Vec::new();
        for i in 0..CLIENTS {
            let mut c = BufReader::new(UnixStream::connect(&path).await.unwrap());
            c.get_mut()
                .write_all(format!("client {i}\n").as_bytes())
                .await
                .unwrap();
            clients.push(c);
        }
        // Clients are answered as the server's descriptors allow; each one
        // answered closes, freeing a descriptor for the next.
        let all = clients
            .into_iter()
            .enumerate()
            .map(|(i, mut c)| async move {
                let mut answer = String::new();
                c.read_line(&mut answer).await.unwrap();
                assert_eq!(answer, format!("client {i}\n"));
                c.get_mut().shutdown().await.unwrap();
                let mut rest = Vec::new();
                c.read_to_end(&mut rest).await.unwrap();
            });
        tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(all))
            .await
            .expect("every client is served once descriptors free up");
    });

    drop(child.stdin.take());
    let mut report = String::new();
    out.read_line(&mut report).unwrap();
    assert!(child.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(&dir);
    println!("{}", report.trim());
    let field = |name: &str| -> u64 {
        report
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {report:?}"))
    };
    assert_eq!(field("accepted"), CLIENTS as u64);
    assert_eq!(field("closed"), CLIENTS as u64);
    assert!(
        field("fd_limit_episodes") >= 1,
        "the fd table never filled: {report}"
    );
    // Backoff, not a busy loop: a spinning loop would retry thousands of times.
    assert!(
        field("accept_errors") < 200,
        "accept was retried too often: {report}"
    );
    std::io::stdout().flush().unwrap();
    println!("1 passed, 0 failed");
}
