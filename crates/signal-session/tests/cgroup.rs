//! The cgroup v2 backend: where the session lives, its clean-up, and
//! atomic signalling against a process that forks in a tight loop.
//!
//! Kept in a test binary of its own: no pidfd session here makes this
//! process a child subreaper, so the orphans of the fork loop go to init.

mod common;

use std::path::PathBuf;

use common::{alive, cgroup_session, eventually, sh};
use signal_session::{Backend, Outcome, Session, signal_local_atomic};

fn cgroup_dir(session: &Session) -> PathBuf {
    match session.backend() {
        Backend::CgroupV2 { path } => path,
        other => panic!("expected the cgroup backend, got {other}"),
    }
}

fn procs(dir: &std::path::Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|t| t.lines().filter_map(|l| l.parse().ok()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_session_cgroup_sits_under_connkit_in_the_cgroup2_mount() {
    let Some(session) = cgroup_session() else {
        return;
    };
    let dir = cgroup_dir(&session);
    assert_eq!(dir.parent().unwrap().file_name().unwrap(), "connkit");
    assert!(dir.join("cgroup.procs").exists());
    let mut sleeper = session.spawn(common::sleep()).unwrap();
    assert_eq!(procs(&dir), vec![sleeper.id().unwrap()]);
    drop(session);
    assert!(!dir.exists(), "the cgroup is removed with the session");
    sleeper.wait().await.unwrap();
}

#[tokio::test]
async fn a_dropped_session_lets_survivors_go_and_removes_its_cgroup() {
    let Some(session) = Session::builder()
        .backend(signal_session::BackendChoice::CgroupV2)
        .create()
        .ok()
    else {
        conn_test_support::skip(
            "signal-session cgroup tests",
            "cgroup v2 is not writable here",
        );
        return;
    };
    let dir = cgroup_dir(&session);
    let mut sleeper = session.spawn(common::sleep()).unwrap();
    drop(session);
    assert!(!dir.exists());
    assert!(
        sleeper.try_wait().unwrap().is_none(),
        "it was let go, not killed"
    );
    sleeper.kill().await.unwrap();
}

#[tokio::test]
async fn atomic_sigkill_leaves_no_survivor_of_a_fork_loop() {
    let Some(session) = cgroup_session() else {
        return;
    };
    let dir = cgroup_dir(&session);
    let mut forker = session.spawn(sh("while :; do sleep 100 & done")).unwrap();
    eventually("the loop has forked a crowd", || procs(&dir).len() >= 20).await;

    let report = signal_local_atomic(session.ash(), libc::SIGKILL).unwrap();
    assert!(report.atomic);
    assert!(report.count(Outcome::Signalled) >= 20, "{report}");
    forker.wait().await.unwrap();
    eventually("the cgroup is empty", || procs(&dir).is_empty()).await;
    assert!(report.pids().iter().all(|&p| !alive(p)));
}

#[tokio::test]
async fn atomic_sigterm_freezes_signals_and_thaws_a_fork_loop_to_nothing() {
    let Some(session) = cgroup_session() else {
        return;
    };
    let dir = cgroup_dir(&session);
    let mut forker = session.spawn(sh("while :; do sleep 100 & done")).unwrap();
    eventually("the loop has forked a crowd", || procs(&dir).len() >= 20).await;

    let report = session.signal_atomic(libc::SIGTERM).unwrap();
    assert!(report.count(Outcome::Signalled) >= 20, "{report}");
    assert!(report.all_reached(), "{report}");
    let events = std::fs::read_to_string(dir.join("cgroup.events")).unwrap();
    assert!(
        events.contains("frozen 0"),
        "thawed after the call: {events}"
    );
    forker.wait().await.unwrap();
    // Every process present while frozen got SIGTERM, and none could fork
    // in between: nothing is left.
    eventually("the cgroup is empty", || procs(&dir).is_empty()).await;
}
