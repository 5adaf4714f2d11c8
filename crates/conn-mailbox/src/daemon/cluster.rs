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
//!
//! The exchange also decides, alike everywhere, which daemon keeps a name
//! two gave (the one refused gets an error naming the holder, leaves CPG
//! and exits) and which access list is in force. Once a fresh daemon holds
//! the state it proposes its own `--acl` list through the stream and
//! starts serving clients only once that came back, so none of its clients
//! is checked against a list older than the one it was given.
//!
//! SAFE delivery: every batch carries its sender's acknowledgement, how
//! many batches CPG had delivered to it in the current configuration (its
//! *position*). A batch holding a SAFE message, and everything after it in
//! the stream, is applied here once every member of the configuration has
//! acknowledged its position ([`Gate`]); a daemon holding such a batch that
//! has not acknowledged it yet sends an acknowledgement alone. At a
//! configuration change what waits is applied before the change (CPG's
//! virtual synchrony: the daemons that move on together were delivered the
//! same batches), after a transitional membership message to the clients.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use conn_cpg::{CpgGroup, Event, Member, Membership, Reason};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::cluster_op::{Ack, Op, Snapshot, batch_ack, config_tag, new_batch, ops, set_ack};
use super::router::{Link, NameTaken, Router, Synced};
use crate::Cause;

fn key(m: Member) -> u64 {
    u64::from(m.node) << 32 | u64::from(m.pid)
}

/// What waits while a state exchange is under way.
enum Held {
    /// A batch from a daemon, with its position and the tag of the
    /// configuration it was delivered in.
    Batch(u64, Vec<u8>, u64, u64),
    /// The daemons that left in one configuration change, with causes.
    Left(Vec<(u64, Cause)>),
}

/// A state exchange: the configuration, whose Syncs are still missing, and
/// what arrived meanwhile.
struct Round {
    /// CPG's members at the change that started it, in CPG's order.
    config: Vec<u64>,
    /// The members whose Sync is missing or in: `config` less those CPG
    /// has since said left.
    expected: BTreeSet<u64>,
    /// The Syncs in.
    got: BTreeMap<u64, Snapshot>,
    /// Syncs of expected members whose configuration lacks a member still
    /// expected here, with that configuration: they count once CPG says
    /// here that the member left (chaos seed 2182).
    early: BTreeMap<u64, (Vec<u64>, Snapshot)>,
}

impl Round {
    fn new(config: Vec<u64>) -> Round {
        Round {
            expected: config.iter().copied().collect(),
            config,
            got: BTreeMap::new(),
            early: BTreeMap::new(),
        }
    }

    /// `from`'s Sync, sent for its configuration `config`. It counts if
    /// `config` holds every member still expected here: CPG may show two
    /// daemons a configuration apart by a member about to leave (a
    /// restarted mailboxd's old pid, listed at one daemon only), and each
    /// must then take the other's Sync once that member is gone here. A
    /// Sync whose configuration lacks a joiner expected here is of an
    /// earlier round (or waits for a departure: held in `early`); one from
    /// a daemon not expected is of another round.
    fn offer(&mut self, from: u64, config: Vec<u64>, sync: Snapshot) {
        if !self.expected.contains(&from) {
            tracing::info!(from, ?config, ours = ?self.config, "cluster: a Sync of another round skipped");
        } else if self.expected.iter().all(|m| config.contains(m)) {
            tracing::debug!(from, "cluster: a Sync");
            self.early.remove(&from);
            self.got.insert(from, sync);
        } else {
            tracing::info!(from, ?config, ours = ?self.config, "cluster: a Sync held until its configuration's missing members left here");
            self.early.insert(from, (config, sync));
        }
    }

    /// CPG says `m` left: its Sync is no longer waited for, and Syncs that
    /// only lacked it count now.
    fn left(&mut self, m: u64) {
        self.expected.remove(&m);
        self.got.remove(&m);
        self.early.remove(&m);
        for (from, (config, sync)) in std::mem::take(&mut self.early) {
            self.offer(from, config, sync);
        }
    }

    fn complete(&self) -> bool {
        self.expected.iter().all(|m| self.got.contains_key(m))
    }
}

/// The daemon's CPG membership.
pub(crate) struct Node {
    group: CpgGroup,
    pending: Arc<Mutex<VecDeque<Vec<u8>>>>,
    wake: Arc<Notify>,
    exchange: Exchange,
}

