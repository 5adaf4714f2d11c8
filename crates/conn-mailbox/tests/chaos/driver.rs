//! The chaos driver: a [`Schedule`] generated from a seed, run on the
//! three-node testbed (one mailboxd per node, clients on every node), the
//! history recorded and handed to the [checker](crate::checker).
//!
//! One testbed serves every schedule of a run; each schedule uses a CPG
//! group of its own and fresh daemons, so nothing carries over. A schedule
//! is ~10 s of steps; then every fault is undone, the cluster is let
//! settle (formed, no event anywhere for 2 s), every client still
//! connected stops sending and multicasts a flush message to each of its
//! groups, waits for every member's flush, and the run ends.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use conn_core::{Deadline, ErrorKind};
use conn_cpg::testbed::{self, Cluster};
use conn_mailbox::{Event as MbEvent, Mailbox, MailboxError, Service};
use rustix::process::Signal;
use tokio::sync::{mpsc, oneshot};

use crate::checker::{
    self, Anomaly, Client, Dropped, End, Event, Fault, FaultKind, History, Ms, MsgId, Record,
};
use crate::common::cluster::{ClusterDaemon, mailboxd};

const NODES: usize = 3;
const GROUPS: [&str; 3] = ["g0", "g1", "g2"];
/// How long the steps of a schedule span.
const DURATION_MS: Ms = 10_000;
/// The most clients a schedule connects.
const MAX_CLIENTS: usize = 14;
/// A flush message's type (ordinary messages are type 0).
const FLUSH: i16 = 1;

/// splitmix64: a tiny seeded generator, the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo)
    }
    fn pick<'a, T>(&mut self, of: &'a [T]) -> &'a T {
        &of[self.below(of.len() as u64) as usize]
    }
}

/// One step of a schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Client number `client` connects to node `node`'s daemon.
    Connect { client: usize, node: usize },
    /// It joins a group.
    Join { client: usize, group: usize },
    /// It leaves a group.
    Leave { client: usize, group: usize },
    /// It disconnects in order.
    Disconnect { client: usize },
    /// It is killed (`SP_kill`).
    Kill { client: usize },
    /// A fault begins on a node.
    Fault { kind: FaultKind, node: usize },
    /// That fault is undone.
    Undo { kind: FaultKind, node: usize },
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Step::Connect { client, node } => {
                write!(f, "client c{client} connects to node {}", node + 1)
            }
            Step::Join { client, group } => write!(f, "c{client} joins {}", GROUPS[group]),
            Step::Leave { client, group } => write!(f, "c{client} leaves {}", GROUPS[group]),
            Step::Disconnect { client } => write!(f, "c{client} disconnects"),
            Step::Kill { client } => write!(f, "c{client} is killed"),
            Step::Fault { kind, node } => write!(f, "{kind:?} on node {}", node + 1),
            Step::Undo { kind, node } => write!(f, "undo {kind:?} on node {}", node + 1),
        }
    }
}

/// A seeded list of timed steps.
pub struct Schedule {
    /// The seed it was made from.
    pub seed: u64,
    /// Its steps, by time since the start.
    pub steps: Vec<(Ms, Step)>,
}

