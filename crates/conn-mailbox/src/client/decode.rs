//! Turning a received frame into an event, sharing the frame's bytes.

use bytes::Bytes;

use conn_core::wire::Repr as _;

use crate::wire::{HEADER_LEN, Kind, Nonce, Repr, Tag};
use crate::{Cause, Event, GroupName, MailboxError, Membership, Message};

/// What a daemon frame is to the client.
#[derive(Debug)]
pub(crate) enum Decoded {
    Welcome(String),
    /// Over TCP: the daemon's challenge, before anything else.
    Challenge(Nonce),
    /// Over TCP: the daemon's proof that it holds the secret.
    Proof(Tag),
    Reply {
        req: u32,
        code: u16,
        detail: String,
    },
    Event(Event),
}

pub(crate) fn decode(frame: Bytes) -> Result<Decoded, MailboxError> {
    // Messages, the common case, become a view over their frame (checked there).
    if frame.get(HEADER_LEN - 1) == Some(&(Kind::Message as u8)) {
        return Ok(Decoded::Event(Event::Message(Message::from_frame(frame)?)));
    }
    let repr = Repr::decode(&frame[..])
        .map_err(|e| MailboxError::Protocol(format!("from the daemon: {e}")))?;
    Ok(match repr {
        Repr::Welcome { private_group } => Decoded::Welcome(private_group.into()),
        Repr::Challenge { nonce } => Decoded::Challenge(nonce),
        Repr::Proof { mac } => Decoded::Proof(mac),
        Repr::Reply { req, code, detail } => Decoded::Reply {
            req,
            code,
            detail: detail.into(),
        },
        Repr::Membership {
            cause,
            view,
            group,
            changed,
            members,
        } => Decoded::Event(Event::Membership(Membership {
            group: GroupName::from_daemon(group)?,
            view,
            cause: Cause::from_u8(cause)
                .ok_or_else(|| MailboxError::Protocol(format!("unknown cause {cause}")))?,
            changed: GroupName::from_daemon(changed)?,
            members: members
                .iter()
                .map(GroupName::from_daemon)
                .collect::<Result<_, _>>()?,
        })),
        other => {
            return Err(MailboxError::Protocol(format!(
                "a client frame from the daemon: {:?}",
                other.kind()
            )));
        }
    })
}
