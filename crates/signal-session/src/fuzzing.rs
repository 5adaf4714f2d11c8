//! **Not API.** The fuzz targets' entry points for sessiond's protocol (see
//! `fuzz/` at the repository root and `crates/fuzz-targets`, which replays
//! their corpus on stable). Hidden from the docs; it may change or go at
//! any time.
//!
//! * [`frames`]: a byte stream from a sessiond client or daemon, read with
//!   [`read_frame_within`](crate::wire::io::read_frame_within) and parsed
//!   into [`Message`]s.
//! * [`cluster`]: one CPG message between clustered sessionds (an ask or
//!   an answer, with the request or answer frame inside), and a peer's
//!   authenticated request.

use std::pin::Pin;
use std::task::{Context, Poll};

use conn_core::fuzzing::{chunks, split_seed, stream_seeds};
use tokio::io::{AsyncRead, ReadBuf};

use crate::wire::io::{FrameLimits, read_frame_within};
use crate::wire::{Frame, Message, NodeOutcome, NodeResult};
use crate::{Ash, Member, Outcome, Signal, SignalReport};
use conn_core::wire::Repr as _;

#[cfg(feature = "daemon")]
pub use crate::daemon::fuzzing::{cluster, cluster_seeds};

/// A stream that hands out `data` in the given cuts, one cut (or what of
/// it fits the reader's buffer) per read; then end of stream.
struct Cut<'a> {
    data: &'a [u8],
    cuts: Vec<std::ops::Range<usize>>,
    next: usize,
}

impl AsyncRead for Cut<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let Some(cut) = this.cuts.get_mut(this.next) else {
            return Poll::Ready(Ok(()));
        };
        let n = cut.len().min(buf.remaining());
        buf.put_slice(&this.data[cut.start..cut.start + n]);
        cut.start += n;
        if cut.start >= cut.end {
            this.next += 1;
        }
        Poll::Ready(Ok(()))
    }
}

/// How reading frames off a stream went: each frame's bytes, then the
/// error that ended it (kind and text), if one did.
type Read = (Vec<Vec<u8>>, Option<String>);

fn read_all(data: &[u8], cuts: Vec<std::ops::Range<usize>>) -> Read {
    let mut stream = Cut {
        data,
        cuts,
        next: 0,
    };
    let mut frames = Vec::new();
    loop {
        let read = futures::executor::block_on(read_frame_within(
            &mut stream,
            &mut FrameLimits::default(),
        ));
        match read {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => return (frames, None),
            Err(e) => return (frames, Some(format!("{:?}: {e}", e.kind()))),
        }
    }
}

/// Parses `bytes` as a whole frame; a message that parses emits and
/// parses again to itself (not always to the same bytes: an errno no kind
/// has reads as `Other`, which emits `EIO`).
pub(crate) fn round_trip(bytes: &[u8]) -> Option<Message> {
    let msg = Message::parse(&Frame::new_checked(bytes).ok()?).ok()?;
    let again = msg.to_vec().expect("a parsed message emits");
    assert_eq!(again.len(), msg.buffer_len());
    let back = Message::parse(&Frame::new_checked(&again[..]).expect("emitted frames check"))
        .expect("emitted frames parse");
    assert_eq!(back, msg, "a message changes when emitted and parsed again");
    Some(msg)
}

/// The frames target: `data` (after its chunking seed) is what a sessiond
/// client or peer sends.
///
/// Asserts that the frames and the error read off the stream do not
/// depend on how it is cut into reads, that each frame is whole (its
/// header's length is its length), and that every message parses, emits
/// and parses again to itself.
pub fn frames(data: &[u8]) {
    let (seed, stream) = split_seed(data);
    let whole = read_all(stream, std::iter::once(0..stream.len()).collect());
    let cut = read_all(stream, chunks(seed, stream.len()).collect());
    assert_eq!(
        whole.0, cut.0,
        "the frames depend on how the stream was cut"
    );
    // The error's kind is the same; its text may say how far a read got.
    let kind = |o: &Option<String>| o.as_ref().map(|e| e.split(':').next().map(str::to_owned));
    assert_eq!(kind(&whole.1), kind(&cut.1), "{whole:?} / {cut:?}");
    for frame in &whole.0 {
        let checked = Frame::new_checked(&frame[..]).expect("a frame read is whole");
        assert_eq!(checked.as_bytes().len(), frame.len());
        round_trip(frame);
    }
}

