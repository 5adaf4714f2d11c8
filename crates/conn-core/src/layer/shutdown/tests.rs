use std::time::Duration;

use tokio::time::Instant;
use tokio_test::{assert_pending, assert_ready, task};
use tower::{Layer, Service, ServiceExt, service_fn};

use super::Shutdown;
use crate::{Deadline, Error, ErrorKind};

fn sleeper(
    shutdown: &Shutdown,
) -> impl Service<u64, Response = u64, Error = Error, Future: Send> + Clone + Send + use<> {
    shutdown.layer().layer(service_fn(|ms: u64| async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok::<_, Error>(ms)
    }))
}

#[tokio::test(start_paused = true)]
async fn in_flight_calls_that_finish_in_time_complete_and_are_counted() {
    let shutdown = Shutdown::new();
    let svc = sleeper(&shutdown);
    let a = tokio::spawn(svc.clone().oneshot(50));
    let b = tokio::spawn(svc.clone().oneshot(80));
    tokio::task::yield_now().await;
    assert_eq!(shutdown.in_flight(), 2);

    let start = Instant::now();
    let report = shutdown
        .shutdown(Deadline::after(Duration::from_secs(1)))
        .await;
    assert_eq!((report.finished, report.cancelled), (2, 0));
    // The drain ends when the last call does, not at the deadline.
    assert_eq!(start.elapsed(), Duration::from_millis(80));
    assert_eq!(a.await.unwrap().unwrap(), 50);
    assert_eq!(b.await.unwrap().unwrap(), 80);
}

#[tokio::test(start_paused = true)]
async fn in_flight_calls_that_overrun_are_cancelled_at_the_deadline() {
    let shutdown = Shutdown::new();
    let svc = sleeper(&shutdown);
    let slow = tokio::spawn(svc.clone().oneshot(10_000));
    tokio::task::yield_now().await;

    let start = Instant::now();
    let report = shutdown
        .shutdown(Deadline::after(Duration::from_millis(200)))
        .await;
    assert_eq!((report.finished, report.cancelled), (0, 1));
    assert_eq!(start.elapsed(), Duration::from_millis(200));
    let err = slow.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Canceled);
    assert_eq!(shutdown.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn calls_after_shutdown_are_refused_with_a_clear_error() {
    let shutdown = Shutdown::new();
    let mut svc = sleeper(&shutdown);
    shutdown.trigger();
    let err = svc.ready().await.unwrap().call(1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ShuttingDown);
    assert_eq!(
        err.to_string(),
        "call: shutting down (ESHUTDOWN): shutdown has begun; no new calls are taken"
    );
    let report = shutdown.shutdown(Deadline::NOW).await;
    assert_eq!(report.refused, 1);
}

#[tokio::test(start_paused = true)]
async fn idle_waits_for_guards_as_well_as_calls() {
    let shutdown = Shutdown::new();
    let guard = shutdown.enter().unwrap();
    shutdown.trigger();
    assert!(shutdown.enter().is_none(), "no new work after trigger");
    let mut idle = task::spawn(shutdown.idle());
    assert_pending!(idle.poll());
    drop(guard);
    assert!(idle.is_woken());
    assert_ready!(idle.poll());
}

#[tokio::test(start_paused = true)]
async fn shutdown_with_nothing_in_flight_returns_at_once() {
    let shutdown = Shutdown::new();
    let report = shutdown
        .shutdown(Deadline::after(Duration::from_secs(10)))
        .await;
    assert_eq!(
        report,
        super::DrainReport {
            elapsed: Duration::ZERO,
            ..Default::default()
        }
    );
}
