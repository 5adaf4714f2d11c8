//! The daemon: `mailboxd`'s whole body, also embeddable in a program.
//!
//! One current-thread runtime is the intended home: the router, every
//! connection's reader and writer then run on one thread, and no message
//! crosses threads on its way through the daemon (on these machines a
//! cross-thread wake-up costs more than the routing itself).
//!
//! # Who may connect
//!
//! On the Unix socket the client's uid comes from `SO_PEERCRED`, and the
//! [`Acl`] checks it. Over TCP ([`DaemonConfig::tcp`]) a client has no uid,
//! so the daemon needs a shared [`Secret`] ([`DaemonConfig::secret`],
//! `mailboxd --secret FILE`) or an explicit
//! [`DaemonConfig::tcp_insecure`]; [`run`] refuses to start with neither.
//! With a secret the daemon's first frame is a challenge (a fresh nonce);
//! the client answers with HMAC-SHA256 over it and its own nonce, the
//! daemon checks it in constant time and proves itself back, and only then
//! is the hello read. A client that answers wrong, late (past
//! [`DaemonConfig::hello_timeout`]) or with anything else is told why,
//! dropped, logged (`TCP client dropped: ...`) and counted among the
//! errors of the [`ShutdownReport`]; nothing it sent reaches the router.
//! The client side is [`ConnectOptions::secret`](crate::ConnectOptions::secret).
//! `docs/mailbox.md` has the frames, the MACs, the refusals and what the
//! handshake does not protect (the frames after it travel in the clear).
//!
//! ```
//! use std::time::Duration;
//! use conn_core::Deadline;
//! use conn_mailbox::{Mailbox, Service, daemon::{DaemonConfig, run}};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let socket = std::env::temp_dir().join(format!("mailboxd-doc-{}.sock", std::process::id()));
//! let config = DaemonConfig::new(&socket);
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let daemon = tokio::spawn(run(config, async { stopped.await.ok(); }));
//! # while !socket.exists() { tokio::task::yield_now().await; }
//!
//! let (mut mbox, me) = Mailbox::connect(&socket, "doc", 0, true, Deadline::after(Duration::from_secs(5))).await?;
//! mbox.join("news", Deadline::NEVER).await?;
//! mbox.multicast(Service::AGREED, &["news"], 1, b"hello").await?;
//! let _join = mbox.receive(Deadline::NEVER).await?;      // membership: we joined
//! let msg = mbox.receive(Deadline::NEVER).await?;        // our own message
//! # let _ = (me, msg);
//! mbox.disconnect(Deadline::NEVER).await?;
//! stop.send(()).unwrap();
//! daemon.await??;
//! # Ok(()) }
//! ```

mod acl;
#[cfg(feature = "corosync")]
mod cluster;
mod cluster_op;
mod conn;
pub(crate) mod fuzzing;
mod outbox;
mod router;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use conn_core::serve::Incoming;
use conn_core::{Error, ShutdownReport, serve};
use conn_ipc::{IpcListener, IpcStream};
use conn_tcp::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

pub use acl::{Acl, MAX_ACL_TEXT};
pub use conn_core::auth::Secret;
pub use conn_core::budget::MemoryBudget;
pub use outbox::QueueLimits;
use router::Router;

/// How long graceful shutdown waits for clients to close in order.
const DRAIN: Duration = Duration::from_secs(3);

