//! TAP rows: kernel clients in a namespace against a utcp server on a TAP
//! device, or against the kernel behind a veth pair.

use super::*;

/// The utcp server's socket buffers on the TAP: 1 MiB each way. The
/// kernel's own, behind the veth, grow with the transfer (tcp_rmem's
/// default ceiling is 6 MiB); 256 KiB held the upload at some 0.85 of it,
/// one window of four 64 KiB segments in flight.
const TAP_BUFFER: usize = 1024 * 1024;

/// A namespace removed on drop.
pub(super) struct Ns(String);

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

pub(super) fn ip(args: &[&str]) {
    assert!(
        Command::new("ip").args(args).status().unwrap().success(),
        "ip {}",
        args.join(" ")
    );
}

/// The client namespace's sysctls, the same for the TAP and the veth: the
/// concurrent rows open tens of thousands of connections a round, each
/// leaving a TIME-WAIT on the kernel client that closes first.
pub(super) fn client_sysctls(ns: &str) {
    for setting in [
        "net.ipv4.ip_local_port_range=1024 65535",
        "net.ipv4.tcp_tw_reuse=1",
    ] {
        ip(&["netns", "exec", ns, "sysctl", "-qw", setting]);
    }
}

/// Moves the calling thread (only) into network namespace `ns`.
pub(super) fn enter(ns: &str) {
    let file = std::fs::File::open(format!("/var/run/netns/{ns}")).unwrap();
    // SAFETY: `file` is an open namespace file; setns moves this thread only.
    let moved = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(moved, 0, "setns into the namespace");
}

/// Runs `f` to its end on a thread inside namespace `ns`: what it creates
/// (a TAP device) is made there, never in the host's namespace.
pub(super) fn in_ns_blocking<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let ns = ns.to_owned();
    std::thread::spawn(move || {
        enter(&ns);
        f()
    })
    .join()
    .unwrap()
}

/// Runs `f` on a thread inside namespace `ns` with its own runtime.
pub(super) fn in_ns<F, Fut, T>(ns: &str, f: F) -> tokio::sync::oneshot::Receiver<T>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let ns = ns.to_owned();
    std::thread::spawn(move || {
        enter(&ns);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _ = tx.send(rt.block_on(f()));
    });
    rx
}

/// The TAP/veth workloads, run in this order every round.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) enum Work {
    /// `tap_bulk_bytes()` from the kernel client to the server.
    Upload,
    /// `tap_bulk_bytes()` from the server to the kernel client.
    Download,
    /// Connect+close, one after another, from one client, for `window()`.
    Serial,
    /// `CLIENTS` clients each connecting, exchanging a byte, closing, in
    /// a loop for `window()`.
    Churn,
    /// 64-byte request/responses on one connection for `window()`.
    Rr,
    /// `CLIENTS` connections each doing 64-byte request/responses for
    /// `window()`.
    RrMany,
}

pub(super) const WORKS: [Work; 6] = [
    Work::Upload,
    Work::Download,
    Work::Serial,
    Work::Churn,
    Work::Rr,
    Work::RrMany,
];

/// The workloads this run measures: all of `WORKS`, or, for profiling one
/// of them alone, those `UTCP_BENCH_WORKS` names (comma-separated, as
/// `Upload,Rr`; the TAP part only, which `UTCP_BENCH_ONLY=tap` selects).
pub(super) fn works() -> Vec<Work> {
    match std::env::var("UTCP_BENCH_WORKS") {
        Ok(names) => {
            let picked: Vec<Work> = WORKS
                .into_iter()
                .filter(|w| {
                    names
                        .split(',')
                        .any(|n| n.trim().eq_ignore_ascii_case(&format!("{w:?}")))
                })
                .collect();
            assert!(
                !picked.is_empty(),
                "UTCP_BENCH_WORKS={names:?} names none of {WORKS:?}"
            );
            picked
        }
        Err(_) => WORKS.to_vec(),
    }
}

/// A kernel client socket to `server`, TCP_NODELAY as connkit's streams are.
pub(super) async fn dial(server: SocketAddr) -> TcpStream {
    let c = TcpStream::connect(server).await.unwrap();
    c.set_nodelay(true).unwrap();
    c
}

