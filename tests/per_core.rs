//! `Server::per_core`: every transport served by several threads, each with
//! its own runtime, listener and connections; one signal, one merged report;
//! a panicking connection contained; layers unchanged.

use std::future::IntoFuture;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use connkit::core::layer::{DeadlineLayer, Shutdown, ShutdownLayer};
use connkit::core::lifecycle::SplitListener;
use connkit::core::mem::{MemListener, MemStream};
use connkit::core::serve::{Incoming, PerCoreServe, Server, lines};
use connkit::core::{
    BoxConnection, Connection, Deadline, Error, ErrorKind, Listener, Result, ShutdownReport,
};
use connkit::ipc::{IpcListener, IpcStream};
use connkit::tcp::{TcpListener, TcpStream};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tower::{ServiceBuilder, ServiceExt, service_fn};

const THREADS: usize = 2;

/// The listeners under test, each bound fresh, and how to dial them.
#[derive(Clone, Copy, Debug)]
enum Transport {
    Mem,
    Ipc,
    /// SO_REUSEPORT: one accept queue per thread.
    TcpReusePort,
    /// One socket, its descriptor duplicated: one shared accept queue.
    TcpShared,
}

const ALL: [Transport; 4] = [
    Transport::Mem,
    Transport::Ipc,
    Transport::TcpReusePort,
    Transport::TcpShared,
];

static UNIQUE: AtomicUsize = AtomicUsize::new(0);

