//! What a process holds, read from `/proc`: resident memory, open
//! descriptors and threads. The daemons' budget tests and the soak driver
//! (`examples/soak`) watch their servers with these.

use std::io;

/// One reading of a process's resources.
///
/// ```
/// let now = conn_test_support::proc::Usage::of(std::process::id()).unwrap();
/// assert!(now.rss_kib > 0 && now.fds >= 3 && now.threads >= 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Resident memory in KiB (`VmRSS` of `/proc/PID/status`).
    pub rss_kib: u64,
    /// Descriptors open (entries of `/proc/PID/fd`).
    pub fds: usize,
    /// Threads (`Threads` of `/proc/PID/status`).
    pub threads: u64,
}

impl Usage {
    /// Reads `pid`'s usage now; an error (naming the pid and the file) when
    /// the process is gone or its files cannot be read.
    pub fn of(pid: u32) -> io::Result<Usage> {
        let path = format!("/proc/{pid}/status");
        let status = std::fs::read_to_string(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("read {path}: {e}")))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("no {name} in {path}"))
                })
        };
        let (rss_kib, threads) = (field("VmRSS:")?, field("Threads:")?);
        let dir = format!("/proc/{pid}/fd");
        let fds = std::fs::read_dir(&dir)
            .map_err(|e| io::Error::new(e.kind(), format!("read {dir}: {e}")))?
            .count();
        Ok(Usage {
            rss_kib,
            fds,
            threads,
        })
    }
}

/// A process's resident memory in KiB (`VmRSS` of /proc/PID/status);
/// panics (naming the pid) when it cannot be read, as a test wants.
///
/// ```
/// assert!(conn_test_support::rss_kib(std::process::id()) > 0);
/// ```
pub fn rss_kib(pid: u32) -> u64 {
    Usage::of(pid)
        .unwrap_or_else(|e| panic!("resident memory of pid {pid}: {e}"))
        .rss_kib
}

/// How many descriptors a process has open; panics (naming the pid) when
/// `/proc/PID/fd` cannot be read.
///
/// ```
/// assert!(conn_test_support::fd_count(std::process::id()) >= 3);
/// ```
pub fn fd_count(pid: u32) -> usize {
    let dir = format!("/proc/{pid}/fd");
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("descriptors of pid {pid}: read {dir}: {e}"))
        .count()
}

/// Polls `pid`'s resident memory until it is at most `kib` or `within`
/// has passed; returns the last reading, for the caller to judge. Memory a
/// daemon hands back may take a moment (a trim is scheduled, not
/// immediate).
///
/// ```
/// use std::time::Duration;
/// let me = std::process::id();
/// let now = conn_test_support::rss_kib(me);
/// assert!(conn_test_support::proc::wait_rss_at_most(me, now + 1024, Duration::from_secs(1)) <= now + 1024);
/// ```
pub fn wait_rss_at_most(pid: u32, kib: u64, within: std::time::Duration) -> u64 {
    let start = std::time::Instant::now();
    loop {
        let rss = rss_kib(pid);
        if rss <= kib || start.elapsed() >= within {
            return rss;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// True while `pid` runs; a zombie (exited, not yet reaped) counts as gone.
///
/// ```
/// assert!(conn_test_support::proc::alive(std::process::id()));
/// ```
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which may hold ')'.
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat.get(i + 2..))
            .and_then(|rest| rest.chars().next())
            .is_some_and(|state| state != 'Z'),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::{Usage, alive};

    #[test]
    fn a_zombie_is_not_alive_and_a_reaped_child_neither() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = std::time::Instant::now();
        while alive(pid) {
            assert!(start.elapsed().as_secs() < 10, "`true` still runs");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(
            std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "a zombie until reaped"
        );
        child.wait().unwrap();
        assert!(!alive(pid));
    }

    #[test]
    fn a_descriptor_opened_shows_in_the_count_and_a_gone_process_is_an_error() {
        let me = std::process::id();
        let before = Usage::of(me).unwrap().fds;
        let file = std::fs::File::open("/proc/self/status").unwrap();
        assert!(Usage::of(me).unwrap().fds > before);
        drop(file);
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let err = Usage::of(pid).unwrap_err();
        assert!(err.to_string().contains(&format!("/proc/{pid}/")), "{err}");
    }
}
