//! CpgGroup against a real three-node corosync cluster (testbed: network
//! namespaces, a bridge, Debian's corosync): one agreed order for concurrent
//! senders on every node, membership changes in the same place of that
//! order, and the reasons CPG gives for a leave, a cut link and a killed
//! node.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use conn_core::ErrorKind;
use conn_cpg::testbed::{self, Cluster};
use conn_cpg::{CpgGroup, Event, Member, Reason};

const WITHIN: Duration = Duration::from_secs(60);

/// The testbed, or a loud skip where it cannot run (CI installs corosync
/// and runs as root, so there it runs).
fn cluster(n: usize) -> Option<Cluster> {
    if let Some(why) = testbed::unavailable() {
        conn_test_support::skip(
            "conn-cpg cluster tests",
            format!("the corosync testbed {why}"),
        );
        return None;
    }
    let cluster = Cluster::start(n).expect("start the testbed");
    if let Err(e) = cluster.wait_until_formed(WITHIN) {
        panic!("{e}\nnode 1 logged:\n{}", cluster.log(0));
    }
    Some(cluster)
}

/// Runs `body` with a current-thread runtime on a thread inside `netns`.
fn on_node<T: Send + 'static>(
    netns: &str,
    body: impl AsyncFnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let netns = netns.to_owned();
    std::thread::spawn(move || {
        testbed::enter_netns(&netns).unwrap();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(body())
    })
}

/// Events until a membership of `n` members arrives.
async fn until_members(group: &mut CpgGroup, n: usize) {
    tokio::time::timeout(WITHIN, async {
        loop {
            if let Event::Membership(change) = group.next().await.unwrap()
                && change.members.len() == n
            {
                return;
            }
        }
    })
    .await
    .expect("the group did not reach its members in time");
}

#[test]
fn concurrent_senders_on_three_nodes_see_one_order_and_every_membership_at_the_same_place() {
    let Some(cluster) = cluster(3) else { return };
    let group = format!("{}-order", cluster.name());
    let ready = Arc::new(Barrier::new(3));
    const EACH: usize = 200;
    let nodes: Vec<_> = (0..3)
        .map(|i| {
            let (group, ready) = (group.clone(), ready.clone());
            on_node(cluster.node(i).netns(), async move || {
                let mut g = CpgGroup::join(&group).unwrap();
                until_members(&mut g, 3).await;
                ready.wait();
                for k in 0..EACH {
                    g.send(format!("{i}:{k}").as_bytes()).await.unwrap();
                }
                // Every message, in the order delivered here.
                let mut seen = Vec::new();
                while seen.len() < 3 * EACH {
                    match tokio::time::timeout(WITHIN, g.next())
                        .await
                        .unwrap()
                        .unwrap()
                    {
                        Event::Message { from, bytes } => {
                            seen.push((from, String::from_utf8(bytes).unwrap()))
                        }
                        Event::Membership(change) => panic!("unexpected {change:?}"),
                    }
                }
                seen
            })
        })
        .collect();
    let orders: Vec<Vec<(Member, String)>> = nodes.into_iter().map(|n| n.join().unwrap()).collect();
    assert_eq!(orders[0], orders[1], "nodes 1 and 2 disagree on the order");
    assert_eq!(orders[0], orders[2], "nodes 1 and 3 disagree on the order");
    // Each sender's messages in its own order (FIFO within the agreed order).
    for sender in 0..3 {
        let mine: Vec<usize> = orders[0]
            .iter()
            .filter_map(|(_, m)| m.strip_prefix(&format!("{sender}:")))
            .map(|k| k.parse().unwrap())
            .collect();
        assert_eq!(mine, (0..EACH).collect::<Vec<_>>(), "sender {sender}");
    }
    // How much the senders interleaved is corosync's scheduling, not a
    // promise (a fast machine may deliver each sender's burst whole): it
    // is printed, not asserted.
    let switches = orders[0].windows(2).filter(|w| w[0].0 != w[1].0).count();
    println!("{switches} switches between senders in the agreed order");
}

