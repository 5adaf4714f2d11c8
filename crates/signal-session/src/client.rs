//! Talking to a sessiond: the [`Client`], and Array Services'
//! `askillash_server` / `askillash_array` as [`signal_server`] and
//! [`signal_array`].

use std::fmt;
use std::path::{Path, PathBuf};

use conn_core::{Connection, Deadline, Error, ErrorKind, Result};
use conn_ipc::IpcStream;

use conn_core::wire::Repr as _;

use crate::wire::io::{read_message, write_message};
use crate::wire::{Message, NodeOutcome, NodeResult};
use crate::{Ash, SignalReport};

/// Where a sessiond listens unless told otherwise:
/// `$XDG_RUNTIME_DIR/sessiond.sock`, else `/tmp/sessiond.sock`.
///
/// ```
/// assert!(signal_session::client::default_socket().ends_with("sessiond.sock"));
/// ```
pub fn default_socket() -> PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from)
        .join("sessiond.sock")
}

/// A connection to a sessiond.
///
/// ```
/// use std::time::Duration;
/// use conn_core::Deadline;
/// use signal_session::client::Client;
/// # #[cfg(feature = "daemon")]
/// use signal_session::daemon::{Options, run};
///
/// # #[cfg(feature = "daemon")]
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// // A sessiond of our own, in this process for the example.
/// let socket = std::env::temp_dir().join(format!("sessiond-doc-{}.sock", std::process::id()));
/// let options = Options { socket: Some(socket.clone()), ..Options::default() };
/// tokio::spawn(run(options, std::future::pending()));
/// let mut client = loop {
///     match Client::connect(&socket, Deadline::NOW).await {
///         Ok(c) => break c,
///         Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
///     }
/// };
///
/// let ash = client.new_session(None).await?;
/// let pid = client.spawn(ash, &["sleep", "100"]).await?;
/// assert_eq!(client.members(ash).await?, vec![pid]);
/// let report = client.signal(ash, libc::SIGTERM, false).await?;
/// assert_eq!(report.count(signal_session::Outcome::Signalled), 1);
/// # Ok(()) }
/// # #[cfg(not(feature = "daemon"))] fn main() {}
/// ```
#[derive(Debug)]
pub struct Client {
    stream: IpcStream,
    server: PathBuf,
}

/// What an array-wide kill did on each node.
///
/// ```
/// use conn_core::ErrorKind;
/// use signal_session::client::ArrayReport;
/// use signal_session::wire::{NodeOutcome, NodeResult};
///
/// let report = ArrayReport { nodes: vec![NodeResult {
///     name: "b".into(),
///     addr: "10.0.0.2:7301".into(),
///     outcome: NodeOutcome::NoAnswer { kind: ErrorKind::TimedOut, message: "no answer by the deadline".into() },
/// }] };
/// assert_eq!(report.silent(), ["b"]);
/// assert_eq!(report.answered().count(), 0);
/// assert_eq!(report.to_string(), "b (10.0.0.2:7301): no answer: no answer by the deadline");
///
/// // The cluster's array: a node whose sessiond left the group mid-call.
/// let cluster = ArrayReport { nodes: vec![NodeResult {
///     name: "n3".into(),
///     addr: "cpg:node 3 pid 812".into(),
///     outcome: NodeOutcome::Left { message: "left the cluster's group during the call: node down".into() },
/// }] };
/// assert_eq!(cluster.left(), ["n3"]);
/// assert_eq!(cluster.silent(), ["n3"]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ArrayReport {
    /// One entry per node of the array, in configuration order.
    pub nodes: Vec<NodeResult>,
}

impl ArrayReport {
    /// The nodes that answered with a report.
    pub fn answered(&self) -> impl Iterator<Item = (&str, &SignalReport)> {
        self.nodes.iter().filter_map(|n| match &n.outcome {
            NodeOutcome::Answered(r) => Some((n.name.as_str(), r)),
            _ => None,
        })
    }

