//! A real sessiond process per test: unique socket, stdout read until it
//! listens, SIGTERMed (then killed) when the guard drops.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// A unique path in /tmp for this test process.
pub fn unique(what: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    PathBuf::from(format!(
        "/tmp/sessiond-test-{}-{}-{what}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A running sessiond.
pub struct Sessiond {
    pub child: Option<Child>,
    pub socket: PathBuf,
    /// Its TCP address, when it listens for peers.
    pub tcp: Option<String>,
    stdout: Option<BufReader<ChildStdout>>,
    stderr_path: PathBuf,
}

impl Sessiond {
    /// Starts one with these extra arguments.
    pub fn start(args: &[&str]) -> Sessiond {
        Sessiond::start_with(Command::new(env!("CARGO_BIN_EXE_sessiond")), args)
    }

    /// Starts sessiond with `listener` passed by socket activation
    /// (descriptor 3, `LISTEN_FDS=1`, `LISTEN_PID` its own pid, as systemd
    /// passes it), so the test holds the port from before the daemon's
    /// config is written until the end: never bound, released and bound
    /// again.
    pub fn start_activated(listener: &std::net::TcpListener, args: &[&str]) -> Sessiond {
        use std::os::fd::AsRawFd;
        let mut command = Command::new("sh");
        // The shell's pid is the daemon's: it execs sessiond.
        command.args([
            "-c",
            r#"LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@""#,
            env!("CARGO_BIN_EXE_sessiond"),
        ]);
        conn_test_support::pass_as_fd_3(&mut command, listener.as_raw_fd());
        Sessiond::start_with(command, args)
    }

    /// Starts `command` (sessiond, perhaps behind `ip netns exec`, which
    /// execs it: the child is the daemon) with these extra arguments.
    pub fn start_with(mut command: Command, args: &[&str]) -> Sessiond {
        let socket = unique("sock");
        let stderr_path = unique("stderr");
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let mut child = command
            .arg("--socket")
            .arg(&socket)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start sessiond");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut tcp = None;
        let listens_tcp = args.contains(&"--listen");
        loop {
            let mut line = String::new();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "sessiond ended before listening: {}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
            if let Some(addr) = line.trim().strip_prefix("sessiond listening on tcp:") {
                tcp = Some(addr.to_owned());
            }
            if line.starts_with("sessiond listening on ipc:") && !listens_tcp || tcp.is_some() {
                break;
            }
        }
        Sessiond {
            child: Some(child),
            socket,
            tcp,
            stdout: Some(stdout),
            stderr_path,
        }
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// SIGTERM; its exit status and the rest of its stdout.
    pub fn terminate(&mut self) -> (std::process::ExitStatus, String) {
        let mut child = self.child.take().expect("running");
        // SAFETY: kill reads only its integer arguments.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait().unwrap();
        let mut rest = String::new();
        if let Some(mut out) = self.stdout.take() {
            out.read_to_string(&mut rest).unwrap();
        }
        (status, rest)
    }

    /// SIGKILL, no goodbye: its address goes dead.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for Sessiond {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.terminate();
        }
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_file(&self.stderr_path);
    }
}

/// `sessionctl --server <socket> args...`, optionally as another user.
pub fn sessionctl(
    socket: &std::path::Path,
    uid: Option<u32>,
    args: &[&str],
) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sessionctl"));
    cmd.arg("--server").arg(socket).args(args);
    if let Some(uid) = uid {
        use std::os::unix::process::CommandExt;
        cmd.uid(uid).gid(uid);
    }
    cmd.output().expect("run sessionctl")
}

/// True when this test runs as root; says loudly why it skips otherwise.
pub fn root_or_skip(what: &str) -> bool {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        true
    } else {
        conn_test_support::skip(what, "needs root (to run processes as another user)");
        false
    }
}
