//! The router: all group state, and the one place every message is
//! sequenced.
//!
//! Every connection task calls into the router synchronously under one lock,
//! and the router pushes each delivery into the recipients' FIFO outboxes
//! before it returns. So the order in which calls take the lock is the one
//! total order every member sees, across all groups, membership messages
//! included. On the daemon's current-thread runtime the lock is never
//! contended; a router *task* would instead cost a task switch per message.
//!
//! A lone daemon and a cluster member differ in one thing only, where an
//! operation that passed its checks is put in order ([`order`]): the lone
//! daemon applies it at once, the cluster member when CPG delivers it. Both
//! apply it with the same code ([`State::apply`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::acl::Acl;
use super::cluster_op::Op;
use super::outbox::{End, Outbox, Push};
use crate::error::Code;
use crate::limits::{
    MAX_GROUPS_PER_CLIENT, MAX_GROUPS_PER_MESSAGE, MAX_MESSAGE, legal_destination,
    legal_group_name, legal_private_name,
};
use crate::wire::{Names, Repr};

mod order;
mod replica;
use crate::{Cause, Service};
pub(crate) use order::Link;
use order::{Alone, Sequencer, Turn};
#[cfg(feature = "corosync")]
pub(crate) use replica::NameTaken;
pub(crate) use replica::Synced;

/// A connected client's number.
pub(crate) type ClientId = u64;

struct Client {
    /// `#name#daemon`, shared with the ops that name it.
    private_group: Arc<str>,
    uid: Option<u32>,
    membership: bool,
    groups: BTreeSet<String>,
    outbox: Arc<Outbox>,
    /// `None` for this daemon's own clients; in a cluster, the CPG member
    /// (`node << 32 | pid`) of the daemon a remote client is connected to.
    /// A remote client has an outbox that is already ended (pushes go nowhere).
    home: Option<u64>,
    /// A local client whose removal is sequenced and not yet applied (in a
    /// cluster, until CPG delivers it): it sends nothing more.
    gone: bool,
}

#[derive(Default)]
struct Group {
    /// Members in join order.
    members: Vec<ClientId>,
    view: u64,
}

struct State {
    daemon_name: String,
    /// The access list in force: a lone daemon's own; in a cluster the one
    /// the stream installed last ([`Op::Acl`], or a state exchange's).
    acl: Option<Acl>,
    /// In a cluster, how many lists the stream installed here (a Sync
    /// carries it: the merge takes the list of the highest).
    acl_version: u64,
    /// In a cluster, the list this daemon was given (`--acl`), proposed to
    /// the others once it holds the state ([`Router::propose_acl`]).
    proposed: Option<Acl>,
    /// Our own proposal came back through the stream (applied or not).
    proposal_back: bool,
    /// In a cluster, a merged state was installed here: our Syncs say so,
    /// and of two daemons with one name the settled one keeps it.
    settled: bool,
    clients: HashMap<ClientId, Client>,
    /// Private name to client.
    names: HashMap<String, ClientId>,
    groups: HashMap<String, Group>,
    next_id: ClientId,
    shutting_down: bool,
    /// Clients found over their queue limit during the current call.
    fallen: Vec<ClientId>,
    /// Private group to client, every client this daemon knows (in a
    /// cluster, remote ones too).
    by_group: HashMap<String, ClientId>,
    /// Where operations are put in order: [`Alone`], or in a cluster its
    /// [`Link`] to CPG.
    order: Box<dyn Sequencer>,
    /// In a cluster, the daemons' names by CPG member, as their Syncs gave
    /// them (this daemon's own from the start): a daemon's ops may name its
    /// own clients only.
    daemons: HashMap<u64, String>,
    /// Ops refused for naming a client that is not their sender's.
    refused: u64,
}

/// The router, shared by every connection task.
pub(crate) struct Router {
    state: Mutex<State>,
}

/// A refusal: its code and what it is about.
pub(crate) type Refusal = (Code, String);

