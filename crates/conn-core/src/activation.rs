//! systemd socket activation: the listening sockets a service manager
//! passed to this process (`sd_listen_fds(3)`).
//!
//! The protocol: the manager opens the sockets, sets `LISTEN_PID` to the
//! service's process id and `LISTEN_FDS` to their number, and `exec`s the
//! service with them as descriptors 3, 4, ... (`SD_LISTEN_FDS_START`).
//! `LISTEN_PID` makes a child that inherits the environment ignore them.
//!
//! Transports adopt what this returns, e.g. `conn_ipc::IpcListener::from_fd`
//! (which checks the descriptor is a listening Unix-domain stream socket).
//!
//! `LISTEN_FDNAMES` names them (`FileDescriptorName=` in the socket unit),
//! read by [`listen_fds_with_names`] as `sd_listen_fds_with_names(3)` does.
//!
//! ```
//! // Not started by a service manager: nothing was passed.
//! let fds = conn_core::activation::listen_fds()?;
//! assert!(fds.is_empty());
//! assert!(conn_core::activation::listen_fds_with_names()?.is_empty());
//! # Ok::<(), conn_core::Error>(())
//! ```

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::{Error, ErrorKind, Result};

/// The first descriptor passed by socket activation (`SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: RawFd = 3;

/// The name `sd_listen_fds_with_names(3)` gives a descriptor when
/// `LISTEN_FDNAMES` is unset.
pub const UNKNOWN_NAME: &str = "unknown";

/// A listening descriptor passed to this process, with its name: from
/// systemd ([`listen_fds_with_names`]) or from a predecessor in a handover
/// (`crate::handover`), where the name is the listener's endpoint.
#[derive(Debug)]
pub struct NamedFd {
    /// The name: `LISTEN_FDNAMES`' entry, or the endpoint it was offered as.
    pub name: String,
    /// The descriptor, owned here.
    pub fd: OwnedFd,
}

/// Set once the passed descriptors have been taken, so they are owned once.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Takes the descriptors passed to this process by socket activation, as
/// `sd_listen_fds(0)` counts them, and marks each close-on-exec.
///
/// Returns an empty list when the process was not socket-activated
/// (`LISTEN_PID` unset or naming another process, `LISTEN_FDS` unset), and
/// on every call after the first that found descriptors: they are owned
/// once. `InvalidType` when the variables are malformed, `BadHandle` when
/// a descriptor they announce is not open.
///
/// This leaves the environment as it is; `LISTEN_PID` already keeps child
/// processes from taking the descriptors. To unset the variables as
/// `sd_listen_fds(1)` does, use [`listen_fds_unset_env`].
///
/// Call it before anything else in the process wraps descriptors 3, 4, ...:
/// from here on the returned [`OwnedFd`]s own them.
pub fn listen_fds() -> Result<Vec<OwnedFd>> {
    Ok(listen_fds_with_names()?
        .into_iter()
        .map(|named| named.fd)
        .collect())
}

/// [`listen_fds`] with each descriptor's name from `LISTEN_FDNAMES`
/// (colon-separated, in descriptor order), or [`UNKNOWN_NAME`] for each
/// when the variable is unset, as `sd_listen_fds_with_names(3)` has it.
/// `InvalidType` when the variable names a different number of
/// descriptors than `LISTEN_FDS` announces (and nothing is taken).
pub fn listen_fds_with_names() -> Result<Vec<NamedFd>> {
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    let count = count(pid.as_deref(), fds.as_deref(), std::process::id())?;
    let names = names(std::env::var("LISTEN_FDNAMES").ok().as_deref(), count)?;
    if count == 0 || TAKEN.swap(true, Ordering::SeqCst) {
        return Ok(Vec::new());
    }
    let mut taken = Vec::with_capacity(count);
    for (fd, name) in (LISTEN_FDS_START..).zip(names) {
        // SAFETY: F_GETFD and F_SETFD only read and set the descriptor's
        // flags; on a number that is not open they fail with EBADF.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        // SAFETY: as above; F_SETFD changes only this descriptor's flags.
        if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0 {
            return Err(Error::from(std::io::Error::last_os_error())
                .during("socket activation")
                .on(format_args!("fd {fd}"))
                .detail("LISTEN_FDS announces a descriptor that is not open"));
        }
        // SAFETY: the service manager passed descriptors 3..3+LISTEN_FDS to
        // this process to own (LISTEN_PID names us), the fcntl above proved
        // this one open, and `TAKEN` makes sure this loop runs at most once
        // per process, so no other `OwnedFd` takes it through this module.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        taken.push(NamedFd { name, fd });
    }
    Ok(taken)
}

