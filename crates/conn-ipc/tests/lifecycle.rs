//! done / close / kill, accept deadlines and cancellation, on real sockets.

mod common;

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use common::{assert_released, fd_identity, temp_path};
use conn_core::{Connection, Deadline, ErrorKind, Listener, Registry};
use conn_ipc::{IpcListener, IpcStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// Long enough never to be reached by a working implementation.
const LIVENESS: Duration = Duration::from_secs(30);

fn liveness() -> Deadline {
    Deadline::after(LIVENESS)
}

async fn connected(tag: &str) -> (IpcListener, IpcStream, IpcStream) {
    let path = temp_path(tag);
    let mut listener = IpcListener::bind(&path).unwrap();
    let client = IpcStream::connect(&path, liveness()).await.unwrap();
    let server = listener.accept(liveness()).await.unwrap();
    (listener, client, server)
}

#[tokio::test]
async fn done_lets_the_peer_read_end_of_stream_while_this_side_still_receives() {
    let (_l, mut client, mut server) = connected("done").await;
    client.write_all(b"request").await.unwrap();
    client.done(liveness()).await.unwrap();

    let mut got = Vec::new();
    server.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"request");

    server.write_all(b"answer").await.unwrap();
    server.done(liveness()).await.unwrap();
    let mut answer = Vec::new();
    client.read_to_end(&mut answer).await.unwrap();
    assert_eq!(answer, b"answer");
}

#[tokio::test]
async fn close_drains_inbound_data_until_the_peers_end_returns_ok_and_releases_the_fd() {
    let (_l, client, mut server) = connected("close-ok").await;
    let fd = client.as_raw_fd();
    let identity = fd_identity(fd).unwrap();

    // More than the socket buffers hold: the server's write completes only
    // because the closing client drains it.
    let peer = tokio::spawn(async move {
        server.write_all(&vec![7u8; 4 << 20]).await.unwrap();
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).await.unwrap(); // the client's end
        assert!(rest.is_empty());
        server.close(liveness()).await.unwrap();
    });
    client.close(liveness()).await.unwrap();
    peer.await.unwrap();
    assert_released(fd, &identity);
}