impl Schedule {
    /// The schedule of `seed`: two clients per node at the start, then
    /// every 250-700 ms a fault (at most two nodes faulty at once, each
    /// undone 1-4 s later), a new client (always while fewer than four
    /// are planned alive), a join, a leave, a disconnect or a kill.
    pub fn generate(seed: u64) -> Schedule {
        let mut rng = Rng(seed);
        let mut steps: Vec<(Ms, Step)> = Vec::new();
        let mut alive: Vec<usize> = Vec::new();
        let mut clients = 0;
        let connect = |at: Ms,
                       node: usize,
                       clients: &mut usize,
                       alive: &mut Vec<usize>,
                       rng: &mut Rng,
                       steps: &mut Vec<(Ms, Step)>| {
            let client = *clients;
            *clients += 1;
            alive.push(client);
            steps.push((at, Step::Connect { client, node }));
            for _ in 0..rng.range(1, 3) {
                let group = rng.below(GROUPS.len() as u64) as usize;
                steps.push((at + rng.range(50, 300), Step::Join { client, group }));
            }
        };
        for node in 0..NODES {
            for _ in 0..2 {
                let at = rng.below(300);
                connect(at, node, &mut clients, &mut alive, &mut rng, &mut steps);
            }
        }
        let mut busy_until = [0; NODES];
        let mut t = 700;
        while t < DURATION_MS {
            let roll = rng.below(100);
            let free: Vec<usize> = (0..NODES).filter(|n| busy_until[*n] <= t).collect();
            let faulty = NODES - free.len();
            if roll < 25 {
                if faulty < 2 && !free.is_empty() {
                    let node = *rng.pick(&free);
                    let kind = *rng.pick(&[
                        FaultKind::Cut,
                        FaultKind::KillDaemon,
                        FaultKind::StopDaemon,
                        FaultKind::KillCorosync,
                        FaultKind::StopCorosync,
                    ]);
                    let undo = (t + rng.range(1000, 4000)).min(DURATION_MS);
                    busy_until[node] = undo + 1500;
                    steps.push((t, Step::Fault { kind, node }));
                    steps.push((undo, Step::Undo { kind, node }));
                }
            } else if roll < 45 || alive.len() < 4 {
                if clients < MAX_CLIENTS {
                    let node = rng.below(NODES as u64) as usize;
                    connect(t, node, &mut clients, &mut alive, &mut rng, &mut steps);
                }
            } else {
                let i = rng.below(alive.len() as u64) as usize;
                let client = alive[i];
                let group = rng.below(GROUPS.len() as u64) as usize;
                if roll < 70 {
                    steps.push((t, Step::Join { client, group }));
                } else if roll < 85 {
                    steps.push((t, Step::Leave { client, group }));
                } else if roll < 93 {
                    alive.swap_remove(i);
                    steps.push((t, Step::Disconnect { client }));
                } else {
                    alive.swap_remove(i);
                    steps.push((t, Step::Kill { client }));
                }
            }
            t += rng.range(250, 700);
        }
        // A client's steps after its own end are dropped by the client.
        steps.sort_by_key(|(at, _)| *at);
        Schedule { seed, steps }
    }
}

/// What the driver tells a client.
enum Cmd {
    /// Join (or leave) a group.
    Member {
        join: bool,
        group: &'static str,
    },
    Disconnect,
    Kill,
    /// Stop sending.
    Quiet,
    /// Multicast a flush to each group, answer once every member's came.
    Flush(oneshot::Sender<()>),
    /// Hand in the history.
    Finish,
}

/// The run's clock.
#[derive(Clone)]
struct Clock {
    start: Instant,
    /// `start` by the wall clock, to place the daemons' log lines.
    wall: SystemTime,
    /// When any client last recorded a delivery or a view.
    last_event: Arc<AtomicU64>,
}

impl Clock {
    fn now(&self) -> Ms {
        self.start.elapsed().as_millis() as Ms
    }
}

