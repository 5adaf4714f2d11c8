use std::time::Duration;

use super::HasDeadline;
use crate::Deadline;

/// How a [`DeadlineService`](super::DeadlineService) picks each call's deadline.
pub trait DeadlinePolicy<Req> {
    /// The deadline for a call with `request`, taken at call time.
    fn deadline(&self, request: &Req) -> Deadline;
}

/// The same timeout for every call, counted from the call.
#[derive(Clone, Copy, Debug)]
pub struct Fixed(pub(super) Option<Duration>);

/// The request's own deadline, or a default timeout for requests without one.
#[derive(Clone, Copy, Debug)]
pub struct FromRequest(pub(super) Option<Duration>);

fn after(timeout: Option<Duration>) -> Deadline {
    match timeout {
        // Zero is libdill's "now": poll once, never block.
        Some(t) if t.is_zero() => Deadline::NOW,
        Some(t) => Deadline::after(t),
        None => Deadline::NEVER,
    }
}

impl<Req> DeadlinePolicy<Req> for Fixed {
    #[inline]
    fn deadline(&self, _: &Req) -> Deadline {
        after(self.0)
    }
}

impl<Req: HasDeadline> DeadlinePolicy<Req> for FromRequest {
    #[inline]
    fn deadline(&self, request: &Req) -> Deadline {
        request.deadline().unwrap_or_else(|| after(self.0))
    }
}
