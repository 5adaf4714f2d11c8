//! mailboxd against redis-server's and nats-server's pub/sub, in the same
//! run: one publisher, 8 subscribers of one group/channel/subject, 100-byte
//! and 10 KiB messages; delivered messages/s and p50/p99 delivery latency.
//!
//! Each peer is measured against mailboxd over the peer's own transport:
//! redis-server over Unix sockets against mailboxd's Unix socket, and
//! nats-server, which has no Unix sockets, over loopback TCP (127.0.0.1)
//! against mailboxd's TCP listener on 127.0.0.1. The one daemon listens on
//! both. Over TCP neither side authenticates: nats-server runs with no
//! authorization, mailboxd with `tcp_insecure` (a secret would only add a
//! handshake at connect, nothing per message).
//!
//! Setup, identical for all: the server runs on a thread of its own
//! (mailboxd: conn-mailbox's daemon on a current-thread runtime in this
//! process; redis: its own single-threaded process; nats-server: its own
//! process, Go's scheduler on both cores), all 9 clients run on one
//! current-thread runtime on the bench's main thread (nats: async-nats, one
//! connection per client). The publisher keeps at most WINDOW messages in
//! flight beyond the slowest subscriber (every server drops subscribers that
//! fall too far behind). Each payload starts with its send time; latency is
//! receive time minus that. Rounds alternate mailboxd and each peer; figures
//! are medians over rounds.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use common::{Row, write_table_with};
use conn_core::Deadline;
use conn_mailbox::daemon::{DaemonConfig, run as daemon};
use conn_mailbox::{Event, Mailbox, Service};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

const SUBSCRIBERS: usize = 8;
const WINDOW: u64 = 64;
const ROUNDS: usize = 7;

fn socket(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("connkit-bench-{name}-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// What one round measured.
struct Round {
    msgs_per_s: f64,
    p50_us: f64,
    p99_us: f64,
}

/// Shared between the publisher and the subscribers of one round.
struct Flow {
    base: Instant,
    received: Vec<AtomicU64>,
    progress: Notify,
}

impl Flow {
    fn new() -> Arc<Flow> {
        Arc::new(Flow {
            base: Instant::now(),
            received: (0..SUBSCRIBERS).map(|_| AtomicU64::new(0)).collect(),
            progress: Notify::new(),
        })
    }
    fn slowest(&self) -> u64 {
        self.received
            .iter()
            .map(|r| r.load(Ordering::Relaxed))
            .min()
            .unwrap_or(0)
    }
    fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }
    fn payload(&self, size: usize) -> Vec<u8> {
        let mut p = vec![0x42u8; size];
        p[..8].copy_from_slice(&self.now_ns().to_le_bytes());
        p
    }
    fn latency(&self, payload: &[u8]) -> u64 {
        let sent = u64::from_le_bytes(payload[..8].try_into().unwrap());
        self.now_ns().saturating_sub(sent)
    }
    async fn wait_window(&self, sent: u64) {
        while sent - self.slowest() >= WINDOW {
            self.progress.notified().await;
        }
    }
    fn got(&self, sub: usize) {
        self.received[sub].fetch_add(1, Ordering::Relaxed);
        self.progress.notify_one();
    }
}

fn summarize(start: Instant, count: u64, mut lat: Vec<u64>) -> Round {
    let elapsed = start.elapsed().as_secs_f64();
    // MAILBOX_BENCH_DUMP=FILE appends each round's latencies (ns, subscriber
    // by subscriber, in arrival order) as one line, to study their shape.
    if let Ok(path) = std::env::var("MAILBOX_BENCH_DUMP") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        let line: Vec<String> = lat.iter().map(|l| l.to_string()).collect();
        writeln!(f, "{}", line.join(" ")).unwrap();
    }
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64 / 1000.0;
    Round {
        msgs_per_s: (count * SUBSCRIBERS as u64) as f64 / elapsed,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
    }
}

/// Waits for every subscriber's latencies: the round's figures.
async fn gather(start: Instant, count: u64, subs: Vec<JoinHandle<Vec<u64>>>) -> Round {
    let mut lat = Vec::new();
    for s in subs {
        lat.extend(s.await.unwrap());
    }
    summarize(start, count, lat)
}

