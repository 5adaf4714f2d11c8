//! What clients' unfinished frames may cost a daemon: a budget per client
//! and one for all of them, charged for a buffer before bytes are read into
//! it. mailboxd and sessiond share it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::{Error, ErrorKind};

/// The limits of a [`Budget`].
///
/// ```
/// use conn_core::budget::{Budget, Charge, MemoryBudget};
///
/// let budget = Budget::new(MemoryBudget { per_client: 1000, total: 1500 }, 64 * 1024);
/// let mut one = Charge::new(budget.clone());
/// one.resize(1000).unwrap();
/// let mut two = Charge::new(budget.clone());
/// let refused = two.resize(600).unwrap_err(); // 1600 would pass the total
/// assert!(refused.to_string().starts_with("over memory budget"));
/// drop(one);
/// two.resize(600).unwrap();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryBudget {
    /// The most one client's buffer may hold.
    pub per_client: usize,
    /// The most all clients' buffers may hold together.
    pub total: usize,
}

impl Default for MemoryBudget {
    /// 2 MiB a client, 32 MiB in all: 300 clients each holding a partial
    /// maximum-size frame cost a daemon at most 32 MiB.
    fn default() -> Self {
        MemoryBudget {
            per_client: 2 << 20,
            total: 32 << 20,
        }
    }
}

/// Why a buffer may not grow.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OverBudget {
    /// The buffer would pass the per-client budget.
    Client {
        /// The size asked for.
        wanted: usize,
        /// The per-client budget.
        limit: usize,
    },
    /// The growth would pass what is left of the total.
    Total {
        /// The bytes asked for.
        wanted: usize,
        /// What all clients held then.
        used: usize,
        /// The total budget.
        limit: usize,
    },
}

impl fmt::Display for OverBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OverBudget::Client { wanted, limit } => write!(
                f,
                "over memory budget: a {wanted}-byte buffer passes the per-client budget of {limit} bytes"
            ),
            OverBudget::Total {
                wanted,
                used,
                limit,
            } => write!(
                f,
                "over memory budget: {wanted} more bytes with {used} of the daemon's {limit} for client buffers in use"
            ),
        }
    }
}

impl std::error::Error for OverBudget {}

/// `NoBufferSpace`, with the budget that said no.
impl From<OverBudget> for Error {
    fn from(over: OverBudget) -> Error {
        Error::new(ErrorKind::NoBufferSpace).detail(over.to_string())
    }
}

/// A daemon's account of what all clients' buffers hold.
#[derive(Debug)]
pub struct Budget {
    limits: MemoryBudget,
    large: usize,
    used: AtomicUsize,
}

impl Budget {
    /// An account with these limits. Buffers growing past `large` bytes
    /// may use only three quarters of the total, so a client with a small
    /// frame still finds room while large partial frames hold the rest.
    pub fn new(limits: MemoryBudget, large: usize) -> Arc<Budget> {
        Arc::new(Budget {
            limits,
            large,
            used: AtomicUsize::new(0),
        })
    }

    /// What all clients' buffers hold now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn take(&self, extra: usize, size: usize) -> Result<(), OverBudget> {
        let ceiling = if size > self.large {
            self.limits.total / 4 * 3
        } else {
            self.limits.total
        };
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(extra).filter(|n| *n <= ceiling)
            })
            .map(drop)
            .map_err(|used| OverBudget::Total {
                wanted: extra,
                used,
                limit: self.limits.total,
            })
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// One client's share of a [`Budget`]; what it holds goes back when it drops.
#[derive(Debug)]
pub struct Charge {
    budget: Arc<Budget>,
    held: usize,
}

impl Charge {
    /// A client holding nothing yet.
    pub fn new(budget: Arc<Budget>) -> Charge {
        Charge { budget, held: 0 }
    }

    /// Accounts for a buffer of `size` bytes: growth must fit both budgets
    /// (nothing changes when it does not), shrinking gives back.
    pub fn resize(&mut self, size: usize) -> Result<(), OverBudget> {
        if size <= self.held {
            self.budget.give_back(self.held - size);
        } else {
            let limit = self.budget.limits.per_client;
            if size > limit {
                return Err(OverBudget::Client {
                    wanted: size,
                    limit,
                });
            }
            self.budget.take(size - self.held, size)?;
        }
        self.held = size;
        Ok(())
    }

