//! A session: its handle, its backend, and its members.

use std::fmt;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, MutexGuard, Once};
use std::time::Duration;

use conn_core::layer::Shutdown;
use conn_core::{Connection, Error, ErrorKind, Result};
use tokio::sync::mpsc;

use crate::caller::Permit;
use crate::cgroup::{Cgroup, own_cgroup};
use crate::local::LocalMembers;
use crate::protect;
use crate::sys::PidFd;
use crate::sys::pidfd::become_subreaper;
use crate::sys::procfs;
use crate::tracker::PidSet;
use crate::{
    Ash, Backend, BackendChoice, Caller, MemberId, Rule, SessionConn, SessionMember, SignalReport,
};

/// A session: processes, tasks and connections that are signalled as one
/// (an SGI Array Services array session, on one machine).
///
/// A process joins by being spawned into the session ([`Session::spawn`])
/// or adopted ([`Session::adopt`]); everything it forks afterwards belongs
/// to the session too. Tasks join with [`Session::member`], shutdown
/// controllers with [`Session::add_shutdown`], connections with
/// [`Session::add_connection`]. The session is found by its [`Ash`] from
/// anywhere in the process ([`signal_local`](crate::signal_local)) until it is
/// dropped; dropping it releases its surviving processes, or kills them if
/// built with [`SessionBuilder::kill_on_drop`].
///
/// # Examples
///
/// ```
/// use signal_session::{Outcome, Session, signal_local};
/// use tokio::process::Command;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let session = Session::builder().kill_on_drop(true).create()?;
/// println!("session {} on {}", session.ash(), session.backend());
///
/// // A shell and the sleep it forks are both members.
/// let mut sh = session.spawn({
///     let mut c = Command::new("sh");
///     c.args(["-c", "sleep 100 & wait"]);
///     c
/// })?;
/// # for _ in 0..400 { if session.pids()?.len() == 2 { break } tokio::time::sleep(std::time::Duration::from_millis(10)).await; }
/// assert_eq!(session.pids()?.len(), 2);
///
/// let report = signal_local(session.ash(), libc::SIGKILL)?;
/// assert_eq!(report.count(Outcome::Signalled), 2);
/// assert!(!sh.wait().await?.success());
/// # Ok(()) }
/// ```
pub struct Session {
    inner: Arc<Inner>,
}

/// Options for a new [`Session`].
///
/// ```
/// use signal_session::{Backend, BackendChoice, Session};
///
/// let session = Session::builder().backend(BackendChoice::Pidfd).create().unwrap();
/// assert_eq!(session.backend(), Backend::Pidfd);
/// ```
#[derive(Clone, Debug, Default)]
pub struct SessionBuilder {
    ash: Option<Ash>,
    backend: BackendChoice,
    kill_on_drop: bool,
}

/// The shared state of a session; the registry and members hold it weakly.
pub(crate) struct Inner {
    pub(crate) ash: Ash,
    pub(crate) procs: Procs,
    pub(crate) local: Mutex<LocalMembers>,
    kill_on_drop: bool,
}

pub(crate) enum Procs {
    Cgroup(Cgroup),
    Pidfd(Mutex<PidSet>),
}

impl SessionBuilder {
    /// Picks the backend (default [`BackendChoice::Auto`]).
    pub fn backend(mut self, choice: BackendChoice) -> SessionBuilder {
        self.backend = choice;
        self
    }

    /// Uses handle `ash` instead of a new one: the same array session on
    /// another node. `create` fails with `AlreadyExists` when a live
    /// session in this process has it.
    pub fn ash(mut self, ash: Ash) -> SessionBuilder {
        self.ash = Some(ash);
        self
    }

    /// When the session is dropped, SIGKILL its remaining processes instead
    /// of letting them go on outside it. Default: let them go.
    pub fn kill_on_drop(mut self, kill: bool) -> SessionBuilder {
        self.kill_on_drop = kill;
        self
    }

