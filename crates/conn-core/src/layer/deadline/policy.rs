use std::time::Duration;

use super::HasDeadline;
use crate::Deadline;

/// A call's deadline as a policy picks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallDeadline {
    /// A timeout counted from the call's first poll (the clock is read only
    /// if the call does not complete on that poll).
    After(Duration),
    /// A fixed deadline.
    At(Deadline),
}

/// How a [`DeadlineService`](super::DeadlineService) picks each call's deadline.
pub trait DeadlinePolicy<Req> {
    /// The deadline for a call with `request`.
    fn deadline(&self, request: &Req) -> CallDeadline;
}

/// The same timeout for every call.
#[derive(Clone, Copy, Debug)]
pub struct Fixed(pub(super) Option<Duration>);

/// The request's own deadline, or a default timeout for requests without one.
#[derive(Clone, Copy, Debug)]
pub struct FromRequest(pub(super) Option<Duration>);

fn timeout(t: Option<Duration>) -> CallDeadline {
    match t {
        Some(t) => CallDeadline::After(t),
        None => CallDeadline::At(Deadline::NEVER),
    }
}

impl<Req> DeadlinePolicy<Req> for Fixed {
    #[inline]
    fn deadline(&self, _: &Req) -> CallDeadline {
        timeout(self.0)
    }
}

impl<Req: HasDeadline> DeadlinePolicy<Req> for FromRequest {
    #[inline]
    fn deadline(&self, request: &Req) -> CallDeadline {
        match request.deadline() {
            Some(d) => CallDeadline::At(d),
            None => timeout(self.0),
        }
    }
}
