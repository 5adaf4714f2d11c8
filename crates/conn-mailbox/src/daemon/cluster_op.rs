//! The operations clustered daemons multicast to one another on CPG, built
//! with the [wire kit](conn_core::wire): an [`Op`] parses from a checked
//! frame (every length checked before use) and emits itself. Several ops
//! ride in one CPG message, a *batch*: a version byte, the sender's
//! acknowledgement ([`Ack`]), then ops, each a frame of the kit's
//! length-first layout (`length:u32 tag:u8 body`). A batch of no ops is an
//! acknowledgement alone.
//!
//! ```text
//! batch     = version:u8 ack_config:u64 ack_pos:u64 op*
//! op        = len:u32 tag:u8 body
//! Join  (1) = req:u32 client:str group:str uid:u32
//! Leave (2) = req:u32 client:str group:str
//! Mcast (3) = client:str service:u32 type:i16 n:u16 group:str8*n payload:bytes uid:u32
//! Gone  (4) = client:str cause:u8
//! Sync  (5) = daemon:str n:u16 member:u64*n  g:u32 (name:str view:u64 m:u32 (client:str home:u64)*m)*g
//!             settled:u8 acl_version:u64 acl:str32
//! Acl   (6) = text:str32
//! str = len:u16 utf-8;  str8 = len:u8 utf-8;  str32 = len:u32 utf-8;  bytes = len:u32 raw
//! uid = the client's uid, or 0xffffffff when unknown;  all big-endian
//! ```
//!
//! A join and a multicast carry their client's uid because every daemon
//! checks them against the access list in force where they land in the
//! stream, and only the client's own daemon knows the uid. An [`Op::Acl`]
//! is a daemon's `--acl` file as text, which every daemon parses with
//! [`Acl::parse`](super::Acl::parse) when it applies it (a text that does
//! not parse is refused there, alike everywhere, and the batch goes on).
//!
//! A multicast's destinations are in the mailbox wire's own list form
//! ([`Names`]), so the list a client sent is copied into the op, and the op's
//! into the frames for this daemon's clients, without being rebuilt.
//!
//! The names an op carries are checked as a client's are (a `client` is a
//! private group `#name#daemon`, a `group` a legal group name, a multicast
//! has 1 to 128 legal destinations and a payload within the limit): what
//! another daemon sends is applied to this daemon's state and ends up in
//! frames to its clients, which must be able to carry them. A Sync's view
//! ids are at most [`MAX_VIEW`]; its `daemon` is the sender's `--name`, a
//! legal private name (the suffix of its clients' private groups);
//! `settled` is 0 or 1. Access list texts are at most
//! [`MAX_ACL_TEXT`](super::MAX_ACL_TEXT) bytes.

use conn_core::wire::{self, Format, Layout, Problem, Reader, Repr as _, WireError, Writer};

use super::acl::MAX_ACL_TEXT;
use crate::Cause;
use crate::limits::{
    MAX_GROUPS_PER_MESSAGE, MAX_MESSAGE, legal_destination, legal_group_name, legal_private_name,
};
use crate::wire::Names;

/// The largest view id a Sync may carry. Views grow by one per change
/// from 0, so none reaches it; one past it is corrupt, and one near
/// `u64::MAX` would overflow at the next change (the mailbox_cluster fuzz
/// target found a Sync of view `u64::MAX` panicking the next join).
pub(crate) const MAX_VIEW: u64 = 1 << 62;

/// The batch format's version byte (4: every batch carries its sender's
/// [`Ack`]; 3: uids in joins and multicasts, access lists in their own op
/// and in Syncs, Syncs say if their sender was settled).
pub(crate) const BATCH_VERSION: u8 = 4;

/// A batch's bytes before its ops: the version and the [`Ack`].
pub(crate) const BATCH_HEADER: usize = 1 + 8 + 8;

/// What a batch's sender had received of CPG's stream when it sent the
/// batch: `pos` batches delivered in the configuration `config` names
/// ([`config_tag`]). `config` 0 acknowledges nothing (a batch made before
/// its sender's first configuration).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ack {
    /// The configuration's tag, [`config_tag`] of its members.
    pub(crate) config: u64,
    /// How many batches its sender had been delivered in it.
    pub(crate) pos: u64,
}

