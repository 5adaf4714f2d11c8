//! The accept loop: every connection handed to a `tower::Service`, graceful
//! shutdown with a report, and survival of exhausted descriptor tables.

mod accept;
mod incoming;
mod lines;
mod per_core;
mod report;
mod server;
mod signal;
mod tasks;
mod work;

pub use accept::{AcceptBackoff, AcceptVerdict, accept_verdict};
pub use incoming::{Graceful, Incoming};
pub use lines::{LineHandler, lines};
pub use per_core::{PerCoreGraceful, PerCoreServe, Server};
pub use report::{ERROR_SAMPLE, ErrorTally, RequestCounts, ShutdownReport};
pub use server::{Serve, WithGracefulShutdown, serve, stop_all_on_failure};
pub use work::{ConnectionWork, Request, Work};

#[cfg(test)]
mod tests;
