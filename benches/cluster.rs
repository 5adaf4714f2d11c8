//! mailboxd across corosync (two clustered daemons on two nodes of a
//! three-node testbed) against raw CPG (conn-cpg, the same messages, the
//! same nodes), in the same run: messages/s from a sender on node 1 to a
//! receiver on node 2, and the round trip of a ping-pong between them
//! (p50/p99), 100 B and 10 KiB. Those mailboxd rows send AGREED; the SAFE
//! rows then measure the same two things sent at SAFE against AGREED (its
//! peer there): what delivering only once both daemons acknowledged a
//! message costs (docs/cluster.md, "SAFE across daemons"). In the ping-pong
//! both legs are sent at the service measured.
//!
//! Setup, identical for both: every client runs on the bench's one
//! current-thread runtime (the CPG handles are opened inside their node's
//! network namespace, then driven from here; the mailbox clients reach their
//! daemons' Unix sockets, and each `mailboxd --cluster corosync` runs in its
//! node's namespace). The sender keeps at most WINDOW messages in flight
//! beyond the receiver. Rounds alternate mailboxd AGREED, mailboxd SAFE and
//! raw CPG; messages/s are medians over rounds, p50/p99 are over every
//! round's pings. Needs root and corosync (skips loudly otherwise).

mod common;

use std::cell::Cell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
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

/// mailboxd's services measured: AGREED (against raw CPG), and SAFE
/// (against AGREED).
const SERVICES: [Service; 2] = [Service::AGREED, Service::SAFE];

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

