//! The lifecycle suite (conn-test-support's, shared by every transport) on
//! kernel TCP, then what only `tcp://` has, against peers that are not
//! connkit (std's blocking TcpStream / TcpListener in threads): resets,
//! abort, IPv6, host names, TCP_NODELAY, SO_REUSEPORT, adoption, the
//! registry.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::thread;
use std::time::Duration;

use common::{assert_released, closed_port, fd_identity, liveness, std_peer};
use conn_core::{Connection, Deadline, ErrorKind, Listener, Registry};
use conn_tcp::{TcpConnector, TcpListener, TcpStream};
use conn_test_support::lifecycle::{Accepting, Harness};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// `tcp://` on loopback for the lifecycle suite.
struct Tcp;

impl Harness for Tcp {
    type Listener = TcpListener;
    type Conn = TcpStream;
    type Connector = TcpConnector;

    fn bind(&self) -> TcpListener {
        TcpListener::bind("127.0.0.1:0").unwrap()
    }
    fn connector(&self) -> TcpConnector {
        TcpConnector
    }
    fn raw_fd(&self, conn: &TcpStream) -> Option<RawFd> {
        Some(conn.as_raw_fd())
    }
    fn adopt(&self, fd: OwnedFd) -> conn_core::Result<TcpStream> {
        TcpStream::from_fd(fd)
    }
    /// Loopback buffers grow to several MiB.
    fn bulk(&self) -> usize {
        8 << 20
    }
    fn accept_until<'a>(
        &self,
        listener: &'a mut TcpListener,
        deadline: Deadline,
        token: &'a CancellationToken,
    ) -> Option<Accepting<'a, TcpStream>> {
        Some(Box::pin(listener.accept_until(deadline, token)))
    }
}

conn_test_support::lifecycle_suite!(Tcp);

/// A std listener on loopback and a connkit stream connected to it, with
/// the std end accepted.
async fn to_std_peer() -> (TcpStream, std::net::TcpStream) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let conn = TcpStream::connect(l.local_addr().unwrap(), liveness())
        .await
        .unwrap();
    let (peer, _) = l.accept().unwrap();
    (conn, std_peer(peer))
}

/// Makes `stream` reset when dropped (SO_LINGER zero), as a crashing or
/// aborting peer does.
fn set_linger_zero(stream: &std::net::TcpStream) {
    rustix::net::sockopt::set_socket_linger(stream, Some(Duration::ZERO)).unwrap();
}