/// [`listen_fds`], then unsets `LISTEN_PID`, `LISTEN_FDS` and
/// `LISTEN_FDNAMES` as `sd_listen_fds(1)` does, so nothing later in this
/// process or its children sees them.
///
/// # Safety
///
/// Unsetting environment variables is unsafe for the reasons
/// [`std::env::remove_var`] gives: no other thread may read or write the
/// environment at the same time (call it early in `main`, before starting
/// threads or a multi-thread runtime).
pub unsafe fn listen_fds_unset_env() -> Result<Vec<OwnedFd>> {
    // SAFETY: passed on from the caller.
    let taken = unsafe { listen_fds_with_names_unset_env() };
    taken.map(|named| named.into_iter().map(|n| n.fd).collect())
}

/// [`listen_fds_with_names`], then unsets the variables as
/// [`listen_fds_unset_env`] does.
///
/// # Safety
///
/// As for [`listen_fds_unset_env`]: no other thread may read or write the
/// environment at the same time.
pub unsafe fn listen_fds_with_names_unset_env() -> Result<Vec<NamedFd>> {
    let taken = listen_fds_with_names();
    for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        // SAFETY: the caller guarantees no other thread touches the
        // environment now.
        unsafe { std::env::remove_var(var) };
    }
    taken
}

/// How many descriptors the variables announce for process `me`.
fn count(listen_pid: Option<&str>, listen_fds: Option<&str>, me: u32) -> Result<usize> {
    let malformed = |var: &str, value: &str| {
        Error::new(ErrorKind::InvalidType)
            .during("socket activation")
            .on(format_args!("{var}={value:?}"))
            .detail("expected a decimal number")
    };
    let Some(pid) = listen_pid else {
        return Ok(0);
    };
    let pid: u32 = pid.parse().map_err(|_| malformed("LISTEN_PID", pid))?;
    if pid != me {
        return Ok(0);
    }
    let Some(fds) = listen_fds else {
        return Ok(0);
    };
    let n: usize = fds.parse().map_err(|_| malformed("LISTEN_FDS", fds))?;
    if n > (RawFd::MAX - LISTEN_FDS_START) as usize {
        return Err(malformed("LISTEN_FDS", fds));
    }
    Ok(n)
}

/// The names `LISTEN_FDNAMES` gives `count` descriptors.
fn names(listen_fdnames: Option<&str>, count: usize) -> Result<Vec<String>> {
    let Some(names) = listen_fdnames else {
        return Ok(vec![UNKNOWN_NAME.to_owned(); count]);
    };
    let names: Vec<String> = if names.is_empty() {
        Vec::new()
    } else {
        names.split(':').map(str::to_owned).collect()
    };
    if names.len() != count {
        return Err(Error::new(ErrorKind::InvalidType)
            .during("socket activation")
            .on(format_args!("LISTEN_FDNAMES={listen_fdnames:?}"))
            .detail(format!(
                "{} names for the {count} descriptors LISTEN_FDS announces",
                names.len()
            )));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_activated_when_listen_pid_is_unset_or_names_another_process() {
        assert_eq!(count(None, Some("2"), 42).unwrap(), 0);
        assert_eq!(count(Some("41"), Some("2"), 42).unwrap(), 0);
        assert_eq!(count(Some("42"), None, 42).unwrap(), 0);
    }

    #[test]
    fn counts_the_descriptors_meant_for_this_process() {
        assert_eq!(count(Some("42"), Some("3"), 42).unwrap(), 3);
        assert_eq!(count(Some("42"), Some("0"), 42).unwrap(), 0);
    }

    #[test]
    fn malformed_variables_are_invalid_and_named() {
        let err = count(Some("x"), Some("1"), 42).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidType);
        assert!(err.to_string().contains("LISTEN_PID=\"x\""), "{err}");
        let err = count(Some("42"), Some("-1"), 42).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidType);
        assert!(err.to_string().contains("LISTEN_FDS"), "{err}");
    }

    #[test]
    fn names_come_from_listen_fdnames_in_order_or_are_unknown() {
        assert_eq!(names(Some("web:admin"), 2).unwrap(), ["web", "admin"]);
        assert_eq!(names(None, 2).unwrap(), ["unknown", "unknown"]);
        assert!(names(Some(""), 0).unwrap().is_empty());
        let err = names(Some("web"), 2).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidType);
        assert!(err.to_string().contains("1 names for the 2"), "{err}");
    }
}
