//! Where the router's operations are put in order: the one interface of
//! its two modes.
//!
//! A client's join, leave, multicast or departure becomes an [`Op`] once it
//! passed the checks (names, limits; the access list is checked where the
//! op is applied, against the list in force at its place in the order).
//! The router hands the op
//! to its [`Sequencer`] and applies it when the sequencer says it is next:
//! a lone daemon ([`Alone`]) at once, since the router's lock already is
//! the one order; a cluster member ([`Link`]) when CPG delivers it back, at
//! this daemon as at every other, in CPG's agreed order. Either way the
//! same code applies it ([`State::apply`](super::State)), so the two modes
//! cannot drift apart.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::daemon::cluster_op::{Op, new_batch};

/// A batch takes more ops until it holds this much (corosync fragments
/// larger messages itself; this bounds one CPG message).
pub(crate) const BATCH_MAX: usize = 128 * 1024;

/// When an op handed to a [`Sequencer`] is to be applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Turn {
    /// It is the next in order: apply it now.
    Now,
    /// It went out to be ordered; it comes back through
    /// [`Router::apply`](super::Router::apply).
    Later,
}

/// Puts a router's operations in one order.
pub(crate) trait Sequencer: Send {
    /// Takes `op`, made by one of this daemon's own clients, into the order.
    fn sequence(&self, op: &Op<'_>) -> Turn;

    /// This daemon's CPG member, `node << 32 | pid`; 0 for a lone daemon
    /// (no CPG member is 0: a pid never is).
    fn member(&self) -> u64;
}

/// A daemon on its own: the order in which calls take the router's lock is
/// the order.
pub(crate) struct Alone;

impl Sequencer for Alone {
    fn sequence(&self, _: &Op<'_>) -> Turn {
        Turn::Now
    }

    fn member(&self) -> u64 {
        0
    }
}

/// A cluster member's way out to CPG: the ops go into batches that the CPG
/// task sends; CPG's agreed order is the order.
pub(crate) struct Link {
    /// Batches of encoded operations not yet handed to CPG; ops are
    /// encoded straight into the last one.
    pub(crate) pending: Arc<Mutex<VecDeque<Vec<u8>>>>,
    /// Wakes the CPG task when the first batch appears.
    pub(crate) wake: Arc<tokio::sync::Notify>,
    /// This daemon's CPG member, `node << 32 | pid`.
    pub(crate) me: u64,
}

impl Sequencer for Link {
    /// Encodes `op` into the batch the CPG task sends next.
    fn sequence(&self, op: &Op<'_>) -> Turn {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let first = pending.is_empty();
        if pending.back().is_none_or(|b| b.len() >= BATCH_MAX) {
            // Its acknowledgement is stamped when the CPG task sends it.
            pending.push_back(new_batch());
        }
        if let Some(batch) = pending.back_mut()
            && let Err(e) = op.emit_into(batch)
        {
            // The names were checked against the limits before; an op
            // that cannot be emitted is this daemon's bug, not a reason
            // to panic.
            tracing::error!(error = %e, ?op, "cluster: an op that cannot be emitted dropped");
        }
        drop(pending);
        if first {
            self.wake.notify_one();
        }
        Turn::Later
    }

    fn member(&self) -> u64 {
        self.me
    }
}
