use std::fmt;
use std::time::Duration;

use crate::{Error, ErrorKind};

/// How many handler errors a report keeps whole; past that it only counts
/// them by kind, so a flood of bad connections cannot grow a server's memory
/// (or its shutdown output) without bound.
pub const ERROR_SAMPLE: usize = 16;

/// What a serve loop did, returned when it stops.
///
/// With the `serde` feature it serializes: every count by name, `errors`
/// as `{"total", "by_kind": {"EPROTO": n, ...}, "sample": ["...", ...]}`
/// and the drain as `drain_secs`.
///
/// Every accepted connection ends in exactly one of four ways: closed in
/// order (its handler finished), killed at the drain deadline, cut by its
/// peer (reset, dropped or timed out on the other side), or failed with an
/// error. So `accepted == closed + killed + cut_by_peer + errors.total()`
/// once the loop has returned.
///
/// ```
/// use conn_core::ShutdownReport;
///
/// let mut report = ShutdownReport::default();
/// report.accepted = 3;
/// report.closed = 2;
/// report.cut_by_peer = 1;
/// assert_eq!(report.to_string().lines().next().unwrap(),
///     "accepted 3, closed in order 2, killed at the deadline 0, cut by the peer 1, errors 0, drained in 0.0ns");
/// ```
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections whose handler ended on its own (closed in order).
    pub closed: u64,
    /// Connections still running at the drain deadline, killed.
    pub killed: u64,
    /// Connections their peer reset, dropped or abandoned: not closed in
    /// order, and not a fault of the server.
    pub cut_by_peer: u64,
    /// Errors returned by connection handlers (panics included): counted by
    /// kind, the first [`ERROR_SAMPLE`] kept whole.
    pub errors: ErrorTally,
    /// The requests (units of work) the connections carried, where the
    /// handler counts them ([`Work`](super::Work)).
    pub requests: RequestCounts,
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
    /// Why serving ended, when the listener itself broke (a device deleted
    /// under a userspace stack, a socket closed from outside) rather than
    /// the signal ending it: the accept error that stopped the loop. The
    /// connections were drained as on the signal all the same, so the
    /// counts above hold; a caller that must fail in that case checks it
    /// (`connkit http` prints the report, then exits with this error).
    /// Merged reports keep the first.
    pub listener_failed: Option<Error>,
}

/// What became of the requests a serve loop's connections carried.
///
/// Handlers count them through [`Work`](super::Work); a handler that does
/// not leaves every field 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct RequestCounts {
    /// Requests begun.
    pub started: u64,
    /// Requests that finished (their whole response was produced).
    pub finished: u64,
    /// Of those, the ones that finished after the shutdown signal: the work
    /// the drain let complete.
    pub finished_after_signal: u64,
    /// Requests still running at the drain deadline, cut when their
    /// connection was killed.
    pub cut_at_deadline: u64,
    /// Requests their peer abandoned (reset, closed or cancelled) before
    /// they finished.
    pub cut_by_peer: u64,
}

impl RequestCounts {
    fn merge(&mut self, other: RequestCounts) {
        self.started += other.started;
        self.finished += other.finished;
        self.finished_after_signal += other.finished_after_signal;
        self.cut_at_deadline += other.cut_at_deadline;
        self.cut_by_peer += other.cut_by_peer;
    }
}

/// Handler errors, counted by kind, with a bounded sample kept whole.
///
/// ```
/// use conn_core::{Error, ErrorKind, serve::{ERROR_SAMPLE, ErrorTally}};
///
/// let mut errors = ErrorTally::default();
/// for _ in 0..1000 {
///     errors.push(Error::new(ErrorKind::Protocol).during("read frame"));
/// }
/// assert_eq!(errors.total(), 1000);
/// assert_eq!(errors.count(ErrorKind::Protocol), 1000);
/// assert_eq!(errors.sample().len(), ERROR_SAMPLE);
/// ```
#[derive(Debug, Default)]
pub struct ErrorTally {
    sample: Vec<Error>,
    by_kind: Vec<(ErrorKind, u64)>,
    total: u64,
}

