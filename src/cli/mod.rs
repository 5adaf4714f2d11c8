//! The `connkit` command's subcommands.

pub mod get;
pub mod http;
pub mod http_link;
pub mod link;
pub mod listeners;
pub mod mailbox;
pub mod session;

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
///
/// The handlers are installed when this is called, not when the future is
/// first polled: a server that says it listens right after calling it is
/// already past the default action of a SIGTERM sent on reading that line
/// (which would end it with no drain and no report).
pub fn terminate_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install a SIGINT handler");
    async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
}