/// One client: connects, sends at random while told to, records all.
async fn client(
    node: usize,
    name: String,
    socket: PathBuf,
    seed: u64,
    clock: Clock,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
) -> (Client, Option<Mailbox>) {
    let mut rec = Client {
        name: format!("#{name}#n{}", node + 1),
        node,
        events: Vec::new(),
        end: End::Lost("unfinished".into()),
        ended: clock.now(),
    };
    let soon = || Deadline::after(Duration::from_secs(5));
    let mut m = match Mailbox::connect(&socket, &name, 0, true, soon()).await {
        Ok((m, pg)) => {
            rec.name = pg;
            m
        }
        Err(e) => {
            rec.end = End::Lost(format!("connect: {e}"));
            return (rec, None);
        }
    };
    let mut rng = Rng(seed);
    let push = |rec: &mut Client, event: Event| {
        let at = clock.now();
        rec.events.push(Record { at, event });
        rec.ended = at;
    };
    let mut seq = 0u64;
    let mut sending = true;
    let mut views: HashMap<String, Vec<String>> = HashMap::new();
    let mut flushed: HashMap<String, BTreeSet<String>> = HashMap::new();
    let mut flush: Option<oneshot::Sender<()>> = None;
    let mut flushing = false;
    let mut flushed_to: BTreeSet<String> = BTreeSet::new();
    let mut next_send = tokio::time::Instant::now();
    enum Next {
        Cmd(Option<Cmd>),
        Got(Result<MbEvent, MailboxError>),
        Send,
    }
    let lost = |e: &MailboxError| match e {
        MailboxError::Io(e) => e.kind() != ErrorKind::TimedOut,
        MailboxError::ConnectionClosed | MailboxError::Protocol(_) => true,
        _ => false, // a refusal: the connection goes on
    };
    loop {
        let next = tokio::select! {
            biased;
            cmd = cmds.recv() => Next::Cmd(cmd),
            got = m.receive(Deadline::NEVER) => Next::Got(got),
            () = tokio::time::sleep_until(next_send), if sending => Next::Send,
        };
        let fail = match next {
            Next::Cmd(None) => Some(MailboxError::ConnectionClosed),
            Next::Cmd(Some(Cmd::Member { join, group: g })) => {
                let group = g.to_owned();
                let request = if join {
                    Event::JoinReq { group }
                } else {
                    Event::LeaveReq { group }
                };
                push(&mut rec, request);
                let within = Deadline::after(Duration::from_secs(30));
                let answer = if join {
                    m.join(g, within).await
                } else {
                    m.leave(g, within).await
                };
                answer.err().filter(lost)
            }
            Next::Cmd(Some(Cmd::Disconnect)) => {
                rec.end = End::Disconnected;
                rec.ended = clock.now();
                let _ = m.disconnect(soon()).await;
                return (rec, None);
            }
            Next::Cmd(Some(Cmd::Kill)) => {
                rec.end = End::Killed;
                rec.ended = clock.now();
                m.kill();
                return (rec, None);
            }
            Next::Cmd(Some(Cmd::Quiet)) => {
                sending = false;
                None
            }
            Next::Cmd(Some(Cmd::Flush(done))) => {
                flush = Some(done);
                flushing = true;
                None
            }
            Next::Cmd(Some(Cmd::Finish)) => {
                let waiting: Vec<String> = views
                    .iter()
                    .flat_map(|(g, ms)| {
                        let got = flushed.get(g);
                        ms.iter()
                            .filter(move |m| !got.is_some_and(|s| s.contains(*m)))
                            .map(move |m| format!("{m} in {g}"))
                    })
                    .collect();
                rec.end = if waiting.is_empty() {
                    End::Survived
                } else {
                    End::Lost(format!(
                        "the final flush did not complete: no flush from {waiting:?}"
                    ))
                };
                rec.ended = clock.now();
                // Connected until every client handed in its history.
                return (rec, Some(m));
            }
            Next::Got(Ok(MbEvent::Message(msg))) => {
                let body = String::from_utf8_lossy(msg.data());
                let id = MsgId {
                    sender: msg.sender().to_owned(),
                    seq: body.parse().unwrap_or(u64::MAX),
                };
                let groups: Vec<String> = msg.groups().iter().map(str::to_owned).collect();
                if msg.msg_type() == FLUSH {
                    for g in &groups {
                        flushed
                            .entry(g.clone())
                            .or_default()
                            .insert(id.sender.clone());
                    }
                }
                push(
                    &mut rec,
                    Event::Delivered {
                        id,
                        groups,
                        service: msg.service(),
                    },
                );
                clock.last_event.store(clock.now(), Ordering::Relaxed);
                None
            }
            Next::Got(Ok(MbEvent::Membership(ms))) if ms.is_transitional() => {
                push(
                    &mut rec,
                    Event::Transition {
                        group: ms.group.to_string(),
                        view: ms.view,
                        members: ms.members.iter().map(|m| m.to_string()).collect(),
                    },
                );
                clock.last_event.store(clock.now(), Ordering::Relaxed);
                None
            }
            Next::Got(Ok(MbEvent::Membership(ms))) => {
                let members: Vec<String> = ms.members.iter().map(|m| m.to_string()).collect();
                if members.is_empty() {
                    views.remove(ms.group.as_str());
                } else {
                    views.insert(ms.group.to_string(), members.clone());
                }
                push(
                    &mut rec,
                    Event::View {
                        group: ms.group.to_string(),
                        view: ms.view,
                        cause: ms.cause,
                        changed: ms.changed.to_string(),
                        members,
                    },
                );
                clock.last_event.store(clock.now(), Ordering::Relaxed);
                None
            }
            Next::Got(Err(e)) => Some(e),
            Next::Send => {
                next_send = tokio::time::Instant::now() + Duration::from_millis(rng.range(30, 120));
                let level = *rng.pick(&[
                    Service::RELIABLE,
                    Service::FIFO,
                    Service::CAUSAL,
                    Service::AGREED,
                    Service::SAFE,
                ]);
                let service = if rng.below(10) == 0 {
                    level | Service::SELF_DISCARD
                } else {
                    level
                };
                let first = rng.below(GROUPS.len() as u64) as usize;
                let mut groups = vec![GROUPS[first]];
                if rng.below(3) == 0 {
                    groups.push(GROUPS[(first + 1) % GROUPS.len()]);
                }
                seq += 1;
                multicast(&mut m, &mut rec, &clock, seq, &groups, service, 0)
                    .await
                    .err()
            }
        };
        if let Some(e) = fail {
            rec.end = End::Lost(e.to_string());
            rec.ended = clock.now();
            return (rec, None);
        }
        if !flushing {
            continue;
        }
        // Flushing: a flush to each group we are in, also one joined late.
        let mut groups: Vec<String> = views
            .keys()
            .filter(|g| !flushed_to.contains(*g))
            .cloned()
            .collect();
        groups.sort();
        for g in groups {
            flushed_to.insert(g.clone());
            seq += 1;
            if let Err(e) =
                multicast(&mut m, &mut rec, &clock, seq, &[&g], Service::AGREED, FLUSH).await
            {
                rec.end = End::Lost(e.to_string());
                rec.ended = clock.now();
                return (rec, None);
            }
        }
        if flush.is_some()
            && views.iter().all(|(g, ms)| {
                flushed
                    .get(g)
                    .is_some_and(|got| ms.iter().all(|m| got.contains(m)))
            })
        {
            let _ = flush.take().unwrap().send(());
        }
    }
}

