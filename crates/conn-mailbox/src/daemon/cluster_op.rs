#![cfg_attr(not(feature = "corosync"), allow(dead_code))]
//! The operations clustered daemons multicast to one another on CPG, in the
//! wire/ pattern: an [`Op`] parses from bytes (every length checked before
//! use) and emits itself. Several ops ride in one CPG message, a *batch*:
//! a version byte, then `u32` length-prefixed ops.
//!
//! ```text
//! op        = tag:u8 body
//! Join  (1) = req:u32 client:str group:str
//! Leave (2) = req:u32 client:str group:str
//! Mcast (3) = client:str service:u32 type:i16 n:u16 group:str*n payload:bytes
//! Gone  (4) = client:str cause:u8
//! Sync  (5) = daemon:str n:u16 member:u64*n  g:u32 (name:str view:u64 m:u32 (client:str home:u64)*m)*g
//! str = len:u16 utf-8;  bytes = len:u32 raw;  all big-endian
//! ```
//!
//! The names an op carries are checked as a client's are (a `client` is a
//! private group `#name#daemon`, a `group` a legal group name, a multicast
//! has 1 to 128 legal destinations and a payload within the limit): what
//! another daemon sends is applied to this daemon's state and ends up in
//! frames to its clients, which must be able to carry them. A Sync's view
//! ids are at most [`MAX_VIEW`]; its `daemon` is the sender's `--name`, a
//! legal private name (the suffix of its clients' private groups).

use crate::Cause;
use crate::limits::{
    MAX_GROUPS_PER_MESSAGE, MAX_MESSAGE, legal_destination, legal_group_name, legal_private_name,
};

/// The largest view id a Sync may carry. Views grow by one per change
/// from 0, so none reaches it; one past it is corrupt, and one near
/// `u64::MAX` would overflow at the next change (the mailbox_cluster fuzz
/// target found a Sync of view `u64::MAX` panicking the next join).
pub(crate) const MAX_VIEW: u64 = 1 << 62;

/// The batch format's version byte.
pub(crate) const BATCH_VERSION: u8 = 1;

/// One group as a daemon's state holds it, in a [`Op::Sync`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SyncGroup {
    pub(crate) name: String,
    pub(crate) view: u64,
    /// Members in join order: private group and home daemon (CPG member).
    pub(crate) members: Vec<(String, u64)>,
}

/// One replicated operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Op<'a> {
    Join {
        req: u32,
        client: &'a str,
        group: &'a str,
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
        groups: Vec<&'a str>,
        payload: &'a [u8],
    },
    Gone {
        client: &'a str,
        cause: Cause,
    },
    /// A daemon's whole group state, sent by every member after a CPG
    /// configuration with joiners; `config` names that configuration,
    /// `daemon` the sender's name (the replica then knows whose clients
    /// its ops may name).
    Sync {
        daemon: String,
        config: Vec<u64>,
        groups: Vec<SyncGroup>,
    },
}

/// Bytes that are no op (a daemon of another version, or corruption).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Malformed(pub(crate) &'static str);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed cluster op: {}", self.0)
    }
}

/// A checked cursor: every read checks the length first.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Malformed> {
        if self.0.len() < n {
            return Err(Malformed(what));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, Malformed> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, Malformed> {
        Ok(u16::from_be_bytes(self.take(2, what)?.try_into().unwrap()))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, Malformed> {
        Ok(u32::from_be_bytes(self.take(4, what)?.try_into().unwrap()))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, Malformed> {
        Ok(u64::from_be_bytes(self.take(8, what)?.try_into().unwrap()))
    }
    fn str(&mut self, what: &'static str) -> Result<&'a str, Malformed> {
        let n = self.u16(what)? as usize;
        std::str::from_utf8(self.take(n, what)?).map_err(|_| Malformed(what))
    }
    fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], Malformed> {
        let n = self.u32(what)? as usize;
        self.take(n, what)
    }
    /// A client's private group, `#name#daemon` within the limits.
    fn client(&mut self) -> Result<&'a str, Malformed> {
        let s = self.str("client")?;
        if s.starts_with('#') && legal_destination(s) {
            Ok(s)
        } else {
            Err(Malformed("client is not a private group"))
        }
    }
    /// A group's name within the limits.
    fn group(&mut self) -> Result<&'a str, Malformed> {
        let s = self.str("group")?;
        if legal_group_name(s) {
            Ok(s)
        } else {
            Err(Malformed("illegal group name"))
        }
    }
}

