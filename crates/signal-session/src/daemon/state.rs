//! The daemon's sessions and what each request does to them.

use std::collections::HashMap;
use std::sync::Mutex;

use conn_core::{Error, ErrorKind, Result};

use super::config::Config;
use crate::session::lock;
use crate::wire::Message;
use crate::{Ash, Caller, Session};

/// The state of one sessiond: its sessions, its configuration, its secret.
pub(crate) struct Daemon {
    sessions: Mutex<HashMap<Ash, Entry>>,
    pub(crate) config: Config,
    pub(crate) secret: Option<Vec<u8>>,
    /// The way to the cluster's group, with `--cluster corosync`.
    pub(crate) cluster: Option<super::array::ClusterLink>,
}

/// A session and whether a process ever joined it. As in Array Services,
/// a session ends when its last process does: one that had processes and
/// has none left is retired when next looked at (a new, still empty one is
/// kept for its first spawn).
struct Entry {
    session: Session,
    populated: bool,
}

impl Entry {
    fn ended(&self) -> bool {
        self.populated && self.session.pids().is_ok_and(|p| p.is_empty())
    }
}

/// Who sent a local request: ids from `SO_PEERCRED` and `/proc`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Client {
    pub(crate) pid: u32,
    pub(crate) caller: Caller,
    pub(crate) gid: u32,
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
        secret: Option<Vec<u8>>,
        cluster: Option<super::array::ClusterLink>,
    ) -> Daemon {
        Daemon {
            sessions: Mutex::new(HashMap::new()),
            config,
            secret,
            cluster,
        }
    }

    fn with_session<T>(
        &self,
        ash: Ash,
        op: &'static str,
        f: impl FnOnce(&Session) -> Result<T>,
    ) -> Result<T> {
        let mut sessions = lock(&self.sessions);
        if sessions.get(&ash).is_some_and(Entry::ended) {
            sessions.remove(&ash);
            tracing::info!(%ash, "session ended: its last process is gone");
        }
        let entry = sessions.get(&ash).ok_or_else(|| no_such_session(ash, op))?;
        f(&entry.session)
    }

    fn mark_populated(&self, ash: Ash) {
        if let Some(entry) = lock(&self.sessions).get_mut(&ash) {
            entry.populated = true;
        }
    }

    /// Answers a request that stays on this node. Array-wide kills are
    /// the caller's (see `array::kill_array`).
    pub(crate) fn handle(&self, client: Client, msg: Message) -> Message {
        let answer = match msg {
            Message::NewSession { ash } => self.new_session(ash),
            Message::Spawn { ash, argv } => self.spawn(client, ash, argv),
            Message::Adopt { ash, pid } => self.adopt(client.caller, ash, pid),
            Message::List => {
                let mut sessions = lock(&self.sessions);
                sessions.retain(|_, e| !e.ended());
                let mut ashes: Vec<Ash> = sessions.keys().copied().collect();
                ashes.sort_unstable();
                Ok(Message::Sessions(ashes))
            }
            Message::Members { ash } => self
                .with_session(ash, "list members", |s| s.pids())
                .map(Message::Pids),
            Message::Kill {
                ash,
                sig,
                atomic,
                array: None,
                ..
            } => self
                .kill(client.caller, ash, sig, atomic)
                .map(Message::Report),
            other => Err(Error::new(ErrorKind::InvalidType)
                .during("handle request")
                .detail(format!("a {:?} message is not a request", other.kind()))),
        };
        answer.unwrap_or_else(|e| Message::error(&e))
    }

    pub(crate) fn kill(
        &self,
        caller: Caller,
        ash: Ash,
        sig: i32,
        atomic: bool,
    ) -> Result<crate::KillReport> {
        let op = if atomic {
            "kill session atomically"
        } else {
            "kill session"
        };
        self.with_session(ash, op, |s| s.kill_for(&caller, sig, atomic))
    }

    fn new_session(&self, ash: Option<Ash>) -> Result<Message> {
        let mut builder = Session::builder();
        if let Some(ash) = ash {
            builder = builder.ash(ash);
        }
        let session = builder.create()?;
        let ash = session.ash();
        tracing::info!(%ash, backend = %session.backend(), "session created");
        // A handle in use here failed in create (AlreadyExists).
        lock(&self.sessions).insert(
            ash,
            Entry {
                session,
                populated: false,
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
        let mut child = self.with_session(ash, "spawn into session", |s| s.spawn(cmd))?;
        self.mark_populated(ash);
        let pid = child.id().unwrap_or(0);
        tracing::info!(%ash, pid, by = client.pid, "spawned {:?}", argv);
        // Reap it when it ends; the session keeps tracking it till then.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        Ok(Message::Spawned { pid })
    }

    /// Adopts `pid` if the caller may signal it (the same rule as kill).
    fn adopt(&self, caller: Caller, ash: Ash, pid: u32) -> Result<Message> {
        let target = || format!("pid {pid} into session {ash}");
        match caller.may_signal(pid) {
            None => {
                return Err(Error::new(ErrorKind::NoSuchSession)
                    .during("adopt")
                    .on(target())
                    .detail("no such process"));
            }
            Some(false) => {
                return Err(Error::new(ErrorKind::PermissionDenied)
                    .during("adopt")
                    .on(target())
                    .detail("the caller may not signal this process"));
            }
            Some(true) => {}
        }
        self.with_session(ash, "adopt", |s| s.adopt(pid))?;
        self.mark_populated(ash);
        Ok(Message::Done)
    }
}
