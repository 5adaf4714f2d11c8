//! `mailboxd`: the group-mailbox daemon.

use std::path::PathBuf;

use clap::Parser;
use conn_mailbox::daemon::{Acl, DaemonConfig, MemoryBudget, QueueLimits, Secret, run};

/// The group-mailbox daemon (Spread's model, one machine).
#[derive(Parser, Debug)]
#[command(name = "mailboxd", version)]
struct Args {
    /// The Unix socket to listen on [default: $XDG_RUNTIME_DIR/mailboxd.sock, else /tmp/mailboxd.sock].
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Also listen on this TCP address (clients there have no known uid).
    /// Needs --secret, or --tcp-insecure.
    #[arg(long, value_name = "ADDR")]
    tcp: Option<String>,
    /// The secret TCP clients must prove they hold (HMAC-SHA256 challenge
    /// over fresh nonces) before they may say hello: a file only its owner
    /// may read (mode 600), 16 bytes or more.
    #[arg(long, value_name = "FILE", requires = "tcp")]
    secret: Option<PathBuf>,
    /// Serve TCP clients without a secret: anyone who can reach the address
    /// may join, read and send (only for a network you trust entirely).
    #[arg(long, requires = "tcp", conflicts_with = "secret")]
    tcp_insecure: bool,
    /// Access list, TOML: a `[groups.NAME]` table per group with `join` and `send` uid lists,
    /// and `[private]` with a `send` list for private groups. With --cluster it is the
    /// cluster's: sent to every daemon through CPG, in force everywhere until a daemon brings
    /// another (the last one wins; without --acl a daemon takes the cluster's; an empty file
    /// opens everything).
    #[arg(long, value_name = "FILE")]
    acl: Option<PathBuf>,
    /// The socket file's mode, octal [default: 666]. Not for an `@abstract`
    /// socket, which has no file.
    #[arg(long, value_parser = parse_mode)]
    mode: Option<u32>,
    /// The daemon's name in private groups `#name#daemon`. With --cluster it must be unique:
    /// a daemon whose name a running one holds is refused when it joins and exits with an
    /// error naming that one's node.
    #[arg(long, default_value = "local")]
    name: String,
    /// Most messages queued for one client before it is dropped.
    #[arg(long, default_value_t = QueueLimits::default().messages)]
    queue_messages: usize,
    /// Most bytes queued for one client before it is dropped.
    #[arg(long, default_value_t = QueueLimits::default().bytes)]
    queue_bytes: usize,
    /// Most bytes one client's unfinished frame may hold before it is dropped.
    #[arg(long, default_value_t = MemoryBudget::default().per_client)]
    client_buffer_bytes: usize,
    /// Most bytes all clients' unfinished frames may hold together; a client
    /// whose buffer would pass it is dropped.
    #[arg(long, default_value_t = MemoryBudget::default().total)]
    total_buffer_bytes: usize,
    /// Seconds a new client has to say hello before it is dropped.
    #[arg(long, value_name = "SECS", default_value_t = 5.0, value_parser = parse_secs)]
    hello_timeout: f64,
    /// Seconds a frame begun may wait for its next byte before the client is
    /// dropped (a member between frames may stay silent for ever).
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = parse_secs)]
    stall_timeout: f64,
    /// Join the mailboxd of other machines through a group-communication
    /// engine; `corosync` (its CPG) is the one there is. Daemon names must
    /// differ across the cluster (checked when a daemon joins).
    #[arg(long, value_name = "ENGINE", value_parser = ["corosync"])]
    cluster: Option<String>,
    /// The CPG group the clustered daemons meet in.
    #[arg(long, default_value = "connkit-mailboxd", requires = "cluster")]
    cluster_group: String,
    /// At shutdown, print the report on stdout as one JSON object (see
    /// `conn_core::ShutdownReport`) besides logging it.
    #[arg(long)]
    json: bool,
}

fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s.trim_start_matches("0o"), 8).map_err(|e| format!("octal mode: {e}"))
}

fn parse_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        Ok(_) => Err("a positive number of seconds".into()),
        Err(e) => Err(format!("seconds: {e}")),
    }
}

/// The socket file's mode: `--mode` means a file, and an abstract socket
/// (`@name`) has none; ignoring the flag would leave the socket open to
/// everyone while the operator believes it is not.
fn socket_mode(socket: &std::path::Path, mode: Option<u32>) -> Result<u32, String> {
    let abstract_name = socket.as_os_str().as_encoded_bytes().starts_with(b"@");
    match mode {
        Some(m) if abstract_name => Err(format!(
            "--mode {m:o} with the abstract socket {}: an abstract socket has no file, \
             so no file mode can restrict it; drop --mode (use --acl to restrict \
             who may join or send) or give a socket path",
            socket.display()
        )),
        Some(m) => Ok(m),
        None => Ok(0o666),
    }
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let json = args.json;
    let acl = match args.acl.as_deref().map(Acl::load).transpose() {
        Ok(acl) => acl,
        Err(e) => {
            eprintln!("mailboxd: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let secret = match args.secret.as_deref().map(Secret::load).transpose() {
        Ok(secret) => secret,
        Err(e) => {
            eprintln!("mailboxd: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let socket = args.socket.unwrap_or_else(DaemonConfig::default_socket);
    let mode = match socket_mode(&socket, args.mode) {
        Ok(mode) => mode,
        Err(e) => {
            eprintln!("mailboxd: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let config = DaemonConfig {
        socket,
        mode,
        tcp: args.tcp,
        secret,
        tcp_insecure: args.tcp_insecure,
        acl,
        name: args.name,
        queue: QueueLimits {
            messages: args.queue_messages,
            bytes: args.queue_bytes,
        },
        budget: MemoryBudget {
            per_client: args.client_buffer_bytes,
            total: args.total_buffer_bytes,
        },
        hello_timeout: std::time::Duration::from_secs_f64(args.hello_timeout),
        stall_timeout: std::time::Duration::from_secs_f64(args.stall_timeout),
        cluster: args.cluster.map(|_| args.cluster_group),
    };
    // One thread: router and connections never wake one another across threads.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mailboxd: runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let stop = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        };
        run(config, stop).await
    });
    match result {
        Ok(report) => {
            tracing::info!(%report, "mailboxd stopped");
            if json {
                match serde_json::to_string(&report) {
                    Ok(line) => println!("{line}"),
                    Err(e) => eprintln!("mailboxd: the report as JSON: {e}"),
                }
            }
            match &report.listener_failed {
                // The report is out; the exit status says it was no signal.
                Some(e) => {
                    eprintln!("mailboxd: {e}");
                    std::process::ExitCode::FAILURE
                }
                None => std::process::ExitCode::SUCCESS,
            }
        }
        Err(e) => {
            eprintln!("mailboxd: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