    /// True when every node answered and reached every member: what
    /// `session kill --array` exits 0 on.
    pub fn all_reached(&self) -> bool {
        self.nodes
            .iter()
            .all(|n| matches!(&n.outcome, NodeOutcome::Answered(r) if r.all_reached()))
    }

    /// The names of the nodes that did not answer: none by the deadline,
    /// or (the cluster) left the group during the call.
    pub fn silent(&self) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|n| {
                matches!(
                    n.outcome,
                    NodeOutcome::NoAnswer { .. } | NodeOutcome::Left { .. }
                )
            })
            .map(|n| n.name.as_str())
            .collect()
    }

    /// The names of the nodes whose sessiond left the cluster's group
    /// while the call waited for it.
    pub fn left(&self) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|n| matches!(n.outcome, NodeOutcome::Left { .. }))
            .map(|n| n.name.as_str())
            .collect()
    }
}

impl fmt::Display for ArrayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, n) in self.nodes.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match &n.outcome {
                NodeOutcome::Answered(r) => write!(f, "{} ({}): {r}", n.name, n.addr)?,
                NodeOutcome::Refused { message, .. } => {
                    write!(f, "{} ({}): refused: {message}", n.name, n.addr)?
                }
                NodeOutcome::NoAnswer { message, .. } => {
                    write!(f, "{} ({}): no answer: {message}", n.name, n.addr)?
                }
                NodeOutcome::Left { message } => write!(f, "{} ({}): {message}", n.name, n.addr)?,
            }
        }
        Ok(())
    }
}

impl Client {
    /// Connects to the sessiond at `server`.
    pub async fn connect(server: &Path, deadline: Deadline) -> Result<Client> {
        let stream = IpcStream::connect(server, deadline).await?;
        Ok(Client {
            stream,
            server: server.to_owned(),
        })
    }

    async fn call(&mut self, op: &'static str, msg: Message) -> Result<Message> {
        write_message(&mut self.stream, &msg)
            .await
            .map_err(|e| e.during(op).on(self.server.display()))?;
        match read_message(&mut self.stream).await {
            Ok(Some(Message::Error { kind, message })) => Err(Error::new(kind)
                .during(op)
                .on(self.server.display())
                .detail(format!("sessiond answered: {message}"))),
            Ok(Some(answer)) => Ok(answer),
            Ok(None) => Err(Error::new(ErrorKind::ConnectionReset)
                .during(op)
                .on(self.server.display())
                .detail("sessiond hung up without an answer")),
            Err(e) => Err(e.during(op).on(self.server.display())),
        }
    }

    fn unexpected(&self, op: &'static str, got: &Message) -> Error {
        Error::new(ErrorKind::Protocol)
            .during(op)
            .on(self.server.display())
            .detail(format!("unexpected {:?} answer", got.kind()))
    }

    /// Creates a session (under handle `ash` when given) and returns its
    /// handle. It lives in the daemon, beyond this client.
    pub async fn new_session(&mut self, ash: Option<Ash>) -> Result<Ash> {
        let op = "create session";
        match self.call(op, Message::NewSession { ash }).await? {
            Message::Created { ash } => Ok(ash),
            other => Err(self.unexpected(op, &other)),
        }
    }

    /// Has the daemon spawn `argv` into session `ash`, as this client's
    /// user, with no terminal; returns the pid.
    pub async fn spawn(&mut self, ash: Ash, argv: &[impl AsRef<str>]) -> Result<u32> {
        let op = "spawn into session";
        let argv = argv.iter().map(|a| a.as_ref().to_owned()).collect();
        match self.call(op, Message::Spawn { ash, argv }).await? {
            Message::Spawned { pid } => Ok(pid),
            other => Err(self.unexpected(op, &other)),
        }
    }

    /// Adds the running process `pid` (and its descendants) to session
    /// `ash`; the client must be allowed to signal it.
    pub async fn adopt(&mut self, ash: Ash, pid: u32) -> Result<()> {
        let op = "adopt";
        match self.call(op, Message::Adopt { ash, pid }).await? {
            Message::Done => Ok(()),
            other => Err(self.unexpected(op, &other)),
        }
    }

