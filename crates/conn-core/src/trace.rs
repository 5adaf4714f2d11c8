//! Every lifecycle step as a `tracing` span: `accept`, `connect`, `done`,
//! `close` and `kill` on every transport, and the serve loop's `drain`.
//!
//! Spans are at DEBUG level under the target `conn_core::lifecycle`, so
//! they are quiet by default and cost one cached check per step when no
//! subscriber wants them (no clock is read, no field formatted). Turn
//! them on with a filter such as `RUST_LOG=conn_core::lifecycle=debug`.
//! Each carries:
//!
//! | field | value |
//! |---|---|
//! | `transport` | the scheme: `ipc`, `tcp`, `utcp`, `mem` |
//! | `endpoint` | what the step is on: the listener, or the peer (errors name the same) |
//! | `outcome` | `ok`, or the error kind's errno name (`ECONNRESET`, `ETIMEDOUT`, ...) |
//! | `duration_us` | how long the step took, in microseconds |
//!
//! The `drain` span also records the report's `accepted`, `closed`,
//! `killed` and `cut_by_peer`.
//!
//! ```
//! use conn_core::{Result, trace::Step};
//!
//! // How a transport reports a step (here with no subscriber: a no-op).
//! let step = conn_core::lifecycle_span!("close", "mem", "mem://doc");
//! let result: Result<()> = Ok(());
//! step.end(&result);
//! ```

use std::time::Instant;

use tracing::Span;

/// `tracing`, for [`lifecycle_span!`](crate::lifecycle_span) in crates
/// that do not depend on it themselves.
#[doc(hidden)]
pub use tracing as __tracing;

use crate::Result;

/// The `tracing` target of every lifecycle span.
pub const TARGET: &str = "conn_core::lifecycle";

/// One lifecycle step under way: its span, and when it began if anyone
/// is listening. Made by [`lifecycle_span!`](crate::lifecycle_span);
/// [`end`](Step::end) records how it went.
#[derive(Debug)]
#[must_use = "a step records its outcome when it ends"]
pub struct Step {
    span: Span,
    start: Option<Instant>,
}

impl Step {
    /// Begins a step in `span` (reads the clock only if the span is on).
    pub fn begin(span: Span) -> Step {
        let start = (!span.is_disabled()).then(Instant::now);
        Step { span, start }
    }

    /// The step's span, to enter or to record more fields in.
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// Records `result`'s outcome and the duration, and closes the span.
    pub fn end<T>(self, result: &Result<T>) {
        let Some(start) = self.start else { return };
        let outcome = match result {
            Ok(_) => "ok",
            Err(e) => e.kind().errno_name(),
        };
        self.span.record("outcome", outcome);
        self.span
            .record("duration_us", start.elapsed().as_micros() as u64);
    }
}

/// A [`Step`] for lifecycle step `$name` (a literal: `"accept"`,
/// `"close"`, ...) of transport `$transport` on `$endpoint` (anything
/// `Display`, formatted only when the span is on). See [`crate::trace`].
#[macro_export]
macro_rules! lifecycle_span {
    ($name:literal, $transport:expr, $endpoint:expr) => {
        $crate::trace::Step::begin($crate::trace::__tracing::debug_span!(
            target: "conn_core::lifecycle",
            $name,
            transport = $transport,
            endpoint = %$endpoint,
            outcome = $crate::trace::__tracing::field::Empty,
            duration_us = $crate::trace::__tracing::field::Empty,
        ))
    };
}
