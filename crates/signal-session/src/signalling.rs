//! Signalling a whole session (`askillash_local`).

use conn_core::{Error, ErrorKind, Result};

use crate::caller::Permit;
use crate::cgroup::Cgroup;
use crate::order::parents_first;
use crate::session::{Inner, Procs, lock};
use crate::sys::{PidFd, Sent, procfs};
use crate::tracker::permits;
use crate::{Ash, Member, Outcome, Signal, SignalReport};

/// Sends `sig` to every member of session `ash` present at the moment of
/// the call (Array Services' `askillash_local`): each process through a
/// pidfd opened for it (no pid-reuse race), each in-process member as its
/// kind defines (SIGTERM: graceful shutdown, SIGKILL: kill).
///
/// * `sig` 0 checks the session and the caller's permission on each member
///   and sends nothing (members report [`Outcome::Checked`]).
/// * An invalid signal number is `InvalidType`; a handle no live session
///   in this process has is `NoSuchSession`; any signal to a session that
///   holds a protected process (pid 0 or 1, a kernel thread, this process
///   or one of its ancestors) is `PermissionDenied`, and nothing is sent:
///   such a session may hold the whole machine.
/// * Otherwise the call succeeds, and the [`SignalReport`] says per member
///   whether it was signalled, already gone, or not permitted.
///
/// Processes are signalled parents before children, so none can reap its
/// signalled children and exit normally before its own signal comes; one
/// that exited before its turn is reported [`Outcome::AlreadyGone`].
///
/// Not atomic with respect to forks: a process forked while the call runs
/// may miss the signal. [`signal_local_atomic`] closes that gap.
///
/// # Examples
///
/// ```
/// use conn_core::ErrorKind;
/// use signal_session::{Ash, Session, signal_local};
///
/// let session = Session::create().unwrap();
/// let _member = session.member();
/// assert!(signal_local(session.ash(), 0).unwrap().all_reached()); // a valid handle
///
/// let err = signal_local(session.ash(), 1000).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::InvalidType);
///
/// let ash = session.ash();
/// drop(session);
/// let err = signal_local(ash, libc::SIGTERM).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::NoSuchSession);
/// assert!(err.to_string().starts_with(&format!("kill session on session {ash}")));
/// ```
pub fn signal_local(ash: Ash, sig: i32) -> Result<SignalReport> {
    crate::registry::lookup(ash, "kill session")?.signal(sig, false, None)
}

/// [`signal_local`] with the session frozen while it is signalled, so a
/// process forked during the call is signalled too: freeze the session's
/// cgroup (and wait until the kernel reports it frozen), signal every
/// member, thaw. SIGKILL uses the kernel's `cgroup.kill`, which takes
/// forks in progress along.
///
/// Needs the cgroup v2 backend: on the pidfd backend it is `NotSupported`.
pub fn signal_local_atomic(ash: Ash, sig: i32) -> Result<SignalReport> {
    crate::registry::lookup(ash, "kill session atomically")?.signal(sig, true, None)
}

/// The handles of the live sessions in this process.
pub fn sessions() -> Vec<Ash> {
    crate::registry::all()
}

impl Inner {
    pub(crate) fn signal(
        &self,
        sig: i32,
        atomic: bool,
        caller: Option<&Permit>,
    ) -> Result<SignalReport> {
        let op = if atomic {
            "kill session atomically"
        } else {
            "kill session"
        };
        let target = format!("session {}", self.ash);
        let sig = Signal::new(sig).map_err(|e| e.during(op).on(&target))?;
        // Before freezing too: freezing this process would hang the call.
        crate::protect::refuse_any(&self.pids()?).map_err(|e| e.during(op).on(&target))?;
        let processes = match &self.procs {
            Procs::Cgroup(cg) if atomic => {
                // Freezing touches every member, so a caller who may not
                // signal them all may not freeze them either.
                refuse_unless_all_permitted(cg, caller).map_err(|e| e.during(op).on(&target))?;
                let frozen = Frozen::new(cg).map_err(|e| e.during(op).on(&target))?;
                // cgroup.kill spares no one: only when the caller may
                // signal every member; otherwise one by one, still frozen.
                let all_permitted = || {
                    cg.pids()
                        .is_ok_and(|pids| pids.iter().all(|&p| permits(caller, p)))
                };
                let sent = if sig == Signal::KILL && all_permitted() {
                    kill_cgroup(cg)
                } else {
                    signal_cgroup(cg, sig, caller)
                };
                frozen.thaw().map_err(|e| e.during(op).on(&target))?;
                sent
            }
            Procs::Cgroup(cg) => signal_cgroup(cg, sig, caller),
            Procs::Pidfd(_) if atomic => {
                return Err(Error::new(ErrorKind::NotSupported)
                    .during(op)
                    .on(&target)
                    .detail(
                        "atomic signalling needs the cgroup v2 backend (freeze, signal, thaw); \
                         this session uses pidfds",
                    ));
            }
            Procs::Pidfd(set) => {
                let mut set = lock(set);
                set.refresh();
                crate::protect::refuse_any(&set.pids()).map_err(|e| e.during(op).on(&target))?;
                Ok(set
                    .signal(sig, caller)
                    .into_iter()
                    .map(|(pid, sent)| (Member::Process(pid), outcome(sig, sent)))
                    .collect())
            }
        };
        let mut members = processes.map_err(|e| e.during(op).on(&target))?;
        members.extend(self.local().deliver(sig));
        Ok(SignalReport {
            ash: self.ash,
            signal: sig,
            atomic,
            members,
        })
    }
}