/// The daemon suffix of a private group `#name#daemon`.
pub(crate) fn home_of(client: &str) -> &str {
    client.rsplit_once('#').map_or("", |(_, d)| d)
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl<'a> Op<'a> {
    /// The client an op is about, and the name of the daemon it is homed
    /// at (its private group's suffix); `None` for a Sync.
    pub(crate) fn client(&self) -> Option<(&'a str, &'a str)> {
        match self {
            Op::Join { client, .. }
            | Op::Leave { client, .. }
            | Op::Multicast { client, .. }
            | Op::Gone { client, .. } => Some((client, home_of(client))),
            Op::Sync { .. } => None,
        }
    }

    /// Parses one op; all of `bytes` must be used.
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Op<'a>, Malformed> {
        let mut r = Reader(bytes);
        let op = match r.u8("tag")? {
            1 | 2 => {
                let tag = bytes[0];
                let req = r.u32("req")?;
                let client = r.client()?;
                let group = r.group()?;
                if tag == 1 {
                    Op::Join { req, client, group }
                } else {
                    Op::Leave { req, client, group }
                }
            }
            3 => {
                let client = r.client()?;
                let service = r.u32("service")?;
                let msg_type = r.u16("type")? as i16;
                let n = r.u16("group count")? as usize;
                if n == 0 || n > MAX_GROUPS_PER_MESSAGE {
                    return Err(Malformed("group count"));
                }
                let mut groups = Vec::with_capacity(n);
                for _ in 0..n {
                    let g = r.str("group")?;
                    if !legal_destination(g) {
                        return Err(Malformed("illegal destination"));
                    }
                    groups.push(g);
                }
                let payload = r.bytes("payload")?;
                if payload.len() > MAX_MESSAGE {
                    return Err(Malformed("payload too long"));
                }
                Op::Multicast {
                    client,
                    service,
                    msg_type,
                    groups,
                    payload,
                }
            }
            4 => {
                let client = r.client()?;
                let cause = Cause::from_u8(r.u8("cause")?).ok_or(Malformed("cause"))?;
                Op::Gone { client, cause }
            }
            5 => {
                let daemon = r.str("daemon")?;
                if !legal_private_name(daemon) {
                    return Err(Malformed("illegal daemon name"));
                }
                let daemon = daemon.to_owned();
                let n = r.u16("member count")? as usize;
                let mut config = Vec::new();
                for _ in 0..n {
                    config.push(r.u64("member")?);
                }
                let g = r.u32("group count")? as usize;
                let mut groups = Vec::new();
                for _ in 0..g {
                    let name = r.group()?.to_owned();
                    let view = r.u64("view")?;
                    if view > MAX_VIEW {
                        return Err(Malformed("view"));
                    }
                    let m = r.u32("member count")? as usize;
                    let mut members = Vec::new();
                    for _ in 0..m {
                        members.push((r.client()?.to_owned(), r.u64("home")?));
                    }
                    groups.push(SyncGroup {
                        name,
                        view,
                        members,
                    });
                }
                Op::Sync {
                    daemon,
                    config,
                    groups,
                }
            }
            _ => return Err(Malformed("unknown tag")),
        };
        if !r.0.is_empty() {
            return Err(Malformed("trailing bytes"));
        }
        Ok(op)
    }

    /// Appends the op, length-prefixed, to a batch.
    pub(crate) fn emit_into(&self, out: &mut Vec<u8>) {
        let at = out.len();
        out.extend_from_slice(&[0; 4]);
        match self {
            Op::Join { req, client, group } | Op::Leave { req, client, group } => {
                out.push(if matches!(self, Op::Join { .. }) {
                    1
                } else {
                    2
                });
                out.extend_from_slice(&req.to_be_bytes());
                put_str(out, client);
                put_str(out, group);
            }
            Op::Multicast {
                client,
                service,
                msg_type,
                groups,
                payload,
            } => {
                out.push(3);
                put_str(out, client);
                out.extend_from_slice(&service.to_be_bytes());
                out.extend_from_slice(&msg_type.to_be_bytes());
                out.extend_from_slice(&(groups.len() as u16).to_be_bytes());
                for g in groups {
                    put_str(out, g);
                }
                out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
                out.extend_from_slice(payload);
            }
            Op::Gone { client, cause } => {
                out.push(4);
                put_str(out, client);
                out.push(cause.to_u8());
            }
            Op::Sync {
                daemon,
                config,
                groups,
            } => {
                out.push(5);
                put_str(out, daemon);
                out.extend_from_slice(&(config.len() as u16).to_be_bytes());
                for m in config {
                    out.extend_from_slice(&m.to_be_bytes());
                }
                out.extend_from_slice(&(groups.len() as u32).to_be_bytes());
                for g in groups {
                    put_str(out, &g.name);
                    out.extend_from_slice(&g.view.to_be_bytes());
                    out.extend_from_slice(&(g.members.len() as u32).to_be_bytes());
                    for (c, home) in &g.members {
                        put_str(out, c);
                        out.extend_from_slice(&home.to_be_bytes());
                    }
                }
            }
        }
        let len = (out.len() - at - 4) as u32;
        out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }
}

