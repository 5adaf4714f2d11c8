//! What one frame means, parsed from a checked [`Frame`] and emitted back.

use bytes::Bytes;
use conn_core::wire::{self, Format, Reader, WireError, Writer};

use super::{Frame, Mailbox, Names};

/// A nonce on the wire: 32 random bytes.
pub type Nonce = [u8; 32];
/// A MAC on the wire: HMAC-SHA256's 32 bytes.
pub type Tag = [u8; 32];

conn_core::wire_kinds! {
    /// The frame kinds. Client to daemon below 16, daemon to client from 16.
    pub enum Kind {
        /// Client hello: version, priority, membership flag, private name.
        Connect = 1 => "connect",
        /// Join a group; answered by a `Reply` with the same `req`.
        Join = 2 => "join",
        /// Leave a group; answered by a `Reply` with the same `req`.
        Leave = 3 => "leave",
        /// Send to groups and private groups.
        Multicast = 4 => "multicast",
        /// Goodbye: members see cause disconnect.
        Disconnect = 5 => "disconnect",
        /// A TCP client's answer to the daemon's `Challenge`: its own nonce and
        /// its MAC over both nonces.
        Answer = 6 => "answer",
        /// The daemon accepted the client; carries its private group.
        Welcome = 16 => "welcome",
        /// The answer to a request, or (req 0) a refusal not tied to one.
        Reply = 17 => "reply",
        /// A delivered message.
        Message = 18 => "message",
        /// A membership change of a group.
        Membership = 19 => "membership",
        /// Over TCP, the daemon's first frame: a fresh nonce the client must
        /// answer with the shared secret before it may say hello.
        Challenge = 20 => "challenge",
        /// The daemon's MAC over both nonces: it holds the secret too.
        Proof = 21 => "proof",
    }
}

/// The parsed meaning of one frame; strings and payloads borrow the frame.
///
/// ```
/// use conn_mailbox::wire::{Frame, Kind, Repr};
/// use conn_core::wire::Repr as _;
/// let bytes = Repr::Multicast { service: 0x10, msg_type: 1, groups: (&["g"]).into(), payload: b"hi" }.to_vec()?;
/// let frame = Frame::new_checked(&bytes[..])?;
/// let repr = Repr::parse(&frame)?;
/// assert_eq!(repr.kind(), Kind::Multicast);
/// assert_eq!(repr.buffer_len(), bytes.len());
/// # Ok::<(), conn_mailbox::wire::WireError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Repr<'a> {
    /// Client hello.
    Connect {
        /// Protocol version, [`Repr::VERSION`].
        version: u8,
        /// Spread's priority (kept, no effect with one daemon).
        priority: u8,
        /// True when the client wants membership messages.
        membership: bool,
        /// The private name asked for.
        name: &'a str,
    },
    /// Join a group.
    Join {
        /// Request id echoed in the reply.
        req: u32,
        /// The group.
        group: &'a str,
    },
    /// Leave a group.
    Leave {
        /// Request id echoed in the reply.
        req: u32,
        /// The group.
        group: &'a str,
    },
    /// Send to groups.
    Multicast {
        /// Service bits.
        service: u32,
        /// Application message type.
        msg_type: i16,
        /// Destinations: groups and private groups.
        groups: Names<'a>,
        /// The body.
        payload: &'a [u8],
    },
    /// Goodbye.
    Disconnect,
    /// A TCP client's answer to a [`Repr::Challenge`] (see
    /// [`daemon`](crate::daemon)'s TCP section for the MACs).
    Answer {
        /// The client's own fresh nonce, which the daemon's proof covers.
        nonce: Nonce,
        /// HMAC-SHA256 with the shared secret over the client context, the
        /// daemon's nonce and the client's.
        mac: Tag,
    },
    /// The daemon accepted the client.
    Welcome {
        /// `#name#daemon`.
        private_group: &'a str,
    },
    /// Answer or refusal.
    Reply {
        /// The request answered; 0 for a refusal tied to no request.
        req: u32,
        /// 0 for success, else an [`error::Code`](crate::error::Code).
        code: u16,
        /// What the refusal is about (a name, a group).
        detail: &'a str,
    },
    /// A delivered message.
    Message {
        /// Service bits it was sent with.
        service: u32,
        /// Application message type.
        msg_type: i16,
        /// The sender's private group.
        sender: &'a str,
        /// The destinations it was sent to.
        groups: Names<'a>,
        /// The body.
        payload: &'a [u8],
    },
    /// A membership change.
    Membership {
        /// The cause, as [`Cause`](crate::Cause)'s wire value.
        cause: u8,
        /// The group's view id, growing with every change.
        view: u64,
        /// The group.
        group: &'a str,
        /// The member who joined or left.
        changed: &'a str,
        /// The members now, in join order.
        members: Names<'a>,
    },
    /// The daemon's challenge to a TCP client.
    Challenge {
        /// A fresh random nonce, one per connection.
        nonce: Nonce,
    },
    /// The daemon's proof that it holds the secret.
    Proof {
        /// HMAC-SHA256 with the shared secret over the daemon context and
        /// both nonces.
        mac: Tag,
    },
}

