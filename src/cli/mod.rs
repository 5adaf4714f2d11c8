//! The `connkit` command's subcommands.

pub mod get;
pub mod http;
pub mod listeners;
pub mod mailbox;
pub mod session;

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
pub async fn terminate_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