impl Transport {
    fn unique(self) -> String {
        format!(
            "per-core-{self:?}-{}-{}",
            std::process::id(),
            UNIQUE.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Binds, and returns the per-thread listeners plus the URL to dial.
    fn bind(self) -> (Vec<connkit::core::BoxListener>, String) {
        fn boxed<L: SplitListener>(l: L) -> Vec<connkit::core::BoxListener> {
            l.per_core(THREADS)
                .unwrap()
                .into_iter()
                .map(|l| Box::new(l) as connkit::core::BoxListener)
                .collect()
        }
        match self {
            Transport::Mem => {
                let name = self.unique();
                (boxed(MemListener::bind(&name).unwrap()), name)
            }
            Transport::Ipc => {
                let path = std::env::temp_dir().join(format!("{}.sock", self.unique()));
                let listener = IpcListener::bind(&path).unwrap();
                (boxed(listener), path.display().to_string())
            }
            Transport::TcpReusePort => {
                let listener = TcpListener::options()
                    .reuse_port(true)
                    .bind("127.0.0.1:0")
                    .unwrap();
                let addr = listener.local_addr().to_string();
                (boxed(listener), addr)
            }
            Transport::TcpShared => {
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = listener.local_addr().to_string();
                (boxed(listener), addr)
            }
        }
    }

    async fn connect(self, to: &str) -> Result<BoxConnection> {
        let within = Deadline::after(Duration::from_secs(10));
        Ok(match self {
            Transport::Mem => Box::new(MemStream::connect(to, within).await?),
            Transport::Ipc => Box::new(IpcStream::connect(to, within).await?),
            Transport::TcpReusePort | Transport::TcpShared => {
                Box::new(TcpStream::connect(to, within).await?)
            }
        })
    }
}

/// Runs `serve` on a task until the returned sender fires, draining for up
/// to `drain`; the task ends with the merged report.
fn run_until_stopped<L, S>(
    serve: PerCoreServe<L, S>,
    drain: Duration,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<ShutdownReport>>,
)
where
    L: Listener,
    S: tower::Service<Incoming<L::Conn>, Response = ()> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Error>,
{
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        serve
            .with_graceful_shutdown(
                async {
                    stopped.await.ok();
                },
                drain,
            )
            .into_future(),
    );
    (stop, server)
}

/// A line client: sends `line`, returns the answer without its newline.
async fn ask(client: &mut BufReader<BoxConnection>, line: &str) -> String {
    client
        .get_mut()
        .write_all(format!("{line}\n").as_bytes())
        .await
        .unwrap();
    let mut answer = String::new();
    client.read_line(&mut answer).await.unwrap();
    answer.trim_end().to_owned()
}

/// Answers with the name of the thread that runs the call, after keeping
/// that thread busy for a moment, as real work would: so a peer arriving
/// meanwhile has to be taken by another thread.
fn busy_thread_name() -> impl tower::Service<
    String,
    Response = String,
    Error = Error,
    Future = impl Future<Output = Result<String>> + Send,
> + Clone
+ Send
+ 'static {
    service_fn(|line: String| async move {
        if line == "panic" {
            panic!("the handler was asked to panic");
        }
        std::thread::sleep(Duration::from_millis(2));
        Ok::<_, Error>(std::thread::current().name().unwrap_or("?").to_owned())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_thread_accepts_and_each_connection_stays_on_the_thread_that_accepted_it() {
    for transport in ALL {
        let (listeners, to) = transport.bind();
        let (stop, server) = run_until_stopped(
            Server::per_core(THREADS).serve_each(listeners, lines(busy_thread_name())),
            Duration::from_secs(5),
        );

        // 32 clients at once, each asking twice: first and last answer
        // must name the same thread.
        let mut clients = Vec::new();
        for _ in 0..32 {
            let to = to.clone();
            clients.push(tokio::spawn(async move {
                let mut client = BufReader::new(transport.connect(&to).await.unwrap());
                let first = ask(&mut client, "first").await;
                tokio::time::sleep(Duration::from_millis(5)).await;
                let last = ask(&mut client, "last").await;
                client
                    .into_inner()
                    .close(Deadline::after(Duration::from_secs(5)))
                    .await
                    .unwrap();
                (first, last)
            }));
        }
        let mut threads = std::collections::BTreeSet::new();
        for client in clients {
            let (first, last) = client.await.unwrap();
            assert_eq!(
                first, last,
                "{transport:?}: a connection moved between threads"
            );
            assert!(first.starts_with("connkit-core-"), "{transport:?}: {first}");
            threads.insert(first);
        }
        assert_eq!(
            threads.len(),
            THREADS,
            "{transport:?}: connections were served by {threads:?}"
        );

        stop.send(()).unwrap();
        let report = server.await.unwrap().unwrap();
        assert_eq!(
            (
                report.threads,
                report.accepted,
                report.closed,
                report.killed
            ),
            (THREADS, 32, 32, 0),
            "{transport:?}: {report}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_signal_drains_every_thread_under_one_deadline_into_one_report() {
    for transport in ALL {
        let (listeners, to) = transport.bind();
        let (stop, server) = run_until_stopped(
            Server::per_core(THREADS).serve_each(listeners, lines(busy_thread_name())),
            Duration::from_millis(300),
        );
        // Idle clients on every thread: connect until both threads hold one.
        let mut idle = Vec::new();
        let mut threads = std::collections::BTreeSet::new();
        while threads.len() < THREADS {
            assert!(
                idle.len() < 200,
                "{transport:?}: one thread took every peer"
            );
            let mut client = BufReader::new(transport.connect(&to).await.unwrap());
            threads.insert(ask(&mut client, "who").await);
            idle.push(client);
        }
        // And one that never ends its side: killed at the drain deadline.
        let mut stubborn = BufReader::new(transport.connect(&to).await.unwrap());
        ask(&mut stubborn, "who").await;

        stop.send(()).unwrap();
        // Idle clients see end-of-stream and close in order; the stubborn
        // one keeps its side open.
        for mut client in idle {
            let mut rest = String::new();
            client.read_line(&mut rest).await.unwrap();
            assert_eq!(rest, "", "{transport:?}");
            client
                .into_inner()
                .close(Deadline::after(Duration::from_secs(5)))
                .await
                .unwrap();
        }
        let report = server.await.unwrap().unwrap();
        assert_eq!(report.threads, THREADS, "{transport:?}: {report}");
        assert_eq!(
            report.accepted,
            report.closed + 1,
            "{transport:?}: {report}"
        );
        assert_eq!(report.killed, 1, "{transport:?}: {report}");
        assert!(report.errors.is_empty(), "{transport:?}: {report}");
        drop(stubborn);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_one_connection_ends_only_that_connection_and_is_reported() {
    let (listeners, to) = Transport::Ipc.bind();
    let (stop, server) = run_until_stopped(
        Server::per_core(THREADS).serve_each(listeners, lines(busy_thread_name())),
        Duration::from_secs(5),
    );
    // Clients on every thread, so the panic hits a thread that serves others.
    let mut clients = Vec::new();
    let mut threads = std::collections::BTreeSet::new();
    while threads.len() < THREADS {
        let mut client = BufReader::new(Transport::Ipc.connect(&to).await.unwrap());
        threads.insert(ask(&mut client, "who").await);
        clients.push(client);
    }
    let mut doomed = BufReader::new(Transport::Ipc.connect(&to).await.unwrap());
    doomed.get_mut().write_all(b"panic\n").await.unwrap();
    let mut nothing = String::new();
    let _ = doomed.read_line(&mut nothing).await;
    assert_eq!(nothing, "", "the panicking connection is ended");

    // Every other connection, on every thread, still answers.
    for client in &mut clients {
        assert!(
            ask(client, "still there?")
                .await
                .starts_with("connkit-core-")
        );
    }
    // And new ones are still accepted.
    let mut late = BufReader::new(Transport::Ipc.connect(&to).await.unwrap());
    assert!(ask(&mut late, "hello").await.starts_with("connkit-core-"));
    clients.push(late);

    stop.send(()).unwrap();
    for client in clients {
        client
            .into_inner()
            .close(Deadline::after(Duration::from_secs(5)))
            .await
            .unwrap();
    }
    let report = server.await.unwrap().unwrap();
    assert_eq!(report.errors.total(), 1, "{report}");
    let error = report.errors.sample()[0].to_string();
    assert!(
        error.contains("panicked: the handler was asked to panic"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layers_compose_unchanged_and_each_thread_gets_its_own_clone() {
    let (listeners, to) = Transport::Mem.bind();
    let calls = Shutdown::new();
    let service = ServiceBuilder::new()
        .layer(ShutdownLayer::new(calls.clone()))
        .layer(DeadlineLayer::new(Duration::from_millis(50)))
        .service(service_fn(|line: String| async move {
            let ms: u64 = line.parse().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, Error>(format!("slept {ms}"))
        }))
        .map_result(|r: Result<String>| Ok::<_, Error>(r.unwrap_or_else(|e| format!("{e}"))));
    let (stop, server) = run_until_stopped(
        Server::per_core(THREADS).serve_each(listeners, lines(service)),
        Duration::from_secs(5),
    );
    let mut a = BufReader::new(Transport::Mem.connect(&to).await.unwrap());
    let mut b = BufReader::new(Transport::Mem.connect(&to).await.unwrap());
    assert_eq!(ask(&mut a, "1").await, "slept 1");
    assert!(ask(&mut b, "500").await.contains("ETIMEDOUT"));
    // The ShutdownLayer's controller is shared by every thread's clone.
    calls.trigger();
    assert!(ask(&mut a, "1").await.contains("ESHUTDOWN"));
    assert!(ask(&mut b, "1").await.contains("ESHUTDOWN"));

    stop.send(()).unwrap();
    for client in [a, b] {
        client
            .into_inner()
            .close(Deadline::after(Duration::from_secs(5)))
            .await
            .unwrap();
    }
    let report = server.await.unwrap().unwrap();
    assert_eq!((report.accepted, report.closed), (2, 2), "{report}");
}

#[tokio::test]
async fn a_thread_whose_listener_cannot_be_made_stops_the_server_with_that_error() {
    let name = Transport::Mem.unique();
    let taken = MemListener::bind(&name).unwrap();
    let result = Server::per_core(THREADS)
        .serve_with(
            {
                let name = name.clone();
                move |core| {
                    if core == 0 {
                        MemListener::bind(&format!("{name}-free"))
                    } else {
                        // Already held by `taken`: AddrInUse.
                        MemListener::bind(&name)
                    }
                }
            },
            lines(busy_thread_name()),
        )
        .await;
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err}");
    assert!(err.to_string().contains("thread 1"), "{err}");
    assert_eq!(taken.local_endpoint().address(), name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_threads_each_run_on_one_cpu() {
    use rustix::thread::{CpuSet, sched_getaffinity};
    let (listeners, to) = Transport::Mem.bind();
    let cpus_of_this_thread = service_fn(|_line: String| async {
        let allowed = sched_getaffinity(None).unwrap();
        let cpus: Vec<usize> = (0..CpuSet::MAX_CPU)
            .filter(|&c| allowed.is_set(c))
            .collect();
        Ok::<_, Error>(format!("{cpus:?}"))
    });
    let (stop, server) = run_until_stopped(
        Server::per_core(THREADS)
            .pin_threads(true)
            .serve_each(listeners, lines(cpus_of_this_thread)),
        Duration::from_secs(5),
    );
    let allowed = sched_getaffinity(None).unwrap();
    let ours: Vec<usize> = (0..CpuSet::MAX_CPU)
        .filter(|&c| allowed.is_set(c))
        .collect();
    // mem:// alternates between the threads' listeners: one client each.
    let mut seen = Vec::new();
    for _ in 0..THREADS {
        let mut client = BufReader::new(Transport::Mem.connect(&to).await.unwrap());
        seen.push(ask(&mut client, "cpus?").await);
        client
            .into_inner()
            .close(Deadline::after(Duration::from_secs(5)))
            .await
            .unwrap();
    }
    seen.sort();
    let expected: Vec<String> = (0..THREADS)
        .map(|i| format!("[{}]", ours[i % ours.len()]))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    seen.dedup();
    assert_eq!(seen, expected, "each thread on its own CPU of {ours:?}");
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
