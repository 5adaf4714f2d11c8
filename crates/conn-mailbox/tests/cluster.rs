//! `mailboxd --cluster corosync` on a real three-node corosync cluster (the
//! conn-cpg testbed: network namespaces, a bridge, Debian's corosync): one
//! daemon in each node's namespace, clients on every node. One total order
//! under concurrent senders everywhere, unicast across nodes, the same
//! membership and view id at every member, and Spread's causes for a cut
//! link (network, then each side sees the other side's members join), a SIGKILLed
//! daemon (network) and a gracefully stopped one (disconnect).

use conn_core::Deadline;
use conn_mailbox::{Cause, Event, Mailbox, Service};

mod common;
use common::cluster::{
    ClusterDaemon as Daemon, cluster, connect, mailboxd, next, ready, rt, start, wait_change,
    within,
};

/// Clients `a` on node 1, `b` on node 2, `c` on node 3, joined to `g` one
/// after another; returns them once each has seen the last join, checking
/// that all saw it alike: the same members and the same view id.
async fn three_members(daemons: &[Daemon]) -> Vec<Mailbox> {
    let mut boxes = Vec::new();
    for (d, name) in daemons.iter().zip(["a", "b", "c"]) {
        let mut m = connect(d, name).await;
        m.join("g", within()).await.unwrap();
        let me = m.private_group().to_owned();
        boxes.push(m);
        let mut seen = Vec::new();
        for m in &mut boxes {
            seen.push(wait_change(m, "g", Cause::Join, &me).await);
        }
        for s in &seen[1..] {
            assert_eq!(s, &seen[0], "members disagree on the join of {me}");
        }
    }
    boxes
}

/// Each mailbox sends `each` AGREED messages to `g` while all of them
/// send; returns what each received, in order.
async fn concurrent_senders(boxes: &mut [Mailbox], each: usize) -> Vec<Vec<String>> {
    let n = boxes.len();
    futures::future::join_all(boxes.iter_mut().enumerate().map(|(i, m)| async move {
        let mut seen = Vec::new();
        let mut sent = 0;
        // Send and receive interleaved, so no queue fills while all send.
        while seen.len() < n * each {
            if sent < each {
                let body = format!("{i}:{sent}");
                m.multicast(Service::AGREED, &["g"], 0, body.as_bytes())
                    .await
                    .unwrap();
                sent += 1;
                match m.receive(Deadline::NOW).await {
                    Ok(Event::Message(msg)) => {
                        seen.push(String::from_utf8(msg.data().to_vec()).unwrap())
                    }
                    Ok(Event::Membership(ms)) => panic!("unexpected {ms:?}"),
                    Err(_) => {} // nothing yet
                }
                continue;
            }
            match next(m).await {
                Event::Message(msg) => seen.push(String::from_utf8(msg.data().to_vec()).unwrap()),
                Event::Membership(ms) => panic!("unexpected {ms:?}"),
            }
        }
        seen
    }))
    .await
}

#[test]
fn three_nodes_share_one_order_one_view_and_unicast() {
    let Some(cluster) = cluster() else { return };
    let daemons: Vec<Daemon> = (0..3).map(|i| start(&cluster, i)).collect();
    rt().block_on(async {
        let mut boxes = three_members(&daemons).await;

        // Concurrent senders on all three nodes: one order everywhere.
        const EACH: usize = 200;
        let orders = concurrent_senders(&mut boxes, EACH).await;
        assert_eq!(orders[0], orders[1], "nodes 1 and 2 disagree on the order");
        assert_eq!(orders[0], orders[2], "nodes 1 and 3 disagree on the order");
        for sender in 0..3 {
            let mine: Vec<usize> = orders[0]
                .iter()
                .filter_map(|m| m.strip_prefix(&format!("{sender}:")))
                .map(|k| k.parse().unwrap())
                .collect();
            assert_eq!(
                mine,
                (0..EACH).collect::<Vec<_>>(),
                "FIFO of sender {sender}"
            );
        }
        // (How much the senders interleave is up to corosync and to each
        // daemon's batching; one order everywhere is the property.)

        // Private-group unicast across nodes: only the addressee gets it,
        // in its place in the order.
        boxes[0]
            .multicast(Service::RELIABLE, &["#c#n3"], 5, b"for c only")
            .await
            .unwrap();
        boxes[0]
            .multicast(Service::AGREED, &["g"], 6, b"for all")
            .await
            .unwrap();
        let Event::Message(to_c) = next(&mut boxes[2]).await else {
            panic!("c: expected the unicast")
        };
        assert_eq!((to_c.data(), to_c.sender()), (&b"for c only"[..], "#a#n1"));
        for m in &mut boxes {
            let Event::Message(all) = next(m).await else {
                panic!("expected the group message")
            };
            assert_eq!(
                all.data(),
                b"for all",
                "{} got the unicast",
                m.private_group()
            );
        }

        // A leave is seen alike everywhere, with the members on all nodes.
        boxes[1].leave("g", within()).await.unwrap();
        let mut seen = Vec::new();
        for m in &mut boxes {
            seen.push(wait_change(m, "g", Cause::Leave, "#b#n2").await);
        }
        assert!(seen[1].is_self_leave());
        assert_eq!(seen[0], seen[2]);
        assert_eq!(seen[0].members, ["#a#n1", "#c#n3"]);
        assert_eq!(seen[0].view, seen[1].view);

        // Messages sent before a member goes arrive before its going,
        // everywhere.
        let mut c = boxes.pop().unwrap();
        for k in 0..50 {
            c.multicast(Service::FIFO, &["g"], 0, format!("last {k}").as_bytes())
                .await
                .unwrap();
        }
        c.disconnect(within()).await.unwrap();
        let a = &mut boxes[0];
        for k in 0..50 {
            let Event::Message(m) = next(a).await else {
                panic!("a: message {k} of c's last 50 came after its disconnect")
            };
            assert_eq!(m.data(), format!("last {k}").as_bytes());
        }
        let Event::Membership(gone) = next(a).await else {
            panic!("a: expected c's disconnect")
        };
        assert_eq!(
            (
                gone.cause,
                gone.changed.as_str(),
                gone.members
                    .iter()
                    .map(|m| m.to_string())
                    .collect::<Vec<_>>()
            ),
            (Cause::Disconnect, "#c#n3", vec!["#a#n1".to_owned()])
        );
    });
}

