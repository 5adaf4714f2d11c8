//! The router in a cluster: the operations every daemon applies in CPG's
//! one agreed order, to one replicated group state.
//!
//! A clustered daemon does not apply its clients' joins, leaves, multicasts
//! and departures when they arrive: it checks them (names, limits, access
//! list) and sends them out on CPG (its [`Link`]). Every daemon, the
//! sender too, applies the delivered stream here, to the same state in the
//! same order, and delivers to its own clients only. Remote clients are
//! entries without an outbox; a multicast reaches the remote members of a
//! group through their own daemon's copy of the stream.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use super::{Client, ClientId, Group, Link, Router, State};
use crate::Cause;
use crate::daemon::cluster_op::{Op, SyncGroup, home_of};
use crate::daemon::outbox::{End, Outbox, QueueLimits};

/// One daemon's Sync as a state exchange gathered it: its CPG member, its
/// name and its groups.
pub(crate) type Synced = (u64, String, Vec<SyncGroup>);

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
}

impl Router {
    /// Makes this router a cluster member: from now on operations go to
    /// `link` and come back through [`Router::apply`].
    pub(crate) fn set_cluster(&self, link: Link) {
        let mut st = self.lock();
        let own = st.daemon_name.clone();
        st.daemons.insert(link.me, own);
        st.order = Box::new(link);
    }

    /// This daemon's `--name`, for its Sync.
    pub(crate) fn daemon_name(&self) -> String {
        self.lock().daemon_name.clone()
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
        if let Some((client, home)) = op.client()
            && st.daemons.get(&from).is_none_or(|d| d != home)
        {
            st.refused += 1;
            tracing::warn!(
                from,
                client,
                refused = st.refused,
                "cluster: an op naming a client of another daemon than its sender refused"
            );
            return;
        }
        st.apply(from, op);
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

    /// This daemon's whole group state, for a [`Op::Sync`].
    pub(crate) fn snapshot(&self) -> Vec<SyncGroup> {
        let st = self.lock();
        let me = st.order.member();
        let mut groups: Vec<SyncGroup> = st
            .groups
            .iter()
            .map(|(name, g)| SyncGroup {
                name: name.clone(),
                view: g.view,
                members: g
                    .members
                    .iter()
                    .filter_map(|m| st.clients.get(m))
                    .map(|c| (c.private_group.to_string(), c.home.unwrap_or(me)))
                    .collect(),
            })
            .collect();
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        groups
    }

    /// Installs the state every daemon of a new configuration computes
    /// alike from all their [`Op::Sync`]s (`syncs` in CPG member order);
    /// `left` holds the causes of daemons that left while the exchange was
    /// under way (their clients go with that cause; any other member that
    /// the merged list drops, with cause network; those that go are told in
    /// one message per cause, as in [`Router::daemons_left`]).
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
    pub(crate) fn merge(&self, syncs: &[Synced], left: &HashMap<u64, Cause>) {
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.shutting_down {
            return;
        }
        let me = st.order.member();
        // Names stay known past a departure: what a daemon sent before it
        // left may still be replayed after this merge.
        for (m, daemon, _) in syncs {
            st.daemons.insert(*m, daemon.clone());
        }
        let daemons = st.daemons.clone();
        let live: HashSet<u64> = syncs.iter().map(|(m, _, _)| *m).collect();
        let mut by_name: BTreeMap<&str, Vec<(u64, &SyncGroup)>> = BTreeMap::new();
        for (m, _, groups) in syncs {
            for g in groups {
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
        let first: Vec<Synced> = (1..=3).map(|d| (d, format!("n{d}"), vec![])).collect();
        r.merge(&first, &HashMap::new());
        (r, outbox)
    }

    /// Daemon `m`'s Sync, as `r` would send it.
    fn synced(m: u64, r: &Router) -> Synced {
        (m, r.daemon_name(), r.snapshot())
    }

    fn join<'a>(client: &'a str) -> Op<'a> {
        Op::Join {
            req: 1,
            client,
            group: "g",
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
        let syncs = vec![synced(1, &n1), synced(2, &n2), (3, "n3".into(), bogus)];
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
