//! Behaviour across processes: kill after fork/exec, EMFILE under a lowered
//! RLIMIT_NOFILE, socket activation. Each test re-runs this binary as a
//! child (see `common::child`), which plays the role named in its
//! environment; rlimits and descriptor numbers are per process, so the
//! shared test process is never changed.

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use common::{child, child_done, pass_as_fd_3, role, run_child, temp_path};
use conn_core::serve::{lines, serve};
use conn_core::{Connection, Deadline, ErrorKind};
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
fn kill_in_a_child_leaves_the_parents_copy_working_and_the_peer_sees_no_end() {
    const TEST: &str = "kill_in_a_child_leaves_the_parents_copy_working_and_the_peer_sees_no_end";
    if role().as_deref() == Some("kill-inherited") {
        // SAFETY: the parent made descriptor 3 a copy of its connection for
        // this process alone; nothing else here uses it.
        let fd = unsafe { OwnedFd::from_raw_fd(3) };
        let conn = IpcStream::from_fd(fd).expect("an inherited connection");
        conn.kill();
        child_done("kill-inherited");
        return;
    }

    runtime().block_on(async {
        let path = temp_path("fork-kill");
        let mut listener = IpcListener::bind(&path).unwrap();
        let mut peer = IpcStream::connect(&path, liveness()).await.unwrap();
        let mut conn = listener.accept(liveness()).await.unwrap();

        let mut cmd = child(TEST, "kill-inherited");
        pass_as_fd_3(&mut cmd, conn.as_raw_fd());
        run_child(cmd, "kill-inherited");

        // The peer sees no end: trying once finds nothing to read, not EOF.
        let mut buf = [0u8; 64];
        let err = conn_test_support::at_once(Deadline::NOW.run(peer.read(&mut buf)))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);

        // The parent's copy works both ways.
        conn.write_all(b"still here").await.unwrap();
        let mut got = [0u8; 10];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"still here");
        peer.write_all(b"so am I").await.unwrap();
        let mut got = [0u8; 7];
        conn.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"so am I");

        // The last copy's kill: end-of-stream, no handshake.
        conn.kill();
        let n = liveness().run(peer.read(&mut buf)).await.unwrap().unwrap();
        assert_eq!(n, 0);
    });
}

/// Fills the descriptor table: lowers the soft RLIMIT_NOFILE to just above
/// the highest open descriptor and opens /dev/null into every hole below
/// it. Returns the fillers; dropping some frees that many descriptors.
fn fill_descriptor_table() -> Vec<std::fs::File> {
    let highest = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .unwrap();
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write and read the struct we pass; this
    // is a child process of its own, so lowering its limit affects no test.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = highest + 1;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    let mut fillers = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => fillers.push(f),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => return fillers,
            Err(e) => panic!("filling the descriptor table: {e}"),
        }
    }
}

#[test]
fn accept_is_process_fd_limit_at_emfile_and_serve_recovers_once_descriptors_free_up() {
    const TEST: &str =
        "accept_is_process_fd_limit_at_emfile_and_serve_recovers_once_descriptors_free_up";
    if role().as_deref() != Some("emfile") {
        run_child(child(TEST, "emfile"), "emfile");
        return;
    }

    const CLIENTS: usize = 6;
    runtime().block_on(async {
        let path = temp_path("emfile");
        let mut listener = IpcListener::bind(&path).unwrap();
        let mut clients = Vec::new();
        for _ in 0..CLIENTS {
            clients.push(IpcStream::connect(&path, liveness()).await.unwrap());
        }
        // Room for a couple more descriptors to free later, then a full table.
        let mut spare: Vec<std::fs::File> = (0..2)
            .map(|_| std::fs::File::open("/dev/null").unwrap())
            .collect();
        let fillers = fill_descriptor_table();

        let err = conn_test_support::at_once(listener.accept(Deadline::NOW))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ProcessFdLimit);
        assert_eq!(
            err.to_string(),
            format!(
                "accept on ipc://{}: process fd limit reached (EMFILE)",
                path.display()
            )
        );

        let echo = tower::service_fn(|line: String| async move { Ok::<_, conn_core::Error>(line) });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(
            serve(listener, lines(echo))
                .with_graceful_shutdown(
                    async {
                        stopped.await.ok();
                    },
                    Duration::from_secs(30),
                )
                .into_future(),
        );
        // On this current-thread runtime the spawned loop runs (and meets
        // EMFILE on its first accept) before this task is polled again.
        tokio::task::yield_now().await;
        spare.clear(); // two descriptors free up

        let served = clients
            .into_iter()
            .enumerate()
            .map(|(i, mut c)| async move {
                c.write_all(format!("hello {i}\n").as_bytes())
                    .await
                    .unwrap();
                c.done(liveness()).await.unwrap();
                let mut answer = String::new();
                c.read_to_string(&mut answer).await.unwrap();
                assert_eq!(answer, format!("hello {i}\n"));
                c.close(liveness()).await.unwrap();
            });
        liveness()
            .run(futures_join_all(served))
            .await
            .expect("every client served");

        stop.send(()).unwrap();
        let report = server.await.unwrap().unwrap();
        assert_eq!(report.accepted, CLIENTS as u64, "{report}");
        assert_eq!(report.closed, CLIENTS as u64, "{report}");
        assert!(report.fd_limit_episodes >= 1, "{report}");
        assert!(report.errors.is_empty(), "{report}");
        drop(fillers);
    });
    child_done("emfile");
}

/// Runs futures concurrently on this task (no spawning, no new descriptors).
async fn futures_join_all<F: std::future::Future<Output = ()>>(futs: impl Iterator<Item = F>) {
    let mut set = Vec::new();
    for f in futs {
        set.push(Box::pin(f));
    }
    std::future::poll_fn(|cx| {
        set.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if set.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await
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
