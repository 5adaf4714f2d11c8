//! Behaviour across processes: kill after fork/exec, socket activation.
//! Each test re-runs this binary as a child (see `common::child`), which
//! plays the role named in its environment, with the socket passed as its
//! descriptor 3. Peers are std sockets, not connkit.

mod common;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use common::{child, child_done, liveness, pass_as_fd_3, role, run_child, std_peer};
use conn_core::Connection;
use conn_tcp::{TcpListener, TcpStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn kill_in_a_child_leaves_the_parents_connection_working_both_ways() {
    const TEST: &str = "kill_in_a_child_leaves_the_parents_connection_working_both_ways";
    if role().as_deref() == Some("kill-inherited") {
        // SAFETY: the parent made descriptor 3 a copy of its connection for
        // this process alone; nothing else here uses it.
        let fd = unsafe { OwnedFd::from_raw_fd(3) };
        let conn = TcpStream::from_fd(fd).expect("an inherited connection");
        conn.kill();
        child_done("kill-inherited");
        return;
    }

    runtime().block_on(async {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut conn = TcpStream::connect(std_listener.local_addr().unwrap(), liveness())
            .await
            .unwrap();
        let (peer, _) = std_listener.accept().unwrap();
        let mut peer = std_peer(peer);

        let mut cmd = child(TEST, "kill-inherited");
        pass_as_fd_3(&mut cmd, conn.as_raw_fd());
        run_child(cmd, "kill-inherited");

        // The peer sees no end: nothing to read, not end-of-stream.
        peer.set_nonblocking(true).unwrap();
        let err = peer.read(&mut [0u8; 16]).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
        peer.set_nonblocking(false).unwrap();

        // The parent's copy works both ways.
        conn.write_all(b"still here").await.unwrap();
        let mut got = [0u8; 10];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"still here");
        peer.write_all(b"so am I").unwrap();
        let mut got = [0u8; 7];
        conn.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"so am I");

        // The last copy's orderly close: the peer reads end-of-stream and
        // answers with its own.
        let closing = std::thread::spawn(move || {
            let mut rest = Vec::new();
            peer.read_to_end(&mut rest).unwrap();
            assert!(rest.is_empty());
        });
        conn.close(liveness()).await.unwrap();
        closing.join().unwrap();
    });
}

#[test]
fn a_socket_activated_tcp_listener_is_adopted_from_listen_fds() {
    const TEST: &str = "a_socket_activated_tcp_listener_is_adopted_from_listen_fds";
    match role().as_deref() {
        // Stage 1: become the activated service. `exec` keeps the pid, so
        // LISTEN_PID can name this very process, as systemd does.
        Some("activation-exec") => {
            use std::os::unix::process::CommandExt;
            let mut cmd = child(TEST, "activation-run");
            cmd.env("LISTEN_PID", std::process::id().to_string())
                .env("LISTEN_FDS", "1");
            panic!("exec failed: {}", cmd.exec());
        }
        // Stage 2: the service.
        Some("activation-run") => {
            let mut fds = conn_core::activation::listen_fds().unwrap();
            assert_eq!(fds.len(), 1);
            let fd = fds.pop().unwrap();
            assert_eq!(fd.as_raw_fd(), 3);
            let mut listener = TcpListener::from_fd(fd).unwrap();
            let expected = std::env::var("CONN_TCP_TEST_ADDR").unwrap();
            assert_eq!(listener.local_addr().to_string(), expected);
            assert_eq!(listener.endpoint().to_string(), format!("tcp://{expected}"));
            runtime().block_on(async {
                let mut conn = listener.accept(liveness()).await.unwrap();
                assert!(conn.nodelay().unwrap());
                conn.write_all(b"activated").await.unwrap();
                conn.close(liveness()).await.unwrap();
            });
            child_done("activation-run");
        }
        _ => {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr();
            // Connected before the service runs: the kernel queues it.
            let client = std_peer(std::net::TcpStream::connect(addr).unwrap());

            let mut cmd = child(TEST, "activation-exec");
            cmd.env("CONN_TCP_TEST_ADDR", addr.to_string());
            pass_as_fd_3(&mut cmd, listener.as_raw_fd());
            let service = std::thread::spawn(move || run_child(cmd, "activation-run"));

            let mut client = client;
            let mut answer = Vec::new();
            client.read_to_end(&mut answer).unwrap();
            assert_eq!(answer, b"activated");
            client.shutdown(std::net::Shutdown::Write).unwrap();
            service.join().unwrap();
        }
    }
}
