//! The system calls sessions rest on, each behind a small safe wrapper.

pub(crate) mod pidfd;
pub(crate) mod procfs;

pub(crate) use pidfd::{PidFd, Sent};
