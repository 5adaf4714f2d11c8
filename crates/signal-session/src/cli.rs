//! The `session` command line, shared by `sessionctl` and `connkit
//! session`: every subcommand but `daemon` asks a sessiond, so a session
//! created by one short-lived command outlives it and the next command
//! finds it.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use conn_core::{Deadline, Error, ErrorKind, Result};

use crate::client::{Client, default_socket};
use crate::daemon::{ClusterKind, Config, Options};
use crate::wire::NodeOutcome;
use crate::{Ash, Signal, SignalReport};

/// `session` arguments.
///
/// ```
/// use clap::Parser;
/// use signal_session::cli::SessionArgs;
///
/// #[derive(Parser)]
/// struct Cli { #[command(flatten)] session: SessionArgs }
///
/// assert!(Cli::try_parse_from(["sessionctl", "kill", "0x1", "-s", "TERM", "--atomic"]).is_ok());
/// assert!(Cli::try_parse_from(["sessionctl", "spawn", "0x1", "--", "sleep", "1"]).is_ok());
/// assert!(Cli::try_parse_from(["sessionctl", "spawn", "0x1"]).is_err()); // no command
/// ```
#[derive(Args, Debug)]
pub struct SessionArgs {
    /// The sessiond socket (default: $XDG_RUNTIME_DIR/sessiond.sock, else
    /// /tmp/sessiond.sock). For `daemon`: where to listen.
    #[arg(long, global = true, value_name = "PATH")]
    pub server: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: SessionCommand,
}

/// The `session` subcommands.
#[derive(Subcommand, Debug)]
pub enum SessionCommand {
    /// Create a session in sessiond and print its handle.
    New {
        /// Use this handle (the same array session as on another node).
        #[arg(long)]
        ash: Option<Ash>,
    },
    /// Have sessiond run a command in the session, as you; prints its pid.
    Spawn {
        /// The session.
        ash: Ash,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true)]
        argv: Vec<String>,
    },
    /// Add a running process (and its children) to the session: each must
    /// be one you may signal, and none pid 0, 1, a kernel thread or
    /// sessiond; otherwise nothing is added.
    Adopt {
        /// The session.
        ash: Ash,
        /// The process.
        pid: u32,
    },
    /// List your sessions in sessiond (every session, for root).
    List,
    /// List the session's processes (yours, or any for root).
    Members {
        /// The session.
        ash: Ash,
    },
    /// Signal the session and report each member; `-s 0` only checks.
    Kill {
        /// The session.
        ash: Ash,
        /// TERM, SIGTERM, 15, or 0 to check.
        #[arg(short = 's', long = "signal", default_value = "TERM")]
        signal: String,
        /// Every node of this array: the sessiond at `--server` (or the
        /// default one) fans out to the array's nodes in its configuration,
        /// or, with `--array cluster` to a `sessiond --cluster corosync`,
        /// to every node of the corosync cluster over CPG.
        #[arg(long)]
        array: Option<String>,
        /// Freeze the session while signalling (cgroup v2).
        #[arg(long)]
        atomic: bool,
        /// How long an array's nodes have to answer, in milliseconds.
        #[arg(long, default_value_t = 5000)]
        deadline_ms: u64,
        /// Print the report as one JSON object (the local report, or
        /// `{"nodes": [...]}` for an array) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run sessiond in the foreground.
    Daemon(DaemonArgs),
}

/// How a sessiond is started, besides its socket: the options the
/// `sessiond` binary and `connkit session daemon` share.
#[derive(Args, Debug)]
pub struct DaemonArgs {
    /// The configuration file (TOML: listen, secret_file, arrays).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The TCP address peer daemons reach this one at (overrides the
    /// config; port 0 picks one, printed on stdout).
    #[arg(long)]
    pub listen: Option<String>,
    /// Join the cluster: with `corosync`, every node's sessiond meets in a
    /// CPG group through the local corosync, and the array named `cluster`
    /// is all of its nodes (needs the `corosync` cargo feature).
    #[arg(long, value_enum, value_name = "KIND")]
    pub cluster: Option<ClusterKind>,
    /// Print the shutdown report (clients and peers in one) as one JSON
    /// line, `sessiond stopped: {...}`, instead of text.
    #[arg(long)]
    pub json: bool,
}

impl DaemonArgs {
    /// The daemon's options, listening at `socket` (`None`: the
    /// configuration's, else the default); reads the configuration file.
    pub fn options(self, socket: Option<PathBuf>) -> Result<Options> {
        let config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        Ok(Options {
            config,
            socket,
            listen: self.listen,
            cluster: self.cluster,
        })
    }
}

/// Runs a sessiond with `options` until SIGTERM or SIGINT, then prints its
/// shutdown report on stdout: `sessiond stopped: REPORT`, the report as
/// text or (`json`) as one JSON object. `sessiond` and `connkit session
/// daemon` both run this.
pub async fn run_daemon(options: Options, json: bool) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    // Installed before the daemon says it listens: whoever reads that line
    // may SIGTERM at once.
    let mut term = signal(SignalKind::terminate()).map_err(Error::from)?;
    let mut int = signal(SignalKind::interrupt()).map_err(Error::from)?;
    let stop = async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    };
    let report = crate::daemon::run(options, stop).await?;
    let mut out = std::io::stdout().lock();
    let io = |e: std::io::Error| Error::from(e).during("print the shutdown report");
    if json {
        write!(out, "sessiond stopped: ").map_err(io)?;
        print_json(&mut out, &report).map_err(io)?;
    } else {
        writeln!(out, "sessiond stopped: {report}").map_err(io)?;
    }
    out.flush().map_err(io)?;
    // The report is out; the exit status says it was no signal.
    match report.listener_failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Parses `TERM`, `SIGTERM`, `15` or `0`.
