//! Tower layers for deadlines, cancellation and graceful shutdown.
//!
//! Each lives in tower's layout (`layer.rs`, `service.rs`, `future.rs`), with
//! hand-written futures that allocate nothing per call, and stacks with
//! `tower::ServiceBuilder` and tower's own layers without adapters.

pub mod cancel;
pub mod deadline;
pub mod shutdown;

pub use cancel::{CancelLayer, CancelService};
pub use deadline::{DeadlineLayer, DeadlineService, HasDeadline, WithDeadline};
pub use shutdown::{DrainReport, Shutdown, ShutdownLayer, ShutdownService};