#[test]
fn a_leave_a_join_a_cut_link_and_a_killed_node_are_seen_with_cpgs_reasons() {
    use std::sync::mpsc::{Receiver, channel};
    let Some(mut cluster) = cluster(3) else {
        return;
    };
    let group = format!("{}-reasons", cluster.name());

    // Node 1 watches and reports every change as it comes.
    let (report, changes) = channel();
    let (stop_watching, watch_stopped) = channel::<()>();
    let watcher = {
        let group = group.clone();
        on_node(cluster.node(0).netns(), async move || {
            let mut g = CpgGroup::join(&group).unwrap();
            loop {
                tokio::select! {
                    event = g.next() => if let Event::Membership(change) = event.unwrap() {
                        report.send(change).unwrap();
                    },
                    () = tokio::time::sleep(Duration::from_millis(50)) => {
                        if watch_stopped.try_recv().is_ok() { return; }
                    }
                }
            }
        })
    };
    let next_change = |changes: &Receiver<conn_cpg::Membership>| {
        changes
            .recv_timeout(WITHIN)
            .expect("the watcher saw no change in time")
    };
    let until_size = |changes: &Receiver<conn_cpg::Membership>, n: usize| loop {
        let change = next_change(changes);
        if change.members.len() == n {
            return change;
        }
    };

    // Node 2's member: joins, leaves when told, joins again, stays.
    let (tell2, told2) = channel::<()>();
    let (said2, heard2) = channel::<Member>();
    let member2 = {
        let group = group.clone();
        on_node(cluster.node(1).netns(), async move || {
            let g = CpgGroup::join(&group).unwrap();
            said2.send(g.me()).unwrap();
            told2.recv().unwrap();
            g.leave().unwrap();
            let again = CpgGroup::join(&group).unwrap();
            said2.send(again.me()).unwrap();
            let _ = told2.recv();
        })
    };
    // Node 3's member: stays until the end.
    let (tell3, told3) = channel::<()>();
    let member3 = {
        let group = group.clone();
        on_node(cluster.node(2).netns(), async move || {
            let g = CpgGroup::join(&group).unwrap();
            let me = g.me();
            let _ = told3.recv();
            me
        })
    };
    let m2 = heard2.recv().unwrap();
    until_size(&changes, 3);

    tell2.send(()).unwrap();
    let leave = next_change(&changes);
    assert_eq!(leave.left, vec![(m2, Reason::Leave)], "{leave:?}");
    let m2_again = heard2.recv().unwrap();
    let join = next_change(&changes);
    assert_eq!(join.joined, vec![(m2_again, Reason::Join)], "{join:?}");
    assert_eq!(join.members.len(), 3, "{join:?}");

    // Node 3 cut off: its member is lost with the node.
    cluster.cut(2).unwrap();
    let cut = next_change(&changes);
    assert_eq!(cut.left.len(), 1, "{cut:?}");
    assert_eq!(cut.left[0].0.node, 3, "{cut:?}");
    assert_eq!(cut.left[0].1, Reason::NodeDown, "{cut:?}");

    // Node 2's corosync killed outright: node down as well.
    cluster.kill(1);
    let killed = next_change(&changes);
    assert_eq!(
        killed.left,
        vec![(m2_again, Reason::NodeDown)],
        "{killed:?}"
    );
    assert_eq!(killed.members.len(), 1, "{killed:?}");

    stop_watching.send(()).unwrap();
    watcher.join().unwrap();
    drop((tell2, tell3));
    let _ = member2.join();
    let m3 = member3.join().unwrap();
    assert_eq!(cut.left[0].0, m3);
}

#[test]
fn joining_where_no_corosync_runs_is_connection_refused_and_says_so() {
    if let Some(why) = testbed::unavailable() {
        conn_test_support::skip(
            "conn-cpg cluster tests",
            format!("the corosync testbed {why}"),
        );
        return;
    }
    // A network namespace with no corosync in it.
    let ns = format!("ck-none-{}", std::process::id());
    assert!(
        std::process::Command::new("ip")
            .args(["netns", "add", &ns])
            .status()
            .unwrap()
            .success()
    );
    struct Del(String);
    impl Drop for Del {
        fn drop(&mut self) {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", &self.0])
                .status();
        }
    }
    let _del = Del(ns.clone());
    let err = on_node(&ns, async || CpgGroup::join("nobody-here").unwrap_err())
        .join()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    assert!(err.to_string().contains("is corosync running"), "{err}");
}
