//! Calls end with `Canceled` when a token fires.

mod future;
mod layer;
mod service;

pub use future::CancelFuture;
pub use layer::CancelLayer;
pub use service::CancelService;

#[cfg(test)]
mod tests;