/// Runs `CLIENTS` copies of `one` (given the time to stop, it returns how
/// many units it did) at once for `window()`; their total.
pub(super) async fn many<F, Fut>(one: F) -> f64
where
    F: Fn(Instant) -> Fut,
    Fut: Future<Output = u64> + Send + 'static,
{
    let end = Instant::now() + window();
    let tasks: Vec<_> = (0..CLIENTS).map(|_| tokio::spawn(one(end))).collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64
}

/// The kernel client's side of `work` against `server`, in a namespace:
/// its rate as the client saw it (MiB/s, conn/s or req/s) and the
/// process's costs per unit meanwhile.
pub(super) async fn kernel_client(work: Work, server: SocketAddr) -> Run {
    let mb = tap_bulk_bytes() as f64 / (1 << 20) as f64;
    match work {
        Work::Upload => {
            let mut c = dial(server).await;
            let (before, start) = (usage(), Instant::now());
            send_bulk(&mut c, tap_bulk_bytes()).await;
            // The server answers one byte once it has read everything.
            c.read_exact(&mut [0u8; 1]).await.unwrap();
            Run::since(before, mb, start.elapsed().as_secs_f64())
        }
        Work::Download => {
            let mut c = dial(server).await;
            let (before, start) = (usage(), Instant::now());
            read_bulk(&mut c, tap_bulk_bytes()).await;
            Run::since(before, mb, start.elapsed().as_secs_f64())
        }
        Work::Serial => {
            let (before, start) = (usage(), Instant::now());
            let mut conns = 0u32;
            while start.elapsed() < window() {
                close_raw(dial(server).await).await;
                conns += 1;
            }
            Run::since(before, f64::from(conns), start.elapsed().as_secs_f64())
        }
        Work::Churn => {
            let (before, start) = (usage(), Instant::now());
            let conns = many(|end| async move {
                let mut n = 0;
                while Instant::now() < end {
                    let mut c = dial(server).await;
                    let mut byte = [1u8];
                    c.write_all(&byte).await.unwrap();
                    c.read_exact(&mut byte).await.unwrap();
                    close_raw(c).await;
                    n += 1;
                }
                n
            })
            .await;
            Run::since(before, conns, start.elapsed().as_secs_f64())
        }
        Work::Rr => {
            let mut c = dial(server).await;
            let mut buf = [7u8; MSG];
            let (before, start) = (usage(), Instant::now());
            let mut requests = 0u32;
            while start.elapsed() < window() {
                request(&mut c, &mut buf).await;
                requests += 1;
            }
            Run::since(before, f64::from(requests), start.elapsed().as_secs_f64())
        }
        Work::RrMany => {
            // Every connection is up before the clock starts.
            let mut conns = Vec::new();
            for _ in 0..CLIENTS {
                conns.push(dial(server).await);
            }
            let conns = std::sync::Mutex::new(conns);
            let (before, start) = (usage(), Instant::now());
            let requests = many(|end| {
                let mut c = conns.lock().unwrap().pop().unwrap();
                async move {
                    let mut buf = [7u8; MSG];
                    let mut n = 0;
                    while Instant::now() < end {
                        request(&mut c, &mut buf).await;
                        n += 1;
                    }
                    n
                }
            })
            .await;
            Run::since(before, requests, start.elapsed().as_secs_f64())
        }
    }
}

/// A server the kernel clients connect to: the utcp stack's listener on
/// the TAP, or the kernel's behind the veth.
pub(super) trait Server: 'static {
    type S: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// The next connection; `None` when none came in time.
    fn take(&mut self) -> impl Future<Output = Option<Self::S>>;
    /// Closes `s` in order.
    fn finish(s: Self::S) -> impl Future<Output = ()> + Send;
}

impl Server for UtcpListener {
    type S = UtcpStream;
    async fn take(&mut self) -> Option<UtcpStream> {
        self.accept(soon()).await.ok()
    }
    async fn finish(s: UtcpStream) {
        let _ = s.close(soon()).await;
    }
}

