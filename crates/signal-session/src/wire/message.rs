//! The messages sessiond and its clients exchange (the `Repr` side).

use conn_core::wire::{self, Format, Reader, WireError, Writer};
use conn_core::{Error, ErrorKind};

use super::{Frame, Sessiond};
use crate::{Ash, Member, MemberId, Outcome, Signal, SignalReport};

conn_core::wire_kinds! {
    /// The kind byte of each message.
    pub enum Kind {
        /// [`Message::NewSession`]
        NewSession = 1 => "new-session",
        /// [`Message::Spawn`]
        Spawn = 2 => "spawn",
        /// [`Message::Adopt`]
        Adopt = 3 => "adopt",
        /// [`Message::List`]
        List = 4 => "list",
        /// [`Message::Members`]
        Members = 5 => "members",
        /// [`Message::Kill`]
        Kill = 6 => "kill",
        /// [`Message::Created`]
        Created = 64 => "created",
        /// [`Message::Spawned`]
        Spawned = 65 => "spawned",
        /// [`Message::Done`]
        Done = 66 => "done",
        /// [`Message::Sessions`]
        Sessions = 67 => "sessions",
        /// [`Message::Pids`]
        Pids = 68 => "pids",
        /// [`Message::Report`]
        Report = 69 => "report",
        /// [`Message::ArrayReport`]
        ArrayReport = 70 => "array report",
        /// [`Message::Error`]
        Error = 71 => "error",
        /// [`Message::Challenge`]
        Challenge = 96 => "challenge",
        /// [`Message::Remote`]
        Remote = 97 => "remote",
        /// [`Message::ClusterAsk`]
        ClusterAsk = 98 => "cluster ask",
        /// [`Message::ClusterAnswer`]
        ClusterAnswer = 99 => "cluster answer",
    }
}

/// One node's part of an array-wide kill, whichever way the array is
/// reached (TCP to configured peers, or the corosync cluster over CPG).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NodeResult {
    /// The node's name: in the array configuration, or in corosync's
    /// nodelist for the cluster.
    pub name: String,
    /// Where it was asked: a TCP address, or `cpg:node N pid P` (`cpg:node
    /// N` for a node no sessiond of the group was on).
    pub addr: String,
    /// What came back.
    pub outcome: NodeOutcome,
}

/// What one node of an array answered.
///
/// Serializes as `{"answered": REPORT}`, `{"refused": {"kind", "message"}}`,
/// `{"no_answer": {"kind", "message"}}` or `{"left": {"message"}}`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeOutcome {
    /// The node signalled its members: its report.
    Answered(SignalReport),
    /// The node answered with an error (no such session there, refused
    /// authentication, ...).
    Refused {
        /// The error's kind.
        kind: ErrorKind,
        /// The node's message.
        message: String,
    },
    /// No answer by the deadline (unreachable, connection refused, timed
    /// out, not in the cluster's group); says why.
    NoAnswer {
        /// The error's kind.
        kind: ErrorKind,
        /// What happened.
        message: String,
    },
    /// The cluster only: the node's sessiond left the group while the call
    /// waited for it (its node went down or was cut off, the daemon ended);
    /// the wait for it ended there. Says CPG's reason.
    Left {
        /// What happened, with CPG's reason.
        message: String,
    },
}

