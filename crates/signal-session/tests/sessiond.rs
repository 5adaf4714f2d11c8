//! sessiond as a real process: sessions that outlive their client,
//! Array Services' permission rule against a client running as another
//! user, misbehaving clients, graceful shutdown.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::sessiond::{Sessiond, root_or_skip, sessionctl};
use common::{alive, eventually};
use conn_core::{Deadline, ErrorKind};
use signal_session::client::{Client, kill_server};
use signal_session::wire::{Frame, Message};
use signal_session::{Ash, Member, Outcome};

const NOBODY: u32 = 65534;

async fn client(daemon: &Sessiond) -> Client {
    Client::connect(&daemon.socket, Deadline::after(Duration::from_secs(10)))
        .await
        .unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "status {}\nstdout:\n{}stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn a_session_made_by_a_short_lived_client_outlives_it_and_is_killed_per_member() {
    let daemon = Sessiond::start(&[]);
    let new = sessionctl(&daemon.socket, None, &["new"]);
    assert!(new.status.success(), "{}", text(&new));
    let ash: Ash = String::from_utf8(new.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    let spawned = sessionctl(
        &daemon.socket,
        None,
        &[
            "spawn",
            &ash.to_string(),
            "--",
            "sh",
            "-c",
            "sleep 100 & wait",
        ],
    );
    assert!(spawned.status.success(), "{}", text(&spawned));
    let shell: u32 = String::from_utf8(spawned.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    let mut c = client(&daemon).await;
    assert!(c.list().await.unwrap().contains(&ash));
    for _ in 0..3000 {
        if c.members(ash).await.unwrap().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pids = c.members(ash).await.unwrap();
    assert_eq!(pids.len(), 2, "the shell and its sleep: {pids:?}");
    assert!(pids.contains(&shell));

    let report = kill_server(
        Some(&daemon.socket),
        ash,
        libc::SIGTERM,
        Deadline::after(Duration::from_secs(10)),
    )
    .await
    .unwrap();
    assert_eq!(report.pids(), pids);
    assert_eq!(report.count(Outcome::Signalled), 2, "{report}");
    eventually("the session's processes are gone", || {
        pids.iter().all(|&p| !alive(p))
    })
    .await;
}

#[tokio::test]
async fn nobody_may_signal_its_own_processes_and_not_roots() {
    if !root_or_skip("the cross-user permission test") {
        return;
    }
    let daemon = Sessiond::start(&[]);
    let mut root = client(&daemon).await;

    // A session of root's: nobody may not use it at all (kill, check,
    // freeze, adopt, spawn, members), and does not see it listed.
    let roots = root.new_session(None).await.unwrap();
    let r1 = root.spawn(roots, &["sleep", "100"]).await.unwrap();
    let r2 = root.spawn(roots, &["sleep", "100"]).await.unwrap();
    let r = roots.to_string();
    for args in [
        vec!["kill", &r, "-s", "TERM"],
        vec!["kill", &r, "-s", "0"],
        vec!["kill", &r, "-s", "TERM", "--atomic"],
        vec!["members", &r],
        vec!["spawn", &r, "--", "sleep", "100"],
    ] {
        let out = sessionctl(&daemon.socket, Some(NOBODY), &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("EPERM") && err.contains("belongs to uid 0"),
            "{args:?}: {}",
            text(&out)
        );
    }
    assert!(alive(r1) && alive(r2), "root's processes were spared");
    let out = sessionctl(&daemon.socket, Some(NOBODY), &["list"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(&r),
        "{}",
        text(&out)
    );
    // nobody may not adopt root's process, into root's session or its own.
    let out = sessionctl(
        &daemon.socket,
        Some(NOBODY),
        &["adopt", &r, &r1.to_string()],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("EPERM"),
        "{}",
        text(&out)
    );
    let own = sessionctl(&daemon.socket, Some(NOBODY), &["new"]);
    assert!(own.status.success(), "{}", text(&own));
    let own = String::from_utf8_lossy(&own.stdout).trim().to_owned();
    let out = sessionctl(
        &daemon.socket,
        Some(NOBODY),
        &["adopt", &own, &r1.to_string()],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("EPERM") && err.contains(&format!("may not signal pid {r1}")),
        "{}",
        text(&out)
    );

    // A mixed session of nobody's: nobody's own process (spawned by
    // nobody, so it runs as nobody) is signalled, the one root put in it is
    // denied.
    let mixed: Ash = {
        let out = sessionctl(&daemon.socket, Some(NOBODY), &["new"]);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    let theirs = sessionctl(
        &daemon.socket,
        Some(NOBODY),
        &["spawn", &mixed.to_string(), "--", "sleep", "100"],
    );
    assert!(theirs.status.success(), "{}", text(&theirs));
    let theirs: u32 = String::from_utf8(theirs.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let status = std::fs::read_to_string(format!("/proc/{theirs}/status")).unwrap();
    assert!(
        status.contains("Uid:\t65534\t65534\t65534"),
        "spawned as the caller: {status}"
    );
    // Root may use anyone's session.
    let ours = root.spawn(mixed, &["sleep", "100"]).await.unwrap();

    let out = sessionctl(
        &daemon.socket,
        Some(NOBODY),
        &["kill", &mixed.to_string(), "-s", "TERM"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("process {theirs}: signalled")),
        "{}",
        text(&out)
    );
    assert!(
        stdout.contains(&format!("process {ours}: permission denied")),
        "{}",
        text(&out)
    );
    eventually("nobody's process is gone", || !alive(theirs)).await;
    assert!(alive(ours));

    // Root may signal everyone.
    let report = root.kill(roots, libc::SIGKILL, false).await.unwrap();
    assert_eq!(report.count(Outcome::Signalled), 2, "{report}");
    let report = root.kill(mixed, libc::SIGKILL, false).await.unwrap();
    assert_eq!(
        report.outcome(Member::Process(ours)),
        Some(Outcome::Signalled)
    );
}

#[tokio::test]
async fn sessiond_survives_garbage_early_close_and_unknown_sessions() {
    let daemon = Sessiond::start(&[]);

    // Bytes that are no frame: told why, then dropped.
    let mut raw = UnixStream::connect(&daemon.socket).unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    raw.read_to_end(&mut answer).unwrap();
    let msg = Message::parse(&Frame::new_checked(&answer[..]).unwrap()).unwrap();
    assert!(
        matches!(
            msg,
            Message::Error {
                kind: ErrorKind::Protocol,
                ..
            }
        ),
        "{msg:?}"
    );

    // A header announcing more than the limit: refused before allocating.
    let mut raw = UnixStream::connect(&daemon.socket).unwrap();
    raw.write_all(&[b'S', b'D', 1, 4, 0x7f, 0xff, 0xff, 0xff])
        .unwrap();
    let mut answer = Vec::new();
    raw.read_to_end(&mut answer).unwrap();
    let msg = Message::parse(&Frame::new_checked(&answer[..]).unwrap()).unwrap();
    assert!(
        matches!(
            msg,
            Message::Error {
                kind: ErrorKind::MessageTooLong,
                ..
            }
        ),
        "{msg:?}"
    );

    // Half a header, then gone; and a connection closed at once.
    let mut raw = UnixStream::connect(&daemon.socket).unwrap();
    raw.write_all(b"SD").unwrap();
    drop(raw);
    drop(UnixStream::connect(&daemon.socket).unwrap());

    // An unknown session is ESRCH, and the daemon answers on.
    let mut c = client(&daemon).await;
    let err = c
        .kill(Ash::from_raw(0xbad), libc::SIGTERM, false)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoSuchSession);
    assert_eq!(err.errno(), libc::ESRCH);
    let err = c.members(Ash::from_raw(0xbad)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoSuchSession);
    let fresh = c.new_session(None).await.unwrap();
    let err = c.kill(fresh, 1000, false).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidType, "{err}");
    assert!(!c.list().await.unwrap().is_empty());

    let log = daemon.log();
    assert!(log.contains("bad magic"), "the garbage was logged: {log}");
    assert!(log.contains("ending its connection"), "{log}");
}

#[tokio::test]
async fn sigterm_shuts_sessiond_down_gracefully_and_removes_its_socket() {
    let mut daemon = Sessiond::start(&[]);
    let mut c = client(&daemon).await;
    c.list().await.unwrap();
    let (status, stdout) = daemon.terminate();
    assert!(status.success(), "{status}: {}", daemon.log());
    assert!(
        stdout.contains("sessiond stopped: clients accepted 1"),
        "{stdout}"
    );
    assert!(!daemon.socket.exists());
}