impl Server for TcpListener {
    type S = TcpStream;
    async fn take(&mut self) -> Option<TcpStream> {
        let (s, _) = self.accept().await.ok()?;
        s.set_nodelay(true).unwrap();
        Some(s)
    }
    async fn finish(s: TcpStream) {
        close_raw(s).await;
    }
}

/// The server's side of `work` on one connection.
pub(super) async fn handle<L: Server>(mut s: L::S, work: Work) {
    match work {
        Work::Upload => {
            read_bulk(&mut s, tap_bulk_bytes()).await;
            s.write_all(&[1]).await.unwrap();
        }
        Work::Download => send_bulk(&mut s, tap_bulk_bytes()).await,
        Work::Serial => {}
        Work::Churn => echo(&mut s, 1).await,
        Work::Rr | Work::RrMany => echo(&mut s, MSG).await,
    }
    L::finish(s).await;
}

/// Runs `work` with a kernel client in namespace `ns` against `listener`,
/// serving every connection on this runtime, until the client is done.
pub(super) async fn run_work<L: Server>(
    listener: &mut L,
    ns: &str,
    server: SocketAddr,
    work: Work,
) -> Run {
    let mut client = in_ns(ns, move || kernel_client(work, server));
    loop {
        tokio::select! {
            run = &mut client => return run.expect("the kernel client ended early"),
            s = listener.take() => if let Some(s) = s {
                tokio::spawn(handle::<L>(s, work));
            },
        }
    }
}

/// Every workload once over a TAP: the kernel client in a namespace, the
/// utcp stack on the TAP in it. One `Run` per `works()`, in order.
pub(super) async fn tap_round(n: u32) -> Vec<Run> {
    let ns = Ns(format!("utb-{}-{n}", std::process::id()));
    let tap = format!("utb{}x{n}", std::process::id() % 100_000);
    ip(&["netns", "add", &ns.0]);
    client_sysctls(&ns.0);
    let (name, runtime) = (tap.clone(), tokio::runtime::Handle::current());
    // Made inside the namespace, registered with this runtime's reactor.
    let device = in_ns_blocking(&ns.0, move || {
        let _in = runtime.enter();
        Tap::open(&name)
    })
    .unwrap();
    ip(&["-n", &ns.0, "addr", "add", "10.79.0.1/24", "dev", &tap]);
    ip(&["-n", &ns.0, "link", "set", &tap, "up"]);
    let stack = Stack::builder(device)
        .address("10.79.0.2/24".parse().unwrap())
        .buffers(TAP_BUFFER, TAP_BUFFER)
        .build()
        .unwrap();
    let mut listener = UtcpListener::bind(&stack, 6000, 64).unwrap();
    let mut runs = Vec::new();
    for work in works() {
        runs.push(
            run_work(
                &mut listener,
                &ns.0,
                "10.79.0.2:6000".parse().unwrap(),
                work,
            )
            .await,
        );
    }
    runs
}

/// The same over the kernel's TCP between two namespaces of its own
/// (server and client, one veth between them), so nothing is added to the
/// host's namespace and dropping the namespaces removes everything.
pub(super) async fn veth_round(n: u32) -> Vec<Run> {
    let server_ns = Ns(format!("vtb-{}-{n}-s", std::process::id()));
    let client_ns = Ns(format!("vtb-{}-{n}-c", std::process::id()));
    let (server_end, client_end) = (
        format!("vb{}s{n}", std::process::id() % 100_000),
        format!("vb{}c{n}", std::process::id() % 100_000),
    );
    ip(&["netns", "add", &server_ns.0]);
    ip(&["netns", "add", &client_ns.0]);
    client_sysctls(&client_ns.0);
    ip(&[
        "-n",
        &client_ns.0,
        "link",
        "add",
        &client_end,
        "mtu",
        "1500",
        "type",
        "veth",
        "peer",
        "name",
        &server_end,
        "mtu",
        "1500",
        "netns",
        &server_ns.0,
    ]);
    ip(&[
        "-n",
        &client_ns.0,
        "addr",
        "add",
        "10.80.0.1/24",
        "dev",
        &client_end,
    ]);
    ip(&["-n", &client_ns.0, "link", "set", &client_end, "up"]);
    ip(&[
        "-n",
        &server_ns.0,
        "addr",
        "add",
        "10.80.0.2/24",
        "dev",
        &server_end,
    ]);
    ip(&["-n", &server_ns.0, "link", "set", &server_end, "up"]);
    // Bound in the server's namespace; served here, as the TAP's stack is.
    let listener = in_ns_blocking(&server_ns.0, || {
        std::net::TcpListener::bind("10.80.0.2:6000").unwrap()
    });
    listener.set_nonblocking(true).unwrap();
    let mut listener = TcpListener::from_std(listener).unwrap();
    let mut runs = Vec::new();
    for work in works() {
        let server = "10.80.0.2:6000".parse().unwrap();
        runs.push(run_work(&mut listener, &client_ns.0, server, work).await);
    }
    runs
}

