//! The executor HTTP/2 streams run on: their tasks end with their connection.

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::task::JoinSet;

/// Spawns a connection's HTTP/2 stream tasks so that they end when the
/// connection does. Without it, a stream whose connection was killed at the
/// drain deadline would go on running its handler, past the deadline that
/// was promised.
///
/// The tasks live in one `JoinSet` per connection: a lock per stream
/// spawned (reaping the finished ones then), nothing per poll, so a stream
/// costs what a plain `tokio::spawn` does while it runs.
#[derive(Clone, Debug, Default)]
pub(super) struct ConnExec {
    streams: Arc<Mutex<JoinSet<()>>>,
}

impl ConnExec {
    /// Aborts the streams still running; called when their connection ends
    /// (normally none are left: an HTTP/2 connection ends after its streams).
    pub(super) fn end_streams(&self) {
        self.streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .abort_all();
    }
}

impl<F> hyper::rt::Executor<F> for ConnExec
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, stream: F) {
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        // Finished streams leave the set here, so a long connection's set
        // holds only the streams still running.
        while streams.try_join_next().is_some() {}
        streams.spawn(async move {
            stream.await;
        });
    }
}

/// Ends a connection's streams when dropped: when the connection's future
/// ends, or is dropped because the drain deadline killed it.
#[derive(Debug)]
pub(super) struct EndStreams(pub(super) ConnExec);

impl Drop for EndStreams {
    fn drop(&mut self) {
        self.0.end_streams();
    }
}