/// A sessiond message, parsed (smoltcp's `Repr`).
///
/// # Examples
///
/// ```
/// use signal_session::Ash;
/// use signal_session::wire::{Frame, Message};
/// use conn_core::wire::Repr as _;
///
/// let msg = Message::Kill { ash: Ash::from_raw(7), sig: 15, atomic: true, array: None, deadline_ms: 500 };
/// let mut buf = vec![0; msg.buffer_len()];
/// assert_eq!(msg.emit(&mut buf)?, buf.len());
/// let back = Message::parse(&Frame::new_checked(&buf[..])?)?;
/// assert_eq!(back, msg);
/// // A buffer too short is an error, never a panic.
/// assert!(msg.emit(&mut buf[..9]).is_err());
/// # Ok::<(), conn_core::wire::WireError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// Create a session; with `ash`, under that handle (the same array
    /// session on another node).
    NewSession {
        /// The handle to use, if given.
        ash: Option<Ash>,
    },
    /// Spawn `argv` into session `ash`, as the caller's user.
    Spawn {
        /// The session.
        ash: Ash,
        /// Program and arguments.
        argv: Vec<String>,
    },
    /// Adopt the running process `pid` into session `ash`.
    Adopt {
        /// The session.
        ash: Ash,
        /// The process.
        pid: u32,
    },
    /// List the daemon's sessions.
    List,
    /// List the processes of session `ash`.
    Members {
        /// The session.
        ash: Ash,
    },
    /// Signal session `ash`: on this node, or on every node of `array`.
    Kill {
        /// The session.
        ash: Ash,
        /// The signal number (0 checks).
        sig: i32,
        /// Freeze while signalling.
        atomic: bool,
        /// The array to fan out to; `None`: this node only.
        array: Option<String>,
        /// How long the array's nodes have to answer, in milliseconds.
        deadline_ms: u32,
    },
    /// A session was created.
    Created {
        /// Its handle.
        ash: Ash,
    },
    /// A process was spawned.
    Spawned {
        /// Its pid.
        pid: u32,
    },
    /// The request was carried out.
    Done,
    /// The daemon's sessions.
    Sessions(Vec<Ash>),
    /// A session's processes.
    Pids(Vec<u32>),
    /// What a kill did on this node.
    Report(SignalReport),
    /// What a kill did on each node of an array.
    ArrayReport(Vec<NodeResult>),
    /// The request failed.
    Error {
        /// What went wrong.
        kind: ErrorKind,
        /// The daemon's message.
        message: String,
    },
    /// A daemon's challenge to a peer daemon: a fresh nonce per connection.
    Challenge {
        /// The nonce.
        nonce: [u8; 32],
    },
    /// A peer daemon's request, authenticated: `mac` is HMAC-SHA256 under
    /// the array's shared secret over the nonce, the caller's ids and the
    /// request frame.
    Remote {
        /// The MAC.
        mac: [u8; 32],
        /// The real uid of the user the request is for.
        ruid: u32,
        /// The effective uid of the user the request is for.
        euid: u32,
        /// The request, a whole frame.
        request: Vec<u8>,
    },
    /// A sessiond's array-wide kill, multicast to the cluster's sessiond
    /// group over CPG (the sender is the one CPG names on delivery): the
    /// same request and user ids as [`Message::Remote`] carries, without a
    /// MAC, because corosync already decides who may join the group.
    ClusterAsk {
        /// The asker's number for this call.
        call: u64,
        /// The real uid of the user the request is for.
        ruid: u32,
        /// The effective uid of the user the request is for.
        euid: u32,
        /// The request, a whole [`Message::Kill`] frame.
        request: Vec<u8>,
    },
    /// One sessiond's answer to a [`Message::ClusterAsk`], multicast (CPG
    /// has no unicast); only the asker takes it.
    ClusterAnswer {
        /// The asker's number for the call.
        call: u64,
        /// The asker's corosync node id.
        node: u32,
        /// The asker's pid on that node.
        pid: u32,
        /// The answer, a whole [`Message::Report`] or [`Message::Error`]
        /// frame.
        answer: Vec<u8>,
    },
}

impl Message {
    /// An error answer for `err`.
    pub fn error(err: &Error) -> Message {
        Message::Error {
            kind: err.kind(),
            message: err.to_string(),
        }
    }
}

