//! `sessiond --cluster corosync` on a real three-node corosync cluster
//! (conn-cpg's testbed: network namespaces, a bridge, Debian's corosync):
//! the array `cluster` is every node; a kill reaches each node's members
//! and reports each node; a node cut off, and a sessiond that leaves the
//! group while the call waits for it, are named.

mod common;

use std::time::Duration;

use common::sessiond::{Sessiond, sessionctl};
use common::{PATIENCE, alive, eventually};
use conn_core::{Deadline, ErrorKind};
use conn_cpg::testbed::{self, Cluster};
use signal_session::client::{ArrayReport, Client, signal_array};
use signal_session::wire::NodeOutcome;
use signal_session::{Ash, Outcome};

/// The testbed with a clustered sessiond on each node, or a loud skip
/// where it cannot run (CI installs corosync and runs as root). Fields
/// drop in order: the daemons (SIGTERM, then wait) before the cluster.
struct Testbed {
    daemons: Vec<Sessiond>,
    /// Processes the test spawned through the daemons; killed at the end
    /// whatever happened (a daemon's end does not end its sessions).
    pids: Vec<u32>,
    cluster: Cluster,
}

impl Drop for Testbed {
    fn drop(&mut self) {
        for pid in self.pids.drain(..) {
            // SAFETY: kill reads only its integer arguments.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        for d in &mut self.daemons {
            // A daemon stopped on purpose would never take its SIGTERM.
            if let Some(child) = &d.child {
                // SAFETY: as above.
                unsafe { libc::kill(child.id() as i32, libc::SIGCONT) };
            }
        }
        self.daemons.clear();
    }
}

fn testbed() -> Option<Testbed> {
    if let Some(why) = testbed::unavailable() {
        conn_test_support::skip(
            "signal-session cluster tests",
            format!("the corosync testbed {why}"),
        );
        return None;
    }
    let cluster = Cluster::start(3).expect("start the testbed");
    if let Err(e) = cluster.wait_until_formed(Duration::from_secs(60)) {
        panic!("{e}\nnode 1 logged:\n{}", cluster.log(0));
    }
    let mut bed = Testbed {
        daemons: Vec::new(),
        pids: Vec::new(),
        cluster,
    };
    for i in 0..3 {
        let sessiond = bed.cluster.node(i).command(env!("CARGO_BIN_EXE_sessiond"));
        bed.daemons
            .push(Sessiond::start_with(sessiond, &["--cluster", "corosync"]));
    }
    Some(bed)
}

async fn client(daemon: &Sessiond) -> Client {
    Client::connect(&daemon.socket, Deadline::after(Duration::from_secs(10)))
        .await
        .unwrap()
}

