//! The messages sessiond and its clients exchange (the `Repr` side).

use conn_core::{Error, ErrorKind, Result};

use super::codec::{Reader, Writer};
use super::frame::{Frame, HEADER_LEN, MAX_PAYLOAD};
use crate::{Ash, KillReport, Member, MemberId, Outcome, Signal};

/// The kind byte of each message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// [`Message::NewSession`]
    NewSession = 1,
    /// [`Message::Spawn`]
    Spawn = 2,
    /// [`Message::Adopt`]
    Adopt = 3,
    /// [`Message::List`]
    List = 4,
    /// [`Message::Members`]
    Members = 5,
    /// [`Message::Kill`]
    Kill = 6,
    /// [`Message::Created`]
    Created = 64,
    /// [`Message::Spawned`]
    Spawned = 65,
    /// [`Message::Done`]
    Done = 66,
    /// [`Message::Sessions`]
    Sessions = 67,
    /// [`Message::Pids`]
    Pids = 68,
    /// [`Message::Report`]
    Report = 69,
    /// [`Message::ArrayReport`]
    ArrayReport = 70,
    /// [`Message::Error`]
    Error = 71,
    /// [`Message::Challenge`]
    Challenge = 96,
    /// [`Message::Remote`]
    Remote = 97,
    /// [`Message::ClusterAsk`]
    ClusterAsk = 98,
    /// [`Message::ClusterAnswer`]
    ClusterAnswer = 99,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        use Kind::*;
        [
            NewSession,
            Spawn,
            Adopt,
            List,
            Members,
            Kill,
            Created,
            Spawned,
            Done,
            Sessions,
            Pids,
            Report,
            ArrayReport,
            Error,
            Challenge,
            Remote,
            ClusterAsk,
            ClusterAnswer,
        ]
        .into_iter()
        .find(|k| *k as u8 == b)
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
    Answered(KillReport),
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
///
/// let msg = Message::Kill { ash: Ash::from_raw(7), sig: 15, atomic: true, array: None, deadline_ms: 500 };
/// let mut buf = vec![0; msg.buffer_len()];
/// msg.emit(&mut Frame::new_unchecked(&mut buf[..]));
/// let back = Message::parse(&Frame::new_checked(&buf[..]).unwrap()).unwrap();
/// assert_eq!(back, msg);
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
    Report(KillReport),
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
    /// The kind byte.
    pub fn kind(&self) -> Kind {
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

    /// An error answer for `err`.
    pub fn error(err: &Error) -> Message {
        Message::Error {
            kind: err.kind(),
            message: err.to_string(),
        }
    }

    /// Parses a checked frame.
    pub fn parse<T: AsRef<[u8]>>(frame: &Frame<T>) -> Result<Message> {
        let kind = Kind::from_u8(frame.kind()).ok_or_else(|| {
            Error::new(ErrorKind::Protocol)
                .during("parse sessiond message")
                .detail(format!("unknown message kind {}", frame.kind()))
        })?;
        let mut r = Reader::new(frame.payload(), kind_name(kind));
        let msg = match kind {
            Kind::NewSession => Message::NewSession {
                ash: r
                    .bool()?
                    .then_some(())
                    .map(|()| r.u64())
                    .transpose()?
                    .map(Ash::from_raw),
            },
            Kind::Spawn => {
                let ash = Ash::from_raw(r.u64()?);
                let n = r.count(4)?;
                let argv = (0..n).map(|_| r.string()).collect::<Result<Vec<_>>>()?;
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
                array: if r.bool()? { Some(r.string()?) } else { None },
                deadline_ms: r.u32()?,
            },
            Kind::Created => Message::Created {
                ash: Ash::from_raw(r.u64()?),
            },
            Kind::Spawned => Message::Spawned { pid: r.u32()? },
            Kind::Done => Message::Done,
            Kind::Sessions => {
                let n = r.count(8)?;
                Message::Sessions(
                    (0..n)
                        .map(|_| r.u64().map(Ash::from_raw))
                        .collect::<Result<_>>()?,
                )
            }
            Kind::Pids => {
                let n = r.count(4)?;
                Message::Pids((0..n).map(|_| r.u32()).collect::<Result<_>>()?)
            }
            Kind::Report => Message::Report(parse_report(&mut r)?),
            Kind::ArrayReport => {
                let n = r.count(9)?;
                let mut nodes = Vec::with_capacity(n);
                for _ in 0..n {
                    let name = r.string()?;
                    let addr = r.string()?;
                    let outcome = match r.u8()? {
                        0 => NodeOutcome::Answered(parse_report(&mut r)?),
                        1 => NodeOutcome::Refused {
                            kind: ErrorKind::from_errno(r.i32()?),
                            message: r.string()?,
                        },
                        2 => NodeOutcome::NoAnswer {
                            kind: ErrorKind::from_errno(r.i32()?),
                            message: r.string()?,
                        },
                        3 => NodeOutcome::Left {
                            message: r.string()?,
                        },
                        b => return Err(r.bad(format!("unknown node outcome {b}"))),
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
                message: r.string()?,
            },
            Kind::Challenge => Message::Challenge { nonce: r.array()? },
            Kind::Remote => Message::Remote {
                mac: r.array()?,
                ruid: r.u32()?,
                euid: r.u32()?,
                request: r.byte_string()?.to_vec(),
            },
            Kind::ClusterAsk => Message::ClusterAsk {
                call: r.u64()?,
                ruid: r.u32()?,
                euid: r.u32()?,
                request: r.byte_string()?.to_vec(),
            },
            Kind::ClusterAnswer => Message::ClusterAnswer {
                call: r.u64()?,
                node: r.u32()?,
                pid: r.u32()?,
                answer: r.byte_string()?.to_vec(),
            },
        };
        r.finish()?;
        Ok(msg)
    }

    fn payload(&self) -> Vec<u8> {
        let mut w = Writer::default();
        match self {
            Message::NewSession { ash } => {
                w.bool(ash.is_some());
                if let Some(ash) = ash {
                    w.u64(ash.raw());
                }
            }
            Message::Spawn { ash, argv } => {
                w.u64(ash.raw());
                w.u32(argv.len() as u32);
                for a in argv {
                    w.string(a);
                }
            }
            Message::Adopt { ash, pid } => {
                w.u64(ash.raw());
                w.u32(*pid);
            }
            Message::List | Message::Done => {}
            Message::Members { ash } | Message::Created { ash } => w.u64(ash.raw()),
            Message::Kill {
                ash,
                sig,
                atomic,
                array,
                deadline_ms,
            } => {
                w.u64(ash.raw());
                w.i32(*sig);
                w.bool(*atomic);
                w.bool(array.is_some());
                if let Some(a) = array {
                    w.string(a);
                }
                w.u32(*deadline_ms);
            }
            Message::Spawned { pid } => w.u32(*pid),
            Message::Sessions(ashes) => {
                w.u32(ashes.len() as u32);
                for a in ashes {
                    w.u64(a.raw());
                }
            }
            Message::Pids(pids) => {
                w.u32(pids.len() as u32);
                for p in pids {
                    w.u32(*p);
                }
            }
            Message::Report(report) => emit_report(&mut w, report),
            Message::ArrayReport(nodes) => {
                w.u32(nodes.len() as u32);
                for n in nodes {
                    w.string(&n.name);
                    w.string(&n.addr);
                    match &n.outcome {
                        NodeOutcome::Answered(report) => {
                            w.u8(0);
                            emit_report(&mut w, report);
                        }
                        NodeOutcome::Refused { kind, message } => {
                            w.u8(1);
                            w.i32(kind.errno());
                            w.string(message);
                        }
                        NodeOutcome::NoAnswer { kind, message } => {
                            w.u8(2);
                            w.i32(kind.errno());
                            w.string(message);
                        }
                        NodeOutcome::Left { message } => {
                            w.u8(3);
                            w.string(message);
                        }
                    }
                }
            }
            Message::Error { kind, message } => {
                w.i32(kind.errno());
                w.string(message);
            }
            Message::Challenge { nonce } => w.bytes(nonce),
            Message::Remote {
                mac,
                ruid,
                euid,
                request,
            } => {
                w.bytes(mac);
                w.u32(*ruid);
                w.u32(*euid);
                w.byte_string(request);
            }
            Message::ClusterAsk {
                call,
                ruid,
                euid,
                request,
            } => {
                w.u64(*call);
                w.u32(*ruid);
                w.u32(*euid);
                w.byte_string(request);
            }
            Message::ClusterAnswer {
                call,
                node,
                pid,
                answer,
            } => {
                w.u64(*call);
                w.u32(*node);
                w.u32(*pid);
                w.byte_string(answer);
            }
        }
        w.out
    }

    /// The bytes the whole frame takes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload().len()
    }

    /// Writes the frame into `frame`, which must be [`Message::buffer_len`]
    /// bytes or more.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut Frame<T>) {
        let payload = self.payload();
        frame.set_header(self.kind() as u8, payload.len());
        frame.payload_mut().copy_from_slice(&payload);
    }

    /// The whole frame as bytes; `MessageTooLong` past [`MAX_PAYLOAD`].
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let payload = self.payload();
        if payload.len() > MAX_PAYLOAD {
            return Err(Error::new(ErrorKind::MessageTooLong)
                .during("emit sessiond message")
                .detail(format!("{} bytes of payload", payload.len())));
        }
        let mut buf = vec![0; HEADER_LEN + payload.len()];
        let mut frame = Frame::new_unchecked(&mut buf[..]);
        frame.set_header(self.kind() as u8, payload.len());
        frame.payload_mut().copy_from_slice(&payload);
        Ok(buf)
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::NewSession => "new-session",
        Kind::Spawn => "spawn",
        Kind::Adopt => "adopt",
        Kind::List => "list",
        Kind::Members => "members",
        Kind::Kill => "kill",
        Kind::Created => "created",
        Kind::Spawned => "spawned",
        Kind::Done => "done",
        Kind::Sessions => "sessions",
        Kind::Pids => "pids",
        Kind::Report => "report",
        Kind::ArrayReport => "array report",
        Kind::Error => "error",
        Kind::Challenge => "challenge",
        Kind::Remote => "remote",
        Kind::ClusterAsk => "cluster ask",
        Kind::ClusterAnswer => "cluster answer",
    }
}

