//! Processes in sessions, on both backends: membership of forks and
//! orphans, adoption, and `signal_local`'s checks and report.

mod common;

use std::os::unix::process::ExitStatusExt;

use common::{a_kernel_thread, alive, eventually, ppid, sessions, sh};
use conn_core::ErrorKind;
use signal_session::{Ash, Member, Outcome, signal_local, signal_local_atomic};

#[tokio::test]
async fn a_spawned_process_and_everything_it_forks_are_members() {
    let _serial = common::serial().await;
    for session in sessions() {
        let backend = session.backend();
        let mut shell = session.spawn(sh("sleep 100 & sleep 100 & wait")).unwrap();
        let shell_pid = shell.id().unwrap();
        eventually("the shell's two sleeps have joined", || {
            session.pids().unwrap().len() == 3
        })
        .await;
        let pids = session.pids().unwrap();
        assert!(pids.contains(&shell_pid), "{backend}: {pids:?}");

        let report = signal_local(session.ash(), libc::SIGTERM).unwrap();
        assert_eq!(report.pids(), pids, "{backend}");
        assert_eq!(report.count(Outcome::Signalled), 3, "{backend}: {report}");
        // The shell was signalled before its sleeps (parents first), so it
        // died of SIGTERM; signalled after them it could reap them, let its
        // `wait` return and exit 0 before its own signal came.
        let status = shell.wait().await.unwrap();
        assert_eq!(
            status.signal(),
            Some(libc::SIGTERM),
            "{backend}: {status} after {report:?}"
        );
        eventually("every member is gone", || pids.iter().all(|&p| !alive(p))).await;
        eventually("the session is empty", || {
            session.pids().unwrap().is_empty()
        })
        .await;
    }
}

#[tokio::test]
async fn a_double_forked_orphan_stays_in_the_session() {
    let _serial = common::serial().await;
    for session in sessions() {
        let backend = session.backend();
        // The subshell forks a sleep and exits at once: the sleep is
        // orphaned and reparented away from the shell.
        let mut shell = session.spawn(sh("(sleep 100 &); exec sleep 100")).unwrap();
        let main = shell.id().unwrap();
        let orphaned = || {
            let pids = session.pids().unwrap();
            let others: Vec<u32> = pids.into_iter().filter(|&p| p != main).collect();
            match others[..] {
                [only] if ppid(only).is_some_and(|pp| pp != main) => Some(only),
                _ => None,
            }
        };
        eventually("the subshell is gone and its sleep orphaned", || {
            orphaned().is_some()
        })
        .await;
        let orphan = orphaned().unwrap();

        let report = session.signal(libc::SIGKILL).unwrap();
        assert_eq!(
            report.outcome(Member::Process(orphan)),
            Some(Outcome::Signalled),
            "{backend}: {report}"
        );
        shell.wait().await.unwrap();
        eventually("the orphan is gone", || !alive(orphan)).await;
    }
}

#[tokio::test]
async fn an_adopted_process_brings_its_children_along() {
    let _serial = common::serial().await;
    for session in sessions() {
        let backend = session.backend();
        let mut outsider = sh("sleep 100 & wait").spawn().unwrap();
        let pid = outsider.id().unwrap();
        eventually("the outsider has forked", || {
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .is_ok_and(|c| !c.trim().is_empty())
        })
        .await;

        session.adopt(pid).unwrap();
        let pids = session.pids().unwrap();
        assert_eq!(pids.len(), 2, "{backend}: {pids:?}");
        assert!(pids.contains(&pid));

        let report = signal_local(session.ash(), libc::SIGKILL).unwrap();
        assert_eq!(report.count(Outcome::Signalled), 2, "{backend}: {report}");
        outsider.wait().await.unwrap();
        eventually("the adopted tree is gone", || {
            pids.iter().all(|&p| !alive(p))
        })
        .await;
    }
}

#[tokio::test]
async fn adopting_a_pid_that_does_not_exist_is_no_such_session() {
    let _serial = common::serial().await;
    for session in sessions() {
        let err = session.adopt(1 << 23).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NoSuchSession, "{err}");
        assert!(err.to_string().contains("8388608"), "{err}");
    }
}

#[tokio::test]
async fn signal_zero_checks_every_member_and_sends_nothing() {
    let _serial = common::serial().await;
    for session in sessions() {
        let mut sleeper = session.spawn(common::sleep()).unwrap();
        let pid = sleeper.id().unwrap();
        let report = signal_local(session.ash(), 0).unwrap();
        assert_eq!(
            report.members,
            vec![(Member::Process(pid), Outcome::Checked)]
        );
        assert!(
            sleeper.try_wait().unwrap().is_none(),
            "signal 0 sent nothing"
        );
        assert!(alive(pid));
    }
}

