//! The cluster fuzz target (re-exported as `conn_mailbox::fuzzing`): CPG
//! messages from other daemons, applied to two daemons' replicated state.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::cluster_op::{
    Ack, BATCH_HEADER, Op, Snapshot, SyncGroup, config_tag, new_batch, ops, set_ack,
};
use super::outbox::{Outbox, QueueLimits};
use super::router::{Link, Router, Synced};
use crate::Cause;
use crate::client::decode::decode;

/// One daemon of the pretend cluster: its router, CPG member and the one
/// local client it has (membership messages on).
struct Daemon {
    router: Router,
    me: u64,
    pending: Arc<Mutex<VecDeque<Vec<u8>>>>,
    outbox: Arc<Outbox>,
}

impl Daemon {
    fn new(name: &str, me: u64, client: &str) -> Daemon {
        let router = Router::new(name.into(), None);
        let pending = Arc::new(Mutex::new(VecDeque::new()));
        router.set_cluster(Link {
            pending: pending.clone(),
            wake: Arc::new(tokio::sync::Notify::new()),
            me,
        });
        // The first state exchange gave every daemon's name: n1 to n4.
        let first: Vec<Synced> = (1..=4)
            .map(|d| (d, Snapshot::fresh(&format!("n{d}"), vec![])))
            .collect();
        router.merge(&first, &std::collections::HashMap::new());
        let outbox = Arc::new(Outbox::new(QueueLimits::default()));
        let (id, _) = router
            .register(client, true, None, outbox.clone())
            .expect("a fresh router admits its client");
        router.join(id, 1, "g");
        Daemon {
            router,
            me,
            pending,
            outbox,
        }
    }

    /// What the router queued for its client must be what a client decodes.
    fn client_reads(&self) {
        for frame in self.outbox.take_queued() {
            if let Err(e) = decode(frame.clone()) {
                panic!(
                    "daemon {} sent its client a frame the client refuses ({e}): {:02x?}",
                    self.me,
                    &frame[..]
                );
            }
        }
    }

    fn take_pending(&self) -> Vec<Vec<u8>> {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect()
    }
}

/// Checks one batch's ops: each that parses re-emits to the bytes it came
/// from, so a batch that parses whole re-emits to itself.
fn check_batch(batch: &[u8]) -> bool {
    let parsed: Vec<Op<'_>> = match ops(batch).collect::<Result<_, _>>() {
        Ok(parsed) => parsed,
        Err(_) => return false,
    };
    let mut again = batch[..BATCH_HEADER].to_vec();
    for op in &parsed {
        op.emit_into(&mut again).expect("a parsed op emits");
    }
    assert_eq!(again, batch, "a batch re-emits to other bytes: {parsed:?}");
    let back: Vec<Op<'_>> = ops(&again)
        .collect::<Result<_, _>>()
        .expect("emitted ops parse");
    assert_eq!(back, parsed);
    true
}

/// The cluster target. Two daemons, `n1` (CPG member 1, client `#a#n1`)
/// and `n2` (member 2, client `#b#n2`), both clients in group `g`, receive
/// the same stream from daemons 3 and 4 (named `n3` and `n4` until a Sync
/// of theirs names them otherwise). `data` is a list of records:
///
/// * `tag` with the top bit set: daemon `3 + (tag & 1)` leaves the
///   configuration (cause network, or disconnect if bit 1 is set);
/// * any other `tag`, then a `u16` length and that many bytes: a CPG
///   message (a batch) from daemon `3 + (tag & 1)`. A batch that starts
///   with a Sync is a state exchange: both daemons merge the Syncs of 1 and
///   2 (their snapshots) and this one.
///
/// After each record the operations the daemons' own clients caused are
/// delivered to both, as CPG would. Asserts that a batch that parses
/// re-emits to its own bytes; that every batch a daemon sends parses; that
/// every frame a daemon queues for its client, the client decodes; and
/// that both daemons, fed the same stream, hold the same state.
pub fn cluster(data: &[u8]) {
    let n = [Daemon::new("n1", 1, "a"), Daemon::new("n2", 2, "b")];
    settle(&n);
    let mut rest = data;
    while let Some((&tag, after)) = rest.split_first() {
        let from = 3 + u64::from(tag & 1);
        if tag & 0x80 != 0 {
            let cause = if tag & 2 != 0 {
                Cause::Disconnect
            } else {
                Cause::Network
            };
            for d in &n {
                d.router.daemons_left(&[(from, cause)]);
            }
            rest = after;
        } else {
            let Some((len, after)) = after.split_first_chunk::<2>() else {
                break;
            };
            let len = usize::from(u16::from_be_bytes(*len)).min(after.len());
            let (batch, after) = after.split_at(len);
            rest = after;
            check_batch(batch);
            deliver(&n, from, batch);
        }
        settle(&n);
    }
}

/// Delivers one CPG message from `from` to both daemons, as
/// `daemon/cluster.rs` does.
fn deliver(n: &[Daemon; 2], from: u64, batch: &[u8]) {
    if let Some(Ok(Op::Sync { snapshot, .. })) = ops(batch).next() {
        let mut syncs: Vec<Synced> = n.iter().map(|d| (d.me, d.router.sync_state())).collect();
        syncs.push((from, snapshot));
        for d in n {
            d.router.merge(&syncs, &std::collections::HashMap::new());
        }
        return;
    }
    for d in n {
        for op in ops(batch) {
            match op {
                Ok(Op::Sync { .. }) => {}
                Ok(op) => d.router.apply(from, op),
                Err(_) => {}
            }
        }
    }
}

