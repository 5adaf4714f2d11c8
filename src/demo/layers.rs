//! The three layers, called directly.

use std::io::Write;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tower::{Service, ServiceBuilder, ServiceExt};

use connkit::core::layer::{CancelLayer, DeadlineLayer, Shutdown};
use connkit::core::{Deadline, Result};

async fn sleep_ms(ms: u64) -> Result<String> {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(format!("slept {ms} ms"))
}

fn show(r: Result<String>) -> String {
    match r {
        Ok(s) => s,
        Err(e) => format!("error: {e}"),
    }
}

pub(super) async fn run(out: &mut dyn Write) -> Result<()> {
    writeln!(
        out,
        "== layers: Shutdown -> Cancel -> Deadline(100 ms) around a sleeping service"
    )?;
    let shutdown = Shutdown::new();
    let token = CancellationToken::new();
    let svc = ServiceBuilder::new()
        .layer(shutdown.layer())
        .layer(CancelLayer::new(token.clone()))
        .layer(DeadlineLayer::new(Duration::from_millis(100)))
        .service_fn(sleep_ms);

    let r = svc.clone().oneshot(10).await;
    writeln!(out, "  sleep 10 ms          -> {}", show(r))?;
    let r = svc.clone().oneshot(1000).await;
    writeln!(out, "  sleep 1000 ms        -> {}", show(r))?;

    let during = tokio::spawn(svc.clone().oneshot(80));
    tokio::time::sleep(Duration::from_millis(20)).await;
    token.cancel();
    let r = during.await?;
    writeln!(out, "  cancel during a call -> {}", show(r))?;

    // A fresh stack for shutdown, so the cancelled token does not interfere.
    let svc = ServiceBuilder::new()
        .layer(shutdown.layer())
        .service_fn(sleep_ms);
    let quick = tokio::spawn(svc.clone().oneshot(30));
    let slow = tokio::spawn(svc.clone().oneshot(5000));
    tokio::time::sleep(Duration::from_millis(5)).await;
    let report = shutdown
        .shutdown(Deadline::after(Duration::from_millis(150)))
        .await;
    let quick = quick.await?;
    let slow = slow.await?;
    writeln!(out, "  shutdown with 2 calls in flight, 150 ms to drain:")?;
    writeln!(out, "    call of 30 ms      -> {}", show(quick))?;
    writeln!(out, "    call of 5000 ms    -> {}", show(slow))?;
    writeln!(
        out,
        "    drain report: finished {}, cancelled {}, in {:.0?}",
        report.finished, report.cancelled, report.elapsed
    )?;
    let mut late = svc.clone();
    let r = late.ready().await?.call(1).await;
    writeln!(out, "    call after shutdown -> {}", show(r))?;
    Ok(())
}