impl wire::Repr<'_> for Message {
    type Format = Sessiond;

    /// The kind byte.
    fn kind(&self) -> Kind {
        match self {
            Message::NewSession { .. } => Kind::NewSession,
            Message::Spawn { .. } => Kind::Spawn,
            Message::Adopt { .. } => Kind::Adopt,
            Message::List => Kind::List,
            Message::Members { .. } => Kind::Members,
            Message::Kill { .. } => Kind::Kill,
            Message::Created { .. } => Kind::Created,
            Message::Spawned { .. } => Kind::Spawned,
            Message::Done => Kind::Done,
            Message::Sessions(_) => Kind::Sessions,
            Message::Pids(_) => Kind::Pids,
            Message::Report(_) => Kind::Report,
            Message::ArrayReport(_) => Kind::ArrayReport,
            Message::Error { .. } => Kind::Error,
            Message::Challenge { .. } => Kind::Challenge,
            Message::Remote { .. } => Kind::Remote,
            Message::ClusterAsk { .. } => Kind::ClusterAsk,
            Message::ClusterAnswer { .. } => Kind::ClusterAnswer,
        }
    }

    /// Parses a checked frame.
    fn parse(frame: &Frame<'_>) -> Result<Message, WireError> {
        let kind = frame.checked_kind()?;
        let mut r = Reader::new(Sessiond::PROTOCOL, frame.body()).in_kind(kind.name());
        let msg = match kind {
            Kind::NewSession => Message::NewSession {
                ash: if r.bool()? {
                    Some(Ash::from_raw(r.u64()?))
                } else {
                    None
                },
            },
            Kind::Spawn => {
                let ash = Ash::from_raw(r.u64()?);
                let n = count(&mut r, 4)?;
                let argv = (0..n)
                    .map(|_| string(&mut r))
                    .collect::<Result<Vec<_>, _>>()?;
                if argv.is_empty() {
                    return Err(r.bad("no program to run"));
                }
                Message::Spawn { ash, argv }
            }
            Kind::Adopt => Message::Adopt {
                ash: Ash::from_raw(r.u64()?),
                pid: r.u32()?,
            },
            Kind::List => Message::List,
            Kind::Members => Message::Members {
                ash: Ash::from_raw(r.u64()?),
            },
            Kind::Kill => Message::Kill {
                ash: Ash::from_raw(r.u64()?),
                sig: r.i32()?,
                atomic: r.bool()?,
                array: if r.bool()? {
                    Some(string(&mut r)?)
                } else {
                    None
                },
                deadline_ms: r.u32()?,
            },
            Kind::Created => Message::Created {
                ash: Ash::from_raw(r.u64()?),
            },
            Kind::Spawned => Message::Spawned { pid: r.u32()? },
            Kind::Done => Message::Done,
            Kind::Sessions => {
                let n = count(&mut r, 8)?;
                Message::Sessions(
                    (0..n)
                        .map(|_| r.u64().map(Ash::from_raw))
                        .collect::<Result<_, _>>()?,
                )
            }
            Kind::Pids => {
                let n = count(&mut r, 4)?;
                Message::Pids((0..n).map(|_| r.u32()).collect::<Result<_, _>>()?)
            }
            Kind::Report => Message::Report(parse_report(&mut r)?),
            Kind::ArrayReport => {
                let n = count(&mut r, 9)?;
                let mut nodes = Vec::with_capacity(n);
                for _ in 0..n {
                    let name = string(&mut r)?;
                    let addr = string(&mut r)?;
                    let outcome = match r.u8()? {
                        0 => NodeOutcome::Answered(parse_report(&mut r)?),
                        1 => NodeOutcome::Refused {
                            kind: ErrorKind::from_errno(r.i32()?),
                            message: string(&mut r)?,
                        },
                        2 => NodeOutcome::NoAnswer {
                            kind: ErrorKind::from_errno(r.i32()?),
                            message: string(&mut r)?,
                        },
                        3 => NodeOutcome::Left {
                            message: string(&mut r)?,
                        },
                        _ => return Err(r.bad("unknown node outcome")),
                    };
                    nodes.push(NodeResult {
                        name,
                        addr,
                        outcome,
                    });
                }
                Message::ArrayReport(nodes)
            }
            Kind::Error => Message::Error {
                kind: ErrorKind::from_errno(r.i32()?),
                message: string(&mut r)?,
            },
            Kind::Challenge => Message::Challenge { nonce: r.array()? },
            Kind::Remote => Message::Remote {
                mac: r.array()?,
                ruid: r.u32()?,
                euid: r.u32()?,
                request: r.bytes32()?.to_vec(),
            },
            Kind::ClusterAsk => Message::ClusterAsk {
                call: r.u64()?,
                ruid: r.u32()?,
                euid: r.u32()?,
                request: r.bytes32()?.to_vec(),
            },
            Kind::ClusterAnswer => Message::ClusterAnswer {
                call: r.u64()?,
                node: r.u32()?,
                pid: r.u32()?,
                answer: r.bytes32()?.to_vec(),
            },
        };
        r.finish()?;
        Ok(msg)
    }

    fn body_len(&self) -> usize {
        let string = |s: &str| 4 + s.len();
        match self {
            Message::NewSession { ash } => 1 + if ash.is_some() { 8 } else { 0 },
            Message::Spawn { argv, .. } => 8 + 4 + argv.iter().map(|a| string(a)).sum::<usize>(),
            Message::Adopt { .. } => 8 + 4,
            Message::List | Message::Done => 0,
            Message::Members { .. } | Message::Created { .. } => 8,
            Message::Kill { array, .. } => 8 + 4 + 1 + 1 + array.as_deref().map_or(0, string) + 4,
            Message::Spawned { .. } => 4,
            Message::Sessions(ashes) => 4 + 8 * ashes.len(),
            Message::Pids(pids) => 4 + 4 * pids.len(),
            Message::Report(report) => report_len(report),
            Message::ArrayReport(nodes) => {
                4 + nodes
                    .iter()
                    .map(|n| {
                        string(&n.name)
                            + string(&n.addr)
                            + 1
                            + match &n.outcome {
                                NodeOutcome::Answered(report) => report_len(report),
                                NodeOutcome::Refused { message, .. }
                                | NodeOutcome::NoAnswer { message, .. } => 4 + string(message),
                                NodeOutcome::Left { message } => string(message),
                            }
                    })
                    .sum::<usize>()
            }
            Message::Error { message, .. } => 4 + string(message),
            Message::Challenge { .. } => 32,
            Message::Remote { request, .. } => 32 + 4 + 4 + 4 + request.len(),
            Message::ClusterAsk { request, .. } => 8 + 4 + 4 + 4 + request.len(),
            Message::ClusterAnswer { answer, .. } => 8 + 4 + 4 + 4 + answer.len(),
        }
    }

    fn emit_body(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        match self {
            Message::NewSession { ash } => {
                w.bool(ash.is_some())?;
                if let Some(ash) = ash {
                    w.u64(ash.raw())?;
                }
            }
            Message::Spawn { ash, argv } => {
                w.u64(ash.raw())?;
                w.u32(w.len("argv", argv.len())?)?;
                for a in argv {
                    w.str32(a)?;
                }
            }
            Message::Adopt { ash, pid } => {
                w.u64(ash.raw())?;
                w.u32(*pid)?;
            }
            Message::List | Message::Done => {}
            Message::Members { ash } | Message::Created { ash } => w.u64(ash.raw())?,
            Message::Kill {
                ash,
                sig,
                atomic,
                array,
                deadline_ms,
            } => {
                w.u64(ash.raw())?;
                w.i32(*sig)?;
                w.bool(*atomic)?;
                w.bool(array.is_some())?;
                if let Some(a) = array {
                    w.str32(a)?;
                }
                w.u32(*deadline_ms)?;
            }
            Message::Spawned { pid } => w.u32(*pid)?,
            Message::Sessions(ashes) => {
                w.u32(w.len("sessions", ashes.len())?)?;
                for a in ashes {
                    w.u64(a.raw())?;
                }
            }
            Message::Pids(pids) => {
                w.u32(w.len("pids", pids.len())?)?;
                for p in pids {
                    w.u32(*p)?;
                }
            }
            Message::Report(report) => emit_report(w, report)?,
            Message::ArrayReport(nodes) => {
                w.u32(w.len("nodes", nodes.len())?)?;
                for n in nodes {
                    w.str32(&n.name)?;
                    w.str32(&n.addr)?;
                    match &n.outcome {
                        NodeOutcome::Answered(report) => {
                            w.u8(0)?;
                            emit_report(w, report)?;
                        }
                        NodeOutcome::Refused { kind, message } => {
                            w.u8(1)?;
                            w.i32(kind.errno())?;
                            w.str32(message)?;
                        }
                        NodeOutcome::NoAnswer { kind, message } => {
                            w.u8(2)?;
                            w.i32(kind.errno())?;
                            w.str32(message)?;
                        }
                        NodeOutcome::Left { message } => {
                            w.u8(3)?;
                            w.str32(message)?;
                        }
                    }
                }
            }
            Message::Error { kind, message } => {
                w.i32(kind.errno())?;
                w.str32(message)?;
            }
            Message::Challenge { nonce } => w.bytes(nonce)?,
            Message::Remote {
                mac,
                ruid,
                euid,
                request,
            } => {
                w.bytes(mac)?;
                w.u32(*ruid)?;
                w.u32(*euid)?;
                w.bytes32(request)?;
            }
            Message::ClusterAsk {
                call,
                ruid,
                euid,
                request,
            } => {
                w.u64(*call)?;
                w.u32(*ruid)?;
                w.u32(*euid)?;
                w.bytes32(request)?;
            }
            Message::ClusterAnswer {
                call,
                node,
                pid,
                answer,
            } => {
                w.u64(*call)?;
                w.u32(*node)?;
                w.u32(*pid)?;
                w.bytes32(answer)?;
            }
        }
        Ok(())
    }
}