/// A kill through node `from`'s sessiond to the whole cluster.
async fn kill_cluster(bed: &Testbed, from: usize, ash: Ash, sig: i32) -> ArrayReport {
    signal_array(
        Some(&bed.daemons[from].socket),
        "cluster",
        ash,
        sig,
        Deadline::after(PATIENCE),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\nnode {from} logged:\n{}", bed.daemons[from].log()))
}

/// Waits until every node's sessiond is in the group: a check (signal 0)
/// of a session no node has answers "no such session" from all three.
async fn until_all_in_the_group(bed: &Testbed) {
    let nobody = Ash::from_raw(0x5e55_0000_dead_0001);
    let start = tokio::time::Instant::now();
    loop {
        let report = kill_cluster(bed, 0, nobody, 0).await;
        let refused = report
            .nodes
            .iter()
            .filter(|n| {
                matches!(
                    n.outcome,
                    NodeOutcome::Refused {
                        kind: ErrorKind::NoSuchSession,
                        ..
                    }
                )
            })
            .count();
        if refused == 3 {
            let names: Vec<&str> = report.nodes.iter().map(|n| n.name.as_str()).collect();
            assert_eq!(names, ["n1", "n2", "n3"], "{report}");
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "the sessionds did not all join the group:\n{report}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One array session: the same handle on every node, a sleep in each.
async fn sleepers(bed: &mut Testbed) -> (Ash, Vec<u32>) {
    let mut ash = None;
    let mut pids = Vec::new();
    for d in &bed.daemons {
        let mut c = client(d).await;
        let made = c.new_session(ash).await.unwrap();
        ash = Some(made);
        pids.push(c.spawn(made, &["sleep", "1000"]).await.unwrap());
    }
    bed.pids.extend(&pids);
    (ash.unwrap(), pids)
}

fn answered_pids(report: &ArrayReport) -> Vec<(&str, Vec<u32>)> {
    report
        .answered()
        .map(|(name, r)| {
            assert_eq!(r.count(Outcome::Signalled), 1, "{report}");
            (name, r.pids())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_array_over_the_cluster_reaches_every_node_and_names_the_one_cut_off() {
    let Some(mut bed) = testbed() else { return };
    until_all_in_the_group(&bed).await;

    // The CLI, from node 2: every node's member signalled, each reported.
    let (ash, pids) = sleepers(&mut bed).await;
    let out = sessionctl(
        &bed.daemons[1].socket,
        None,
        &["kill", &ash.to_string(), "-s", "TERM", "--array", "cluster"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (i, pid) in pids.iter().enumerate() {
        assert!(
            text.contains(&format!("node n{} (cpg:node {} pid", i + 1, i + 1)),
            "{text}"
        );
        assert!(
            text.contains(&format!("process {pid}: signalled")),
            "{text}"
        );
    }
    for pid in &pids {
        let pid = *pid;
        eventually("every node's sleep has ended", || !alive(pid)).await;
    }

    // Node 3 cut off: nodes 1 and 2 answer, node 3 is named as silent
    // (left during the call, or already out of the group when the request
    // was delivered: which one depends on when corosync notices).
    let (ash, pids) = sleepers(&mut bed).await;
    bed.cluster.cut(2).unwrap();
    let report = kill_cluster(&bed, 0, ash, libc::SIGTERM).await;
    assert_eq!(
        answered_pids(&report),
        [("n1", vec![pids[0]]), ("n2", vec![pids[1]])],
        "{report}"
    );
    assert_eq!(report.silent(), ["n3"], "{report}");
    assert!(alive(pids[2]), "node 3's member was signalled: {report}");
    // Node 3's sessiond is cut off too: its own kill reaches only itself.
    let alone = kill_cluster(&bed, 2, ash, libc::SIGTERM).await;
    assert_eq!(answered_pids(&alone), [("n3", vec![pids[2]])], "{alone}");
    assert_eq!(alone.silent(), ["n1", "n2"], "{alone}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sessiond_that_leaves_the_group_during_the_call_is_reported_left_and_sessions_are_per_node()
 {
    let Some(mut bed) = testbed() else { return };
    until_all_in_the_group(&bed).await;

    // A session on nodes 1 and 3 only: node 2 answers "no such session".
    let mut on1 = client(&bed.daemons[0]).await;
    let ash = on1.new_session(None).await.unwrap();
    let p1 = on1.spawn(ash, &["sleep", "1000"]).await.unwrap();
    let mut on3 = client(&bed.daemons[2]).await;
    on3.new_session(Some(ash)).await.unwrap();
    let p3 = on3.spawn(ash, &["sleep", "1000"]).await.unwrap();
    bed.pids.extend([p1, p3]);
    let report = kill_cluster(&bed, 0, ash, 0).await;
    assert_eq!(
        report
            .answered()
            .map(|(name, r)| (name, r.count(Outcome::Checked)))
            .collect::<Vec<_>>(),
        [("n1", 1), ("n3", 1)],
        "{report}"
    );
    assert!(
        matches!(
            report.nodes[1].outcome,
            NodeOutcome::Refused {
                kind: ErrorKind::NoSuchSession,
                ..
            }
        ),
        "{report}"
    );

    // Node 3's sessiond stopped: it takes the request but cannot answer.
    let stopped = bed.daemons[2].child.as_ref().unwrap().id();
    // SAFETY: kill reads only its integer arguments.
    unsafe { libc::kill(stopped as i32, libc::SIGSTOP) };
    // Still a member, silent: the deadline ends the wait for it.
    let report = signal_array(
        Some(&bed.daemons[0].socket),
        "cluster",
        ash,
        0,
        Deadline::after(Duration::from_secs(2)),
    )
    .await
    .unwrap();
    assert_eq!(report.silent(), ["n3"], "{report}");
    assert!(
        matches!(
            report.nodes[2].outcome,
            NodeOutcome::NoAnswer {
                kind: ErrorKind::TimedOut,
                ..
            }
        ),
        "{report}"
    );
    assert_eq!(report.nodes[2].addr, format!("cpg:node 3 pid {stopped}"));
    assert_eq!(report.answered().count(), 1, "{report}");
    let call = tokio::spawn({
        let socket = bed.daemons[0].socket.clone();
        async move {
            signal_array(
                Some(&socket),
                "cluster",
                ash,
                libc::SIGTERM,
                Deadline::after(PATIENCE * 2),
            )
            .await
        }
    });
    // Node 1 has served it, so it was delivered while node 3's sessiond
    // was still a member: the call now waits for node 3.
    eventually("node 1's member is signalled", || !alive(p1)).await;
    bed.daemons[2].kill(); // SIGKILL: it leaves the group, process down
    let report = call.await.unwrap().unwrap();
    assert_eq!(report.left(), ["n3"], "{report}");
    let NodeOutcome::Left { message } = &report.nodes[2].outcome else {
        unreachable!()
    };
    assert!(message.contains("process down"), "{report}");
    assert_eq!(
        report.answered().map(|(n, _)| n).collect::<Vec<_>>(),
        ["n1"],
        "{report}"
    );
    assert!(alive(p3), "node 3's member was signalled: {report}");
}

#[test]
fn a_clustered_sessiond_where_no_corosync_runs_fails_to_start_and_says_why() {
    if let Some(why) = testbed::unavailable() {
        conn_test_support::skip(
            "signal-session cluster tests",
            format!("the corosync testbed {why}"),
        );
        return;
    }
    // A network namespace of our own with no corosync in it.
    struct Netns(String);
    impl Drop for Netns {
        fn drop(&mut self) {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", &self.0])
                .status();
        }
    }
    let ns = Netns(format!("ck-sess-none-{}", std::process::id()));
    assert!(
        std::process::Command::new("ip")
            .args(["netns", "add", &ns.0])
            .status()
            .unwrap()
            .success()
    );
    let socket = common::sessiond::unique("nocorosync.sock");
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &ns.0, env!("CARGO_BIN_EXE_sessiond")])
        .arg("--socket")
        .arg(&socket)
        .args(["--cluster", "corosync"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cpg://connkit-sessiond"), "{err}");
    assert!(err.contains("is corosync running"), "{err}");
    // It failed before taking its socket.
    assert!(!socket.exists());
}
