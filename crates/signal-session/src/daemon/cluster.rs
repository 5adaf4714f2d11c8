//! `sessiond --cluster corosync`: the corosync cluster is the array.
//!
//! Every node's sessiond joins one CPG group ([`GROUP`]) through its local
//! corosync. An array-wide kill is one [`Message::ClusterAsk`] multicast to
//! the group; every sessiond, the asker's included, serves it under its own
//! permission rule for the user ids it carries and multicasts a
//! [`Message::ClusterAnswer`], which only the asker takes.
//!
//! Whom the asker waits for comes from virtual synchrony: its own ask is
//! delivered to it in the same membership view as to everyone else, so the
//! members of that view are exactly the sessionds that received it. A
//! membership change that removes one of them while it has not answered
//! ends the wait for it ([`NodeOutcome::Left`], with CPG's reason); the
//! deadline ends the wait for the rest. The report has one entry per node
//! of corosync's nodelist, so a node that was already down, cut off, or
//! runs no clustered sessiond is reported too, never silently missing.
//!
//! Trust is corosync's: only processes its IPC admits (root, or the users
//! and groups its `uidgid` configuration names) can join the group, and
//! nodes authenticate each other with the cluster's authkey when crypto is
//! configured. Unlike the TCP array, messages carry no MAC of their own.
//!
//! The group lives on a thread of its own with a current-thread runtime:
//! corosync's callbacks deliver into a thread-local queue, and nothing of
//! the group needs to cross threads.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;

use conn_core::{Error, ErrorKind, Result};
use conn_cpg::{ClusterNode, CpgGroup, Event, Member, Membership};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::array::{self, ClusterCall, NodeRequest};
use super::state::Daemon;
use crate::Caller;
use conn_core::wire::Repr as _;

use crate::wire::{Message, NodeOutcome, NodeResult};

/// The CPG group every clustered sessiond joins.
pub const GROUP: &str = super::CLUSTER_GROUP;

/// Joins the cluster's group on a thread of its own and serves it until
/// `stop`; returns once joined, with this sessiond's place in the group.
pub(crate) fn start(
    daemon: Arc<Daemon>,
    calls: mpsc::UnboundedReceiver<ClusterCall>,
    stop: CancellationToken,
) -> Result<(Member, JoinHandle<()>)> {
    let (ready, joined) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("sessiond-cpg".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready.send(Err(Error::io(e, "start", "cluster thread")));
                    return;
                }
            };
            runtime.block_on(async move {
                let group = match CpgGroup::join(GROUP) {
                    Ok(group) => group,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let _ = ready.send(Ok(group.me()));
                Cluster::new(daemon, group).run(calls, stop).await;
            });
        })
        .map_err(|e| Error::io(e, "start", "cluster thread"))?;
    match joined.recv() {
        Ok(Ok(me)) => Ok((me, thread)),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e.during("join the cluster"))
        }
        Err(_) => {
            let _ = thread.join();
            Err(Error::new(ErrorKind::Other)
                .during("join the cluster")
                .detail("the cluster thread ended before joining"))
        }
    }
}

/// One array-wide kill this sessiond asked, waiting for answers.
struct Pending {
    deadline: Option<Instant>,
    /// The members the ask was delivered to: the view it came back to us
    /// in. `None` until it has.
    asked: Option<Vec<Member>>,
    results: BTreeMap<Member, NodeOutcome>,
    reply: tokio::sync::oneshot::Sender<Result<Vec<NodeResult>>>,
}

impl Pending {
    fn complete(&self) -> bool {
        self.asked
            .as_ref()
            .is_some_and(|asked| asked.iter().all(|m| self.results.contains_key(m)))
    }
}

struct Cluster {
    daemon: Arc<Daemon>,
    group: CpgGroup,
    me: Member,
    /// The group's members now.
    view: Vec<Member>,
    /// The nodelist as last read, for when corosync cannot be asked.
    nodes: Vec<ClusterNode>,
    next_call: u64,
    pending: BTreeMap<u64, Pending>,
}

impl Cluster {
    fn new(daemon: Arc<Daemon>, group: CpgGroup) -> Cluster {
        let me = group.me();
        Cluster {
            daemon,
            group,
            me,
            view: vec![me],
            nodes: conn_cpg::cluster_nodes().unwrap_or_default(),
            next_call: 1,
            pending: BTreeMap::new(),
        }
    }

    async fn run(
        mut self,
        mut calls: mpsc::UnboundedReceiver<ClusterCall>,
        stop: CancellationToken,
    ) {
        loop {
            let wake = self.pending.values().filter_map(|p| p.deadline).min();
            tokio::select! {
                () = stop.cancelled() => break,
                call = calls.recv() => match call {
                    Some(call) => self.ask(call).await,
                    None => break,
                },
                event = self.group.next() => match event {
                    Ok(event) => self.on_event(event).await,
                    Err(e) => {
                        tracing::error!("cluster group: {e}; this sessiond leaves the cluster");
                        break;
                    }
                },
                () = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {
                    self.expire();
                }
            }
        }
        // Whatever still waits is answered with what came so far.
        for call in self.pending.keys().copied().collect::<Vec<_>>() {
            self.finish(call);
        }
        if let Err(e) = self.group.leave() {
            tracing::warn!("leaving the cluster group: {e}");
        }
        tracing::info!("left the cluster group");
    }

