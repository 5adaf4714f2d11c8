//! What a mailbox receives: messages and membership changes.

use bytes::Bytes;

use crate::limits::MAX_GROUP_NAME;
use conn_core::wire::Repr as _;

use crate::wire::{Names, Repr};
use crate::{GroupName, MailboxError, Service};

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
    /// Across daemons only: the daemons' configuration is changing (CPG
    /// lost a daemon), and the members listed are those whose daemons
    /// move on with the receiver's, the *transitional* membership (Spread's
    /// `TRANSITION_MESS`). The view id is unchanged and `changed` is empty;
    /// the messages delivered after it and before the group's next
    /// membership message (the regular one, cause network or disconnect)
    /// are those the old configuration left unfinished: a SAFE one among
    /// them is known to be held by the transitional members' daemons only.
    Transition,
}

impl Cause {
    /// The wire value.
    pub fn to_u8(self) -> u8 {
        match self {
            Cause::Join => 1,
            Cause::Leave => 2,
            Cause::Disconnect => 3,
            Cause::Network => 4,
            Cause::Transition => 5,
        }
    }

    /// The cause for a wire value.
    pub fn from_u8(v: u8) -> Option<Cause> {
        Some(match v {
            1 => Cause::Join,
            2 => Cause::Leave,
            3 => Cause::Disconnect,
            4 => Cause::Network,
            5 => Cause::Transition,
            _ => return None,
        })
    }

    /// Lower-case name: `"join"`, `"leave"`, `"disconnect"`, `"network"`,
    /// `"transition"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Join => "join",
            Cause::Leave => "leave",
            Cause::Disconnect => "disconnect",
            Cause::Network => "network",
            Cause::Transition => "transition",
        }
    }
}

/// A delivered message: a checked view over the frame it arrived in.
///
/// Receiving one copies nothing and allocates nothing: the frame was
/// checked once on arrival (every length, every name's UTF-8), and the
/// accessors read the sender, the groups and the body in place. The body
/// shares the frame's bytes ([`Message::into_data`] keeps it without a copy).
///
/// ```
/// use conn_mailbox::{Message, Service};
/// let m = Message::new("#a#local", &["chat", "news"], Service::AGREED, 7, b"hi")?;
/// assert_eq!(m.sender(), "#a#local");
/// assert_eq!(m.groups().iter().collect::<Vec<_>>(), ["chat", "news"]);
/// assert_eq!((m.service(), m.msg_type(), m.data()), (Service::AGREED, 7, &b"hi"[..]));
/// assert_eq!(&m.into_data()[..], b"hi");
/// # Ok::<(), conn_mailbox::MailboxError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// The whole frame, checked.
    frame: Bytes,
    service: Service,
    msg_type: i16,
    /// Where in the frame the sender's name lies.
    sender: Span,
    /// Where in the frame the groups' list lies (count included).
    groups: Span,
    /// Where the body starts.
    body_at: u32,
}

/// A range of a frame's bytes (frames are at most a few MiB).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Span {
    at: u32,
    len: u32,
}

impl Span {
    /// Where `part`, a slice of `frame`, lies in it.
    fn of(frame: &[u8], part: &[u8]) -> Span {
        let at = part.as_ptr() as usize - frame.as_ptr() as usize;
        debug_assert!(at + part.len() <= frame.len());
        Span {
            at: at as u32,
            len: part.len() as u32,
        }
    }

    fn range(self) -> std::ops::Range<usize> {
        self.at as usize..(self.at + self.len) as usize
    }
}

impl Message {
    /// A message as a daemon would deliver it (for tests and for programs
    /// that relay messages); the names and the body are checked against
    /// the limits as a multicast's are.
    pub fn new(
        sender: &str,
        groups: &[&str],
        service: Service,
        msg_type: i16,
        data: &[u8],
    ) -> Result<Message, MailboxError> {
        if sender.len() > MAX_GROUP_NAME {
            return Err(MailboxError::IllegalGroup(sender.into()));
        }
        crate::client::check_multicast(service, groups, data)?;
        let frame = Repr::Message {
            service: service.bits(),
            msg_type,
            sender,
            groups: Names::from(groups),
            payload: data,
        }
        .to_vec()?;
        Message::from_frame(Bytes::from(frame))
    }

    /// Checks a received message frame and keeps it as the view: where
    /// each field lies is taken from the parse, never assumed.
    pub(crate) fn from_frame(frame: Bytes) -> Result<Message, MailboxError> {
        let repr = Repr::decode(&frame[..])
            .map_err(|e| MailboxError::Protocol(format!("from the daemon: {e}")))?;
        let Repr::Message {
            service,
            msg_type,
            sender,
            groups,
            payload,
        } = repr
        else {
            return Err(MailboxError::Protocol(format!(
                "from the daemon: expected a message, got {:?}",
                repr.kind()
            )));
        };
        // The names are read in place; only their limit is checked here.
        GroupName::from_daemon(sender)?;
        for g in groups.iter() {
            GroupName::from_daemon(g)?;
        }
        let groups = groups.encoded().expect("a parsed list has its bytes");
        Ok(Message {
            service: Service::from_bits(service),
            msg_type,
            sender: Span::of(&frame, sender.as_bytes()),
            groups: Span::of(&frame, groups),
            body_at: Span::of(&frame, payload).at,
            frame,
        })
    }

    /// The sender's private group, `#name#daemon`.
    pub fn sender(&self) -> &str {
        std::str::from_utf8(&self.frame[self.sender.range()])
            .expect("checked when the message arrived")
    }

