use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio_test::{assert_pending, assert_ready_err, assert_ready_ok, task};
use tokio_util::sync::CancellationToken;
use tower::{Layer, Service, ServiceExt, service_fn};

use super::CancelLayer;
use crate::{Error, ErrorKind};

/// A service that counts its calls and sleeps for the requested time.
fn counting_sleeper(
    calls: Arc<AtomicUsize>,
) -> impl Service<Duration, Response = (), Error = Error> + Clone {
    service_fn(move |d: Duration| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(d).await;
            Ok::<_, Error>(())
        }
    })
}

#[tokio::test(start_paused = true)]
async fn cancel_before_the_call_refuses_it_without_reaching_the_service() {
    let token = CancellationToken::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let mut svc = CancelLayer::new(token.clone()).layer(counting_sleeper(calls.clone()));
    token.cancel();
    let err = svc
        .ready()
        .await
        .unwrap()
        .call(Duration::ZERO)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Canceled);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn cancel_during_the_call_ends_it_at_once() {
    let token = CancellationToken::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let mut svc = CancelLayer::new(token.clone()).layer(counting_sleeper(calls.clone()));
    let mut fut = task::spawn(svc.ready().await.unwrap().call(Duration::from_secs(60)));
    assert_pending!(fut.poll());
    token.cancel();
    assert!(fut.is_woken(), "cancelling must wake the pending call");
    let err = assert_ready_err!(fut.poll());
    assert_eq!(err.kind(), ErrorKind::Canceled);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn cancel_after_the_call_changes_nothing() {
    let token = CancellationToken::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let mut svc = CancelLayer::new(token.clone()).layer(counting_sleeper(calls.clone()));
    let mut fut = task::spawn(svc.ready().await.unwrap().call(Duration::ZERO));
    assert_ready_ok!(fut.poll());
    token.cancel();
    // The next call is refused, the finished one stays finished.
    let err = svc
        .ready()
        .await
        .unwrap()
        .call(Duration::ZERO)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Canceled);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn inner_errors_pass_through_unchanged() {
    let svc = service_fn(|()| async { Err::<(), _>(Error::new(ErrorKind::ConnectionReset)) });
    let err = CancelLayer::new(CancellationToken::new())
        .layer(svc)
        .oneshot(())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
}
