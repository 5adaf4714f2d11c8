//! Per-core serving: one current-thread runtime per core, each with its own
//! accept loop and its own connections, nothing shared on the hot path
//! (mTCP's per-core contexts).

use std::future::{Future, IntoFuture};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tower_service::Service;

use super::{Incoming, ShutdownReport};
use crate::lifecycle::SplitListener;
use crate::{Error, ErrorKind, Listener, Result};

/// Builds a multi-core server whose connections each live and die on the
/// thread that accepted them.
///
/// [`serve`](crate::serve()) on tokio's multi-thread runtime moves work between
/// threads, and on these machines a wake-up that crosses threads costs tens
/// of microseconds, more than the work of a small request. `Server::per_core`
/// starts `n` threads instead, each with a current-thread runtime, its own
/// handle on the listener ([`SplitListener`]) and its own accept loop; the
/// service is cloned once per thread (share state across threads yourself,
/// e.g. through an `Arc`). One shutdown signal stops every thread under one
/// drain deadline and the reports merge into one [`ShutdownReport`]. A
/// panic in one connection's service ends that connection only and is
/// reported among the errors.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conn_core::{Connection, Deadline, mem::{MemListener, MemStream}};
/// use conn_core::serve::{Server, lines};
/// use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
/// use tower::service_fn;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let listener = MemListener::bind("per-core-doc")?;
/// let thread_name = service_fn(|_line: String| async {
///     Ok::<_, conn_core::Error>(std::thread::current().name().unwrap_or("?").to_owned())
/// });
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let server = tokio::spawn(
///     Server::per_core(2)
///         .serve(listener, lines(thread_name))
///         .with_graceful_shutdown(async { stopped.await.ok(); }, Duration::from_secs(1))
///         .into_future(),
/// );
///
/// let mut seen = Vec::new();
/// for _ in 0..2 {
///     let mut client = BufReader::new(MemStream::connect("per-core-doc", Deadline::NEVER).await?);
///     client.get_mut().write_all(b"who?\n").await?;
///     let mut answer = String::new();
///     client.read_line(&mut answer).await?;
///     seen.push(answer);
///     client.into_inner().close(Deadline::NEVER).await?;
/// }
/// // mem:// listeners take turns, so each thread served one client.
/// seen.sort();
/// assert_eq!(seen, ["connkit-core-0\n", "connkit-core-1\n"]);
///
/// stop.send(()).unwrap();
/// let report = server.await.unwrap()?;
/// assert_eq!((report.threads, report.accepted, report.closed), (2, 2, 2));
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Server {
    threads: usize,
    pin: bool,
}

impl Default for Server {
    /// One thread per core this process may run on.
    fn default() -> Self {
        Server::per_core(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

/// Makes thread `core`'s listener, on that thread.
type Bind<L> = Arc<dyn Fn(usize) -> Result<L> + Send + Sync>;

impl Server {
    /// A server of `threads` threads (at least one); `Server::default()` has
    /// one per available core.
    pub fn per_core(threads: usize) -> Server {
        Server {
            threads: threads.max(1),
            pin: false,
        }
    }

    /// How many threads serve.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Pins thread i to the i-th CPU this process may run on (round robin
    /// when there are more threads than CPUs), as mTCP binds each context
    /// to its core: caches stay warm and the scheduler never moves a
    /// thread's connections. Off by default; a CPU that cannot be pinned is
    /// logged and the thread runs unpinned.
    pub fn pin_threads(mut self, pin: bool) -> Server {
        self.pin = pin;
        self
    }

    /// Serves `listener` on every thread: thread 0 gets `listener` itself,
    /// every other thread a [`split`](SplitListener::split) of it.
    pub fn serve<L, S>(self, listener: L, service: S) -> PerCoreServe<L, S>
    where
        L: SplitListener,
    {
        let mut handles = Vec::with_capacity(self.threads);
        for _ in 1..self.threads {
            match listener.split() {
                Ok(split) => handles.push(split),
                Err(e) => {
                    let mut serve = self.serve_each(Vec::new(), service);
                    serve.failed = Some(e);
                    return serve;
                }
            }
        }
        handles.insert(0, listener);
        self.serve_each(handles, service)
    }

    /// Serves one listener per thread, as many threads as `listeners`
    /// (e.g. from [`Registry::bind_per_core`](crate::Registry::bind_per_core)).
    pub fn serve_each<L, S>(self, listeners: Vec<L>, service: S) -> PerCoreServe<L, S>
    where
        L: Listener,
    {
        self.serve_each_with(listeners, Ok, service)
    }

    /// Serves the listener `bind(item)` makes of one of `items` on each
    /// thread, as many threads as `items`; `bind` runs on the thread that
    /// is to drive the listener, before its accept loop starts (as
    /// [`serve_with`](Server::serve_with)), with the item of that thread.
    pub fn serve_each_with<T, B, L, S>(
        self,
        items: Vec<T>,
        bind: B,
        service: S,
    ) -> PerCoreServe<L, S>
    where
        T: Send + 'static,
        B: Fn(T) -> Result<L> + Send + Sync + 'static,
    {
        let threads = items.len().max(1);
        let items = Mutex::new(items.into_iter().map(Some).collect::<Vec<_>>());
        Server { threads, ..self }.serve_with(
            move |core| {
                let item = items
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_mut(core)
                    .and_then(Option::take)
                    .ok_or_else(|| {
                        Error::new(ErrorKind::InvalidType)
                            .during("per-core serve")
                            .detail(format!("nothing to serve for thread {core}"))
                    })?;
                bind(item)
            },
            service,
        )
    }

    /// Serves the listener `bind(core)` makes, called on each thread
    /// `core` (0 to n-1) before its accept loop starts: for listeners that
    /// must be born on the thread that drives them, such as one stack of a
    /// userspace TCP stack group per thread.
    pub fn serve_with<B, L, S>(self, bind: B, service: S) -> PerCoreServe<L, S>
    where
        B: Fn(usize) -> Result<L> + Send + Sync + 'static,
    {
        PerCoreServe {
            threads: self.threads,
            pin: self.pin,
            bind: Arc::new(bind),
            service,
            failed: None,
        }
    }
}

/// A per-core server without graceful shutdown; `.await` it to run it. It
/// runs until a thread's listener fails for good.
#[must_use = "a server does nothing until awaited"]
pub struct PerCoreServe<L, S> {
    threads: usize,
    pin: bool,
    bind: Bind<L>,
    service: S,
    /// Why it cannot start (a listener that would not split), reported when
    /// awaited.
    failed: Option<Error>,
}

impl<L, S: std::fmt::Debug> std::fmt::Debug for PerCoreServe<L, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerCoreServe")
            .field("threads", &self.threads)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

/// A per-core server that shuts down gracefully, on every thread at once,
/// when its signal fires; `.await` it to run it.
#[must_use = "a server does nothing until awaited"]
#[derive(Debug)]
pub struct PerCoreGraceful<L, S, F> {
    serve: PerCoreServe<L, S>,
    signal: F,
    drain: Duration,
}

impl<L, S> PerCoreServe<L, S> {
    /// When `signal` resolves, every thread stops accepting, asks its
    /// connections to end gracefully and waits up to `drain` for them,
    /// killing the rest; the threads' reports merge into one.
    pub fn with_graceful_shutdown<F>(self, signal: F, drain: Duration) -> PerCoreGraceful<L, S, F>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        PerCoreGraceful {
            serve: self,
            signal,
            drain,
        }
    }
}

impl<L, S> IntoFuture for PerCoreServe<L, S>
where
    L: Listener,
    S: Service<Incoming<L::Conn>, Response = ()> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Error>,
{
    type Output = Result<ShutdownReport>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(run(self, std::future::pending(), Duration::ZERO))
    }
}

impl<L, S, F> IntoFuture for PerCoreGraceful<L, S, F>
where
    L: Listener,
    S: Service<Incoming<L::Conn>, Response = ()> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Error>,
    F: Future<Output = ()> + Send + 'static,
{
    type Output = Result<ShutdownReport>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(run(self.serve, self.signal, self.drain))
    }
}

async fn run<L, S, F>(
    serve: PerCoreServe<L, S>,
    signal: F,
    drain: Duration,
) -> Result<ShutdownReport>
where
    L: Listener,
    S: Service<Incoming<L::Conn>, Response = ()> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Error>,
    F: Future<Output = ()> + Send,
{
    if let Some(e) = serve.failed {
        return Err(e.during("per-core serve"));
    }
    let stop = CancellationToken::new();
    let mut threads = Vec::with_capacity(serve.threads);
    let mut failed = None;
    for core in 0..serve.threads {
        let (report, reported) = oneshot::channel();
        let (bind, service, stop) = (serve.bind.clone(), serve.service.clone(), stop.clone());
        let pin = serve.pin;
        let started = std::thread::Builder::new()
            .name(format!("connkit-core-{core}"))
            .spawn(move || {
                if pin {
                    pin_to_cpu(core);
                }
                let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    core_main(core, &*bind, service, stop.clone(), drain)
                }))
                .unwrap_or_else(|panic| Err(Error::from_panic(&*panic, "serve thread")));
                if result
                    .as_ref()
                    .map_or(true, |r| r.listener_failed.is_some())
                {
                    // One thread that cannot serve stops them all.
                    stop.cancel();
                }
                let _ = report.send(result);
            });
        match started {
            Ok(_detached) => threads.push(reported),
            Err(e) => {
                failed = Some(Error::io(
                    e,
                    "start serve thread",
                    format_args!("core {core}"),
                ));
                break;
            }
        }
    }
    if failed.is_some() {
        stop.cancel();
    } else {
        tokio::select! {
            () = signal => stop.cancel(),
            () = stop.cancelled() => {}
        }
    }

    let mut merged = ShutdownReport::default();
    for (core, reported) in threads.into_iter().enumerate() {
        let result = reported.await.unwrap_or_else(|_| {
            Err(Error::new(ErrorKind::Other).detail(format!("serve thread {core} vanished")))
        });
        match result {
            Ok(report) => merged.merge(report),
            Err(e) => {
                failed.get_or_insert(e.during("per-core serve").detail(format!("thread {core}")));
            }
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(merged),
    }
}

