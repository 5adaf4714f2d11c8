//! What a group member receives: messages and membership changes.

use std::fmt;

/// One process in a group: the corosync node it runs on and its pid there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Member {
    /// corosync's node id (`nodeid` in the node list).
    pub node: u32,
    /// The process id on that node.
    pub pid: u32,
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node {} pid {}", self.node, self.pid)
    }
}

/// Why a member joined or left, as CPG reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// It joined the group.
    Join,
    /// It left the group in order (`cpg_leave`, or its handle finalized).
    Leave,
    /// Its node left the cluster: crashed, cut off, or its corosync stopped.
    NodeDown,
    /// Its node (re)joined the cluster.
    NodeUp,
    /// Its process ended without leaving (exit, crash, SIGKILL).
    ProcDown,
    /// corosync gave no reason it documents.
    Undefined,
}

impl Reason {
    pub(crate) fn from_cpg(reason: rust_corosync::cpg::Reason) -> Reason {
        use rust_corosync::cpg::Reason as R;
        match reason {
            R::Join => Reason::Join,
            R::Leave => Reason::Leave,
            R::NodeDown => Reason::NodeDown,
            R::NodeUp => Reason::NodeUp,
            R::ProcDown => Reason::ProcDown,
            R::Undefined => Reason::Undefined,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::Join => "join",
            Reason::Leave => "leave",
            Reason::NodeDown => "node down",
            Reason::NodeUp => "node up",
            Reason::ProcDown => "process down",
            Reason::Undefined => "undefined",
        })
    }
}

/// A change of the group's membership, delivered at the same point of the
/// message order at every member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    /// Every member after the change, in corosync's order (the same at
    /// every member).
    pub members: Vec<Member>,
    /// Who left, and why.
    pub left: Vec<(Member, Reason)>,
    /// Who joined, and why.
    pub joined: Vec<(Member, Reason)>,
}

/// What [`CpgGroup::next`](crate::CpgGroup::next) returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A message multicast to the group, in the one agreed order.
    Message {
        /// The sender.
        from: Member,
        /// The bytes it sent.
        bytes: Vec<u8>,
    },
    /// The membership changed.
    Membership(Membership),
}