pub(super) async fn tap(rows: &mut Vec<Row>, costs: &mut Costs) {
    if !rustix::process::geteuid().is_root() {
        conn_test_support::skip("the TAP vs veth part of benches/utcp.rs", "it needs root");
        return;
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        conn_test_support::skip(
            "the TAP vs veth part of benches/utcp.rs",
            "it needs /dev/net/tun",
        );
        return;
    }
    // UTCP_BENCH_SIDE=tap|veth runs one side alone, to profile it apart.
    if let Ok(side) = std::env::var("UTCP_BENCH_SIDE") {
        for n in 0..rounds() as u32 {
            let runs = match side.as_str() {
                "tap" => tap_round(n).await,
                "veth" => veth_round(n).await,
                _ => panic!("UTCP_BENCH_SIDE={side:?}: tap or veth"),
            };
            for (run, work) in runs.iter().zip(works()) {
                eprintln!(
                    "utcp bench: round {n} {work:?} {side}: {:.1} (per unit: syscalls {:.1?}, context switches {:.2})",
                    run.rate, run.syscalls, run.csw
                );
            }
        }
        return;
    }
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    for n in 0..rounds() as u32 {
        ours.push(tap_round(n).await);
        peer.push(veth_round(n).await);
        // Each round's figures, to see the spread the medians hide.
        for (at, work) in works().iter().enumerate() {
            let (o, p) = (ours[n as usize][at], peer[n as usize][at]);
            eprintln!(
                "utcp bench: round {n} {work:?}: TAP {:.1}, veth {:.1} (per unit: syscalls {:.1?} vs {:.1?}, context switches {:.2} vs {:.2})",
                o.rate, p.rate, o.syscalls, p.syscalls, o.csw, p.csw
            );
        }
    }
    let of = |runs: &[Vec<Run>], work: Work| {
        let at = works().iter().position(|w| *w == work)?;
        Some(Run::median(&runs.iter().map(|r| r[at]).collect::<Vec<_>>()))
    };
    for (work, what, unit, goal) in [
        (
            Work::Upload,
            "TAP vs veth: bulk 64 MiB upload (kernel client → server)",
            "MiB/s",
            1.0,
        ),
        (
            Work::Download,
            "TAP vs veth: bulk 64 MiB download (server → kernel client)",
            "MiB/s",
            1.0,
        ),
        (
            Work::Serial,
            "TAP vs veth: connect + close, one kernel client",
            "conn/s",
            1.0,
        ),
        (
            Work::Churn,
            "TAP vs veth: connect + 1 B each way + close, 32 kernel clients",
            "conn/s",
            1.2,
        ),
        (
            Work::Rr,
            "TAP vs veth: 64 B request/response, one kernel client",
            "req/s",
            1.0,
        ),
        (
            Work::RrMany,
            "TAP vs veth: 64 B request/response, 32 kernel clients",
            "req/s",
            1.0,
        ),
    ] {
        let (Some(o), Some(p)) = (of(&ours, work), of(&peer, work)) else {
            continue;
        };
        rows.push(Row {
            what: what.into(),
            ours: o.rate,
            peer: p.rate,
            unit,
            goal: format!(">= {goal:.1}"),
            met: o.rate >= goal * p.rate,
        });
        if unit == "conn/s" {
            costs.add(what, o, p);
        }
    }
}