    /// Creates the session and registers its handle.
    pub fn create(self) -> Result<Session> {
        let ash = self.ash.unwrap_or_else(Ash::unique);
        if crate::registry::lookup(ash, "create session").is_ok() {
            return Err(Error::new(ErrorKind::AlreadyExists)
                .during("create session")
                .on(format_args!("session {ash}"))
                .detail("a live session in this process has this handle"));
        }
        let procs = match self.backend {
            BackendChoice::Pidfd => pidfd_backend(ash)?,
            BackendChoice::CgroupV2 => Procs::Cgroup(cgroup_backend(ash).map_err(|why| {
                Error::new(ErrorKind::NotSupported)
                    .during("create session")
                    .on(format_args!("session {ash}"))
                    .detail(format!("cgroup v2 is not usable here: {why}"))
            })?),
            BackendChoice::Auto => match cgroup_backend(ash) {
                Ok(cgroup) => Procs::Cgroup(cgroup),
                Err(why) => {
                    tracing::info!(%ash, "cgroup v2 is not usable ({why}); using pidfds");
                    pidfd_backend(ash)?
                }
            },
        };
        let inner = Arc::new(Inner {
            ash,
            procs,
            local: Mutex::new(LocalMembers::default()),
            kill_on_drop: self.kill_on_drop,
        });
        crate::registry::insert(ash, &inner);
        Ok(Session { inner })
    }
}

fn cgroup_backend(ash: Ash) -> std::result::Result<Cgroup, String> {
    let own = own_cgroup()?;
    let name = format!("{}-{:016x}", std::process::id(), ash.raw());
    Cgroup::create(&own, &name).map_err(|e| e.to_string())
}

fn pidfd_backend(ash: Ash) -> Result<Procs> {
    static SUBREAPER: Once = Once::new();
    let mut failed = None;
    SUBREAPER.call_once(|| failed = become_subreaper().err());
    if let Some(e) = failed {
        return Err(Error::io(
            e,
            "become child subreaper",
            format_args!("session {ash}"),
        ));
    }
    Ok(Procs::Pidfd(Mutex::new(PidSet::default())))
}

impl Session {
    /// A session on the best backend this machine offers (see
    /// [`Session::backend`]).
    pub fn create() -> Result<Session> {
        SessionBuilder::default().create()
    }

    /// Options for a new session.
    pub fn builder() -> SessionBuilder {
        SessionBuilder::default()
    }

    /// The session's handle.
    pub fn ash(&self) -> Ash {
        self.inner.ash
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        match &self.inner.procs {
            Procs::Cgroup(cg) => Backend::CgroupV2 {
                path: cg.dir().to_owned(),
            },
            Procs::Pidfd(_) => Backend::Pidfd,
        }
    }

    /// Spawns `command` (a `tokio::process::Command`, or a
    /// `std::process::Command`) as a member. It joins before it runs its
    /// program, so nothing it forks escapes. Call within a tokio runtime.
    pub fn spawn(
        &self,
        command: impl Into<tokio::process::Command>,
    ) -> Result<tokio::process::Child> {
        let mut command = command.into();
        let target = || format!("session {}", self.inner.ash);
        match &self.inner.procs {
            Procs::Cgroup(cg) => {
                let procs = cg.procs_for_child()?;
                let fd = procs.as_raw_fd();
                // SAFETY: the hook runs in the child between fork and exec
                // and calls only write(2), which is async-signal-safe; `fd`
                // stays open until spawn returns, as `procs` lives until then.
                unsafe {
                    command.pre_exec(move || {
                        // "0" moves the writing process: the child itself.
                        if libc::write(fd, b"0".as_ptr().cast(), 1) == 1 {
                            Ok(())
                        } else {
                            Err(io::Error::last_os_error())
                        }
                    });
                }
                let child = command
                    .spawn()
                    .map_err(|e| Error::io(e, "spawn into session", target()))?;
                drop(procs);
                Ok(child)
            }
            Procs::Pidfd(set) => {
                // SAFETY: the hook runs in the child between fork and exec
                // and calls only setsid(2), which is async-signal-safe.
                unsafe {
                    command.pre_exec(|| {
                        if libc::setsid() < 0 {
                            Err(io::Error::last_os_error())
                        } else {
                            Ok(())
                        }
                    });
                }
                let child = command
                    .spawn()
                    .map_err(|e| Error::io(e, "spawn into session", target()))?;
                // Not yet waited for, so the pid is still this child's.
                let pid = child.id().expect("a child not yet waited for has a pid");
                let fd =
                    PidFd::open(pid).map_err(|e| Error::io(e, "track spawned member", target()))?;
                lock(set).add_spawned(fd);
                Ok(child)
            }
        }
    }

