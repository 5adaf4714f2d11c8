//! Turning a received frame into an event, sharing the frame's bytes.

use bytes::Bytes;

use crate::wire::{Frame, Repr};
use crate::{Cause, Event, MailboxError, Membership, Message, Service};

/// What a daemon frame is to the client.
#[derive(Debug)]
pub(super) enum Decoded {
    Welcome(String),
    Reply { req: u32, code: u16, detail: String },
    Event(Event),
}

pub(super) fn decode(frame: Bytes) -> Result<Decoded, MailboxError> {
    let repr = Repr::parse(&Frame::new_unchecked(&frame[..]))
        .map_err(|e| MailboxError::Protocol(format!("from the daemon: {e}")))?;
    Ok(match repr {
        Repr::Welcome { private_group } => Decoded::Welcome(private_group.into()),
        Repr::Reply { req, code, detail } => Decoded::Reply {
            req,
            code,
            detail: detail.into(),
        },
        Repr::Message {
            service,
            msg_type,
            sender,
            groups,
            payload,
        } => {
            // The body is a slice of the frame: no copy.
            let start = payload.as_ptr() as usize - frame.as_ptr() as usize;
            Decoded::Event(Event::Message(Message {
                sender: sender.into(),
                groups: groups.iter().map(|g| (*g).to_owned()).collect(),
                service: Service::from_bits(service),
                msg_type,
                data: frame.slice(start..start + payload.len()),
            }))
        }
        Repr::Membership {
            cause,
            view,
            group,
            changed,
            members,
        } => Decoded::Event(Event::Membership(Membership {
            group: group.into(),
            view,
            cause: Cause::from_u8(cause)
                .ok_or_else(|| MailboxError::Protocol(format!("unknown cause {cause}")))?,
            changed: changed.into(),
            members: members.iter().map(|m| (*m).to_owned()).collect(),
        })),
        other => {
            return Err(MailboxError::Protocol(format!(
                "a client frame from the daemon: {:?}",
                other.kind()
            )));
        }
    })
}