#[test]
fn a_cut_link_is_cause_network_and_on_the_heal_each_side_sees_the_other_join() {
    let Some(cluster) = cluster() else { return };
    let daemons: Vec<Daemon> = (0..3).map(|i| start(&cluster, i)).collect();
    rt().block_on(async {
        let mut boxes = three_members(&daemons).await;
        cluster.cut(2).unwrap();
        // Node 3's member is lost to the others, theirs to it.
        for m in &mut boxes[..2] {
            let ms = wait_change(m, "g", Cause::Network, "#c#n3").await;
            assert_eq!(ms.members, ["#a#n1", "#b#n2"]);
        }
        // Both at once: one message, naming the first of them.
        let ms = wait_change(&mut boxes[2], "g", Cause::Network, "#a#n1").await;
        assert_eq!(ms.members, ["#c#n3"]);
        // The majority goes on.
        boxes[1]
            .multicast(Service::AGREED, &["g"], 0, b"still here")
            .await
            .unwrap();
        for m in &mut boxes[..2] {
            let Event::Message(msg) = next(m).await else {
                panic!("expected a message")
            };
            assert_eq!(msg.data(), b"still here");
        }
        // Healed: each side sees the other side's members join (node 3's
        // member sees a, then b), and all end in the same view.
        cluster.heal(2).unwrap();
        let mut seen = Vec::new();
        for m in &mut boxes[..2] {
            seen.push(wait_change(m, "g", Cause::Join, "#c#n3").await);
        }
        let a = wait_change(&mut boxes[2], "g", Cause::Join, "#a#n1").await;
        assert_eq!(a.members, ["#a#n1", "#c#n3"]);
        seen.push(wait_change(&mut boxes[2], "g", Cause::Join, "#b#n2").await);
        assert_eq!(seen[0], seen[1]);
        assert_eq!(
            (&seen[2].members, seen[2].view),
            (&seen[0].members, seen[0].view)
        );
        assert_eq!(seen[0].members, ["#a#n1", "#b#n2", "#c#n3"]);
        // And the three share one order again.
        let orders = concurrent_senders(&mut boxes, 50).await;
        assert_eq!(orders[0], orders[1]);
        assert_eq!(orders[0], orders[2]);
    });
}

#[test]
fn a_killed_daemon_is_cause_network_a_new_one_takes_the_state_and_a_stopped_one_is_disconnect() {
    let Some(cluster) = cluster() else { return };
    let mut daemons: Vec<Daemon> = (0..3).map(|i| start(&cluster, i)).collect();
    rt().block_on(async {
        let mut boxes = three_members(&daemons).await;
        daemons[2].signal(rustix::process::Signal::KILL);
        for m in &mut boxes[..2] {
            let ms = wait_change(m, "g", Cause::Network, "#c#n3").await;
            assert_eq!(ms.members, ["#a#n1", "#b#n2"]);
        }
        // A fresh daemon on node 3 takes the cluster's state: its client
        // joins a group whose members live on the other nodes.
        daemons[2] = start(&cluster, 2);
        let mut d = connect(&daemons[2], "d").await;
        d.join("g", within()).await.unwrap();
        let mut seen = Vec::new();
        for m in boxes[..2].iter_mut().chain([&mut d]) {
            seen.push(wait_change(m, "g", Cause::Join, "#d#n3").await);
        }
        assert_eq!(seen[0], seen[1]);
        assert_eq!(seen[0], seen[2]);
        assert_eq!(seen[0].members, ["#a#n1", "#b#n2", "#d#n3"]);

        daemons[1].signal(rustix::process::Signal::TERM);
        for m in [&mut boxes[0], &mut d] {
            let ms = wait_change(m, "g", Cause::Disconnect, "#b#n2").await;
            assert_eq!(ms.members, ["#a#n1", "#d#n3"]);
        }
        assert!(daemons[1].child.wait().unwrap().success(), "graceful exit");
    });
}

