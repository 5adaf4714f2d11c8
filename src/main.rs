//! The `connkit` command: `connkit demo` and friends.

mod cli;
mod demo;

use std::time::Duration;

use clap::{Parser, Subcommand};

/// One connection lifecycle over many transports.
#[derive(Parser, Debug)]
#[command(name = "connkit", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Shows the lifecycle, the layers and graceful shutdown, with no set-up.
    Demo,
    /// Serves HTTP/1.1 and HTTP/2 (`/`, `/slow?ms=N`, `/bytes?n=N`,
    /// `/stats`) on any transport until SIGTERM or Ctrl-C, then shuts down
    /// gracefully and prints the report.
    Http {
        #[command(flatten)]
        settings: cli::http::SettingsArgs,
        /// Where to listen, e.g. ipc:///tmp/x.sock or mem://name. With --tap
        /// or --tun, the userspace stack's utcp:// address, e.g.
        /// utcp://10.7.0.2:8080 or utcp://[fd00::2]:8080; give one of each
        /// family (same port) for a dual-stack server.
        #[arg(long, required = true)]
        listen: Vec<String>,
        /// How long in-flight requests may take to finish after the signal.
        #[arg(long, default_value_t = 5000)]
        drain_ms: u64,
        /// Serve on N threads, each with its own runtime, listener and
        /// connections (N omitted: one per core).
        #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "0")]
        per_core: Option<usize>,
        /// Zero-downtime restart: take the listeners from a server offering
        /// them on this Unix socket (if one is live), then offer them here
        /// to the next successor; a successor that takes them ends this
        /// server with a graceful drain (tcp:// and ipc:// only).
        #[arg(long, value_name = "PATH", conflicts_with_all = ["tap", "tun"])]
        handover: Option<std::path::PathBuf>,
        /// Serve utcp:// from a userspace stack on this TAP device
        /// (Ethernet), created in this namespace (needs root).
        #[arg(
            long,
            value_name = "NAME",
            requires = "tap_host",
            conflicts_with = "tun"
        )]
        tap: Option<String>,
        /// The kernel side's address and prefix on the TAP device, e.g.
        /// 10.7.0.1/24 or fd00::1/64; give one of each family for a
        /// dual-stack server.
        #[arg(long, value_name = "CIDR", requires = "tap")]
        tap_host: Vec<String>,
        /// Serve utcp:// from a userspace stack on this TUN device (bare IP
        /// packets, no Ethernet, ARP or NDP), created in this namespace
        /// (needs root).
        #[arg(long, value_name = "NAME", requires = "tun_host")]
        tun: Option<String>,
        /// The kernel side's address and prefix on the TUN device, e.g.
        /// 10.7.0.1/24 or fd00::1/64; give one of each family for a
        /// dual-stack server.
        #[arg(long, value_name = "CIDR", requires = "tun")]
        tun_host: Vec<String>,
        /// Print the shutdown report as one JSON line (`shutdown report:
        /// {...}`, see `conn_core::ShutdownReport`) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Fetches a URL through the connkit client stack and prints the body;
    /// exits non-zero with a one-line reason unless the status is 2xx.
    Get {
        /// Send the request over this endpoint (e.g. ipc:///tmp/x.sock)
        /// instead of TCP to the URL's host.
        #[arg(long)]
        via: Option<String>,
        /// Give up after this many milliseconds (connect and response).
        #[arg(long, default_value_t = 10_000)]
        timeout_ms: u64,
        /// Speak HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1.
        #[arg(long)]
        http2: bool,
        /// The URL to fetch, e.g. http://localhost/stats.
        url: String,
    },
    /// Sessions of processes signalled as one, through sessiond: new,
    /// spawn, adopt, list, members, kill, daemon.
    Session(cli::session::SessionArgs),
    /// A mailboxd client: interactive (join, leave, send, receive, quit on
    /// stdin) without a subcommand, else one scriptable step.
    Mailbox {
        /// The daemon's socket, or tcp://HOST:PORT for a mailboxd with --tcp.
        #[arg(long, default_value_os_t = conn_mailbox::daemon::DaemonConfig::default_socket())]
        daemon: std::path::PathBuf,
        /// Over tcp://, the file holding the daemon's secret (mode 600, as
        /// mailboxd --secret) [default: $CONNKIT_MAILBOX_SECRET_FILE].
        #[arg(long, value_name = "FILE")]
        secret: Option<std::path::PathBuf>,
        /// The private name (at most 10 characters) [default: c<pid>].
        #[arg(long)]
        name: Option<String>,
        /// Print events as JSON, one object a line.
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        step: Option<MailboxStep>,
    },
}

