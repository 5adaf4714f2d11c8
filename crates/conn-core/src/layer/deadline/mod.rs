//! A per-call deadline, fixed or read from the request.

mod future;
#[cfg(feature = "http")]
mod http;
mod layer;
mod policy;
mod service;

pub use future::DeadlineFuture;
#[cfg(feature = "http")]
pub use http::{CONNKIT_TIMEOUT, GRPC_TIMEOUT, parse_timeout};
pub use layer::DeadlineLayer;
pub use policy::{CallDeadline, DeadlinePolicy, Fixed, FromRequest};
pub use service::DeadlineService;

use crate::Deadline;

/// A request that carries its own deadline, read by
/// [`DeadlineLayer::from_request`].
pub trait HasDeadline {
    /// The request's own deadline, if it has one.
    fn deadline(&self) -> Option<Deadline>;
}

/// Pairs any request with a deadline.
///
/// ```
/// use conn_core::{Deadline, layer::{HasDeadline, WithDeadline}};
/// let req = WithDeadline::new(Deadline::NOW, "ping");
/// assert_eq!(req.deadline(), Some(Deadline::NOW));
/// assert_eq!(req.into_inner(), "ping");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WithDeadline<T> {
    deadline: Deadline,
    request: T,
}

impl<T> WithDeadline<T> {
    /// Wraps `request` with `deadline`.
    pub fn new(deadline: Deadline, request: T) -> Self {
        WithDeadline { deadline, request }
    }
    /// The wrapped request.
    pub fn get_ref(&self) -> &T {
        &self.request
    }
    /// Unwraps the request.
    pub fn into_inner(self) -> T {
        self.request
    }
}

impl<T> HasDeadline for WithDeadline<T> {
    fn deadline(&self) -> Option<Deadline> {
        Some(self.deadline)
    }
}

#[cfg(test)]
mod tests;
