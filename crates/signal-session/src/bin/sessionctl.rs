//! `sessionctl`: the `session` commands against a sessiond (the same as
//! `connkit session`).

use clap::Parser;
use signal_session::cli::SessionArgs;

/// Sessions of processes signalled as one, through sessiond.
#[derive(Parser)]
#[command(name = "sessionctl", version)]
struct Cli {
    #[command(flatten)]
    session: SessionArgs,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    signal_session::cli::run(Cli::parse().session).await
}
