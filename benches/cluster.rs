//! mailboxd across corosync (two clustered daemons on two nodes of a
//! three-node testbed) against raw CPG (conn-cpg, the same messages, the
//! same nodes), in the same run: messages/s from a sender on node 1 to a
//! receiver on node 2, and the round trip of a ping-pong between them
//! (p50/p99), 100 B and 10 KiB.
//!
//! Setup, identical for both: every client runs on the bench's one
//! current-thread runtime (the CPG handles are opened inside their node's
//! network namespace, then driven from here; the mailbox clients reach their
//! daemons' Unix sockets, and each `mailboxd --cluster corosync` runs in its
//! node's namespace). The sender keeps at most WINDOW messages in flight
//! beyond the receiver. Rounds alternate mailboxd and raw CPG; figures are
//! medians over rounds. Needs root and corosync (skips loudly otherwise).

mod common;

use std::cell::Cell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{Row, measuring, write_table};
use conn_core::Deadline;
use conn_cpg::testbed::{self, Cluster};
use conn_cpg::{CpgGroup, Event as CpgEvent};
use conn_mailbox::testbed::ClusterDaemon;
use conn_mailbox::{Event, Mailbox, Service};

const WINDOW: u64 = 256;

struct Settings {
    rounds: usize,
    messages: [u64; 2],
    pings: usize,
}

fn settings() -> Settings {
    if measuring() {
        Settings {
            rounds: 3,
            messages: [8000, 1500],
            pings: 1500,
        }
    } else {
        Settings {
            rounds: 1,
            messages: [200, 50],
            pings: 50,
        }
    }
}

const SIZES: [usize; 2] = [100, 10 * 1024];

/// The two clustered mailboxd of a bench run, gone with it.
type Daemons = Vec<ClusterDaemon>;

fn mailboxd() -> PathBuf {
    // target/<profile>/deps/cluster-HASH -> target/<profile>/mailboxd
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("mailboxd")
}

fn start_daemons(cluster: &Cluster) -> Daemons {
    (0..2)
        .map(|i| {
            let mut d = ClusterDaemon::spawn_in(&mailboxd(), cluster, i);
            if let Err(e) = d.wait_ready(Duration::from_secs(60)) {
                panic!("mailboxd on node {}: {e}", i + 1);
            }
            d
        })
        .collect()
}

/// Joins CPG group `name` through node `node`'s corosync, registered with
/// the calling runtime (the handle is opened on a thread inside the node's
/// namespace; its socket stays there).
fn cpg_on(cluster: &Cluster, node: usize, name: &str) -> CpgGroup {
    let netns = cluster.node(node).netns().to_owned();
    let name = name.to_owned();
    let rt = tokio::runtime::Handle::current();
    std::thread::scope(|s| {
        s.spawn(move || {
            testbed::enter_netns(&netns).unwrap();
            let _in_rt = rt.enter();
            CpgGroup::join(&name).unwrap()
        })
        .join()
        .unwrap()
    })
}

async fn until_two(g: &mut CpgGroup) {
    loop {
        if let CpgEvent::Membership(m) = g.next().await.unwrap()
            && m.members.len() == 2
        {
            return;
        }
    }
}

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(60))
}

async fn mailboxes(d: &Daemons, tag: &str) -> (Mailbox, Mailbox) {
    let (a, _) = Mailbox::connect(&d[0].socket, &format!("a{tag}"), 0, false, deadline())
        .await
        .unwrap();
    let (mut b, _) = Mailbox::connect(&d[1].socket, &format!("b{tag}"), 0, false, deadline())
        .await
        .unwrap();
    b.join("tp", deadline()).await.unwrap();
    (a, b)
}

/// Waits until message `sent` is at most `WINDOW` ahead of the `got`
/// received, so a throughput run measures delivery, not queueing.
async fn within_window(sent: u64, got: &Cell<u64>) {
    while sent - got.get() >= WINDOW {
        tokio::task::yield_now().await;
    }
}

/// Messages/s from `a` (node 1) to `b`'s group (node 2) through mailboxd.
async fn mbx_throughput(d: &Daemons, size: usize, n: u64) -> f64 {
    let (mut a, mut b) = mailboxes(d, "t").await;
    let got = Rc::new(Cell::new(0u64));
    let payload = vec![7u8; size];
    let start = Instant::now();
    let sender = async {
        for sent in 0..n {
            within_window(sent, &got).await;
            a.multicast(Service::AGREED, &["tp"], 0, &payload)
                .await
                .unwrap();
        }
    };
    let receiver = async {
        while got.get() < n {
            if let Event::Message(_) = b.receive(deadline()).await.unwrap() {
                got.set(got.get() + 1);
            }
        }
        start.elapsed()
    };
    let ((), took) = tokio::join!(sender, receiver);
    a.disconnect(deadline()).await.unwrap();
    b.disconnect(deadline()).await.unwrap();
    n as f64 / took.as_secs_f64()
}

