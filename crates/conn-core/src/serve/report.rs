use std::fmt;
use std::time::Duration;

use crate::Error;

/// What a serve loop did, returned when it stops.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections whose handler ended on its own (closed in order).
    pub closed: u64,
    /// Connections still running at the drain deadline, killed.
    pub killed: u64,
    /// Errors returned by connection handlers (panics included).
    pub errors: Vec<Error>,
    /// Accept calls that failed and were retried.
    pub accept_errors: u64,
    /// Times the descriptor table filled up (EMFILE/ENFILE) and accepting paused.
    pub fd_limit_episodes: u64,
    /// How long the drain took, from the signal to the last connection
    /// (on the slowest thread).
    pub drain: Duration,
    /// Threads that served: 1 for [`serve`](super::serve()), n for
    /// [`Server::per_core(n)`](super::Server::per_core).
    pub threads: usize,
}

impl ShutdownReport {
    /// Adds another thread's report to this one: counts and errors add up,
    /// the drain is the longer of the two.
    pub fn merge(&mut self, other: ShutdownReport) {
        self.accepted += other.accepted;
        self.closed += other.closed;
        self.killed += other.killed;
        self.errors.extend(other.errors);
        self.accept_errors += other.accept_errors;
        self.fd_limit_episodes += other.fd_limit_episodes;
        self.drain = self.drain.max(other.drain);
        self.threads += other.threads;
    }
}

impl fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "accepted {}, closed in order {}, killed {}, errors {}, drained in {:.1?}",
            self.accepted,
            self.closed,
            self.killed,
            self.errors.len(),
            self.drain
        )?;
        if self.threads > 1 {
            write!(f, " on {} threads", self.threads)?;
        }
        if self.accept_errors > 0 {
            write!(
                f,
                " ({} accept errors, {} fd-limit episodes)",
                self.accept_errors, self.fd_limit_episodes
            )?;
        }
        for e in &self.errors {
            write!(f, "\n  error: {e}")?;
        }
        Ok(())
    }
}
