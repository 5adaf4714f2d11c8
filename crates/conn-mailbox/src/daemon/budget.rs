//! What clients' unfinished frames may cost the daemon: a budget per client
//! and one for all of them, charged for the read buffers' capacity before
//! bytes are read into it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::wire::READ_ROOM;

/// How much memory clients' read buffers may hold.
///
/// A buffer holds at most one partial frame (plus the small frames read
/// with it), so `per_client` below the largest frame refuses the largest
/// messages. Growth past [`READ_ROOM`] may use only three quarters of
/// `total`: a new client's first buffer still finds room while big partial
/// frames hold the rest.
///
/// ```
/// use conn_mailbox::daemon::MemoryBudget;
/// let d = MemoryBudget::default();
/// assert_eq!((d.per_client, d.total), (2 << 20, 32 << 20));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryBudget {
    /// Most bytes one client's read buffer may hold.
    pub per_client: usize,
    /// Most bytes all clients' read buffers may hold together.
    pub total: usize,
}

impl Default for MemoryBudget {
    fn default() -> Self {
        // One maximum-size frame fits a client; the total keeps 300 clients
        // that each hold one partial maximum-size frame under 64 MiB.
        MemoryBudget {
            per_client: 2 << 20,
            total: 32 << 20,
        }
    }
}

/// Why a client's buffer may not grow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum OverBudget {
    /// The buffer would pass the per-client budget.
    Client { wanted: usize, limit: usize },
    /// All clients' buffers would pass the total budget.
    Total {
        wanted: usize,
        used: usize,
        limit: usize,
    },
}

impl fmt::Display for OverBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OverBudget::Client { wanted, limit } => write!(
                f,
                "over memory budget: a {wanted}-byte read buffer passes the \
                 per-client budget of {limit} bytes"
            ),
            OverBudget::Total {
                wanted,
                used,
                limit,
            } => write!(
                f,
                "over memory budget: {wanted} more bytes with {used} of the \
                 daemon's {limit} for client buffers in use"
            ),
        }
    }
}

/// The daemon's account of what all clients' buffers hold.
#[derive(Debug)]
pub(crate) struct Budget {
    limits: MemoryBudget,
    used: AtomicUsize,
}

impl Budget {
    pub(crate) fn new(limits: MemoryBudget) -> Arc<Budget> {
        Arc::new(Budget {
            limits,
            used: AtomicUsize::new(0),
        })
    }

    /// Bytes charged now, over all clients.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Takes `extra` more bytes for a buffer growing to `size`, if the total allows.
    fn take(&self, extra: usize, size: usize) -> Result<(), OverBudget> {
        let ceiling = if size > READ_ROOM {
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

/// One client's share of the budget; what it holds goes back when it drops.
#[derive(Debug)]
pub(crate) struct Charge {
    budget: Arc<Budget>,
    held: usize,
}

impl Charge {
    pub(crate) fn new(budget: Arc<Budget>) -> Charge {
        Charge { budget, held: 0 }
    }

    /// Accounts for a buffer of `size` bytes: growth must fit both budgets,
    /// shrinking gives back.
    pub(crate) fn resize(&mut self, size: usize) -> Result<(), OverBudget> {
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
    pub(crate) fn held(&self) -> usize {
        self.held
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.give_back(self.held);
    }
}

/// Hands the heap's free memory back to the kernel, after a client's large
/// buffer or queue was freed. glibc keeps freed memory for reuse: measured with 300
/// clients each holding a partial maximum-size frame, mailboxd stayed at
/// 33 MiB after they left (8 MiB before) without this, and came back to
/// within a few MiB of where it started with it.
pub(crate) fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointer and only walks glibc's own free
    // lists under its own locks; it may be called at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(per_client: usize, total: usize) -> Arc<Budget> {
        Budget::new(MemoryBudget { per_client, total })
    }

    #[test]
    fn a_client_past_its_own_budget_is_refused() {
        let mut c = Charge::new(budget(100_000, 1 << 30));
        assert!(c.resize(READ_ROOM).is_ok());
        assert!(matches!(
            c.resize(100_001),
            Err(OverBudget::Client { limit: 100_000, .. })
        ));
        assert_eq!(c.held(), READ_ROOM);
    }

    #[test]
    fn growth_stops_at_three_quarters_and_first_buffers_fill_the_rest() {
        let b = budget(1 << 20, 8 * READ_ROOM);
        let mut big = Charge::new(b.clone());
        assert!(big.resize(6 * READ_ROOM).is_ok());
        assert!(big.resize(6 * READ_ROOM + 1).is_err());
        let mut small: Vec<_> = (0..2).map(|_| Charge::new(b.clone())).collect();
        for c in &mut small {
            assert!(c.resize(READ_ROOM).is_ok());
        }
        assert!(Charge::new(b.clone()).resize(READ_ROOM).is_err());
        drop(small);
        drop(big);
        assert_eq!(b.used(), 0, "every byte goes back");
    }

    #[test]
    fn shrinking_gives_back() {
        let b = budget(1 << 20, 1 << 20);
        let mut c = Charge::new(b.clone());
        c.resize(500_000).unwrap();
        c.resize(READ_ROOM).unwrap();
        assert_eq!(b.used(), READ_ROOM);
    }
}