fn emit_report(w: &mut Writer, report: &KillReport) {
    w.u64(report.ash.raw());
    w.i32(report.signal.raw());
    w.bool(report.atomic);
    w.u32(report.members.len() as u32);
    for (member, outcome) in &report.members {
        let (tag, id) = match member {
            Member::Process(pid) => (0, u64::from(*pid)),
            Member::Task(id) => (1, id.0),
            Member::Shutdown(id) => (2, id.0),
            Member::Connection(id) => (3, id.0),
        };
        w.u8(tag);
        w.u64(id);
        let (code, errno) = match outcome {
            Outcome::Signalled => (0, 0),
            Outcome::Checked => (1, 0),
            Outcome::AlreadyGone => (2, 0),
            Outcome::PermissionDenied => (3, 0),
            Outcome::Ignored => (4, 0),
            Outcome::Failed(kind) => (5, kind.errno()),
        };
        w.u8(code);
        w.i32(errno);
    }
}

fn parse_report(r: &mut Reader<'_>) -> Result<KillReport> {
    let ash = Ash::from_raw(r.u64()?);
    let signal = Signal::new(r.i32()?).map_err(|e| r.bad(e.to_string()))?;
    let atomic = r.bool()?;
    let n = r.count(14)?;
    let mut members = Vec::with_capacity(n);
    for _ in 0..n {
        let tag = r.u8()?;
        let id = r.u64()?;
        let member = match tag {
            0 => Member::Process(u32::try_from(id).map_err(|_| r.bad("pid out of range"))?),
            1 => Member::Task(MemberId(id)),
            2 => Member::Shutdown(MemberId(id)),
            3 => Member::Connection(MemberId(id)),
            t => return Err(r.bad(format!("unknown member kind {t}"))),
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
            c => return Err(r.bad(format!("unknown outcome {c}"))),
        };
        members.push((member, outcome));
    }
    Ok(KillReport {
        ash,
        signal,
        atomic,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(msg: Message) {
        let bytes = msg.to_bytes().unwrap();
        assert_eq!(bytes.len(), msg.buffer_len());
        let back = Message::parse(&Frame::new_checked(&bytes[..]).unwrap()).unwrap();
        assert_eq!(back, msg);
    }

    fn report() -> KillReport {
        KillReport {
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
        assert_eq!(err.kind(), ErrorKind::Protocol);
        assert!(err.to_string().contains("does not fit"), "{err}");
    }

    #[test]
    fn unknown_kinds_short_payloads_and_leftovers_are_protocol_errors() {
        for (bytes, says) in [
            (
                vec![b'S', b'D', 1, 200, 0, 0, 0, 0],
                "unknown message kind 200",
            ),
            (
                vec![b'S', b'D', 1, Kind::Adopt as u8, 0, 0, 0, 2, 0, 0],
                "ends early",
            ),
            (
                vec![b'S', b'D', 1, Kind::List as u8, 0, 0, 0, 1, 9],
                "left over",
            ),
        ] {
            let err = Message::parse(&Frame::new_checked(&bytes[..]).unwrap()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Protocol);
            assert!(err.to_string().contains(says), "{err}");
        }
    }
}