/// A configuration's tag: FNV-1a of its members in CPG's order, never 0.
/// Every daemon of the configuration computes the same.
pub(crate) fn config_tag(members: &[u64]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for m in members {
        for b in m.to_be_bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h | 1
}

/// An empty batch: the version and an [`Ack`] of nothing, stamped with
/// [`set_ack`] when it is sent.
pub(crate) fn new_batch() -> Vec<u8> {
    let mut batch = Vec::with_capacity(4096);
    batch.push(BATCH_VERSION);
    batch.resize(BATCH_HEADER, 0);
    batch
}

/// Writes `ack` into a batch made by [`new_batch`].
pub(crate) fn set_ack(batch: &mut [u8], ack: Ack) {
    if let Some(header) = batch.get_mut(1..BATCH_HEADER) {
        header[..8].copy_from_slice(&ack.config.to_be_bytes());
        header[8..].copy_from_slice(&ack.pos.to_be_bytes());
    }
}

/// A batch's [`Ack`]; an error for a batch of another version or too
/// short for its header.
pub(crate) fn batch_ack(batch: &[u8]) -> Result<Ack, WireError> {
    if batch.first() != Some(&BATCH_VERSION) {
        return Err(ClusterOps::error(Problem::BadField("batch version")));
    }
    match (batch.get(1..9), batch.get(9..BATCH_HEADER)) {
        (Some(config), Some(pos)) => Ok(Ack {
            config: u64::from_be_bytes(config.try_into().unwrap_or_default()),
            pos: u64::from_be_bytes(pos.try_into().unwrap_or_default()),
        }),
        _ => Err(ClusterOps::error(Problem::Truncated { at: batch.len() })),
    }
}

/// The uid an op carries for a client whose uid is unknown (TCP):
/// `(uid_t)-1`, which is no user's (the kernel refuses it as an id to take,
/// and `SO_PEERCRED` never reports it).
const NO_UID: u32 = u32::MAX;

/// The cluster ops' frame format. A batch is already whole in memory when
/// it is parsed, so an op is bounded only by its `u32` length (a Sync
/// carries a daemon's whole state).
#[derive(Debug)]
pub(crate) struct ClusterOps;

impl Format for ClusterOps {
    const PROTOCOL: &'static str = "mailbox cluster op";
    const LAYOUT: Layout = Layout::LengthKind;
    const MAX_BODY: usize = u32::MAX as usize - 1;
    type Kind = Tag;
}

conn_core::wire_kinds! {
    /// The ops' tags.
    pub(crate) enum Tag {
        /// [`Op::Join`]
        Join = 1 => "join",
        /// [`Op::Leave`]
        Leave = 2 => "leave",
        /// [`Op::Multicast`]
        Multicast = 3 => "multicast",
        /// [`Op::Gone`]
        Gone = 4 => "gone",
        /// [`Op::Sync`]
        Sync = 5 => "sync",
        /// [`Op::Acl`]
        Acl = 6 => "acl",
    }
}

/// One group as a daemon's state holds it, in a [`Op::Sync`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SyncGroup {
    pub(crate) name: String,
    pub(crate) view: u64,
    /// Members in join order: private group and home daemon (CPG member).
    pub(crate) members: Vec<(String, u64)>,
}

/// What a daemon's [`Op::Sync`] tells of it besides the configuration it
/// answers: its name, whether it held the cluster's state already, the
/// access list in force there, and its groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Snapshot {
    /// The sender's `--name`.
    pub(crate) daemon: String,
    /// It had installed a merged state before this exchange (a fresh
    /// daemon has not): of two daemons with one name, the settled one
    /// keeps it.
    pub(crate) settled: bool,
    /// How many access lists the stream had installed there (0: none yet).
    pub(crate) acl_version: u64,
    /// The text of the list in force there (empty: none).
    pub(crate) acl: String,
    pub(crate) groups: Vec<SyncGroup>,
}

impl Snapshot {
    /// A fresh daemon's: named `daemon`, no list, these groups.
    pub(crate) fn fresh(daemon: &str, groups: Vec<SyncGroup>) -> Snapshot {
        Snapshot {
            daemon: daemon.into(),
            settled: false,
            acl_version: 0,
            acl: String::new(),
            groups,
        }
    }
}

