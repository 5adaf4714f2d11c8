//! `mailboxd --cluster corosync`: the daemon's link to corosync's CPG.
//!
//! One task owns the CPG membership. It sends what the router hands it
//! (ops from local clients, merged into batches while the queue holds
//! several) and applies what CPG delivers, in CPG's one agreed order, to
//! the router. CPG's membership changes map onto Spread's causes: a daemon
//! that left in order (`cpg_leave`, graceful shutdown) takes its clients
//! out with cause disconnect; one lost (process down, node down: SIGKILL,
//! crash, a cut link) with cause network.
//!
//! State transfer: after every configuration with joiners, every daemon
//! multicasts its group state ([`Op::Sync`]) and buffers everything else
//! until it holds the Sync of every member; then all install the same
//! merged state ([`Router::merge`]) and replay the buffer. A fresh daemon so
//! takes the state at the place of its join in the stream; two halves of a
//! healed partition see each other's members join.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use conn_cpg::{CpgGroup, Event, Member, Membership, Reason};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::cluster_op::{BATCH_VERSION, Op, SyncGroup, ops};
use super::router::{Link, Router};
use crate::Cause;

fn key(m: Member) -> u64 {
    u64::from(m.node) << 32 | u64::from(m.pid)
}

/// What waits while a state exchange is under way.
enum Held {
    Batch(u64, Vec<u8>),
    /// The daemons that left in one configuration change, with causes.
    Left(Vec<(u64, Cause)>),
}

/// A state exchange: the configuration, whose Syncs are still missing, and
/// what arrived meanwhile.
struct Round {
    config: Vec<u64>,
    expected: BTreeSet<u64>,
    got: BTreeMap<u64, Vec<SyncGroup>>,
}

/// The daemon's CPG membership.
pub(crate) struct Node {
    group: CpgGroup,
    router: Arc<Router>,
    pending: Arc<Mutex<VecDeque<Vec<u8>>>>,
    wake: Arc<Notify>,
    round: Option<Round>,
    held: VecDeque<Held>,
    /// Seen our own join: from here on the stream is ours to apply.
    started: bool,
    synced: bool,
}

impl Node {
    /// Joins CPG group `name` through the local corosync and waits until
    /// this daemon holds the cluster's state.
    pub(crate) async fn join(name: &str, router: Arc<Router>) -> conn_core::Result<Node> {
        let group = CpgGroup::join(name)?;
        let (pending, wake) = (Arc::default(), Arc::new(Notify::new()));
        router.set_cluster(Link {
            pending: Arc::clone(&pending),
            wake: Arc::clone(&wake),
            me: key(group.me()),
        });
        tracing::info!(group = name, me = %group.me(), "mailboxd joined the cluster");
        let mut node = Node {
            group,
            router,
            pending,
            wake,
            round: None,
            held: VecDeque::new(),
            started: false,
            synced: false,
        };
        while !node.synced {
            let ev = node.group.next().await?;
            node.event(ev).await?;
        }
        Ok(node)
    }

