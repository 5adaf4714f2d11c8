//! What the accept loop does with a failed accept.

use std::time::Duration;

use crate::{Error, ErrorKind};

/// The loop's answer to one accept error.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// A problem of that one peer (aborted, reset): accept again at once.
    Retry,
    /// A resource ran out: pause, and try again when something frees up.
    Backoff,
    /// The listener itself is broken: stop serving.
    Fatal,
}

pub(super) fn verdict(err: &Error) -> Verdict {
    match err.kind() {
        ErrorKind::ConnectionAborted
        | ErrorKind::ConnectionReset
        | ErrorKind::Interrupted
        | ErrorKind::Refused
        | ErrorKind::TimedOut
        | ErrorKind::Protocol
        | ErrorKind::PermissionDenied => Verdict::Retry,
        ErrorKind::ProcessFdLimit
        | ErrorKind::SystemFdLimit
        | ErrorKind::OutOfMemory
        | ErrorKind::NoBufferSpace => Verdict::Backoff,
        _ => Verdict::Fatal,
    }
}

/// Exponential pause while a resource is exhausted: 5 ms doubling to 1 s.
/// Freed descriptors also end the pause early (the loop wakes when a
/// connection ends), so the cap only bounds how long an outside release can
/// go unnoticed.
#[derive(Debug)]
pub(super) struct Backoff {
    next: Duration,
    in_episode: bool,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(5);
    const MAX: Duration = Duration::from_secs(1);

    pub(super) fn new() -> Self {
        Backoff {
            next: Self::FIRST,
            in_episode: false,
        }
    }

    /// The next pause, and whether this starts a new episode.
    pub(super) fn pause(&mut self) -> (Duration, bool) {
        let pause = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        let new_episode = !std::mem::replace(&mut self.in_episode, true);
        (pause, new_episode)
    }

    /// An accept succeeded: ends the episode. True when one was running.
    pub(super) fn recovered(&mut self) -> bool {
        self.next = Self::FIRST;
        std::mem::replace(&mut self.in_episode, false)
    }
}
