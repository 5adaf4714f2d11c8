//! Helpers shared by the integration tests: sessions on each backend,
//! shell commands, and liveness waits with generous deadlines.
#![allow(dead_code)]

#[cfg(feature = "daemon")]
pub mod sessiond;

use std::time::Duration;

use conn_core::ErrorKind;
use signal_session::{BackendChoice, Session};
use tokio::process::Command;

/// Liveness only: how long a condition may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A session on the cgroup v2 backend that kills what is left when
/// dropped, or `None` (said loudly) when cgroup v2 is not writable here.
pub fn cgroup_session() -> Option<Session> {
    match Session::builder()
        .backend(BackendChoice::CgroupV2)
        .kill_on_drop(true)
        .create()
    {
        Ok(s) => Some(s),
        Err(e) if e.kind() == ErrorKind::NotSupported => {
            conn_test_support::skip("a cgroup v2 backend test", e);
            None
        }
        Err(e) => panic!("creating a cgroup session: {e}"),
    }
}

/// A session on the pidfd backend that kills what is left when dropped.
pub fn pidfd_session() -> Session {
    Session::builder()
        .backend(BackendChoice::Pidfd)
        .kill_on_drop(true)
        .create()
        .expect("a pidfd session")
}

/// Process tests in one binary run one at a time. The pid-1 test's session
/// holds init and so every process on the machine, the other tests'
/// included, and the child subreaper is process-wide: tests sharing the
/// process would see each other's processes. (Run in parallel 30 times
/// they passed; the lock is for clarity of what each test observes.)
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

/// One session per backend available here.
pub fn sessions() -> Vec<Session> {
    cgroup_session()
        .into_iter()
        .chain([pidfd_session()])
        .collect()
}

/// `sh -c script`, killed when its `Child` is dropped.
pub fn sh(script: &str) -> Command {
    let mut c = Command::new("sh");
    c.args(["-c", script]).kill_on_drop(true);
    c
}

/// Waits until `cond` holds, failing the test after [`PATIENCE`].
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// True while `pid` runs (a zombie counts as gone).
pub fn alive(pid: u32) -> bool {
    conn_test_support::proc::alive(pid)
}

/// The parent of `pid`.
pub fn ppid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..]
        .split_ascii_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `sleep 100`, killed when its `Child` is dropped.
pub fn sleep() -> Command {
    let mut c = Command::new("sleep");
    c.arg("100").kill_on_drop(true);
    c
}

/// The children of `pid` now, from `/proc`.
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| ppid(p) == Some(pid))
        .collect()
}

/// A kernel thread's pid (`PF_KTHREAD` in /proc/PID/stat), if this
/// machine shows one.
pub fn a_kernel_thread() -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.find_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let flags: u32 = stat[stat.rfind(')')? + 2..]
            .split_ascii_whitespace()
            .nth(6)?
            .parse()
            .ok()?;
        (pid > 1 && flags & 0x0020_0000 != 0).then_some(pid)
    })
}
