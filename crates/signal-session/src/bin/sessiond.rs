//! `sessiond`: holds sessions for its clients on a Unix socket, and signals
//! them for peer daemons of its arrays over authenticated TCP.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use signal_session::daemon::{ClusterKind, Config, Options};

/// The session daemon (Array Services' arrayd, for array sessions).
#[derive(Parser)]
#[command(name = "sessiond", version)]
struct Cli {
    /// The Unix socket (default: $XDG_RUNTIME_DIR/sessiond.sock, else
    /// /tmp/sessiond.sock; overrides the config).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// The configuration file (TOML: listen, secret_file, arrays).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The TCP address peer daemons reach this one at (overrides the
    /// config; port 0 picks one, printed on stdout).
    #[arg(long)]
    listen: Option<String>,
    /// Join the cluster: with `corosync`, every node's sessiond meets in a
    /// CPG group through the local corosync, and the array named `cluster`
    /// is all of its nodes (needs the `corosync` cargo feature).
    #[arg(long, value_enum, value_name = "KIND")]
    cluster: Option<ClusterKind>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let config = match cli.config.as_deref().map(Config::load).transpose() {
        Ok(config) => config.unwrap_or_default(),
        Err(e) => {
            eprintln!("sessiond: {e}");
            return ExitCode::from(2);
        }
    };
    let options = Options {
        config,
        socket: cli.socket,
        listen: cli.listen,
        cluster: cli.cluster,
    };
    match signal_session::daemon::run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sessiond: {e}");
            ExitCode::from(1)
        }
    }
}
