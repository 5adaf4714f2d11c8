//! `connkit http --listen URL`: the HTTP server over any transport.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crate::core::serve::Server;
use crate::core::{Registry, Result, serve};
use crate::http::{Routes, Stats, http_handler};

/// Serves `/`, `/slow?ms=N` and `/stats` on `listen` until SIGTERM or
/// Ctrl-C, then shuts down gracefully within `drain` and prints the report.
///
/// `per_core: Some(n)` serves on n threads, each with its own current-thread
/// runtime and listener ([`Server::per_core`]); `Some(0)` means one per core.
pub async fn run(
    registry: &Registry,
    listen: &str,
    drain: Duration,
    per_core: Option<usize>,
) -> Result<()> {
    let routes = Routes::new(Arc::new(Stats::default()));
    let signal = async move {
        super::terminate_signal().await;
        say(format_args!("shutting down, draining for up to {drain:?}"));
    };
    let report = match per_core {
        None => {
            let listener = registry.bind(listen).await?;
            let endpoint = crate::core::Listener::local_endpoint(&listener);
            say(format_args!("listening on {endpoint}"));
            serve(listener, http_handler(routes))
                .with_graceful_shutdown(signal, drain)
                .await?
        }
        Some(threads) => {
            let server = match threads {
                0 => Server::default(),
                n => Server::per_core(n),
            };
            let listeners = registry.bind_per_core(listen, server.threads()).await?;
            let endpoint = crate::core::Listener::local_endpoint(&listeners[0]);
            say(format_args!(
                "listening on {endpoint} ({} threads, one runtime each)",
                listeners.len()
            ));
            server
                .serve_each(listeners, http_handler(routes))
                .with_graceful_shutdown(signal, drain)
                .await?
        }
    };
    say(format_args!("shutdown report: {report}"));
    Ok(())
}

/// One line of progress on stdout; a closed stdout must not stop the server.
fn say(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "connkit http: {line}").and_then(|()| out.flush());
}
