//! What one frame means, parsed from a checked [`Frame`] and emitted back.

use bytes::BufMut;

use super::{Frame, HEADER_LEN, Names, WireError};

/// A nonce on the wire: 32 random bytes.
pub type Nonce = [u8; 32];
/// A MAC on the wire: HMAC-SHA256's 32 bytes.
pub type Tag = [u8; 32];

/// The frame kinds. Client to daemon below 16, daemon to client from 16.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Client hello: version, priority, membership flag, private name.
    Connect = 1,
    /// Join a group; answered by a `Reply` with the same `req`.
    Join = 2,
    /// Leave a group; answered by a `Reply` with the same `req`.
    Leave = 3,
    /// Send to groups and private groups.
    Multicast = 4,
    /// Goodbye: members see cause disconnect.
    Disconnect = 5,
    /// A TCP client's answer to the daemon's `Challenge`: its own nonce and
    /// its MAC over both nonces.
    Answer = 6,
    /// The daemon accepted the client; carries its private group.
    Welcome = 16,
    /// The answer to a request, or (req 0) a refusal not tied to one.
    Reply = 17,
    /// A delivered message.
    Message = 18,
    /// A membership change of a group.
    Membership = 19,
    /// Over TCP, the daemon's first frame: a fresh nonce the client must
    /// answer with the shared secret before it may say hello.
    Challenge = 20,
    /// The daemon's MAC over both nonces: it holds the secret too.
    Proof = 21,
}

/// The parsed meaning of one frame; strings and payloads borrow the frame.
///
/// ```
/// use conn_mailbox::wire::{Frame, Kind, Repr};
/// let bytes = Repr::Multicast { service: 0x10, msg_type: 1, groups: (&["g"]).into(), payload: b"hi" }.to_vec();
/// let frame = Frame::new_checked(&bytes[..]).unwrap();
/// let repr = Repr::parse(&frame).unwrap();
/// assert_eq!(repr.kind(), Kind::Multicast);
/// assert_eq!(repr.buffer_len(), bytes.len());
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

/// A bounds-checked reader over a frame body.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.buf.len() < n {
            return Err(WireError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, WireError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, WireError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    fn bytes32(&mut self) -> Result<[u8; 32], WireError> {
        let mut a = [0u8; 32];
        a.copy_from_slice(self.take(32)?);
        Ok(a)
    }
    fn str(&mut self) -> Result<&'a str, WireError> {
        let n = self.u8()? as usize;
        std::str::from_utf8(self.take(n)?).map_err(|_| WireError::BadString)
    }
    fn names(&mut self) -> Result<Names<'a>, WireError> {
        let (names, rest) = Names::parse(self.buf)?;
        self.buf = rest;
        Ok(names)
    }
    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }
    fn rest_str(&mut self) -> Result<&'a str, WireError> {
        std::str::from_utf8(self.rest()).map_err(|_| WireError::BadString)
    }
    fn end(self) -> Result<(), WireError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(WireError::Trailing(n)),
        }
    }
}

pub(super) fn put_str(out: &mut impl BufMut, s: &str) {
    // Callers check names against the limits (at most 31 bytes) first.
    let n = u8::try_from(s.len()).expect("names are checked to be short");
    out.put_u8(n);
    out.put_slice(s.as_bytes());
}

impl<'a> Repr<'a> {
    /// The protocol version this crate speaks.
    pub const VERSION: u8 = 1;

