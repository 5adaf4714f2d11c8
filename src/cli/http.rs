//! `connkit http --listen URL`: the HTTP server over any transport.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use std::future::IntoFuture;
use std::path::Path;

use super::listeners::{self, Listeners, Origin, SocketFiles};
use connkit::core::handover;
use connkit::core::serve::Server;
use connkit::core::{Endpoint, Registry, Result, serve};
use connkit::http::{Http, Protocols, Routes, Stats};

/// The server's settings as `connkit http` flags ([`Http`]'s defaults
/// where a flag is not given).
#[derive(clap::Args, Debug, Clone)]
pub struct SettingsArgs {
    /// How long a client may take to send a request's head (and a new
    /// connection its first request); 0: no limit.
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    pub header_timeout_ms: u64,
    /// Close a connection that has had no request for this long; 0: never.
    #[arg(long, value_name = "MS", default_value_t = 60_000)]
    pub idle_timeout_ms: u64,
    /// Ping HTTP/2 connections this often (closing those that do not
    /// answer within the same time); 0: no pings.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub h2_ping_ms: u64,
    /// Connections served at once; past it accept waits [default: the
    /// descriptor limit less 64].
    #[arg(long, value_name = "N")]
    pub max_conns: Option<usize>,
    /// Streams one HTTP/2 connection may have open at once.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_streams: u32,
    /// The largest request head accepted (HTTP/1 answers 431 past it).
    #[arg(long, value_name = "BYTES", default_value_t = 65_536)]
    pub max_header_bytes: usize,
    /// Speak HTTP/1.1 only.
    #[arg(long, conflicts_with = "http2_only")]
    pub http1_only: bool,
    /// Speak HTTP/2 (prior knowledge) only.
    #[arg(long)]
    pub http2_only: bool,
}

impl SettingsArgs {
    /// The server these flags ask for. Raises the process's soft descriptor
    /// limit to its hard limit first (as Go's runtime does), so the default
    /// connection limit is the machine's, not a shell's 1024.
    pub fn to_http(&self) -> Http {
        raise_fd_limit();
        let ms = |ms: u64| (ms > 0).then(|| Duration::from_millis(ms));
        let mut http = Http::new()
            .header_read_timeout(ms(self.header_timeout_ms))
            .idle_timeout(ms(self.idle_timeout_ms))
            .http2_keep_alive(
                ms(self.h2_ping_ms),
                Duration::from_millis(self.h2_ping_ms.max(1)),
            )
            .max_concurrent_streams(self.max_streams)
            .max_header_bytes(self.max_header_bytes)
            .protocols(if self.http1_only {
                Protocols::Http1
            } else if self.http2_only {
                Protocols::Http2
            } else {
                Protocols::Auto
            });
        if let Some(n) = self.max_conns {
            http = http.max_connections(n);
        }
        http
    }
}

fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(error = %e, "could not raise the descriptor limit");
        }
    }
}

/// The environment variable of a test hook: a successor that received its
/// predecessor's listeners pauses this many milliseconds before it
/// confirms (the tests kill it there).
pub const PAUSE_BEFORE_CONFIRM: &str = "CONNKIT_HANDOVER_PAUSE_BEFORE_CONFIRM_MS";

/// How long a successor waits for its predecessor to release the offer's
/// path after confirming.
const RELEASE_WITHIN: Duration = Duration::from_secs(10);

