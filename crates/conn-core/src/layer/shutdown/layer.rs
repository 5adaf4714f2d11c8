use tower_layer::Layer;

use super::{Shutdown, ShutdownService};

/// Refuses new calls once its [`Shutdown`] has begun (with
/// [`ErrorKind::ShuttingDown`]), counts the calls in flight so the shutdown
/// can wait for them, and ends those still running at the drain deadline
/// with [`ErrorKind::Canceled`].
///
/// See [`Shutdown`] for a complete example.
///
/// [`ErrorKind::ShuttingDown`]: crate::ErrorKind::ShuttingDown
/// [`ErrorKind::Canceled`]: crate::ErrorKind::Canceled
///
/// ```
/// use conn_core::layer::{Shutdown, ShutdownLayer};
/// use tower::ServiceBuilder;
///
/// let shutdown = Shutdown::new();
/// let _svc = ServiceBuilder::new()
///     .layer(ShutdownLayer::new(shutdown.clone()))
///     .service_fn(|()| async { Ok::<_, conn_core::Error>(()) });
/// ```
#[derive(Clone, Debug)]
pub struct ShutdownLayer {
    shutdown: Shutdown,
}

impl ShutdownLayer {
    /// A layer controlled by `shutdown`.
    pub fn new(shutdown: Shutdown) -> Self {
        ShutdownLayer { shutdown }
    }
}

impl<S> Layer<S> for ShutdownLayer {
    type Service = ShutdownService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ShutdownService::new(inner, self.shutdown.clone())
    }
}
