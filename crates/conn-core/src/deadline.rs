//! Points in time after which an operation gives up, in libdill's convention.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project::pin_project;
use tokio::time::{Instant, Sleep};

use crate::error::{Error, ErrorKind};

/// When a blocking operation gives up.
///
/// Every connkit call that can block takes a `Deadline`, as every libdill call
/// takes an `int64_t deadline`:
///
/// * [`Deadline::NOW`] tries once and never blocks (libdill's `0`);
/// * [`Deadline::NEVER`] blocks for as long as it takes (libdill's `-1`);
/// * [`Deadline::at`] and [`Deadline::after`] give up at a point in time.
///
/// Missing a deadline is [`ErrorKind::TimedOut`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conn_core::{Deadline, ErrorKind};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// // A future that never finishes misses any deadline but NEVER.
/// let err = Deadline::after(Duration::from_millis(5))
///     .run(std::future::pending::<()>())
///     .await
///     .unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::TimedOut);
///
/// // NOW polls exactly once: a ready future still succeeds.
/// assert_eq!(Deadline::NOW.run(async { 7 }).await.unwrap(), 7);
///
/// // libdill-style milliseconds: -1 is never, 0 is now.
/// assert_eq!(Deadline::from_millis(-1), Deadline::NEVER);
/// assert_eq!(Deadline::from_millis(0), Deadline::NOW);
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Deadline(Kind);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Now,
    At(Instant),
    Never,
}

impl Deadline {
    /// Try once, never block.
    pub const NOW: Deadline = Deadline(Kind::Now);
    /// Block for as long as it takes.
    pub const NEVER: Deadline = Deadline(Kind::Never);

    /// Give up at `instant`. An instant already past behaves like [`Deadline::NOW`].
    pub fn at(instant: impl Into<Instant>) -> Deadline {
        Deadline(Kind::At(instant.into()))
    }

    /// Give up `timeout` from now. A zero duration behaves like [`Deadline::NOW`].
    pub fn after(timeout: Duration) -> Deadline {
        match Instant::now().checked_add(timeout) {
            Some(at) => Deadline(Kind::At(at)),
            None => Deadline::NEVER,
        }
    }

    /// Converts libdill's `int64_t` milliseconds: `-1` (any negative) is never,
    /// `0` is now, anything else is that many milliseconds from now.
    pub fn from_millis(ms: i64) -> Deadline {
        match ms {
            ..0 => Deadline::NEVER,
            0 => Deadline::NOW,
            ms => Deadline::after(Duration::from_millis(ms.unsigned_abs())),
        }
    }

    /// The instant this deadline falls on; `None` for [`Deadline::NEVER`].
    /// [`Deadline::NOW`] falls on the present moment.
    pub fn instant(&self) -> Option<Instant> {
        match self.0 {
            Kind::Now => Some(Instant::now()),
            Kind::At(at) => Some(at),
            Kind::Never => None,
        }
    }