#[tokio::test]
async fn close_is_connection_reset_when_the_peer_vanished_with_unread_data_and_releases_the_fd() {
    let (_l, client, mut server) = connected("close-reset").await;
    let fd = server.as_raw_fd();
    let identity = fd_identity(fd).unwrap();

    // Data the client never reads; closing with it queued resets on AF_UNIX.
    server.write_all(b"never read").await.unwrap();
    client.kill();

    let err = server.close(liveness()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    assert_eq!(err.operation(), Some("close"));
    assert!(err.target().unwrap().starts_with("ipc:///"), "{err}");
    assert_released(fd, &identity);
}

#[tokio::test]
async fn close_times_out_when_the_peer_does_not_end_and_still_releases_the_fd() {
    let (_l, client, mut server) = connected("close-timeout").await;
    let fd = client.as_raw_fd();
    let identity = fd_identity(fd).unwrap();

    let err = client
        .close(Deadline::after(Duration::from_millis(200)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert_eq!(err.operation(), Some("close"));
    assert_released(fd, &identity);

    // The client did send its end before giving up.
    let mut rest = Vec::new();
    server.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
}

#[tokio::test]
async fn kill_ends_the_connection_without_a_handshake() {
    let (_l, client, mut server) = connected("kill").await;
    let fd = client.as_raw_fd();
    let identity = fd_identity(fd).unwrap();
    client.kill();
    assert_released(fd, &identity);
    let mut buf = [0u8; 8];
    let n = liveness()
        .run(server.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn accept_with_deadline_now_times_out_at_once_when_nobody_waits() {
    let path = temp_path("accept-now");
    let mut listener = IpcListener::bind(&path).unwrap();
    let err = conn_test_support::at_once(listener.accept(Deadline::NOW))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(
        err.to_string().starts_with(&format!(
            "accept on ipc://{}: deadline passed (ETIMEDOUT)",
            path.display()
        )),
        "{err}"
    );

    // ...and accepts a peer that is already waiting.
    let _client = IpcStream::connect(&path, liveness()).await.unwrap();
    listener.accept(Deadline::NOW).await.unwrap();
}

#[tokio::test]
async fn accept_until_a_cancelled_token_is_canceled() {
    let path = temp_path("accept-cancel");
    let mut listener = IpcListener::bind(&path).unwrap();

    let token = CancellationToken::new();
    let waiting = {
        let token = token.clone();
        tokio::spawn(async move {
            let r = listener.accept_until(Deadline::NEVER, &token).await;
            (r, listener)
        })
    };
    tokio::task::yield_now().await;
    token.cancel();
    let (result, mut listener) = waiting.await.unwrap();
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Canceled);
    assert_eq!(err.operation(), Some("accept"));

    // A token that fired already refuses at once, even with a peer waiting.
    let _client = IpcStream::connect(&path, liveness()).await.unwrap();
    let err = listener
        .accept_until(Deadline::NEVER, &token)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Canceled);
    // The waiting peer was not lost.
    listener.accept(Deadline::NOW).await.unwrap();
}

#[tokio::test]
async fn a_dropped_accept_loses_no_connection() {
    let path = temp_path("accept-cancel-safe");
    let mut listener = IpcListener::bind(&path).unwrap();
    // Start an accept, let it wait, drop it.
    let r = Deadline::after(Duration::from_millis(20))
        .run(Listener::accept(&mut listener, Deadline::NEVER))
        .await;
    assert_eq!(r.unwrap_err().kind(), ErrorKind::TimedOut);
    let _client = IpcStream::connect(&path, liveness()).await.unwrap();
    Listener::accept(&mut listener, liveness()).await.unwrap();
}

#[tokio::test]
async fn connect_errors_name_the_operation_and_path() {
    let path = temp_path("connect-missing");
    let err = conn_test_support::at_once(IpcStream::connect(&path, Deadline::NOW))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(
        err.to_string(),
        format!("connect on ipc://{}: not found (ENOENT)", path.display())
    );

    // A socket file nobody listens on refuses.
    let stale = temp_path("connect-stale");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let err = conn_test_support::at_once(IpcStream::connect(&stale, Deadline::NOW))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    std::fs::remove_file(&stale).unwrap();
}

#[tokio::test]
async fn peer_cred_names_the_connecting_process() {
    let (_l, client, server) = connected("cred").await;
    let cred = server.peer_cred().unwrap();
    assert_eq!(cred.pid, std::process::id());
    assert_eq!(cred.uid, current_uid());
    assert_eq!(client.peer_cred().unwrap(), cred);
}

fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

#[tokio::test]
async fn abstract_names_bind_connect_and_are_exclusive() {
    let name = format!("@conn-ipc-test-{}-abstract", std::process::id());
    let mut listener = IpcListener::bind(&name).unwrap();
    assert_eq!(listener.endpoint().to_string(), format!("ipc://{name}"));
    let err = IpcListener::bind(&name).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    let client = IpcStream::connect(format!("ipc://{name}"), liveness())
        .await
        .unwrap();
    assert_eq!(
        client.peer_endpoint().unwrap().to_string(),
        format!("ipc://{name}")
    );
    listener.accept(liveness()).await.unwrap();
}

#[tokio::test]
async fn pair_is_a_connected_pair() {
    let (mut a, mut b) = IpcStream::pair().unwrap();
    a.write_all(b"x").await.unwrap();
    let mut buf = [0u8; 1];
    b.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"x");
    a.kill();
    assert_eq!(b.read(&mut buf).await.unwrap(), 0);
}

#[tokio::test]
async fn from_fd_checks_for_unix_stream_sockets() {
    let file: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
    let err = IpcStream::from_fd(file).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotSocket);
    assert!(err.to_string().starts_with("adopt connection on "), "{err}");

    let udp: OwnedFd = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().into();
    assert_eq!(
        IpcStream::from_fd(udp).unwrap_err().kind(),
        ErrorKind::InvalidType
    );
    let (dgram, _other) = std::os::unix::net::UnixDatagram::pair().unwrap();
    assert_eq!(
        IpcListener::from_fd(dgram.into()).unwrap_err().kind(),
        ErrorKind::InvalidType
    );

    // A listener is not a connection, and a connection is not a listener.
    let path = temp_path("from-fd");
    let std_listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let std_client = std::os::unix::net::UnixStream::connect(&path).unwrap();
    let err = IpcListener::from_fd(std_client.try_clone().unwrap().into()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidType);
    let err = IpcStream::from_fd(std_listener.try_clone().unwrap().into()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidType);

    // The right kinds are adopted, and named by their address.
    let mut listener = IpcListener::from_fd(std_listener.into()).unwrap();
    assert_eq!(
        listener.endpoint().to_string(),
        format!("ipc://{}", path.display())
    );
    let mut client = IpcStream::from_fd(std_client.into()).unwrap();
    let mut server = listener.accept(liveness()).await.unwrap();
    client.write_all(b"adopted").await.unwrap();
    client.done(liveness()).await.unwrap();
    let mut got = Vec::new();
    server.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"adopted");
    // An adopted listener leaves the file to whoever made it.
    drop(listener);
    assert!(path.exists());
    std::fs::remove_file(&path).unwrap();
}