/// One replicated operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Op<'a> {
    Join {
        req: u32,
        client: &'a str,
        group: &'a str,
        uid: Option<u32>,
    },
    Leave {
        req: u32,
        client: &'a str,
        group: &'a str,
    },
    Multicast {
        client: &'a str,
        service: u32,
        msg_type: i16,
        groups: Names<'a>,
        payload: &'a [u8],
        uid: Option<u32>,
    },
    Gone {
        client: &'a str,
        cause: Cause,
    },
    /// A daemon's whole state, sent by every member after a CPG
    /// configuration with joiners; `config` names that configuration, the
    /// snapshot's `daemon` the sender's name (the replica then knows whose
    /// clients its ops may name).
    Sync {
        config: Vec<u64>,
        snapshot: Snapshot,
    },
    /// An access list a daemon was given, as TOML text: in force at every
    /// daemon from its place in the stream on.
    Acl {
        text: &'a str,
    },
}

/// A client's private group, `#name#daemon` within the limits.
fn client<'a>(r: &mut Reader<'a>) -> Result<&'a str, WireError> {
    let s = r.str16()?;
    if s.starts_with('#') && legal_destination(s) {
        Ok(s)
    } else {
        Err(r.bad("client is not a private group"))
    }
}

/// A group's name within the limits.
fn group<'a>(r: &mut Reader<'a>) -> Result<&'a str, WireError> {
    let s = r.str16()?;
    if legal_group_name(s) {
        Ok(s)
    } else {
        Err(r.bad("illegal group name"))
    }
}

/// A uid as an op carries it.
fn uid(r: &mut Reader<'_>) -> Result<Option<u32>, WireError> {
    Ok(Some(r.u32()?).filter(|u| *u != NO_UID))
}

/// An access list's text within [`MAX_ACL_TEXT`]; what it says is
/// [`Acl::parse`](super::Acl::parse)'s to check, where it is applied.
fn acl_text<'a>(r: &mut Reader<'a>) -> Result<&'a str, WireError> {
    let text = r.str32()?;
    if text.len() > MAX_ACL_TEXT {
        return Err(r.error(Problem::TooLong {
            what: "an access list",
            len: text.len(),
            max: MAX_ACL_TEXT,
        }));
    }
    Ok(text)
}

/// The daemon suffix of a private group `#name#daemon`.
pub(crate) fn home_of(client: &str) -> &str {
    client.rsplit_once('#').map_or("", |(_, d)| d)
}

impl<'a> Op<'a> {
    /// The client an op is about, and the name of the daemon it is homed
    /// at (its private group's suffix); `None` for a Sync or a list.
    pub(crate) fn client(&self) -> Option<(&'a str, &'a str)> {
        match self {
            Op::Join { client, .. }
            | Op::Leave { client, .. }
            | Op::Multicast { client, .. }
            | Op::Gone { client, .. } => Some((client, home_of(client))),
            Op::Sync { .. } | Op::Acl { .. } => None,
        }
    }
}

