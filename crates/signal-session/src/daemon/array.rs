//! An array-wide kill, whichever way it reaches the nodes (TCP to the
//! configured peers, or CPG to the corosync cluster): the one request every
//! node serves, and the one outcome every node's answer becomes.

use conn_core::{Deadline, Error, ErrorKind, Result};
#[cfg(feature = "corosync")]
use tokio::sync::oneshot;

use super::state::Daemon;
use crate::wire::{Message, NodeOutcome, NodeResult};
use crate::{Ash, Caller};
use conn_core::wire::Repr as _;

/// What each node of an array is asked: signal its members of `ash` for
/// `caller`, under its own permission rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NodeRequest {
    /// The user the kill is for (the asking client's ids).
    pub(crate) caller: Caller,
    pub(crate) ash: Ash,
    pub(crate) sig: i32,
    pub(crate) atomic: bool,
}

impl NodeRequest {
    /// A request for `caller`; the signal is checked here once, so every
    /// node is told the same valid request.
    pub(crate) fn new(caller: Caller, ash: Ash, sig: i32, atomic: bool) -> Result<NodeRequest> {
        crate::Signal::new(sig).map_err(|e| e.during("kill array session"))?;
        Ok(NodeRequest {
            caller,
            ash,
            sig,
            atomic,
        })
    }

    /// The request as it travels: a [`Message::Kill`] frame for this node
    /// only (the user's ids travel beside it).
    pub(crate) fn frame(&self) -> Result<Vec<u8>> {
        Ok(Message::Kill {
            ash: self.ash,
            sig: self.sig,
            atomic: self.atomic,
            array: None,
            deadline_ms: 0,
        }
        .to_vec()?)
    }

    /// A request that arrived from another daemon; only a kill on this node
    /// is accepted that way, never a spawn, an adoption, or a kill that
    /// fans out again.
    pub(crate) fn from_frame(caller: Caller, frame: &[u8]) -> Result<NodeRequest> {
        match Message::decode(frame)? {
            Message::Kill {
                ash,
                sig,
                atomic,
                array: None,
                ..
            } => Ok(NodeRequest {
                caller,
                ash,
                sig,
                atomic,
            }),
            other => Err(Error::new(ErrorKind::PermissionDenied)
                .during("handle peer request")
                .detail(format!(
                    "peers may only kill on this node, not send {:?}",
                    other.kind()
                ))),
        }
    }

    /// Serves the request on this node: a [`Message::Report`], or the
    /// [`Message::Error`] (no such session here, ...).
    pub(crate) fn serve(&self, daemon: &Daemon) -> Message {
        let NodeRequest {
            caller,
            ash,
            sig,
            atomic,
        } = *self;
        tracing::info!(%ash, sig, ruid = caller.ruid, euid = caller.euid, "kill for the array");
        daemon
            .signal(caller, ash, sig, atomic)
            .map(Message::Report)
            .unwrap_or_else(|e| Message::error(&e))
    }
}

/// What a node's answer means for the report.
pub(crate) fn outcome(answer: Message) -> NodeOutcome {
    match answer {
        Message::Report(report) => NodeOutcome::Answered(report),
        Message::Error { kind, message } => NodeOutcome::Refused { kind, message },
        other => NodeOutcome::NoAnswer {
            kind: ErrorKind::Protocol,
            message: format!("answered with a {:?} message", other.kind()),
        },
    }
}

/// The array name that means the corosync cluster, for a sessiond started
/// with `--cluster corosync`.
pub const CLUSTER_ARRAY: &str = "cluster";

/// An array-wide signal handed to the thread that holds this sessiond's
/// CPG membership.
#[cfg(feature = "corosync")]
pub(crate) struct ClusterCall {
    pub(crate) request: NodeRequest,
    pub(crate) deadline: Deadline,
    pub(crate) reply: oneshot::Sender<Result<Vec<NodeResult>>>,
}

/// The way to the cluster thread.
#[cfg(feature = "corosync")]
pub(crate) type ClusterLink = tokio::sync::mpsc::UnboundedSender<ClusterCall>;

/// Built without the `corosync` feature there is no cluster thread, and so
/// no way to one: a `ClusterLink` cannot be made, and `--cluster` is refused
/// before the daemon starts.
#[cfg(not(feature = "corosync"))]
pub(crate) type ClusterLink = std::convert::Infallible;

/// Signals `request` on every node: the corosync cluster when `array` is
/// [`CLUSTER_ARRAY`] and this sessiond is in one, else the configured TCP
/// array of that name. Either way one report, one entry per node.
pub(crate) async fn signal_array(
    daemon: &Daemon,
    array: &str,
    request: NodeRequest,
    deadline: Deadline,
) -> Result<Vec<NodeResult>> {
    match daemon.cluster.as_ref().filter(|_| array == CLUSTER_ARRAY) {
        Some(link) => ask_cluster(link, request, deadline).await,
        None => super::remote::fan_out(daemon, array, request, deadline).await,
    }
}

#[cfg(not(feature = "corosync"))]
async fn ask_cluster(link: &ClusterLink, _: NodeRequest, _: Deadline) -> Result<Vec<NodeResult>> {
    match *link {}
}

/// Hands the signal to the cluster thread and waits for its report.
#[cfg(feature = "corosync")]
async fn ask_cluster(
    link: &ClusterLink,
    request: NodeRequest,
    deadline: Deadline,
) -> Result<Vec<NodeResult>> {
    let gone = || {
        Error::new(ErrorKind::NotConnected)
            .during("kill array session")
            .on(format_args!("array {CLUSTER_ARRAY:?}"))
            .detail("this sessiond is no longer in the cluster's group (corosync went away?)")
    };
    let (reply, answer) = oneshot::channel();
    link.send(ClusterCall {
        request,
        deadline,
        reply,
    })
    .map_err(|_| gone())?;
    answer.await.map_err(|_| gone())?
}