type Outcomes = Result<Vec<(Member, Outcome)>>;

/// `PermissionDenied`, naming them, when `caller` may not signal some
/// members.
fn refuse_unless_all_permitted(cg: &Cgroup, caller: Option<&Permit>) -> Result<()> {
    if caller.is_none() {
        return Ok(());
    }
    let denied: Vec<u32> = cg
        .pids()?
        .into_iter()
        .filter(|&p| !permits(caller, p))
        .collect();
    if denied.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = denied.iter().take(10).map(u32::to_string).collect();
    Err(Error::new(ErrorKind::PermissionDenied).detail(format!(
        "atomic mode freezes every member, and the caller may not signal {} of them \
         (pids {}{}); nothing was frozen or sent",
        denied.len(),
        shown.join(", "),
        if denied.len() > 10 { ", ..." } else { "" }
    )))
}

fn outcome(sig: Signal, sent: std::io::Result<Sent>) -> Outcome {
    match sent {
        Ok(Sent::Delivered) if sig.is_null() => Outcome::Checked,
        Ok(Sent::Delivered) => Outcome::Signalled,
        Ok(Sent::Gone) => Outcome::AlreadyGone,
        Ok(Sent::Denied) => Outcome::PermissionDenied,
        Err(e) => Outcome::Failed(Error::from(e).kind()),
    }
}

/// Signals each process in the cgroup through a pidfd, parents before
/// their children (see [`parents_first`]). The pidfd is opened first and
/// the process's cgroup read after, and it counts only if it is still
/// alive then: so a pid that was reused by a stranger after it left the
/// list is never signalled, and one that exited before its turn (a zombie
/// accepts a signal it never receives) is reported gone.
fn signal_cgroup(cg: &Cgroup, sig: Signal, caller: Option<&Permit>) -> Outcomes {
    let pids = cg.pids()?;
    // Checked again on the list that is signalled: one may have joined.
    crate::protect::refuse_any(&pids)?;
    let order = parents_first(&pids, |p| procfs::stat(p).map(|s| s.ppid));
    let mut outcomes: Vec<(Member, Outcome)> = order
        .into_iter()
        .map(|pid| {
            let sent = match PidFd::open(pid) {
                Ok(fd) if cg.holds(pid) => {
                    // Read after opening, checked for exit after reading:
                    // the uids are this process's.
                    let permitted = permits(caller, pid);
                    match (fd.has_exited(), permitted) {
                        (true, _) => Ok(Sent::Gone),
                        (false, false) => Ok(Sent::Denied),
                        (false, true) => fd.send(sig),
                    }
                }
                Ok(_) => Ok(Sent::Gone),
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(Sent::Gone),
                Err(e) => Err(e),
            };
            (Member::Process(pid), outcome(sig, sent))
        })
        .collect();
    outcomes.sort_unstable_by_key(|(m, _)| *m);
    Ok(outcomes)
}

/// SIGKILL to the whole (frozen) cgroup at once.
fn kill_cgroup(cg: &Cgroup) -> Outcomes {
    let pids = cg.pids()?;
    crate::protect::refuse_any(&pids)?;
    cg.kill_all()?;
    Ok(pids
        .into_iter()
        .map(|pid| (Member::Process(pid), Outcome::Signalled))
        .collect())
}

/// A frozen cgroup, thawed when dropped if not thawed before.
struct Frozen<'a> {
    cg: Option<&'a Cgroup>,
}

impl<'a> Frozen<'a> {
    fn new(cg: &'a Cgroup) -> Result<Frozen<'a>> {
        let frozen = Frozen { cg: Some(cg) };
        cg.freeze(true)?;
        Ok(frozen)
    }

    fn thaw(mut self) -> Result<()> {
        match self.cg.take() {
            Some(cg) => cg.freeze(false),
            None => Ok(()),
        }
    }
}

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        if let Some(cg) = self.cg.take()
            && let Err(e) = cg.freeze(false)
        {
            tracing::error!("thawing a session after a failed signal: {e}");
        }
    }
}