impl<'a> wire::Repr<'a> for Op<'a> {
    type Format = ClusterOps;

    fn kind(&self) -> Tag {
        match self {
            Op::Join { .. } => Tag::Join,
            Op::Leave { .. } => Tag::Leave,
            Op::Multicast { .. } => Tag::Multicast,
            Op::Gone { .. } => Tag::Gone,
            Op::Sync { .. } => Tag::Sync,
            Op::Acl { .. } => Tag::Acl,
        }
    }

    /// Parses one op; all of its body must be used.
    fn parse(frame: &wire::Frame<'a, ClusterOps>) -> Result<Op<'a>, WireError> {
        let tag = frame.checked_kind()?;
        let mut r = Reader::new(ClusterOps::PROTOCOL, frame.body()).in_kind(tag.name());
        let op = match tag {
            Tag::Join | Tag::Leave => {
                let req = r.u32()?;
                let client = client(&mut r)?;
                let group = group(&mut r)?;
                if tag == Tag::Join {
                    let uid = uid(&mut r)?;
                    Op::Join {
                        req,
                        client,
                        group,
                        uid,
                    }
                } else {
                    Op::Leave { req, client, group }
                }
            }
            Tag::Multicast => {
                let client = client(&mut r)?;
                let service = r.u32()?;
                let msg_type = r.i16()?;
                let groups = Names::read(&mut r)?;
                if groups.is_empty() || groups.len() > MAX_GROUPS_PER_MESSAGE {
                    return Err(r.bad("group count"));
                }
                if !groups.iter().all(legal_destination) {
                    return Err(r.bad("illegal destination"));
                }
                let payload = r.bytes32()?;
                if payload.len() > MAX_MESSAGE {
                    return Err(r.error(Problem::TooLong {
                        what: "a payload",
                        len: payload.len(),
                        max: MAX_MESSAGE,
                    }));
                }
                let uid = uid(&mut r)?;
                Op::Multicast {
                    client,
                    service,
                    msg_type,
                    groups,
                    payload,
                    uid,
                }
            }
            Tag::Gone => {
                let client = client(&mut r)?;
                // A client's departure: a transition is no client's cause.
                let cause = Cause::from_u8(r.u8()?)
                    .filter(|c| *c != Cause::Transition)
                    .ok_or_else(|| r.bad("cause"))?;
                Op::Gone { client, cause }
            }
            Tag::Sync => {
                let daemon = r.str16()?;
                if !legal_private_name(daemon) {
                    return Err(r.bad("illegal daemon name"));
                }
                let daemon = daemon.to_owned();
                let n = usize::from(r.u16()?);
                let mut config = Vec::with_capacity(r.fit(n, 8)?);
                for _ in 0..n {
                    config.push(r.u64()?);
                }
                let g = r.u32()? as usize;
                // Each group takes at least its name's length, view and count.
                let mut groups = Vec::with_capacity(r.fit(g, 2 + 8 + 4)?);
                for _ in 0..g {
                    let name = group(&mut r)?.to_owned();
                    let view = r.u64()?;
                    if view > MAX_VIEW {
                        return Err(r.bad("view"));
                    }
                    let m = r.u32()? as usize;
                    let mut members = Vec::with_capacity(r.fit(m, 2 + 8)?);
                    for _ in 0..m {
                        members.push((client(&mut r)?.to_owned(), r.u64()?));
                    }
                    groups.push(SyncGroup {
                        name,
                        view,
                        members,
                    });
                }
                let settled = match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(r.bad("settled")),
                };
                let acl_version = r.u64()?;
                let acl = acl_text(&mut r)?.to_owned();
                Op::Sync {
                    config,
                    snapshot: Snapshot {
                        daemon,
                        settled,
                        acl_version,
                        acl,
                        groups,
                    },
                }
            }
            Tag::Acl => Op::Acl {
                text: acl_text(&mut r)?,
            },
        };
        r.finish()?;
        Ok(op)
    }

    fn body_len(&self) -> usize {
        let str16 = |s: &str| 2 + s.len();
        match self {
            Op::Join { client, group, .. } => 4 + str16(client) + str16(group) + 4,
            Op::Leave { client, group, .. } => 4 + str16(client) + str16(group),
            Op::Multicast {
                client,
                groups,
                payload,
                ..
            } => str16(client) + 4 + 2 + groups.buffer_len() + 4 + payload.len() + 4,
            Op::Gone { client, .. } => str16(client) + 1,
            Op::Acl { text } => 4 + text.len(),
            Op::Sync { config, snapshot } => {
                let Snapshot {
                    daemon,
                    acl,
                    groups,
                    ..
                } = snapshot;
                str16(daemon)
                    + 2
                    + 8 * config.len()
                    + 4
                    + groups
                        .iter()
                        .map(|g| {
                            str16(&g.name)
                                + 8
                                + 4
                                + g.members.iter().map(|(c, _)| str16(c) + 8).sum::<usize>()
                        })
                        .sum::<usize>()
                    + 1
                    + 8
                    + 4
                    + acl.len()
            }
        }
    }

    fn emit_body(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        match self {
            Op::Join {
                req,
                client,
                group,
                uid,
            } => {
                w.u32(*req)?;
                w.str16(client)?;
                w.str16(group)?;
                w.u32(uid.unwrap_or(NO_UID))
            }
            Op::Leave { req, client, group } => {
                w.u32(*req)?;
                w.str16(client)?;
                w.str16(group)
            }
            Op::Multicast {
                client,
                service,
                msg_type,
                groups,
                payload,
                uid,
            } => {
                w.str16(client)?;
                w.u32(*service)?;
                w.i16(*msg_type)?;
                groups.emit(w)?;
                w.bytes32(payload)?;
                w.u32(uid.unwrap_or(NO_UID))
            }
            Op::Gone { client, cause } => {
                w.str16(client)?;
                w.u8(cause.to_u8())
            }
            Op::Acl { text } => w.str32(text),
            Op::Sync { config, snapshot } => {
                let groups = &snapshot.groups;
                w.str16(&snapshot.daemon)?;
                w.u16(w.len("a configuration's members", config.len())?)?;
                for m in config {
                    w.u64(*m)?;
                }
                w.u32(w.len("a state's groups", groups.len())?)?;
                for g in groups {
                    w.str16(&g.name)?;
                    w.u64(g.view)?;
                    w.u32(w.len("a group's members", g.members.len())?)?;
                    for (c, home) in &g.members {
                        w.str16(c)?;
                        w.u64(*home)?;
                    }
                }
                w.u8(u8::from(snapshot.settled))?;
                w.u64(snapshot.acl_version)?;
                w.str32(&snapshot.acl)
            }
        }
    }
}

