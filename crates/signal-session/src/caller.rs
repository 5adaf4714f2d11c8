//! Who asks for a signal, and Array Services' rule for whom they may
//! signal.

use crate::sys::procfs;

/// The user ids of a process asking for a signal (a `sessiond` client, or
/// a peer daemon speaking for one).
///
/// The rule is Array Services': the caller's real or effective uid must
/// match the real, saved or effective uid of the receiving process, unless
/// the caller's effective uid is root's. It is the kernel's own rule for
/// `kill(2)`, applied by a daemon that, running as root, could signal
/// anyone.
///
/// # Examples
///
/// ```
/// use signal_session::Caller;
///
/// let nobody = Caller { ruid: 65534, euid: 65534 };
/// assert!(nobody.may_signal_uids([65534, 0, 0]));   // real uid matches
/// assert!(nobody.may_signal_uids([0, 0, 65534]));   // saved uid matches
/// assert!(!nobody.may_signal_uids([0, 0, 0]));
/// assert!(Caller::ROOT.may_signal_uids([1000, 1000, 1000]));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Caller {
    /// The real user id.
    pub ruid: u32,
    /// The effective user id.
    pub euid: u32,
}

impl Caller {
    /// The superuser, who may signal anyone.
    pub const ROOT: Caller = Caller { ruid: 0, euid: 0 };

    /// This process's own ids.
    pub fn current() -> Caller {
        // SAFETY: getuid and geteuid cannot fail and touch no memory.
        let (ruid, euid) = unsafe { (libc::getuid(), libc::geteuid()) };
        Caller { ruid, euid }
    }

    /// The ids of process `pid` (its real uid from `/proc/<pid>/status`,
    /// which `SO_PEERCRED` does not carry), provided its effective uid is
    /// still `euid`; otherwise a caller with both ids `euid`.
    pub fn of_process(pid: u32, euid: u32) -> Caller {
        match procfs::uids(pid) {
            Some([ruid, e, _]) if e == euid => Caller { ruid, euid },
            _ => Caller { ruid: euid, euid },
        }
    }

    /// True when the caller is root.
    pub fn is_root(&self) -> bool {
        self.euid == 0
    }

    /// The rule, for a process whose `[real, effective, saved]` uids are
    /// given.
    pub fn may_signal_uids(&self, target: [u32; 3]) -> bool {
        self.is_root()
            || target
                .iter()
                .any(|&uid| uid == self.ruid || uid == self.euid)
    }

    /// The rule, for process `pid` now; `None` when it is gone.
    pub fn may_signal(&self, pid: u32) -> Option<bool> {
        if self.is_root() {
            return Some(true);
        }
        procfs::uids(pid).map(|uids| self.may_signal_uids(uids))
    }
}
