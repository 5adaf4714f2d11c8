//! The executor HTTP/2 streams run on: their tasks end with their connection.

use std::future::Future;

use tokio_util::sync::CancellationToken;

/// Spawns a connection's HTTP/2 stream tasks so that they end when the
/// connection does. Without it, a stream whose connection was killed at the
/// drain deadline would go on running its handler, past the deadline that
/// was promised.
#[derive(Clone, Debug)]
pub(super) struct ConnExec {
    ended: CancellationToken,
}

impl ConnExec {
    /// An executor whose tasks end when `ended` fires.
    pub(super) fn new(ended: CancellationToken) -> Self {
        ConnExec { ended }
    }
}

impl<F> hyper::rt::Executor<F> for ConnExec
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, stream: F) {
        let ended = self.ended.clone();
        tokio::spawn(async move {
            tokio::select! {
                biased;
                () = ended.cancelled() => {}
                _ = stream => {}
            }
        });
    }
}