    /// Time left before the deadline; `None` for [`Deadline::NEVER`].
    pub fn remaining(&self) -> Option<Duration> {
        self.instant()
            .map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// True when waiting is no longer allowed: `NOW`, or a point already past.
    pub fn is_expired(&self) -> bool {
        match self.0 {
            Kind::Now => true,
            Kind::At(at) => at <= Instant::now(),
            Kind::Never => false,
        }
    }

    /// True for [`Deadline::NEVER`].
    pub fn is_never(&self) -> bool {
        matches!(self.0, Kind::Never)
    }

    /// The earlier of two deadlines.
    pub fn min(self, other: Deadline) -> Deadline {
        match (self.0, other.0) {
            (Kind::Now, _) | (_, Kind::Now) => Deadline::NOW,
            (Kind::Never, x) | (x, Kind::Never) => Deadline(x),
            (Kind::At(a), Kind::At(b)) => Deadline(Kind::At(a.min(b))),
        }
    }

    /// Runs `future` until it finishes or this deadline passes, whichever
    /// comes first. With [`Deadline::NOW`] (or a deadline already past) the
    /// future is polled exactly once. Missing the deadline is
    /// [`ErrorKind::TimedOut`] and drops the future.
    pub fn run<F>(self, future: F) -> Timed<F> {
        Timed {
            future,
            deadline: self,
            relative: None,
            sleep: None,
        }
    }

    /// Like [`Deadline::run`] with `Deadline::after(timeout)`, but the clock
    /// is read only if the future is not ready on its first poll, so the
    /// timeout counts from that first poll. Calls that complete at once
    /// never read the clock: this is the per-call fast path of
    /// [`DeadlineLayer`](crate::layer::DeadlineLayer).
    pub fn run_for<F>(timeout: Duration, future: F) -> Timed<F> {
        let deadline = if timeout.is_zero() {
            Deadline::NOW
        } else {
            Deadline::NEVER
        };
        Timed {
            future,
            deadline,
            relative: (!timeout.is_zero()).then_some(timeout),
            sleep: None,
        }
    }
}

impl From<i64> for Deadline {
    fn from(ms: i64) -> Deadline {
        Deadline::from_millis(ms)
    }
}

impl From<Instant> for Deadline {
    fn from(at: Instant) -> Deadline {
        Deadline::at(at)
    }
}

impl From<std::time::Instant> for Deadline {
    fn from(at: std::time::Instant) -> Deadline {
        Deadline::at(at)
    }
}

/// The future returned by [`Deadline::run`].
///
/// The timer is armed only when the inner future first returns `Pending`, so
/// a call that completes on its first poll never touches the timer wheel.
#[pin_project]
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Timed<F> {
    #[pin]
    future: F,
    deadline: Deadline,
    /// A timeout still to be turned into `deadline` at the first pending poll.
    relative: Option<Duration>,
    #[pin]
    sleep: Option<Sleep>,
}

impl<F> Timed<F> {
    /// The deadline this future runs under ([`Deadline::NEVER`] until a
    /// [`Deadline::run_for`] timeout starts at its first pending poll).
    pub fn deadline(&self) -> Deadline {
        self.deadline
    }
}

impl<F: Future> Future for Timed<F> {
    type Output = Result<F::Output, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(out) = this.future.poll(cx) {
            return Poll::Ready(Ok(out));
        }
        if let Some(timeout) = this.relative.take() {
            *this.deadline = Deadline::after(timeout);
        }
        let at = match this.deadline.0 {
            Kind::Never => return Poll::Pending,
            Kind::Now => return Poll::Ready(Err(Error::new(ErrorKind::TimedOut))),
            Kind::At(at) => at,
        };
        if this.sleep.is_none() {
            if at <= Instant::now() {
                return Poll::Ready(Err(Error::new(ErrorKind::TimedOut)));
            }
            this.sleep.set(Some(tokio::time::sleep_until(at)));
        }
        match this.sleep.as_pin_mut().map(|s| s.poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Err(Error::new(ErrorKind::TimedOut))),
            _ => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    /// A future that counts its polls and is ready on poll number `ready_on`.
    struct CountingPolls {
        polls: Rc<Cell<u32>>,
        ready_on: u32,
    }

    impl Future for CountingPolls {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.set(self.polls.get() + 1);
            if self.polls.get() >= self.ready_on {
                Poll::Ready(())
            } else {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn now_polls_exactly_once_and_times_out() {
        let polls = Rc::new(Cell::new(0));
        let err = Deadline::NOW
            .run(CountingPolls {
                polls: polls.clone(),
                ready_on: 2,
            })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert_eq!(polls.get(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn now_succeeds_when_ready_on_first_poll() {
        let polls = Rc::new(Cell::new(0));
        Deadline::NOW
            .run(CountingPolls {
                polls: polls.clone(),
                ready_on: 1,
            })
            .await
            .unwrap();
        assert_eq!(polls.get(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_missed_is_timed_out_at_the_deadline() {
        let start = Instant::now();
        let err = Deadline::after(Duration::from_millis(250))
            .run(std::future::pending::<()>())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert_eq!(start.elapsed(), Duration::from_millis(250));
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_met_returns_the_output() {
        let out = Deadline::after(Duration::from_millis(250))
            .run(async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                42
            })
            .await
            .unwrap();
        assert_eq!(out, 42);
    }

    #[tokio::test(start_paused = true)]
    async fn never_waits_as_long_as_it_takes() {
        let out = Deadline::NEVER
            .run(async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                1
            })
            .await
            .unwrap();
        assert_eq!(out, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_in_the_past_polls_once() {
        let polls = Rc::new(Cell::new(0));
        let past = Instant::now();
        tokio::time::advance(Duration::from_millis(1)).await;
        let err = Deadline::at(past)
            .run(CountingPolls {
                polls: polls.clone(),
                ready_on: 5,
            })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert_eq!(polls.get(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn libdill_milliseconds_convert() {
        assert_eq!(Deadline::from(-1), Deadline::NEVER);
        assert_eq!(Deadline::from(-20), Deadline::NEVER);
        assert_eq!(Deadline::from(0), Deadline::NOW);
        let d = Deadline::from(1500);
        assert_eq!(d.remaining(), Some(Duration::from_millis(1500)));
    }

    #[tokio::test(start_paused = true)]
    async fn min_picks_the_earlier() {
        let soon = Deadline::after(Duration::from_secs(1));
        let late = Deadline::after(Duration::from_secs(2));
        assert_eq!(soon.min(late), soon);
        assert_eq!(late.min(Deadline::NEVER), late);
        assert_eq!(Deadline::NOW.min(late), Deadline::NOW);
        assert!(Deadline::NOW.is_expired());
        assert!(!Deadline::NEVER.is_expired());
    }
}