impl Node {
    /// Joins CPG group `name` through the local corosync and waits until
    /// this daemon holds the cluster's state.
    pub(crate) async fn join(name: &str, router: Arc<Router>) -> conn_core::Result<Node> {
        let group = CpgGroup::join(name)?;
        let (pending, wake) = (Arc::default(), Arc::new(Notify::new()));
        let me = key(group.me());
        router.set_cluster(Link {
            pending: Arc::clone(&pending),
            wake: Arc::clone(&wake),
            me,
        });
        tracing::info!(group = name, me = %group.me(), "mailboxd joined the cluster");
        let mut node = Node {
            group,
            pending,
            wake,
            exchange: Exchange::new(router.clone(), me),
        };
        let settled = async {
            while !node.exchange.synced {
                node.next_event().await?;
            }
            // Our list, if we were given one, in force before any client
            // of ours is checked.
            if router.propose_acl() {
                node.send_pending().await?;
                while !router.proposal_back() {
                    node.next_event().await?;
                }
            }
            Ok::<_, conn_core::Error>(())
        };
        match settled.await {
            Ok(()) => Ok(node),
            Err(e) => Err(node.fail(e)),
        }
    }

    /// Ends the membership after `e`: refused for our name, we leave CPG in
    /// order so the others see us go at once; any other error is corosync
    /// failing, with nothing left to leave.
    fn fail(self, e: conn_core::Error) -> conn_core::Error {
        if e.kind() == conn_core::ErrorKind::AlreadyExists {
            let _ = self.group.leave();
        }
        e
    }

    /// Takes one event from CPG; an error if it refused our name.
    async fn next_event(&mut self) -> conn_core::Result<()> {
        let ev = self.group.next().await?;
        self.event(ev).await
    }

    /// Runs until `stop` fires (then leaves CPG in order) or corosync fails.
    pub(crate) async fn run(mut self, stop: CancellationToken) -> conn_core::Result<()> {
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                ev = self.group.next() => {
                    if let Err(e) = self.event(ev?).await {
                        return Err(self.fail(e));
                    }
                }
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
                Some(batch) => self.send(batch).await?,
                None => return Ok(()),
            }
        }
    }

    /// Stamps `batch` with our acknowledgement and multicasts it.
    async fn send(&mut self, mut batch: Vec<u8>) -> conn_core::Result<()> {
        set_ack(&mut batch, self.exchange.ack());
        self.group.send(&batch).await
    }

    /// Acknowledges what we hold of a SAFE message waiting here that our
    /// last batch did not: with the batches the router filled, or alone.
    async fn acknowledge(&mut self) -> conn_core::Result<()> {
        if !self.exchange.wants_ack() {
            return Ok(());
        }
        {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            if pending.is_empty() {
                pending.push_back(new_batch());
            }
        }
        self.send_pending().await
    }

    async fn event(&mut self, ev: Event) -> conn_core::Result<()> {
        match ev {
            Event::Message { from, bytes } => {
                if let Some(sync) = self.exchange.message(key(from), bytes) {
                    self.send(sync).await?;
                }
            }
            Event::Membership(change) => {
                if let Some(sync) = self.exchange.membership(&change) {
                    self.send(sync).await?;
                }
            }
        }
        match self.exchange.taken.take() {
            Some(taken) => Err(taken.error()),
            None => self.acknowledge().await,
        }
    }
}

/// What CPG delivers, applied to the router: the state exchanges and the
/// stream between them. Apart from CPG's I/O, so that a test can feed it
/// CPG's events as corosync delivered them.
struct Exchange {
    router: Arc<Router>,
    me: u64,
    /// CPG's members after its last change, in its order.
    members: Vec<u64>,
    round: Option<Round>,
    held: VecDeque<Held>,
    /// Seen our own join: from here on the stream is ours to apply.
    started: bool,
    synced: bool,
    /// A state exchange refused this daemon: another holds its name.
    taken: Option<NameTaken>,
    /// Where SAFE messages wait until every member has them.
    gate: Gate,
}

/// What waits for stability, in the stream's order.
enum Gated {
    /// A batch from `from`; `need` the position every member must have
    /// acknowledged before it applies (0: none, it only waits its turn).
    Batch {
        from: u64,
        bytes: Vec<u8>,
        need: u64,
    },
    /// The daemons that left in one configuration change, with causes.
    Left(Vec<(u64, Cause)>),
}

/// The stream's positions in the current configuration and the members'
/// acknowledgements of them: a batch holding a SAFE message is applied
/// here once every member acknowledged it, and nothing after it before.
#[derive(Default)]
struct Gate {
    /// The current configuration's tag ([`config_tag`]); 0 before our join.
    config: u64,
    /// Batches CPG delivered here in it: our position.
    pos: u64,
    /// The highest position each other member acknowledged in it.
    acks: HashMap<u64, u64>,
    /// The position our last sent batch acknowledged in it.
    sent: u64,
    /// The highest position of a SAFE message gated in it: the others
    /// wait for our acknowledgement of it, even once it is stable here.
    owed: u64,
    /// What waits, in the stream's order.
    waiting: VecDeque<Gated>,
    /// Acknowledgements refused: from a daemon not in the configuration,
    /// below one it sent before, or of a position not yet delivered when
    /// it was sent.
    refused: u64,
}