#[tokio::test]
async fn the_registry_binds_and_dials_ipc_urls() {
    let mut registry = Registry::with_defaults();
    conn_ipc::register(&mut registry);
    assert!(registry.schemes().any(|s| s == "ipc"));

    let path = temp_path("registry");
    let url = format!("ipc://{}", path.display());
    let mut listener = registry.bind(&url).await.unwrap();
    let mut client = registry.connect(&url, liveness()).await.unwrap();
    let mut server = listener.accept(liveness()).await.unwrap();
    client.write_all(b"dyn").await.unwrap();
    client.done(liveness()).await.unwrap();
    let mut got = Vec::new();
    server.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"dyn");
    server.close(liveness()).await.unwrap();
    client.close(liveness()).await.unwrap();

    let err = conn_core::Connector::connect(
        &conn_ipc::IpcConnector,
        &"mem://x".parse().unwrap(),
        Deadline::NOW,
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidType);
}

#[tokio::test]
async fn connect_waits_for_room_in_a_full_backlog_until_its_deadline() {
    let path = temp_path("backlog");
    let mut listener = IpcListener::options().backlog(1).bind(&path).unwrap();
    let mut queued = Vec::new();
    let err = loop {
        match conn_test_support::at_once(IpcStream::connect(&path, Deadline::NOW)).await {
            Ok(conn) => queued.push(conn),
            Err(e) => break e,
        }
        assert!(queued.len() < 64, "the backlog never filled");
    };
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(err.to_string().contains("backlog"), "{err}");

    // With time to wait, connect gets in once accept makes room.
    let waiting = tokio::spawn(IpcStream::connect(path.clone(), liveness()));
    tokio::task::yield_now().await;
    listener.accept(liveness()).await.unwrap();
    waiting.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_vectored_write_sends_every_buffer_in_order_in_one_call() {
    let (_listener, mut client, mut server) = connected("vectored").await;
    assert!(tokio::io::AsyncWrite::is_write_vectored(&client));
    let parts = [
        std::io::IoSlice::new(b"head "),
        std::io::IoSlice::new(b""),
        std::io::IoSlice::new(b"and body"),
    ];
    let n = client.write_vectored(&parts).await.unwrap();
    assert_eq!(n, 13, "a small vectored write goes whole");
    client.done(liveness()).await.unwrap();
    let mut got = String::new();
    server.read_to_string(&mut got).await.unwrap();
    assert_eq!(got, "head and body");
}
