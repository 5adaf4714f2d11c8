//! `sessiond`: one daemon per machine that holds sessions for its clients
//! (Array Services' `arrayd`, for sessions).
//!
//! * Clients talk to it on a Unix socket ([`default_socket`](crate::client::default_socket),
//!   mode 0666: anyone may ask, the permission rule decides). Who asks
//!   comes from `SO_PEERCRED`. sessiond runs as root, so it is never wider
//!   than the kernel: a kill or an adoption obeys Linux's `kill(2)` rule
//!   per process (the caller's real or effective uid against the
//!   process's real or saved uid; root may signal anyone), unless the
//!   configuration says `permission = "array-services"`, which also
//!   matches the process's effective uid (see [`Rule`](crate::Rule)).
//!   Members the caller may not signal are reported denied. A spawned
//!   command runs as the client's user and group.
//! * No session ever takes in or signals pid 0 or 1, a kernel thread,
//!   sessiond itself or one of its ancestors, whoever asks: adopt refuses
//!   (`EINVAL` for pid 0 or a thread id, `EPERM` otherwise) and a kill of a
//!   session holding one sends nothing. An adoption checks the process and
//!   every descendant it would take, and moves nothing if one fails.
//! * A session belongs to the uid that created it: only that uid and root
//!   may spawn into, adopt into, list the members of or kill it, and `list`
//!   shows a non-root client only its own. A non-root uid may hold
//!   `max_sessions_per_uid` sessions (default
//!   [`DEFAULT_SESSION_LIMIT`]); more are refused (`EAGAIN`). A session
//!   with no process is retired (its cgroup removed): one whose processes
//!   all exited at the next sweep, one that never got a process once it is
//!   older than `empty_session_grace_ms` (default 60 s). The sweep is one
//!   pass over all sessions every `sweep_ms` (default 1 s), not a watch
//!   per session.
//! * With `listen` and `secret_file` configured, peer daemons reach it over
//!   TCP to kill on this node for an array-wide kill (see `remote`). The
//!   secret file must be private to its owner (mode 600, as ssh wants a
//!   private key), or sessiond refuses to start.
//! * Socket activation: listening sockets passed by a service manager
//!   (`LISTEN_FDS`) are used as they are: a Unix-domain one in place of
//!   `--socket`, an inet one in place of `listen`.
//! * With `--cluster corosync` (cargo feature `corosync`) it joins the CPG
//!   group [`CLUSTER_GROUP`] through the local corosync, and the array
//!   named [`CLUSTER_ARRAY`] is the whole cluster: a kill goes out on CPG
//!   to every node's sessiond, and the report names every node of
//!   corosync's nodelist, with those that did not answer by the deadline or
//!   left the group during the call (see `cluster`). Both ways share one
//!   request and one report ([`crate::wire::NodeResult`]).
//! * A client sending bytes that are not a frame is logged and dropped;
//!   the daemon goes on. [`run`]'s `shutdown` future (SIGTERM or SIGINT in
//!   the binaries) shuts it down gracefully through conn-core's `serve`,
//!   and one `ShutdownReport` of clients and peers comes back.

mod array;
mod auth;
#[cfg(feature = "corosync")]
mod cluster;
mod config;
pub(crate) mod fuzzing;
mod local;
mod remote;
mod state;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use conn_core::{Result, ShutdownReport, serve};
use conn_ipc::IpcListener;
use conn_tcp::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::service_fn;

pub use array::CLUSTER_ARRAY;
pub use config::{Config, DEFAULT_SESSION_LIMIT, MIN_SECRET, Node};

/// The CPG group every `sessiond --cluster corosync` joins.
pub const CLUSTER_GROUP: &str = "connkit-sessiond";

/// Which cluster a sessiond joins, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ClusterKind {
    /// corosync's closed process groups, through the local corosync (needs
    /// the `corosync` cargo feature).
    Corosync,
}
use state::Daemon;

/// How a sessiond is started: its configuration plus command-line
/// overrides.
///
/// ```
/// use signal_session::daemon::Options;
///
/// let options = Options { socket: Some("/run/user/1000/sessiond.sock".into()), ..Options::default() };
/// assert!(options.config.arrays.is_empty());  // no arrays: this node only
/// ```
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The configuration (from a file, or empty).
    pub config: Config,
    /// Overrides `config.socket`.
    pub socket: Option<PathBuf>,
    /// Overrides `config.listen`.
    pub listen: Option<String>,
    /// Join this cluster: its nodes are then the array [`CLUSTER_ARRAY`].
    pub cluster: Option<ClusterKind>,
}