impl ErrorTally {
    /// Counts `error`, and keeps it while the sample has room.
    pub fn push(&mut self, error: Error) {
        self.total += 1;
        match self.by_kind.iter_mut().find(|(k, _)| *k == error.kind()) {
            Some((_, n)) => *n += 1,
            None => self.by_kind.push((error.kind(), 1)),
        }
        if self.sample.len() < ERROR_SAMPLE {
            self.sample.push(error);
        }
    }

    /// Every error counted.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// True when no error was counted.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The errors of `kind` counted.
    pub fn count(&self, kind: ErrorKind) -> u64 {
        self.by_kind
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n)
    }

    /// Each kind seen, with its count, in the order first seen.
    pub fn by_kind(&self) -> &[(ErrorKind, u64)] {
        &self.by_kind
    }

    /// The first errors, kept whole (at most [`ERROR_SAMPLE`]).
    pub fn sample(&self) -> &[Error] {
        &self.sample
    }

    fn merge(&mut self, other: ErrorTally) {
        for (kind, n) in other.by_kind {
            match self.by_kind.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, m)) => *m += n,
                None => self.by_kind.push((kind, n)),
            }
        }
        self.total += other.total;
        let room = ERROR_SAMPLE.saturating_sub(self.sample.len());
        self.sample.extend(other.sample.into_iter().take(room));
    }
}

impl ShutdownReport {
    /// Adds another report to this one (another thread's, or another
    /// listener's): counts and errors add up, the drain is the longer of the
    /// two.
    pub fn merge(&mut self, other: ShutdownReport) {
        self.accepted += other.accepted;
        self.closed += other.closed;
        self.killed += other.killed;
        self.cut_by_peer += other.cut_by_peer;
        self.errors.merge(other.errors);
        self.requests.merge(other.requests);
        self.accept_errors += other.accept_errors;
        self.fd_limit_episodes += other.fd_limit_episodes;
        self.drain = self.drain.max(other.drain);
        self.threads += other.threads;
        if self.listener_failed.is_none() {
            self.listener_failed = other.listener_failed;
        }
    }

    /// Adds the report of another listener served on the same threads (a
    /// daemon's Unix socket and its TCP port): as [`merge`](Self::merge),
    /// but the threads are not counted twice.
    ///
    /// ```
    /// use conn_core::ShutdownReport;
    ///
    /// let (mut clients, mut peers) = (ShutdownReport::default(), ShutdownReport::default());
    /// (clients.accepted, clients.threads) = (3, 1);
    /// (peers.accepted, peers.threads) = (2, 1);
    /// clients.merge_listener(peers);
    /// assert_eq!((clients.accepted, clients.threads), (5, 1));
    /// ```
    pub fn merge_listener(&mut self, other: ShutdownReport) {
        let threads = self.threads.max(other.threads);
        self.merge(other);
        self.threads = threads;
    }
}

impl fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "accepted {}, closed in order {}, killed at the deadline {}, cut by the peer {}, errors {}, drained in {:.1?}",
            self.accepted,
            self.closed,
            self.killed,
            self.cut_by_peer,
            self.errors.total(),
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
        let r = &self.requests;
        if r.started > 0 {
            write!(
                f,
                "\n  requests: started {}, finished {} ({} after the signal), cut at the deadline {}, cut by the peer {}",
                r.started, r.finished, r.finished_after_signal, r.cut_at_deadline, r.cut_by_peer
            )?;
        }
        if self.errors.by_kind.len() > 1 || self.errors.total > self.errors.sample.len() as u64 {
            write!(f, "\n  errors by kind:")?;
            for (kind, n) in &self.errors.by_kind {
                write!(f, " {} {n};", kind.errno_name())?;
            }
        }
        for e in &self.errors.sample {
            write!(f, "\n  error: {e}")?;
        }
        if let Some(e) = &self.listener_failed {
            write!(f, "\n  serving ended because the listener failed: {e}")?;
        }
        if self.errors.total > self.errors.sample.len() as u64 {
            write!(
                f,
                "\n  ... and {} more",
                self.errors.total - self.errors.sample.len() as u64
            )?;
        }
        Ok(())
    }
}