/// Records a multicast, then sends it; its body is its sequence number.
async fn multicast(
    m: &mut Mailbox,
    rec: &mut Client,
    clock: &Clock,
    seq: u64,
    groups: &[&str],
    service: Service,
    msg_type: i16,
) -> Result<(), MailboxError> {
    let at = clock.now();
    let id = MsgId {
        sender: rec.name.clone(),
        seq,
    };
    let groups_sent = groups.iter().map(|g| g.to_string()).collect();
    rec.events.push(Record {
        at,
        event: Event::Sent {
            id,
            groups: groups_sent,
            service,
        },
    });
    rec.ended = at;
    m.multicast(service, groups, msg_type, seq.to_string().as_bytes())
        .await
        .map(|_| ())
}

/// The testbed and the daemons of one schedule.
struct Bed {
    cluster: Mutex<Cluster>,
    daemons: Mutex<Vec<Option<ClusterDaemon>>>,
    group: Mutex<String>,
    dir: Mutex<PathBuf>,
    starts: AtomicU64,
}

impl Bed {
    fn socket(&self, node: usize) -> PathBuf {
        self.dir.lock().unwrap().join(format!("n{}.sock", node + 1))
    }

    /// Starts a fresh mailboxd on `node` (its old one killed first),
    /// trying again while corosync is not ready for it.
    fn start_daemon(&self, node: usize) -> Result<(), String> {
        drop(self.daemons.lock().unwrap()[node].take());
        let mut last = String::new();
        for _ in 0..10 {
            let k = self.starts.fetch_add(1, Ordering::Relaxed);
            let log = self
                .dir
                .lock()
                .unwrap()
                .join(format!("n{}-{k}.log", node + 1));
            let group = self.group.lock().unwrap().clone();
            let mut d = {
                let cluster = self.cluster.lock().unwrap();
                ClusterDaemon::spawn(
                    mailboxd(),
                    cluster.node(node),
                    &format!("n{}", node + 1),
                    &group,
                    self.socket(node),
                    log,
                    &[],
                )
            };
            d.keep_log = true;
            match d.wait_ready(Duration::from_secs(20)) {
                Ok(()) => {
                    self.daemons.lock().unwrap()[node] = Some(d);
                    return Ok(());
                }
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        Err(format!(
            "mailboxd on node {} would not start: {last}",
            node + 1
        ))
    }

    fn daemon_signal(&self, node: usize, sig: Signal) {
        if let Some(d) = &self.daemons.lock().unwrap()[node] {
            d.signal(sig);
        }
    }

    fn corosync_signal(&self, node: usize, sig: Signal) {
        if let Some(pid) = self.cluster.lock().unwrap().corosync_pid(node)
            && let Some(pid) = rustix::process::Pid::from_raw(pid as i32)
        {
            let _ = rustix::process::kill_process(pid, sig);
        }
    }

    /// Applies a fault (blocking).
    fn fault(&self, kind: FaultKind, node: usize) -> Result<(), String> {
        match kind {
            FaultKind::Cut => self
                .cluster
                .lock()
                .unwrap()
                .cut(node)
                .map_err(|e| e.to_string()),
            FaultKind::KillDaemon => {
                self.daemon_signal(node, Signal::KILL);
                Ok(())
            }
            FaultKind::StopDaemon => {
                self.daemon_signal(node, Signal::STOP);
                Ok(())
            }
            FaultKind::KillCorosync => {
                self.cluster.lock().unwrap().kill(node);
                Ok(())
            }
            FaultKind::StopCorosync => {
                self.corosync_signal(node, Signal::STOP);
                Ok(())
            }
        }
    }

    /// Undoes a fault (blocking; a restart waits until the daemon is up).
    fn undo(&self, kind: FaultKind, node: usize) -> Result<(), String> {
        match kind {
            FaultKind::Cut => self
                .cluster
                .lock()
                .unwrap()
                .heal(node)
                .map_err(|e| e.to_string()),
            FaultKind::KillDaemon => self.start_daemon(node),
            FaultKind::StopDaemon => {
                self.daemon_signal(node, Signal::CONT);
                Ok(())
            }
            FaultKind::KillCorosync => {
                self.cluster
                    .lock()
                    .unwrap()
                    .restart(node)
                    .map_err(|e| e.to_string())?;
                self.start_daemon(node)
            }
            FaultKind::StopCorosync => {
                self.corosync_signal(node, Signal::CONT);
                Ok(())
            }
        }
    }

    /// Whether node `node`'s daemon is running.
    fn daemon_alive(&self, node: usize) -> bool {
        self.daemons.lock().unwrap()[node]
            .as_mut()
            .is_some_and(|d| matches!(d.child.try_wait(), Ok(None)))
    }
}

/// What one schedule gave.
pub struct Outcome {
    /// What every client recorded, and the faults.
    pub history: History,
    /// What the checker found, and clients that could not settle.
    pub anomalies: Vec<Anomaly>,
    /// What the driver could not do as scheduled (a daemon that would not
    /// start, a settle that timed out).
    pub notes: Vec<String>,
    /// Where the daemons' logs are.
    pub dir: PathBuf,
}

async fn blocking<T: Send + 'static>(
    bed: &Arc<Bed>,
    f: impl FnOnce(&Bed) -> T + Send + 'static,
) -> T {
    let bed = Arc::clone(bed);
    tokio::task::spawn_blocking(move || f(&bed))
        .await
        .expect("a driver step panicked")
}

/// The clients of a schedule, by number: how to tell each, and its task.
type Running = std::collections::BTreeMap<
    usize,
    (
        mpsc::UnboundedSender<Cmd>,
        tokio::task::JoinHandle<(Client, Option<Mailbox>)>,
    ),
>;

/// Waits until no client got anything for 2 s (at most 30 s).
async fn quiet(clock: &Clock, notes: &mut Vec<String>) {
    let from = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let last = clock.last_event.load(Ordering::Relaxed);
        if clock.now().saturating_sub(last) >= 2000 {
            break;
        }
        if from.elapsed() > Duration::from_secs(30) {
            notes.push("settle: events still flowing 30 s into a quiet wait".into());
            break;
        }
    }
}