    /// The bytes this client is charged for now.
    pub fn held(&self) -> usize {
        self.held
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.give_back(self.held);
    }
}

/// Hands the heap's free memory back to the kernel, after a large buffer
/// was freed: glibc keeps freed heap memory for reuse, so without it a
/// daemon's RSS stays at its peak after a flood (measured on mailboxd: 33
/// MiB kept after 300 partial frames went, 8 MiB with the trim).
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointer and only walks glibc's own free
    // lists under its own locks; it may be called at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// How long after a client goes its memory is handed back: the delay
/// gathers a burst of departures into one [`trim_heap`].
pub const TRIM_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether a trim is already scheduled.
static TRIM_PENDING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Clears [`TRIM_PENDING`] when dropped: after the trim ran, or when its
/// task went with its runtime before it could.
struct Pending;

impl Drop for Pending {
    fn drop(&mut self) {
        TRIM_PENDING.store(false, Ordering::Release);
    }
}

/// Schedules one [`trim_heap`] [`TRIM_AFTER`] from now on the current tokio
/// runtime, unless one is already scheduled; without a runtime it trims at
/// once. Many small frees (a flood of connections ending, each with its
/// task and buffers) leave glibc's heap as large as at the flood's peak,
/// and no single one of them is large enough to trim for: measured on
/// mailboxd, 300 connections opened and closed kept 4.5 MiB until the
/// next large free. At most one trim a second, whatever the churn.
pub fn trim_heap_soon() {
    if TRIM_PENDING.swap(true, Ordering::AcqRel) {
        return;
    }
    let pending = Pending;
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(async move {
                tokio::time::sleep(TRIM_AFTER).await;
                drop(pending);
                trim_heap();
            });
        }
        Err(_) => {
            drop(pending);
            trim_heap();
        }
    }
}

/// Calls [`trim_heap_soon`] when dropped: a daemon holds one for each
/// client it serves, so whatever the client cost is handed back soon after
/// it goes, however it ends.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let client = conn_core::budget::TrimWhenGone::new();
/// // ... serve the client ...
/// drop(client); // one trim within conn_core::budget::TRIM_AFTER
/// # }
/// ```
#[derive(Debug, Default)]
pub struct TrimWhenGone(());

impl TrimWhenGone {
    /// A guard for one client.
    pub fn new() -> Self {
        TrimWhenGone(())
    }
}

impl Drop for TrimWhenGone {
    fn drop(&mut self) {
        trim_heap_soon();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trim_whose_runtime_went_before_it_ran_does_not_stop_the_next() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            drop(TrimWhenGone::new());
            assert!(TRIM_PENDING.load(Ordering::Acquire), "one trim scheduled");
        });
        drop(rt);
        assert!(
            !TRIM_PENDING.load(Ordering::Acquire),
            "the next may be scheduled"
        );
        // Without a runtime: at once.
        trim_heap_soon();
        assert!(!TRIM_PENDING.load(Ordering::Acquire));
    }

    fn budget(per_client: usize, total: usize) -> Arc<Budget> {
        Budget::new(MemoryBudget { per_client, total }, 64 * 1024)
    }

    #[test]
    fn budgets_refuse_and_every_byte_goes_back() {
        let b = budget(1000, 1500);
        let mut one = Charge::new(b.clone());
        assert!(matches!(one.resize(1001), Err(OverBudget::Client { .. })));
        one.resize(1000).unwrap();
        let mut two = Charge::new(b.clone());
        assert!(matches!(two.resize(600), Err(OverBudget::Total { .. })));
        two.resize(500).unwrap();
        one.resize(0).unwrap();
        drop(two);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn large_buffers_leave_a_quarter_of_the_total_to_small_ones() {
        let b = Budget::new(
            MemoryBudget {
                per_client: 1 << 20,
                total: 1 << 20,
            },
            1000,
        );
        let mut large = Charge::new(b.clone());
        assert!(large.resize(800 << 10).is_err(), "past three quarters");
        large.resize(700 << 10).unwrap();
        let mut small = Charge::new(b.clone());
        small.resize(900).unwrap();
    }
}