    /// Adopts the running process `pid`, and the descendants it has now,
    /// as members; `NoSuchSession` (ESRCH) when there is no such process.
    ///
    /// Refused, with nothing moved, when `pid` or any descendant it would
    /// take is protected: pid 0 (`InvalidType`), init, a kernel thread,
    /// this process or one of its ancestors (`PermissionDenied`), or a
    /// thread id rather than a process (`InvalidType`). The error names the
    /// pid and why.
    pub fn adopt(&self, pid: u32) -> Result<()> {
        self.adopt_checked(pid, None)
    }

    /// [`Session::adopt`] on behalf of `caller`: besides the guards, the
    /// process and every descendant it would take must be one `caller`
    /// may signal under `rule` (see [`Caller`]); if any is not, nothing is
    /// moved and the `PermissionDenied` error names it. This is what a
    /// daemon that runs as root uses for its clients.
    pub fn adopt_for(&self, caller: &Caller, rule: Rule, pid: u32) -> Result<()> {
        let permit = Permit {
            caller: *caller,
            rule,
        };
        self.adopt_checked(pid, Some(&permit))
    }

    fn adopt_checked(&self, pid: u32, permit: Option<&Permit>) -> Result<()> {
        let target = || format!("pid {pid} into session {}", self.inner.ash);
        let fail = |e: Error| e.during("adopt").on(target());
        // All of them checked before the first is moved.
        let ancestors = protect::ancestors();
        admit(pid, None, permit, &ancestors).map_err(fail)?;
        for p in descendants(pid) {
            admit(p, Some(pid), permit, &ancestors).map_err(fail)?;
        }
        match &self.inner.procs {
            Procs::Cgroup(cg) => adopt_into_cgroup(cg, pid, permit, &ancestors).map_err(fail),
            Procs::Pidfd(set) => {
                let fd = PidFd::open(pid).map_err(|e| Error::io(e, "adopt", target()))?;
                let mut set = lock(set);
                let before = set.pids();
                set.add_adopted(fd);
                set.refresh();
                // The scan may have found children forked since the check:
                // each must pass too, or the adoption is taken back whole.
                let new: Vec<u32> = set
                    .pids()
                    .into_iter()
                    .filter(|p| !before.contains(p))
                    .collect();
                let refused = new
                    .iter()
                    .find_map(|&p| admit(p, Some(pid), permit, &ancestors).err());
                if let Some(e) = refused {
                    for p in new {
                        set.forget(p);
                    }
                    return Err(fail(e));
                }
                Ok(())
            }
        }
    }

    /// The pids of the session's processes now.
    pub fn pids(&self) -> Result<Vec<u32>> {
        self.inner.pids()
    }

    /// Registers an in-process member that receives every signal sent to
    /// the session.
    pub fn member(&self) -> SessionMember {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = self.inner.local().add_task(tx);
        SessionMember::new(id, rx, Arc::downgrade(&self.inner))
    }

    /// Registers a shutdown controller: SIGTERM to the session triggers it
    /// ([`Shutdown::trigger`]: refuse new calls, let those in flight
    /// finish), SIGKILL aborts it ([`Shutdown::abort`]). It stays a member
    /// until [`Session::remove`].
    pub fn add_shutdown(&self, shutdown: &Shutdown) -> MemberId {
        self.inner.local().add_shutdown(shutdown.clone())
    }