///
/// ```
/// use signal_session::{Signal, cli::parse_signal};
/// assert_eq!(parse_signal("TERM").unwrap(), Signal::TERM);
/// assert_eq!(parse_signal("sigkill").unwrap(), Signal::KILL);
/// assert_eq!(parse_signal("0").unwrap(), Signal::NULL);
/// assert!(parse_signal("NOPE").is_err());
/// ```
pub fn parse_signal(text: &str) -> Result<Signal> {
    if let Ok(n) = text.parse::<i32>() {
        return Signal::new(n);
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    (1..=31)
        .filter_map(|n| Signal::new(n).ok())
        .find(|s| s.name().is_some_and(|full| &full[3..] == name))
        .ok_or_else(|| {
            Error::new(ErrorKind::InvalidType)
                .during("parse signal")
                .on(format_args!("{text:?}"))
                .detail("expected a name like TERM or SIGKILL, or a number")
        })
}

/// Runs a `session` command; prints its output and says how to exit:
/// failure when the command failed, or when any member or node was not
/// reached.
pub async fn run(args: SessionArgs) -> ExitCode {
    match execute(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("session: {e}");
            ExitCode::from(2)
        }
    }
}

fn print_json(out: &mut impl Write, report: &impl serde::Serialize) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, report)?;
    writeln!(out)
}

fn print_report(out: &mut impl Write, report: &SignalReport) -> std::io::Result<()> {
    writeln!(out, "{report}")?;
    for (member, outcome) in &report.members {
        writeln!(out, "  {member}: {outcome}")?;
    }
    Ok(())
}

async fn execute(args: SessionArgs) -> Result<bool> {
    let server = args.server.unwrap_or_else(default_socket);
    let connect = || Client::connect(&server, Deadline::after(Duration::from_secs(5)));
    let mut out = std::io::stdout().lock();
    let io = |e: std::io::Error| Error::from(e).during("write output");
    match args.command {
        SessionCommand::Daemon(daemon) => {
            drop(out);
            let json = daemon.json;
            run_daemon(daemon.options(Some(server))?, json).await?;
            Ok(true)
        }
        SessionCommand::New { ash } => {
            let ash = connect().await?.new_session(ash).await?;
            writeln!(out, "{ash}").map_err(io)?;
            Ok(true)
        }
        SessionCommand::Spawn { ash, argv } => {
            let pid = connect().await?.spawn(ash, &argv).await?;
            writeln!(out, "{pid}").map_err(io)?;
            Ok(true)
        }
        SessionCommand::Adopt { ash, pid } => {
            connect().await?.adopt(ash, pid).await?;
            Ok(true)
        }
        SessionCommand::List => {
            for ash in connect().await?.list().await? {
                writeln!(out, "{ash}").map_err(io)?;
            }
            Ok(true)
        }
        SessionCommand::Members { ash } => {
            for pid in connect().await?.members(ash).await? {
                writeln!(out, "{pid}").map_err(io)?;
            }
            Ok(true)
        }
        SessionCommand::Kill {
            ash,
            signal,
            array,
            atomic,
            deadline_ms,
            json,
        } => {
            let sig = parse_signal(&signal)?.raw();
            let mut client = connect().await?;
            match array {
                None => {
                    let report = client.signal(ash, sig, atomic).await?;
                    if json {
                        print_json(&mut out, &report).map_err(io)?;
                    } else {
                        print_report(&mut out, &report).map_err(io)?;
                    }
                    Ok(report.all_reached())
                }
                Some(array) => {
                    let deadline = Deadline::after(Duration::from_millis(deadline_ms));
                    let report = client
                        .signal_array(&array, ash, sig, atomic, deadline)
                        .await?;
                    if json {
                        print_json(&mut out, &report).map_err(io)?;
                        return Ok(report.all_reached());
                    }
                    for node in &report.nodes {
                        match &node.outcome {
                            NodeOutcome::Answered(r) => {
                                write!(out, "node {} ({}): ", node.name, node.addr).map_err(io)?;
                                print_report(&mut out, r).map_err(io)?;
                            }
                            NodeOutcome::Refused { message, .. } => {
                                writeln!(
                                    out,
                                    "node {} ({}): refused: {message}",
                                    node.name, node.addr
                                )
                                .map_err(io)?;
                            }
                            NodeOutcome::NoAnswer { message, .. } => {
                                writeln!(
                                    out,
                                    "node {} ({}): no answer: {message}",
                                    node.name, node.addr
                                )
                                .map_err(io)?;
                            }
                            NodeOutcome::Left { message } => {
                                writeln!(out, "node {} ({}): {message}", node.name, node.addr)
                                    .map_err(io)?;
                            }
                        }
                    }
                    Ok(report.all_reached())
                }
            }
        }
    }
}
