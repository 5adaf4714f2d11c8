//! What the accept loop does with a failed accept.

use std::time::Duration;

use crate::{Error, ErrorKind};

/// An accept loop's answer to one accept error: the serve loop's, and that
/// of any other loop over a connkit listener (`connkit::http::axum`).
///
/// ```
/// use conn_core::{Error, ErrorKind, serve::{AcceptVerdict, accept_verdict}};
///
/// assert_eq!(accept_verdict(&Error::new(ErrorKind::ConnectionAborted)), AcceptVerdict::Retry);
/// assert_eq!(accept_verdict(&Error::new(ErrorKind::ProcessFdLimit)), AcceptVerdict::Backoff);
/// assert_eq!(accept_verdict(&Error::new(ErrorKind::BadHandle)), AcceptVerdict::Fatal);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcceptVerdict {
    /// A problem of that one peer (aborted, reset): accept again at once.
    Retry,
    /// A resource ran out: pause, and try again when something frees up.
    Backoff,
    /// The listener itself is broken: stop serving.
    Fatal,
}

/// What an accept loop should do after `err`.
pub fn accept_verdict(err: &Error) -> AcceptVerdict {
    match err.kind() {
        ErrorKind::ConnectionAborted
        | ErrorKind::ConnectionReset
        | ErrorKind::Interrupted
        | ErrorKind::Refused
        | ErrorKind::TimedOut
        | ErrorKind::Protocol
        | ErrorKind::PermissionDenied => AcceptVerdict::Retry,
        ErrorKind::ProcessFdLimit
        | ErrorKind::SystemFdLimit
        | ErrorKind::OutOfMemory
        | ErrorKind::NoBufferSpace => AcceptVerdict::Backoff,
        _ => AcceptVerdict::Fatal,
    }
}

/// Exponential pause while a resource is exhausted: 5 ms doubling to 1 s.
/// Freed descriptors also end the pause early (the loop wakes when a
/// connection ends), so the cap only bounds how long an outside release can
/// go unnoticed.
///
/// ```
/// use std::time::Duration;
/// use conn_core::serve::AcceptBackoff;
///
/// let mut backoff = AcceptBackoff::new();
/// assert_eq!(backoff.pause(), (Duration::from_millis(5), true));
/// assert_eq!(backoff.pause(), (Duration::from_millis(10), false));
/// assert!(backoff.recovered());
/// ```
#[derive(Debug)]
pub struct AcceptBackoff {
    next: Duration,
    in_episode: bool,
}

impl Default for AcceptBackoff {
    fn default() -> Self {
        AcceptBackoff::new()
    }
}

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(5);
    /// The longest pause.
    pub const MAX: Duration = Duration::from_secs(1);

    /// No episode running; the next pause is the first.
    pub fn new() -> Self {
        AcceptBackoff {
            next: Self::FIRST,
            in_episode: false,
        }
    }

    /// The next pause, and whether this starts a new episode.
    pub fn pause(&mut self) -> (Duration, bool) {
        let pause = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        let new_episode = !std::mem::replace(&mut self.in_episode, true);
        (pause, new_episode)
    }

    /// An accept succeeded: ends the episode. True when one was running.
    pub fn recovered(&mut self) -> bool {
        self.next = Self::FIRST;
        std::mem::replace(&mut self.in_episode, false)
    }
}
