use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tower_layer::Layer;

use super::CancelService;

/// Ends calls with [`ErrorKind::Canceled`] when a
/// [`CancellationToken`] fires: a call made after the token fired is refused
/// without reaching the inner service, and a call in flight when it fires is
/// dropped at once.
///
/// [`ErrorKind::Canceled`]: crate::ErrorKind::Canceled
///
/// # Examples
///
/// ```
/// use conn_core::{ErrorKind, layer::CancelLayer};
/// use tokio_util::sync::CancellationToken;
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let token = CancellationToken::new();
/// let svc = ServiceBuilder::new()
///     .layer(CancelLayer::new(token.clone()))
///     .service(service_fn(|()| std::future::pending::<Result<(), conn_core::Error>>()));
///
/// let call = tokio::spawn(svc.oneshot(()));
/// token.cancel();
/// assert_eq!(call.await.unwrap().unwrap_err().kind(), ErrorKind::Canceled);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct CancelLayer {
    // Shared through an Arc: cloning a CancellationToken takes a lock, an
    // Arc clone does not, and services are cloned per connection.
    token: Arc<CancellationToken>,
}

impl CancelLayer {
    /// Cancels calls when `token` fires.
    pub fn new(token: CancellationToken) -> Self {
        CancelLayer {
            token: Arc::new(token),
        }
    }
}

impl<S> Layer<S> for CancelLayer {
    type Service = CancelService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CancelService::new(inner, self.token.clone())
    }
}