/// What a daemon listens on and how it treats clients.
///
/// ```
/// use conn_mailbox::daemon::{DaemonConfig, QueueLimits};
/// let mut config = DaemonConfig::new("/tmp/mbx.sock");
/// config.mode = 0o660;
/// config.queue = QueueLimits { messages: 1000, bytes: 4 << 20 };
/// assert_eq!(config.name, "local");
/// ```
#[derive(Clone, Debug)]
pub struct DaemonConfig {
    /// The Unix socket path.
    pub socket: PathBuf,
    /// The socket file's mode.
    pub mode: u32,
    /// A TCP address to listen on too (clients there have no known uid).
    /// Needs [`secret`](DaemonConfig::secret), or
    /// [`tcp_insecure`](DaemonConfig::tcp_insecure) said out loud:
    /// [`run`] refuses to start otherwise.
    pub tcp: Option<String>,
    /// The shared secret TCP clients must prove they hold before they say
    /// hello (`mailboxd --secret FILE`, read with [`Secret::load`]); see
    /// the module's TCP section. Unix-socket clients never need it.
    pub secret: Option<Secret>,
    /// Serve TCP clients without a secret (`mailboxd --tcp-insecure`):
    /// anyone who can reach the address may join, read and send wherever
    /// no access list stops a client without a uid. Ignored when
    /// [`secret`](DaemonConfig::secret) is set.
    pub tcp_insecure: bool,
    /// The access list, if any. In a cluster the list in force is the
    /// cluster's: this one is proposed to every daemon once this daemon
    /// holds the state, and is in force everywhere until a later one in
    /// the stream; `None` takes the cluster's as it is (see
    /// `docs/cluster.md`).
    pub acl: Option<Acl>,
    /// The daemon's name, the second part of private groups `#name#daemon`.
    pub name: String,
    /// Each client's outbound queue limits.
    pub queue: QueueLimits,
    /// What clients' unfinished frames may hold, each and all together.
    pub budget: MemoryBudget,
    /// How long a new client has to say hello (default 5 s).
    pub hello_timeout: Duration,
    /// How long a frame begun may wait for its next byte before the client
    /// is dropped (default 10 s). A member between frames is never timed out.
    pub stall_timeout: Duration,
    /// Join the daemons of a corosync cluster through this CPG group
    /// (`mailboxd --cluster corosync`; needs the `corosync` feature). The
    /// daemon names must differ across the cluster: a daemon whose name a
    /// running one holds is refused at its state exchange ([`run`] returns
    /// the error naming the holder's node), and the holder goes on. `None`:
    /// one daemon alone.
    pub cluster: Option<String>,
}

impl DaemonConfig {
    /// A daemon on `socket`, mode 0o666, no TCP (no secret), no access list, named
    /// `local`, the default budgets and timeouts.
    pub fn new(socket: impl AsRef<Path>) -> DaemonConfig {
        DaemonConfig {
            socket: socket.as_ref().to_path_buf(),
            mode: 0o666,
            tcp: None,
            secret: None,
            tcp_insecure: false,
            acl: None,
            name: "local".into(),
            queue: QueueLimits::default(),
            budget: MemoryBudget::default(),
            hello_timeout: Duration::from_secs(5),
            stall_timeout: Duration::from_secs(10),
            cluster: None,
        }
    }

    /// `$XDG_RUNTIME_DIR/mailboxd.sock`, else `/tmp/mailboxd.sock`.
    pub fn default_socket() -> PathBuf {
        std::env::var_os("XDG_RUNTIME_DIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp"))
            .join("mailboxd.sock")
    }
}

/// Waits until a daemon accepts connections at `socket` (its socket file
/// appears a moment before it listens), or `deadline` passes.
///
/// The probe connection says nothing and goes at once; the daemon drops it
/// without a word.
pub async fn wait_ready(
    socket: impl AsRef<Path>,
    deadline: conn_core::Deadline,
) -> conn_core::Result<()> {
    let socket = socket.as_ref();
    let probe = async {
        loop {
            match IpcStream::connect(socket, conn_core::Deadline::NEVER).await {
                Ok(conn) => return conn_core::Connection::kill(conn),
                Err(_) => tokio::time::sleep(Duration::from_millis(2)).await,
            }
        }
    };
    deadline
        .run(probe)
        .await
        .map_err(|e| e.during("wait for mailboxd").on(socket.display()))
}

