//! Which mechanism holds a session's processes together.

use std::fmt;
use std::path::PathBuf;

/// How a session keeps track of its processes and their descendants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A cgroup v2 of its own: every fork lands in it, and the kernel
    /// freezes or kills it as one, so atomic signalling works.
    CgroupV2 {
        /// The session's cgroup directory.
        path: PathBuf,
    },
    /// pidfds plus `PR_SET_CHILD_SUBREAPER` on this process; descendants
    /// are found by scanning `/proc`. No atomic mode.
    Pidfd,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::CgroupV2 { path } => write!(f, "cgroup v2 at {}", path.display()),
            Backend::Pidfd => f.write_str("pidfd with child subreaper"),
        }
    }
}

/// Which backend [`SessionBuilder::create`](crate::SessionBuilder::create)
/// should use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BackendChoice {
    /// cgroup v2 where the hierarchy is writable, pidfds otherwise.
    #[default]
    Auto,
    /// cgroup v2 or fail with `NotSupported` saying why not.
    CgroupV2,
    /// pidfds, even where cgroup v2 would work.
    Pidfd,
}