    /// Makes `conn` a member: SIGTERM closes it in order (waiting up to
    /// `drain` for the peer's end), SIGKILL kills it. Use the returned
    /// [`SessionConn`] as the connection.
    pub fn add_connection<C: Connection>(&self, conn: C, drain: Duration) -> SessionConn<C> {
        SessionConn::new(
            conn,
            drain,
            self.inner.ash,
            Arc::downgrade(&self.inner),
            |control| self.inner.local().add_connection(control),
        )
    }

    /// Removes an in-process member; false when it was not a member.
    pub fn remove(&self, id: MemberId) -> bool {
        self.inner.local().remove(id)
    }

    /// Signals every member present now (see [`signal_local`](crate::signal_local)).
    pub fn signal(&self, sig: i32) -> Result<SignalReport> {
        self.inner.signal(sig, false, None)
    }

    /// Signals the members on behalf of `caller`, applying the kernel's
    /// `kill(2)` permission rule to each process (see [`Caller`]): a process the
    /// caller may not signal is reported [`Outcome::PermissionDenied`](crate::Outcome::PermissionDenied)
    /// and gets nothing, the others are signalled. This is what a daemon
    /// that runs as root uses for its clients. `atomic` as in
    /// [`Session::signal_atomic`], but refused (`PermissionDenied`, nothing
    /// frozen or sent) unless the caller may signal every member, since
    /// freezing touches them all.
    ///
    /// ```
    /// use signal_session::{Caller, Outcome, Session};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
    /// let session = Session::builder().kill_on_drop(true).create()?;
    /// let mut sleep = tokio::process::Command::new("sleep");
    /// sleep.arg("100");
    /// let child = session.spawn(sleep)?;
    /// let stranger = Caller { ruid: 4242, euid: 4242 };
    /// let report = session.signal_for(&stranger, libc::SIGTERM, false)?;
    /// let expected = if Caller::current().euid == 4242 { Outcome::Signalled } else { Outcome::PermissionDenied };
    /// assert_eq!(report.outcome(signal_session::Member::Process(child.id().unwrap())), Some(expected));
    /// # Ok(()) }
    /// ```
    pub fn signal_for(&self, caller: &Caller, sig: i32, atomic: bool) -> Result<SignalReport> {
        self.signal_for_under(caller, Rule::Kernel, sig, atomic)
    }

    /// [`Session::signal_for`] under `rule` instead of the kernel's.
    pub fn signal_for_under(
        &self,
        caller: &Caller,
        rule: Rule,
        sig: i32,
        atomic: bool,
    ) -> Result<SignalReport> {
        let permit = Permit {
            caller: *caller,
            rule,
        };
        self.inner.signal(sig, atomic, Some(&permit))
    }

    /// Signals every member with the session frozen, so that no process
    /// forked during the call escapes (see
    /// [`signal_local_atomic`](crate::signal_local_atomic)).
    pub fn signal_atomic(&self, sig: i32) -> Result<SignalReport> {
        self.inner.signal(sig, true, None)
    }
}

/// Moves `pid` and its descendants into `cg`. Descendants forked while
/// the others move (by one not yet moved) are checked as they are found;
/// if one is refused, every process moved so far goes back to the cgroup
/// it came from, and the refusal is the answer.
fn adopt_into_cgroup(
    cg: &Cgroup,
    pid: u32,
    permit: Option<&Permit>,
    ancestors: &[u32],
) -> Result<()> {
    let mut moved: Vec<(u32, String)> = Vec::new();
    let from = procfs::cgroup_v2(pid);
    // The caller names the operation and the session.
    cg.add(pid).map_err(Error::from)?;
    moved.extend(from.map(|rel| (pid, rel)));
    let mut checked: Vec<u32> = descendants(pid);
    // Pull in the descendants it already has, until a scan finds no new
    // ones (children it forks from now on start inside).
    for _ in 0..8 {
        let stragglers: Vec<u32> = descendants(pid)
            .into_iter()
            .filter(|&p| !cg.holds(p))
            .collect();
        if stragglers.is_empty() {
            break;
        }
        for p in stragglers {
            if !checked.contains(&p) {
                if let Err(e) = admit(p, Some(pid), permit, ancestors) {
                    send_back(cg, &moved);
                    return Err(e);
                }
                checked.push(p);
            }
            let from = procfs::cgroup_v2(p);
            // One that exited meanwhile is nothing to move.
            if cg.add(p).is_ok() {
                moved.extend(from.map(|rel| (p, rel)));
            }
        }
    }
    Ok(())
}