/// A `u32` count of items of at least `min_item` bytes each, which must
/// fit in what is left.
fn count(r: &mut Reader<'_>, min_item: usize) -> Result<usize, WireError> {
    let n = r.u32()? as usize;
    r.fit(n, min_item)
}

/// A `u32`-length UTF-8 string, owned.
fn string(r: &mut Reader<'_>) -> Result<String, WireError> {
    r.str32().map(str::to_owned)
}

/// Bytes a report takes: its header, then 14 per member (tag, id, code,
/// errno).
fn report_len(report: &SignalReport) -> usize {
    8 + 4 + 1 + 4 + 14 * report.members.len()
}

fn emit_report(w: &mut Writer<'_>, report: &SignalReport) -> Result<(), WireError> {
    w.u64(report.ash.raw())?;
    w.i32(report.signal.raw())?;
    w.bool(report.atomic)?;
    w.u32(w.len("members", report.members.len())?)?;
    for (member, outcome) in &report.members {
        let (tag, id) = match member {
            Member::Process(pid) => (0, u64::from(*pid)),
            Member::Task(id) => (1, id.0),
            Member::Shutdown(id) => (2, id.0),
            Member::Connection(id) => (3, id.0),
        };
        w.u8(tag)?;
        w.u64(id)?;
        let (code, errno) = match outcome {
            Outcome::Signalled => (0, 0),
            Outcome::Checked => (1, 0),
            Outcome::AlreadyGone => (2, 0),
            Outcome::PermissionDenied => (3, 0),
            Outcome::Ignored => (4, 0),
            Outcome::Failed(kind) => (5, kind.errno()),
        };
        w.u8(code)?;
        w.i32(errno)?;
    }
    Ok(())
}

