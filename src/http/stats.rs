use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters an HTTP server keeps and `/stats` shows.
#[derive(Debug, Default)]
pub struct Stats {
    accepted: AtomicU64,
    open: AtomicU64,
    requests: AtomicU64,
    in_flight: AtomicU64,
}

/// A copy of [`Stats`] at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Connections accepted since start.
    pub accepted: u64,
    /// Connections open now.
    pub connections_open: u64,
    /// Requests answered or in flight since start.
    pub requests: u64,
    /// Requests in flight now.
    pub requests_in_flight: u64,
}

/// Decrements one of [`Stats`]' counters when dropped.
pub(super) struct Gauge(Arc<Stats>, fn(&Stats) -> &AtomicU64);

impl Drop for Gauge {
    fn drop(&mut self) {
        (self.1)(&self.0).fetch_sub(1, Ordering::Relaxed);
    }
}

impl Stats {
    /// Counts a connection as accepted and open until the gauge drops.
    pub(super) fn connection(self: &Arc<Self>) -> Gauge {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        self.open.fetch_add(1, Ordering::Relaxed);
        Gauge(self.clone(), |s| &s.open)
    }

    /// Counts a request as in flight until the gauge drops.
    pub(super) fn request(self: &Arc<Self>) -> Gauge {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Gauge(self.clone(), |s| &s.in_flight)
    }

    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            accepted: self.accepted.load(Ordering::Relaxed),
            connections_open: self.open.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            requests_in_flight: self.in_flight.load(Ordering::Relaxed),
        }
    }
}

impl StatsSnapshot {
    /// The JSON `/stats` answers with.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "accepted": self.accepted,
            "connections_open": self.connections_open,
            "requests": self.requests,
            "requests_in_flight": self.requests_in_flight,
        })
        .to_string()
    }
}

/// A connection handler whose connections [`Stats`] counts (accepted, and
/// open until each ends); see [`Stats::count_connections`].
#[derive(Clone, Debug)]
pub struct CountConnections<H> {
    inner: H,
    stats: Arc<Stats>,
}

impl Stats {
    /// Wraps a connection handler (such as
    /// [`Http::handler`](super::Http::handler)) so that these stats count
    /// its connections.
    pub fn count_connections<H>(self: &Arc<Self>, inner: H) -> CountConnections<H> {
        CountConnections {
            inner,
            stats: self.clone(),
        }
    }
}

impl<C, H> tower::Service<crate::core::serve::Incoming<C>> for CountConnections<H>
where
    H: tower::Service<crate::core::serve::Incoming<C>>,
{
    type Response = H::Response;
    type Error = H::Error;
    type Future = Counted<H::Future>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), H::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, incoming: crate::core::serve::Incoming<C>) -> Self::Future {
        Counted {
            inner: self.inner.call(incoming),
            _open: self.stats.connection(),
        }
    }
}

/// A connection's future, counted open until it ends.
#[pin_project::pin_project]
pub struct Counted<F> {
    #[pin]
    inner: F,
    _open: Gauge,
}

impl<F: std::future::Future> std::future::Future for Counted<F> {
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        self.project().inner.poll(cx)
    }
}

impl<F> std::fmt::Debug for Counted<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Counted")
    }
}
