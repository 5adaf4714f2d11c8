//! The lifecycle suite (conn-test-support's, shared by every transport) on
//! real Unix-domain sockets, then what only `ipc://` has: paths and
//! abstract names, peer credentials, pairs, adoption, the registry.

mod common;

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use common::temp_path;
use conn_core::{Connection, Deadline, ErrorKind, Listener, Registry};
use conn_ipc::{IpcConnector, IpcListener, IpcStream};
use conn_test_support::lifecycle::{Accepting, Harness};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// `ipc://` for the lifecycle suite: a fresh socket file per listener.
struct Ipc;

impl Harness for Ipc {
    type Listener = IpcListener;
    type Conn = IpcStream;
    type Connector = IpcConnector;

    fn bind(&self) -> IpcListener {
        IpcListener::bind(temp_path("suite")).unwrap()
    }
    fn connector(&self) -> IpcConnector {
        IpcConnector
    }
    fn raw_fd(&self, conn: &IpcStream) -> Option<RawFd> {
        Some(conn.as_raw_fd())
    }
    fn adopt(&self, fd: OwnedFd) -> conn_core::Result<IpcStream> {
        IpcStream::from_fd(fd)
    }
    fn accept_until<'a>(
        &self,
        listener: &'a mut IpcListener,
        deadline: Deadline,
        token: &'a CancellationToken,
    ) -> Option<Accepting<'a, IpcStream>> {
        Some(Box::pin(listener.accept_until(deadline, token)))
    }
}

conn_test_support::lifecycle_suite!(Ipc);

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