    /// Runs until `stop` fires (then leaves CPG in order) or corosync fails.
    pub(crate) async fn run(mut self, stop: CancellationToken) -> conn_core::Result<()> {
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                ev = self.group.next() => self.event(ev?).await?,
                () = self.wake.notified() => self.send_pending().await?,
            }
        }
        self.group.leave()
    }

    /// Sends the batches the router filled, until none is left.
    async fn send_pending(&mut self) -> conn_core::Result<()> {
        loop {
            let batch = self
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop_front();
            match batch {
                Some(batch) => self.group.send(&batch).await?,
                None => return Ok(()),
            }
        }
    }

    async fn event(&mut self, ev: Event) -> conn_core::Result<()> {
        match ev {
            Event::Message { from, bytes } => {
                if !self.started {
                    return Ok(()); // before our join: not ours
                }
                let from = key(from);
                if let Some(round) = &mut self.round {
                    // A Sync of this round travels alone in its batch.
                    if let Some(Ok(Op::Sync { config, groups })) = ops(&bytes).next() {
                        if config == round.config && round.expected.contains(&from) {
                            tracing::debug!(from, "cluster: a Sync");
                            round.got.insert(from, groups);
                            self.finish_round();
                        } else {
                            tracing::info!(from, ?config, ours = ?round.config, "cluster: a Sync of another round skipped");
                        }
                        return Ok(());
                    }
                    self.held.push_back(Held::Batch(from, bytes));
                    return Ok(());
                }
                self.apply(from, &bytes);
            }
            Event::Membership(change) => self.membership(change).await?,
        }
        Ok(())
    }

    fn apply(&self, from: u64, batch: &[u8]) {
        for op in ops(batch) {
            match op {
                Ok(Op::Sync { .. }) => {} // of a finished or foreign round
                Ok(op) => self.router.apply(from, op),
                Err(e) => tracing::warn!(from, error = %e, "cluster: batch skipped"),
            }
        }
    }

    async fn membership(&mut self, change: Membership) -> conn_core::Result<()> {
        let me = key(self.group.me());
        if !self.started {
            if !change.joined.iter().any(|(m, _)| key(*m) == me) {
                return Ok(());
            }
            self.started = true;
        }
        let mut left = Vec::new();
        for (m, reason) in &change.left {
            // A daemon that left in order shut down gracefully; any other
            // way out is a loss.
            let cause = if *reason == Reason::Leave {
                Cause::Disconnect
            } else {
                Cause::Network
            };
            tracing::info!(daemon = %m, %reason, "cluster: a daemon left");
            if let Some(round) = &mut self.round {
                round.expected.remove(&key(*m));
                round.got.remove(&key(*m));
            }
            left.push((key(*m), cause));
        }
        // All who left in this change go together.
        if !left.is_empty() {
            match self.round {
                Some(_) => self.held.push_back(Held::Left(left)),
                None => self.router.daemons_left(&left),
            }
        }
        if !change.joined.is_empty() {
            // A new round. One under way is superseded: its Syncs no longer
            // match, and what it held was delivered in the old
            // configuration, to its members only, so they apply it now,
            // before their state goes out in the new round's Sync (the new
            // members never see it; the merge reconciles).
            if self.round.take().is_some() {
                self.replay_held();
            }
            let config: Vec<u64> = change.members.iter().map(|m| key(*m)).collect();
            tracing::info!(members = config.len(), ?config, "cluster: state exchange");
            self.round = Some(Round {
                expected: config.iter().copied().collect(),
                config: config.clone(),
                got: BTreeMap::new(),
            });
            let mut batch = vec![BATCH_VERSION];
            Op::Sync {
                config,
                groups: self.router.snapshot(),
            }
            .emit_into(&mut batch)?;
            self.group.send(&batch).await?;
        } else {
            self.finish_round();
        }
        Ok(())
    }

    /// Once every expected Sync is in: merge, then replay what was held.
    fn finish_round(&mut self) {
        let Some(round) = &self.round else {
            return;
        };
        if !round.expected.iter().all(|m| round.got.contains_key(m)) {
            return;
        }
        let round = self.round.take().unwrap();
        tracing::info!(held = self.held.len(), "cluster: state exchange done");
        let syncs: Vec<(u64, Vec<SyncGroup>)> = round
            .config
            .iter()
            .filter_map(|m| round.got.get(m).map(|g| (*m, g.clone())))
            .collect();
        // Daemons that left during the exchange: the merge takes their
        // clients out with their cause (the held departures then find none).
        let left: HashMap<u64, Cause> = self
            .held
            .iter()
            .filter_map(|h| match h {
                Held::Left(left) => Some(left.iter().copied()),
                Held::Batch(..) => None,
            })
            .flatten()
            .collect();
        self.router.merge(&syncs, &left);
        self.synced = true;
        self.replay_held();
    }

    /// Applies what a state exchange held back, in its order.
    fn replay_held(&mut self) {
        while let Some(held) = self.held.pop_front() {
            match held {
                Held::Batch(from, bytes) => self.apply(from, &bytes),
                Held::Left(left) => self.router.daemons_left(&left),
            }
        }
    }
}
