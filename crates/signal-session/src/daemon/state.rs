//! The daemon's sessions and what each request does to them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use conn_core::{Error, ErrorKind, Result};

use super::config::Config;
use crate::session::lock;
use conn_core::wire::Repr as _;

use crate::wire::Message;
use crate::{Ash, Caller, Session};

/// The state of one sessiond: its sessions, its configuration, its secret.
pub(crate) struct Daemon {
    sessions: Mutex<HashMap<Ash, Entry>>,
    pub(crate) config: Config,
    pub(crate) secret: Option<conn_core::auth::Secret>,
    /// The way to the cluster's group, with `--cluster corosync`.
    pub(crate) cluster: Option<super::array::ClusterLink>,
}

/// A session, who owns it, and whether a process ever joined it. As in
/// Array Services, a session ends when its last process does; here one
/// that has no process is also retired once it is older than the grace
/// period (a new one is kept that long for its first spawn), so sessions
/// nobody uses do not pile up as cgroups.
struct Entry {
    session: Session,
    /// The uid that created it (`SO_PEERCRED`): only it and root may use
    /// it.
    owner: u32,
    populated: bool,
    created: Instant,
}

impl Entry {
    /// True when the session has no process and either had one or has
    /// outlived `grace` without one. Emptiness is read each time, so a
    /// spawn in flight when the grace runs out keeps its session.
    fn retired(&self, grace: Duration, now: Instant) -> bool {
        (self.populated || now.duration_since(self.created) >= grace)
            && self.session.pids().is_ok_and(|p| p.is_empty())
    }

    /// Who may use the session: its owner and root.
    fn usable_by(&self, caller: &Caller) -> bool {
        caller.is_root() || caller.euid == self.owner
    }
}

/// Who sent a local request: ids from `SO_PEERCRED` and `/proc`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Client {
    pub(crate) pid: u32,
    pub(crate) caller: Caller,
    pub(crate) gid: u32,
}

fn not_owner(ash: Ash, op: &'static str, owner: u32, caller: &Caller) -> Error {
    Error::new(ErrorKind::PermissionDenied)
        .during(op)
        .on(format_args!("session {ash}"))
        .detail(format!(
            "the session belongs to uid {owner}; only its owner or root may use it \
             (the caller is uid {})",
            caller.euid
        ))
}

fn no_such_session(ash: Ash, op: &'static str) -> Error {
    Error::new(ErrorKind::NoSuchSession)
        .during(op)
        .on(format_args!("session {ash}"))
        .detail("this sessiond has no session with this handle")
}

impl Daemon {
    pub(crate) fn new(
        config: Config,
        secret: Option<conn_core::auth::Secret>,
        cluster: Option<super::array::ClusterLink>,
    ) -> Daemon {
        Daemon {
            sessions: Mutex::new(HashMap::new()),
            config,
            secret,
            cluster,
        }
    }

    /// Runs `f` on session `ash` for `caller`, who must be its owner or
    /// root. A session that should have been retired is retired first.
    fn with_session<T>(
        &self,
        caller: &Caller,
        ash: Ash,
        op: &'static str,
        f: impl FnOnce(&Session) -> Result<T>,
    ) -> Result<T> {
        let mut sessions = lock(&self.sessions);
        let grace = self.config.empty_grace();
        if sessions
            .get(&ash)
            .is_some_and(|e| e.retired(grace, Instant::now()))
        {
            sessions.remove(&ash);
            tracing::info!(%ash, "session retired: it has no process");
        }
        let entry = sessions.get(&ash).ok_or_else(|| no_such_session(ash, op))?;
        if !entry.usable_by(caller) {
            return Err(not_owner(ash, op, entry.owner, caller));
        }
        f(&entry.session)
    }

    /// Retires every session without a process that had one, or that has
    /// waited out the grace period for its first; returns how many.
    pub(crate) fn sweep(&self, now: Instant) -> usize {
        let grace = self.config.empty_grace();
        let mut sessions = lock(&self.sessions);
        let before = sessions.len();
        sessions.retain(|ash, e| {
            let retired = e.retired(grace, now);
            if retired {
                tracing::info!(%ash, owner = e.owner, "session retired: it has no process");
            }
            !retired
        });
        before - sessions.len()
    }

    fn mark_populated(&self, ash: Ash) {
        if let Some(entry) = lock(&self.sessions).get_mut(&ash) {
            entry.populated = true;
        }
    }

