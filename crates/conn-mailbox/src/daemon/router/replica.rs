#![cfg_attr(not(feature = "corosync"), allow(dead_code))]
//! The router in a cluster: the operations every daemon applies in CPG's
//! one agreed order, to one replicated group state.
//!
//! A clustered daemon does not apply its clients' joins, leaves, multicasts
//! and departures when they arrive: it checks them (names, limits, access
//! list) and sends them out on CPG ([`Link::send`]). Every daemon, the
//! sender too, applies the delivered stream here, to the same state in the
//! same order, and delivers to its own clients only. Remote clients are
//! entries without an outbox; a multicast reaches the remote members of a
//! group through their own daemon's copy of the stream.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use super::{Client, ClientId, Link, Router, State, reply, to_frame};
use crate::daemon::cluster_op::{BATCH_VERSION, Op, SyncGroup};
use crate::daemon::outbox::{End, Outbox, Push, QueueLimits};
use crate::error::Code;
use crate::wire::{Names, Repr};
use crate::{Cause, Service};

/// A batch takes more ops until it holds this much (corosync fragments
/// larger messages itself; this bounds one CPG message).
pub(crate) const BATCH_MAX: usize = 128 * 1024;

impl Link {
    /// Encodes `op` into the batch the CPG task sends next.
    pub(crate) fn send(&self, op: &Op<'_>) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let first = pending.is_empty();
        if pending.back().is_none_or(|b| b.len() >= BATCH_MAX) {
            pending.push_back(Vec::with_capacity(4096));
            pending.back_mut().unwrap().push(BATCH_VERSION);
        }
        op.emit_into(pending.back_mut().unwrap());
        drop(pending);
        if first {
            self.wake.notify_one();
        }
    }
}

impl State {
    /// A local client goes: its connection ends now, and the removal goes
    /// out on the cluster, to be applied (and announced) in order.
    pub(super) fn depart(&mut self, id: ClientId, cause: Cause, end: End) {
        let Some(c) = self.clients.get_mut(&id) else {
            return;
        };
        c.outbox.end(end);
        if c.gone {
            return;
        }
        c.gone = true;
        if let Some(link) = &self.cluster {
            link.send(&Op::Gone {
                client: &c.private_group,
                cause,
            });
        }
    }

    /// The client `name` homed at `home`, made if a remote one is new.
    /// `None` for a local client that is no longer here.
    fn client_for(&mut self, name: &str, home: u64) -> Option<ClientId> {
        if let Some(id) = self.by_group.get(name) {
            return Some(*id);
        }
        if self.cluster.as_ref().is_some_and(|l| l.me == home) {
            return None;
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
    fn forget_if_idle(&mut self, id: ClientId) {
        if self
            .clients
            .get(&id)
            .is_some_and(|c| c.home.is_some() && c.groups.is_empty())
        {
            self.remove_client(id, Cause::Leave, End::Goodbye);
        }
    }

    fn is_local(&self, id: ClientId) -> bool {
        self.clients.get(&id).is_some_and(|c| c.home.is_none())
    }
}

impl Router {
    /// Makes this router a cluster member: from now on operations go to `link`.
    pub(crate) fn set_cluster(&self, link: Link) {
        self.lock().cluster = Some(link);
    }

    /// Applies one op delivered by CPG from the daemon `from`.
    pub(crate) fn apply(&self, from: u64, op: Op<'_>) {
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.cluster.is_none() {
            return; // shut down
        }
        match op {
            Op::Join { req, client, group } => {
                let Some(id) = st.client_for(client, from) else {
                    return;
                };
                let local = st.is_local(id);
                let c = st.clients.get_mut(&id).unwrap();
                if local {
                    c.outbox.push(reply(req, 0, group));
                }
                if c.groups.insert(group.into()) {
                    st.groups.entry(group.into()).or_default().members.push(id);
                    st.announce(group, client, Cause::Join, None);
                }
            }
            Op::Leave { req, client, group } => {
                let Some(id) = st.client_for(client, from) else {
                    return;
                };
                let local = st.is_local(id);
                let c = st.clients.get_mut(&id).unwrap();
                if !c.groups.remove(group) {
                    if local {
                        c.outbox.push(reply(req, Code::IllegalGroup as u16, group));
                    }
                    st.forget_if_idle(id);
                    return;
                }
                if local {
                    c.outbox.push(reply(req, 0, group));
                }
                st.remove_member(group, id);
                st.announce(group, client, Cause::Leave, local.then_some(id));
                st.forget_if_idle(id);
            }
            Op::Multicast {
                client,
                service,
                msg_type,
                groups,
                payload,
            } => st.deliver(client, service, msg_type, &groups, payload),
            Op::Gone { client, cause } => {
                if let Some(id) = st.by_group.get(client).copied() {
                    st.remove_client(id, cause, End::Drop(format!("gone ({})", cause.as_str())));
                }
            }
            Op::Sync { .. } => {} // the CPG task gathers these
        }
        st.drop_fallen();
    }

    /// The daemon `home` left the configuration: each of its clients goes
    /// with `cause`, in name order (the same at every daemon).
    pub(crate) fn daemon_left(&self, home: u64, cause: Cause) {
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.cluster.is_none() {
            return;
        }
        let mut gone: Vec<(String, ClientId)> = st
            .clients
            .iter()
            .filter(|(_, c)| c.home == Some(home))
            .map(|(id, c)| (c.private_group.clone(), *id))
            .collect();
        gone.sort();
        for (_, id) in gone {
            st.remove_client(id, cause, End::Goodbye);
        }
        st.drop_fallen();
    }

    /// This daemon's whole group state, for a [`Op::Sync`].
    pub(crate) fn snapshot(&self) -> Vec<SyncGroup> {
        let st = self.lock();
        let me = st.cluster.as_ref().map_or(0, |l| l.me);
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
                    .map(|c| (c.private_group.clone(), c.home.unwrap_or(me)))
                    .collect(),
            })
            .collect();
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        groups
    }