#[test]
fn daemons_started_at_once_agree_on_state_views_and_order() {
    let Some(cluster) = cluster() else { return };
    // All three exchange state while the others still join.
    let mut daemons: Vec<Daemon> = (0..3)
        .map(|i| Daemon::spawn_in(mailboxd(), &cluster, i))
        .collect();
    for (i, d) in daemons.iter_mut().enumerate() {
        ready(d, i);
    }
    rt().block_on(async {
        let mut boxes = three_members(&daemons).await;
        let orders = concurrent_senders(&mut boxes, 50).await;
        assert_eq!(orders[0], orders[1]);
        assert_eq!(orders[0], orders[2]);
    });
}

/// The next message's payload; panics on a membership message.
async fn next_data(m: &mut Mailbox) -> String {
    match next(m).await {
        Event::Message(msg) => String::from_utf8(msg.data().to_vec()).unwrap(),
        Event::Membership(ms) => panic!("{}: unexpected {ms:?}", m.private_group()),
    }
}

/// Nothing arrives at `m` for `quiet`.
async fn nothing_for(m: &mut Mailbox, quiet: std::time::Duration) {
    if let Ok(ev) = m.receive(Deadline::after(quiet)).await {
        panic!("{}: got {ev:?} while it should wait", m.private_group());
    }
}

#[test]
fn safe_waits_for_every_daemon_a_stopped_one_holds_it_and_its_removal_releases_it() {
    use rustix::process::Signal;
    use std::time::Duration;
    let Some(cluster) = cluster() else { return };
    let daemons: Vec<Daemon> = (0..3).map(|i| start(&cluster, i)).collect();
    rt().block_on(async {
        let mut boxes = three_members(&daemons).await;
        // SAFE from every node: delivered at all three, in one order.
        for (i, m) in boxes.iter_mut().enumerate() {
            m.multicast(Service::SAFE, &["g"], 0, format!("safe {i}").as_bytes())
                .await
                .unwrap();
        }
        let mut orders = Vec::new();
        for m in &mut boxes {
            let mut got = Vec::new();
            for _ in 0..3 {
                got.push(next_data(m).await);
            }
            orders.push(got);
        }
        assert_eq!(orders[0], orders[1]);
        assert_eq!(orders[0], orders[2]);

        // n3's daemon stopped (CPG keeps it): a's SAFE message, and the
        // AGREED one after it, wait at n1 and n2 until n3 resumes.
        daemons[2].signal(Signal::STOP);
        boxes[0]
            .multicast(Service::SAFE, &["g"], 0, b"held")
            .await
            .unwrap();
        boxes[0]
            .multicast(Service::AGREED, &["g"], 0, b"after")
            .await
            .unwrap();
        for m in &mut boxes[..2] {
            nothing_for(m, Duration::from_secs(3)).await;
        }
        daemons[2].signal(Signal::CONT);
        for m in &mut boxes {
            assert_eq!(next_data(m).await, "held");
            assert_eq!(next_data(m).await, "after");
        }

        // Stopped again, then killed: when CPG removes it, the message
        // that waited for it is delivered in the transitional
        // configuration, announced first, before n3's clients go.
        daemons[2].signal(Signal::STOP);
        boxes[1]
            .multicast(Service::SAFE, &["g"], 0, b"before the loss")
            .await
            .unwrap();
        for m in &mut boxes[..2] {
            nothing_for(m, Duration::from_secs(2)).await;
        }
        daemons[2].signal(Signal::KILL);
        for m in &mut boxes[..2] {
            // The transitional membership, the message, the regular view.
            let Event::Membership(t) = next(m).await else {
                panic!("expected the transitional membership")
            };
            assert!(t.is_transitional(), "{t:?}");
            assert_eq!(t.members, ["#a#n1", "#b#n2"]);
            assert_eq!(next_data(m).await, "before the loss");
            let Event::Membership(ms) = next(m).await else {
                panic!("expected the regular view")
            };
            assert_eq!((ms.cause, ms.changed.as_str()), (Cause::Network, "#c#n3"));
            assert_eq!(ms.members, ["#a#n1", "#b#n2"]);
            assert_eq!(ms.view, t.view + 1);
        }
        // Two daemons: SAFE goes on.
        boxes[0]
            .multicast(Service::SAFE, &["g"], 0, b"two")
            .await
            .unwrap();
        for m in &mut boxes[..2] {
            assert_eq!(next_data(m).await, "two");
        }
    });
}
