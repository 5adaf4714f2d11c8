//! One access list and unique daemon names for a cluster, on the real
//! three-node corosync testbed (as tests/cluster.rs): a list given to one
//! daemon refuses the clients of every daemon alike, private-group sends
//! included, stays in force when that daemon is gone and changes everywhere
//! when a daemon brings another; a daemon started with a name a running one holds is refused
//! with an error naming it and exits, and the first goes on serving.

use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

use conn_core::ErrorKind;
use conn_cpg::testbed::Cluster;
use conn_mailbox::{Cause, Event, Mailbox, MailboxError, Service};

mod common;
use common::cluster::{
    ClusterDaemon as Daemon, WITHIN, cluster, connect, mailboxd, next, ready, rt, start,
    wait_change, within,
};

/// Clients here run as root (uid 0): the list admits only uid 4242 to
/// `ops` and to private groups, and leaves `open` open.
const LIST: &str = "[groups.ops]\njoin = [4242]\nsend = [4242]\n\n[private]\nsend = [4242]\n";

fn refused(e: &MailboxError, what: &str, on: &str) -> bool {
    matches!(e, MailboxError::NotAllowed { op, group } if *op == what && group == on)
        && e.kind() == ErrorKind::PermissionDenied
}

/// Sends to `groups` and expects the refusal of the send to `refused_on`.
async fn send_refused(m: &mut Mailbox, groups: &[&str], refused_on: &str) {
    m.multicast(Service::AGREED, groups, 0, b"refused")
        .await
        .unwrap();
    // Membership messages of earlier joins may come first.
    let e = loop {
        match m.receive(within()).await {
            Ok(Event::Membership(_)) => continue,
            Ok(Event::Message(msg)) => panic!("{}: got {msg:?}", m.private_group()),
            Err(e) => break e,
        }
    };
    assert!(
        refused(&e, "send", refused_on),
        "{} sending to {groups:?}: {e}",
        m.private_group()
    );
}

/// n1 on node 1 with `--acl file`, serving: its list then is in force at
/// every daemon from that place of the stream on.
fn n1_with_list(cluster: &Cluster, file: &Path) -> Daemon {
    let mut n1 = Daemon::spawn_named(
        mailboxd(),
        cluster,
        0,
        "n1",
        &[OsStr::new("--acl"), file.as_os_str()],
    );
    ready(&mut n1, 0);
    n1
}

#[test]
fn a_list_given_to_one_daemon_refuses_the_clients_of_every_daemon() {
    let Some(cluster) = cluster() else { return };
    let file = std::env::temp_dir().join(format!("mbx-acl-{}.toml", std::process::id()));
    std::fs::write(&file, LIST).unwrap();
    // n2 and n3 have no list; before n1 comes, `ops` is open.
    let n2 = start(&cluster, 1);
    let n3 = start(&cluster, 2);
    rt().block_on(async {
        let mut c = connect(&n3, "c").await;
        c.join("ops", within()).await.unwrap();
        // n1 brings the list.
        let n1 = n1_with_list(&cluster, &file);
        let mut a = connect(&n1, "a").await;
        let mut b = connect(&n2, "b").await;
        for m in [&mut a, &mut b, &mut c] {
            let e = m.join("ops", within()).await.unwrap_err();
            assert!(refused(&e, "join", "ops"), "{}: {e}", m.private_group());
            m.join("open", within()).await.unwrap();
        }
        // c joined `ops` before the list: its membership stands, but it
        // may not send there now.
        send_refused(&mut c, &["ops"], "ops").await;
        // Private groups, across daemons and at one's own.
        send_refused(&mut b, &["#c#n3"], "#c#n3").await;
        send_refused(&mut c, &["#a#n1"], "#a#n1").await;
        send_refused(&mut a, &["open", "#b#n2"], "#b#n2").await;
        // What the list allows flows: c's message reaches a and b, and
        // nothing refused went anywhere before it.
        c.multicast(Service::AGREED, &["open"], 0, b"allowed")
            .await
            .unwrap();
        for m in [&mut a, &mut b] {
            loop {
                match next(m).await {
                    Event::Message(msg) => {
                        assert_eq!(msg.data(), b"allowed", "{}", m.private_group());
                        break;
                    }
                    Event::Membership(ms) => assert_eq!(ms.group, "open"),
                }
            }
        }
        assert!(n1.log_text().contains("access list in force"));

        // The list outlives the daemon that brought it: n1 killed, it
        // stays in force at n2 and n3.
        drop(n1);
        drop(a);
        wait_change(&mut b, "open", Cause::Network, "#a#n1").await;
        let e = b.join("ops", within()).await.unwrap_err();
        assert!(refused(&e, "join", "ops"), "{e}");
        // A change goes through the stream to every daemon: n1 again, with
        // an empty list (nothing restricted), opens `ops` at n2 too.
        std::fs::write(&file, "").unwrap();
        let _n1 = n1_with_list(&cluster, &file); // runs to the end
        b.join("ops", within()).await.unwrap();
        c.multicast(Service::AGREED, &["#b#n2"], 0, b"now allowed")
            .await
            .unwrap();
        loop {
            match next(&mut b).await {
                Event::Message(msg) => break assert_eq!(msg.data(), b"now allowed"),
                Event::Membership(_) => {}
            }
        }
    });
    let _ = std::fs::remove_file(&file);
    drop((n2, n3));
}

