//! What a mailbox receives: messages and membership changes.

use bytes::Bytes;

use crate::Service;

/// Why a group's membership changed.
///
/// ```
/// use conn_mailbox::Cause;
/// assert_eq!(Cause::from_u8(Cause::Network.to_u8()), Some(Cause::Network));
/// assert_eq!(Cause::Disconnect.as_str(), "disconnect");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cause {
    /// A member joined.
    Join,
    /// A member left the group (and stays connected).
    Leave,
    /// A member disconnected in order (or the daemon shut down).
    Disconnect,
    /// A member was lost without a word: crash, kill, dropped connection,
    /// bad bytes, or fell behind.
    Network,
}

impl Cause {
    /// The wire value.
    pub fn to_u8(self) -> u8 {
        match self {
            Cause::Join => 1,
            Cause::Leave => 2,
            Cause::Disconnect => 3,
            Cause::Network => 4,
        }
    }

    /// The cause for a wire value.
    pub fn from_u8(v: u8) -> Option<Cause> {
        Some(match v {
            1 => Cause::Join,
            2 => Cause::Leave,
            3 => Cause::Disconnect,
            4 => Cause::Network,
            _ => return None,
        })
    }

    /// Lower-case name: `"join"`, `"leave"`, `"disconnect"`, `"network"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Join => "join",
            Cause::Leave => "leave",
            Cause::Disconnect => "disconnect",
            Cause::Network => "network",
        }
    }
}

/// A delivered message.
///
/// ```
/// use conn_mailbox::{Message, Service};
/// let m = Message {
///     sender: "#a#local".into(),
///     groups: vec!["chat".into()],
///     service: Service::AGREED,
///     msg_type: 0,
///     data: "hi".into(),
/// };
/// assert_eq!(&m.data[..], b"hi");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The sender's private group, `#name#daemon`.
    pub sender: String,
    /// The groups it was sent to.
    pub groups: Vec<String>,
    /// The service it was sent with.
    pub service: Service,
    /// The application's message type.
    pub msg_type: i16,
    /// The body (shares the received frame's bytes).
    pub data: Bytes,
}

/// A regular membership message: the group's members after a change.
///
/// ```
/// use conn_mailbox::{Cause, Membership};
/// let own = Membership {
///     group: "chat".into(),
///     view: 7,
///     cause: Cause::Leave,
///     changed: "#a#local".into(),
///     members: vec![],
/// };
/// assert!(own.is_self_leave());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    /// The group.
    pub group: String,
    /// The view id: grows by one with every change of this group.
    pub view: u64,
    /// Why it changed.
    pub cause: Cause,
    /// The member who joined or left (the receiver itself for a self-leave).
    pub changed: String,
    /// The members now, in join order; empty in a self-leave and when the
    /// daemon shuts down.
    pub members: Vec<String>,
}

impl Membership {
    /// True for the message the leaver itself gets: cause leave, no members.
    pub fn is_self_leave(&self) -> bool {
        self.cause == Cause::Leave && self.members.is_empty()
    }
}

/// One thing [`Mailbox::receive`](crate::Mailbox::receive) returns.
///
/// ```
/// use conn_mailbox::{Cause, Event, Membership};
/// let ev = Event::Membership(Membership {
///     group: "g".into(), view: 1, cause: Cause::Join,
///     changed: "#a#local".into(), members: vec!["#a#local".into()],
/// });
/// assert!(matches!(ev, Event::Membership(m) if m.cause == Cause::Join));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A message.
    Message(Message),
    /// A membership change.
    Membership(Membership),
}
