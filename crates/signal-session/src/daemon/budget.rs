//! What clients' unfinished frames may cost sessiond: a budget per client
//! and one for all of them, charged for a frame's buffer before bytes are
//! read into it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use conn_core::{Error, ErrorKind, Result};

use crate::wire::io::READ_ROOM;

/// The daemon's account of what all clients' frame buffers hold.
#[derive(Debug)]
pub(crate) struct Budget {
    per_client: usize,
    total: usize,
    used: AtomicUsize,
}

impl Budget {
    pub(crate) fn new(per_client: usize, total: usize) -> Arc<Budget> {
        Arc::new(Budget {
            per_client,
            total,
            used: AtomicUsize::new(0),
        })
    }

    /// Takes `extra` more bytes for a buffer growing to `size`. Growth past
    /// [`READ_ROOM`] may use only three quarters of the total, so a small
    /// request still finds room while large partial frames hold the rest.
    fn take(&self, extra: usize, size: usize) -> Result<()> {
        let ceiling = if size > READ_ROOM {
            self.total / 4 * 3
        } else {
            self.total
        };
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(extra).filter(|n| *n <= ceiling)
            })
            .map(drop)
            .map_err(|used| {
                over(format!(
                    "{extra} more bytes with {used} of the daemon's {} for client frames in use",
                    self.total
                ))
            })
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

fn over(detail: String) -> Error {
    Error::new(ErrorKind::NoBufferSpace)
        .during("read sessiond frame")
        .detail(format!("over memory budget: {detail}"))
}

/// One client's share; what it holds goes back when it drops.
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
    pub(crate) fn resize(&mut self, size: usize) -> Result<()> {
        if size <= self.held {
            self.budget.give_back(self.held - size);
        } else {
            if size > self.budget.per_client {
                return Err(over(format!(
                    "a {size}-byte frame buffer passes the per-client budget of {} bytes",
                    self.budget.per_client
                )));
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

/// Hands the heap's free memory back to the kernel after a large frame
/// buffer was freed: glibc keeps freed heap memory for reuse. Measured with
/// 300 clients each holding a partial maximum-size frame, sessiond came
/// back to within 3 MiB of its start with or without this (its largest
/// buffers are maps of their own, unmapped when freed); it is for the
/// buffers glibc places on the heap instead, as mailboxd's showed
/// (33 MiB kept without a trim, 8 MiB with).
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

    #[test]
    fn budgets_refuse_and_every_byte_goes_back() {
        let b = Budget::new(1000, 1500);
        let mut one = Charge::new(b.clone());
        assert!(one.resize(1001).is_err());
        one.resize(1000).unwrap();
        let mut two = Charge::new(b.clone());
        assert_eq!(
            two.resize(600).unwrap_err().kind(),
            ErrorKind::NoBufferSpace
        );
        two.resize(500).unwrap();
        one.resize(0).unwrap();
        drop(two);
        assert_eq!(b.used.load(Ordering::Relaxed), 0);
    }
}
