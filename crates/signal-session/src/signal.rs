//! Signal numbers, checked.

use std::fmt;

use conn_core::{Error, ErrorKind, Result};

/// A signal number that is valid on this system: 0 (the null signal,
/// which checks and sends nothing) or 1 to `SIGRTMAX`.
///
/// In-process members ([`SessionMember`](crate::SessionMember)) receive
/// these.
///
/// # Examples
///
/// ```
/// use signal_session::Signal;
///
/// let term = Signal::new(libc::SIGTERM).unwrap();
/// assert_eq!(term, Signal::TERM);
/// assert_eq!(term.to_string(), "SIGTERM");
/// assert_eq!(Signal::new(12345).unwrap_err().kind(), conn_core::ErrorKind::InvalidType);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Signal(i32);

impl Signal {
    /// The null signal: checks, sends nothing.
    pub const NULL: Signal = Signal(0);
    /// `SIGHUP`.
    pub const HUP: Signal = Signal(libc::SIGHUP);
    /// `SIGINT`.
    pub const INT: Signal = Signal(libc::SIGINT);
    /// `SIGKILL`: in-process members are killed.
    pub const KILL: Signal = Signal(libc::SIGKILL);
    /// `SIGTERM`: in-process members shut down gracefully.
    pub const TERM: Signal = Signal(libc::SIGTERM);
    /// `SIGUSR1`.
    pub const USR1: Signal = Signal(libc::SIGUSR1);
    /// `SIGSTOP`.
    pub const STOP: Signal = Signal(libc::SIGSTOP);
    /// `SIGCONT`.
    pub const CONT: Signal = Signal(libc::SIGCONT);

    /// Checks `sig`: `InvalidType` unless it is 0 or a signal of this system.
    pub fn new(sig: i32) -> Result<Signal> {
        if (0..=libc::SIGRTMAX()).contains(&sig) {
            Ok(Signal(sig))
        } else {
            Err(Error::new(ErrorKind::InvalidType).detail(format!(
                "{sig} is not a signal number: expected 0 to {}",
                libc::SIGRTMAX()
            )))
        }
    }

    /// The signal's number.
    pub const fn raw(self) -> i32 {
        self.0
    }

    /// True for the null signal.
    pub const fn is_null(self) -> bool {
        self.0 == 0
    }

    /// The symbolic name (`"SIGTERM"`), if the signal has a classic one.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "signal 0",
            libc::SIGHUP => "SIGHUP",
            libc::SIGINT => "SIGINT",
            libc::SIGQUIT => "SIGQUIT",
            libc::SIGILL => "SIGILL",
            libc::SIGTRAP => "SIGTRAP",
            libc::SIGABRT => "SIGABRT",
            libc::SIGBUS => "SIGBUS",
            libc::SIGFPE => "SIGFPE",
            libc::SIGKILL => "SIGKILL",
            libc::SIGUSR1 => "SIGUSR1",
            libc::SIGSEGV => "SIGSEGV",
            libc::SIGUSR2 => "SIGUSR2",
            libc::SIGPIPE => "SIGPIPE",
            libc::SIGALRM => "SIGALRM",
            libc::SIGTERM => "SIGTERM",
            libc::SIGCHLD => "SIGCHLD",
            libc::SIGCONT => "SIGCONT",
            libc::SIGSTOP => "SIGSTOP",
            libc::SIGTSTP => "SIGTSTP",
            libc::SIGTTIN => "SIGTTIN",
            libc::SIGTTOU => "SIGTTOU",
            libc::SIGURG => "SIGURG",
            libc::SIGXCPU => "SIGXCPU",
            libc::SIGXFSZ => "SIGXFSZ",
            libc::SIGVTALRM => "SIGVTALRM",
            libc::SIGPROF => "SIGPROF",
            libc::SIGWINCH => "SIGWINCH",
            libc::SIGIO => "SIGIO",
            libc::SIGPWR => "SIGPWR",
            libc::SIGSYS => "SIGSYS",
            _ => return None,
        })
    }
}

/// `{"number": 15, "name": "SIGTERM"}` (`name` null for a number with
/// none).
impl serde::Serialize for Signal {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Signal", 2)?;
        s.serialize_field("number", &self.0)?;
        s.serialize_field("name", &self.name())?;
        s.end()
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "signal {}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_every_real_time_signal_are_valid_and_nothing_else() {
        assert!(Signal::new(0).unwrap().is_null());
        assert!(Signal::new(libc::SIGRTMAX()).is_ok());
        for bad in [-1, libc::SIGRTMAX() + 1, i32::MAX] {
            let err = Signal::new(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidType);
            assert!(err.to_string().contains("not a signal number"), "{err}");
        }
    }
}
