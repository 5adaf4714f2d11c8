//! Refuse new calls after shutdown, track the ones in flight, drain them.

mod controller;
mod future;
mod layer;
mod service;

pub use controller::{DrainReport, InFlight, Shutdown};
pub use future::ShutdownFuture;
pub use layer::ShutdownLayer;
pub use service::ShutdownService;

#[cfg(test)]
mod tests;
