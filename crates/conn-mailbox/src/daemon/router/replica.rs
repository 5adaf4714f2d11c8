//! The router in a cluster: the operations every daemon applies in CPG's
//! one agreed order, to one replicated group state.
//!
//! A clustered daemon does not apply its clients' joins, leaves, multicasts
//! and departures when they arrive: it checks them (names, limits) and
//! sends them out on CPG (its [`Link`]). Every daemon, the sender too,
//! applies the delivered stream here, to the same state in the same order,
//! checks joins and multicasts against the access list in force at that
//! place of the stream (itself replicated: [`Op::Acl`]), and delivers to
//! its own clients only. Remote clients are entries without an outbox; a
//! multicast reaches the remote members of a group through their own
//! daemon's copy of the stream.
//!
//! A state exchange also settles two things every daemon must agree on:
//! daemon names are unique (of two Syncs with one name, the settled
//! daemon's, else the first in CPG's order, keeps it; the other daemon is
//! refused and leaves), and the access list in force (the one the stream
//! had installed most often, the first such in CPG's order).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use super::{Client, ClientId, Group, Link, Router, State, to_frame};
use crate::Cause;
use crate::daemon::acl::Acl;
use crate::daemon::cluster_op::{Op, Snapshot, SyncGroup, home_of};
use crate::daemon::outbox::{End, Outbox, Push, QueueLimits};
use crate::wire::{Names, Repr};

/// One daemon's Sync as a state exchange gathered it: its CPG member and
/// what it said.
pub(crate) type Synced = (u64, Snapshot);

/// A daemon refused in a state exchange because another holds its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NameTaken {
    /// The name both gave.
    pub(crate) name: String,
    /// The CPG member refused.
    pub(crate) refused: u64,
    /// The CPG member that keeps the name.
    pub(crate) holder: u64,
}

impl NameTaken {
    /// The refused daemon's error: the name, and where the holder runs.
    #[cfg_attr(not(feature = "corosync"), allow(dead_code))] // the CPG task's
    pub(crate) fn error(&self) -> conn_core::Error {
        conn_core::Error::new(conn_core::ErrorKind::AlreadyExists)
            .during("join the cluster")
            .detail(format!(
                "the daemon name {:?} is taken: the mailboxd on node {} (pid {}) holds it; \
                 daemon names must differ across the cluster, so give this one another --name",
                self.name,
                self.holder >> 32,
                self.holder & 0xffff_ffff,
            ))
    }
}

/// The daemons whose name another Sync of the exchange holds: per name,
/// the first settled daemon in `syncs`' order (CPG's member order) keeps
/// it, or the first of all when none is settled (daemons started at once);
/// every other one with that name is refused. A function of the Syncs
/// alone, so every daemon, the refused one too, finds the same.
fn taken_names(syncs: &[Synced]) -> Vec<NameTaken> {
    let mut holders: BTreeMap<&str, u64> = BTreeMap::new();
    for settled in [true, false] {
        for (m, s) in syncs.iter().filter(|(_, s)| s.settled == settled) {
            holders.entry(&s.daemon).or_insert(*m);
        }
    }
    syncs
        .iter()
        .filter(|(m, s)| holders[s.daemon.as_str()] != *m)
        .map(|(m, s)| NameTaken {
            name: s.daemon.clone(),
            refused: *m,
            holder: holders[s.daemon.as_str()],
        })
        .collect()
}

/// The access list the merged state holds: of the Syncs' lists that parse,
/// the one installed most often (the highest version), the first such in
/// CPG's member order; `None` (with version 0) when no daemon had one.
fn merged_acl(syncs: &[&Synced]) -> (u64, Option<Acl>) {
    let mut best: (u64, Option<Acl>) = (0, None);
    for (m, s) in syncs {
        if s.acl_version <= best.0 {
            continue;
        }
        match Acl::parse(&s.acl) {
            Ok(acl) => best = (s.acl_version, Some(acl)),
            // A list no daemon could have installed: never in force.
            Err(e) => tracing::warn!(from = m, error = %e, "cluster: a Sync's access list skipped"),
        }
    }
    best
}

impl State {
    /// The client `name` homed at `home`, made if a remote one is new.
    /// `None` for a local client that is no longer here.
    pub(super) fn client_for(&mut self, name: &str, home: u64) -> Option<ClientId> {
        if let Some(id) = self.by_group.get(name) {
            return Some(*id);
        }
        if home == self.order.member() {
            return None; // a client of this daemon that is gone
        }
        let id = self.next_id;
        self.next_id += 1;
        let outbox = Arc::new(Outbox::new(QueueLimits::default()));
        outbox.end(End::Goodbye);
        self.by_group.insert(name.into(), id);
        self.clients.insert(
            id,
            Client {
                private_group: name.into(),
                uid: None,
                membership: false,
                groups: BTreeSet::new(),
                outbox,
                home: Some(home),
                gone: false,
            },
        );
        Some(id)
    }

    /// A remote client in no group is forgotten (it is reached through its
    /// own daemon only).
    pub(super) fn forget_if_idle(&mut self, id: ClientId) {
        if self
            .clients
            .get(&id)
            .is_some_and(|c| c.home.is_some() && c.groups.is_empty())
        {
            self.remove_client(id, Cause::Leave, End::Goodbye);
        }
    }

    pub(super) fn is_local(&self, id: ClientId) -> bool {
        self.clients.get(&id).is_some_and(|c| c.home.is_none())
    }

    /// The whole group state, groups in name order.
    fn groups_snapshot(&self) -> Vec<SyncGroup> {
        let me = self.order.member();
        let mut groups: Vec<SyncGroup> = self
            .groups
            .iter()
            .map(|(name, g)| SyncGroup {
                name: name.clone(),
                view: g.view,
                members: g
                    .members
                    .iter()
                    .filter_map(|m| self.clients.get(m))
                    .map(|c| (c.private_group.to_string(), c.home.unwrap_or(me)))
                    .collect(),
            })
            .collect();
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        groups
    }
}

