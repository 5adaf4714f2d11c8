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
    println!("connkit http: listening on {endpoint}");
    std::io::stdout().flush()?;
    let routes = Routes::new(Arc::new(Stats::default()));
    let report = serve(listener, http_handler(routes))
        .with_graceful_shutdown(
            async move {
                super::terminate_signal().await;
                println!("connkit http: shutting down, draining for up to {drain:?}");
                let _ = std::io::stdout().flush();
            },
            drain,
        )
        .await?;
    println!("connkit http: shutdown report: {report}");
    Ok(())
}