#[tokio::test]
async fn close_is_connection_reset_when_the_peer_resets_and_releases_the_fd() {
    let (conn, peer) = to_std_peer().await;
    let fd = conn.as_raw_fd();
    let identity = fd_identity(fd).unwrap();
    set_linger_zero(&peer);
    drop(peer); // RST

    let err = conn.close(liveness()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    assert_eq!(err.operation(), Some("close"));
    assert!(
        err.target().unwrap().starts_with("tcp://127.0.0.1:"),
        "{err}"
    );
    assert_released(fd, &identity);
}

#[tokio::test]
async fn close_is_connection_reset_when_the_peer_resets_while_we_drain() {
    let (conn, peer) = to_std_peer().await;
    let peer = thread::spawn(move || {
        let mut peer = peer;
        let mut buf = [0u8; 1];
        assert_eq!(peer.read(&mut buf).unwrap(), 0); // our FIN arrived
        set_linger_zero(&peer);
    });
    let err = conn.close(liveness()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    peer.join().unwrap();
}

#[tokio::test]
async fn abort_is_seen_by_the_peer_as_econnreset_and_releases_the_fd() {
    let (conn, mut peer) = to_std_peer().await;
    let fd = conn.as_raw_fd();
    let identity = fd_identity(fd).unwrap();
    conn.abort().unwrap();
    assert_released(fd, &identity);
    let err = peer.read(&mut [0u8; 16]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    assert_eq!(err.raw_os_error(), Some(libc::ECONNRESET));
}

#[tokio::test]
async fn ipv6_loopback_binds_accepts_and_connects() {
    let mut listener = TcpListener::bind("[::1]:0").unwrap();
    let addr = listener.local_addr();
    assert!(addr.is_ipv6());
    assert_eq!(
        listener.endpoint().to_string(),
        format!("tcp://[::1]:{}", addr.port())
    );

    // A std client to our listener...
    let mut client = std_peer(std::net::TcpStream::connect(addr).unwrap());
    let mut server = listener.accept(liveness()).await.unwrap();
    assert_eq!(server.peer_addr(), client.local_addr().unwrap());
    client.write_all(b"v6").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    server.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"v6");
    server.close(liveness()).await.unwrap();

    // ...and our client to a std listener, by text with tcp://.
    let std_listener = std::net::TcpListener::bind("[::1]:0").unwrap();
    let url = format!("tcp://{}", std_listener.local_addr().unwrap());
    let conn = TcpStream::connect(url.as_str(), liveness()).await.unwrap();
    assert_eq!(conn.peer_addr(), std_listener.local_addr().unwrap());
    assert!(conn.local_addr().unwrap().is_ipv6());
}

#[tokio::test]
async fn connect_to_a_host_name_works() {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = std_listener.local_addr().unwrap().port();
    let mut conn = TcpStream::connect(format!("localhost:{port}"), liveness())
        .await
        .unwrap();
    let (peer, _) = std_listener.accept().unwrap();
    assert_eq!(conn.peer_addr().port(), port);
    conn.write_all(b"by name").await.unwrap();
    conn.done(liveness()).await.unwrap();
    let mut got = Vec::new();
    std_peer(peer.try_clone().unwrap())
        .read_to_end(&mut got)
        .unwrap();
    assert_eq!(got, b"by name");
    peer.shutdown(Shutdown::Write).unwrap();
    conn.close(liveness()).await.unwrap();

    // The (host, port) form resolves too.
    let _again = TcpStream::connect(("localhost", port), liveness())
        .await
        .unwrap();
}

#[tokio::test]
async fn connect_errors_name_the_operation_and_the_target() {
    let closed = closed_port();
    let err = TcpStream::connect(closed, liveness()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    assert_eq!(
        err.to_string(),
        format!("connect on tcp://{closed}: connection refused (ECONNREFUSED)")
    );

    // By name: the error names the host and the address tried last.
    let name = format!("localhost:{}", closed.port());
    let err = TcpStream::connect(name.as_str(), liveness())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    assert!(
        err.to_string().starts_with(&format!(
            "connect on tcp://{name}: connection refused (ECONNREFUSED)"
        )),
        "{err}"
    );

    let err = TcpStream::connect("no-such-host.invalid:80", liveness())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(
        err.to_string()
            .starts_with("connect on tcp://no-such-host.invalid:80: not found (ENOENT)"),
        "{err}"
    );

    let err = TcpStream::connect("nonsense", liveness())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidType);
}

#[tokio::test]
async fn streams_have_nodelay_by_default_and_know_both_addresses() {
    let mut listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr(), liveness())
        .await
        .unwrap();
    let server = listener.accept(liveness()).await.unwrap();
    assert!(client.nodelay().unwrap());
    assert!(server.nodelay().unwrap());
    assert_eq!(client.peer_addr(), listener.local_addr());
    assert_eq!(client.local_addr().unwrap(), server.peer_addr());
    assert_eq!(server.local_addr().unwrap(), listener.local_addr());
    assert_eq!(
        client.peer_endpoint().unwrap().to_string(),
        format!("tcp://{}", listener.local_addr())
    );
    client.set_nodelay(false).unwrap();
    assert!(!client.nodelay().unwrap());

    let mut plain = TcpListener::options()
        .nodelay(false)
        .bind("127.0.0.1:0")
        .unwrap();
    let _c = std::net::TcpStream::connect(plain.local_addr()).unwrap();
    assert!(!plain.accept(liveness()).await.unwrap().nodelay().unwrap());
}

#[tokio::test]
async fn reuse_port_lets_per_core_listeners_share_a_port() {
    let a = TcpListener::bind("127.0.0.1:0").unwrap();
    let err = TcpListener::bind(a.local_addr()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    assert_eq!(
        err.to_string(),
        format!(
            "bind on tcp://{}: address in use (EADDRINUSE)",
            a.local_addr()
        )
    );

    let options = TcpListener::options().reuse_port(true).backlog(16);
    let mut first = options.bind("127.0.0.1:0").unwrap();
    let mut second = options.bind(first.local_addr()).unwrap();
    assert_eq!(first.local_addr(), second.local_addr());
    // Connections are spread between them; each one is accepted by one.
    let addr = first.local_addr();
    let clients: Vec<_> = (0..8)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    let mut accepted = 0;
    for listener in [&mut first, &mut second] {
        while listener.accept(Deadline::NOW).await.is_ok() {
            accepted += 1;
        }
    }
    assert_eq!(accepted, clients.len());
}

#[tokio::test]
async fn from_fd_checks_for_tcp_sockets() {
    let file: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
    let err = TcpStream::from_fd(file).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotSocket);
    assert!(
        err.to_string()
            .starts_with("adopt connection on tcp socket (fd "),
        "{err}"
    );

    let udp: OwnedFd = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().into();
    let err = TcpStream::from_fd(udp).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidType);
    assert!(err.to_string().ends_with("not a stream socket"), "{err}");
    let (unix, _other) = std::os::unix::net::UnixStream::pair().unwrap();
    let err = TcpStream::from_fd(unix.into()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidType);
    assert!(err.to_string().ends_with("not a TCP socket"), "{err}");
    let path = std::env::temp_dir().join(format!("conn-tcp-from-fd-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let unix_listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let err = TcpListener::from_fd(unix_listener.into()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidType);
    assert!(
        err.to_string()
            .starts_with("adopt listener on tcp socket (fd "),
        "{err}"
    );

    // A socket that was never connected.
    let fresh = rustix::net::socket(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::STREAM,
        None,
    )
    .unwrap();
    assert_eq!(
        TcpStream::from_fd(fresh).unwrap_err().kind(),
        ErrorKind::NotConnected
    );

    // A listener is not a connection, and a connection is not a listener.
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let std_client = std::net::TcpStream::connect(std_listener.local_addr().unwrap()).unwrap();
    let err = TcpListener::from_fd(std_client.try_clone().unwrap().into()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidType);
    let err = TcpStream::from_fd(std_listener.try_clone().unwrap().into()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidType);

    // The right kinds are adopted and work.
    let addr: SocketAddr = std_listener.local_addr().unwrap();
    let mut listener = TcpListener::from_fd(std_listener.into()).unwrap();
    assert_eq!(listener.local_addr(), addr);
    let mut client = TcpStream::from_fd(std_client.into()).unwrap();
    assert_eq!(client.peer_addr(), addr);
    let mut server = listener.accept(liveness()).await.unwrap();
    client.write_all(b"adopted").await.unwrap();
    client.done(liveness()).await.unwrap();
    let mut got = Vec::new();
    server.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"adopted");
}

#[tokio::test]
async fn the_registry_binds_and_dials_tcp_urls() {
    let mut registry = Registry::with_defaults();
    conn_tcp::register(&mut registry);
    assert!(registry.schemes().any(|s| s == "tcp"));

    for bind in ["tcp://127.0.0.1:0", "tcp://[::1]:0"] {
        let mut listener = registry.bind(bind).await.unwrap();
        let url = listener.local_endpoint().to_string();
        let mut client = registry.connect(&url, liveness()).await.unwrap();
        let mut server = listener.accept(liveness()).await.unwrap();
        client.write_all(b"dyn").await.unwrap();
        client.done(liveness()).await.unwrap();
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"dyn");
        server.close(liveness()).await.unwrap();
        client.close(liveness()).await.unwrap();
    }

    let err = registry
        .connect(format!("tcp://{}", closed_port()), liveness())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);

    let err = conn_core::Connector::connect(
        &conn_tcp::TcpConnector,
        &"mem://x".parse().unwrap(),
        Deadline::NOW,
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidType);
}