impl Router {
    /// Makes this router a cluster member: from now on operations go to
    /// `link` and come back through [`Router::apply`].
    ///
    /// The access list it was made with becomes its proposal: a cluster
    /// member's list in force is the cluster's, which a state exchange
    /// brings and [`Router::propose_acl`] may change.
    pub(crate) fn set_cluster(&self, link: Link) {
        let mut st = self.lock();
        let own = st.daemon_name.clone();
        st.daemons.insert(link.me, own);
        st.order = Box::new(link);
        st.proposed = st.acl.take();
        st.acl_version = 0;
    }

    /// Sends the access list this daemon was given to the cluster (an
    /// [`Op::Acl`]), to be in force everywhere from its place in the
    /// stream; false if it was given none (it then keeps the cluster's).
    #[cfg_attr(not(feature = "corosync"), allow(dead_code))] // the CPG task's
    pub(crate) fn propose_acl(&self) -> bool {
        let mut guard = self.lock();
        let st = &mut *guard;
        let Some(text) = st.proposed.as_ref().map(|a| a.text().to_owned()) else {
            return false;
        };
        st.proposal_back = false;
        st.sequence(Op::Acl { text: &text });
        true
    }

    /// Our [`Router::propose_acl`]'s op came back through the stream.
    #[cfg_attr(not(feature = "corosync"), allow(dead_code))] // the CPG task's
    pub(crate) fn proposal_back(&self) -> bool {
        self.lock().proposal_back
    }

    /// This daemon's state for its Sync: name, whether settled, the access
    /// list in force and the groups.
    pub(crate) fn sync_state(&self) -> Snapshot {
        let st = self.lock();
        Snapshot {
            daemon: st.daemon_name.clone(),
            settled: st.settled,
            acl_version: st.acl_version,
            acl: st.acl.as_ref().map_or("", Acl::text).to_owned(),
            groups: st.groups_snapshot(),
        }
    }

    /// How many ops were refused for naming a client of another daemon
    /// than their sender.
    #[cfg(test)]
    pub(crate) fn refused_ops(&self) -> u64 {
        self.lock().refused
    }

    /// Applies one op delivered by CPG from the daemon `from`.
    pub(crate) fn apply(&self, from: u64, op: Op<'_>) {
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.shutting_down {
            return;
        }
        // A daemon speaks for its own clients only: one naming another's
        // would apply at that one's home (where the client is local) and
        // elsewhere (where it is remote) to different effect (found by the
        // mailbox_cluster fuzz target: the replicas diverged).
        // A list comes from a daemon whose name a Sync gave (not from one
        // refused for a taken name).
        let foreign = match op.client() {
            Some((_, home)) => st.daemons.get(&from).is_none_or(|d| d != home),
            None => matches!(op, Op::Acl { .. }) && !st.daemons.contains_key(&from),
        };
        if foreign {
            let client = op.client().map(|(c, _)| c);
            st.refused += 1;
            tracing::warn!(
                from,
                client,
                refused = st.refused,
                "cluster: an op naming a client of another daemon than its sender, or a list \
                 from a daemon with no name here, refused"
            );
            return;
        }
        st.apply(from, op);
        st.drop_fallen();
    }