fn parse_report(r: &mut Reader<'_>) -> Result<SignalReport, WireError> {
    let ash = Ash::from_raw(r.u64()?);
    let signal = Signal::new(r.i32()?).map_err(|_| r.bad("a signal number out of range"))?;
    let atomic = r.bool()?;
    let n = count(r, 14)?;
    let mut members = Vec::with_capacity(n);
    for _ in 0..n {
        let tag = r.u8()?;
        let id = r.u64()?;
        let member = match tag {
            0 => Member::Process(u32::try_from(id).map_err(|_| r.bad("pid out of range"))?),
            1 => Member::Task(MemberId(id)),
            2 => Member::Shutdown(MemberId(id)),
            3 => Member::Connection(MemberId(id)),
            _ => return Err(r.bad("unknown member kind")),
        };
        let code = r.u8()?;
        let errno = r.i32()?;
        let outcome = match code {
            0 => Outcome::Signalled,
            1 => Outcome::Checked,
            2 => Outcome::AlreadyGone,
            3 => Outcome::PermissionDenied,
            4 => Outcome::Ignored,
            5 => Outcome::Failed(ErrorKind::from_errno(errno)),
            _ => return Err(r.bad("unknown outcome")),
        };
        members.push((member, outcome));
    }
    Ok(SignalReport {
        ash,
        signal,
        atomic,
        members,
    })
}

#[cfg(test)]
mod tests {
    use conn_core::wire::{Problem, Repr as _};

    use super::*;

    fn round_trip(msg: Message) {
        let bytes = msg.to_vec().unwrap();
        assert_eq!(bytes.len(), msg.buffer_len());
        let back = Message::parse(&Frame::new_checked(&bytes[..]).unwrap()).unwrap();
        assert_eq!(back, msg);
    }

    fn report() -> SignalReport {
        SignalReport {
            ash: Ash::from_raw(0x1234),
            signal: Signal::TERM,
            atomic: false,
            members: vec![
                (Member::Process(42), Outcome::Signalled),
                (Member::Process(43), Outcome::PermissionDenied),
                (
                    Member::Connection(MemberId(2)),
                    Outcome::Failed(ErrorKind::TimedOut),
                ),
            ],
        }
    }

