//! Reading process ancestry and session ids from `/proc`.

use std::fs;

/// What `/proc/<pid>/stat` says about one process's place in the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stat {
    pub(crate) pid: u32,
    pub(crate) ppid: u32,
    /// The POSIX session id (`setsid`).
    pub(crate) sid: u32,
    /// The kernel's `PF_*` flags for the task (field 9 of the line).
    pub(crate) flags: u32,
}

/// The `PF_KTHREAD` flag of `/proc/<pid>/stat`: the task is a kernel
/// thread, which no session may take or signal.
pub(crate) const PF_KTHREAD: u32 = 0x0020_0000;

impl Stat {
    /// True for a kernel thread (kthreadd and everything it starts).
    pub(crate) fn is_kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }
}

/// Reads `/proc/<pid>/stat`; `None` when the process is gone.
pub(crate) fn stat(pid: u32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(pid, &text)
}

/// Parses a stat line; the command name in parentheses may itself hold
/// spaces and parentheses, so fields are counted from the last `)`.
fn parse_stat(pid: u32, text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let _state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    let _pgrp = fields.next()?;
    let sid = fields.next()?.parse().ok()?;
    let _tty_nr = fields.next()?;
    let _tpgid = fields.next()?;
    let flags = fields.next()?.parse().ok()?;
    Some(Stat {
        pid,
        ppid,
        sid,
        flags,
    })
}

/// The `[real, effective, saved]` user ids of `pid` (the `Uid:` line of
/// `/proc/<pid>/status`); `None` when the process is gone.
pub(crate) fn uids(pid: u32) -> Option<[u32; 3]> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_uids(&text)
}

/// The thread group (process) that task `pid` belongs to (the `Tgid:`
/// line of `/proc/<pid>/status`): `pid` itself for a process, another
/// number for one of its threads, whose id `/proc` also answers to.
pub(crate) fn tgid(pid: u32) -> Option<u32> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_tgid(&text)
}

fn parse_tgid(status: &str) -> Option<u32> {
    let line = status.lines().find_map(|l| l.strip_prefix("Tgid:"))?;
    line.trim().parse().ok()
}

fn parse_uids(status: &str) -> Option<[u32; 3]> {
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    let mut ids = line.split_ascii_whitespace().map(|f| f.parse::<u32>().ok());
    Some([ids.next()??, ids.next()??, ids.next()??])
}

/// The cgroup v2 path of `pid` (the `0::` line of `/proc/<pid>/cgroup`).
pub(crate) fn cgroup_v2(pid: u32) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_owned)
}

/// Every process visible in `/proc` now.
pub(crate) fn all() -> Vec<Stat> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(stat)
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn a_command_name_with_parentheses_and_spaces_parses() {
        let line = "42 (a) b (c)) S 7 42 9 0 -1 4194560 0 0";
        assert_eq!(
            parse_stat(42, line),
            Some(Stat {
                pid: 42,
                ppid: 7,
                sid: 9,
                flags: 4194560
            })
        );
    }

    #[test]
    fn kthreadd_is_a_kernel_thread_and_this_process_is_not() {
        // In a pid namespace of its own pid 2 may be anyone; kthreadd is
        // known by its name.
        if fs::read_to_string("/proc/2/comm").is_ok_and(|c| c.trim() == "kthreadd") {
            assert!(stat(2).unwrap().is_kernel_thread());
        }
        assert!(!stat(std::process::id()).unwrap().is_kernel_thread());
    }

    #[test]
    fn a_thread_id_names_its_process_as_tgid() {
        let me = std::process::id();
        assert_eq!(tgid(me), Some(me));
        assert_eq!(with_a_thread(tgid), Some(me));
        assert_eq!(parse_tgid("Name:\tx\nTgid:\t77\n"), Some(77));
    }

    #[test]
    fn the_uid_line_gives_real_effective_and_saved() {
        let status = "Name:\tsleep\nUid:\t1000\t0\t65534\t0\nGid:\t0\t0\t0\t0\n";
        assert_eq!(parse_uids(status), Some([1000, 0, 65534]));
        assert_eq!(parse_uids("Name:\tx\n"), None);
    }

    #[test]
    fn this_process_is_found_with_its_parent() {
        let me = stat(std::process::id()).unwrap();
        assert_eq!(me.ppid, std::os::unix::process::parent_id());
    }

    /// Runs `f` with the id of a thread of this process, alive until `f`
    /// returns.
    pub(crate) fn with_a_thread<R>(f: impl FnOnce(u32) -> R) -> R {
        let (tx, rx) = std::sync::mpsc::channel();
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            // SAFETY: gettid takes no arguments and cannot fail.
            tx.send(unsafe { libc::gettid() } as u32).unwrap();
            let _ = wait.recv();
        });
        let seen = f(rx.recv().unwrap());
        done.send(()).unwrap();
        thread.join().unwrap();
        seen
    }
}
