//! Process file descriptors: signal a process, never a recycled pid.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::Signal;

/// A pidfd: a handle on one process that stays bound to it after it exits,
/// so signalling through it can never hit another process that reused the
/// pid.
#[derive(Debug)]
pub(crate) struct PidFd {
    fd: OwnedFd,
    pid: u32,
}

/// What a signal through a pidfd did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sent {
    /// Delivered (or, for signal 0, permitted).
    Delivered,
    /// The process has exited.
    Gone,
    /// The caller may not signal it.
    Denied,
}

impl PidFd {
    /// Opens a pidfd for `pid`; `ESRCH` when no such process exists.
    pub(crate) fn open(pid: u32) -> io::Result<PidFd> {
        let raw_pid =
            libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
        // SAFETY: pidfd_open takes a pid and flags (none: a pidfd is always
        // close-on-exec) and returns a new descriptor or -1; it touches no
        // memory of ours.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, raw_pid, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just returned this descriptor to us and nothing
        // else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        Ok(PidFd { fd, pid })
    }

    /// The pid the process had when the pidfd was opened.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends `sig` (0 checks permission and liveness only).
    pub(crate) fn send(&self, sig: Signal) -> io::Result<Sent> {
        // SAFETY: pidfd_send_signal reads only its integer arguments; a null
        // siginfo asks the kernel to fill in the kill(2)-style one.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                sig.raw(),
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if rc == 0 {
            return Ok(Sent::Delivered);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ESRCH) => Ok(Sent::Gone),
            Some(libc::EPERM) => Ok(Sent::Denied),
            _ => Err(err),
        }
    }

    /// True once the process has exited (a zombie counts as exited): the
    /// pidfd polls readable then.
    pub(crate) fn has_exited(&self) -> bool {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `pfd` is one valid pollfd that outlives the call; a zero
        // timeout never blocks.
        let rc = unsafe { libc::poll(&mut pfd, 1, 0) };
        rc > 0 && pfd.revents & (libc::POLLIN | libc::POLLHUP) != 0
    }

    /// Reaps the process if it is an exited child of ours; does nothing for
    /// a live process or someone else's child.
    pub(crate) fn try_reap(&self) {
        // SAFETY: an all-zero siginfo_t is a valid value of the plain C struct.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid, writable siginfo_t for the call's
        // duration; WNOHANG keeps waitid from blocking. ECHILD (not our
        // child) is the expected failure and is ignored.
        unsafe {
            libc::waitid(
                libc::P_PIDFD,
                self.fd.as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG,
            )
        };
    }
}

/// Makes this process the reaper of its orphaned descendants
/// (`PR_SET_CHILD_SUBREAPER`), so a member that double-forks stays below us
/// instead of escaping to init. Idempotent.
pub(crate) fn become_subreaper() -> io::Result<()> {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER reads only its integer
    // arguments.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pidfd_reports_an_exited_child_as_gone_after_reaping() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let fd = PidFd::open(child.id()).unwrap();
        child.wait().unwrap();
        assert!(fd.has_exited());
        assert_eq!(fd.send(Signal::NULL).unwrap(), Sent::Gone);
    }

    #[test]
    fn opening_a_pid_that_does_not_exist_is_esrch() {
        // pid_max is at most 2^22, so this pid never exists.
        let err = PidFd::open(1 << 23).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ESRCH));
    }
}