/// Messages/s from a CPG member on node 1 to one on node 2.
async fn cpg_throughput(cluster: &Cluster, group: &str, size: usize, n: u64) -> f64 {
    let mut a = cpg_on(cluster, 0, group);
    let mut b = cpg_on(cluster, 1, group);
    until_two(&mut a).await;
    until_two(&mut b).await;
    let from = a.me();
    let got = Rc::new(Cell::new(0u64));
    let payload = vec![7u8; size];
    let start = Instant::now();
    let sender = async {
        for sent in 0..n {
            within_window(sent, &got).await;
            a.send(&payload).await.unwrap();
            // Our own copies come back too; take them in.
            while let Ok(Some(_)) = a.try_next() {}
        }
        a
    };
    let receiver = async {
        while got.get() < n {
            if let CpgEvent::Message { from: f, .. } = b.next().await.unwrap()
                && f == from
            {
                got.set(got.get() + 1);
            }
        }
        start.elapsed()
    };
    let (a, took) = tokio::join!(sender, receiver);
    drop(a);
    n as f64 / took.as_secs_f64()
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Ping-pong round trips (µs) through mailboxd: node 1 to node 2 and back,
/// as private-group unicasts.
async fn mbx_rtt(d: &Daemons, size: usize, pings: usize) -> Vec<f64> {
    let (mut a, _) = Mailbox::connect(&d[0].socket, "pa", 0, false, deadline())
        .await
        .unwrap();
    let (mut b, _) = Mailbox::connect(&d[1].socket, "pb", 0, false, deadline())
        .await
        .unwrap();
    let payload = vec![1u8; size];
    let mut rtts = Vec::with_capacity(pings);
    for _ in 0..pings {
        let t0 = Instant::now();
        a.multicast(Service::AGREED, &["#pb#n2"], 0, &payload)
            .await
            .unwrap();
        let Event::Message(m) = b.receive(deadline()).await.unwrap() else {
            panic!("ping")
        };
        b.multicast(Service::AGREED, &["#pa#n1"], 0, m.data())
            .await
            .unwrap();
        let Event::Message(_) = a.receive(deadline()).await.unwrap() else {
            panic!("pong")
        };
        rtts.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    a.disconnect(deadline()).await.unwrap();
    b.disconnect(deadline()).await.unwrap();
    rtts
}

/// The same ping-pong between two raw CPG members.
async fn cpg_rtt(cluster: &Cluster, group: &str, size: usize, pings: usize) -> Vec<f64> {
    let mut a = cpg_on(cluster, 0, group);
    let mut b = cpg_on(cluster, 1, group);
    until_two(&mut a).await;
    until_two(&mut b).await;
    let (ma, mb) = (a.me(), b.me());
    let payload = vec![1u8; size];
    let mut rtts = Vec::with_capacity(pings);
    for _ in 0..pings {
        let t0 = Instant::now();
        a.send(&payload).await.unwrap();
        loop {
            if let CpgEvent::Message { from, bytes } = b.next().await.unwrap()
                && from == ma
            {
                b.send(&bytes).await.unwrap();
                break;
            }
        }
        loop {
            if let CpgEvent::Message { from, .. } = a.next().await.unwrap()
                && from == mb
            {
                break;
            }
        }
        rtts.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    rtts
}

fn median(mut v: Vec<f64>) -> f64 {
    percentile(&mut v, 0.5)
}

fn main() {
    if let Some(why) = testbed::unavailable() {
        conn_test_support::skip("benches/cluster.rs", format!("the corosync testbed {why}"));
        return;
    }
    if !mailboxd().exists() {
        conn_test_support::skip(
            "benches/cluster.rs",
            format!(
                "no {} (cargo xtask bench cluster builds it)",
                mailboxd().display()
            ),
        );
        return;
    }
    let s = settings();
    let cluster = Cluster::start(3).expect("start the testbed");
    cluster
        .wait_until_formed(Duration::from_secs(60))
        .expect("the cluster formed");
    let daemons = start_daemons(&cluster);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    rt.block_on(async {
        let mut round = 0;
        for (i, size) in SIZES.into_iter().enumerate() {
            let (mut ours_tp, mut peer_tp) = (Vec::new(), Vec::new());
            let (mut ours_rtt, mut peer_rtt) = (Vec::new(), Vec::new());
            for _ in 0..s.rounds {
                round += 1;
                let g = format!("{}-raw{round}", cluster.name());
                ours_tp.push(mbx_throughput(&daemons, size, s.messages[i]).await);
                peer_tp.push(cpg_throughput(&cluster, &g, size, s.messages[i]).await);
                ours_rtt.extend(mbx_rtt(&daemons, size, s.pings).await);
                peer_rtt.extend(cpg_rtt(&cluster, &format!("{g}p"), size, s.pings).await);
            }
            let label = if size < 1024 { "100 B" } else { "10 KiB" };
            let (ours, peer) = (median(ours_tp), median(peer_tp));
            rows.push(Row {
                what: format!("{label}, node 1 -> node 2, messages/s"),
                ours,
                peer,
                unit: "msg/s",
                goal: ">= 0.8x raw CPG".into(),
                met: ours >= 0.8 * peer,
            });
            for (p, name) in [(0.5, "p50"), (0.99, "p99")] {
                let (ours, peer) = (percentile(&mut ours_rtt, p), percentile(&mut peer_rtt, p));
                rows.push(Row {
                    what: format!("{label}, ping-pong round trip {name}"),
                    ours,
                    peer,
                    unit: "µs",
                    goal: if name == "p99" {
                        "<= 1.5x raw CPG".into()
                    } else {
                        "(informative)".into()
                    },
                    met: name == "p50" || ours <= 1.5 * peer,
                });
            }
        }
    });
    drop(daemons);
    write_table(
        "cluster",
        "mailboxd across corosync vs raw CPG",
        "Two `mailboxd --cluster corosync` on nodes 1 and 2 of a three-node corosync testbed \
         (network namespaces on one machine, knet over veth), clients on one current-thread \
         runtime; the peer is raw CPG (conn-cpg over libcpg) between the same nodes, same \
         messages, same runtime, alternating rounds, medians. Throughput: one sender, one \
         receiver, at most 256 in flight. Round trip: one message there, one back (mailboxd: \
         private-group unicasts).",
        &rows,
    );
}