/// The ops of one batch, each checked as it is reached.
pub(crate) fn ops(batch: &[u8]) -> impl Iterator<Item = Result<Op<'_>, Malformed>> {
    let mut r = Reader(batch);
    let mut failed = r.u8("version") != Ok(BATCH_VERSION);
    std::iter::from_fn(move || {
        if failed {
            failed = false;
            r.0 = &[];
            return Some(Err(Malformed("batch version")));
        }
        if r.0.is_empty() {
            return None;
        }
        Some(
            r.bytes("op length")
                .and_then(Op::parse)
                .inspect_err(|_| r.0 = &[]),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(op: Op<'_>) {
        let mut batch = vec![BATCH_VERSION];
        op.emit_into(&mut batch);
        op.emit_into(&mut batch);
        let back: Vec<_> = ops(&batch).collect::<Result<_, _>>().unwrap();
        assert_eq!(back, vec![op.clone(), op]);
    }

    #[test]
    fn every_op_round_trips() {
        round_trip(Op::Join {
            req: 7,
            client: "#a#n1",
            group: "g",
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
            groups: vec!["g", "#b#n2"],
            payload: b"hello",
        });
        round_trip(Op::Gone {
            client: "#a#n1",
            cause: Cause::Network,
        });
        round_trip(Op::Sync {
            daemon: "n1".into(),
            config: vec![1 << 32 | 5, 2 << 32 | 9],
            groups: vec![SyncGroup {
                name: "g".into(),
                view: 4,
                members: vec![("#a#n1".into(), 1 << 32 | 5)],
            }],
        });
    }

    /// One op as a batch's bytes would hold it, without the length.
    fn op_bytes(op: &Op<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        op.emit_into(&mut out);
        out.split_off(4)
    }

    #[test]
    fn an_op_with_names_no_client_could_send_is_refused() {
        let long = "g".repeat(300);
        let refused = [
            // A group name past a frame's u8 length (mailboxd panicked
            // building the membership frame for it).
            Op::Join {
                req: 1,
                client: "#a#n3",
                group: &long,
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
            },
            Op::Gone {
                client: &long,
                cause: Cause::Network,
            },
            Op::Multicast {
                client: "#a#n3",
                service: 0x10,
                msg_type: 0,
                groups: vec![],
                payload: b"x",
            },
            Op::Multicast {
                client: "#a#n3",
                service: 0x10,
                msg_type: 0,
                groups: vec!["g"; 129],
                payload: b"x",
            },
            Op::Multicast {
                client: "#a#n3",
                service: 0x10,
                msg_type: 0,
                groups: vec![&long],
                payload: b"x",
            },
            Op::Sync {
                daemon: "n3".into(),
                config: vec![3],
                groups: vec![SyncGroup {
                    name: long.clone(),
                    view: 1,
                    members: vec![],
                }],
            },
            Op::Sync {
                daemon: "n3".into(),
                config: vec![3],
                groups: vec![SyncGroup {
                    name: "g".into(),
                    view: 1,
                    members: vec![(long.clone(), 3)],
                }],
            },
            // No daemon's name: its clients' private groups could not end
            // in it.
            Op::Sync {
                daemon: "n#3".into(),
                config: vec![3],
                groups: vec![],
            },
        ];
        for op in refused {
            assert!(Op::parse(&op_bytes(&op)).is_err(), "accepted {op:?}");
        }
        let fine = Op::Multicast {
            client: "#a#n3",
            service: 0x10,
            msg_type: 0,
            groups: vec!["g"; 128],
            payload: b"x",
        };
        assert_eq!(Op::parse(&op_bytes(&fine)), Ok(fine.clone()));
    }

    #[test]
    fn a_sync_with_a_view_no_group_can_reach_is_refused() {
        let sync = |view| Op::Sync {
            daemon: "n3".into(),
            config: vec![3],
            groups: vec![SyncGroup {
                name: "g".into(),
                view,
                members: vec![("#c#n3".into(), 3)],
            }],
        };
        assert_eq!(
            Op::parse(&op_bytes(&sync(u64::MAX))),
            Err(Malformed("view"))
        );
        assert_eq!(
            Op::parse(&op_bytes(&sync(MAX_VIEW + 1))),
            Err(Malformed("view"))
        );
        assert_eq!(Op::parse(&op_bytes(&sync(MAX_VIEW))), Ok(sync(MAX_VIEW)));
    }

    #[test]
    fn truncated_and_unknown_bytes_are_refused() {
        let mut batch = vec![BATCH_VERSION];
        Op::Join {
            req: 1,
            client: "#a#n1",
            group: "g",
        }
        .emit_into(&mut batch);
        for cut in 2..batch.len() {
            assert!(ops(&batch[..cut]).any(|r| r.is_err()), "cut at {cut}");
        }
        assert!(ops(&[9]).next().unwrap().is_err());
        assert_eq!(Op::parse(&[42]), Err(Malformed("unknown tag")));
    }
}
