//! Processes no session may take in or signal, whoever asks, root
//! included: pid 0 (which `cgroup.procs` reads as "the writer"), init,
//! kernel threads, a thread id standing for its process, the process
//! holding the sessions (sessiond) and its ancestors.
//!
//! The kernel lets root do all of this; sessiond must not, since one
//! `adopt SESSION 0` would then move sessiond into the session and its
//! descendant walk would take init and kthreadd, and the next kill would
//! end the machine.

use conn_core::{Error, ErrorKind};

use crate::sys::procfs;

/// Why a process may not join a session or be signalled through one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protected {
    /// Pid 0: no process; written to `cgroup.procs` it means the writer.
    NotAProcess,
    /// Pid 1, init: the machine ends with it.
    Init,
    /// A kernel thread (`PF_KTHREAD`), kthreadd included.
    KernelThread,
    /// The id of a thread of process `tgid`, not of a process.
    Thread {
        /// The process the thread belongs to.
        tgid: u32,
    },
    /// The process holding the sessions (sessiond itself).
    Holder,
    /// An ancestor of the process holding the sessions.
    Ancestor,
}

impl Protected {
    /// The error for `pid` (a descendant of `parent`, when given):
    /// `InvalidType` (EINVAL) when `pid` names no process,
    /// `PermissionDenied` (EPERM) otherwise.
    pub(crate) fn error(self, pid: u32, parent: Option<u32>) -> Error {
        let kind = match self {
            Protected::NotAProcess | Protected::Thread { .. } => ErrorKind::InvalidType,
            _ => ErrorKind::PermissionDenied,
        };
        let whose = match parent {
            Some(p) => format!(", a descendant of pid {p},"),
            None => String::new(),
        };
        Error::new(kind).detail(format!(
            "pid {pid}{whose} {}; nothing was moved",
            self.reason()
        ))
    }

    fn reason(self) -> String {
        match self {
            Protected::NotAProcess => "is no process (written to cgroup.procs, 0 means the \
                                       writer: sessiond itself)"
                .into(),
            Protected::Init => "is init; no session may hold or signal it".into(),
            Protected::KernelThread => {
                "is a kernel thread; no session may hold or signal it".into()
            }
            Protected::Thread { tgid } => {
                format!("is a thread of process {tgid}, not a process; name the process")
            }
            Protected::Holder => "is the process holding the sessions (sessiond itself); \
                                  no session may hold or signal it"
                .into(),
            Protected::Ancestor => "is an ancestor of the process holding the sessions \
                                    (sessiond); no session may hold or signal it"
                .into(),
        }
    }
}

/// The ancestors of this process now, parent first, up to (and with) the
/// root of its pid namespace. Read each time: an ancestor that exits
/// hands its children to another, which is then the ancestor.
pub(crate) fn ancestors() -> Vec<u32> {
    let mut found = Vec::new();
    let mut pid = std::process::id();
    // The bound only guards against a /proc that lies in a loop.
    for _ in 0..4096 {
        match procfs::stat(pid) {
            Some(s) if s.ppid != 0 => {
                found.push(s.ppid);
                pid = s.ppid;
            }
            _ => break,
        }
    }
    found
}

/// Why `pid` is protected, given this process's `ancestors`; `None` when
/// it is not, or is gone (the caller's own lookup reports that).
pub(crate) fn check_with(pid: u32, ancestors: &[u32]) -> Option<Protected> {
    match pid {
        0 => return Some(Protected::NotAProcess),
        1 => return Some(Protected::Init),
        _ => {}
    }
    if pid == std::process::id() {
        return Some(Protected::Holder);
    }
    if ancestors.contains(&pid) {
        return Some(Protected::Ancestor);
    }
    let stat = procfs::stat(pid)?;
    if stat.is_kernel_thread() {
        return Some(Protected::KernelThread);
    }
    match procfs::tgid(pid) {
        Some(tgid) if tgid != pid => Some(Protected::Thread { tgid }),
        _ => None,
    }
}

/// [`check_with`] for one pid.
#[cfg(test)]
pub(crate) fn check(pid: u32) -> Option<Protected> {
    check_with(pid, &ancestors())
}

/// `PermissionDenied`, naming the first protected member, when `pids`
/// holds one; the kill path refuses the whole signal then, since a
/// session holding such a process may hold the whole machine.
pub(crate) fn refuse_any(pids: &[u32]) -> conn_core::Result<()> {
    let ancestors = ancestors();
    for &pid in pids {
        if let Some(why) = check_with(pid, &ancestors) {
            return Err(Error::new(ErrorKind::PermissionDenied).detail(format!(
                "the session holds pid {pid}, which {}; nothing was sent",
                why.reason()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_0_init_this_process_and_its_parent_are_protected() {
        assert_eq!(check(0), Some(Protected::NotAProcess));
        assert_eq!(check(1), Some(Protected::Init));
        assert_eq!(check(std::process::id()), Some(Protected::Holder));
        let parent = std::os::unix::process::parent_id();
        if parent > 1 {
            assert_eq!(check(parent), Some(Protected::Ancestor));
        }
    }

    #[test]
    fn a_kernel_thread_is_protected() {
        let kthread = procfs::all()
            .into_iter()
            .find(|s| s.is_kernel_thread() && s.pid > 1);
        match kthread {
            Some(s) => assert_eq!(check(s.pid), Some(Protected::KernelThread)),
            None => conn_test_support::skip(
                "a_kernel_thread_is_protected",
                "no kernel thread is visible here (a pid namespace?)",
            ),
        }
    }

    #[test]
    fn a_child_is_not_protected_and_a_thread_id_is() {
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .unwrap();
        assert_eq!(check(child.id()), None);
        child.kill().unwrap();
        child.wait().unwrap();

        let why = crate::sys::procfs::tests::with_a_thread(check);
        // A thread of this process: the holder's own thread.
        assert_eq!(
            why,
            Some(Protected::Thread {
                tgid: std::process::id()
            })
        );
    }

    #[test]
    fn the_errors_name_the_pid_and_the_reason() {
        let e = Protected::NotAProcess.error(0, None);
        assert_eq!(e.kind(), ErrorKind::InvalidType);
        assert!(e.to_string().contains("pid 0 is no process"), "{e}");
        let e = Protected::KernelThread.error(2, None);
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert!(e.to_string().contains("pid 2 is a kernel thread"), "{e}");
        let e = Protected::Holder.error(7, Some(5));
        assert!(
            e.to_string()
                .contains("pid 7, a descendant of pid 5, is the process holding"),
            "{e}"
        );
        assert!(refuse_any(&[1]).unwrap_err().to_string().contains("pid 1"));
    }
}