impl Gate {
    /// A new configuration `members`: positions count from 0 again.
    fn reset(&mut self, members: &[u64]) {
        self.config = config_tag(members);
        self.pos = 0;
        self.acks.clear();
        self.sent = 0;
        self.owed = 0;
    }

    /// `from`'s acknowledgement `ack`, carried by the batch at position `at`.
    fn take(&mut self, from: u64, ack: Ack, at: u64, members: &[u64]) {
        if ack.config == 0 {
            return; // sent before its first configuration: acknowledges nothing
        }
        if !members.contains(&from) {
            self.refused += 1;
            tracing::warn!(
                from,
                "cluster: an acknowledgement from a daemon not in the configuration refused"
            );
            return;
        }
        if ack.config != self.config {
            // Sent in a configuration before this one (CPG delivered it
            // after the change): it says nothing of this one.
            tracing::debug!(
                from,
                "cluster: an acknowledgement of another configuration skipped"
            );
            return;
        }
        if ack.pos >= at {
            self.refused += 1;
            tracing::warn!(
                from,
                pos = ack.pos,
                at,
                "cluster: an acknowledgement of what its sender cannot have had refused"
            );
            return;
        }
        let had = self.acks.entry(from).or_default();
        if ack.pos < *had {
            self.refused += 1;
            tracing::warn!(
                from,
                pos = ack.pos,
                had = *had,
                "cluster: an acknowledgement below an earlier one refused"
            );
            return;
        }
        *had = ack.pos;
    }

    /// The highest position every member of `members` has: `me` has ours.
    fn stable(&self, me: u64, members: &[u64]) -> u64 {
        members
            .iter()
            .map(|m| {
                if *m == me {
                    self.pos
                } else {
                    self.acks.get(m).copied().unwrap_or(0)
                }
            })
            .min()
            .unwrap_or(self.pos)
    }

    /// A SAFE message came here that our last batch did not acknowledge.
    fn wants_ack(&self) -> bool {
        self.owed > self.sent
    }
}

/// `batch` holds a SAFE message.
fn has_safe(batch: &[u8]) -> bool {
    ops(batch).any(|op| {
        matches!(op, Ok(Op::Multicast { service, .. }) if crate::Service::from_bits(service).is_safe())
    })
}

impl Exchange {
    fn new(router: Arc<Router>, me: u64) -> Exchange {
        Exchange {
            router,
            me,
            members: Vec::new(),
            round: None,
            held: VecDeque::new(),
            started: false,
            synced: false,
            taken: None,
            gate: Gate::default(),
        }
    }

    /// Our acknowledgement for the next batch we send; remembered, so that
    /// no acknowledgement alone repeats it.
    fn ack(&mut self) -> Ack {
        self.gate.sent = self.gate.pos;
        Ack {
            config: self.gate.config,
            pos: self.gate.pos,
        }
    }

    /// A SAFE message came here that the others wait for us to
    /// acknowledge.
    fn wants_ack(&self) -> bool {
        self.started && self.gate.wants_ack()
    }

    /// Takes `from`'s batch at position `at` of the configuration `config`
    /// into the gate and applies what is stable. A batch of an earlier
    /// configuration (held through a state exchange) needs no
    /// acknowledgement: the daemons that moved on with us have it.
    fn gate(&mut self, from: u64, bytes: Vec<u8>, at: u64, config: u64) {
        let need = if config == self.gate.config && has_safe(&bytes) {
            at
        } else {
            0
        };
        self.gate.owed = self.gate.owed.max(need);
        if need == 0 && self.gate.waiting.is_empty() {
            self.apply(from, &bytes);
            return;
        }
        self.gate
            .waiting
            .push_back(Gated::Batch { from, bytes, need });
        self.release();
    }

    /// The daemons `left` go, in the stream's order.
    fn gate_left(&mut self, left: Vec<(u64, Cause)>) {
        if self.gate.waiting.is_empty() {
            self.router.daemons_left(&left);
        } else {
            self.gate.waiting.push_back(Gated::Left(left));
        }
    }

    /// Applies what waits, in order, as far as it is stable (`all`:
    /// everything, at a configuration change).
    fn release_upto(&mut self, all: bool) {
        let stable = self.gate.stable(self.me, &self.members);
        while let Some(front) = self.gate.waiting.front() {
            if let Gated::Batch { need, .. } = front
                && *need > stable
                && !all
            {
                return;
            }
            match self.gate.waiting.pop_front() {
                Some(Gated::Batch { from, bytes, .. }) => self.apply(from, &bytes),
                Some(Gated::Left(left)) => self.router.daemons_left(&left),
                None => {}
            }
        }
    }

