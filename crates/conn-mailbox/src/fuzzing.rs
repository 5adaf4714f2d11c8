//! **Not API.** The fuzz targets' entry points for the mailbox protocol
//! (see `fuzz/` at the repository root and `crates/fuzz-targets`, which
//! replays their corpus on stable). Hidden from the docs; it may change or
//! go at any time.
//!
//! * [`frames`]: bytes a client or a daemon reads from its peer: the stream
//!   splitter, [`Frame`]/[`Repr`], and the client's decoding of what the
//!   daemon sends.
//! * [`cluster`]: CPG messages between clustered daemons: batches of
//!   operations, applied to the replicated group state.

use bytes::{Bytes, BytesMut};
use conn_core::fuzzing::{read_however_cut, stream_seeds};

use crate::client::decode::{Decoded, decode};
use conn_core::wire::Repr as _;

use crate::wire::{Frame, Repr, next_frame};
use crate::{Event, Service};

#[cfg(feature = "daemon")]
pub use crate::daemon::fuzzing::{cluster, cluster_seeds};

/// The frames target: `data` (after its chunking seed) is a byte stream
/// from a mailbox peer.
///
/// Asserts that the frames and the error split off the stream do not
/// depend on how it is cut into reads; that every frame split off is a
/// checked [`Frame`]; that a frame that parses emits back to exactly its
/// bytes and parses again to the same [`Repr`]; and that the client's
/// decoding of a daemon frame agrees with the parse (a message's view
/// reads the same fields in place).
pub fn frames(data: &[u8]) {
    let (_, frames, _) = read_however_cut::<BytesMut, _, _>(data, next_frame);
    for frame in frames {
        one_frame(frame);
    }
}

fn one_frame(bytes: Bytes) {
    let frame = Frame::new_checked(&bytes[..]).expect("a split-off frame is whole");
    let parsed = Repr::parse(&frame);
    if let Ok(repr) = &parsed {
        assert_eq!(repr.buffer_len(), bytes.len(), "{repr:?}");
        let again = repr.to_vec().expect("a parsed frame emits");
        assert_eq!(again, bytes[..], "{repr:?} emits other bytes");
        let frame = Frame::new_checked(&again[..]).expect("emitted frames check");
        assert_eq!(&Repr::parse(&frame).expect("emitted frames parse"), repr);
    }
    match (decode(bytes.clone()), parsed) {
        (
            Ok(Decoded::Event(Event::Message(m))),
            Ok(Repr::Message {
                service,
                msg_type,
                sender,
                groups,
                payload,
            }),
        ) => {
            assert_eq!(m.sender(), sender);
            assert!(m.groups().iter().eq(groups.iter()));
            assert_eq!(m.groups().len(), groups.len());
            assert_eq!(m.service(), Service::from_bits(service));
            assert_eq!(m.msg_type(), msg_type);
            assert_eq!(m.data(), payload);
        }
        (
            Ok(Decoded::Event(Event::Membership(m))),
            Ok(Repr::Membership {
                cause,
                view,
                group,
                changed,
                members,
            }),
        ) => {
            assert_eq!((m.group.as_str(), m.changed.as_str()), (group, changed));
            assert_eq!((m.cause.to_u8(), m.view), (cause, view));
            assert!(m.members.iter().map(|g| g.as_str()).eq(members.iter()));
        }
        (Ok(Decoded::Welcome(group)), Ok(Repr::Welcome { private_group })) => {
            assert_eq!(group, private_group)
        }
        (
            Ok(Decoded::Reply { req, code, detail }),
            Ok(Repr::Reply {
                req: r,
                code: c,
                detail: d,
            }),
        ) => {
            assert_eq!((req, code, detail.as_str()), (r, c, d))
        }
        (Ok(Decoded::Challenge(got)), Ok(Repr::Challenge { nonce })) => {
            assert_eq!(got, nonce)
        }
        (Ok(Decoded::Proof(got)), Ok(Repr::Proof { mac })) => assert_eq!(got, mac),
        (Ok(decoded), parsed) => {
            panic!("the client decoded {decoded:?} from a frame that parses as {parsed:?}")
        }
        // The client is stricter than the parse (names within the limits,
        // known causes, only daemon frames), never looser.
        (Err(_), _) => {}
    }
}

/// Seed inputs for [`frames`]: a frame of every kind (see
/// [`stream_seeds`]).
pub fn frames_seeds() -> Vec<(String, Vec<u8>)> {
    let members = ["#a#local", "#b#local"];
    let reprs = [
        (
            "connect",
            Repr::Connect {
                version: Repr::VERSION,
                priority: 0,
                membership: true,
                name: "alice",
            },
        ),
        (
            "join",
            Repr::Join {
                req: 1,
                group: "chat",
            },
        ),
        (
            "leave",
            Repr::Leave {
                req: 2,
                group: "chat",
            },
        ),
        (
            "multicast",
            Repr::Multicast {
                service: Service::AGREED.bits(),
                msg_type: 7,
                groups: (&["chat", "#b#local"]).into(),
                payload: b"hello",
            },
        ),
        ("disconnect", Repr::Disconnect),
        (
            "welcome",
            Repr::Welcome {
                private_group: "#alice#local",
            },
        ),
        (
            "reply",
            Repr::Reply {
                req: 1,
                code: 0,
                detail: "chat",
            },
        ),
        (
            "refusal",
            Repr::Reply {
                req: 0,
                code: 3,
                detail: "no such group",
            },
        ),
        (
            "message",
            Repr::Message {
                service: Service::SAFE.bits(),
                msg_type: -1,
                sender: "#a#local",
                groups: (&["chat"]).into(),
                payload: b"hi there",
            },
        ),
        (
            "membership",
            Repr::Membership {
                cause: crate::Cause::Join.to_u8(),
                view: 3,
                group: "chat",
                changed: "#b#local",
                members: (&members).into(),
            },
        ),
    ];
    stream_seeds(reprs.map(|(name, repr)| (name, repr.to_vec().expect("seed frames emit"))))
}
