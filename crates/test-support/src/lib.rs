//! Helpers the transports' integration tests share: the [`lifecycle`]
//! conformance suite every transport runs, descriptor identities
//! (to prove a descriptor was released) and child processes that re-run the
//! test binary in a role, with a descriptor passed as fd 3 (to test what
//! another process holding a copy of a connection sees); and, in [`proc`],
//! what a process holds (RSS, descriptors, threads), for the daemons'
//! budget tests and the soak driver (`examples/soak`).
//!
//! Dev-only: no crate depends on it outside its tests and examples.

use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// What `/proc/self/fd/N` points at, e.g. `socket:[12345]`; `None` when the
/// number is not open. A socket's inode is unique while it lives, so a
/// number reused by another test cannot look like ours.
pub fn fd_identity(fd: RawFd) -> Option<String> {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .ok()
        .map(|p| p.display().to_string())
}

/// Asserts the descriptor that had `identity` is no longer open.
pub fn assert_released(fd: RawFd, identity: &str) {
    assert_ne!(
        fd_identity(fd).as_deref(),
        Some(identity),
        "fd {fd} ({identity}) is still open"
    );
}

/// The environment variable that tells a re-run test binary which role to play.
pub const ROLE: &str = "CONNKIT_TEST_ROLE";

/// The role this process plays, when it is a child.
pub fn role() -> Option<String> {
    std::env::var(ROLE).ok()
}

/// The marker a child prints last, so the parent knows the test really ran there.
const DONE: &str = "CONNKIT_CHILD_DONE";

/// Prints the marker [`run_child`] looks for.
pub fn child_done(role: &str) {
    println!("{DONE} {role}");
}

/// This test binary, set to run only `test` in the role `role`.
pub fn child(test: &str, role: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ROLE, role);
    cmd
}

/// Makes `fd` the child's descriptor 3, inherited across `exec`.
pub fn pass_as_fd_3(cmd: &mut Command, fd: RawFd) {
    // SAFETY: the closure runs in the forked child before `exec` and calls
    // only dup2 and fcntl, which are async-signal-safe; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            let ok = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0) // dup2(3, 3) would keep CLOEXEC
            } else {
                libc::dup2(fd, 3)
            };
            if ok < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Runs `cmd`, asserting it succeeded and really ran `role`.
pub fn run_child(mut cmd: Command, role: &str) -> String {
    let out = cmd.output().expect("spawn the child");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains(&format!("{DONE} {role}")),
        "child {role} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    stdout
}

/// The environment variable naming the file where [`skip`] records each
/// skip; `cargo xtask test-all` sets it and counts the lines.
pub const SKIP_LOG: &str = "CONNKIT_SKIP_LOG";

/// Records that `test` could not run here, and why: loudly on stderr, and
/// as a line in the file [`SKIP_LOG`] names, so that test-all counts it
/// (`test-all: N passed, N failed, N skipped`) and lists it. Under
/// `CI=true` a skip is a failure: CI runs as root with network namespaces,
/// cgroup v2 and every package, so nothing has a reason to skip there, and
/// this panics.
///
/// A test calls it and returns:
///
/// ```
/// fn needs_a_tap_device(root: bool) {
///     if !root {
///         conn_test_support::skip("needs_a_tap_device", "it needs root");
///         return;
///     }
///     // ... the test itself
/// }
/// needs_a_tap_device(true);
/// ```
pub fn skip(test: &str, why: impl std::fmt::Display) {
    let line = format!("{test}: {why}");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("SKIPPED under CI=true, which counts as a failure: {line}");
    }
    eprintln!("!!! SKIPPED {line}");
    if let Some(path) = std::env::var_os(SKIP_LOG) {
        use std::io::Write;
        // O_APPEND: test binaries run at once may all record skips.
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| writeln!(f, "{line}"));
        if let Err(e) = appended {
            panic!("cannot record the skip in {}: {e}", path.to_string_lossy());
        }
    }
}

/// A loopback TCP address where a connect is refused for as long as the
/// returned socket lives: bound, never listening. Unlike a port that was
/// bound and released, nobody else can take it in between.
///
/// ```
/// let (_hold, addr) = conn_test_support::refused_tcp_addr();
/// let err = std::net::TcpStream::connect(addr).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
/// ```
pub fn refused_tcp_addr() -> (std::os::fd::OwnedFd, std::net::SocketAddr) {
    use rustix::net::{AddressFamily, SocketType, bind, getsockname, socket};
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None).expect("a TCP socket");
    bind(&fd, &std::net::SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind to loopback");
    let addr = getsockname(&fd).expect("getsockname");
    let addr = std::net::SocketAddr::try_from(addr).expect("an inet address");
    (fd, addr)
}

/// Runs a call made with `Deadline::NOW`, failing the test if it has not
/// returned within a second: `NOW` tries once and never waits, so a
/// regression must fail here rather than hang the suite.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let answer = conn_test_support::at_once(async { 42 }).await;
/// assert_eq!(answer, 42);
/// # }
/// ```
pub async fn at_once<F: std::future::Future>(call: F) -> F::Output {
    match tokio::time::timeout(std::time::Duration::from_secs(1), call).await {
        Ok(out) => out,
        Err(_) => panic!("a call with Deadline::NOW was still waiting after 1 s"),
    }
}

/// A file in the temporary directory holding `contents` with `mode`
/// (e.g. a secret file at 0o600, or one left open at 0o644), removed on
/// drop.
///
/// ```
/// use std::os::unix::fs::PermissionsExt;
/// let f = conn_test_support::TempFile::new("doc-secret", "0123456789abcdef\n", 0o600);
/// let mode = std::fs::metadata(f.path()).unwrap().permissions().mode();
/// assert_eq!(mode & 0o777, 0o600);
/// ```
#[derive(Debug)]
pub struct TempFile(std::path::PathBuf);

impl TempFile {
    /// Writes the file, named after `tag`, this process and a counter.
    pub fn new(tag: &str, contents: impl AsRef<[u8]>, mode: u32) -> TempFile {
        use std::os::unix::fs::PermissionsExt;
        use std::sync::atomic::{AtomicU32, Ordering};
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "{tag}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, contents).expect("write a temporary file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .expect("set a temporary file's mode");
        TempFile(path)
    }

    /// Where it is.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    /// Its path as a string, for a command line.
    pub fn arg(&self) -> &str {
        self.0.to_str().expect("temporary paths are UTF-8")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub mod lifecycle;
pub mod proc;
pub use proc::{fd_count, rss_kib};
