//! The access list against a client running under another uid (a real
//! process as uid 65534), and the socket's file mode: these need root to
//! change uid, and say so loudly and skip otherwise. Private groups under
//! the `[private]` rule, against this test's own uid and a TCP client with
//! none, run as anyone.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;

use common::*;
use conn_core::ErrorKind;
use conn_mailbox::{ConnectOptions, Event, Mailbox, MailboxError, Secret, Service};
use conn_test_support::{child, child_done, role, run_child};

const NOBODY: u32 = 65534;

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn as_nobody(test: &str, role: &str, socket: &std::path::Path) -> std::process::Command {
    let mut cmd = child(test, role);
    cmd.env("MBX_SOCKET", socket).uid(NOBODY).gid(NOBODY);
    cmd
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Sends to `groups` and expects the refusal of the send to `refused`.
async fn send_refused(m: &mut Mailbox, groups: &[&str], refused: &str) {
    m.multicast(Service::AGREED, groups, 0, b"refused")
        .await
        .unwrap();
    let e = m.receive(soon()).await.unwrap_err();
    assert!(
        matches!(&e, MailboxError::NotAllowed { op: "send", group } if group == refused),
        "{groups:?}: {e}"
    );
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
}

fn nobody_role() {
    rt().block_on(async {
        assert_eq!(rustix::process::getuid().as_raw(), NOBODY);
        let socket = std::env::var("MBX_SOCKET").unwrap();
        let (mut m, _) = Mailbox::connect(&socket, "nobody", 0, false, soon())
            .await
            .unwrap();
        let e = m.join("secret", soon()).await.unwrap_err();
        assert!(
            matches!(&e, MailboxError::NotAllowed { op: "join", group } if group == "secret"),
            "{e}"
        );
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        m.join("open", soon()).await.unwrap();
        // Refused sends come back to this client only.
        send_refused(&mut m, &["secret"], "secret").await;
        send_refused(&mut m, &["open", "announce"], "announce").await;
        // Private groups: only root may send to them.
        send_refused(&mut m, &["#root#local"], "#root#local").await;
        m.multicast(
            Service::AGREED | Service::SELF_DISCARD,
            &["open"],
            0,
            b"hello from nobody",
        )
        .await
        .unwrap();
        m.disconnect(soon()).await.unwrap();
    });
    child_done("nobody");
}

#[test]
fn acl_refuses_join_and_send_for_other_uids() {
    if role().as_deref() == Some("nobody") {
        return nobody_role();
    }
    if !is_root() {
        conn_test_support::skip(
            "acl_refuses_join_and_send_for_other_uids",
            format!("needs root to run a client as uid {NOBODY}"),
        );
        return;
    }
    let acl = std::env::temp_dir().join(format!("{}.toml", unique("mailbox-acl")));
    std::fs::write(
        &acl,
        "[groups.secret]\njoin = [0]\nsend = [0]\n\n[groups.announce]\nsend = [0]\n\n\
         [private]\nsend = [0]\n",
    )
    .unwrap();
    let d = Daemon::start(&["--acl", acl.to_str().unwrap()]);
    rt().block_on(async {
        let mut root = connect(&d, "root", false).await;
        for g in ["secret", "open", "announce"] {
            root.join(g, soon()).await.unwrap();
        }
        let socket = d.path().to_path_buf();
        tokio::task::spawn_blocking(move || {
            run_child(
                as_nobody(
                    "acl_refuses_join_and_send_for_other_uids",
                    "nobody",
                    &socket,
                ),
                "nobody",
            )
        })
        .await
        .unwrap();
        // Root may send to secret; what nobody tried there never arrived.
        root.multicast(Service::AGREED, &["secret"], 1, b"marker")
            .await
            .unwrap();
        let mut seen = Vec::new();
        loop {
            match next(&mut root).await {
                Event::Message(m) if m.msg_type() == 1 => break,
                Event::Message(m) => seen.push(m),
                Event::Membership(_) => {}
            }
        }
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(
            (seen[0].sender(), strings(seen[0].groups()), seen[0].data()),
            (
                "#nobody#local",
                vec!["open".to_string()],
                &b"hello from nobody"[..]
            )
        );
        root.disconnect(soon()).await.unwrap();
    });
    std::fs::remove_file(&acl).ok();
}

fn denied_role() {
    rt().block_on(async {
        let socket = std::env::var("MBX_SOCKET").unwrap();
        let e = Mailbox::connect(&socket, "denied", 0, false, soon())
            .await
            .unwrap_err();
        assert!(
            matches!(
                e.kind(),
                ErrorKind::WrongContext | ErrorKind::PermissionDenied
            ),
            "{e}"
        );
    });
    child_done("denied");
}

#[test]
fn socket_mode_is_configurable() {
    if role().as_deref() == Some("denied") {
        return denied_role();
    }
    let d = Daemon::start(&["--mode", "600"]);
    let mode = std::fs::metadata(d.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    if !is_root() {
        conn_test_support::skip(
            "socket_mode_is_configurable (the connect as another uid)",
            format!("needs root to connect as uid {NOBODY}"),
        );
        return;
    }
    run_child(
        as_nobody("socket_mode_is_configurable", "denied", d.path()),
        "denied",
    );
}

/// Sends a marker from `from` to `to`'s private group and returns the
/// messages `to` received before it.
async fn before_marker(from: &mut Mailbox, to: &mut Mailbox) -> Vec<String> {
    let target = to.private_group().to_owned();
    from.multicast(Service::AGREED, &[target.as_str()], 1, b"marker")
        .await
        .unwrap();
    let mut seen = Vec::new();
    loop {
        match next(to).await {
            Event::Message(m) if m.msg_type() == 1 => return seen,
            Event::Message(m) => seen.push(format!(
                "{} from {}",
                String::from_utf8_lossy(m.data()),
                m.sender()
            )),
            Event::Membership(_) => {}
        }
    }
}

#[tokio::test]
async fn private_group_sends_follow_the_private_rule_and_a_refused_one_reaches_nobody() {
    let me = rustix::process::geteuid().as_raw();
    let acl = conn_test_support::TempFile::new(
        "mailbox-private-acl",
        format!("[private]\nsend = [{me}]\n"),
        0o600,
    );
    let secret =
        conn_test_support::TempFile::new("mailbox-acl-secret", "sixteen bytes or more", 0o600);
    let d = Daemon::start(&[
        "--acl",
        acl.arg(),
        "--tcp",
        "127.0.0.1:0",
        "--secret",
        secret.arg(),
    ]);
    let addr = d.tcp_addr();
    let mut alice = connect(&d, "alice", false).await;
    let mut bob = connect(&d, "bob", true).await;
    bob.join("open", soon()).await.unwrap();

    // A listed uid may unicast.
    alice
        .multicast(Service::AGREED, &["#bob#local"], 0, b"hi bob")
        .await
        .unwrap();
    assert_eq!(
        before_marker(&mut alice, &mut bob).await,
        ["hi bob from #alice#local"]
    );

    // A TCP client has no uid: refused, alone or with an open group beside.
    let options = ConnectOptions::new().secret(Secret::new(*b"sixteen bytes or more").unwrap());
    let (mut remote, _) = Mailbox::connect_with(
        format!("tcp://{addr}"),
        "remote",
        0,
        false,
        &options,
        soon(),
    )
    .await
    .unwrap();
    send_refused(&mut remote, &["#bob#local"], "#bob#local").await;
    send_refused(&mut remote, &["open", "#bob#local"], "#bob#local").await;
    // The open group alone is still open to it.
    remote
        .multicast(Service::AGREED, &["open"], 0, b"open to all")
        .await
        .unwrap();
    // Nothing refused arrived: only the open-group message before the marker.
    assert_eq!(
        before_marker(&mut alice, &mut bob).await,
        ["open to all from #remote#local"]
    );
    remote.disconnect(soon()).await.unwrap();
    alice.disconnect(soon()).await.unwrap();
    bob.disconnect(soon()).await.unwrap();
}