async fn mailbox_round(path: &Path, size: usize, count: u64) -> Round {
    let within = Deadline::after(Duration::from_secs(30));
    let flow = Flow::new();
    let mut subs = Vec::new();
    for i in 0..SUBSCRIBERS {
        let (mut m, _) = Mailbox::connect(path, &format!("sub{i}"), 0, false, within)
            .await
            .unwrap();
        m.join("bench", within).await.unwrap();
        let flow = flow.clone();
        subs.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(count as usize);
            while (lat.len() as u64) < count {
                // No deadline: redis's subscribers wait without one too.
                if let Event::Message(msg) = m.receive(Deadline::NEVER).await.unwrap() {
                    lat.push(flow.latency(msg.data()));
                    flow.got(i);
                }
            }
            m.disconnect(within).await.unwrap();
            lat
        }));
    }
    let (mut publisher, _) = Mailbox::connect(path, "pub", 0, false, within)
        .await
        .unwrap();
    let start = Instant::now();
    for sent in 0..count {
        flow.wait_window(sent).await;
        publisher
            .multicast(Service::AGREED, &["bench"], 0, &flow.payload(size))
            .await
            .unwrap();
    }
    let round = gather(start, count, subs).await;
    publisher.disconnect(within).await.unwrap();
    round
}

/// A minimal RESP reader: one reply (arrays of bulk strings and integers).
enum Resp {
    Int,
    Bulk(BytesMut),
    Array(Vec<Resp>),
}

fn parse(buf: &mut BytesMut) -> Option<Resp> {
    fn line(b: &[u8], at: usize) -> Option<(usize, usize)> {
        let end = b[at..].windows(2).position(|w| w == b"\r\n")? + at;
        Some((end, end + 2))
    }
    fn one(b: &[u8], at: usize) -> Option<(Resp, usize)> {
        let (end, next) = line(b, at)?;
        let n: i64 = std::str::from_utf8(&b[at + 1..end]).ok()?.parse().ok()?;
        match b[at] {
            b':' => Some((Resp::Int, next)),
            b'$' => {
                let n = n as usize;
                if b.len() < next + n + 2 {
                    return None;
                }
                Some((Resp::Bulk(BytesMut::from(&b[next..next + n])), next + n + 2))
            }
            b'*' => {
                let mut items = Vec::new();
                let mut at = next;
                for _ in 0..n {
                    let (item, after) = one(b, at)?;
                    items.push(item);
                    at = after;
                }
                Some((Resp::Array(items), at))
            }
            other => panic!("unexpected RESP type {:?}", other as char),
        }
    }
    if buf.is_empty() {
        return None;
    }
    let (resp, used) = one(buf, 0)?;
    buf.advance(used);
    Some(resp)
}

async fn read_resp(s: &mut UnixStream, buf: &mut BytesMut) -> Resp {
    loop {
        if let Some(r) = parse(buf) {
            return r;
        }
        buf.reserve(64 * 1024);
        assert!(
            s.read_buf(buf).await.unwrap() > 0,
            "redis closed the connection"
        );
    }
}

fn bulk(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

async fn redis_round(path: &Path, size: usize, count: u64) -> Round {
    let flow = Flow::new();
    let mut subs = Vec::new();
    for i in 0..SUBSCRIBERS {
        let mut s = UnixStream::connect(path).await.unwrap();
        let mut cmd = b"*2\r\n".to_vec();
        bulk(&mut cmd, b"SUBSCRIBE");
        bulk(&mut cmd, b"bench");
        s.write_all(&cmd).await.unwrap();
        let mut buf = BytesMut::with_capacity(64 * 1024);
        read_resp(&mut s, &mut buf).await; // the subscribe confirmation
        let flow = flow.clone();
        subs.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(count as usize);
            while (lat.len() as u64) < count {
                if let Resp::Array(mut items) = read_resp(&mut s, &mut buf).await
                    && let Some(Resp::Bulk(data)) = items.pop()
                {
                    lat.push(flow.latency(&data));
                    flow.got(i);
                }
            }
            lat
        }));
    }
    let publisher = UnixStream::connect(path).await.unwrap();
    let (mut rd, mut wr) = publisher.into_split();
    // PUBLISH replies (receiver counts) are read and dropped alongside.
    let replies = tokio::spawn(async move {
        let mut buf = BytesMut::with_capacity(64 * 1024);
        let mut s = 0;
        while s < count {
            buf.reserve(4096);
            if rd.read_buf(&mut buf).await.unwrap() == 0 {
                break;
            }
            s += buf.iter().filter(|&&b| b == b'\n').count() as u64;
            buf.clear();
        }
    });
    let start = Instant::now();
    let mut cmd = Vec::with_capacity(size + 64);
    for sent in 0..count {
        flow.wait_window(sent).await;
        cmd.clear();
        cmd.extend_from_slice(b"*3\r\n");
        bulk(&mut cmd, b"PUBLISH");
        bulk(&mut cmd, b"bench");
        bulk(&mut cmd, &flow.payload(size));
        wr.write_all(&cmd).await.unwrap();
    }
    let round = gather(start, count, subs).await;
    replies.await.unwrap();
    round
}