#[cfg(feature = "serde")]
mod serialize {
    //! Reports as JSON (and any serde format): names as the text report
    //! has them, kinds by errno name, the drain in seconds.

    use serde::ser::{Serialize, SerializeMap, SerializeStruct, Serializer};

    use super::{ErrorTally, ShutdownReport};

    impl Serialize for ShutdownReport {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut s = serializer.serialize_struct("ShutdownReport", 11)?;
            s.serialize_field("accepted", &self.accepted)?;
            s.serialize_field("closed", &self.closed)?;
            s.serialize_field("killed", &self.killed)?;
            s.serialize_field("cut_by_peer", &self.cut_by_peer)?;
            s.serialize_field("errors", &self.errors)?;
            s.serialize_field("requests", &self.requests)?;
            s.serialize_field("accept_errors", &self.accept_errors)?;
            s.serialize_field("fd_limit_episodes", &self.fd_limit_episodes)?;
            s.serialize_field("drain_secs", &self.drain.as_secs_f64())?;
            s.serialize_field("threads", &self.threads)?;
            let failed = self.listener_failed.as_ref().map(ToString::to_string);
            s.serialize_field("listener_failed", &failed)?;
            s.end()
        }
    }

    impl Serialize for ErrorTally {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            /// The kinds as a map in the order first seen.
            struct ByKind<'a>(&'a [(crate::ErrorKind, u64)]);
            impl Serialize for ByKind<'_> {
                fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                    let mut m = serializer.serialize_map(Some(self.0.len()))?;
                    for (kind, n) in self.0 {
                        m.serialize_entry(kind.errno_name(), n)?;
                    }
                    m.end()
                }
            }
            let sample: Vec<String> = self.sample.iter().map(ToString::to_string).collect();
            let mut s = serializer.serialize_struct("ErrorTally", 3)?;
            s.serialize_field("total", &self.total)?;
            s.serialize_field("by_kind", &ByKind(&self.by_kind))?;
            s.serialize_field("sample", &sample)?;
            s.end()
        }
    }

    #[cfg(test)]
    mod tests {
        use std::time::Duration;

        use crate::{Error, ErrorKind, ShutdownReport};

        #[test]
        fn a_report_serializes_every_count_its_errors_by_kind_and_the_drain_in_seconds() {
            let mut report = ShutdownReport {
                accepted: 5,
                closed: 2,
                killed: 1,
                cut_by_peer: 1,
                drain: Duration::from_millis(1500),
                threads: 2,
                ..ShutdownReport::default()
            };
            report.requests.started = 7;
            report.requests.finished_after_signal = 3;
            report
                .errors
                .push(Error::new(ErrorKind::Protocol).during("read frame"));
            let json = serde_json::to_value(&report).unwrap();
            assert_eq!(json["accepted"], 5);
            assert_eq!(json["closed"], 2);
            assert_eq!(json["killed"], 1);
            assert_eq!(json["cut_by_peer"], 1);
            assert_eq!(json["threads"], 2);
            assert!(json["listener_failed"].is_null(), "{json}");
            assert_eq!(json["drain_secs"], 1.5);
            assert_eq!(json["requests"]["started"], 7);
            assert_eq!(json["requests"]["finished_after_signal"], 3);
            assert_eq!(json["errors"]["total"], 1);
            assert_eq!(json["errors"]["by_kind"]["EPROTO"], 1);
            let sample = json["errors"]["sample"][0].as_str().unwrap();
            assert!(sample.contains("read frame"), "{sample}");
        }
    }
}
