//! `connkit http --listen URL`: the HTTP server over any transport.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crate::core::{Registry, Result, serve};
use crate::http::{Routes, Stats, http_handler};

/// Serves `/`, `/slow?ms=N` and `/stats` on `listen` until SIGTERM or
/// Ctrl-C, then shuts down gracefully within `drain` and prints the report.
pub async fn run(registry: &Registry, listen: &str, drain: Duration) -> Result<()> {
    let listener = registry.bind(listen).await?;
    let endpoint = crate::core::Listener::local_endpoint(&listener);
    say(format_args!("listening on {endpoint}"));
    let routes = Routes::new(Arc::new(Stats::default()));
    let report = serve(listener, http_handler(routes))
        .with_graceful_shutdown(
            async move {
                super::terminate_signal().await;
                say(format_args!("shutting down, draining for up to {drain:?}"));
            },
            drain,
        )
        .await?;
    say(format_args!("shutdown report: {report}"));
    Ok(())
}

/// One line of progress on stdout; a closed stdout must not stop the server.
fn say(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "connkit http: {line}").and_then(|()| out.flush());
}
