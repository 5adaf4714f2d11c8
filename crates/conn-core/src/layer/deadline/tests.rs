use std::time::Duration;

use tokio::time::Instant;
use tokio_test::{assert_pending, assert_ready_err, assert_ready_ok, task};
use tower::{Service, ServiceExt, service_fn};

use super::*;
use crate::{Error, ErrorKind};

fn sleeper() -> impl Service<Duration, Response = Duration, Error = Error, Future: Send> + Clone {
    service_fn(|d: Duration| async move {
        tokio::time::sleep(d).await;
        Ok::<_, Error>(d)
    })
}

#[tokio::test(start_paused = true)]
async fn a_call_that_meets_its_deadline_returns_its_response() {
    let mut svc = DeadlineLayer::new(Duration::from_millis(100)).layer_on(sleeper());
    let out = svc
        .ready()
        .await
        .unwrap()
        .call(Duration::from_millis(99))
        .await
        .unwrap();
    assert_eq!(out, Duration::from_millis(99));
}

#[tokio::test(start_paused = true)]
async fn a_call_that_misses_its_deadline_times_out_at_the_deadline() {
    let start = Instant::now();
    let mut svc = DeadlineLayer::new(Duration::from_millis(100)).layer_on(sleeper());
    let err = svc
        .ready()
        .await
        .unwrap()
        .call(Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert_eq!(start.elapsed(), Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn a_zero_timeout_polls_the_inner_future_exactly_once() {
    let polls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = polls.clone();
    let svc = service_fn(move |()| {
        let polls = counted.clone();
        std::future::poll_fn(move |cx| {
            polls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            cx.waker().wake_by_ref();
            std::task::Poll::<Result<(), Error>>::Pending
        })
    });
    let mut svc = DeadlineLayer::new(Duration::ZERO).layer_on(svc);
    let mut fut = task::spawn(svc.ready().await.unwrap().call(()));
    assert_ready_err!(fut.poll());
    assert_eq!(polls.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_ready_inner_future_succeeds_even_with_a_zero_timeout() {
    let mut svc = DeadlineLayer::new(Duration::ZERO).layer_on(sleeper());
    let mut fut = task::spawn(svc.ready().await.unwrap().call(Duration::ZERO));
    // A zero sleep is ready on its first poll in paused time.
    assert_ready_ok!(fut.poll());
}

#[tokio::test(start_paused = true)]
async fn the_request_deadline_is_used_when_it_is_earlier() {
    let svc = service_fn(|req: WithDeadline<Duration>| async move {
        tokio::time::sleep(req.into_inner()).await;
        Ok::<_, Error>(())
    });
    let mut svc = DeadlineLayer::from_request(Some(Duration::from_secs(10))).layer_on(svc);
    let start = Instant::now();
    let req = WithDeadline::new(
        Deadline::after(Duration::from_millis(30)),
        Duration::from_secs(1),
    );
    let err = svc.ready().await.unwrap().call(req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert_eq!(start.elapsed(), Duration::from_millis(30));
}

#[tokio::test(start_paused = true)]
async fn a_pending_call_stays_pending_until_its_deadline() {
    let mut svc = DeadlineLayer::new(Duration::from_millis(50)).layer_on(sleeper());
    let mut fut = task::spawn(svc.ready().await.unwrap().call(Duration::from_secs(1)));
    assert_pending!(fut.poll());
    tokio::time::advance(Duration::from_millis(49)).await;
    assert_pending!(fut.poll());
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(fut.is_woken());
    let err = assert_ready_err!(fut.poll());
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert_eq!(err.operation(), Some("call"));
}

/// `Layer::layer`, named for readability in tests.
trait LayerOn<S>: tower::Layer<S> {
    fn layer_on(&self, s: S) -> Self::Service {
        self.layer(s)
    }
}
impl<L: tower::Layer<S>, S> LayerOn<S> for L {}