/// Waits until `d` exits (at most [`WITHIN`]); its exit status.
fn exit_of(d: &mut Daemon) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = d.child.try_wait().unwrap() {
            return status;
        }
        assert!(
            start.elapsed() < WITHIN,
            "the second n1 did not exit:\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_second_daemon_with_a_taken_name_is_refused_and_the_first_goes_on() {
    let Some(cluster) = cluster() else { return };
    let n1 = start(&cluster, 0);
    let n2 = start(&cluster, 1);
    rt().block_on(async {
        let mut a = connect(&n1, "a").await;
        a.join("g", within()).await.unwrap();
        wait_change(&mut a, "g", Cause::Join, "#a#n1").await;
        let mut b = connect(&n2, "b").await;
        b.join("g", within()).await.unwrap();
        for m in [&mut a, &mut b] {
            wait_change(m, "g", Cause::Join, "#b#n2").await;
        }

        // Node 3 starts a daemon under n1's name: refused at its state
        // exchange, it exits non-zero naming the name and the holder.
        let mut dup = Daemon::spawn_named(mailboxd(), &cluster, 2, "n1", &[]);
        let status = exit_of(&mut dup);
        let log = dup.log_text();
        assert!(!status.success(), "{status}:\n{log}");
        assert!(log.contains(r#"the daemon name "n1" is taken"#), "{log}");
        assert!(log.contains("on node 1 (pid"), "{log}");
        assert!(
            !dup.socket.exists() || std::os::unix::net::UnixStream::connect(&dup.socket).is_err(),
            "the refused daemon served clients"
        );

        // The first n1 and its client go on untouched: no membership
        // change, messages both ways, a new client admitted.
        for (from, to) in [(0, 1), (1, 0)] {
            let boxes = [&mut a, &mut b];
            let body = format!("after the refusal, from {from}");
            boxes[from]
                .multicast(Service::AGREED, &["g"], 0, body.as_bytes())
                .await
                .unwrap();
            for i in [from, to] {
                match next(boxes[i]).await {
                    Event::Message(msg) => assert_eq!(msg.data(), body.as_bytes()),
                    Event::Membership(ms) => panic!("{i}: a membership change {ms:?}"),
                }
            }
        }
        let mut d = connect(&n1, "d").await;
        d.join("g", within()).await.unwrap();
        for m in [&mut a, &mut b, &mut d] {
            let ms = wait_change(m, "g", Cause::Join, "#d#n1").await;
            assert_eq!(ms.members, ["#a#n1", "#b#n2", "#d#n1"]);
        }
        assert!(
            n1.log_text()
                .contains("a daemon with a name another holds refused"),
            "{}",
            n1.log_text()
        );
    });
}
