//! The cluster fuzz target (re-exported as `signal_session::fuzzing`):
//! what clustered sessionds multicast to one another on CPG, and what a
//! peer daemon sends over TCP once authenticated.

use conn_core::ErrorKind;

use super::array::{NodeRequest, outcome};
use super::config::Config;
use super::state::Daemon;
use crate::Caller;
use crate::fuzzing::{round_trip, sample_messages};
use crate::wire::{Message, NodeOutcome};
use conn_core::wire::Repr as _;

/// The cluster target: `data` is one CPG message (or a peer's request),
/// handled as `daemon/cluster.rs` and `daemon/remote.rs` do, by a daemon
/// that holds no session (so nothing can be signalled).
///
/// Asserts that the message round-trips (see the frames target); that a
/// request accepted from a peer travels as a frame that gives back the
/// same request; that a daemon with no sessions answers every accepted
/// request with `NoSuchSession`, and that answer, multicast back, reads as
/// that refusal; and that any answer frame becomes an outcome.
pub fn cluster(data: &[u8]) {
    let Some(msg) = round_trip(data) else {
        return;
    };
    match msg {
        Message::ClusterAsk {
            call,
            ruid,
            euid,
            request,
        } => ask(call, Caller { ruid, euid }, &request),
        Message::Remote {
            ruid,
            euid,
            request,
            ..
        } => {
            // The MAC is checked before this in remote.rs; past it, the
            // request is decoded the same way as a cluster's.
            ask(0, Caller { ruid, euid }, &request)
        }
        Message::ClusterAnswer { answer, .. } => {
            let _ = answer_outcome(&answer);
        }
        _ => {}
    }
}

fn ask(call: u64, caller: Caller, request: &[u8]) {
    let Ok(req) = NodeRequest::from_frame(caller, request) else {
        return;
    };
    let travels = req.frame().expect("an accepted request emits");
    assert_eq!(
        NodeRequest::from_frame(caller, &travels).expect("its own frame is accepted"),
        req
    );
    let daemon = Daemon::new(Config::default(), None, None);
    let answer = req.serve(&daemon);
    let Message::Error { kind, .. } = &answer else {
        panic!("a daemon with no sessions answered {req:?} with {answer:?}");
    };
    assert_eq!(*kind, ErrorKind::NoSuchSession, "{answer:?}");
    let multicast = Message::ClusterAnswer {
        call,
        node: 1,
        pid: 2,
        answer: answer.to_vec().expect("an answer emits"),
    }
    .to_vec()
    .expect("an answer's frame emits");
    let Some(Message::ClusterAnswer { answer, .. }) = round_trip(&multicast) else {
        panic!("a multicast answer does not read back");
    };
    assert!(
        matches!(
            answer_outcome(&answer),
            NodeOutcome::Refused {
                kind: ErrorKind::NoSuchSession,
                ..
            }
        ),
        "the refusal reads as another outcome"
    );
}

/// What the asker makes of an answer, as `Cluster::on_answer` does.
fn answer_outcome(answer: &[u8]) -> NodeOutcome {
    match round_trip(answer) {
        Some(answer) => outcome(answer),
        None => NodeOutcome::NoAnswer {
            kind: ErrorKind::Protocol,
            message: "not a message".into(),
        },
    }
}

/// Seed inputs for [`cluster`]: each kind of message, bare (the CPG
/// message is one frame).
pub fn cluster_seeds() -> Vec<(String, Vec<u8>)> {
    sample_messages()
        .into_iter()
        .map(|(name, msg)| (name.to_owned(), msg.to_vec().expect("seeds emit")))
        .collect()
}