    /// CPG's configuration changes and daemons left: `members` (the old
    /// configuration's daemons that are in the new one) are the
    /// transitional configuration. Each local member of every group that
    /// has a member homed at a daemon not in it gets a membership message
    /// with cause transition: the group's view id as it is, no member
    /// named, the members whose daemons are in it. What waited for the old
    /// configuration's acknowledgements is delivered after it, then the
    /// regular change.
    #[cfg_attr(
        not(feature = "corosync"),
        expect(dead_code, reason = "only the corosync cluster's gate calls it")
    )]
    pub(crate) fn transitional(&self, members: &[u64]) {
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.shutting_down {
            return;
        }
        tracing::info!(?members, "cluster: transitional configuration");
        let stays = |c: &Client| c.home.is_none_or(|h| members.contains(&h));
        let mut fallen = Vec::new();
        for (name, g) in &st.groups {
            let (staying, going): (Vec<&Client>, Vec<&Client>) = g
                .members
                .iter()
                .filter_map(|m| st.clients.get(m))
                .partition(|c| stays(c));
            if going.is_empty() {
                continue; // the change takes no member of it
            }
            let names: Vec<&str> = staying.iter().map(|c| &*c.private_group).collect();
            let frame = to_frame(&Repr::Membership {
                cause: Cause::Transition.to_u8(),
                view: g.view,
                group: name,
                changed: "",
                members: Names::from(&names),
            });
            for id in &g.members {
                if let Some(c) = st
                    .clients
                    .get(id)
                    .filter(|c| c.home.is_none() && c.membership)
                    && c.outbox.push(frame.clone()) == Push::Full
                {
                    fallen.push(*id);
                }
            }
        }
        st.fallen.extend(fallen);
        st.drop_fallen();
    }

    /// Daemons left the configuration in one CPG change (`left`: each with
    /// its cause): their clients go, and each group they were in hears it
    /// in one membership message per cause (disconnect first, then
    /// network) naming the first of them (by name) and the members left.
    ///
    /// One message, not one per client: the two halves of a partition each
    /// lose several members at once, and a message per member would show a
    /// member of one half, for a moment, a view the other half shows too
    /// (the same id, the same members), as if both had moved there
    /// together (chaos seed 1017).
    pub(crate) fn daemons_left(&self, left: &[(u64, Cause)]) {
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.shutting_down {
            return;
        }
        for cause in [Cause::Disconnect, Cause::Network] {
            let homes: HashSet<u64> = left
                .iter()
                .filter(|(_, c)| *c == cause)
                .map(|(h, _)| *h)
                .collect();
            let mut gone: Vec<(String, ClientId)> = st
                .clients
                .iter()
                .filter(|(_, c)| c.home.is_some_and(|h| homes.contains(&h)))
                .map(|(id, c)| (c.private_group.to_string(), *id))
                .collect();
            gone.sort();
            let ids: Vec<ClientId> = gone.into_iter().map(|(_, id)| id).collect();
            st.remove_clients_together(&ids, cause);
        }
        st.drop_fallen();
    }

    /// This daemon's whole group state, as an [`Op::Sync`] carries it.
    #[cfg(test)]
    pub(crate) fn snapshot(&self) -> Vec<SyncGroup> {
        self.lock().groups_snapshot()
    }

    /// Installs the state every daemon of a new configuration computes
    /// alike from all their [`Op::Sync`]s (`syncs` in CPG member order);
    /// `left` holds the causes of daemons that left while the exchange was
    /// under way (their clients go with that cause; any other member that
    /// the merged list drops, with cause network; those that go are told in
    /// one message per cause, as in [`Router::daemons_left`]).
    ///
    /// First the daemon names ([`taken_names`]): each daemon refused for a
    /// name another holds is returned, and its Sync is left out of the
    /// rest; a refused daemon that finds itself refused changes nothing
    /// here (it is to leave). Then the access list ([`merged_acl`]).
    ///
    /// Per group, the merged list is the largest list any daemon holds
    /// (the first such in member order), then every other daemon's members
    /// in member order, each member kept only if its home daemon is in the
    /// configuration and lists it itself (a daemon is the authority on its
    /// own clients). Every daemon then moves its own list to the merged one
    /// and tells its own members each step: first the members it holds that
    /// the merged list lacks go (network, or their daemon's cause: one
    /// message per cause), then the members it lacks join (one message
    /// each), members listed in the merged list's order. So
    /// each half of a healed partition sees exactly the other half's members
    /// join (a fresh daemon, with no members of its own, tells nobody), and
    /// every client's views follow one from the other. View ids: with `e`
    /// the largest `v + n` over the daemons (`v` the id a daemon holds, `n`
    /// the steps it takes), a daemon numbers its steps `e - n + 1 ..= e`,
    /// so all end at the same view, `e`, with the same members in the same
    /// order, and a daemon with nothing to change that holds `e` already
    /// tells nobody. (One with nothing to change below `e` moves to it
    /// silently: a membership message that changes no member has no cause
    /// to give.)
    pub(crate) fn merge(&self, syncs: &[Synced], left: &HashMap<u64, Cause>) -> Vec<NameTaken> {
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.shutting_down {
            return Vec::new();
        }
        let me = st.order.member();
        // First the names: a refused daemon's Sync counts for nothing (it
        // leaves; its clients, if any, go as a lost daemon's do).
        let taken = taken_names(syncs);
        if taken.iter().any(|t| t.refused == me) {
            return taken; // we leave: our state no longer matters
        }
        let syncs: Vec<&Synced> = syncs
            .iter()
            .filter(|(m, _)| !taken.iter().any(|t| t.refused == *m))
            .collect();
        for t in &taken {
            st.daemons.remove(&t.refused);
        }
        // Names stay known past a departure: what a daemon sent before it
        // left may still be replayed after this merge.
        for (m, s) in &syncs {
            st.daemons.insert(*m, s.daemon.clone());
        }
        let (version, acl) = merged_acl(&syncs);
        if version != st.acl_version {
            tracing::info!(
                version,
                was = st.acl_version,
                "cluster: the state exchange brought the access list in force"
            );
        }
        st.acl_version = version;
        st.acl = acl;
        let daemons = st.daemons.clone();
        let live: HashSet<u64> = syncs.iter().map(|(m, _)| *m).collect();
        let mut by_name: BTreeMap<&str, Vec<(u64, &SyncGroup)>> = BTreeMap::new();
        for (m, s) in &syncs {
            for g in &s.groups {
                by_name.entry(&g.name).or_default().push((*m, g));
            }
        }
        for (name, held) in by_name {
            let lists_itself = |c: &str, home: u64| {
                daemons.get(&home).is_some_and(|d| d == home_of(c))
                    && held.iter().any(|(d, g)| {
                        *d == home && g.members.iter().any(|(n, h)| n == c && *h == home)
                    })
            };
            let base = held
                .iter()
                .fold(None::<&SyncGroup>, |best, (_, g)| match best {
                    Some(b) if b.members.len() >= g.members.len() => Some(b),
                    _ => Some(g),
                })
                .unwrap();
            let mut list: Vec<(&str, u64)> = Vec::new();
            let candidates = base
                .members
                .iter()
                .chain(held.iter().flat_map(|(_, g)| g.members.iter()));
            for (c, home) in candidates {
                if live.contains(home)
                    && lists_itself(c, *home)
                    && !list.iter().any(|(n, _)| n == c)
                {
                    list.push((c, *home));
                }
            }
            let in_list = |c: &str| list.iter().any(|(n, _)| *n == c);
            let cause_of = |home: &u64| left.get(home).copied().unwrap_or(Cause::Network);
            // One message per cause for those a list holds too many, one
            // per member it lacks.
            let steps = |own: &[(String, u64)]| {
                let gone: BTreeSet<u8> = own
                    .iter()
                    .filter(|(c, _)| !in_list(c))
                    .map(|(_, home)| cause_of(home).to_u8())
                    .collect();
                let lacked = list
                    .iter()
                    .filter(|(c, _)| !own.iter().any(|(n, _)| n == c))
                    .count();
                (gone.len() + lacked) as u64
            };
            // The smallest id every daemon reaches taking its steps one id
            // each; a daemon with no steps that holds it already ends there
            // without a word (chaos seed 2180: ending one higher, it moved
            // its stored id past what its clients were told).
            let end = held
                .iter()
                .map(|(_, g)| g.view + steps(&g.members))
                .max()
                .unwrap_or(0);
            let mine: &[(String, u64)] = held
                .iter()
                .find(|(d, _)| *d == me)
                .map_or(&[], |(_, g)| &g.members);
            // (A daemon without the group may take more steps than a
            // corrupt Sync's id leaves room for; it tells nobody.)
            let mut view = end.saturating_sub(steps(mine));
            // Those the merged list lacks go, together per cause.
            for cause in [Cause::Disconnect, Cause::Network] {
                let mut gone: Vec<(&str, ClientId)> = mine
                    .iter()
                    .filter(|(c, home)| !in_list(c) && cause_of(home) == cause)
                    .filter_map(|(c, _)| st.by_group.get(c.as_str()).map(|id| (c.as_str(), *id)))
                    .collect();
                if gone.is_empty() {
                    continue;
                }
                gone.sort();
                if let Some(g) = st.groups.get_mut(name) {
                    g.view = view;
                }
                for (_, id) in &gone {
                    if let Some(client) = st.clients.get_mut(id) {
                        client.groups.remove(name);
                    }
                    st.remove_member(name, *id);
                }
                st.announce(name, gone[0].0, cause, None);
                view += 1;
            }
            // Those we lack join, in the merged list's order.
            for (c, home) in list
                .iter()
                .filter(|(c, _)| !mine.iter().any(|(n, _)| n == c))
            {
                let Some(id) = st.client_for(c, *home) else {
                    tracing::warn!(
                        client = c,
                        group = name,
                        "cluster: merged member unknown here"
                    );
                    continue;
                };
                st.clients
                    .get_mut(&id)
                    .unwrap()
                    .groups
                    .insert(name.to_owned());
                let g = st.groups.entry(name.to_owned()).or_default();
                g.view = view;
                g.members.push(id);
                in_merged_order(g, &st.clients, &list);
                st.announce(name, c, Cause::Join, None);
                view += 1;
            }
            if let Some(g) = st.groups.get_mut(name) {
                g.view = end;
                // The merged order, here too when nothing joined.
                in_merged_order(g, &st.clients, &list);
            }
        }
        let idle: Vec<ClientId> = st
            .clients
            .iter()
            .filter(|(_, c)| c.home.is_some() && c.groups.is_empty())
            .map(|(id, _)| *id)
            .collect();
        for id in idle {
            st.forget_if_idle(id);
        }
        st.drop_fallen();
        st.settled = true;
        taken
    }
}