/// Delivers what the daemons sent until nobody sends more, then checks
/// that both agree and that their clients can read what they were sent.
fn settle(n: &[Daemon; 2]) {
    for _ in 0..8 {
        let sent: Vec<(u64, Vec<u8>)> = n
            .iter()
            .flat_map(|d| d.take_pending().into_iter().map(|b| (d.me, b)))
            .collect();
        if sent.is_empty() {
            break;
        }
        for (from, batch) in sent {
            assert!(
                check_batch(&batch),
                "daemon {from} sent a batch that does not parse"
            );
            deliver(n, from, &batch);
        }
    }
    for d in n {
        d.client_reads();
    }
    let replicated = |d: &Daemon| {
        let s = d.router.sync_state();
        (s.groups, s.acl_version, s.acl)
    };
    assert_eq!(
        replicated(&n[0]),
        replicated(&n[1]),
        "two daemons fed the same stream disagree"
    );
}

/// Seed inputs for [`cluster`]: every op kind from daemon 3, a state
/// exchange, a daemon leaving, an op for another daemon's client, an access
/// list and what it refuses, a list that does not parse, a Sync under
/// a name another daemon holds, and a SAFE multicast with an
/// acknowledgement alone after it.
pub fn cluster_seeds() -> Vec<(String, Vec<u8>)> {
    let ops = [
        (
            "join",
            Op::Join {
                req: 1,
                client: "#c#n3",
                group: "g",
                uid: Some(1000),
            },
        ),
        (
            "leave",
            Op::Leave {
                req: 2,
                client: "#c#n3",
                group: "g",
            },
        ),
        (
            "multicast",
            Op::Multicast {
                client: "#c#n3",
                service: crate::Service::AGREED.bits(),
                msg_type: 3,
                groups: crate::wire::Names::from(&["g", "#a#n1"]),
                payload: b"hello",
                uid: Some(1000),
            },
        ),
        (
            "gone",
            Op::Gone {
                client: "#c#n3",
                cause: Cause::Disconnect,
            },
        ),
        (
            "sync",
            Op::Sync {
                config: vec![1, 2, 3],
                snapshot: Snapshot {
                    acl_version: 2,
                    acl: "[private]\nsend = [0]\n".into(),
                    ..Snapshot::fresh(
                        "n3",
                        vec![SyncGroup {
                            name: "g".into(),
                            view: 9,
                            members: vec![("#c#n3".into(), 3), ("#a#n1".into(), 1)],
                        }],
                    )
                },
            },
        ),
        (
            "acl",
            Op::Acl {
                text: "[groups.g]\njoin = [0]\nsend = [0]\n\n[private]\nsend = [0]\n",
            },
        ),
    ];
    let record = |tag: u8, op: &Op<'_>| {
        let mut batch = new_batch();
        op.emit_into(&mut batch).expect("seed ops emit");
        let mut r = vec![tag];
        r.extend_from_slice(&(batch.len() as u16).to_be_bytes());
        r.extend_from_slice(&batch);
        r
    };
    let mut seeds = Vec::new();
    let mut all = Vec::new();
    for (name, op) in &ops {
        all.extend(record(0, op));
        seeds.push(((*name).to_owned(), record(0, op)));
    }
    all.push(0x80); // daemon 3 leaves
    seeds.push(("all-then-leave".into(), all));
    let mut join_then_leave = record(1, &ops[0].1);
    join_then_leave.push(0x81);
    seeds.push(("join-then-daemon-left".into(), join_then_leave));
    // Daemon 3 speaking for a client of n1: refused at both.
    let foreign = Op::Gone {
        client: "#a#n1",
        cause: Cause::Network,
    };
    seeds.push(("foreign-client".into(), record(0, &foreign)));
    // A list, then the join and multicast it refuses (uid 1000), at both.
    let mut acl_then_refused = record(0, &ops[5].1);
    acl_then_refused.extend(record(0, &ops[0].1));
    acl_then_refused.extend(record(0, &ops[2].1));
    seeds.push(("acl-then-refused".into(), acl_then_refused));
    // A list that does not parse: refused at both, the batch goes on.
    let mut bad_acl = new_batch();
    for op in [Op::Acl { text: "[groups" }, ops[0].1.clone()] {
        op.emit_into(&mut bad_acl).expect("seed ops emit");
    }
    let mut r = vec![0];
    r.extend_from_slice(&(bad_acl.len() as u16).to_be_bytes());
    r.extend_from_slice(&bad_acl);
    seeds.push(("acl-malformed".into(), r));
    // Daemon 3's Sync under n1's name: refused (n1 holds it, settled).
    let impostor = Op::Sync {
        config: vec![1, 2, 3],
        snapshot: Snapshot {
            settled: true,
            ..Snapshot::fresh("n1", vec![])
        },
    };
    seeds.push(("sync-taken-name".into(), record(0, &impostor)));
    // A SAFE multicast, then an acknowledgement alone (a batch of no ops)
    // of position 1 of a configuration.
    let safe = Op::Multicast {
        client: "#c#n3",
        service: crate::Service::SAFE.bits(),
        msg_type: 0,
        groups: crate::wire::Names::from(&["g"]),
        payload: b"safe",
        uid: None,
    };
    let mut safe_then_ack = record(0, &safe);
    let mut ack = new_batch();
    set_ack(
        &mut ack,
        Ack {
            config: config_tag(&[1, 2, 3]),
            pos: 1,
        },
    );
    safe_then_ack.push(0);
    safe_then_ack.extend_from_slice(&(ack.len() as u16).to_be_bytes());
    safe_then_ack.extend_from_slice(&ack);
    seeds.push(("safe-then-ack".into(), safe_then_ack));
    seeds
}