/// Pins the calling thread to the `core`-th CPU it may run on.
fn pin_to_cpu(core: usize) {
    use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};
    let pinned = sched_getaffinity(None).and_then(|allowed| {
        let cpus: Vec<usize> = (0..CpuSet::MAX_CPU)
            .filter(|&c| allowed.is_set(c))
            .collect();
        let Some(&cpu) = cpus.get(core % cpus.len().max(1)) else {
            return Ok(());
        };
        let mut one = CpuSet::new();
        one.set(cpu);
        sched_setaffinity(None, &one)
    });
    if let Err(e) = pinned {
        tracing::warn!(core, error = %e, "could not pin the serve thread to a CPU; it runs unpinned");
    }
}

/// One thread's life: its runtime, its listener, its accept loop.
fn core_main<L, S>(
    core: usize,
    bind: &(dyn Fn(usize) -> Result<L> + Send + Sync),
    service: S,
    stop: CancellationToken,
    drain: Duration,
) -> Result<ShutdownReport>
where
    L: Listener,
    S: Service<Incoming<L::Conn>, Response = ()> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Error>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io(e, "start runtime", format_args!("serve thread {core}")))?;
    runtime.block_on(async move {
        let listener = bind(core)?;
        super::server::run(listener, service, stop.cancelled_owned(), drain).await
    })
}