/// Sorts a group's members as the merged `list` orders them, so every
/// daemon holds (and later lists in its Sync) the same order.
fn in_merged_order(g: &mut Group, clients: &HashMap<ClientId, Client>, list: &[(&str, u64)]) {
    let at: HashMap<ClientId, Option<usize>> = g
        .members
        .iter()
        .map(|m| {
            let name = clients.get(m).map(|c| &*c.private_group);
            (
                *m,
                name.and_then(|c| list.iter().position(|(n, _)| *n == c)),
            )
        })
        .collect();
    g.members.sort_by_key(|m| at[m]);
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use conn_core::wire::Repr as _;

    use crate::Service;
    use crate::wire::Repr;

    use super::*;

    /// A clustered router named `name` whose CPG member is `me`, with one
    /// local client `client` (membership messages on); its outbox too.
    fn daemon(name: &str, me: u64, client: &str) -> (Router, Arc<Outbox>) {
        let r = Router::new(name.into(), None);
        r.set_cluster(Link {
            pending: Arc::new(Mutex::new(VecDeque::new())),
            wake: Arc::new(tokio::sync::Notify::new()),
            me,
        });
        let outbox = Arc::new(Outbox::new(QueueLimits::default()));
        r.register(client, true, None, outbox.clone()).unwrap();
        // The first state exchange, of three daemons in no group yet: each
        // knows the others' names from here on.
        let first: Vec<Synced> = (1..=3)
            .map(|d| (d, Snapshot::fresh(&format!("n{d}"), vec![])))
            .collect();
        r.merge(&first, &HashMap::new());
        (r, outbox)
    }

    /// Daemon `m`'s Sync, as `r` would send it.
    fn synced(m: u64, r: &Router) -> Synced {
        (m, r.sync_state())
    }

    fn join<'a>(client: &'a str) -> Op<'a> {
        Op::Join {
            req: 1,
            client,
            group: "g",
            uid: None,
        }
    }

    #[test]
    fn the_same_stream_gives_the_same_state_and_a_healed_partition_merges_alike() {
        let (n1, a) = daemon("n1", 1, "a");
        let (n3, c) = daemon("n3", 3, "c");
        for r in [&n1, &n3] {
            r.apply(1, join("#a#n1"));
            r.apply(3, join("#c#n3"));
        }
        assert_eq!(n1.snapshot(), n3.snapshot());
        assert_eq!(n1.snapshot()[0].view, 2);

        // Cut: each side loses the other's member (cause network).
        n1.daemons_left(&[(3, Cause::Network)]);
        n3.daemons_left(&[(1, Cause::Network)]);
        assert_eq!(n1.snapshot()[0].members, [("#a#n1".to_owned(), 1)]);
        assert_eq!(n3.snapshot()[0].members, [("#c#n3".to_owned(), 3)]);
        let (a_before, c_before) = (a.depth().0, c.depth().0);

        // Healed: both merge the same Syncs and agree again; the member the
        // base lacked is announced as a join on both sides.
        let syncs = vec![synced(1, &n1), synced(3, &n3)];
        n1.merge(&syncs, &HashMap::new());
        n3.merge(&syncs, &HashMap::new());
        assert_eq!(n1.snapshot(), n3.snapshot());
        let g = &n1.snapshot()[0];
        assert_eq!(
            g.members,
            [("#a#n1".to_owned(), 1), ("#c#n3".to_owned(), 3)]
        );
        assert_eq!(g.view, 4);
        assert_eq!((a.depth().0, c.depth().0), (a_before + 1, c_before + 1));
    }

    /// a, b and c, homed at daemons 1, 2 and 3, join g, applied at each of
    /// `routers` in that order.
    fn abc_joined(routers: &[&Router]) {
        for r in routers {
            r.apply(1, join("#a#n1"));
            r.apply(2, join("#b#n2"));
            r.apply(3, join("#c#n3"));
        }
    }

    /// The membership messages queued for a client, taken out:
    /// (cause, view, changed, members).
    fn memberships(o: &Outbox) -> Vec<(Cause, u64, String, Vec<String>)> {
        let mut batch = Vec::new();
        if o.depth().0 > 0 {
            futures::executor::block_on(o.next(&mut batch));
        }
        batch
            .iter()
            .filter_map(|f| {
                let frame = crate::wire::Frame::new_checked(&f[..]).unwrap();
                match Repr::parse(&frame).unwrap() {
                    Repr::Membership {
                        cause,
                        view,
                        changed,
                        members,
                        ..
                    } => Some((
                        Cause::from_u8(cause).unwrap(),
                        view,
                        changed.to_owned(),
                        members.iter().map(str::to_owned).collect(),
                    )),
                    _ => None,
                }
            })
            .collect()
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn a_healed_partition_shows_each_half_the_other_halfs_members_joining() {
        // The chaos checker's seed 5: after a heal, the member cut off
        // alone saw itself join (it was a member already) while the other
        // half's members appeared without a word.
        let (n1, a) = daemon("n1", 1, "a");
        let (n2, b) = daemon("n2", 2, "b");
        let (n3, c) = daemon("n3", 3, "c");
        let all = [&n1, &n2, &n3];
        abc_joined(&all);
        // Node 3 cut off: each side sees the other's members go.
        n1.daemons_left(&[(3, Cause::Network)]);
        n2.daemons_left(&[(3, Cause::Network)]);
        n3.daemons_left(&[(1, Cause::Network), (2, Cause::Network)]);
        for o in [&a, &b, &c] {
            memberships(o);
        }
        let syncs = vec![synced(1, &n1), synced(2, &n2), synced(3, &n3)];
        for r in all {
            r.merge(&syncs, &HashMap::new());
        }
        let abc = names(&["#a#n1", "#b#n2", "#c#n3"]);
        // The majority sees c join; c sees a and then b join.
        for o in [&a, &b] {
            assert_eq!(
                memberships(o),
                [(Cause::Join, 6, "#c#n3".into(), abc.clone())]
            );
        }
        assert_eq!(
            memberships(&c),
            [
                (Cause::Join, 5, "#a#n1".into(), names(&["#a#n1", "#c#n3"])),
                (Cause::Join, 6, "#b#n2".into(), abc.clone()),
            ]
        );
        assert_eq!(n1.snapshot(), n3.snapshot());
        assert_eq!(n2.snapshot(), n3.snapshot());
        // View 4 everywhere (c lost; a and b lost at once); c takes two
        // steps, so all end at 4 + 2.
        assert_eq!(n1.snapshot()[0].view, 6);
    }

    #[test]
    fn a_three_way_partition_shows_each_side_its_own_view_never_one_the_others_share() {
        // Chaos seed 1017: nodes 2 and 3 each lost the other two. Told one
        // member at a time, both first saw "a left (network)" with members
        // b and c, the same view id and members on both sides of the cut,
        // as if b and c had moved there together; their deliveries in the
        // view before differed, which is fine for two sides of a cut but
        // not for two members that pass from one view to the same next one.
        let (n2, b) = daemon("n2", 2, "b");
        let (n3, c) = daemon("n3", 3, "c");
        abc_joined(&[&n2, &n3]);
        for o in [&b, &c] {
            memberships(o);
        }
        n2.daemons_left(&[(1, Cause::Network), (3, Cause::Network)]);
        n3.daemons_left(&[(1, Cause::Network), (2, Cause::Network)]);
        assert_eq!(
            memberships(&b),
            [(Cause::Network, 4, "#a#n1".into(), names(&["#b#n2"]))]
        );
        assert_eq!(
            memberships(&c),
            [(Cause::Network, 4, "#a#n1".into(), names(&["#c#n3"]))]
        );
    }

    #[test]
    fn a_member_its_own_daemon_no_longer_lists_goes_with_a_word_and_shifts_nobody() {
        // n2's list still holds x, whom its home n1 no longer lists. The
        // old merge matched the merged list to client ids by position after
        // skipping x at n1: b slipped into n1's view silently, and n2 kept
        // x for good.
        let (n1, a) = daemon("n1", 1, "a");
        let (n2, b) = daemon("n2", 2, "b");
        n1.apply(1, join("#a#n1"));
        n2.apply(1, join("#a#n1"));
        n2.apply(1, join("#x#n1"));
        n2.apply(2, join("#b#n2"));
        for o in [&a, &b] {
            memberships(o);
        }
        let syncs = vec![synced(1, &n1), synced(2, &n2)];
        n1.merge(&syncs, &HashMap::new());
        n2.merge(&syncs, &HashMap::new());
        let ab = names(&["#a#n1", "#b#n2"]);
        assert_eq!(
            memberships(&a),
            [(Cause::Join, 4, "#b#n2".into(), ab.clone())]
        );
        assert_eq!(
            memberships(&b),
            [(Cause::Network, 4, "#x#n1".into(), ab.clone())]
        );
        assert_eq!(n1.snapshot(), n2.snapshot());
        assert_eq!(
            n1.snapshot()[0].members,
            [("#a#n1".to_owned(), 1), ("#b#n2".to_owned(), 2)]
        );
    }

    #[test]
    fn a_sync_cannot_put_a_client_in_a_group_its_home_daemon_does_not_list() {
        let (n1, _a) = daemon("n1", 1, "a");
        let (n2, _b) = daemon("n2", 2, "b");
        for r in [&n1, &n2] {
            r.apply(1, join("#a#n1"));
        }
        // Daemon 3 claims n1 has a client #x#n1 in g, and that #a#n1 is in
        // h; n1's own Sync says neither (found by the mailbox_cluster fuzz
        // target: n1 left them out, n2 made them, and the two disagreed).
        let bogus = vec![
            SyncGroup {
                name: "g".into(),
                view: 7,
                members: vec![
                    ("#a#n1".into(), 1),
                    ("#x#n1".into(), 1),
                    ("#c#n3".into(), 3),
                ],
            },
            SyncGroup {
                name: "h".into(),
                view: 1,
                members: vec![("#a#n1".into(), 1)],
            },
        ];
        let syncs = vec![
            synced(1, &n1),
            synced(2, &n2),
            (3, Snapshot::fresh("n3", bogus)),
        ];
        n1.merge(&syncs, &HashMap::new());
        n2.merge(&syncs, &HashMap::new());
        assert_eq!(n1.snapshot(), n2.snapshot());
        let state = n1.snapshot();
        assert_eq!(state.len(), 1, "{state:?}");
        assert_eq!(
            state[0].members,
            [("#a#n1".to_owned(), 1), ("#c#n3".to_owned(), 3)]
        );
        // Daemon 3's view (7) plus its one step (#x#n1 goes) is the
        // largest end.
        assert_eq!(state[0].view, 8);
    }

    #[test]
    fn a_daemon_with_nothing_to_change_keeps_its_view_and_the_others_end_there() {
        // Chaos seed 2180: n3 had seen daemon 1 go (its view 4 lists b and
        // c), n2 had not (view 3 still lists a); daemon 1 is gone from the
        // new configuration. n2 takes one step (a goes), n3 none. The old
        // merge ended both at 3's 4 plus that step, 5: n2's clients saw #5,
        // n3 moved its id to 5 without a word and c stayed in #4 with the
        // same members, for good.
        let (n2, b) = daemon("n2", 2, "b");
        let (n3, c) = daemon("n3", 3, "c");
        abc_joined(&[&n2, &n3]);
        n3.daemons_left(&[(1, Cause::Network)]);
        for o in [&b, &c] {
            memberships(o);
        }
        let syncs = vec![synced(2, &n2), synced(3, &n3)];
        for r in [&n2, &n3] {
            r.merge(&syncs, &HashMap::new());
        }
        let bc = names(&["#b#n2", "#c#n3"]);
        assert_eq!(
            memberships(&b),
            [(Cause::Network, 4, "#a#n1".into(), bc.clone())]
        );
        assert_eq!(memberships(&c), []);
        assert_eq!(n2.snapshot(), n3.snapshot());
        assert_eq!(n2.snapshot()[0].view, 4);
    }

    #[test]
    fn an_op_from_one_daemon_naming_another_daemons_client_is_refused_everywhere() {
        // Found by mailbox_cluster: daemon 3 sent ops for #a#n1, a client
        // of n1. At n1, where a is local, they acted on the connection and
        // replied to it; at n2, where a is remote, they made or moved an
        // entry without an outbox, and the replicas diverged.
        let (n1, a) = daemon("n1", 1, "a");
        let (n2, _b) = daemon("n2", 2, "b");
        for r in [&n1, &n2] {
            r.apply(1, join("#a#n1"));
        }
        memberships(&a);
        let before = n1.snapshot();
        let foreign = [
            Op::Join {
                req: 9,
                client: "#a#n1",
                group: "h",
                uid: None,
            },
            Op::Leave {
                req: 9,
                client: "#a#n1",
                group: "g",
            },
            Op::Multicast {
                client: "#a#n1",
                service: Service::AGREED.bits(),
                msg_type: 0,
                groups: crate::wire::Names::from(&["g"]),
                payload: b"not from n1",
                uid: None,
            },
            Op::Gone {
                client: "#a#n1",
                cause: Cause::Network,
            },
            join("#z#n1"),
        ];
        let count = foreign.len() as u64;
        for op in foreign {
            for r in [&n1, &n2] {
                r.apply(3, op.clone());
            }
        }
        for r in [&n1, &n2] {
            assert_eq!(r.snapshot(), before);
            assert_eq!(r.refused_ops(), count);
        }
        assert_eq!(a.depth().0, 0, "a was told nothing");
        // Its own daemon's op for it still applies.
        for r in [&n1, &n2] {
            r.apply(
                1,
                Op::Gone {
                    client: "#a#n1",
                    cause: Cause::Disconnect,
                },
            );
            assert_eq!(r.snapshot(), []);
        }
    }

    #[test]
    fn a_fresh_daemon_takes_the_state_silently() {
        let (n1, a) = daemon("n1", 1, "a");
        n1.apply(1, join("#a#n1"));
        let fresh = Router::new("n2".into(), None);
        fresh.set_cluster(Link {
            pending: Arc::new(Mutex::new(VecDeque::new())),
            wake: Arc::new(tokio::sync::Notify::new()),
            me: 2,
        });
        let before = a.depth().0;
        let syncs = vec![synced(1, &n1), synced(2, &fresh)];
        n1.merge(&syncs, &HashMap::new());
        fresh.merge(&syncs, &HashMap::new());
        assert_eq!(n1.snapshot(), fresh.snapshot());
        assert_eq!(a.depth().0, before, "nobody joined, nothing announced");
    }
}