/// Serves `/`, `/slow?ms=N`, `/bytes?n=N` and `/stats` (and with feature
/// `tonic` the gRPC health service) on `listen` until SIGTERM or
/// Ctrl-C, then shuts down gracefully within `drain` and prints the report.
///
/// `per_core: Some(n)` serves on n threads, each with its own current-thread
/// runtime and listener ([`Server::per_core`]); `Some(0)` means one per core.
///
/// The listeners come, in this order of preference, from a live
/// predecessor offering on `handover` (see [`connkit::core::handover`]),
/// from systemd (`LISTEN_FDS`, `LISTEN_FDNAMES`), or from binding `listen`.
/// With `handover`, the server then offers its own listeners on that path;
/// a successor that takes them and confirms ends this server as SIGTERM
/// would: it stops accepting, drains within `drain` and prints its report.
pub async fn run(
    http: &Http,
    registry: &Registry,
    listen: &str,
    drain: Duration,
    per_core: Option<usize>,
    handover: Option<&Path>,
    json: bool,
) -> Result<()> {
    let server = per_core_server(per_core);
    let threads = server.map_or(1, |s| s.threads());
    let endpoint = Endpoint::parse(listen)?;
    let inherited = match handover {
        Some(path) => handover::take(path).await?,
        None => None,
    };
    let systemd = connkit::core::activation::listen_fds_with_names()?;
    let (listeners, confirmation, origin) = match inherited {
        Some(received) => {
            let pid = received.confirmation.predecessor();
            say(format_args!(
                "received {} listener(s) from pid {pid}",
                received.listeners.len()
            ));
            match listeners::adopt(&endpoint, received.listeners, threads, Origin::Predecessor) {
                Ok(l) => (
                    l,
                    Some(received.confirmation),
                    format!(" (taken over from pid {pid})"),
                ),
                Err(e) => {
                    let _ = received.confirmation.refuse(e.to_string()).await;
                    return Err(e);
                }
            }
        }
        None if !systemd.is_empty() => {
            let names: Vec<String> = systemd.iter().map(|n| n.name.clone()).collect();
            let l = listeners::adopt(&endpoint, systemd, threads, Origin::Systemd)?;
            (l, None, format!(" (from systemd: {})", names.join(", ")))
        }
        None if handover.is_some() => (listeners::bind(&endpoint, threads)?, None, String::new()),
        None => {
            // No handover: any transport the registry knows.
            let listeners = match server {
                None => vec![registry.bind(listen).await?],
                Some(server) => registry.bind_per_core(listen, server.threads()).await?,
            };
            let endpoint = connkit::core::Listener::local_endpoint(&listeners[0]);
            let l = listeners::Listeners {
                listeners,
                endpoint,
                offered: Vec::new(),
                files: SocketFiles::default(),
            };
            (l, None, String::new())
        }
    };
    let Listeners {
        listeners: serving,
        endpoint: served,
        offered,
        files,
    } = listeners;

    let stats = Arc::new(Stats::default());
    let (app, health) = app(stats.clone());
    let handler = stats.count_connections(http.handler(app));
    let (handed_tx, handed_rx) = tokio::sync::oneshot::channel::<i32>();
    let stop_offering = tokio_util::sync::CancellationToken::new();
    let signal = {
        let stop_offering = stop_offering.clone();
        let shutdown = shutdown_signal(drain, health, handed_rx);
        async move {
            shutdown.await;
            stop_offering.cancel();
        }
    };
    let threads_note = match server {
        Some(_) => format!(" ({} threads, one runtime each)", serving.len()),
        None => String::new(),
    };
    // The listeners accept from here on (the serve loop polls them as soon
    // as this task waits); only then is a predecessor told to stop.
    let serving = match server {
        None => serve(serving.into_iter().next().expect("one listener"), handler)
            .with_graceful_shutdown(signal, drain)
            .into_future(),
        Some(server) => server
            .serve_each(serving, handler)
            .with_graceful_shutdown(signal, drain)
            .into_future(),
    };
    let handing = async {
        if let Some(confirmation) = confirmation {
            if let Some(ms) = std::env::var(PAUSE_BEFORE_CONFIRM)
                .ok()
                .and_then(|ms| ms.parse().ok())
            {
                say(format_args!(
                    "pausing {ms} ms before confirming ({PAUSE_BEFORE_CONFIRM})"
                ));
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            match confirmation.confirm(RELEASE_WITHIN).await {
                Ok(()) => files.reclaim(),
                // Serving all the same: the listeners are this process's.
                Err(e) => {
                    files.reclaim();
                    say(format_args!("handover not confirmed cleanly: {e}"));
                }
            }
        }
        say(format_args!("listening on {served}{origin}{threads_note}"));
        if let Some(path) = handover {
            offer(path, offered, &files, handed_tx, &stop_offering).await;
        }
        std::future::pending::<()>().await;
    };
    tokio::pin!(serving);
    let report = tokio::select! {
        report = &mut serving => report?,
        () = handing => unreachable!("the handover side never ends on its own"),
    };
    say_report(report, json)
}

/// `shutdown report: REPORT`, as text or (`json`) one JSON object; then
/// the listener's failure, when that and not the signal ended serving, as
/// the command's error.
pub(super) fn say_report(report: connkit::core::ShutdownReport, json: bool) -> Result<()> {
    if json {
        match serde_json::to_string(&report) {
            Ok(line) => say(format_args!("shutdown report: {line}")),
            Err(e) => say(format_args!("shutdown report: (not as JSON: {e}) {report}")),
        }
    } else {
        say(format_args!("shutdown report: {report}"));
    }
    match report.listener_failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Offers `offered` on `path` until a successor takes them (then leaves the
/// socket files to it and tells the serve loop by `handed`) or `stop`
/// fires; each refused or abandoned attempt is told on stdout.
async fn offer(
    path: &Path,
    offered: Vec<connkit::core::activation::NamedFd>,
    files: &SocketFiles,
    handed: tokio::sync::oneshot::Sender<i32>,
    stop: &tokio_util::sync::CancellationToken,
) {
    let mut offer = match handover::Offer::bind(path, offered) {
        Ok(offer) => offer,
        Err(e) => {
            say(format_args!("not offering a handover: {e}"));
            return;
        }
    };
    say(format_args!(
        "offering the listeners to a successor on {}",
        path.display()
    ));
    loop {
        let attempt = tokio::select! {
            () = stop.cancelled() => return,
            attempt = offer.next() => attempt,
        };
        match attempt {
            Ok(handover::Attempt::Taken(taken)) => {
                let pid = taken.pid();
                files.leave();
                offer.release(taken);
                let _ = handed.send(pid);
                return;
            }
            Ok(handover::Attempt::Refused { why, .. }) => {
                say(format_args!("refused a successor: {why}"))
            }
            Ok(handover::Attempt::Declined { pid, why }) => say(format_args!(
                "successor pid {pid} declined the listeners: {why}"
            )),
            Ok(handover::Attempt::Abandoned { pid, error }) => say(format_args!(
                "successor pid {pid} went away before confirming ({error}); still serving"
            )),
            Err(e) => {
                say(format_args!(
                    "the handover offer failed, no more successors: {e}"
                ));
                return;
            }
        }
    }
}

/// The per-core server `--per-core N` asks for: none without the option,
/// one thread per core for N = 0.
pub(super) fn per_core_server(per_core: Option<usize>) -> Option<Server> {
    per_core.map(|n| match n {
        0 => Server::default(),
        n => Server::per_core(n),
    })
}

/// What `connkit http` serves: the routes, and with feature `tonic` the
/// gRPC health service `grpc.health.v1.Health` beside them on the same
/// listener (gRPC requests to it, the rest to the routes).
#[cfg(feature = "tonic")]
pub(super) type App = connkit::http::tonic::GrpcOr<tonic::service::Routes, Routes>;
#[cfg(not(feature = "tonic"))]
pub(super) type App = Routes;

/// What the shutdown tells before the drain: the health service's reporter.
#[cfg(feature = "tonic")]
pub(super) type Health = tonic_health::server::HealthReporter;
#[cfg(not(feature = "tonic"))]
pub(super) type Health = ();

pub(super) fn app(stats: Arc<Stats>) -> (App, Health) {
    let routes = Routes::new(stats);
    #[cfg(feature = "tonic")]
    {
        let (reporter, health) = tonic_health::server::health_reporter();
        let grpc = tonic::service::Routes::new(health);
        (connkit::http::tonic::GrpcOr::new(grpc, routes), reporter)
    }
    #[cfg(not(feature = "tonic"))]
    (routes, ())
}

/// Resolves on SIGTERM or Ctrl-C, saying that the drain begins. With the
/// health service, it first says `NOT_SERVING` and ends the open `Watch`
/// streams, so watchers learn of the shutdown before connections close and
/// do not hold the drain.
///
/// `handed` resolving with a successor's pid (a handover) begins the same
/// drain; a dropped sender never does.
#[cfg_attr(not(feature = "tonic"), allow(unused_mut, unused_variables))]
pub(super) fn shutdown_signal(
    drain: Duration,
    mut health: Health,
    handed: tokio::sync::oneshot::Receiver<i32>,
) -> impl std::future::Future<Output = ()> {
    // Installed now, before the server says it listens.
    let terminated = super::terminate_signal();
    async move {
        let successor = tokio::select! {
            () = terminated => None,
            Ok(pid) = handed => Some(pid),
        };
        #[cfg(feature = "tonic")]
        connkit::http::tonic::health_draining(&mut health, &[]).await;
        match successor {
            None => say(format_args!("shutting down, draining for up to {drain:?}")),
            Some(pid) => say(format_args!(
                "handed the listeners over to pid {pid}: not accepting any more, draining for up to {drain:?}"
            )),
        }
    }
}

/// One line of progress on stdout; a closed stdout must not stop the server.
pub(super) fn say(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "connkit http: {line}").and_then(|()| out.flush());
}
