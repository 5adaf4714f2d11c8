//! SP_kill after a fork: the parent releases its copy without a word, the
//! child's copy keeps working, and members see cause network only when the
//! last copy goes. Real processes: the child is this test binary re-run with
//! the mailbox's descriptor as fd 3.

mod common;

use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;

use common::*;
use conn_mailbox::{Cause, Event, Mailbox, Service};
use conn_test_support::{child, child_done, pass_as_fd_3, role};

const TEST: &str = "kill_after_fork_keeps_the_other_copy";

fn copy_role() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // SAFETY: the parent passed the mailbox's descriptor as fd 3 and
        // nothing else in this process owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(3) };
        let mut m = Mailbox::from_fd(fd, std::env::var("MBX_PG").unwrap()).unwrap();
        m.multicast(Service::AGREED, &["f"], 1, b"from the copy")
            .await
            .unwrap();
        let own = message(&mut m).await;
        assert_eq!(own.data(), b"from the copy");
        let answer = message(&mut m).await;
        assert_eq!(
            (answer.sender(), answer.data()),
            ("#w#local", &b"go on"[..])
        );
        // Exiting releases the last copy: now the daemon sees a closed socket.
    });
    child_done("copy");
}

#[test]
fn kill_after_fork_keeps_the_other_copy() {
    if role().as_deref() == Some("copy") {
        return copy_role();
    }
    let d = Daemon::start(&[]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut w = connect(&d, "w", true).await;
        w.join("f", soon()).await.unwrap();
        membership(&mut w).await;
        let mut fk = connect(&d, "fk", false).await;
        fk.join("f", soon()).await.unwrap();
        wait_change(&mut w, "f", Cause::Join, "#fk#local").await;

        let mut cmd = child(TEST, "copy");
        cmd.env("MBX_PG", fk.private_group())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        pass_as_fd_3(&mut cmd, fk.as_raw_fd());
        let proc = cmd.spawn().expect("spawn the copy");
        fk.kill(); // no goodbye, no shutdown(2): the child's copy lives on

        // The copy speaks for #fk#local; nothing changed in the membership.
        match next(&mut w).await {
            Event::Message(m) => {
                assert_eq!((m.sender(), m.data()), ("#fk#local", &b"from the copy"[..]))
            }
            other => panic!("expected the copy's message, got {other:?}"),
        }
        w.multicast(Service::AGREED | Service::SELF_DISCARD, &["f"], 0, b"go on")
            .await
            .unwrap();
        let out = tokio::task::spawn_blocking(move || proc.wait_with_output().unwrap())
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("CONNKIT_CHILD_DONE copy"),
            "the copy failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The last copy is gone: cause network, not disconnect.
        let lost = membership(&mut w).await;
        assert_eq!(
            (lost.cause, lost.changed.as_str(), strings(&lost.members)),
            (Cause::Network, "#fk#local", vec!["#w#local".to_string()])
        );
        w.disconnect(soon()).await.unwrap();
    });
}