/// A client name not given before in this run. A daemon may still hold
/// the name of a client that has just disconnected, so a run right after
/// another (AGREED, then SAFE) does not take its names again.
fn fresh(role: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("{role}{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A client on node 1 and one on node 2, each with its private group.
async fn pair(d: &Daemons) -> [(Mailbox, String); 2] {
    let a = Mailbox::connect(&d[0].socket, &fresh("a"), 0, false, deadline())
        .await
        .unwrap();
    let b = Mailbox::connect(&d[1].socket, &fresh("b"), 0, false, deadline())
        .await
        .unwrap();
    [a, b]
}

/// Waits until message `sent` is at most `WINDOW` ahead of the `got`
/// received, so a throughput run measures delivery, not queueing.
async fn within_window(sent: u64, got: &Cell<u64>) {
    while sent - got.get() >= WINDOW {
        tokio::task::yield_now().await;
    }
}

/// Messages/s from `a` (node 1) to `b`'s group (node 2) through mailboxd,
/// sent at `service`.
async fn mbx_throughput(d: &Daemons, service: Service, size: usize, n: u64) -> f64 {
    let [(mut a, _), (mut b, _)] = pair(d).await;
    b.join("tp", deadline()).await.unwrap();
    let got = Rc::new(Cell::new(0u64));
    let payload = vec![7u8; size];
    let start = Instant::now();
    let sender = async {
        for sent in 0..n {
            within_window(sent, &got).await;
            a.multicast(service, &["tp"], 0, &payload).await.unwrap();
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
/// as private-group unicasts, both sent at `service`.
async fn mbx_rtt(d: &Daemons, service: Service, size: usize, pings: usize) -> Vec<f64> {
    let [(mut a, to_a), (mut b, to_b)] = pair(d).await;
    let payload = vec![1u8; size];
    let mut rtts = Vec::with_capacity(pings);
    for _ in 0..pings {
        let t0 = Instant::now();
        a.multicast(service, &[to_b.as_str()], 0, &payload)
            .await
            .unwrap();
        let Event::Message(m) = b.receive(deadline()).await.unwrap() else {
            panic!("ping")
        };
        b.multicast(service, &[to_a.as_str()], 0, m.data())
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

/// What a set of rows compares connkit's figures with, and its goals.
struct Against {
    /// Put before each row's name ("" for mailboxd AGREED vs raw CPG).
    rows: &'static str,
    /// The peer, as the goals name it.
    peer: &'static str,
    /// Goal: messages/s at least this times the peer's.
    throughput: f64,
    /// Goal: round trip p99 at most this times the peer's.
    p99: f64,
}

/// One size's rows: messages/s (medians over rounds), then round trip p50
/// (informative) and p99 (over every round's pings).
fn compare(
    label: &str,
    against: &Against,
    tp: [Vec<f64>; 2],
    mut rtt: [Vec<f64>; 2],
) -> impl Iterator<Item = Row> {
    let [ours, peer] = tp.map(median);
    let throughput = Row {
        what: format!("{label}, {}node 1 -> node 2, messages/s", against.rows),
        ours,
        peer,
        unit: "msg/s",
        goal: format!(">= {}x {}", against.throughput, against.peer),
        met: ours >= against.throughput * peer,
    };
    let latency = [(0.5, "p50"), (0.99, "p99")].map(|(p, name)| {
        let [ours, peer] = [0, 1].map(|k| percentile(&mut rtt[k], p));
        let p99 = name == "p99";
        Row {
            what: format!("{label}, {}ping-pong round trip {name}", against.rows),
            ours,
            peer,
            unit: "µs",
            goal: if p99 {
                format!("<= {}x {}", against.p99, against.peer)
            } else {
                "(informative)".into()
            },
            met: !p99 || ours <= against.p99 * peer,
        }
    });
    std::iter::once(throughput).chain(latency)
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
    let raw = Against {
        rows: "",
        peer: "raw CPG",
        throughput: 0.8,
        p99: 1.5,
    };
    let agreed = Against {
        rows: "SAFE vs AGREED, ",
        peer: "AGREED",
        throughput: 0.7,
        p99: 2.0,
    };
    rt.block_on(async {
        let mut round = 0;
        for (i, size) in SIZES.into_iter().enumerate() {
            // Index 0: mailboxd AGREED, 1: mailboxd SAFE, 2: raw CPG.
            let (mut tp, mut rtt) = (<[Vec<f64>; 3]>::default(), <[Vec<f64>; 3]>::default());
            for _ in 0..s.rounds {
                round += 1;
                let g = format!("{}-raw{round}", cluster.name());
                for (k, service) in SERVICES.into_iter().enumerate() {
                    tp[k].push(mbx_throughput(&daemons, service, size, s.messages[i]).await);
                }
                tp[2].push(cpg_throughput(&cluster, &g, size, s.messages[i]).await);
                for (k, service) in SERVICES.into_iter().enumerate() {
                    rtt[k].extend(mbx_rtt(&daemons, service, size, s.pings).await);
                }
                rtt[2].extend(cpg_rtt(&cluster, &format!("{g}p"), size, s.pings).await);
            }
            let label = if size < 1024 { "100 B" } else { "10 KiB" };
            let [tp_agreed, tp_safe, tp_raw] = tp;
            let [rtt_agreed, rtt_safe, rtt_raw] = rtt;
            rows.extend(compare(
                label,
                &raw,
                [tp_agreed.clone(), tp_raw],
                [rtt_agreed.clone(), rtt_raw],
            ));
            rows.extend(compare(
                label,
                &agreed,
                [tp_safe, tp_agreed],
                [rtt_safe, rtt_agreed],
            ));
        }
    });
    drop(daemons);
    write_table(
        "cluster",
        "mailboxd across corosync vs raw CPG, SAFE vs AGREED",
        "Two `mailboxd --cluster corosync` on nodes 1 and 2 of a three-node corosync testbed \
         (network namespaces on one machine, knet over veth), clients on one current-thread \
         runtime; the peer is raw CPG (conn-cpg over libcpg) between the same nodes, same \
         messages, same runtime, alternating rounds (mailboxd AGREED, mailboxd SAFE, raw \
         CPG); messages/s are medians over rounds, round trips percentiles over every round's. \
         Throughput: one sender, one receiver, at most 256 in flight. Round trip: one message there, one back (mailboxd: \
         private-group unicasts). The mailboxd rows send AGREED; the rows \"SAFE vs AGREED\" \
         measure the same two things sent at SAFE (in the ping-pong, both legs), and their peer \
         column is mailboxd AGREED, not raw CPG: a SAFE message is delivered once both daemons \
         acknowledged it, which costs each daemon one more CPG message per burst and a second \
         trip through Totem.",
        &rows,
    );
}