impl Op<'_> {
    /// Appends the op, length-prefixed, to a batch; on an error (a name
    /// too long for its `u16` length) the batch is as it was.
    pub(crate) fn emit_into(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        let at = out.len();
        out.resize(at + self.buffer_len(), 0);
        self.emit(&mut out[at..])
            .map(drop)
            .inspect_err(|_| out.truncate(at))
    }
}

/// The ops of one batch, each checked as it is reached; the first error
/// (a header of another version or cut short included) ends the batch.
pub(crate) fn ops(batch: &[u8]) -> impl Iterator<Item = Result<Op<'_>, WireError>> {
    let version_error = batch_ack(batch).err();
    let mut rest = batch.get(BATCH_HEADER..).unwrap_or_default();
    let mut failed = version_error;
    std::iter::from_fn(move || {
        if let Some(e) = failed.take() {
            rest = &[];
            return Some(Err(e));
        }
        if rest.is_empty() {
            return None;
        }
        let one = match wire::frame_len::<ClusterOps>(rest) {
            Ok(Some(total)) if total <= rest.len() => {
                let (op, after) = rest.split_at(total);
                rest = after;
                Op::decode(op)
            }
            Ok(_) => Err(ClusterOps::error(Problem::Truncated { at: 0 })),
            Err(e) => Err(e),
        };
        if one.is_err() {
            rest = &[];
        }
        Some(one)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(what: &'static str) -> Problem {
        Problem::BadField(what)
    }

    fn problem(r: Result<Op<'_>, WireError>) -> Problem {
        r.unwrap_err().problem().clone()
    }

    fn round_trip(op: Op<'_>) {
        let mut batch = new_batch();
        op.emit_into(&mut batch).unwrap();
        op.emit_into(&mut batch).unwrap();
        let back: Vec<_> = ops(&batch).collect::<Result<_, _>>().unwrap();
        assert_eq!(back, vec![op.clone(), op]);
    }

    #[test]
    fn every_op_round_trips() {
        round_trip(Op::Join {
            req: 7,
            client: "#a#n1",
            group: "g",
            uid: None,
        });
        round_trip(Op::Leave {
            req: 8,
            client: "#a#n1",
            group: "g",
        });
        round_trip(Op::Multicast {
            client: "#a#n1",
            service: 0x10,
            msg_type: -3,
            groups: Names::from(&["g", "#b#n2"]),
            payload: b"hello",
            uid: None,
        });
        round_trip(Op::Gone {
            client: "#a#n1",
            cause: Cause::Network,
        });
        round_trip(Op::Sync {
            config: vec![1 << 32 | 5, 2 << 32 | 9],
            snapshot: Snapshot::fresh(
                "n1",
                vec![SyncGroup {
                    name: "g".into(),
                    view: 4,
                    members: vec![("#a#n1".into(), 1 << 32 | 5)],
                }],
            ),
        });
    }

    #[test]
    fn uids_settled_flags_and_access_lists_round_trip() {
        round_trip(Op::Join {
            req: 7,
            client: "#a#n1",
            group: "g",
            uid: Some(1000),
        });
        round_trip(Op::Multicast {
            client: "#a#n1",
            service: 0x10,
            msg_type: 0,
            groups: Names::from(&["#b#n2"]),
            payload: b"",
            uid: Some(0),
        });
        round_trip(Op::Acl {
            text: "[private]\nsend = [0]\n",
        });
        round_trip(Op::Acl { text: "" });
        round_trip(Op::Sync {
            config: vec![1],
            snapshot: Snapshot {
                settled: true,
                acl_version: 3,
                acl: "[groups.g]\njoin = [1]\n".into(),
                ..Snapshot::fresh("n1", vec![])
            },
        });
        // An unknown uid is the one no user has, and reads back unknown.
        let bytes = op_bytes(&Op::Join {
            req: 1,
            client: "#a#n1",
            group: "g",
            uid: None,
        });
        assert_eq!(bytes[bytes.len() - 4..], NO_UID.to_be_bytes());
    }

    #[test]
    fn a_malformed_access_list_op_or_sync_is_refused_with_its_field() {
        // A settled flag other than 0 or 1: the byte before the list's
        // version and length.
        let sync = Op::Sync {
            config: vec![1],
            snapshot: Snapshot::fresh("n1", vec![]),
        };
        let mut bytes = op_bytes(&sync);
        let flag = bytes.len() - 4 - 8 - 1;
        bytes[flag] = 2;
        assert_eq!(problem(Op::decode(&bytes)), bad("settled"));
        // A list past the limit, in its own op and in a Sync.
        let long = "#".repeat(MAX_ACL_TEXT + 1);
        for op in [
            Op::Acl { text: &long },
            Op::Sync {
                config: vec![1],
                snapshot: Snapshot {
                    acl: long.clone(),
                    ..Snapshot::fresh("n1", vec![])
                },
            },
        ] {
            assert!(
                matches!(
                    problem(Op::decode(&op_bytes(&op))),
                    Problem::TooLong {
                        what: "an access list",
                        ..
                    }
                ),
                "{:?}",
                op.kind()
            );
        }
        // A list whose length says more than the op holds, or that is not
        // UTF-8.
        let mut bytes = op_bytes(&Op::Acl { text: "abc" });
        bytes[5..9].copy_from_slice(&4u32.to_be_bytes());
        assert!(Op::decode(&bytes).is_err());
        let mut bytes = op_bytes(&Op::Acl { text: "abc" });
        bytes[9] = 0xff;
        assert!(Op::decode(&bytes).is_err());
        // A join without its uid (a version 2 join) is truncated.
        let mut bytes = op_bytes(&Op::Join {
            req: 1,
            client: "#a#n1",
            group: "g",
            uid: Some(5),
        });
        bytes.truncate(bytes.len() - 4);
        let len = (bytes.len() - 4) as u32;
        bytes[..4].copy_from_slice(&len.to_be_bytes());
        assert!(Op::decode(&bytes).is_err());
        // A batch of a version before is refused whole.
        for old in [2, 3] {
            assert_eq!(
                ops(&[old]).next().unwrap().unwrap_err().problem(),
                &bad("batch version")
            );
        }
    }

    /// One op as a batch's bytes would hold it.
    fn op_bytes(op: &Op<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        op.emit_into(&mut out).unwrap();
        out
    }

    #[test]
    fn an_op_with_names_no_client_could_send_is_refused() {
        let long = "g".repeat(300);
        // Within a str8, past a group name's limit.
        let long_name = "g".repeat(200);
        let long_list = [long_name.as_str()];
        let too_many = ["g"; 129];
        let most = ["g"; 128];
        let refused = [
            // A group name past a frame's u8 length (mailboxd panicked
            // building the membership frame for it).
            Op::Join {
                req: 1,
                client: "#a#n3",
                group: &long,
                uid: None,
            },
            Op::Leave {
                req: 1,
                client: "#a#n3",
                group: "has space",
            },
            Op::Join {
                req: 1,
                client: "not-private",
                group: "g",
                uid: None,
            },
            Op::Gone {
                client: &long,
                cause: Cause::Network,
            },
            Op::Gone {
                client: "#a#n3",
                cause: Cause::Transition,
            },
            Op::Multicast {
                client: "#a#n3",
                service: 0x10,
                msg_type: 0,
                groups: Names::from(&[]),
                payload: b"x",
                uid: None,
            },
            Op::Multicast {
                client: "#a#n3",
                service: 0x10,
                msg_type: 0,
                groups: Names::from(&too_many),
                payload: b"x",
                uid: None,
            },
            Op::Multicast {
                client: "#a#n3",
                service: 0x10,
                msg_type: 0,
                groups: Names::from(&long_list),
                payload: b"x",
                uid: None,
            },
            Op::Sync {
                config: vec![3],
                snapshot: Snapshot::fresh(
                    "n3",
                    vec![SyncGroup {
                        name: long.clone(),
                        view: 1,
                        members: vec![],
                    }],
                ),
            },
            Op::Sync {
                config: vec![3],
                snapshot: Snapshot::fresh(
                    "n3",
                    vec![SyncGroup {
                        name: "g".into(),
                        view: 1,
                        members: vec![(long.clone(), 3)],
                    }],
                ),
            },
            // No daemon's name: its clients' private groups could not end
            // in it.
            Op::Sync {
                config: vec![3],
                snapshot: Snapshot::fresh("n#3", vec![]),
            },
        ];
        for op in refused {
            assert!(Op::decode(&op_bytes(&op)).is_err(), "accepted {op:?}");
        }
        let fine = Op::Multicast {
            client: "#a#n3",
            service: 0x10,
            msg_type: 0,
            groups: Names::from(&most),
            payload: b"x",
            uid: None,
        };
        assert_eq!(Op::decode(&op_bytes(&fine)), Ok(fine.clone()));
    }

    #[test]
    fn a_sync_with_a_view_no_group_can_reach_is_refused() {
        let sync = |view| Op::Sync {
            config: vec![3],
            snapshot: Snapshot::fresh(
                "n3",
                vec![SyncGroup {
                    name: "g".into(),
                    view,
                    members: vec![("#c#n3".into(), 3)],
                }],
            ),
        };
        assert_eq!(problem(Op::decode(&op_bytes(&sync(u64::MAX)))), bad("view"));
        assert_eq!(
            problem(Op::decode(&op_bytes(&sync(MAX_VIEW + 1)))),
            bad("view")
        );
        assert_eq!(Op::decode(&op_bytes(&sync(MAX_VIEW))), Ok(sync(MAX_VIEW)));
    }

    #[test]
    fn acks_round_trip_and_a_header_cut_short_is_refused() {
        let mut batch = new_batch();
        assert_eq!(batch_ack(&batch), Ok(Ack::default()));
        assert_eq!(ops(&batch).count(), 0, "an acknowledgement alone");
        let ack = Ack {
            config: config_tag(&[1, 2]),
            pos: 7,
        };
        set_ack(&mut batch, ack);
        assert_eq!(batch_ack(&batch), Ok(ack));
        for cut in 0..BATCH_HEADER {
            assert!(batch_ack(&batch[..cut]).is_err(), "cut at {cut}");
            assert!(ops(&batch[..cut]).next().unwrap().is_err());
        }
        // Tags differ with the members and their order, and are never 0.
        assert_ne!(config_tag(&[1, 2]), config_tag(&[2, 1]));
        assert_ne!(config_tag(&[1, 2]), config_tag(&[1, 2, 3]));
        assert_ne!(config_tag(&[]), 0);
    }

    #[test]
    fn truncated_and_unknown_bytes_are_refused() {
        let mut batch = new_batch();
        Op::Join {
            req: 1,
            client: "#a#n1",
            group: "g",
            uid: None,
        }
        .emit_into(&mut batch)
        .unwrap();
        for cut in 1..batch.len() {
            if cut == BATCH_HEADER {
                continue; // a batch of no ops: an acknowledgement alone
            }
            assert!(ops(&batch[..cut]).any(|r| r.is_err()), "cut at {cut}");
        }
        assert!(ops(&[9]).next().unwrap().is_err());
        assert_eq!(
            problem(Op::decode(&[0, 0, 0, 1, 42])),
            Problem::UnknownKind(42)
        );
    }

    #[test]
    fn a_name_too_long_for_its_length_is_an_error_to_emit_and_the_batch_stays() {
        let long = "g".repeat(usize::from(u16::MAX) + 1);
        let mut batch = new_batch();
        let op = Op::Join {
            req: 1,
            client: "#a#n1",
            group: &long,
            uid: None,
        };
        let err = op.emit_into(&mut batch).unwrap_err();
        assert!(
            matches!(err.problem(), Problem::TooLong { max: 65535, .. }),
            "{err}"
        );
        assert_eq!(batch, new_batch());
    }
}