/// The access list and daemon names across daemons: the list travels in
/// the stream and in Syncs, each daemon checks every op against it, and a
/// state exchange keeps names unique.
#[cfg(test)]
mod acl_and_names {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use conn_core::wire::Repr as _;

    use crate::error::Code;
    use crate::wire::Repr;

    use super::*;

    const LIST: &str = "[groups.g]\njoin = [0]\nsend = [0]\n\n[private]\nsend = [0]\n";

    fn router(name: &str, me: u64) -> Router {
        let r = Router::new(name.into(), None);
        r.set_cluster(Link {
            pending: Arc::new(Mutex::new(VecDeque::new())),
            wake: Arc::new(tokio::sync::Notify::new()),
            me,
        });
        r
    }

    /// Routers n1 and n2 (members 1 and 2) that merged their first state,
    /// each with a client (a at n1, b at n2) and its outbox.
    fn two() -> [(Router, Arc<Outbox>); 2] {
        let made = [("n1", 1, "a"), ("n2", 2, "b")].map(|(name, me, client)| {
            let r = router(name, me);
            let outbox = Arc::new(Outbox::new(QueueLimits::default()));
            r.register(client, true, None, outbox.clone()).unwrap();
            outbox.take_queued(); // the welcome
            (r, outbox)
        });
        let first: Vec<Synced> = (1..=2)
            .map(|d| (d, Snapshot::fresh(&format!("n{d}"), vec![])))
            .collect();
        for (r, _) in &made {
            assert_eq!(r.merge(&first, &HashMap::new()), []);
        }
        made
    }

