//! Who asks for a signal, and the rule for whom they may signal.

use serde::Deserialize;

use crate::sys::procfs;

/// Which uids of a receiving process a caller's uids must match.
///
/// sessiond runs as root and could signal anyone, so the rule it applies
/// is the only thing that keeps a client from signalling what it could
/// not itself. The default is the kernel's own rule for `kill(2)`, so
/// sessiond is never wider than the kernel.
///
/// In sessiond's configuration: `permission = "kernel"` (the default) or
/// `permission = "array-services"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// Linux's `kill(2)`: the caller's real or effective uid must equal
    /// the receiver's real or saved set-user-ID (not its effective uid).
    #[default]
    Kernel,
    /// SGI Array Services' `askillash(3x)`: as [`Rule::Kernel`], and the
    /// receiver's effective uid matches too. Written for a kernel whose own
    /// check still applied; through a root daemon it lets a caller signal
    /// a process that `kill(2)` would refuse it (one that switched only its
    /// effective uid to the caller's), so it is only on when configured.
    ArrayServices,
}

/// The user ids of a process asking for a signal (a `sessiond` client, or
/// a peer daemon speaking for one).
///
/// The rule ([`Rule`], by default the kernel's): the caller's real or
/// effective uid must match the real or saved uid of the receiving
/// process, unless the caller's effective uid is root's (privileged, as a
/// `CAP_KILL` sender is to the kernel).
///
/// # Examples
///
/// ```
/// use signal_session::{Caller, Rule};
///
/// let nobody = Caller { ruid: 65534, euid: 65534 };
/// assert!(nobody.may_signal_uids([65534, 0, 0]));   // real uid matches
/// assert!(nobody.may_signal_uids([0, 0, 65534]));   // saved uid matches
/// assert!(!nobody.may_signal_uids([0, 65534, 0]));  // effective only: kill(2) says EPERM
/// assert!(nobody.may_signal_uids_under(Rule::ArrayServices, [0, 65534, 0]));
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

    /// The kernel's rule ([`Rule::Kernel`]), for a process whose
    /// `[real, effective, saved]` uids are given.
    pub fn may_signal_uids(&self, target: [u32; 3]) -> bool {
        self.may_signal_uids_under(Rule::Kernel, target)
    }

    /// `rule`, for a process whose `[real, effective, saved]` uids are
    /// given.
    pub fn may_signal_uids_under(&self, rule: Rule, target: [u32; 3]) -> bool {
        let [real, effective, saved] = target;
        let matches = |uid: u32| uid == self.ruid || uid == self.euid;
        self.is_root()
            || matches(real)
            || matches(saved)
            || (rule == Rule::ArrayServices && matches(effective))
    }

    /// The kernel's rule, for process `pid` now; `None` when it is gone.
    pub fn may_signal(&self, pid: u32) -> Option<bool> {
        self.may_signal_under(Rule::Kernel, pid)
    }

    /// `rule`, for process `pid` now; `None` when it is gone.
    pub fn may_signal_under(&self, rule: Rule, pid: u32) -> Option<bool> {
        if self.is_root() {
            return Some(true);
        }
        procfs::uids(pid).map(|uids| self.may_signal_uids_under(rule, uids))
    }
}

/// A caller together with the rule applied to it: what the kill and adopt
/// paths check each process against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Permit {
    pub(crate) caller: Caller,
    pub(crate) rule: Rule,
}

impl Permit {
    /// The rule for process `pid` now; `None` when it is gone.
    pub(crate) fn allows(&self, pid: u32) -> Option<bool> {
        self.caller.may_signal_under(self.rule, pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_rule_ignores_the_receivers_effective_uid() {
        let nobody = Caller {
            ruid: 65534,
            euid: 65534,
        };
        // real 0, effective nobody, saved 0: kill(2) refuses nobody.
        assert!(!nobody.may_signal_uids_under(Rule::Kernel, [0, 65534, 0]));
        assert!(nobody.may_signal_uids_under(Rule::ArrayServices, [0, 65534, 0]));
        // A caller's effective uid against the receiver's real uid counts.
        let setuid = Caller {
            ruid: 1000,
            euid: 65534,
        };
        assert!(setuid.may_signal_uids_under(Rule::Kernel, [65534, 0, 0]));
    }

    #[test]
    fn rules_parse_by_their_config_names() {
        #[derive(Deserialize)]
        struct T {
            permission: Rule,
        }
        let t: T = toml::from_str(r#"permission = "array-services""#).unwrap();
        assert_eq!(t.permission, Rule::ArrayServices);
        let t: T = toml::from_str(r#"permission = "kernel""#).unwrap();
        assert_eq!(t.permission, Rule::Kernel);
        assert!(toml::from_str::<T>(r#"permission = "lax""#).is_err());
    }
}