#[tokio::test]
async fn connect_times_out_against_a_listener_whose_accept_queue_is_full() {
    // Linux drops SYNs to a listener whose accept queue is full, so a
    // connect to it waits for an answer that does not come.
    let listener = TcpListener::options()
        .backlog(0)
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = listener.local_addr();
    let mut queued = Vec::new();
    let mut filled = false;
    for _ in 0..16 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => queued.push(s),
            Err(_) => {
                filled = true;
                break;
            }
        }
    }
    assert!(
        filled,
        "the accept queue never filled ({} queued)",
        queued.len()
    );

    let err = TcpStream::connect(addr, Deadline::after(Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("connect on tcp://{addr}")),
        "{err}"
    );
    let err = conn_test_support::at_once(TcpStream::connect(addr, Deadline::NOW))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    drop(listener);
}

#[tokio::test]
async fn a_vectored_write_reaches_a_std_peer_whole_and_in_order() {
    let (mut conn, mut peer) = to_std_peer().await;
    assert!(tokio::io::AsyncWrite::is_write_vectored(&conn));
    let parts = [
        std::io::IoSlice::new(b"HTTP/1.1 200 OK\r\n\r\n"),
        std::io::IoSlice::new(b"hello"),
    ];
    let n = conn.write_vectored(&parts).await.unwrap();
    assert_eq!(n, 24);
    conn.done(liveness()).await.unwrap();
    let mut got = String::new();
    peer.read_to_string(&mut got).unwrap();
    assert_eq!(got, "HTTP/1.1 200 OK\r\n\r\nhello");
}