/// How long shutdown waits for open connections.
const DRAIN: Duration = Duration::from_secs(2);

/// Runs a sessiond until `shutdown` resolves, then drains its clients and
/// peers (for up to 2 s each) and returns one report of both listeners
/// ([`ShutdownReport::merge_listener`]). Prints `sessiond listening on
/// ipc:PATH` (and `... on tcp:ADDR`) on stdout once it accepts, so whoever
/// started it knows where it is, a port 0 resolved. The same shape as
/// mailboxd's `conn_mailbox::daemon::run`; [`crate::cli::run_daemon`] runs
/// it until SIGTERM or SIGINT and prints the report.
pub async fn run(
    options: Options,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<ShutdownReport> {
    let mut config = options.config;
    let socket = options
        .socket
        .or(config.socket.take())
        .unwrap_or_else(crate::client::default_socket);
    if let Some(listen) = options.listen {
        config.listen = Some(listen);
    }
    let secret = config.secret()?;
    let stop = CancellationToken::new();
    // However run ends, the cluster thread (if any) leaves the group.
    let _leave = stop.clone().drop_guard();
    // The cluster first: a sessiond that cannot join fails before it
    // takes its socket.
    #[cfg(not(feature = "corosync"))]
    if options.cluster.is_some() {
        return Err(conn_core::Error::new(conn_core::ErrorKind::NotSupported)
            .during("join the cluster")
            .detail("this sessiond was built without the `corosync` cargo feature"));
    }
    #[cfg(feature = "corosync")]
    let (link, calls) = match options.cluster {
        Some(_) => {
            if config.arrays.contains_key(CLUSTER_ARRAY) {
                return Err(conn_core::Error::new(conn_core::ErrorKind::InvalidType)
                    .during("start sessiond")
                    .on(format_args!("array {CLUSTER_ARRAY:?}"))
                    .detail(
                        "with --cluster the name means the cluster; rename the configured array",
                    ));
            }
            let (link, calls) = tokio::sync::mpsc::unbounded_channel();
            (Some(link), Some(calls))
        }
        None => (None, None),
    };
    #[cfg(not(feature = "corosync"))]
    let (link, cluster) = (None, None::<std::thread::JoinHandle<()>>);
    let daemon = Arc::new(Daemon::new(config, secret, link));
    #[cfg(feature = "corosync")]
    let cluster = match calls {
        Some(calls) => Some(join_cluster(daemon.clone(), calls, stop.clone())?),
        None => None,
    };
    let passed = Passed::take()?;
    let (ipc, ipc_at) = match passed.ipc {
        Some(ipc) => {
            let at = ipc.endpoint().to_string();
            (ipc, at)
        }
        None => (
            IpcListener::options().mode(0o666).bind(&socket)?,
            format!("ipc:{}", socket.display()),
        ),
    };
    let tcp = match (passed.tcp, &daemon.config.listen, &daemon.secret) {
        (Some(tcp), _, Some(_)) => Some(tcp),
        (None, Some(addr), Some(_)) => Some(TcpListener::bind(addr.as_str())?),
        (Some(tcp), _, None) => {
            let addr = tcp.local_addr();
            tracing::warn!(
                "not listening on the passed socket {addr}: no secret_file, and peers must authenticate"
            );
            None
        }
        (None, Some(addr), None) => {
            tracing::warn!("not listening on {addr}: no secret_file, and peers must authenticate");
            None
        }
        (None, None, _) => None,
    };
    announce(format_args!("sessiond listening on {ipc_at}"));
    if let Some(tcp) = &tcp {
        announce(format_args!(
            "sessiond listening on tcp:{}",
            tcp.local_addr()
        ));
    }

    let trigger = stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = shutdown => tracing::info!("shutting down"),
            // Ended otherwise (a lost cluster): nothing more to wait for.
            () = trigger.cancelled() => {}
        }
        trigger.cancel();
    });

    tokio::spawn(sweep(daemon.clone(), stop.clone()));

    let d = daemon.clone();
    let budget = conn_core::budget::Budget::new(
        conn_core::budget::MemoryBudget {
            per_client: daemon.config.client_buffer(),
            total: daemon.config.client_buffers_total(),
        },
        crate::wire::io::READ_ROOM,
    );
    let local = serve(
        ipc,
        service_fn(move |incoming| local::serve_client(d.clone(), budget.clone(), incoming)),
    )
    .with_graceful_shutdown(stop.clone().cancelled_owned(), DRAIN);
    // One listener breaking ends both, as the signal would.
    let local = tokio::spawn(conn_core::serve::stop_all_on_failure(local, stop.clone()));
    let remote = tcp.map(|tcp| {
        let d = daemon.clone();
        let serving = serve(
            tcp,
            service_fn(move |incoming| remote::serve_peer(d.clone(), incoming)),
        )
        .with_graceful_shutdown(stop.clone().cancelled_owned(), DRAIN);
        tokio::spawn(conn_core::serve::stop_all_on_failure(serving, stop.clone()))
    });
    let mut report = local.await.map_err(conn_core::Error::from)??;
    if let Some(remote) = remote {
        report.merge_listener(remote.await.map_err(conn_core::Error::from)??);
    }
    if let Some(cluster) = cluster {
        // `stop` has fired: the thread leaves the group and ends.
        let _ = tokio::task::spawn_blocking(move || cluster.join()).await;
    }
    Ok(report)
}

