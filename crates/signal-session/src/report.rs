//! What a signal to a session did to each member.

use std::fmt;

use conn_core::ErrorKind;

use crate::{Ash, MemberId, Signal};

/// One member of a session, as a [`SignalReport`] names it.
///
/// Serializes as `{"process": PID}`, `{"task": ID}`, `{"shutdown": ID}` or
/// `{"connection": ID}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Member {
    /// A process, by pid.
    Process(u32),
    /// An in-process [`SessionMember`](crate::SessionMember).
    Task(MemberId),
    /// A `conn_core::layer::Shutdown` registered with the session.
    Shutdown(MemberId),
    /// A connection registered with the session.
    Connection(MemberId),
}

/// What happened to one member.
///
/// Serializes as `"signalled"`, `"checked"`, `"already_gone"`,
/// `"permission_denied"`, `"ignored"` or `{"failed": "ERRNO"}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The signal was delivered.
    Signalled,
    /// Signal 0: the member exists and may be signalled; nothing was sent.
    Checked,
    /// The member ended before the signal reached it.
    AlreadyGone,
    /// The caller may not signal this member (`EPERM`).
    PermissionDenied,
    /// An in-process member that gives this signal no meaning (a
    /// connection or shutdown controller hears only SIGTERM and SIGKILL).
    Ignored,
    /// Signalling failed for another reason.
    Failed(ErrorKind),
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Member::Process(pid) => write!(f, "process {pid}"),
            Member::Task(id) => write!(f, "task #{}", id.0),
            Member::Shutdown(id) => write!(f, "shutdown #{}", id.0),
            Member::Connection(id) => write!(f, "connection #{}", id.0),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Signalled => f.write_str("signalled"),
            Outcome::Checked => f.write_str("checked"),
            Outcome::AlreadyGone => f.write_str("already gone"),
            Outcome::PermissionDenied => f.write_str("permission denied (EPERM)"),
            Outcome::Ignored => f.write_str("ignored"),
            Outcome::Failed(kind) => write!(f, "failed: {kind}"),
        }
    }
}

/// The result of signalling a session: one line per member present at the
/// moment of the call, so a partial failure always says who got the signal
/// and who did not.
///
/// # Examples
///
/// ```
/// use signal_session::{Member, Outcome, Session};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let session = Session::create()?;
/// let mut task = session.member();
/// let report = session.signal(libc::SIGUSR1)?;
/// assert_eq!(report.members, vec![(Member::Task(task.id()), Outcome::Signalled)]);
/// assert!(report.all_reached());
/// assert_eq!(task.recv().await, Some(signal_session::Signal::USR1));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignalReport {
    /// The session signalled.
    pub ash: Ash,
    /// The signal sent.
    pub signal: Signal,
    /// Whether the session was frozen while it was signalled.
    pub atomic: bool,
    /// Each member and what happened to it, processes first (by pid), then
    /// in-process members in the order they joined.
    pub members: Vec<(Member, Outcome)>,
}

impl SignalReport {
    /// How many members had `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.members.iter().filter(|(_, o)| *o == outcome).count()
    }

    /// The outcome for `member`, if it was present.
    pub fn outcome(&self, member: Member) -> Option<Outcome> {
        self.members
            .iter()
            .find(|(m, _)| *m == member)
            .map(|(_, o)| *o)
    }

    /// The pids of the processes that were present.
    pub fn pids(&self) -> Vec<u32> {
        self.members
            .iter()
            .filter_map(|(m, _)| match m {
                Member::Process(pid) => Some(*pid),
                _ => None,
            })
            .collect()
    }

    /// True when no member was denied or failed (gone and ignored members
    /// count as reached).
    pub fn all_reached(&self) -> bool {
        self.members
            .iter()
            .all(|(_, o)| !matches!(o, Outcome::PermissionDenied | Outcome::Failed(_)))
    }
}

/// `{"ash", "signal": {"number", "name"}, "atomic", "all_reached",
/// "members": [{"member", "outcome"}, ...]}`, as `session kill --json`
/// prints it.
impl serde::Serialize for SignalReport {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        #[derive(serde::Serialize)]
        struct Line<'a> {
            member: &'a Member,
            outcome: &'a Outcome,
        }
        let members: Vec<Line<'_>> = self
            .members
            .iter()
            .map(|(member, outcome)| Line { member, outcome })
            .collect();
        let mut s = serializer.serialize_struct("SignalReport", 5)?;
        s.serialize_field("ash", &self.ash)?;
        s.serialize_field("signal", &self.signal)?;
        s.serialize_field("atomic", &self.atomic)?;
        s.serialize_field("all_reached", &self.all_reached())?;
        s.serialize_field("members", &members)?;
        s.end()
    }
}

impl fmt::Display for SignalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} to session {}{}: {} members",
            self.signal,
            self.ash,
            if self.atomic { " (atomic)" } else { "" },
            self.members.len()
        )?;
        for (what, label) in [
            (Outcome::Signalled, "signalled"),
            (Outcome::Checked, "checked"),
            (Outcome::AlreadyGone, "already gone"),
            (Outcome::PermissionDenied, "permission denied"),
            (Outcome::Ignored, "ignored"),
        ] {
            let n = self.count(what);
            if n > 0 {
                write!(f, ", {n} {label}")?;
            }
        }
        let failed = self
            .members
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Failed(_)))
            .count();
        if failed > 0 {
            write!(f, ", {failed} failed")?;
        }
        Ok(())
    }
}