    /// The daemon's sessions.
    pub async fn list(&mut self) -> Result<Vec<Ash>> {
        let op = "list sessions";
        match self.call(op, Message::List).await? {
            Message::Sessions(ashes) => Ok(ashes),
            other => Err(self.unexpected(op, &other)),
        }
    }

    /// The processes of session `ash`.
    pub async fn members(&mut self, ash: Ash) -> Result<Vec<u32>> {
        let op = "list members";
        match self.call(op, Message::Members { ash }).await? {
            Message::Pids(pids) => Ok(pids),
            other => Err(self.unexpected(op, &other)),
        }
    }

    /// Signals session `ash` on the daemon's node (see [`signal_server`]).
    pub async fn signal(&mut self, ash: Ash, sig: i32, atomic: bool) -> Result<SignalReport> {
        let op = "kill session";
        let msg = Message::Kill {
            ash,
            sig,
            atomic,
            array: None,
            deadline_ms: 0,
        };
        match self.call(op, msg).await? {
            Message::Report(report) => Ok(report),
            other => Err(self.unexpected(op, &other)),
        }
    }

    /// Signals session `ash` on every node of `array` (see [`signal_array`]).
    pub async fn signal_array(
        &mut self,
        array: &str,
        ash: Ash,
        sig: i32,
        atomic: bool,
        deadline: Deadline,
    ) -> Result<ArrayReport> {
        let op = "kill array session";
        let deadline_ms = match deadline.remaining() {
            Some(left) => u32::try_from(left.as_millis()).unwrap_or(u32::MAX).max(1),
            None if deadline.is_never() => u32::MAX,
            None => 1,
        };
        let msg = Message::Kill {
            ash,
            sig,
            atomic,
            array: Some(array.to_owned()),
            deadline_ms,
        };
        match self.call(op, msg).await? {
            Message::ArrayReport(nodes) => Ok(ArrayReport { nodes }),
            other => Err(self.unexpected(op, &other)),
        }
    }

    /// Ends the connection in order.
    pub async fn close(self, deadline: Deadline) -> Result<()> {
        self.stream.close(deadline).await
    }
}

/// `askillash_server`: signals the members of session `ash` on the node of
/// the sessiond at `server` (the default socket when `None`), with the
/// permission rule applied to this process's ids. The whole call, connect
/// included, must finish by `deadline`.
pub async fn signal_server(
    server: Option<&Path>,
    ash: Ash,
    sig: i32,
    deadline: Deadline,
) -> Result<SignalReport> {
    let path = server.map_or_else(default_socket, Path::to_owned);
    deadline
        .run(async {
            let mut client = Client::connect(&path, deadline).await?;
            let report = client.signal(ash, sig, false).await?;
            let _ = client.close(deadline).await;
            Ok(report)
        })
        .await
        .map_err(|e| e.during("kill session").on(path.display()))?
}

/// `askillash_array`: the sessiond at `server` signals session `ash` on
/// every node of `array` in its configuration, over authenticated TCP, and
/// reports each node's result and which did not answer by `deadline`.
///
/// With `array` `"cluster"` (`daemon::CLUSTER_ARRAY`)
/// (`"cluster"`) and a `sessiond --cluster corosync`, the array is the
/// corosync cluster: the request goes out on CPG to every node's sessiond,
/// and the report has one entry per node of corosync's nodelist, those
/// whose sessiond left the group during the call
/// ([`ArrayReport::left`]) or was not there included.
pub async fn signal_array(
    server: Option<&Path>,
    array: &str,
    ash: Ash,
    sig: i32,
    deadline: Deadline,
) -> Result<ArrayReport> {
    let path = server.map_or_else(default_socket, Path::to_owned);
    let mut client = Client::connect(&path, deadline).await?;
    let report = client
        .signal_array(array, ash, sig, false, deadline)
        .await?;
    let _ = client.close(Deadline::NOW).await;
    Ok(report)
}