/// Runs one schedule on the testbed and checks its history.
async fn run_schedule(bed: &Arc<Bed>, schedule: &Schedule) -> Outcome {
    let mut notes = Vec::new();
    for node in 0..NODES {
        if let Err(e) = blocking(bed, move |b| b.start_daemon(node)).await {
            notes.push(e);
        }
    }
    let clock = Clock {
        start: Instant::now(),
        wall: SystemTime::now(),
        last_event: Arc::new(AtomicU64::new(0)),
    };
    let faults: Arc<Mutex<Vec<Fault>>> = Arc::default();
    let mut open: HashMap<usize, usize> = HashMap::new();
    let mut restarts = Vec::new();
    let mut clients = Running::new();
    for &(at, step) in &schedule.steps {
        tokio::time::sleep_until(tokio::time::Instant::from_std(
            clock.start + Duration::from_millis(at),
        ))
        .await;
        let tell = |clients: &Running, client: usize, cmd: Cmd| {
            if let Some((tx, _)) = clients.get(&client) {
                let _ = tx.send(cmd);
            }
        };
        match step {
            Step::Connect { client: k, node } => {
                let (tx, rx) = mpsc::unbounded_channel();
                let task = tokio::spawn(client(
                    node,
                    format!("c{k}"),
                    bed.socket(node),
                    schedule.seed ^ (k as u64 + 1).wrapping_mul(0x5851_f42d_4c95_7f2d),
                    clock.clone(),
                    rx,
                ));
                clients.insert(k, (tx, task));
            }
            Step::Join { client, group } => tell(
                &clients,
                client,
                Cmd::Member {
                    join: true,
                    group: GROUPS[group],
                },
            ),
            Step::Leave { client, group } => tell(
                &clients,
                client,
                Cmd::Member {
                    join: false,
                    group: GROUPS[group],
                },
            ),
            Step::Disconnect { client } => tell(&clients, client, Cmd::Disconnect),
            Step::Kill { client } => tell(&clients, client, Cmd::Kill),
            Step::Fault { kind, node } => {
                let from = clock.now();
                match blocking(bed, move |b| b.fault(kind, node)).await {
                    Ok(()) => {
                        let mut f = faults.lock().unwrap();
                        open.insert(node, f.len());
                        f.push(Fault {
                            kind,
                            node,
                            from,
                            until: Ms::MAX,
                        });
                    }
                    Err(e) => notes.push(format!("{step}: {e}")),
                }
            }
            Step::Undo { kind, node } => {
                let Some(i) = open.remove(&node) else {
                    continue;
                };
                let (bed, faults, clock) = (Arc::clone(bed), Arc::clone(&faults), clock.clone());
                // Restarts take seconds: in the background, the schedule goes on.
                restarts.push(tokio::task::spawn_blocking(move || {
                    let r = bed.undo(kind, node);
                    faults.lock().unwrap()[i].until = clock.now();
                    r.map_err(|e| format!("undo {kind:?} on node {}: {e}", node + 1))
                }));
            }
        }
    }
    // Heal everything, let it settle.
    for r in restarts {
        if let Ok(Err(e)) = r.await {
            notes.push(e);
        }
    }
    for node in 0..NODES {
        if !blocking(bed, move |b| b.daemon_alive(node)).await {
            notes.push(format!(
                "mailboxd on node {} was not running at the end; restarted",
                node + 1
            ));
            if let Err(e) = blocking(bed, move |b| b.start_daemon(node)).await {
                notes.push(e);
            }
        }
    }
    if let Err(e) = blocking(bed, |b| {
        b.cluster
            .lock()
            .unwrap()
            .wait_until_formed(Duration::from_secs(60))
    })
    .await
    {
        notes.push(format!("settle: {e}"));
    }
    for (tx, _) in clients.values() {
        let _ = tx.send(Cmd::Quiet);
    }
    // A merge may follow the formation by a moment.
    tokio::time::sleep(Duration::from_secs(2)).await;
    quiet(&clock, &mut notes).await;
    let mut acks = Vec::new();
    for (tx, _) in clients.values() {
        let (done, ack) = oneshot::channel();
        let _ = tx.send(Cmd::Flush(done));
        acks.push(ack);
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), futures::future::join_all(acks)).await;
    // What was still in flight lands (at every member of a view alike).
    quiet(&clock, &mut notes).await;
    let mut history = History::default();
    for (tx, _) in clients.values() {
        let _ = tx.send(Cmd::Finish);
    }
    // The connections stay up until every history is in (a kill now
    // would be a last view at the clients not yet done).
    let mut connected = Vec::new();
    for (_, task) in clients.into_values() {
        let (client, mailbox) = task.await.expect("a client task panicked");
        history.clients.push(client);
        connected.extend(mailbox);
    }
    drop(connected);
    let end = clock.now();
    history.faults = faults.lock().unwrap().clone();
    for f in &mut history.faults {
        f.until = f.until.min(end);
    }
    history.dropped = dropped_in_logs(&bed.dir.lock().unwrap(), &clock, end);
    let mut anomalies = checker::check(&history);
    // A client still connected whose flush never completed: the cluster
    // did not settle (its members disagree, or one is stuck).
    for c in &history.clients {
        if let End::Lost(why) = &c.end
            && why.starts_with("the final flush")
        {
            anomalies.push(Anomaly {
                property: "settle",
                what: format!("{}: {why}", c.name),
                evidence: vec![],
            });
        }
    }
    let dir = bed.dir.lock().unwrap().clone();
    for d in bed.daemons.lock().unwrap().iter_mut() {
        drop(d.take());
    }
    Outcome {
        history,
        anomalies,
        notes,
        dir,
    }
}