    /// Installs the state every daemon of a new configuration computes
    /// alike from all their [`Op::Sync`]s (`syncs` in CPG member order).
    ///
    /// Per group: the largest member list any daemon holds (the first such
    /// in member order) is the base, its view the largest any holds, less
    /// the members whose home daemon does not list them itself; then
    /// each daemon's own clients that the base lacks are appended, each
    /// announced to the group as a join. A fresh daemon thus takes the
    /// state as it is; two halves of a healed partition see the other
    /// half's members join.
    pub(crate) fn merge(&self, syncs: &[(u64, Vec<SyncGroup>)]) {
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.cluster.is_none() {
            return;
        }
        let live: HashSet<u64> = syncs.iter().map(|(m, _)| *m).collect();
        let mut by_name: BTreeMap<&str, Vec<(u64, &SyncGroup)>> = BTreeMap::new();
        for (m, groups) in syncs {
            for g in groups {
                by_name.entry(&g.name).or_default().push((*m, g));
            }
        }
        // Forget every membership; rebuild it from the merged lists.
        for c in st.clients.values_mut() {
            c.groups.clear();
        }
        st.groups.clear();
        for (name, held) in by_name {
            let base = held
                .iter()
                .fold(None::<&SyncGroup>, |best, (_, g)| match best {
                    Some(b) if b.members.len() >= g.members.len() => Some(b),
                    _ => Some(g),
                })
                .unwrap();
            let view = held.iter().map(|(_, g)| g.view).max().unwrap_or(0);
            // Each daemon is the authority on its own clients: a member
            // stays only if its home daemon is here and its own Sync lists
            // it in the group. (Another's list may be stale or corrupt, and
            // were it kept the daemons would disagree: the home daemon has
            // no such client to add, the others would make it.)
            let home_lists = |c: &str, home: u64| {
                held.iter().any(|(sender, g)| {
                    *sender == home && g.members.iter().any(|(n, h)| n == c && *h == home)
                })
            };
            let mut list: Vec<(String, u64)> = base
                .members
                .iter()
                .filter(|(c, home)| live.contains(home) && home_lists(c, *home))
                .cloned()
                .collect();
            let mut joins = Vec::new();
            for (sender, g) in &held {
                for (c, home) in &g.members {
                    if home == sender && !list.iter().any(|(n, _)| n == c) {
                        list.push((c.clone(), *home));
                        joins.push(c.clone());
                    }
                }
            }
            let base_len = list.len() - joins.len();
            let mut members = Vec::new();
            for (c, home) in &list {
                if let Some(id) = st.client_for(c, *home) {
                    members.push(id);
                }
            }
            // The base members first, silently; then each join, announced.
            let group = st.groups.entry(name.to_owned()).or_default();
            group.view = view;
            group.members = members[..base_len.min(members.len())].to_vec();
            for id in &group.members {
                st.clients
                    .get_mut(id)
                    .unwrap()
                    .groups
                    .insert(name.to_owned());
            }
            for (i, c) in joins.iter().enumerate() {
                let Some(id) = members.get(base_len + i).copied() else {
                    continue;
                };
                st.clients
                    .get_mut(&id)
                    .unwrap()
                    .groups
                    .insert(name.to_owned());
                st.groups.get_mut(name).unwrap().members.push(id);
                st.announce(name, c, Cause::Join, None);
            }
            if st.groups.get(name).is_some_and(|g| g.members.is_empty()) {
                st.groups.remove(name);
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

impl State {
    /// Delivers a sequenced multicast to this daemon's own recipients.
    fn deliver(
        &mut self,
        sender: &str,
        service: u32,
        msg_type: i16,
        groups: &[&str],
        payload: &[u8],
    ) {
        let me = self.by_group.get(sender).copied();
        let mut to: Vec<ClientId> = Vec::new();
        for g in groups {
            if g.starts_with('#') {
                if let Some(id) = self.by_group.get(*g).filter(|id| self.is_local(**id)) {
                    to.push(*id);
                }
            } else if let Some(group) = self.groups.get(*g) {
                to.extend(group.members.iter().filter(|m| self.is_local(**m)));
            }
        }
        to.sort_unstable();
        to.dedup();
        let service = Service::from_bits(service);
        if service.self_discard() {
            to.retain(|r| Some(*r) != me);
        }
        if to.is_empty() {
            return; // nobody here: no frame to build (a sender's own echo, mostly)
        }
        let frame = to_frame(&Repr::Message {
            service: service.bits(),
            msg_type,
            sender,
            groups: Names::from(groups),
            payload,
        });
        for r in to {
            let Some(c) = self.clients.get(&r) else {
                continue;
            };
            if c.outbox.push(frame.clone()) == Push::Full && !service.is_unreliable() {
                self.fallen.push(r);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

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
        (r, outbox)
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
        n1.daemon_left(3, Cause::Network);
        n3.daemon_left(1, Cause::Network);
        assert_eq!(n1.snapshot()[0].members, [("#a#n1".to_owned(), 1)]);
        assert_eq!(n3.snapshot()[0].members, [("#c#n3".to_owned(), 3)]);
        let (a_before, c_before) = (a.depth().0, c.depth().0);

        // Healed: both merge the same Syncs and agree again; the member the
        // base lacked is announced as a join on both sides.
        let syncs = vec![(1, n1.snapshot()), (3, n3.snapshot())];
        n1.merge(&syncs);
        n3.merge(&syncs);
        assert_eq!(n1.snapshot(), n3.snapshot());
        let g = &n1.snapshot()[0];
        assert_eq!(
            g.members,
            [("#a#n1".to_owned(), 1), ("#c#n3".to_owned(), 3)]
        );
        assert_eq!(g.view, 4);
        assert_eq!((a.depth().0, c.depth().0), (a_before + 1, c_before + 1));
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
        let syncs = vec![(1, n1.snapshot()), (2, n2.snapshot()), (3, bogus)];
        n1.merge(&syncs);
        n2.merge(&syncs);
        assert_eq!(n1.snapshot(), n2.snapshot());
        let state = n1.snapshot();
        assert_eq!(state.len(), 1, "{state:?}");
        assert_eq!(
            state[0].members,
            [("#a#n1".to_owned(), 1), ("#c#n3".to_owned(), 3)]
        );
        assert_eq!(state[0].view, 7);
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
        let syncs = vec![(1, n1.snapshot()), (2, fresh.snapshot())];
        n1.merge(&syncs);
        fresh.merge(&syncs);
        assert_eq!(n1.snapshot(), fresh.snapshot());
        assert_eq!(a.depth().0, before, "nobody joined, nothing announced");
    }
}