/// The checks of a multicast that need no access list (that one is
/// [`State::apply`]'s, where the op lands in the order).
fn check_multicast(service: u32, groups: Names<'_>, payload: &[u8]) -> Result<(), Refusal> {
    if !Service::from_bits(service).is_valid() {
        return Err((Code::IllegalService, format!("{service:#x}")));
    }
    if groups.is_empty() || groups.len() > MAX_GROUPS_PER_MESSAGE {
        return Err((Code::TooManyGroups, groups.len().to_string()));
    }
    if payload.len() > MAX_MESSAGE {
        return Err((Code::MessageTooLong, payload.len().to_string()));
    }
    if let Some(g) = groups.iter().find(|g| !legal_destination(g)) {
        return Err((Code::IllegalGroup, g.into()));
    }
    Ok(())
}

/// `repr` as a frame to queue: one allocation, shared by every outbox it goes to.
fn to_frame(repr: &Repr<'_>) -> Bytes {
    crate::wire::frame_bytes(repr)
}

fn reply(req: u32, code: u16, detail: &str) -> Bytes {
    to_frame(&Repr::Reply { req, code, detail })
}

impl Router {
    pub(crate) fn new(daemon_name: String, acl: Option<Acl>) -> Router {
        Router {
            state: Mutex::new(State {
                daemon_name,
                acl,
                acl_version: 0,
                proposed: None,
                proposal_back: false,
                settled: false,
                clients: HashMap::new(),
                names: HashMap::new(),
                groups: HashMap::new(),
                next_id: 1,
                shutting_down: false,
                fallen: Vec::new(),
                by_group: HashMap::new(),
                order: Box::new(Alone),
                daemons: HashMap::new(),
                refused: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a client under `name`; its outbox gets the welcome first.
    pub(crate) fn register(
        &self,
        name: &str,
        membership: bool,
        uid: Option<u32>,
        outbox: Arc<Outbox>,
    ) -> Result<(ClientId, String), Refusal> {
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.shutting_down {
            return Err((Code::ShuttingDown, String::new()));
        }
        if !legal_private_name(name) {
            return Err((Code::IllegalName, name.into()));
        }
        if st.names.contains_key(name) {
            return Err((Code::NotUnique, name.into()));
        }
        let private_group = format!("#{name}#{}", st.daemon_name);
        let id = st.next_id;
        st.next_id += 1;
        outbox.push(to_frame(&Repr::Welcome {
            private_group: &private_group,
        }));
        st.names.insert(name.into(), id);
        st.by_group.insert(private_group.clone(), id);
        st.clients.insert(
            id,
            Client {
                private_group: Arc::from(private_group.as_str()),
                uid,
                membership,
                groups: BTreeSet::new(),
                outbox,
                home: None,
                gone: false,
            },
        );
        Ok((id, private_group))
    }

    /// Joins `group`; the reply, then the membership message, go out.
    pub(crate) fn join(&self, id: ClientId, req: u32, group: &str) {
        let mut guard = self.lock();
        let st = &mut *guard;
        let refusal = st.check_join(id, group);
        let Some(client) = st.clients.get(&id).filter(|c| !c.gone) else {
            return;
        };
        match refusal {
            Some((code, detail)) => {
                client.outbox.push(reply(req, code as u16, &detail));
            }
            None => {
                let (uid, client) = (client.uid, client.private_group.clone());
                st.sequence(Op::Join {
                    req,
                    client: &client,
                    group,
                    uid,
                });
            }
        }
        st.drop_fallen();
    }

    /// Leaves `group`: a reply, a self-leave to the leaver, cause leave to the rest.
    pub(crate) fn leave(&self, id: ClientId, req: u32, group: &str) {
        let mut guard = self.lock();
        let st = &mut *guard;
        let Some(client) = st.clients.get(&id).filter(|c| !c.gone) else {
            return;
        };
        let client = client.private_group.clone();
        st.sequence(Op::Leave {
            req,
            client: &client,
            group,
        });
        st.drop_fallen();
    }

    /// Checks one multicast and sequences it; applied, it is queued to
    /// every recipient.
    pub(crate) fn multicast(
        &self,
        id: ClientId,
        service: u32,
        msg_type: i16,
        groups: Names<'_>,
        payload: &[u8],
    ) {
        let mut guard = self.lock();
        let st = &mut *guard;
        let Some(client) = st.clients.get(&id).filter(|c| !c.gone) else {
            return;
        };
        if let Err((code, detail)) = check_multicast(service, groups, payload) {
            client.outbox.push(reply(0, code as u16, &detail));
            return;
        }
        let (uid, client) = (client.uid, client.private_group.clone());
        st.sequence(Op::Multicast {
            client: &client,
            service,
            msg_type,
            groups,
            payload,
            uid,
        });
        st.drop_fallen();
    }

    /// Removes a client: its groups see it go with `cause`; its writer ends
    /// with `end`. A client already removed is left alone.
    pub(crate) fn remove(&self, id: ClientId, cause: Cause, end: End) {
        let mut guard = self.lock();
        let st = &mut *guard;
        st.depart(id, cause, end);
        st.drop_fallen();
    }

    /// Graceful shutdown: refuses new clients, tells every member of every
    /// group (cause disconnect, no members left), and ends every client in
    /// order after its queue is sent.
    pub(crate) fn shutdown(&self) {
        let mut guard = self.lock();
        let st = &mut *guard;
        st.shutting_down = true;
        let groups: Vec<String> = st.groups.keys().cloned().collect();
        for g in groups {
            let Some(group) = st.groups.remove(&g) else {
                continue;
            };
            let frame = to_frame(&Repr::Membership {
                cause: Cause::Disconnect.to_u8(),
                view: group.view + 1,
                group: &g,
                changed: "",
                members: Names::from(&[]),
            });
            for m in group.members {
                if let Some(c) = st.clients.get(&m).filter(|c| c.membership) {
                    c.outbox.push(frame.clone());
                }
            }
        }
        for c in st.clients.values() {
            c.outbox.end(End::Goodbye);
        }
        st.clients.clear();
        st.names.clear();
        st.by_group.clear();
        // In a cluster the daemon now leaves CPG; the others see cause
        // disconnect for its clients. Nothing more is sent (no client is
        // left to send) or applied (`shutting_down`) here.
    }

    /// Number of connected clients (for logs and tests).
    pub(crate) fn clients(&self) -> usize {
        self.lock().clients.len()
    }
}

impl State {
    /// Hands `op`, made by one of this daemon's clients, to the order, and
    /// applies it if it is its turn.
    fn sequence(&mut self, op: Op<'_>) {
        if self.order.sequence(&op) == Turn::Now {
            let me = self.order.member();
            self.apply(me, op);
        }
    }

    /// Applies one sequenced op from the daemon `from` (this one's own
    /// member for its own clients' ops): the replies to this daemon's
    /// clients, the state change, and the deliveries to this daemon's
    /// members.
    fn apply(&mut self, from: u64, op: Op<'_>) {
        match op {
            Op::Join {
                req,
                client,
                group,
                uid,
            } => {
                // The list in force here in the stream decides, at every
                // daemon alike.
                if self
                    .acl
                    .as_ref()
                    .is_some_and(|acl| !acl.may_join(group, uid))
                {
                    self.refuse(client, req, format!("join {group}"));
                    return;
                }
                let Some(id) = self.client_for(client, from) else {
                    return;
                };
                let local = self.is_local(id);
                let c = self.clients.get_mut(&id).unwrap();
                if local {
                    c.outbox.push(reply(req, 0, group));
                }
                if c.groups.insert(group.into()) {
                    self.groups
                        .entry(group.into())
                        .or_default()
                        .members
                        .push(id);
                    self.announce(group, client, Cause::Join, None);
                }
            }
            Op::Leave { req, client, group } => {
                let Some(id) = self.client_for(client, from) else {
                    return;
                };
                let local = self.is_local(id);
                let c = self.clients.get_mut(&id).unwrap();
                if !c.groups.remove(group) {
                    if local {
                        c.outbox.push(reply(req, Code::IllegalGroup as u16, group));
                    }
                    self.forget_if_idle(id);
                    return;
                }
                if local {
                    c.outbox.push(reply(req, 0, group));
                }
                self.remove_member(group, id);
                self.announce(group, client, Cause::Leave, local.then_some(id));
                self.forget_if_idle(id);
            }
            Op::Multicast {
                client,
                service,
                msg_type,
                groups,
                payload,
                uid,
            } => {
                // Private groups too: the access list's `[private]` rule.
                // One refused destination refuses the whole message.
                let refused = self
                    .acl
                    .as_ref()
                    .and_then(|acl| groups.iter().find(|g| !acl.may_send(g, uid)));
                match refused {
                    Some(g) => self.refuse(client, 0, format!("send {g}")),
                    None => self.deliver(client, service, msg_type, groups, payload),
                }
            }
            Op::Gone { client, cause } => {
                if let Some(id) = self.by_group.get(client).copied() {
                    // Its outbox ended when it departed here, or (a remote
                    // client) never had one to end.
                    self.remove_client(id, cause, End::Goodbye);
                }
            }
            Op::Sync { .. } => {} // the CPG task gathers these
            Op::Acl { text } => self.install_acl(from, text),
        }
    }

    /// Puts the access list `text`, proposed by the daemon `from`, in
    /// force here; a text that does not parse changes nothing (every
    /// daemon parses it alike, so it is refused everywhere).
    fn install_acl(&mut self, from: u64, text: &str) {
        let me = self.order.member();
        if from == me {
            self.proposal_back = true;
        }
        let by = self.daemons.get(&from).map_or("?", String::as_str);
        match Acl::parse(text) {
            Ok(acl) => {
                self.acl_version += 1;
                tracing::info!(
                    version = self.acl_version,
                    daemon = by,
                    from,
                    "cluster: access list in force"
                );
                if from != me && self.proposed.as_ref().is_some_and(|p| p.text() != text) {
                    tracing::warn!(
                        daemon = by,
                        "cluster: the access list given to this daemon (--acl) is no longer in \
                         force: daemon {by} proposed another since (the last list in the stream \
                         is every daemon's)"
                    );
                }
                self.acl = Some(acl);
            }
            Err(e) => tracing::warn!(
                daemon = by,
                from,
                error = %e,
                "cluster: an access list that does not parse refused"
            ),
        }
    }

    /// Tells `client`, if it is one of ours, that the access list refused
    /// its request `req` (0 for a multicast).
    fn refuse(&self, client: &str, req: u32, detail: String) {
        if let Some(c) = self
            .by_group
            .get(client)
            .and_then(|id| self.clients.get(id))
            .filter(|c| c.home.is_none())
        {
            c.outbox.push(reply(req, Code::NotAllowed as u16, &detail));
        }
    }

    /// A local client goes: its connection ends now (with `end`), and its
    /// removal is sequenced, to be applied (and announced) in order. A
    /// client already gone is left alone.
    fn depart(&mut self, id: ClientId, cause: Cause, end: End) {
        let Some(c) = self.clients.get_mut(&id) else {
            return;
        };
        c.outbox.end(end);
        if c.gone {
            return;
        }
        c.gone = true;
        let client = c.private_group.clone();
        self.sequence(Op::Gone {
            client: &client,
            cause,
        });
    }

    /// Delivers a sequenced multicast to this daemon's own recipients.
    fn deliver(
        &mut self,
        sender: &str,
        service: u32,
        msg_type: i16,
        groups: Names<'_>,
        payload: &[u8],
    ) {
        let me = self.by_group.get(sender).copied();
        let mut to: Vec<ClientId> = Vec::new();
        for g in groups.iter() {
            if g.starts_with('#') {
                if let Some(id) = self.by_group.get(g).filter(|id| self.is_local(**id)) {
                    to.push(*id);
                }
            } else if let Some(group) = self.groups.get(g) {
                to.extend(group.members.iter().filter(|m| self.is_local(**m)));
            }
        }
        to.sort_unstable();
        to.dedup();
        let level = Service::from_bits(service);
        if level.self_discard() {
            to.retain(|r| Some(*r) != me);
        }
        if to.is_empty() {
            return; // nobody here: no frame to build (a sender's own echo, mostly)
        }
        let frame = to_frame(&Repr::Message {
            service,
            msg_type,
            sender,
            groups,
            payload,
        });
        for r in to {
            let Some(c) = self.clients.get(&r) else {
                continue;
            };
            if c.outbox.push(frame.clone()) == Push::Full && !level.is_unreliable() {
                // Unreliable messages are simply missed by a full receiver;
                // any other level drops the receiver instead.
                self.fallen.push(r);
            }
        }
    }

    /// The checks of a join that need no access list (that one is
    /// [`State::apply`]'s, where the op lands in the order).
    fn check_join(&self, id: ClientId, group: &str) -> Option<Refusal> {
        let client = self.clients.get(&id)?;
        if !legal_group_name(group) {
            return Some((Code::IllegalGroup, group.into()));
        }
        if !client.groups.contains(group) && client.groups.len() >= MAX_GROUPS_PER_CLIENT {
            return Some((Code::TooManyGroups, group.into()));
        }
        None
    }

    fn remove_member(&mut self, group: &str, id: ClientId) {
        if let Some(g) = self.groups.get_mut(group) {
            g.members.retain(|m| *m != id);
        }
    }

    /// Tells the members of `group` (and, for a leave, the leaver `leaver`
    /// with its self-leave) about a change; bumps the view.
    fn announce(&mut self, group: &str, changed: &str, cause: Cause, leaver: Option<ClientId>) {
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        g.view += 1;
        let view = g.view;
        let members: Vec<ClientId> = g.members.clone();
        if members.is_empty() {
            self.groups.remove(group);
        }
        let names: Vec<&str> = members
            .iter()
            .filter_map(|m| self.clients.get(m).map(|c| &*c.private_group))
            .collect();
        let frame = to_frame(&Repr::Membership {
            cause: cause.to_u8(),
            view,
            group,
            changed,
            members: Names::from(&names),
        });
        let mut fallen = Vec::new();
        for m in &members {
            if let Some(c) = self.clients.get(m).filter(|c| c.membership)
                && c.outbox.push(frame.clone()) == Push::Full
            {
                fallen.push(*m);
            }
        }
        if let Some(c) = leaver
            .and_then(|l| self.clients.get(&l))
            .filter(|c| c.membership)
        {
            let own = Repr::Membership {
                cause: cause.to_u8(),
                view,
                group,
                changed,
                members: Names::from(&[]),
            };
            if c.outbox.push(to_frame(&own)) == Push::Full {
                fallen.push(leaver.unwrap_or_default());
            }
        }
        self.fallen.extend(fallen);
    }

    fn remove_client(&mut self, id: ClientId, cause: Cause, end: End) {
        let Some(client) = self.take_out(id, end) else {
            return;
        };
        for g in &client.groups {
            self.announce(g, &client.private_group, cause, None);
        }
    }

    /// Removes a client from every map and group, announcing nothing.
    fn take_out(&mut self, id: ClientId, end: End) -> Option<Client> {
        let client = self.clients.remove(&id)?;
        client.outbox.end(end);
        self.by_group.remove(&*client.private_group);
        if let Some(name) = client
            .private_group
            .strip_prefix('#')
            .and_then(|r| r.split_once('#'))
            .map(|(n, _)| n)
            .filter(|_| client.home.is_none())
        {
            self.names.remove(name);
        }
        for g in &client.groups {
            self.remove_member(g, id);
        }
        Some(client)
    }

    /// Removes the clients `ids` (in name order) at once: each group they
    /// were in hears one message with `cause`, naming the first of them.
    fn remove_clients_together(&mut self, ids: &[ClientId], cause: Cause) {
        let mut by_group: std::collections::BTreeMap<String, String> = Default::default();
        for id in ids {
            let Some(client) = self.take_out(*id, End::Goodbye) else {
                continue;
            };
            for g in client.groups {
                by_group
                    .entry(g)
                    .or_insert_with(|| client.private_group.to_string());
            }
        }
        for (g, first) in by_group {
            self.announce(&g, &first, cause, None);
        }
    }

    /// Drops every client found over its limit, as if its connection broke;
    /// the announcements may push others over theirs, so it loops.
    fn drop_fallen(&mut self) {
        while let Some(id) = self.fallen.pop() {
            let Some(c) = self.clients.get(&id) else {
                continue;
            };
            let (frames, bytes) = c.outbox.depth();
            let reason =
                format!("fell behind: {frames} messages, {bytes} bytes queued (the limit)");
            self.depart(id, Cause::Network, End::Drop(reason));
        }
    }
}