    fn release(&mut self) {
        self.release_upto(false);
    }

    /// A message CPG delivered from `from`; the Sync to multicast if it
    /// starts a round here.
    fn message(&mut self, from: u64, bytes: Vec<u8>) -> Option<Vec<u8>> {
        if !self.started {
            return None; // before our join: not ours
        }
        self.gate.pos += 1;
        let at = self.gate.pos;
        if let Ok(ack) = batch_ack(&bytes) {
            self.gate.take(from, ack, at, &self.members);
        }
        let config = self.gate.config;
        // A Sync travels alone in its batch.
        let sync = match ops(&bytes).next() {
            Some(Ok(Op::Sync { config, snapshot })) => Some((config, snapshot)),
            _ => None,
        };
        let mut ours = None;
        if let Some((config, _)) = &sync {
            // A member's CPG gave it a configuration with joiners that ours
            // did not show us (chaos seed 2180: node 2 saw node 3 go and
            // come back, node 3 never saw node 2 go): it waits for our
            // Sync, so we answer for our own configuration and hold what
            // follows, as at a change of our own.
            if self.round.is_none() && config.contains(&self.me) && self.members.contains(&from) {
                tracing::info!(
                    from,
                    ?config,
                    "cluster: a Sync starts a state exchange here"
                );
                ours = Some(self.start_round());
            }
        }
        match (&mut self.round, sync) {
            (Some(round), Some((config, body))) => {
                round.offer(from, config, body);
                self.finish_round();
            }
            (Some(_), None) => self.held.push_back(Held::Batch(from, bytes, at, config)),
            (None, _) => self.gate(from, bytes, at, config),
        }
        // An acknowledgement may have made what waits stable.
        self.release();
        ours
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

    /// A configuration change; the Sync to multicast if it starts a round.
    fn membership(&mut self, change: &Membership) -> Option<Vec<u8>> {
        if !self.started {
            if !change.joined.iter().any(|(m, _)| key(*m) == self.me) {
                return None;
            }
            self.started = true;
        }
        // What waits for acknowledgements was delivered in the old
        // configuration, at every daemon that moves on with us: it applies
        // before the change, after the transitional membership (ours and
        // the old members that remain).
        let members: Vec<u64> = change.members.iter().map(|m| key(*m)).collect();
        let transitional: Vec<u64> = self
            .members
            .iter()
            .copied()
            .filter(|m| members.contains(m))
            .collect();
        if transitional.len() < self.members.len() {
            self.router.transitional(&transitional);
        }
        self.release_upto(true);
        self.members = members;
        self.gate.reset(&self.members);
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
                round.left(key(*m));
            }
            left.push((key(*m), cause));
        }
        // All who left in this change go together.
        if !left.is_empty() {
            match self.round {
                Some(_) => self.held.push_back(Held::Left(left)),
                None => self.gate_left(left),
            }
        }
        if change.joined.is_empty() {
            self.finish_round();
            return None;
        }
        // A new round. One under way is superseded: its Syncs no longer
        // match, and what it held was delivered in the old configuration,
        // to its members only, so they apply it now, before their state
        // goes out in the new round's Sync (the new members never see it;
        // the merge reconciles).
        if self.round.take().is_some() {
            self.replay_held();
        }
        Some(self.start_round())
    }

    /// Starts a round for CPG's current configuration; our Sync for it.
    fn start_round(&mut self) -> Vec<u8> {
        let config = self.members.clone();
        tracing::info!(members = config.len(), ?config, "cluster: state exchange");
        self.round = Some(Round::new(config.clone()));
        let mut batch = new_batch();
        let sync = Op::Sync {
            config,
            snapshot: self.router.sync_state(),
        };
        if let Err(e) = sync.emit_into(&mut batch) {
            // Every name in our state was checked against the limits when
            // it came in: a Sync that cannot be emitted is this daemon's bug.
            tracing::error!(error = %e, "cluster: our Sync cannot be emitted");
        }
        batch
    }

    /// Once every expected Sync is in: merge, then replay what was held.
    fn finish_round(&mut self) {
        if !self.round.as_ref().is_some_and(Round::complete) {
            return;
        }
        let round = self.round.take().unwrap();
        tracing::info!(held = self.held.len(), "cluster: state exchange done");
        let syncs: Vec<Synced> = round
            .config
            .iter()
            .filter_map(|m| round.got.get(m).map(|s| (*m, s.clone())))
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
        for taken in self.router.merge(&syncs, &left) {
            if taken.refused == self.me {
                tracing::error!(error = %taken.error(), "cluster: refused");
                self.taken = Some(taken);
                return; // we leave: nothing more is ours to apply
            }
            tracing::warn!(
                name = taken.name,
                refused = taken.refused,
                holder = taken.holder,
                "cluster: a daemon with a name another holds refused (it leaves)"
            );
        }
        self.synced = true;
        self.replay_held();
    }

    /// Applies what a state exchange held back, in its order.
    fn replay_held(&mut self) {
        while let Some(held) = self.held.pop_front() {
            match held {
                Held::Batch(from, bytes, at, config) => self.gate(from, bytes, at, config),
                Held::Left(left) => self.gate_left(left),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use conn_cpg::Member;

    use super::*;
    use crate::daemon::outbox::{Outbox, QueueLimits};

    pub(super) const A: Member = Member { node: 1, pid: 10 };
    const A2: Member = Member { node: 1, pid: 11 };
    pub(super) const B: Member = Member { node: 2, pid: 20 };
    pub(super) const C: Member = Member { node: 3, pid: 30 };

    /// A clustered router named `name`, CPG member `me`, with a client
    /// `client` if given.
    fn router(name: &str, me: Member, client: Option<&str>) -> Arc<Router> {
        router_and_outbox(name, me, client).0
    }

    /// [`router`], and its client's outbox.
    pub(super) fn router_and_outbox(
        name: &str,
        me: Member,
        client: Option<&str>,
    ) -> (Arc<Router>, Arc<Outbox>) {
        let r = Arc::new(Router::new(name.into(), None));
        r.set_cluster(Link {
            pending: Arc::default(),
            wake: Arc::new(Notify::new()),
            me: key(me),
        });
        let outbox = Arc::new(Outbox::new(QueueLimits::default()));
        if let Some(client) = client {
            r.register(client, true, None, outbox.clone()).unwrap();
        }
        (r, outbox)
    }

    /// A daemon that has been running: past its join and its first state.
    fn running(router: Arc<Router>, me: Member) -> Exchange {
        Exchange {
            started: true,
            synced: true,
            ..Exchange::new(router, key(me))
        }
    }

    fn change(
        members: &[Member],
        left: &[(Member, Reason)],
        joined: &[(Member, Reason)],
    ) -> Membership {
        Membership {
            members: members.to_vec(),
            left: left.to_vec(),
            joined: joined.to_vec(),
        }
    }

    fn join_batch(client: &str, group: &str) -> Vec<u8> {
        let mut batch = new_batch();
        Op::Join {
            req: 1,
            client,
            group,
            uid: None,
        }
        .emit_into(&mut batch)
        .unwrap();
        batch
    }

    /// The first state exchange gave `routers` the names n1 (A, and A2
    /// after it), n2 (B) and n3 (C); then a, b and c joined g.
    pub(super) fn abc_in_g(routers: &[&Arc<Router>]) {
        let first: Vec<Synced> = [(A, "n1"), (B, "n2"), (C, "n3")]
            .iter()
            .map(|(m, d)| (key(*m), Snapshot::fresh(d, vec![])))
            .collect();
        for r in routers {
            r.merge(&first, &HashMap::new());
            for (from, client) in [(A, "#a#n1"), (B, "#b#n2"), (C, "#c#n3")] {
                r.apply(
                    key(from),
                    Op::Join {
                        req: 1,
                        client,
                        group: "g",
                        uid: None,
                    },
                );
            }
        }
    }

    #[test]
    fn a_state_exchange_completes_when_one_daemon_lists_a_restarted_daemons_old_pid_until_it_leaves()
     {
        // Chaos seed 2182: corosync SIGSTOPped on nodes 1 and 3, mailboxd
        // on node 1 SIGKILLed and started again. When the ring formed
        // again, n2's configuration listed the old pid A next to the new
        // A2, n3's never had A; A left at n2 in the next change. Each side
        // skipped the other's Sync as of another round, and nothing was
        // delivered again until a daemon went.
        let (rb, rc) = (router("n2", B, Some("b")), router("n3", C, Some("c")));
        abc_in_g(&[&rb, &rc]);
        let ra2 = router("n1", A2, None);
        let (mut b, mut c) = (running(rb.clone(), B), running(rc.clone(), C));
        let mut a2 = Exchange::new(ra2.clone(), key(A2));

        let sync_b = b
            .membership(&change(
                &[A, A2, B, C],
                &[],
                &[(A2, Reason::Join), (C, Reason::NodeUp)],
            ))
            .expect("a change with joiners starts a round");
        let sync_c = c
            .membership(&change(
                &[A2, B, C],
                &[(A, Reason::NodeDown)],
                &[(A2, Reason::Join), (B, Reason::NodeUp)],
            ))
            .expect("a round at n3");
        let sync_a2 = a2
            .membership(&change(&[A2, B, C], &[], &[(A2, Reason::Join)]))
            .expect("a round at the new daemon");
        let deliver = |all: &mut [&mut Exchange], from: Member, bytes: &[u8]| {
            for x in all.iter_mut() {
                x.message(key(from), bytes.to_vec());
            }
        };
        for (from, sync) in [(B, &sync_b), (C, &sync_c), (A2, &sync_a2)] {
            deliver(&mut [&mut b, &mut c, &mut a2], from, sync);
        }
        assert!(b.round.is_some(), "n2 still waits for the old pid's Sync");
        assert!(
            b.membership(&change(&[A2, B, C], &[(A, Reason::ProcDown)], &[]))
                .is_none()
        );
        for (x, at) in [(&b, "n2"), (&c, "n3"), (&a2, "n1")] {
            assert!(
                x.round.is_none() && x.synced,
                "the exchange at {at} is done"
            );
        }
        // The stream flows again, to the same state everywhere.
        deliver(&mut [&mut b, &mut c, &mut a2], C, &join_batch("#c#n3", "h"));
        let state = rb.snapshot();
        assert_eq!(state, rc.snapshot());
        assert_eq!(state, ra2.snapshot());
        let members = |g: &str| {
            state.iter().find(|s| s.name == g).map(|s| {
                s.members
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(members("g"), Some(vec!["#b#n2", "#c#n3"]));
        assert_eq!(members("h"), Some(vec!["#c#n3"]));
    }

    #[test]
    fn a_sync_from_a_member_that_saw_us_join_starts_the_exchange_where_cpg_showed_no_joiner() {
        // Chaos seed 2180: corosync stopped on nodes 1 and 3 in turn. Node
        // 2 saw nodes 1 and 3 go, then node 3 join again; node 3 only saw
        // node 1 go. n2 waited for n3's Sync, n3 never sent one, and n2
        // held everything until node 1's next mailboxd joined: it then
        // applied what it held to its own, unmerged state and the two
        // diverged.
        let (rb, rc) = (router("n2", B, Some("b")), router("n3", C, Some("c")));
        abc_in_g(&[&rb, &rc]);
        let (mut b, mut c) = (running(rb.clone(), B), running(rc.clone(), C));
        let gone = [(A, Reason::NodeDown), (C, Reason::NodeDown)];
        assert!(b.membership(&change(&[B], &gone, &[])).is_none());
        let sync_b = b
            .membership(&change(&[B, C], &[], &[(C, Reason::NodeUp)]))
            .expect("n2 sees a joiner");
        assert!(
            c.membership(&change(&[B, C], &[(A, Reason::NodeDown)], &[]))
                .is_none()
        );
        assert!(b.message(key(B), sync_b.clone()).is_none());
        let sync_c = c
            .message(key(B), sync_b)
            .expect("n3 answers n2's Sync with its own");
        for x in [&mut b, &mut c] {
            assert!(x.message(key(C), sync_c.clone()).is_none());
            assert!(x.round.is_none(), "the exchange is done");
        }
        // The stream flows again, to the same state at both.
        for x in [&mut b, &mut c] {
            x.message(key(B), join_batch("#b#n2", "h"));
        }
        let state = rb.snapshot();
        assert_eq!(state, rc.snapshot());
        assert!(state.iter().any(|g| g.name == "h"), "{state:?}");
    }

    #[test]
    fn a_sync_for_a_configuration_without_a_joiner_expected_here_does_not_count() {
        // n2 sent its Sync for [A, B] before C joined; the round for
        // [A, B, C] must wait for n2's next one.
        let (ra, rb) = (router("n1", A, Some("a")), router("n2", B, Some("b")));
        let mut a = running(ra, A);
        let earlier = {
            let mut batch = new_batch();
            Op::Sync {
                config: vec![key(A), key(B)],
                snapshot: Snapshot::fresh("n2", rb.snapshot()),
            }
            .emit_into(&mut batch)
            .unwrap();
            batch
        };
        let own = a
            .membership(&change(&[A, B, C], &[], &[(C, Reason::Join)]))
            .unwrap();
        a.message(key(A), own);
        a.message(key(B), earlier);
        let round = a.round.as_ref().unwrap();
        assert!(!round.got.contains_key(&key(B)));
        assert!(round.early.contains_key(&key(B)));
    }
    #[test]
    fn a_fresh_daemon_under_a_taken_name_is_refused_and_the_holder_goes_on() {
        // n1 runs (settled) with a client in g; a second n1 joins on node 2.
        let ra = router("n1", A, Some("a"));
        ra.merge(&[(key(A), Snapshot::fresh("n1", vec![]))], &HashMap::new());
        ra.apply(
            key(A),
            Op::Join {
                req: 1,
                client: "#a#n1",
                group: "g",
                uid: None,
            },
        );
        let before = ra.snapshot();
        let rdup = router("n1", B, None);
        let mut a = running(ra.clone(), A);
        let mut dup = Exchange::new(rdup, key(B));
        let joined = change(&[A, B], &[], &[(B, Reason::Join)]);
        let sync_a = a.membership(&joined).unwrap();
        let sync_dup = dup.membership(&joined).unwrap();
        for (from, sync) in [(A, &sync_a), (B, &sync_dup)] {
            a.message(key(from), sync.clone());
            dup.message(key(from), sync.clone());
        }
        let taken = dup.taken.as_ref().expect("the newcomer is refused");
        assert_eq!((taken.refused, taken.holder), (key(B), key(A)));
        let e = taken.error().to_string();
        assert!(
            e.contains(r#""n1" is taken"#) && e.contains("node 1 (pid 10)"),
            "{e}"
        );
        assert!(!dup.synced, "the refused daemon never serves");
        // The holder finished its exchange, state untouched, and the
        // newcomer's going changes nothing there either.
        assert!(a.round.is_none() && a.taken.is_none());
        assert_eq!(ra.snapshot(), before);
        a.membership(&change(&[A], &[(B, Reason::Leave)], &[]));
        assert_eq!(ra.snapshot(), before);
    }
}

#[cfg(test)]
mod safe_tests {
    use conn_cpg::Member;

    use super::tests::{A, B, C, abc_in_g, router_and_outbox};
    use super::*;
    use crate::Service;
    use crate::client::decode::Decoded;
    use crate::daemon::outbox::Outbox;
    use crate::wire::Names;

    const D: Member = Member { node: 4, pid: 40 };

    /// n1 (CPG member A) running in the configuration [A, B, C], its
    /// client `#a#n1` in g with `#b#n2` and `#c#n3`; the client's outbox.
    fn n1() -> (Exchange, Arc<Outbox>) {
        let (r, outbox) = router_and_outbox("n1", A, Some("a"));
        abc_in_g(&[&r]);
        let mut x = Exchange::new(r, key(A));
        x.started = true;
        x.synced = true;
        x.members = vec![key(A), key(B), key(C)];
        x.gate.reset(&x.members);
        outbox.take_queued();
        (x, outbox)
    }

    /// A batch acknowledging `pos` of `config`, with a multicast of
    /// `payload` to g at `service` from `client` if given.
    fn batch(config: u64, pos: u64, mcast: Option<(&str, Service, &[u8])>) -> Vec<u8> {
        let mut b = new_batch();
        set_ack(&mut b, Ack { config, pos });
        if let Some((client, service, payload)) = mcast {
            Op::Multicast {
                client,
                service: service.bits(),
                msg_type: 0,
                groups: Names::from(&["g"]),
                payload,
                uid: None,
            }
            .emit_into(&mut b)
            .unwrap();
        }
        b
    }

    /// The payloads of the messages the client got, in order.
    fn got(outbox: &Outbox) -> Vec<Vec<u8>> {
        outbox
            .take_queued()
            .into_iter()
            .filter_map(|f| match crate::client::decode::decode(f).unwrap() {
                Decoded::Event(crate::Event::Message(m)) => Some(m.data().to_vec()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_safe_message_and_what_follows_wait_until_every_member_acknowledged_it() {
        let (mut a, outbox) = n1();
        let tag = a.gate.config;
        // n2's SAFE message lands at position 1; n2 had seen nothing.
        a.message(key(B), batch(tag, 0, Some(("#b#n2", Service::SAFE, b"s"))));
        // An AGREED message after it waits behind it.
        a.message(
            key(C),
            batch(tag, 0, Some(("#c#n3", Service::AGREED, b"x"))),
        );
        assert!(got(&outbox).is_empty(), "nothing before it is stable");
        assert!(a.wants_ack(), "n1 owes its acknowledgement");
        assert_eq!(
            a.ack(),
            Ack {
                config: tag,
                pos: 2
            }
        );
        assert!(!a.wants_ack(), "acknowledged once");
        // n3 acknowledges 2, n2 still only 0: it waits.
        a.message(key(C), batch(tag, 2, None));
        assert!(got(&outbox).is_empty());
        // n2 acknowledges 1: the SAFE message and the AGREED one go.
        a.message(key(B), batch(tag, 1, None));
        assert_eq!(got(&outbox), [b"s".to_vec(), b"x".to_vec()]);
        // An AGREED message with nothing waiting goes at once.
        a.message(
            key(C),
            batch(tag, 3, Some(("#c#n3", Service::AGREED, b"y"))),
        );
        assert_eq!(got(&outbox), [b"y".to_vec()]);
        assert!(!a.wants_ack());
        assert_eq!(a.gate.refused, 0);
    }

    #[test]
    fn a_safe_message_stable_here_at_once_is_still_acknowledged() {
        // Replayed after a state exchange, once the others' acknowledgements
        // of its position came in: delivered at once, and the others still
        // wait for ours.
        let (mut a, outbox) = n1();
        let tag = a.gate.config;
        a.gate.pos = 3;
        a.gate.acks.extend([(key(B), 2), (key(C), 2)]);
        a.gate(
            key(B),
            batch(tag, 0, Some(("#b#n2", Service::SAFE, b"s"))),
            1,
            tag,
        );
        assert_eq!(got(&outbox), [b"s".to_vec()]);
        assert!(a.wants_ack());
        a.ack();
        assert!(!a.wants_ack());
    }

    #[test]
    fn foreign_impossible_and_backward_acknowledgements_are_refused() {
        let (mut a, outbox) = n1();
        let tag = a.gate.config;
        a.message(key(B), batch(tag, 0, Some(("#b#n2", Service::SAFE, b"s"))));
        // From a daemon not in the configuration: refused.
        a.message(key(D), batch(tag, 5, None));
        // Of a position its sender could not have had (its own batch, 3).
        a.message(key(C), batch(tag, 3, None));
        // Of another configuration: skipped, not counted.
        a.message(key(B), batch(config_tag(&[key(A), key(B)]), 3, None));
        assert_eq!(a.gate.refused, 2);
        assert!(got(&outbox).is_empty());
        a.message(key(C), batch(tag, 4, None));
        // Backward: n3 said 4, now 1.
        a.message(key(C), batch(tag, 1, None));
        assert_eq!(a.gate.refused, 3);
        assert_eq!(a.gate.acks[&key(C)], 4);
        // A header cut short: the batch is skipped, its position counts.
        a.message(key(B), vec![BATCH_VERSION_FOR_TEST, 0, 0]);
        assert_eq!(a.gate.pos, 7);
        assert!(got(&outbox).is_empty());
        a.message(key(B), batch(tag, 6, None));
        assert_eq!(got(&outbox), [b"s".to_vec()]);
    }

    const BATCH_VERSION_FOR_TEST: u8 = crate::daemon::cluster_op::BATCH_VERSION;

    #[test]
    fn at_a_configuration_change_what_waits_is_delivered_before_it() {
        let (mut a, outbox) = n1();
        let tag = a.gate.config;
        a.message(key(B), batch(tag, 0, Some(("#b#n2", Service::SAFE, b"s"))));
        a.message(key(B), batch(tag, 1, None));
        assert!(got(&outbox).is_empty(), "n3 never acknowledges");
        // CPG removes n3: the message is delivered, then n3's clients go.
        a.membership(&Membership {
            members: vec![A, B],
            left: vec![(C, Reason::ProcDown)],
            joined: vec![],
        });
        let frames = outbox.take_queued();
        let events: Vec<_> = frames
            .into_iter()
            .filter_map(|f| match crate::client::decode::decode(f).unwrap() {
                Decoded::Event(e) => Some(e),
                _ => None,
            })
            .collect();
        // First the transitional membership: n1's and n2's members, the
        // view id as it was.
        let crate::Event::Membership(t) = &events[0] else {
            panic!("{events:?}")
        };
        assert!(t.is_transitional() && t.changed.is_empty(), "{t:?}");
        assert_eq!(t.members, ["#a#n1", "#b#n2"]);
        let crate::Event::Membership(regular) = events.last().unwrap() else {
            panic!("{events:?}")
        };
        assert_eq!(regular.view, t.view + 1);
        assert!(
            matches!(&events[1], crate::Event::Message(m) if m.data() == b"s"),
            "{events:?}"
        );
        assert_eq!(events.len(), 3, "{events:?}");
        assert!(
            matches!(events.last(), Some(crate::Event::Membership(m)) if m.cause == Cause::Network),
            "{events:?}"
        );
        // The new configuration counts from 0: an acknowledgement of the
        // old one says nothing, and with n3 gone n2's alone makes it stable.
        assert_eq!(
            (a.gate.pos, a.gate.config),
            (0, config_tag(&[key(A), key(B)]))
        );
        let tag = a.gate.config;
        a.message(key(B), batch(tag, 0, Some(("#b#n2", Service::SAFE, b"t"))));
        a.message(key(B), batch(tag, 1, None));
        assert_eq!(got(&outbox), [b"t".to_vec()]);
    }
}
