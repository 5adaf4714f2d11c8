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

/// Decrements a counter when dropped.
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