struct Redis {
    child: Child,
    socket: PathBuf,
}

impl Redis {
    fn start() -> Option<Redis> {
        let socket = socket("redis");
        let child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(&socket)
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--unixsocketperm",
                "700",
            ])
            .stdout(Stdio::null())
            .spawn()
            .ok()?;
        let start = Instant::now();
        while !socket.exists() {
            if start.elapsed() > Duration::from_secs(10) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(Redis { child, socket })
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// A free port on 127.0.0.1 (the kernel's pick, released for the server
/// to bind).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

async fn nats_round(addr: &str, size: usize, count: u64) -> Round {
    let flow = Flow::new();
    let mut subs = Vec::new();
    for i in 0..SUBSCRIBERS {
        let client = async_nats::connect(addr).await.unwrap();
        let mut sub = client.subscribe("bench").await.unwrap();
        // The server handles one connection's commands in order: this
        // client's own empty probe coming back means its subscription is in
        // place before the publisher starts.
        client.publish("bench", Bytes::new()).await.unwrap();
        client.flush().await.unwrap();
        let probe = sub
            .next()
            .await
            .expect("nats-server closed the subscription");
        assert!(probe.payload.is_empty(), "the probe comes back first");
        let flow = flow.clone();
        subs.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(count as usize);
            while (lat.len() as u64) < count {
                let msg = sub
                    .next()
                    .await
                    .expect("nats-server closed the subscription");
                // Later subscribers' probes are empty.
                if !msg.payload.is_empty() {
                    lat.push(flow.latency(&msg.payload));
                    flow.got(i);
                }
            }
            drop(client);
            lat
        }));
    }
    let publisher = async_nats::connect(addr).await.unwrap();
    let start = Instant::now();
    for sent in 0..count {
        flow.wait_window(sent).await;
        publisher
            .publish("bench", flow.payload(size).into())
            .await
            .unwrap();
    }
    let round = gather(start, count, subs).await;
    publisher.flush().await.unwrap();
    round
}

struct Nats {
    child: Child,
    config: PathBuf,
    /// `127.0.0.1:port`.
    addr: String,
}

