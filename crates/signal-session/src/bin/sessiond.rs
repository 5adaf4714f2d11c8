//! `sessiond`: holds sessions for its clients on a Unix socket, and signals
//! them for peer daemons of its arrays over authenticated TCP.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use signal_session::cli::DaemonArgs;

/// The session daemon (Array Services' arrayd, for array sessions).
#[derive(Parser)]
#[command(name = "sessiond", version)]
struct Cli {
    /// The Unix socket (default: $XDG_RUNTIME_DIR/sessiond.sock, else
    /// /tmp/sessiond.sock; overrides the config).
    #[arg(long)]
    socket: Option<PathBuf>,
    #[command(flatten)]
    daemon: DaemonArgs,
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
    let json = cli.daemon.json;
    let options = match cli.daemon.options(cli.socket) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("sessiond: {e}");
            return ExitCode::from(2);
        }
    };
    match signal_session::cli::run_daemon(options, json).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sessiond: {e}");
            ExitCode::from(1)
        }
    }
}