/// Takes an adoption back: each moved process returns to its cgroup.
fn send_back(cg: &Cgroup, moved: &[(u32, String)]) {
    for (pid, rel) in moved {
        if let Err(e) = cg.send_back(*pid, rel) {
            tracing::warn!(pid, "moving an adopted process back to {rel}: {e}");
        }
    }
}

/// Whether `pid` may join: not protected (see [`protect`]), alive (for the
/// adopted process itself; a descendant gone meanwhile is nothing to
/// move) and, with a `permit`, one its caller may signal. `parent` is the
/// adopted process when `pid` is one of its descendants.
fn admit(pid: u32, parent: Option<u32>, permit: Option<&Permit>, ancestors: &[u32]) -> Result<()> {
    let who = match parent {
        Some(p) => format!("pid {pid} (a descendant of pid {p})"),
        None => format!("pid {pid}"),
    };
    if let Some(why) = protect::check_with(pid, ancestors) {
        return Err(why.error(pid, parent));
    }
    let Some(uids) = procfs::uids(pid) else {
        return match parent {
            Some(_) => Ok(()),
            None => Err(Error::new(ErrorKind::NoSuchSession).detail("no such process")),
        };
    };
    match permit {
        Some(p) if !p.caller.may_signal_uids_under(p.rule, uids) => {
            Err(Error::new(ErrorKind::PermissionDenied).detail(format!(
                "the caller (real uid {}, effective uid {}) may not signal {who} \
                 (real uid {}, effective uid {}, saved uid {}) under the {} rule; nothing was moved",
                p.caller.ruid, p.caller.euid, uids[0], uids[1], uids[2], rule_name(p.rule)
            )))
        }
        _ => Ok(()),
    }
}

fn rule_name(rule: Rule) -> &'static str {
    match rule {
        Rule::Kernel => "kernel's kill(2)",
        Rule::ArrayServices => "Array Services'",
    }
}

/// Every current descendant of `pid`, from `/proc`.
fn descendants(pid: u32) -> Vec<u32> {
    let all = procfs::all();
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(all.iter().filter(|s| s.ppid == parent).map(|s| s.pid));
        i += 1;
    }
    found.remove(0);
    found
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Inner {
    pub(crate) fn local(&self) -> MutexGuard<'_, LocalMembers> {
        lock(&self.local)
    }

    pub(crate) fn remove_local(&self, id: MemberId) {
        self.local().remove(id);
    }

    pub(crate) fn pids(&self) -> Result<Vec<u32>> {
        match &self.procs {
            Procs::Cgroup(cg) => cg.pids().map_err(|e| {
                e.during("list members")
                    .on(format_args!("session {}", self.ash))
            }),
            Procs::Pidfd(set) => {
                let mut set = lock(set);
                set.refresh();
                Ok(set.pids())
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        crate::registry::remove(self.inner.ash);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        match &self.procs {
            Procs::Cgroup(cg) => {
                if let Err(e) = cg.remove(self.kill_on_drop) {
                    tracing::warn!(ash = %self.ash, "cleaning up the session's cgroup: {e}");
                }
            }
            Procs::Pidfd(set) if self.kill_on_drop => {
                let mut set = lock(set);
                set.refresh();
                set.signal(crate::Signal::KILL, None);
            }
            Procs::Pidfd(_) => {}
        }
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("ash", &self.inner.ash)
            .field("backend", &self.backend())
            .finish()
    }
}
