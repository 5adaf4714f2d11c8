//! Socket activation across processes (kill after fork is the lifecycle
//! suite's, in `lifecycle.rs`). The test re-runs this binary as a child
//! (see `common::child`), which plays the role named in its environment,
//! with the socket passed as its descriptor 3. Peers are std sockets, not
//! connkit.

mod common;

use std::io::Read;
use std::os::fd::AsRawFd;

use common::{child, child_done, liveness, pass_as_fd_3, role, run_child, std_peer};
use conn_core::Connection;
use conn_tcp::TcpListener;
use tokio::io::AsyncWriteExt;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
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
