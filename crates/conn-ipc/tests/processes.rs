//! Socket activation across processes (kill after fork and EMFILE are the
//! lifecycle suite's, in `lifecycle.rs`). The test re-runs this binary as
//! a child (see `common::child`), which plays the role named in its
//! environment; descriptor numbers are per process, so the shared test
//! process is never changed.

mod common;

use std::os::fd::AsRawFd;
use std::time::Duration;

use common::{child, child_done, pass_as_fd_3, role, run_child, temp_path};
use conn_core::{Connection, Deadline};
use conn_ipc::{IpcListener, IpcStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn liveness() -> Deadline {
    Deadline::after(Duration::from_secs(30))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_socket_activated_listener_is_adopted_from_listen_fds() {
    const TEST: &str = "a_socket_activated_listener_is_adopted_from_listen_fds";
    match role().as_deref() {
        // Stage 1: become the activated service. `exec` keeps the pid, so
        // LISTEN_PID can name this very process, as systemd does.
        Some("activation-exec") => {
            use std::os::unix::process::CommandExt;
            let mut cmd = child(TEST, "activation-run");
            cmd.env("LISTEN_PID", std::process::id().to_string())
                .env("LISTEN_FDS", "1")
                .env("LISTEN_FDNAMES", "test");
            panic!("exec failed: {}", cmd.exec());
        }
        // Stage 2: the service.
        Some("activation-run") => {
            // SAFETY: this child runs this one test alone (--test-threads=1)
            // and no other thread of it touches the environment.
            let mut fds = unsafe { conn_core::activation::listen_fds_unset_env() }.unwrap();
            assert_eq!(fds.len(), 1);
            assert!(std::env::var_os("LISTEN_FDS").is_none());
            assert!(std::env::var_os("LISTEN_PID").is_none());
            assert!(conn_core::activation::listen_fds().unwrap().is_empty());
            let fd = fds.pop().unwrap();
            assert_eq!(fd.as_raw_fd(), 3);
            // SAFETY: F_GETFD only reads the flags of a descriptor we own.
            let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
            assert_ne!(flags & libc::FD_CLOEXEC, 0, "FD_CLOEXEC is set");

            let mut listener = IpcListener::from_fd(fd).unwrap();
            let expected = std::env::var("CONN_IPC_TEST_PATH").unwrap();
            assert_eq!(listener.endpoint().to_string(), format!("ipc://{expected}"));
            runtime().block_on(async {
                let mut conn = listener.accept(liveness()).await.unwrap();
                conn.write_all(b"activated").await.unwrap();
                conn.close(liveness()).await.unwrap();
            });
            child_done("activation-run");
        }
        _ => runtime().block_on(async {
            let path = temp_path("activation");
            let listener = IpcListener::bind(&path).unwrap();
            let mut client = IpcStream::connect(&path, liveness()).await.unwrap();
            client.done(liveness()).await.unwrap();

            let mut cmd = child(TEST, "activation-exec");
            cmd.env("CONN_IPC_TEST_PATH", &path);
            pass_as_fd_3(&mut cmd, listener.as_raw_fd());
            let service = std::thread::spawn(move || run_child(cmd, "activation-run"));

            let mut answer = Vec::new();
            liveness()
                .run(client.read_to_end(&mut answer))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(answer, b"activated");
            service.join().unwrap();
        }),
    }
}