#[derive(Subcommand, Debug)]
enum MailboxStep {
    /// Join groups and stay a member, printing events, until stdin closes.
    Join {
        /// The groups.
        #[arg(required = true)]
        groups: Vec<String>,
    },
    /// Send TEXT to GROUP (AGREED) and disconnect.
    Send {
        /// The group or private group.
        group: String,
        /// The message.
        text: String,
    },
    /// Join GROUP, print COUNT events (the own join included), then leave.
    Listen {
        /// The group.
        group: String,
        /// How many events to print.
        #[arg(long, default_value_t = 1)]
        count: usize,
    },
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let registry = connkit::registry();
    let result = match cli.command {
        // Its own exit statuses: 1 when some member was not reached.
        Command::Session(args) => return runtime.block_on(cli::session::run(args)),
        Command::Demo => runtime
            .block_on(demo::run(&mut std::io::stdout()))
            .map_err(|e| e.to_string()),
        Command::Http {
            settings,
            listen,
            drain_ms,
            per_core,
            tap,
            tap_host,
            tun,
            tun_host,
            handover,
            json,
        } => runtime
            .block_on(async {
                use cli::http_link::{Kind, Plan};
                let http = settings.to_http();
                let drain = Duration::from_millis(drain_ms);
                let link = match (tap, tun) {
                    (Some(tap), _) => Some((Kind::Tap, tap, tap_host)),
                    (None, Some(tun)) => Some((Kind::Tun, tun, tun_host)),
                    (None, None) => None,
                };
                match (link, listen.as_slice()) {
                    (Some((kind, name, hosts)), listens) => {
                        let plan = Plan::parse(kind, listens, &hosts)?;
                        cli::http_link::run(&http, kind, &name, plan, drain, per_core, json).await
                    }
                    (None, [listen]) => {
                        cli::http::run(
                            &http,
                            &registry,
                            listen,
                            drain,
                            per_core,
                            handover.as_deref(),
                            json,
                        )
                        .await
                    }
                    (None, _) => Err(connkit::core::Error::new(
                        connkit::core::ErrorKind::InvalidType,
                    )
                    .during("http")
                    .detail("--listen is given once, but for a dual-stack --tap or --tun server")),
                }
            })
            .map_err(|e| e.to_string()),
        Command::Get {
            via,
            timeout_ms,
            http2,
            url,
        } => runtime.block_on(cli::get::run(
            &registry,
            &url,
            via.as_deref(),
            Duration::from_millis(timeout_ms),
            http2,
        )),
        Command::Mailbox {
            daemon,
            name,
            secret,
            json,
            step,
        } => {
            use cli::mailbox::Step;
            let name = name.unwrap_or_else(|| format!("c{}", std::process::id() % 10_000_000));
            let step = match step {
                None => Step::Interactive,
                Some(MailboxStep::Join { groups }) => Step::Join(groups),
                Some(MailboxStep::Send { group, text }) => Step::Send { group, text },
                Some(MailboxStep::Listen { group, count }) => Step::Listen { group, count },
            };
            let secret = cli::mailbox::secret_file(secret);
            runtime.block_on(cli::mailbox::run(
                &daemon,
                &name,
                secret.as_deref(),
                json,
                step,
            ))
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("connkit: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