    /// Parses a checked frame. Never panics: every length is checked
    /// against the bytes that are there.
    pub fn parse(frame: &Frame<&'a [u8]>) -> Result<Repr<'a>, WireError> {
        frame.check_len()?;
        let bytes: &'a [u8] = frame.clone().into_inner();
        let kind = bytes[HEADER_LEN - 1];
        let mut r = Reader {
            buf: &bytes[HEADER_LEN..],
        };
        let repr = match kind {
            1 => {
                let version = r.u8()?;
                let priority = r.u8()?;
                let membership = match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(WireError::BadField("membership flag")),
                };
                Repr::Connect {
                    version,
                    priority,
                    membership,
                    name: r.str()?,
                }
            }
            2 | 3 => {
                let req = r.u32()?;
                let group = r.str()?;
                if kind == 2 {
                    Repr::Join { req, group }
                } else {
                    Repr::Leave { req, group }
                }
            }
            4 => Repr::Multicast {
                service: r.u32()?,
                msg_type: r.u16()? as i16,
                groups: r.names()?,
                payload: r.rest(),
            },
            5 => Repr::Disconnect,
            6 => Repr::Answer {
                nonce: r.bytes32()?,
                mac: r.bytes32()?,
            },
            16 => Repr::Welcome {
                private_group: r.str()?,
            },
            17 => Repr::Reply {
                req: r.u32()?,
                code: r.u16()?,
                detail: r.rest_str()?,
            },
            18 => Repr::Message {
                service: r.u32()?,
                msg_type: r.u16()? as i16,
                sender: r.str()?,
                groups: r.names()?,
                payload: r.rest(),
            },
            19 => Repr::Membership {
                cause: r.u8()?,
                view: r.u64()?,
                group: r.str()?,
                changed: r.str()?,
                members: r.names()?,
            },
            20 => Repr::Challenge {
                nonce: r.bytes32()?,
            },
            21 => Repr::Proof { mac: r.bytes32()? },
            k => return Err(WireError::UnknownKind(k)),
        };
        r.end()?;
        Ok(repr)
    }

    /// The kind of frame this is.
    pub fn kind(&self) -> Kind {
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

    /// Appends the whole frame, length prefix included, to `out` (a
    /// `Vec<u8>`, a `BytesMut`, any [`BufMut`]), front to back: the length
    /// is known before the first byte goes out.
    pub fn emit(&self, out: &mut impl BufMut) {
        let total = self.buffer_len();
        out.put_u32((total - 4) as u32);
        out.put_u8(self.kind() as u8);
        match self {
            Repr::Connect {
                version,
                priority,
                membership,
                name,
            } => {
                out.put_slice(&[*version, *priority, *membership as u8]);
                put_str(out, name);
            }
            Repr::Join { req, group } | Repr::Leave { req, group } => {
                out.put_u32(*req);
                put_str(out, group);
            }
            Repr::Multicast {
                service,
                msg_type,
                groups,
                payload,
            } => {
                out.put_u32(*service);
                out.put_i16(*msg_type);
                groups.emit(out);
                out.put_slice(payload);
            }
            Repr::Disconnect => {}
            Repr::Answer { nonce, mac } => {
                out.put_slice(nonce);
                out.put_slice(mac);
            }
            Repr::Challenge { nonce } => out.put_slice(nonce),
            Repr::Proof { mac } => out.put_slice(mac),
            Repr::Welcome { private_group } => put_str(out, private_group),
            Repr::Reply { req, code, detail } => {
                out.put_u32(*req);
                out.put_u16(*code);
                out.put_slice(detail.as_bytes());
            }
            Repr::Message {
                service,
                msg_type,
                sender,
                groups,
                payload,
            } => {
                out.put_u32(*service);
                out.put_i16(*msg_type);
                put_str(out, sender);
                groups.emit(out);
                out.put_slice(payload);
            }
            Repr::Membership {
                cause,
                view,
                group,
                changed,
                members,
            } => {
                out.put_u8(*cause);
                out.put_u64(*view);
                put_str(out, group);
                put_str(out, changed);
                members.emit(out);
            }
        }
    }

    /// The length of the whole frame [`Repr::emit`] writes, prefix included.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + match self {
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

    /// The whole frame as a fresh vector, allocated once.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.buffer_len());
        self.emit(&mut v);
        v
    }
}

#[cfg(test)]
mod tests;
