//! `connkit session`: sessions of processes signalled as one, through
//! sessiond (the same commands as signal-session's `sessionctl`).
//!
//! Every subcommand but `daemon` talks to a sessiond, at `--server PATH` or
//! the default socket ($XDG_RUNTIME_DIR/sessiond.sock, else
//! /tmp/sessiond.sock): a session created by one short-lived `connkit
//! session new` lives in the daemon, so the next command finds it.
//! `connkit session daemon` runs a sessiond in the foreground.
//!
//! Exit status: 0 when done and every member (or node) was reached, 1 when
//! some member was denied or gone wrong or some node did not answer, 2 when
//! the command failed (the reason on stderr).

pub use signal_session::cli::SessionArgs;

/// Runs a `connkit session` command.
pub async fn run(args: SessionArgs) -> std::process::ExitCode {
    signal_session::cli::run(args).await
}