/// Runs a daemon until `shutdown` resolves, then shuts down gracefully:
/// every member of every group is told (cause disconnect), queued frames are
/// sent, connections close in order (or are killed after 3 s).
///
/// [`wait_ready`] tells when clients may connect.
pub async fn run(
    config: DaemonConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> conn_core::Result<ShutdownReport> {
    if !crate::limits::legal_private_name(&config.name) {
        return Err(Error::new(conn_core::ErrorKind::InvalidType)
            .during("start mailboxd")
            .detail(format!("illegal daemon name {:?}", config.name)));
    }
    if let (Some(addr), None, false) = (&config.tcp, &config.secret, config.tcp_insecure) {
        return Err(Error::new(conn_core::ErrorKind::InvalidType)
            .during("start mailboxd")
            .on(format_args!("tcp://{addr}"))
            .detail(
                "TCP clients have no uid to check, so --tcp needs --secret FILE (a secret \
                 file only its owner may read; clients must prove they hold it), or \
                 --tcp-insecure to let anyone who can reach the address join, read and send",
            ));
    }
    let config = Arc::new(config);
    let budget = conn_core::budget::Budget::new(config.budget, crate::wire::READ_ROOM);
    let router = Arc::new(Router::new(config.name.clone(), config.acl.clone()));
    // In a cluster, the state comes first: clients are let in once it is here.
    #[cfg(feature = "corosync")]
    let node = match &config.cluster {
        Some(group) => Some(cluster::Node::join(group, router.clone()).await?),
        None => None,
    };
    #[cfg(not(feature = "corosync"))]
    if config.cluster.is_some() {
        return Err(Error::new(conn_core::ErrorKind::NotSupported)
            .during("start mailboxd")
            .detail("--cluster needs mailboxd built with the `corosync` feature"));
    }
    let ipc = IpcListener::options()
        .mode(config.mode)
        .bind(&config.socket)?;
    let tcp = config.tcp.as_deref().map(TcpListener::bind).transpose()?;
    tracing::info!(socket = %config.socket.display(), "mailboxd listening");
    if let Some(tcp) = &tcp {
        // The bound address, so a port 0 can be found.
        tracing::info!("mailboxd listening on tcp {}", tcp.local_addr());
        if config.secret.is_none() {
            tracing::warn!(
                "TCP clients are not authenticated (--tcp-insecure): anyone who can reach {} \
                 may join, read and send",
                tcp.local_addr()
            );
        }
    }

    // The router tells everyone first; only then do connections end.
    let stop = CancellationToken::new();
    let watcher = {
        let (stop, router) = (stop.clone(), router.clone());
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!(clients = router.clients(), "mailboxd shutting down");
            router.shutdown();
            stop.cancel();
        })
    };

    let ipc_serve = {
        let (router, config, budget) = (router.clone(), config.clone(), budget.clone());
        serve(
            ipc,
            tower::service_fn(move |inc: Incoming<IpcStream>| {
                let (router, config, budget) = (router.clone(), config.clone(), budget.clone());
                async move {
                    let id = inc.id();
                    let (conn, graceful) = inc.into_parts();
                    let peer = conn::Peer::Local {
                        uid: conn.peer_cred().ok().map(|c| c.uid),
                    };
                    conn::serve_client(conn, graceful, peer, id, router, config, budget).await
                }
            }),
        )
        .with_graceful_shutdown(stop.clone().cancelled_owned(), DRAIN)
    };
    let serving = {
        let (router, stop) = (router.clone(), stop.clone());
        async move {
            // One listener breaking ends both, as the signal would.
            let ipc_serve = serve::stop_all_on_failure(ipc_serve, stop.clone());
            Ok::<_, Error>(match tcp {
                None => ipc_serve.await?,
                Some(tcp) => {
                    let (router, config) = (router.clone(), config.clone());
                    let tcp_serve = serve(
                        tcp,
                        tower::service_fn(move |inc: Incoming<TcpStream>| {
                            let (router, config, budget) =
                                (router.clone(), config.clone(), budget.clone());
                            async move {
                                let id = inc.id();
                                let (conn, graceful) = inc.into_parts();
                                let peer = conn::Peer::Tcp {
                                    addr: conn.peer_addr(),
                                };
                                conn::serve_client(conn, graceful, peer, id, router, config, budget)
                                    .await
                            }
                        }),
                    )
                    .with_graceful_shutdown(stop.clone().cancelled_owned(), DRAIN);
                    let tcp_serve = serve::stop_all_on_failure(tcp_serve, stop.clone());
                    let (a, b) = tokio::join!(ipc_serve, tcp_serve);
                    let (mut a, b) = (a?, b?);
                    a.merge_listener(b);
                    a
                }
            })
        }
    };
    #[cfg(feature = "corosync")]
    let report = match node {
        None => serving.await?,
        Some(node) => {
            let clustered = async {
                let e = node.run(stop.clone()).await.err()?;
                // corosync went away, or a state exchange gave our name to
                // another daemon: this one cannot order anything more.
                tracing::error!(error = %e, "mailboxd lost its cluster; shutting down");
                router.shutdown();
                stop.cancel();
                Some(e)
            };
            match tokio::join!(serving, clustered) {
                // Refused for our name: the error, not a clean report.
                (_, Some(e)) if e.kind() == conn_core::ErrorKind::AlreadyExists => return Err(e),
                (report, _) => report?,
            }
        }
    };
    #[cfg(not(feature = "corosync"))]
    let report = serving.await?;
    watcher.abort();
    Ok(report)
}