#[tokio::test]
async fn an_invalid_signal_number_is_invalid_type_and_sends_nothing() {
    let _serial = common::serial().await;
    for session in sessions() {
        let mut sleeper = session.spawn(common::sleep()).unwrap();
        for bad in [-1, 65, 1000] {
            let err = session.signal(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidType);
            assert!(
                err.to_string()
                    .starts_with(&format!("kill session on session {}", session.ash())),
                "{err}"
            );
        }
        assert!(sleeper.try_wait().unwrap().is_none());
    }
}

#[test]
fn an_unknown_session_is_no_such_session() {
    let ash: Ash = "0x0000000000000bad".parse().unwrap();
    for err in [
        signal_local(ash, libc::SIGTERM).unwrap_err(),
        signal_local_atomic(ash, libc::SIGTERM).unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::NoSuchSession);
        assert_eq!(err.errno(), libc::ESRCH);
        assert!(
            err.to_string().contains("session 0x0000000000000bad"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn pid_0_init_kernel_threads_this_process_and_its_ancestors_are_never_adopted() {
    let _serial = common::serial().await;
    let me = std::process::id();
    let parent = std::os::unix::process::parent_id();
    // The checks come before anything is moved, and the dangerous pids
    // last: should one get through, the test fails on this process first.
    let mut refused = vec![
        (me, ErrorKind::PermissionDenied, "sessiond itself"),
        (parent, ErrorKind::PermissionDenied, "an ancestor"),
    ];
    refused.extend(a_kernel_thread().map(|k| (k, ErrorKind::PermissionDenied, "kernel thread")));
    refused.push((0, ErrorKind::InvalidType, "is no process"));
    refused.push((1, ErrorKind::PermissionDenied, "is init"));
    for session in sessions() {
        for &(pid, kind, why) in &refused {
            let err = session.adopt(pid).unwrap_err();
            assert_eq!(err.kind(), kind, "pid {pid}: {err}");
            let text = err.to_string();
            assert!(
                text.contains(&format!("pid {pid}")) && text.contains(why),
                "{text}"
            );
        }
        assert_eq!(session.pids().unwrap(), Vec::<u32>::new(), "nothing moved");
    }
}

#[tokio::test]
async fn a_member_of_another_user_is_reported_denied_while_the_rest_are_signalled() {
    let _serial = common::serial().await;
    for session in sessions() {
        let backend = session.backend();
        let mut ours = session.spawn(common::sleep()).unwrap();
        let mut theirs = session
            .spawn({
                let mut c = tokio::process::Command::new("sleep");
                c.arg("100").uid(65534).gid(65534);
                c
            })
            .unwrap();
        let (ours_pid, theirs_pid) = (ours.id().unwrap(), theirs.id().unwrap());

        // Signal from a thread that runs as user 65534 (set for this thread
        // only, by the raw syscall), so it may signal only its own.
        let ash = session.ash();
        let report = std::thread::spawn(move || {
            // SAFETY: setresuid reads only its integer arguments; the
            // credentials change for this thread alone, which ends here.
            let rc = unsafe { libc::syscall(libc::SYS_setresuid, 65534, 65534, 0) };
            assert_eq!(rc, 0);
            signal_local(ash, libc::SIGTERM)
        })
        .join()
        .unwrap()
        .unwrap();

        assert_eq!(
            report.outcome(Member::Process(ours_pid)),
            Some(Outcome::PermissionDenied),
            "{backend}: {report}"
        );
        assert_eq!(
            report.outcome(Member::Process(theirs_pid)),
            Some(Outcome::Signalled),
            "{backend}: {report}"
        );
        assert!(!report.all_reached());
        assert!(!theirs.wait().await.unwrap().success());
        assert!(
            ours.try_wait().unwrap().is_none(),
            "{backend}: ours was spared"
        );
    }
}

#[tokio::test]
async fn atomic_signalling_on_the_pidfd_backend_is_not_supported() {
    let _serial = common::serial().await;
    let session = common::pidfd_session();
    let err = session.signal_atomic(libc::SIGKILL).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotSupported);
    assert!(err.to_string().contains("cgroup v2"), "{err}");
    let err = signal_local_atomic(session.ash(), libc::SIGTERM).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotSupported);
}

#[tokio::test]
async fn a_dropped_session_is_unregistered_and_kills_on_drop_when_asked() {
    let _serial = common::serial().await;
    for session in sessions() {
        let ash = session.ash();
        assert!(signal_session::sessions().contains(&ash));
        let mut sleeper = session.spawn(common::sleep()).unwrap();
        drop(session);
        assert!(!signal_session::sessions().contains(&ash));
        assert_eq!(
            signal_local(ash, 0).unwrap_err().kind(),
            ErrorKind::NoSuchSession
        );
        assert!(!sleeper.wait().await.unwrap().success());
    }
}