/// What CPG reported as a loss at each daemon, from the daemons' logs
/// (`n{node}-{k}.log`: "cluster: a daemon left daemon=node N pid P
/// reason=R", R not `leave`), placed on the run's clock by each line's UTC
/// time of day; lines from before the run or after `end` are not its.
fn dropped_in_logs(dir: &Path, clock: &Clock, end: Ms) -> Vec<Dropped> {
    const DAY_MS: u64 = 86_400_000;
    let start_of_day = clock
        .wall
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64 % DAY_MS);
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let observer = file
            .strip_prefix('n')
            .and_then(|r| r.split_once('-'))
            .and_then(|(n, _)| n.parse::<usize>().ok());
        let (Some(observer), true) = (observer, file.ends_with(".log")) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        for line in text.lines() {
            let Some((_, rest)) = line.split_once("cluster: a daemon left daemon=node ") else {
                continue;
            };
            let node = rest
                .split_once(' ')
                .and_then(|(n, _)| n.parse::<usize>().ok());
            let lost = rest
                .split_once("reason=")
                .is_some_and(|(_, r)| !r.starts_with("leave"));
            // "2026-12-02T03:42:41.906345Z ...": the time of day.
            let of_day = line
                .split_once('T')
                .and_then(|(_, t)| t.get(..12))
                .and_then(|t| {
                    let (h, m, s) = (t.get(..2)?, t.get(3..5)?, t.get(6..)?);
                    let s: f64 = s.parse().ok()?;
                    Some(
                        h.parse::<u64>().ok()? * 3_600_000
                            + m.parse::<u64>().ok()? * 60_000
                            + (s * 1000.0) as u64,
                    )
                });
            let (Some(node), true, Some(of_day)) = (node, lost, of_day) else {
                continue;
            };
            let at = (of_day + DAY_MS - start_of_day) % DAY_MS;
            if (1..=NODES).contains(&node) && (1..=NODES).contains(&observer) && at <= end {
                out.push(Dropped {
                    observer: observer - 1,
                    node: node - 1,
                    at,
                });
            }
        }
    }
    out
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
    )
}

