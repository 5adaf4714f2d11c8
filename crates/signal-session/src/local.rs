//! In-process members: tasks, shutdown controllers and connections.

use std::collections::BTreeMap;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use conn_core::layer::Shutdown;
use futures::Stream;
use tokio::sync::mpsc;

use crate::session::Inner;
use crate::{Member, Outcome, Signal};

/// Names one in-process member within its session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct MemberId(pub(crate) u64);

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "member #{}", self.0)
    }
}

/// How a connection member takes a signal; implemented by
/// [`SessionConn`](crate::SessionConn)'s shared state.
pub(crate) trait Control: Send + Sync {
    fn signal(&self, sig: Signal) -> Outcome;
}

enum Local {
    Task(mpsc::UnboundedSender<Signal>),
    Shutdown(Shutdown),
    Connection(Arc<dyn Control>),
}

/// The in-process members of one session.
#[derive(Default)]
pub(crate) struct LocalMembers {
    next: u64,
    members: BTreeMap<MemberId, Local>,
}

impl LocalMembers {
    fn insert(&mut self, member: Local) -> MemberId {
        self.next += 1;
        let id = MemberId(self.next);
        self.members.insert(id, member);
        id
    }

    pub(crate) fn add_task(&mut self, tx: mpsc::UnboundedSender<Signal>) -> MemberId {
        self.insert(Local::Task(tx))
    }

    pub(crate) fn add_shutdown(&mut self, shutdown: Shutdown) -> MemberId {
        self.insert(Local::Shutdown(shutdown))
    }

    pub(crate) fn add_connection(&mut self, control: Arc<dyn Control>) -> MemberId {
        self.insert(Local::Connection(control))
    }

    pub(crate) fn remove(&mut self, id: MemberId) -> bool {
        self.members.remove(&id).is_some()
    }

    /// Delivers `sig` to every member: SIGTERM starts graceful shutdown,
    /// SIGKILL kills, a task hears every signal. Members found gone leave.
    pub(crate) fn deliver(&mut self, sig: Signal) -> Vec<(Member, Outcome)> {
        let mut report = Vec::with_capacity(self.members.len());
        let mut gone = Vec::new();
        for (&id, member) in &self.members {
            let (who, outcome) = match member {
                Local::Task(tx) => (Member::Task(id), deliver_to_task(tx, sig)),
                Local::Shutdown(s) => (Member::Shutdown(id), deliver_to_shutdown(s, sig)),
                Local::Connection(c) => (Member::Connection(id), c.signal(sig)),
            };
            if outcome == Outcome::AlreadyGone {
                gone.push(id);
            }
            report.push((who, outcome));
        }
        for id in gone {
            self.members.remove(&id);
        }
        report
    }
}

fn deliver_to_task(tx: &mpsc::UnboundedSender<Signal>, sig: Signal) -> Outcome {
    match (sig.is_null(), tx.is_closed()) {
        (_, true) => Outcome::AlreadyGone,
        (true, false) => Outcome::Checked,
        (false, false) => match tx.send(sig) {
            Ok(()) => Outcome::Signalled,
            Err(_) => Outcome::AlreadyGone,
        },
    }
}

fn deliver_to_shutdown(shutdown: &Shutdown, sig: Signal) -> Outcome {
    match sig {
        Signal::NULL => Outcome::Checked,
        Signal::TERM => {
            shutdown.trigger();
            Outcome::Signalled
        }
        Signal::KILL => {
            shutdown.abort();
            Outcome::Signalled
        }
        _ => Outcome::Ignored,
    }
}

/// An in-process member of a session (a task, an actor, a worker): it
/// receives every signal sent to the session, as a stream.
///
/// Dropping it leaves the session.
///
/// # Examples
///
/// ```
/// use futures::StreamExt;
/// use signal_session::{Session, Signal, signal_local};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let session = Session::create()?;
/// let mut worker = session.member();
/// let job = tokio::spawn(async move {
///     // Work until told to stop; SIGHUP could mean "reload".
///     while let Some(sig) = worker.next().await {
///         if sig == Signal::TERM {
///             return "stopped";
///         }
///     }
///     "session gone"
/// });
///
/// signal_local(session.ash(), libc::SIGHUP)?;
/// signal_local(session.ash(), libc::SIGTERM)?;
/// assert_eq!(job.await.unwrap(), "stopped");
/// # Ok(()) }
/// ```
pub struct SessionMember {
    id: MemberId,
    signals: mpsc::UnboundedReceiver<Signal>,
    session: Weak<Inner>,
}

impl SessionMember {
    pub(crate) fn new(
        id: MemberId,
        signals: mpsc::UnboundedReceiver<Signal>,
        session: Weak<Inner>,
    ) -> SessionMember {
        SessionMember {
            id,
            signals,
            session,
        }
    }

    /// This member's id, as [`SignalReport`](crate::SignalReport) names it.
    pub fn id(&self) -> MemberId {
        self.id
    }

    /// The next signal; `None` once the session is gone and every signal
    /// sent before has been received.
    pub async fn recv(&mut self) -> Option<Signal> {
        self.signals.recv().await
    }

    /// Waits for `sig` (or SIGKILL, which no member outlives), skipping
    /// others. Returns the signal that ended the wait, `None` when the
    /// session went away first. Handy as a server's shutdown trigger.
    pub async fn until(&mut self, sig: Signal) -> Option<Signal> {
        while let Some(got) = self.signals.recv().await {
            if got == sig || got == Signal::KILL {
                return Some(got);
            }
        }
        None
    }
}

impl Stream for SessionMember {
    type Item = Signal;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Signal>> {
        self.signals.poll_recv(cx)
    }
}

impl fmt::Debug for SessionMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionMember")
            .field("id", &self.id)
            .finish()
    }
}

impl Drop for SessionMember {
    fn drop(&mut self) {
        if let Some(session) = self.session.upgrade() {
            session.remove_local(self.id);
        }
    }
}