    /// What a client was sent, one line a frame, taken out.
    fn said(o: &Outbox) -> Vec<String> {
        o.take_queued()
            .iter()
            .map(|f| {
                let frame = crate::wire::Frame::new_checked(&f[..]).unwrap();
                match Repr::parse(&frame).unwrap() {
                    Repr::Reply { req, code, detail } => format!("reply {req} {code} {detail}"),
                    Repr::Message {
                        sender, payload, ..
                    } => format!(
                        "message from {sender}: {}",
                        String::from_utf8_lossy(payload)
                    ),
                    Repr::Membership {
                        group,
                        changed,
                        cause,
                        ..
                    } => format!("membership {group} {changed} {:?}", Cause::from_u8(cause)),
                    other => format!("{other:?}"),
                }
            })
            .collect()
    }

    fn join(client: &str, uid: u32) -> Op<'_> {
        Op::Join {
            req: 4,
            client,
            group: "g",
            uid: Some(uid),
        }
    }

    fn to<'a>(client: &'a str, dest: &'a [&'a str], uid: u32) -> Op<'a> {
        Op::Multicast {
            client,
            service: crate::Service::AGREED.bits(),
            msg_type: 0,
            groups: crate::wire::Names::from(dest),
            payload: b"hi",
            uid: Some(uid),
        }
    }

    #[test]
    fn a_list_one_daemon_proposed_refuses_a_client_of_another_at_every_daemon() {
        let [(n1, a), (n2, b)] = two();
        for r in [&n1, &n2] {
            r.apply(1, Op::Acl { text: LIST });
            let s = r.sync_state();
            assert_eq!((s.acl_version, s.acl.as_str()), (1, LIST));
        }
        // b (uid 1000, at n2) may not join g, at either daemon; b is told
        // by its own daemon only.
        for r in [&n1, &n2] {
            r.apply(2, join("#b#n2", 1000));
            assert_eq!(r.sync_state().groups, []);
        }
        let refused = Code::NotAllowed as u16;
        assert_eq!(said(&b), [format!("reply 4 {refused} join g")]);
        // Nor send to a's private group; uid 0 may.
        for r in [&n1, &n2] {
            r.apply(2, to("#b#n2", &["#a#n1"], 1000));
            r.apply(2, to("#b#n2", &["#a#n1"], 0));
        }
        assert_eq!(said(&b), [format!("reply 0 {refused} send #a#n1")]);
        assert_eq!(said(&a), ["message from #b#n2: hi"]);
        // A uid the list names joins, everywhere.
        for r in [&n1, &n2] {
            r.apply(2, join("#b#n2", 0));
        }
        assert_eq!(n1.sync_state().groups, n2.sync_state().groups);
        assert_eq!(n1.sync_state().groups[0].members.len(), 1);
    }

    #[test]
    fn a_list_that_does_not_parse_or_comes_from_no_named_daemon_changes_nothing() {
        let [(n1, _a), (n2, _b)] = two();
        for r in [&n1, &n2] {
            r.apply(1, Op::Acl { text: LIST });
            r.apply(2, Op::Acl { text: "[groups" });
            r.apply(9, Op::Acl { text: "" });
            let s = r.sync_state();
            assert_eq!((s.acl_version, s.acl.as_str()), (1, LIST));
        }
        // The last list in the stream wins: an empty one opens everything.
        for r in [&n1, &n2] {
            r.apply(2, Op::Acl { text: "" });
            r.apply(1, join("#a#n1", 1000));
        }
        assert_eq!(n1.sync_state().acl_version, 2);
        assert_eq!(n1.sync_state().groups, n2.sync_state().groups);
        assert_eq!(n1.sync_state().groups.len(), 1);
    }

    #[test]
    fn a_proposal_is_sequenced_and_the_configured_list_is_not_in_force_before() {
        let r = Router::new("n1".into(), Some(Acl::parse(LIST).unwrap()));
        let pending = Arc::new(Mutex::new(VecDeque::new()));
        r.set_cluster(Link {
            pending: pending.clone(),
            wake: Arc::new(tokio::sync::Notify::new()),
            me: 1,
        });
        // In a cluster the list in force is the cluster's (none yet).
        assert_eq!(r.sync_state().acl_version, 0);
        assert!(r.propose_acl());
        assert!(!r.proposal_back());
        let batch = pending.lock().unwrap().pop_front().unwrap();
        let sent: Vec<_> = crate::daemon::cluster_op::ops(&batch)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(sent, [Op::Acl { text: LIST }]);
        r.merge(&[(1, Snapshot::fresh("n1", vec![]))], &HashMap::new());
        r.apply(1, sent[0].clone());
        assert!(r.proposal_back());
        assert_eq!(r.sync_state().acl, LIST);
        // Without a list of its own, a daemon proposes nothing.
        assert!(!router("n2", 2).propose_acl());
    }

    #[test]
    fn a_state_exchange_gives_every_daemon_the_list_installed_most_often() {
        let [(n1, _a), (n2, _b)] = two();
        n1.apply(1, Op::Acl { text: "" });
        n1.apply(1, Op::Acl { text: LIST });
        n2.apply(
            2,
            Op::Acl {
                text: "[private]\nsend = [5]\n",
            },
        );
        let fresh = router("n3", 3);
        let syncs: Vec<Synced> = vec![
            (1, n1.sync_state()),
            (2, n2.sync_state()),
            (3, fresh.sync_state()),
        ];
        for r in [&n1, &n2, &fresh] {
            assert_eq!(r.merge(&syncs, &HashMap::new()), []);
            let s = r.sync_state();
            assert_eq!((s.acl_version, s.acl.as_str()), (2, LIST));
            assert!(s.settled);
        }
    }

    #[test]
    fn a_fresh_daemon_with_a_taken_name_is_refused_and_the_holder_keeps_its_state() {
        let [(n1, a), (n2, _b)] = two();
        for r in [&n1, &n2] {
            r.apply(1, join("#a#n1", 0));
        }
        said(&a);
        let before = n1.sync_state();
        // A second n1, member 1 << 32 | 77 (node 1, pid 77), listed first.
        let dup = 1 << 32 | 77;
        let second = router("n1", dup);
        let syncs: Vec<Synced> = vec![
            (dup, second.sync_state()),
            (1, n1.sync_state()),
            (2, n2.sync_state()),
        ];
        let taken = NameTaken {
            name: "n1".into(),
            refused: dup,
            holder: 1,
        };
        for r in [&n1, &n2, &second] {
            assert_eq!(
                r.merge(&syncs, &HashMap::new()),
                std::slice::from_ref(&taken)
            );
        }
        assert_eq!(n1.sync_state(), before);
        assert_eq!(said(&a), [] as [String; 0], "a was told nothing");
        assert!(!second.sync_state().settled, "the refused one took nothing");
        // Its ops are nobody's: refused everywhere.
        for r in [&n1, &n2] {
            r.apply(dup, join("#z#n1", 0));
            r.apply(dup, Op::Acl { text: LIST });
            assert_eq!(r.sync_state().groups, before.groups);
            assert_eq!(r.sync_state().acl_version, 0);
        }
        let e = taken.error().to_string();
        assert!(e.contains("\"n1\"") && e.contains("node 0 (pid 1)"), "{e}");
    }

    #[test]
    fn of_daemons_started_at_once_with_one_name_the_first_in_cpgs_order_keeps_it() {
        let (x, y) = (router("n1", 5), router("n1", 6));
        let syncs: Vec<Synced> = vec![(5, x.sync_state()), (6, y.sync_state())];
        for r in [&x, &y] {
            assert_eq!(
                r.merge(&syncs, &HashMap::new()),
                [NameTaken {
                    name: "n1".into(),
                    refused: 6,
                    holder: 5
                }]
            );
        }
        assert!(x.sync_state().settled);
    }
    #[test]
    fn of_two_settled_daemons_with_one_name_the_first_in_cpgs_order_keeps_it_and_the_others_clients_go()
     {
        // Each half of a cut had a daemon started as n1 (members 1 and 5),
        // each with a client in g; n2 was with member 5's half.
        let [(n1, a), (n2, b)] = two();
        let other = router("n1", 5);
        let outbox = Arc::new(Outbox::new(QueueLimits::default()));
        other.register("x", true, None, outbox).unwrap();
        let half: Vec<Synced> = vec![(2, n2.sync_state()), (5, other.sync_state())];
        for r in [&n2, &other] {
            assert_eq!(r.merge(&half, &HashMap::new()), []);
            r.apply(5, join("#x#n1", 0));
            r.apply(2, join("#b#n2", 0));
        }
        n1.apply(1, join("#a#n1", 0));
        said(&a);
        said(&b);
        let syncs: Vec<Synced> = vec![
            (1, n1.sync_state()),
            (2, n2.sync_state()),
            (5, other.sync_state()),
        ];
        let taken = NameTaken {
            name: "n1".into(),
            refused: 5,
            holder: 1,
        };
        for r in [&n1, &n2, &other] {
            assert_eq!(
                r.merge(&syncs, &HashMap::new()),
                std::slice::from_ref(&taken)
            );
        }
        assert_eq!(n1.sync_state().groups, n2.sync_state().groups);
        let members: Vec<_> = n1.sync_state().groups[0]
            .members
            .iter()
            .map(|(c, _)| c.clone())
            .collect();
        // (The base is the largest list, n2's, less x.)
        assert_eq!(members, ["#b#n2", "#a#n1"]);
        // b saw x go (network) and a join.
        assert_eq!(
            said(&b),
            [
                "membership g #x#n1 Some(Network)",
                "membership g #a#n1 Some(Join)"
            ]
        );
    }
}