/// Runs the schedules `CONNKIT_CHAOS_SCHEDULES` and `CONNKIT_CHAOS_SEED`
/// ask for (see the crate docs), prints a line per schedule and the
/// totals, and fails if any schedule showed an anomaly.
pub fn run_from_env() {
    if let Some(why) = testbed::unavailable() {
        conn_test_support::skip(
            "conn-mailbox chaos schedules",
            format!("the corosync testbed {why}"),
        );
        return;
    }
    let n = env_u64("CONNKIT_CHAOS_SCHEDULES").unwrap_or(3);
    let seeds: Vec<u64> = match env_u64("CONNKIT_CHAOS_SEED") {
        Some(s) => (0..n).map(|i| s.wrapping_add(i)).collect(),
        // Fixed seeds under a plain `cargo test`: two schedules that hit
        // the open defects (docs/cluster.md) exist among 200, and a check
        // that fails at random is not a check. `cargo xtask chaos` explores.
        None => (1..=n).collect(),
    };
    match seeds.as_slice() {
        [first, .., last] if seeds.len() > 4 => {
            println!("chaos: {} schedules, seeds {first} to {last}", seeds.len())
        }
        _ => println!("chaos: {} schedules, seeds {seeds:?}", seeds.len()),
    }
    let cluster = Cluster::start(NODES).expect("start the testbed");
    if let Err(e) = cluster.wait_until_formed(Duration::from_secs(60)) {
        panic!("{e}\nnode 1 logged:\n{}", cluster.log(0));
    }
    let bed = Arc::new(Bed {
        cluster: Mutex::new(cluster),
        daemons: Mutex::new((0..NODES).map(|_| None).collect()),
        group: Mutex::new(String::new()),
        dir: Mutex::new(PathBuf::new()),
        starts: AtomicU64::new(0),
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut total_msgs, mut total_views, mut failed) = (0usize, 0usize, Vec::new());
    for &seed in &seeds {
        let name = bed.cluster.lock().unwrap().name().to_owned();
        let dir = std::env::temp_dir().join(format!("connkit-chaos-{name}-seed{seed}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a log dir");
        *bed.dir.lock().unwrap() = dir.clone();
        *bed.group.lock().unwrap() = format!("{name}-chaos{seed}");
        let schedule = Schedule::generate(seed);
        let started = Instant::now();
        let out = rt.block_on(run_schedule(&bed, &schedule));
        let count = |f: fn(&Event) -> bool| {
            out.history
                .clients
                .iter()
                .flat_map(|c| &c.events)
                .filter(|r| f(&r.event))
                .count()
        };
        let sent = count(|e| matches!(e, Event::Sent { .. }));
        let delivered = count(|e| matches!(e, Event::Delivered { .. }));
        let views = count(|e| matches!(e, Event::View { .. }));
        let safe = count(
            |e| matches!(e, Event::Delivered { service, .. } if service.level_name() == "SAFE"),
        );
        let transitions = count(|e| matches!(e, Event::Transition { .. }));
        let survivors = out
            .history
            .clients
            .iter()
            .filter(|c| c.end == End::Survived)
            .count();
        total_msgs += sent;
        total_views += views;
        println!(
            "chaos: seed {seed}: {} steps, {} faults, {} clients ({survivors} to the end), {sent} messages sent, {delivered} delivered ({safe} SAFE), {views} views, {transitions} transitional, {} anomalies ({:.1?})",
            schedule.steps.len(),
            out.history.faults.len(),
            out.history.clients.len(),
            out.anomalies.len(),
            started.elapsed()
        );
        if std::env::var_os("CONNKIT_CHAOS_VERBOSE").is_some() {
            for c in &out.history.clients {
                println!(
                    "chaos: seed {seed}: {} (node {}): {} events, ended {:?} at {} ms",
                    c.name,
                    c.node + 1,
                    c.events.len(),
                    c.end,
                    c.ended
                );
            }
            for (at, step) in &schedule.steps {
                println!("chaos:   {at:>6} ms  {step}");
            }
        }
        for note in &out.notes {
            println!("chaos: seed {seed}: note: {note}");
        }
        if out.anomalies.is_empty() {
            let _ = std::fs::remove_dir_all(&out.dir);
            continue;
        }
        report(&schedule, &out);
        failed.push(seed);
    }
    println!(
        "chaos: {} schedules, {total_msgs} messages, {total_views} views, {} with anomalies{}",
        seeds.len(),
        failed.len(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(" (seeds {failed:?})")
        }
    );
    assert!(
        failed.is_empty(),
        "chaos: anomalies in the schedules of seeds {failed:?}; replay one with \
         `cargo xtask chaos --schedules 1 --seed SEED`"
    );
}

/// Prints a failing schedule: seed, steps, the anomalies shortest first.
fn report(schedule: &Schedule, out: &Outcome) {
    let seed = schedule.seed;
    println!("chaos: seed {seed}: FAILED; its steps:");
    for (at, step) in &schedule.steps {
        println!("chaos:   {at:>6} ms  {step}");
    }
    let mut anomalies: Vec<&Anomaly> = out.anomalies.iter().collect();
    anomalies.sort_by_key(|a| a.evidence.len());
    let mut by_property: HashMap<&str, usize> = HashMap::new();
    for a in &anomalies {
        *by_property.entry(a.property).or_default() += 1;
    }
    println!("chaos: seed {seed}: anomalies by property: {by_property:?}");
    for a in anomalies.iter().take(6) {
        for line in a.render(&out.history).lines() {
            println!("chaos:   {line}");
        }
    }
    // The whole history, a line an event, for a closer look.
    let mut text = String::new();
    for c in &out.history.clients {
        for r in &c.events {
            text.push_str(&format!("{:>6} {} {:?}\n", r.at, c.name, r.event));
        }
        text.push_str(&format!("{:>6} {} ended {:?}\n", c.ended, c.name, c.end));
    }
    for f in &out.history.faults {
        text.push_str(&format!("fault {f:?}\n"));
    }
    let _ = std::fs::write(out.dir.join("history.txt"), text);
    println!(
        "chaos: seed {seed}: daemon logs and history.txt kept in {}",
        out.dir.display()
    );
    print_path_hint(&out.dir);
    println!("chaos: seed {seed}: replay: cargo xtask chaos --schedules 1 --seed {seed}");
}

fn print_path_hint(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut logs: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".log"))
            .collect();
        logs.sort();
        println!("chaos:   logs: {}", logs.join(" "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daemon_logging_cpg_losing_another_gives_a_dropped_on_the_runs_clock() {
        let dir = std::env::temp_dir().join(format!("connkit-chaos-logs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let line = |t: &str, rest: &str| {
            format!("2026-12-02T{t}Z  INFO conn_mailbox::daemon::cluster: cluster: {rest}\n")
        };
        let log = [
            line(
                "03:42:36.800127",
                "a daemon left daemon=node 1 pid 7 reason=node down",
            ),
            line(
                "03:42:41.906345",
                "a daemon left daemon=node 2 pid 32117 reason=node down",
            ),
            line(
                "03:42:42.100000",
                "state exchange members=3 config=[1, 2, 3]",
            ),
            line(
                "03:42:43.000000",
                "a daemon left daemon=node 1 pid 8 reason=leave",
            ),
            line(
                "03:42:44.614484",
                "a daemon left daemon=node 1 pid 9 reason=process down",
            ),
        ]
        .concat();
        std::fs::write(dir.join("n3-27.log"), log).unwrap();
        std::fs::write(dir.join("n1.sock"), "not a log").unwrap();
        // The run began at 03:42:40.000 UTC.
        let clock = Clock {
            start: Instant::now(),
            wall: UNIX_EPOCH + Duration::from_secs(20_789 * 86_400 + 3 * 3600 + 42 * 60 + 40),
            last_event: Arc::default(),
        };
        let mut found = dropped_in_logs(&dir, &clock, 10_000);
        found.sort_by_key(|d| d.at);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            found,
            [
                Dropped {
                    observer: 2,
                    node: 1,
                    at: 1906
                },
                Dropped {
                    observer: 2,
                    node: 0,
                    at: 4614
                },
            ]
        );
    }
}