    /// Multicasts one array-wide kill.
    async fn ask(&mut self, call: ClusterCall) {
        let id = self.next_call;
        self.next_call += 1;
        let ask = call.request.frame().and_then(|request| {
            Ok(Message::ClusterAsk {
                call: id,
                ruid: call.request.caller.ruid,
                euid: call.request.caller.euid,
                request,
            }
            .to_vec()?)
        });
        let sent = match ask {
            Ok(bytes) => self.group.send(&bytes).await,
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            let _ = call.reply.send(Err(e.during("kill array session")));
            return;
        }
        self.pending.insert(
            id,
            Pending {
                deadline: call.deadline.instant(),
                asked: None,
                results: BTreeMap::new(),
                reply: call.reply,
            },
        );
    }

    async fn on_event(&mut self, event: Event) {
        match event {
            Event::Message { from, bytes } => {
                let msg = Message::decode(&bytes[..]);
                match msg {
                    Ok(Message::ClusterAsk {
                        call,
                        ruid,
                        euid,
                        request,
                    }) => {
                        self.serve(from, call, Caller { ruid, euid }, &request)
                            .await
                    }
                    Ok(Message::ClusterAnswer {
                        call,
                        node,
                        pid,
                        answer,
                    }) if (Member { node, pid }) == self.me => self.on_answer(from, call, &answer),
                    Ok(Message::ClusterAnswer { .. }) => {} // another asker's
                    Ok(other) => {
                        tracing::warn!(
                            "{from} sent a {:?} message to the cluster group; dropped",
                            other.kind()
                        )
                    }
                    Err(e) => tracing::warn!("{from} sent what is not a message: {e}; dropped"),
                }
            }
            Event::Membership(change) => self.on_membership(change),
        }
    }

    /// Serves an ask (ours too) and multicasts the answer.
    async fn serve(&mut self, from: Member, call: u64, caller: Caller, request: &[u8]) {
        if from == self.me
            && let Some(p) = self.pending.get_mut(&call)
        {
            p.asked = Some(self.view.clone());
        }
        let answer = NodeRequest::from_frame(caller, request)
            .map(|r| r.serve(&self.daemon))
            .unwrap_or_else(|e| Message::error(&e));
        let sent = answer.to_vec().and_then(|answer| {
            Message::ClusterAnswer {
                call,
                node: from.node,
                pid: from.pid,
                answer,
            }
            .to_vec()
        });
        let sent = match sent {
            Ok(bytes) => self.group.send(&bytes).await,
            Err(e) => Err(e.into()),
        };
        if let Err(e) = sent {
            tracing::warn!("answering {from}'s array kill: {e}");
        }
    }

    fn on_answer(&mut self, from: Member, call: u64, answer: &[u8]) {
        let Some(p) = self.pending.get_mut(&call) else {
            return; // a call already over (its deadline passed)
        };
        let outcome = match Message::decode(answer) {
            Ok(answer) => array::outcome(answer),
            Err(e) => NodeOutcome::NoAnswer {
                kind: ErrorKind::Protocol,
                message: format!("its answer is not a message: {e}"),
            },
        };
        p.results.insert(from, outcome);
        if p.complete() {
            self.finish(call);
        }
    }

    fn on_membership(&mut self, change: Membership) {
        self.view = change.members;
        let mut done = Vec::new();
        for (call, p) in &mut self.pending {
            let Some(asked) = &p.asked else { continue };
            for (member, reason) in &change.left {
                if asked.contains(member) && !p.results.contains_key(member) {
                    p.results.insert(
                        *member,
                        NodeOutcome::Left {
                            message: format!("left the cluster's group during the call: {reason}"),
                        },
                    );
                }
            }
            if p.complete() {
                done.push(*call);
            }
        }
        for call in done {
            self.finish(call);
        }
    }

    fn expire(&mut self) {
        let now = Instant::now();
        let due: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline.is_some_and(|d| d <= now))
            .map(|(call, _)| *call)
            .collect();
        for call in due {
            self.finish(call);
        }
    }

    /// Ends a call: one entry per node of the nodelist (then any member on
    /// a node it does not list), each with its outcome or why it has none.
    fn finish(&mut self, call: u64) {
        let Some(mut p) = self.pending.remove(&call) else {
            return;
        };
        if let Ok(nodes) = conn_cpg::cluster_nodes() {
            self.nodes = nodes;
        }
        let delivered = p.asked.is_some();
        let asked = p.asked.take().unwrap_or_default();
        let mut report = Vec::new();
        let result =
            |name: String, m: &Member, results: &mut BTreeMap<Member, NodeOutcome>| NodeResult {
                name,
                addr: format!("cpg:node {} pid {}", m.node, m.pid),
                outcome: results.remove(m).unwrap_or_else(|| NodeOutcome::NoAnswer {
                    kind: ErrorKind::TimedOut,
                    message: "no answer by the deadline".into(),
                }),
            };
        for node in &self.nodes {
            let here: Vec<&Member> = asked.iter().filter(|m| m.node == node.id).collect();
            if here.is_empty() {
                let message = if delivered {
                    "no sessiond of the cluster's group was on this node when the request was \
                     delivered (node down or cut off, or no `sessiond --cluster corosync` there)"
                } else {
                    "corosync did not deliver the request by the deadline"
                };
                report.push(NodeResult {
                    name: node.name.clone(),
                    addr: format!("cpg:node {}", node.id),
                    outcome: NodeOutcome::NoAnswer {
                        kind: ErrorKind::NotConnected,
                        message: message.into(),
                    },
                });
            }
            for m in here {
                report.push(result(node.name.clone(), m, &mut p.results));
            }
        }
        for m in asked
            .iter()
            .filter(|m| !self.nodes.iter().any(|n| n.id == m.node))
        {
            report.push(result(format!("node {}", m.node), m, &mut p.results));
        }
        let _ = p.reply.send(Ok(report));
    }
}