    /// Answers a request that stays on this node. Array-wide kills are
    /// the caller's (see `array::signal_array`).
    pub(crate) fn handle(&self, client: Client, msg: Message) -> Message {
        let answer = match msg {
            Message::NewSession { ash } => self.new_session(&client.caller, ash),
            Message::Spawn { ash, argv } => self.spawn(client, ash, argv),
            Message::Adopt { ash, pid } => self.adopt(client.caller, ash, pid),
            Message::List => Ok(Message::Sessions(self.list(&client.caller))),
            Message::Members { ash } => self
                .with_session(&client.caller, ash, "list members", |s| s.pids())
                .map(Message::Pids),
            Message::Kill {
                ash,
                sig,
                atomic,
                array: None,
                ..
            } => self
                .signal(client.caller, ash, sig, atomic)
                .map(Message::Report),
            other => Err(Error::new(ErrorKind::InvalidType)
                .during("handle request")
                .detail(format!("a {:?} message is not a request", other.kind()))),
        };
        answer.unwrap_or_else(|e| Message::error(&e))
    }

    pub(crate) fn signal(
        &self,
        caller: Caller,
        ash: Ash,
        sig: i32,
        atomic: bool,
    ) -> Result<crate::SignalReport> {
        let op = if atomic {
            "kill session atomically"
        } else {
            "kill session"
        };
        let rule = self.config.permission;
        self.with_session(&caller, ash, op, |s| {
            s.signal_for_under(&caller, rule, sig, atomic)
        })
    }

    /// The sessions `caller` may use: all of them for root, its own for
    /// anyone else.
    fn list(&self, caller: &Caller) -> Vec<Ash> {
        self.sweep(Instant::now());
        let sessions = lock(&self.sessions);
        let mut ashes: Vec<Ash> = sessions
            .iter()
            .filter(|(_, e)| e.usable_by(caller))
            .map(|(ash, _)| *ash)
            .collect();
        ashes.sort_unstable();
        ashes
    }

    /// Creates a session owned by `caller`, unless a non-root caller
    /// already holds as many as the configured limit.
    fn new_session(&self, caller: &Caller, ash: Option<Ash>) -> Result<Message> {
        let mut builder = Session::builder();
        if let Some(ash) = ash {
            builder = builder.ash(ash);
        }
        let owner = caller.euid;
        // Counted and inserted under one lock, so parallel requests cannot
        // pass the limit together.
        let mut sessions = lock(&self.sessions);
        let held = sessions.values().filter(|e| e.owner == owner).count();
        let limit = self.config.session_limit();
        if !caller.is_root() && held >= limit {
            return Err(Error::new(ErrorKind::Refused)
                .during("create session")
                .on(format_args!("uid {owner}"))
                .detail(format!(
                    "uid {owner} holds {held} sessions, the most this sessiond allows one \
                     user (max_sessions_per_uid = {limit}); kill or empty some first"
                )));
        }
        let session = builder.create()?;
        let ash = session.ash();
        tracing::info!(%ash, owner, backend = %session.backend(), "session created");
        // A handle in use here failed in create (AlreadyExists).
        sessions.insert(
            ash,
            Entry {
                session,
                owner,
                populated: false,
                created: Instant::now(),
            },
        );
        Ok(Message::Created { ash })
    }

    /// Runs `argv` as the client's user and group, in `/`, with a plain
    /// PATH and no terminal: the daemon's own environment and privileges
    /// never reach it.
    fn spawn(&self, client: Client, ash: Ash, argv: Vec<String>) -> Result<Message> {
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .current_dir("/")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let me = Caller::current();
        if me.euid != client.caller.euid {
            cmd.uid(client.caller.euid).gid(client.gid);
        }
        let mut child =
            self.with_session(&client.caller, ash, "spawn into session", |s| s.spawn(cmd))?;
        self.mark_populated(ash);
        let pid = child.id().unwrap_or(0);
        tracing::info!(%ash, pid, by = client.pid, "spawned {:?}", argv);
        // Reap it when it ends; the session keeps tracking it till then.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        Ok(Message::Spawned { pid })
    }

    /// Adopts `pid` and its descendants if the caller may signal every one
    /// of them under the configured rule (the same rule as kill) and none
    /// is protected; otherwise nothing moves.
    fn adopt(&self, caller: Caller, ash: Ash, pid: u32) -> Result<Message> {
        let rule = self.config.permission;
        self.with_session(&caller, ash, "adopt", |s| s.adopt_for(&caller, rule, pid))?;
        self.mark_populated(ash);
        Ok(Message::Done)
    }
}