    /// The groups it was sent to, in the sender's order.
    pub fn groups(&self) -> Names<'_> {
        Names::parse(&self.frame[self.groups.range()])
            .expect("checked when the message arrived")
            .0
    }

    /// The service it was sent with.
    pub fn service(&self) -> Service {
        self.service
    }

    /// The application's message type.
    pub fn msg_type(&self) -> i16 {
        self.msg_type
    }

    /// The body.
    pub fn data(&self) -> &[u8] {
        &self.frame[self.body_at as usize..]
    }

    /// The body, sharing the frame's bytes (no copy).
    pub fn into_data(self) -> Bytes {
        self.frame.slice(self.body_at as usize..)
    }
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("sender", &self.sender())
            .field("groups", &self.groups())
            .field("service", &self.service())
            .field("msg_type", &self.msg_type())
            .field("data", &self.frame.slice(self.body_at as usize..))
            .finish()
    }
}

/// A regular membership message: the group's members after a change.
///
/// ```
/// use conn_mailbox::{Cause, GroupName, Membership};
/// let own = Membership {
///     group: GroupName::new("chat")?,
///     view: 7,
///     cause: Cause::Leave,
///     changed: GroupName::new("#a#local")?,
///     members: vec![],
/// };
/// assert!(own.is_self_leave());
/// assert_eq!(own.group, "chat");
/// # Ok::<(), conn_mailbox::MailboxError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    /// The group.
    pub group: GroupName,
    /// The view id: grows by one with every change of this group.
    pub view: u64,
    /// Why it changed.
    pub cause: Cause,
    /// The member who joined or left (the receiver itself for a self-leave).
    /// Across daemons, when several members go at once (every client of
    /// the daemons a partition or a crash took away), one message with
    /// cause network (or disconnect) tells it all: `changed` is the first
    /// of them by name and `members` says who stayed.
    pub changed: GroupName,
    /// The members now, in join order; empty in a self-leave and when the
    /// daemon shuts down.
    pub members: Vec<GroupName>,
}

impl Membership {
    /// True for the message the leaver itself gets: cause leave, no members.
    pub fn is_self_leave(&self) -> bool {
        self.cause == Cause::Leave && self.members.is_empty()
    }

    /// True for a transitional membership ([`Cause::Transition`]): not a
    /// view of its own, but the announcement of the regular one to come.
    pub fn is_transitional(&self) -> bool {
        self.cause == Cause::Transition
    }
}

/// One thing [`Mailbox::receive`](crate::Mailbox::receive) returns.
///
/// ```
/// use conn_mailbox::{Cause, Event, GroupName, Membership};
/// let a = GroupName::new("#a#local")?;
/// let ev = Event::Membership(Membership {
///     group: GroupName::new("g")?, view: 1, cause: Cause::Join,
///     changed: a, members: vec![a],
/// });
/// assert!(matches!(ev, Event::Membership(m) if m.cause == Cause::Join));
/// # Ok::<(), conn_mailbox::MailboxError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A message.
    Message(Message),
    /// A membership change.
    Membership(Membership),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_view_reads_every_field_in_place() {
        let groups: Vec<String> = (0..5).map(|i| format!("g{i}")).collect();
        let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
        let m = Message::new("#s#d", &groups, Service::SAFE, -2, &[9; 300]).unwrap();
        assert_eq!(m.sender(), "#s#d");
        assert_eq!(m.groups().iter().collect::<Vec<_>>(), groups);
        assert_eq!((m.service(), m.msg_type()), (Service::SAFE, -2));
        assert_eq!(m.data(), &[9; 300][..]);
        let copy = m.clone();
        assert_eq!(copy, m);
        assert!(format!("{m:?}").contains("\"#s#d\""));
        // The body keeps sharing the frame.
        let start = m.data().as_ptr();
        assert_eq!(m.into_data().as_ptr(), start);
    }

    #[test]
    fn a_message_over_the_limits_is_refused_when_made() {
        let long = "x".repeat(MAX_GROUP_NAME + 1);
        assert!(matches!(
            Message::new(&long, &["g"], Service::AGREED, 0, b""),
            Err(MailboxError::IllegalGroup(_))
        ));
        assert!(matches!(
            Message::new("#s#d", &[], Service::AGREED, 0, b""),
            Err(MailboxError::TooManyGroups { .. })
        ));
    }

    #[test]
    fn a_frame_that_is_no_message_is_a_protocol_error() {
        let join = Bytes::from(Repr::Join { req: 1, group: "g" }.to_vec().unwrap());
        assert!(matches!(
            Message::from_frame(join),
            Err(MailboxError::Protocol(_))
        ));
        let mut cut = Message::new("#s#d", &["g"], Service::AGREED, 0, b"body")
            .unwrap()
            .frame
            .to_vec();
        cut.truncate(cut.len() - 1);
        assert!(matches!(
            Message::from_frame(Bytes::from(cut)),
            Err(MailboxError::Protocol(_))
        ));
    }

    #[test]
    fn a_daemon_name_over_the_limit_is_a_protocol_error() {
        let long = "y".repeat(MAX_GROUP_NAME + 1);
        let frame = Repr::Message {
            service: Service::AGREED.bits(),
            msg_type: 0,
            sender: &long,
            groups: Names::from(&["g"]),
            payload: b"",
        }
        .to_vec()
        .unwrap();
        assert!(matches!(
            Message::from_frame(Bytes::from(frame)),
            Err(MailboxError::Protocol(_))
        ));
    }
}