    #[test]
    fn every_message_round_trips() {
        let ash = Ash::from_raw(0xfeed_0000_0000_0001);
        for msg in [
            Message::NewSession { ash: None },
            Message::NewSession { ash: Some(ash) },
            Message::Spawn {
                ash,
                argv: vec!["sleep".into(), "100".into()],
            },
            Message::Adopt { ash, pid: 99 },
            Message::List,
            Message::Members { ash },
            Message::Kill {
                ash,
                sig: 15,
                atomic: false,
                array: Some("lab".into()),
                deadline_ms: 1000,
            },
            Message::Created { ash },
            Message::Spawned { pid: 7 },
            Message::Done,
            Message::Sessions(vec![ash, Ash::from_raw(3)]),
            Message::Pids(vec![1, 2, 3]),
            Message::Report(report()),
            Message::ArrayReport(vec![
                NodeResult {
                    name: "a".into(),
                    addr: "127.0.0.1:1".into(),
                    outcome: NodeOutcome::Answered(report()),
                },
                NodeResult {
                    name: "b".into(),
                    addr: "127.0.0.1:2".into(),
                    outcome: NodeOutcome::NoAnswer {
                        kind: ErrorKind::TimedOut,
                        message: "no answer".into(),
                    },
                },
                NodeResult {
                    name: "n3".into(),
                    addr: "cpg:node 3 pid 77".into(),
                    outcome: NodeOutcome::Left {
                        message: "left the group: node down".into(),
                    },
                },
            ]),
            Message::Error {
                kind: ErrorKind::NoSuchSession,
                message: "gone".into(),
            },
            Message::Challenge { nonce: [7; 32] },
            Message::Remote {
                mac: [1; 32],
                ruid: 5,
                euid: 6,
                request: vec![1, 2, 3],
            },
            Message::ClusterAsk {
                call: 9,
                ruid: 5,
                euid: 6,
                request: vec![4, 5],
            },
            Message::ClusterAnswer {
                call: 9,
                node: 2,
                pid: 1234,
                answer: vec![6],
            },
        ] {
            round_trip(msg);
        }
    }

    #[test]
    fn counts_and_lengths_beyond_the_payload_are_refused_without_allocating() {
        // Pids claiming 2^32-1 entries in a 4-byte payload.
        let bytes = [
            b'S',
            b'D',
            1,
            Kind::Pids as u8,
            0,
            0,
            0,
            4,
            0xff,
            0xff,
            0xff,
            0xff,
        ];
        let err = Message::parse(&Frame::new_checked(&bytes[..]).unwrap()).unwrap_err();
        assert_eq!(Error::from(err.clone()).kind(), ErrorKind::Protocol);
        assert!(err.to_string().contains("does not fit"), "{err}");
    }

    #[test]
    fn unknown_kinds_short_payloads_and_leftovers_are_protocol_errors() {
        for (bytes, says) in [
            (
                vec![b'S', b'D', 1, 200, 0, 0, 0, 0],
                "unknown frame kind 200",
            ),
            (
                vec![b'S', b'D', 1, Kind::Adopt as u8, 0, 0, 0, 2, 0, 0],
                "(adopt): truncated at byte 0",
            ),
            (
                vec![b'S', b'D', 1, Kind::List as u8, 0, 0, 0, 1, 9],
                "1 bytes after the last field",
            ),
        ] {
            let err = Message::parse(&Frame::new_checked(&bytes[..]).unwrap()).unwrap_err();
            assert_eq!(Error::from(err.clone()).kind(), ErrorKind::Protocol);
            assert!(err.to_string().contains(says), "{err}");
        }
    }

    #[test]
    fn a_string_too_long_for_its_frame_is_an_error_to_emit() {
        let msg = Message::Error {
            kind: ErrorKind::Other,
            message: "x".repeat(super::super::MAX_PAYLOAD),
        };
        let err = msg.to_vec().unwrap_err();
        assert!(matches!(err.problem(), Problem::TooLong { .. }), "{err}");
        assert_eq!(Error::from(err).kind(), ErrorKind::Protocol);
        let mut short = [0u8; 8];
        assert!(matches!(
            Message::Spawned { pid: 1 }
                .emit(&mut short)
                .unwrap_err()
                .problem(),
            Problem::NoRoom { need: 12, have: 8 }
        ));
    }
}