/// The listening sockets a service manager passed (`LISTEN_FDS`, see
/// [`conn_core::activation`]): a Unix-domain one is the clients' socket in
/// place of `--socket`, an inet one the peers' TCP listener in place of
/// `listen`. With it a socket unit (or a test) owns the address, so nothing
/// races sessiond for it.
#[derive(Default)]
struct Passed {
    ipc: Option<IpcListener>,
    tcp: Option<TcpListener>,
}

impl Passed {
    fn take() -> Result<Passed> {
        use rustix::net::AddressFamily;
        let mut passed = Passed::default();
        for named in conn_core::activation::listen_fds_with_names()? {
            let family = rustix::net::getsockname(&named.fd)
                .map(|addr| addr.address_family())
                .map_err(|e| {
                    conn_core::Error::from(std::io::Error::from(e))
                        .during("take passed sockets")
                        .on(format_args!("LISTEN_FDS socket {:?}", named.name))
                })?;
            let taken = match family {
                AddressFamily::UNIX if passed.ipc.is_none() => {
                    passed.ipc = Some(IpcListener::from_fd(named.fd)?);
                    true
                }
                AddressFamily::INET | AddressFamily::INET6 if passed.tcp.is_none() => {
                    passed.tcp = Some(TcpListener::from_fd(named.fd)?);
                    true
                }
                _ => false,
            };
            if !taken {
                return Err(conn_core::Error::new(conn_core::ErrorKind::InvalidType)
                    .during("take passed sockets")
                    .on(format_args!("LISTEN_FDS socket {:?}", named.name))
                    .detail("sessiond takes one Unix-domain and one TCP listening socket; this one is neither or a second"));
            }
        }
        Ok(passed)
    }
}

/// Retires empty sessions every `sweep_ms` until `stop`: one pass over all
/// sessions per period, however many there are (see `Daemon::sweep`).
async fn sweep(daemon: Arc<Daemon>, stop: CancellationToken) {
    let mut every = tokio::time::interval(daemon.config.sweep_every());
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        daemon.sweep(std::time::Instant::now());
    }
}

/// Joins the cluster's group; says so on stdout.
#[cfg(feature = "corosync")]
fn join_cluster(
    daemon: Arc<Daemon>,
    calls: tokio::sync::mpsc::UnboundedReceiver<array::ClusterCall>,
    stop: CancellationToken,
) -> Result<std::thread::JoinHandle<()>> {
    let (me, thread) = cluster::start(daemon, calls, stop)?;
    announce(format_args!(
        "sessiond joined cpg:{} as node {} pid {}",
        cluster::GROUP,
        me.node,
        me.pid
    ));
    Ok(thread)
}

/// A line on stdout for whoever started the daemon; one who stopped
/// listening (a closed pipe) is no reason to fail.
fn announce(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}
