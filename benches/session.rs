//! Signalling 1000 sleeping processes and waiting until all are reaped: a
//! session (`signal_local`, one pidfd per member, parents first) against the
//! kernel's own group signal (`kill -TERM -- -PGID`, one syscall), and the
//! session's atomic mode (freeze, signal, thaw) against its plain one.
//!
//! Each round spawns a fresh set of 1000 `sleep 1000` per method (that is
//! slow, so rounds are few) and times only signal-to-last-reaped; the
//! methods alternate within a round. Children are tokio's in every method,
//! so reaping costs the same. Current-thread runtime.

mod common;

use std::time::{Duration, Instant};

use common::{Row, write_table};
use rustix::process::{Pid, Signal as RSignal, kill_process_group};
use signal_session::{Backend, Session, Signal};
use tokio::process::{Child, Command};

/// Processes per session or group, and rounds: a full measurement, or a
/// smoke test under `cargo test`.
fn settings() -> (usize, usize) {
    if common::measuring() {
        (1000, 5)
    } else {
        (20, 1)
    }
}

fn sleep_cmd() -> Command {
    let mut c = Command::new("sleep");
    c.arg("1000").kill_on_drop(true);
    c
}

async fn reap_all(children: Vec<Child>) {
    for mut child in children {
        child.wait().await.unwrap();
    }
}

/// A session of sleeps (1000 when measuring): (session, children).
fn session_set() -> (Session, Vec<Child>) {
    let session = Session::builder().kill_on_drop(true).create().unwrap();
    let children = (0..settings().0)
        .map(|_| session.spawn(sleep_cmd()).unwrap())
        .collect();
    (session, children)
}

/// A process group of as many sleeps, led by the first: (pgid, children).
fn group_set() -> (u32, Vec<Child>) {
    let mut first = sleep_cmd();
    first.process_group(0);
    let leader = first.spawn().unwrap();
    let pgid = leader.id().unwrap();
    let mut children = vec![leader];
    for _ in 1..settings().0 {
        let mut c = sleep_cmd();
        c.process_group(pgid as i32);
        children.push(c.spawn().unwrap());
    }
    (pgid, children)
}

/// Times signal-to-all-reaped; also returns how long the signal call took.
async fn time_session(atomic: bool) -> (Duration, Duration) {
    let (session, children) = session_set();
    let start = Instant::now();
    let report = if atomic {
        session.signal_atomic(Signal::TERM.raw())
    } else {
        session.signal(Signal::TERM.raw())
    }
    .unwrap();
    let call = start.elapsed();
    reap_all(children).await;
    let total = start.elapsed();
    assert_eq!(report.members.len(), settings().0, "{report}");
    assert!(report.all_reached(), "{report}");
    (total, call)
}

async fn time_group() -> (Duration, Duration) {
    let (pgid, children) = group_set();
    let start = Instant::now();
    kill_process_group(Pid::from_raw(pgid as i32).unwrap(), RSignal::TERM).unwrap();
    let call = start.elapsed();
    reap_all(children).await;
    (start.elapsed(), call)
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort_unstable();
    v[v.len() / 2].as_secs_f64() * 1e3
}

fn main() {
    // `cargo bench` passes --bench; this bench takes no options.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _inside = rt.enter();
    let backend = Session::create().unwrap().backend();
    let atomic = matches!(backend, Backend::CgroupV2 { .. });
    let (mut plain, mut plain_call, mut group, mut group_call, mut frozen) =
        (vec![], vec![], vec![], vec![], vec![]);
    let (processes, rounds) = settings();
    for round in 0..rounds {
        let (t, c) = rt.block_on(time_session(false));
        plain.push(t);
        plain_call.push(c);
        let (t, c) = rt.block_on(time_group());
        group.push(t);
        group_call.push(c);
        if atomic {
            frozen.push(rt.block_on(time_session(true)).0);
        }
        eprintln!(
            "round {round}: session {:?}, group {:?}",
            plain[round], group[round]
        );
    }
    let (plain, group) = (median(plain), median(group));
    let mut rows = vec![
        Row {
            what: format!(
                "SIGTERM {processes} sleeps, until all reaped (session vs kill -- -PGID)"
            ),
            ours: plain,
            peer: group,
            unit: "ms",
            goal: "≤ 1.2".into(),
            met: plain / group <= 1.2,
        },
        Row {
            what: "the signal call alone (signal_local vs one kill(2) on the group); informative"
                .into(),
            ours: median(plain_call),
            peer: median(group_call),
            unit: "ms",
            goal: "none".into(),
            met: true,
        },
    ];
    if atomic {
        let frozen = median(frozen);
        rows.push(Row {
            what: format!(
                "atomic mode (freeze, signal, thaw) vs plain, {processes} sleeps until reaped"
            ),
            ours: frozen,
            peer: plain,
            unit: "ms",
            goal: "≤ 1.2".into(),
            met: frozen / plain <= 1.2,
        });
    }
    let notes = format!(
        "Median of {rounds} rounds, methods alternating; each round spawns {processes} fresh \
         `sleep 1000` per method and times signal to last reaped (tokio children in every \
         method). Backend: {backend}.{}",
        if atomic {
            ""
        } else {
            " Atomic mode needs cgroup v2: not measured here."
        }
    );
    write_table(
        "session",
        "Session signalling (signal-session)",
        &notes,
        &rows,
    );
}