impl Repr<'_> {
    /// The protocol version this crate speaks.
    pub const VERSION: u8 = 1;
}

impl<'a> wire::Repr<'a> for Repr<'a> {
    type Format = Mailbox;

    /// Parses a checked frame. Never panics: every length is checked
    /// against the bytes that are there.
    fn parse(frame: &Frame<'a>) -> Result<Repr<'a>, WireError> {
        let kind = frame.checked_kind()?;
        let mut r = Reader::new(Mailbox::PROTOCOL, frame.body()).in_kind(kind.name());
        let repr = match kind {
            Kind::Connect => Repr::Connect {
                version: r.u8()?,
                priority: r.u8()?,
                membership: r.bool()?,
                name: r.str8()?,
            },
            Kind::Join => Repr::Join {
                req: r.u32()?,
                group: r.str8()?,
            },
            Kind::Leave => Repr::Leave {
                req: r.u32()?,
                group: r.str8()?,
            },
            Kind::Multicast => Repr::Multicast {
                service: r.u32()?,
                msg_type: r.i16()?,
                groups: Names::read(&mut r)?,
                payload: r.rest(),
            },
            Kind::Disconnect => Repr::Disconnect,
            Kind::Answer => Repr::Answer {
                nonce: r.array()?,
                mac: r.array()?,
            },
            Kind::Welcome => Repr::Welcome {
                private_group: r.str8()?,
            },
            Kind::Reply => Repr::Reply {
                req: r.u32()?,
                code: r.u16()?,
                detail: r.rest_str()?,
            },
            Kind::Message => Repr::Message {
                service: r.u32()?,
                msg_type: r.i16()?,
                sender: r.str8()?,
                groups: Names::read(&mut r)?,
                payload: r.rest(),
            },
            Kind::Membership => Repr::Membership {
                cause: r.u8()?,
                view: r.u64()?,
                group: r.str8()?,
                changed: r.str8()?,
                members: Names::read(&mut r)?,
            },
            Kind::Challenge => Repr::Challenge { nonce: r.array()? },
            Kind::Proof => Repr::Proof { mac: r.array()? },
        };
        r.finish()?;
        Ok(repr)
    }

    /// The kind of frame this is.
    fn kind(&self) -> Kind {
        match self {
            Repr::Connect { .. } => Kind::Connect,
            Repr::Join { .. } => Kind::Join,
            Repr::Leave { .. } => Kind::Leave,
            Repr::Multicast { .. } => Kind::Multicast,
            Repr::Disconnect => Kind::Disconnect,
            Repr::Answer { .. } => Kind::Answer,
            Repr::Welcome { .. } => Kind::Welcome,
            Repr::Reply { .. } => Kind::Reply,
            Repr::Message { .. } => Kind::Message,
            Repr::Membership { .. } => Kind::Membership,
            Repr::Challenge { .. } => Kind::Challenge,
            Repr::Proof { .. } => Kind::Proof,
        }
    }

    fn body_len(&self) -> usize {
        match self {
            Repr::Connect { name, .. } => 3 + 1 + name.len(),
            Repr::Join { group, .. } | Repr::Leave { group, .. } => 4 + 1 + group.len(),
            Repr::Multicast {
                groups, payload, ..
            } => 4 + 2 + groups.buffer_len() + payload.len(),
            Repr::Disconnect => 0,
            Repr::Answer { .. } => 32 + 32,
            Repr::Challenge { .. } | Repr::Proof { .. } => 32,
            Repr::Welcome { private_group } => 1 + private_group.len(),
            Repr::Reply { detail, .. } => 4 + 2 + detail.len(),
            Repr::Message {
                sender,
                groups,
                payload,
                ..
            } => 4 + 2 + 1 + sender.len() + groups.buffer_len() + payload.len(),
            Repr::Membership {
                group,
                changed,
                members,
                ..
            } => 1 + 8 + 1 + group.len() + 1 + changed.len() + members.buffer_len(),
        }
    }

    fn emit_body(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        match self {
            Repr::Connect {
                version,
                priority,
                membership,
                name,
            } => {
                w.bytes(&[*version, *priority, u8::from(*membership)])?;
                w.str8(name)
            }
            Repr::Join { req, group } | Repr::Leave { req, group } => {
                w.u32(*req)?;
                w.str8(group)
            }
            Repr::Multicast {
                service,
                msg_type,
                groups,
                payload,
            } => {
                w.u32(*service)?;
                w.i16(*msg_type)?;
                groups.emit(w)?;
                w.bytes(payload)
            }
            Repr::Disconnect => Ok(()),
            Repr::Answer { nonce, mac } => {
                w.bytes(nonce)?;
                w.bytes(mac)
            }
            Repr::Challenge { nonce } => w.bytes(nonce),
            Repr::Proof { mac } => w.bytes(mac),
            Repr::Welcome { private_group } => w.str8(private_group),
            Repr::Reply { req, code, detail } => {
                w.u32(*req)?;
                w.u16(*code)?;
                w.bytes(detail.as_bytes())
            }
            Repr::Message {
                service,
                msg_type,
                sender,
                groups,
                payload,
            } => {
                w.u32(*service)?;
                w.i16(*msg_type)?;
                w.str8(sender)?;
                groups.emit(w)?;
                w.bytes(payload)
            }
            Repr::Membership {
                cause,
                view,
                group,
                changed,
                members,
            } => {
                w.u8(*cause)?;
                w.u64(*view)?;
                w.str8(group)?;
                w.str8(changed)?;
                members.emit(w)
            }
        }
    }
}

/// `repr` as a frame to queue, allocated once and shared by every outbox
/// it goes to. The daemon checks every name against the limits before it
/// reaches a frame, so emitting cannot fail; if a name got past them
/// anyway, the client is told with a refusal (and the daemon logs its own
/// bug) instead of the daemon panicking.
pub fn frame_bytes(repr: &Repr<'_>) -> Bytes {
    use conn_core::wire::Repr as _;
    match repr.to_vec() {
        Ok(frame) => Bytes::from(frame),
        Err(e) => {
            tracing::error!(error = %e, ?repr, "a frame the daemon cannot emit");
            Bytes::from_static(UNEMITTABLE)
        }
    }
}

/// A `Reply` refusing with [`Code::Protocol`](crate::error::Code) and no
/// detail, tied to no request.
const UNEMITTABLE: &[u8] = &[0, 0, 0, 7, Kind::Reply as u8, 0, 0, 0, 0, 0, 8];

#[cfg(test)]
mod tests;
