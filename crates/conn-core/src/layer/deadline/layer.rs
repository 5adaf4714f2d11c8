use std::time::Duration;

use tower_layer::Layer;

use super::{DeadlineService, Fixed, FromRequest};

/// Runs every call under a deadline: a timeout counted from the call's first
/// poll ([`DeadlineLayer::new`]), or the request's own deadline
/// ([`DeadlineLayer::from_request`]).
///
/// A missed deadline ends the call with [`ErrorKind::TimedOut`] and drops the
/// inner future. A zero timeout is libdill's `NOW`: the inner future is polled
/// exactly once.
///
/// Unlike `tower::timeout::Timeout`, neither the clock nor the timer is
/// touched unless the inner future is pending on its first poll, so calls
/// that complete at once cost next to nothing.
///
/// [`ErrorKind::TimedOut`]: crate::ErrorKind::TimedOut
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conn_core::{Deadline, ErrorKind, layer::{DeadlineLayer, WithDeadline}};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// async fn slow<R>(_: R) -> Result<(), conn_core::Error> {
///     tokio::time::sleep(Duration::from_secs(60)).await;
///     Ok(())
/// }
///
/// let fixed = ServiceBuilder::new()
///     .layer(DeadlineLayer::new(Duration::from_millis(10)))
///     .service(service_fn(slow::<()>));
/// assert_eq!(fixed.oneshot(()).await.unwrap_err().kind(), ErrorKind::TimedOut);
///
/// let per_request = ServiceBuilder::new()
///     .layer(DeadlineLayer::from_request(None))
///     .service(service_fn(slow::<WithDeadline<()>>));
/// let req = WithDeadline::new(Deadline::after(Duration::from_millis(10)), ());
/// assert_eq!(per_request.oneshot(req).await.unwrap_err().kind(), ErrorKind::TimedOut);
/// # }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct DeadlineLayer<P = Fixed> {
    policy: P,
}

impl DeadlineLayer<Fixed> {
    /// Every call gets `timeout`, counted from its first poll (which tower
    /// callers make right after `call`).
    pub fn new(timeout: Duration) -> Self {
        DeadlineLayer {
            policy: Fixed(Some(timeout)),
        }
    }
}

impl DeadlineLayer<FromRequest> {
    /// Every call runs under its request's own deadline (the request
    /// implements [`HasDeadline`](super::HasDeadline)); a request without one
    /// gets `default`, or no deadline when `default` is `None`.
    pub fn from_request(default: Option<Duration>) -> Self {
        DeadlineLayer {
            policy: FromRequest(default),
        }
    }
}

impl<S, P: Clone> Layer<S> for DeadlineLayer<P> {
    type Service = DeadlineService<S, P>;

    fn layer(&self, inner: S) -> Self::Service {
        DeadlineService::new(inner, self.policy.clone())
    }
}