impl Nats {
    /// nats-server on a free port of 127.0.0.1, from a temporary config:
    /// core pub/sub only, no authorization. `None` when it is not installed.
    fn start() -> Option<Nats> {
        let addr = format!("127.0.0.1:{}", free_port());
        let config =
            std::env::temp_dir().join(format!("connkit-bench-nats-{}.conf", std::process::id()));
        std::fs::write(&config, format!("listen: {addr}\n")).unwrap();
        let spawned = Command::new("nats-server")
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = spawned else {
            let _ = std::fs::remove_file(&config);
            return None;
        };
        let nats = Nats {
            child,
            config,
            addr,
        };
        let start = Instant::now();
        while std::net::TcpStream::connect(&nats.addr).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "nats-server did not listen on {} within 10 s",
                nats.addr
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(nats)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}

/// A peer server, and where mailboxd listens over the same transport.
enum Peer {
    Redis(Redis),
    Nats(Nats),
}

/// What one comparison's sides are called.
struct Names {
    /// mailboxd's side, for `MAILBOX_BENCH_ONLY` and the printed lines.
    ours: &'static str,
    /// The peer's side, the same way.
    peer: &'static str,
    /// The peer's program.
    server: &'static str,
    /// What both sides' clients connect over.
    transport: &'static str,
}

impl Peer {
    fn names(&self) -> Names {
        match self {
            Peer::Redis(_) => Names {
                ours: "mailboxd",
                peer: "redis",
                server: "redis-server",
                transport: "Unix sockets",
            },
            Peer::Nats(_) => Names {
                ours: "mailboxd-tcp",
                peer: "nats",
                server: "nats-server",
                transport: "loopback TCP",
            },
        }
    }
    async fn round(&self, size: usize, count: u64) -> Round {
        match self {
            Peer::Redis(r) => redis_round(&r.socket, size, count).await,
            Peer::Nats(n) => nats_round(&n.addr, size, count).await,
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// The Spread figure issue #20 quotes for one daemon: messages/s published,
/// 56-byte messages, daemon, publisher and one receiver on one machine
/// (spread-users list, July 2007: 122,228 published, 12,052 received, half
/// that with four receivers). From another machine, not measured here;
/// BENCHMARKS.md shows it beside ours as a reference only.
const SPREAD_PUBLISHED_PER_S: f64 = 122_228.0;

fn label(size: usize) -> String {
    if size >= 1024 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

fn main() {
    let mbx = socket("mailboxd");
    let mbx_tcp = format!("127.0.0.1:{}", free_port());
    // Each peer beside mailboxd over the same transport.
    let mut peers = Vec::new();
    match Redis::start() {
        Some(redis) => peers.push((Peer::Redis(redis), mbx.clone())),
        None => conn_test_support::skip(
            "benches/mailbox.rs against redis",
            "redis-server is not installed (cargo xtask bench installs it)",
        ),
    }
    match Nats::start() {
        Some(nats) => peers.push((Peer::Nats(nats), PathBuf::from(format!("tcp://{mbx_tcp}")))),
        None => conn_test_support::skip(
            "benches/mailbox.rs against nats",
            "nats-server is not installed (cargo xtask bench installs it)",
        ),
    }
    if peers.is_empty() {
        return;
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut config = DaemonConfig::new(&mbx);
    // Loopback only, and no secret, as nats-server runs without one.
    config.tcp = Some(mbx_tcp);
    config.tcp_insecure = true;
    let server = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(daemon(config, async {
                stopped.await.ok();
            }))
            .unwrap();
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Both listeners are bound before either accepts.
    rt.block_on(conn_mailbox::daemon::wait_ready(
        &mbx,
        Deadline::after(Duration::from_secs(10)),
    ))
    .expect("mailboxd listens");
    // Under `cargo test` (no --bench) this is a smoke test: a tenth of the
    // messages, one round.
    let quick = !common::measuring()
        || std::env::args().any(|a| a == "--quick")
        || std::env::var_os("MAILBOX_BENCH_QUICK").is_some();
    let rounds = if common::measuring() { ROUNDS } else { 1 };
    // MAILBOX_BENCH_ONLY=mailboxd|redis|mailboxd-tcp|nats runs one side
    // alone, for profiling.
    let only = std::env::var("MAILBOX_BENCH_ONLY").ok();
    let only = only.as_deref();
    let runs = |name: &str| only.is_none_or(|o| o == name);
    let mut rows = Vec::new();
    // mailboxd's 100 B figures, published messages/s, per transport.
    let mut published = Vec::new();
    // MAILBOX_BENCH_SIZE=100 (or 10240) measures one message size alone.
    let only_size: Option<usize> = std::env::var("MAILBOX_BENCH_SIZE")
        .ok()
        .and_then(|s| s.parse().ok());
    for (size, count) in [(100usize, 20_000u64), (10 * 1024, 4_000)] {
        if only_size.is_some_and(|s| s != size) {
            continue;
        }
        let count = if quick { count / 10 } else { count };
        // Per peer: mailboxd's rounds and the peer's.
        let mut measured: Vec<(Vec<Round>, Vec<Round>)> =
            peers.iter().map(|_| (Vec::new(), Vec::new())).collect();
        // Warm-up of every side, then alternating rounds.
        for (peer, ours) in &peers {
            rt.block_on(mailbox_round(ours, size, count / 10));
            rt.block_on(peer.round(size, count / 10));
        }
        for _ in 0..rounds {
            for ((peer, ours), (o, p)) in peers.iter().zip(&mut measured) {
                if runs(peer.names().ours) {
                    o.push(rt.block_on(mailbox_round(ours, size, count)));
                }
                if runs(peer.names().peer) {
                    p.push(rt.block_on(peer.round(size, count)));
                }
            }
        }
        let label = label(size);
        if only.is_some() {
            // A profiling run of one side: no comparison, no table.
            for ((peer, _), (o, p)) in peers.iter().zip(&measured) {
                let names = peer.names();
                for (who, v) in [(names.ours, o), (names.peer, p)] {
                    for r in v {
                        println!(
                            "{who} {label}: {:.0} msg/s, p50 {:.1} µs, p99 {:.1} µs",
                            r.msgs_per_s, r.p50_us, r.p99_us
                        );
                    }
                }
            }
            continue;
        }
        let mut line = Vec::new();
        for ((peer, _), (ours, theirs)) in peers.iter().zip(&measured) {
            let pick = |v: &[Round], f: fn(&Round) -> f64| median(v.iter().map(f).collect());
            let (tp_o, tp_p) = (pick(ours, |r| r.msgs_per_s), pick(theirs, |r| r.msgs_per_s));
            let (p50_o, p50_p) = (pick(ours, |r| r.p50_us), pick(theirs, |r| r.p50_us));
            let (p99_o, p99_p) = (pick(ours, |r| r.p99_us), pick(theirs, |r| r.p99_us));
            let Names {
                peer: name,
                server,
                transport,
                ..
            } = peer.names();
            line.push(format!(
                "mailboxd/{name} {:.2} over {transport} (delivered/s {tp_o:.0}/{tp_p:.0}; p50 {p50_o:.1}/{p50_p:.1} µs; p99 {p99_o:.1}/{p99_p:.1} µs)",
                tp_o / tp_p
            ));
            if size == 100 {
                published.push((transport, tp_o / SUBSCRIBERS as f64));
            }
            let what = format!("{label}, {transport}, vs {server}");
            rows.push(Row {
                what: format!("{what}: delivered messages/s (higher is better)"),
                ours: tp_o,
                peer: tp_p,
                unit: "msg/s",
                goal: "≥ 1.0".into(),
                met: tp_o >= tp_p,
            });
            rows.push(Row {
                what: format!("{what}: p50 latency"),
                ours: p50_o,
                peer: p50_p,
                unit: "µs",
                goal: "—".into(),
                met: true,
            });
            rows.push(Row {
                what: format!("{what}: p99 latency"),
                ours: p99_o,
                peer: p99_p,
                unit: "µs",
                goal: "≤ 1.0".into(),
                met: p99_o <= p99_p,
            });
        }
        println!("{label}: {}", line.join("; "));
    }
    let _ = stop.send(());
    let _ = server.join();
    if only.is_some() {
        return;
    }
    let servers: Vec<String> = peers
        .iter()
        .map(|(p, _)| format!("{} over {}", p.names().server, p.names().transport))
        .collect();
    let mut reference = format!(
        "Reference only, not a peer of this run: a published Spread figure for one daemon, \
         {SPREAD_PUBLISHED_PER_S:.0} messages/s published at 56 B (a user's report on the \
         spread-users list, July 2007: daemon, publisher and one receiver on one machine, the \
         receiver at 12,052 messages/s, about half with four receivers), measured on another \
         machine with another workload, not here. Beside it, this run's mailboxd at 100 B \
         (published = delivered / {SUBSCRIBERS} subscribers, every one keeping up):\n\n\
         | | published messages/s | message | where |\n|---|---|---|---|\n\
         | Spread, one daemon (published figure) | {SPREAD_PUBLISHED_PER_S:.0} | 56 B | another machine: not measured here |\n"
    );
    for (transport, per_s) in &published {
        reference.push_str(&format!(
            "| mailboxd, {transport} | {per_s:.0} | 100 B | this run |\n"
        ));
    }
    write_table_with(
        "mailbox",
        &format!(
            "mailboxd pub/sub vs {} (benches/mailbox.rs)",
            servers.join(" and ")
        ),
        &format!(
            "One publisher, {SUBSCRIBERS} subscribers of one group/channel/subject, at most {WINDOW} messages in flight beyond the slowest subscriber; \
             server on its own thread (mailboxd: current-thread runtime in the bench process; redis-server: its own process; nats-server: its own process), \
             all clients on one current-thread runtime. Each peer is measured against mailboxd over the peer's transport: redis-server and mailboxd over Unix sockets; \
             nats-server (no Unix sockets) and mailboxd's TCP listener over loopback TCP, neither authenticating. Median of {rounds} alternating rounds. \
             Peer = the server the row names."
        ),
        &rows,
        &reference,
    );
}