/// One message of every kind, as seeds.
pub(crate) fn sample_messages() -> Vec<(&'static str, Message)> {
    let ash = Ash::from_raw(0x0123_4567_89ab_cdef);
    let report = SignalReport {
        ash,
        signal: Signal::TERM,
        atomic: true,
        members: vec![
            (Member::Process(4242), Outcome::Signalled),
            (Member::Process(4243), Outcome::AlreadyGone),
        ],
    };
    let kill = Message::Kill {
        ash,
        sig: 15,
        atomic: false,
        array: None,
        deadline_ms: 0,
    };
    vec![
        ("new-session", Message::NewSession { ash: Some(ash) }),
        ("new-session-any", Message::NewSession { ash: None }),
        (
            "spawn",
            Message::Spawn {
                ash,
                argv: vec!["/bin/sleep".into(), "10".into()],
            },
        ),
        ("adopt", Message::Adopt { ash, pid: 4242 }),
        ("list", Message::List),
        ("members", Message::Members { ash }),
        ("kill", kill.clone()),
        (
            "kill-array",
            Message::Kill {
                ash,
                sig: 9,
                atomic: true,
                array: Some("cluster".into()),
                deadline_ms: 2000,
            },
        ),
        ("created", Message::Created { ash }),
        ("spawned", Message::Spawned { pid: 4242 }),
        ("done", Message::Done),
        ("sessions", Message::Sessions(vec![ash, Ash::from_raw(7)])),
        ("pids", Message::Pids(vec![1, 4242])),
        ("report", Message::Report(report.clone())),
        (
            "array-report",
            Message::ArrayReport(vec![
                NodeResult {
                    name: "n1".into(),
                    addr: "10.0.0.1:7070".into(),
                    outcome: NodeOutcome::Answered(report),
                },
                NodeResult {
                    name: "n2".into(),
                    addr: "10.0.0.2:7070".into(),
                    outcome: NodeOutcome::Refused {
                        kind: conn_core::ErrorKind::PermissionDenied,
                        message: "not yours".into(),
                    },
                },
                NodeResult {
                    name: "n3".into(),
                    addr: "10.0.0.3:7070".into(),
                    outcome: NodeOutcome::NoAnswer {
                        kind: conn_core::ErrorKind::TimedOut,
                        message: "silent".into(),
                    },
                },
                NodeResult {
                    name: "n4".into(),
                    addr: "corosync".into(),
                    outcome: NodeOutcome::Left {
                        message: "left".into(),
                    },
                },
            ]),
        ),
        (
            "error",
            Message::Error {
                kind: conn_core::ErrorKind::NoSuchSession,
                message: "no session".into(),
            },
        ),
        ("challenge", Message::Challenge { nonce: [7; 32] }),
        (
            "remote",
            Message::Remote {
                mac: [9; 32],
                ruid: 1000,
                euid: 1000,
                request: kill.to_vec().expect("the seed emits"),
            },
        ),
        (
            "cluster-ask",
            Message::ClusterAsk {
                call: 1,
                ruid: 0,
                euid: 0,
                request: kill.to_vec().expect("the seed emits"),
            },
        ),
        (
            "cluster-answer",
            Message::ClusterAnswer {
                call: 1,
                node: 1,
                pid: 100,
                answer: Message::Error {
                    kind: conn_core::ErrorKind::NoSuchSession,
                    message: "no session".into(),
                }
                .to_vec()
                .expect("the seed emits"),
            },
        ),
    ]
}

/// Seed inputs for [`frames`]: a message of every kind (see
/// [`stream_seeds`]).
pub fn frames_seeds() -> Vec<(String, Vec<u8>)> {
    stream_seeds(
        sample_messages()
            .into_iter()
            .map(|(name, msg)| (name, msg.to_vec().expect("seed messages emit"))),
    )
}
