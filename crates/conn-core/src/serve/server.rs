use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use tower_service::Service;

use super::Work;
use super::accept::{AcceptBackoff, AcceptVerdict, accept_verdict};
use super::tasks::Tasks;
use super::{Graceful, Incoming, ShutdownReport};
use crate::{Deadline, Error, Listener, Result};

/// Serves every connection `listener` accepts with a clone of `service`.
///
/// The service is called once per connection with an [`Incoming`]; its
/// future drives that connection to its end and runs on its own task. The
/// loop waits for `poll_ready` before accepting, so a
/// `tower::limit::ConcurrencyLimitLayer` on the service bounds open
/// connections. When the descriptor table fills (EMFILE, ENFILE) the loop
/// logs once, pauses with a growing backoff (never spinning), and goes on
/// when descriptors free up.
///
/// The listener's `accept` must be cancel safe (every connkit listener is).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conn_core::{Connection, Deadline, mem::{MemListener, MemStream}, serve::{lines, serve}};
/// use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
/// use tower::service_fn;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let listener = MemListener::bind("serve-doc")?;
/// let upper = service_fn(|line: String| async move { Ok::<_, conn_core::Error>(line.to_uppercase()) });
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let server = tokio::spawn(
///     serve(listener, lines(upper))
///         .with_graceful_shutdown(async { stopped.await.ok(); }, Duration::from_secs(1))
///         .into_future(),
/// );
///
/// let mut client = BufReader::new(MemStream::connect("serve-doc", Deadline::NEVER).await?);
/// client.get_mut().write_all(b"hello\n").await?;
/// let mut answer = String::new();
/// client.read_line(&mut answer).await?;
/// assert_eq!(answer, "HELLO\n");
///
/// // Graceful shutdown half-closes the idle connection; our close completes
/// // the orderly handshake.
/// stop.send(()).unwrap();
/// client.into_inner().close(Deadline::NEVER).await?;
/// let report = server.await.unwrap()?;
/// assert_eq!((report.accepted, report.closed, report.killed), (1, 1, 0));
/// # Ok(()) }
/// ```
pub fn serve<L, S>(listener: L, service: S) -> Serve<L, S> {
    Serve { listener, service }
}

/// A serve loop without graceful shutdown; `.await` it to run it. It runs
/// until the listener fails for good, then drains its connections and
/// returns the report, with the failure in
/// [`listener_failed`](ShutdownReport::listener_failed).
#[derive(Debug)]
#[must_use = "a server does nothing until awaited"]
pub struct Serve<L, S> {
    listener: L,
    service: S,
}

/// A serve loop that shuts down gracefully when its signal fires; `.await`
/// it to run it.
#[derive(Debug)]
#[must_use = "a server does nothing until awaited"]
pub struct WithGracefulShutdown<L, S, F> {
    serve: Serve<L, S>,
    signal: F,
    drain: Duration,
}

impl<L, S> Serve<L, S> {
    /// When `signal` resolves: stop accepting at once, ask every connection
    /// to end gracefully (idle ones half-close, busy ones finish their work),
    /// wait up to `drain` for them, kill the rest, and return the
    /// [`ShutdownReport`].
    pub fn with_graceful_shutdown<F>(
        self,
        signal: F,
        drain: Duration,
    ) -> WithGracefulShutdown<L, S, F>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        WithGracefulShutdown {
            serve: self,
            signal,
            drain,
        }
    }
}

impl<L, S> IntoFuture for Serve<L, S>
where
    L: Listener,
    S: Service<Incoming<L::Conn>, Response = ()> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Error>,
{
    type Output = Result<ShutdownReport>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(run(
            self.listener,
            self.service,
            std::future::pending(),
            Duration::ZERO,
        ))
    }
}

impl<L, S, F> IntoFuture for WithGracefulShutdown<L, S, F>
where
    L: Listener,
    S: Service<Incoming<L::Conn>, Response = ()> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Error>,
    F: Future<Output = ()> + Send + 'static,
{
    type Output = Result<ShutdownReport>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(run(
            self.serve.listener,
            self.serve.service,
            self.signal,
            self.drain,
        ))
    }
}

pub(super) async fn run<L, S, F>(
    mut listener: L,
    mut service: S,
    signal: F,
    drain: Duration,
) -> Result<ShutdownReport>
where
    L: Listener,
    S: Service<Incoming<L::Conn>, Response = ()> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Error>,
    F: Future<Output = ()> + Send,
{
    let endpoint = listener.local_endpoint();
    let graceful = Graceful::default();
    let work = Work::new(graceful.clone());
    let tasks = Tasks::default();
    let mut report = ShutdownReport {
        threads: 1,
        ..ShutdownReport::default()
    };
    // A loop alone on its thread (a current-thread runtime, as per-core
    // serving runs) lets each new connection run before the next accept;
    // on a multi-thread runtime an idle worker takes it at once, and the
    // yield would only delay the next accept.
    let yield_after_accept = tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::CurrentThread;
    let mut backoff = AcceptBackoff::new();
    // Looked at before every accept: polled only once it has woken.
    let mut signal = super::signal::WokenOnly::new(signal);

    'accepting: loop {
        // Wait until the service takes another connection...
        tokio::select! {
            biased;
            () = &mut signal => break 'accepting,
            ready = std::future::poll_fn(|cx| service.poll_ready(cx)) => {
                if let Err(e) = ready {
                    return Err(e.into().during("serve").on(&endpoint));
                }
            }
        }
        // ...then for the next peer.
        let conn = tokio::select! {
            biased;
            () = &mut signal => break 'accepting,
            accepted = listener.accept(Deadline::NEVER) => accepted,
        };
        match conn {
            Ok(conn) => {
                if backoff.recovered() {
                    tracing::info!(%endpoint, "accepting again: descriptors are available");
                }
                report.accepted += 1;
                let incoming = Incoming::new(conn, graceful.clone(), work.clone(), report.accepted);
                let fut = service.call(incoming);
                tasks.spawn(fut);
                // Let the new connection run before taking the next peer: it
                // is served sooner, and where several threads accept from one
                // queue (per-core serving), a thread busy with its
                // connections leaves the next peers to an idle one instead of
                // draining a burst into its own queue.
                if yield_after_accept {
                    tokio::task::yield_now().await;
                }
            }
            Err(e) => {
                report.accept_errors += 1;
                match accept_verdict(&e) {
                    AcceptVerdict::Retry => {
                        tracing::debug!(%endpoint, error = %e, "accept failed; retrying")
                    }
                    AcceptVerdict::Fatal => {
                        // Drained as on the signal: the connections may
                        // well outlive a broken listener.
                        tracing::error!(%endpoint, error = %e, "accept failed for good; draining");
                        report.listener_failed = Some(e.during("accept").on(&endpoint));
                        break 'accepting;
                    }
                    AcceptVerdict::Backoff => {
                        let seen = tasks.ended();
                        let (pause, new_episode) = backoff.pause();
                        if new_episode {
                            report.fd_limit_episodes += 1;
                            tracing::warn!(%endpoint, error = %e,
                                "accept paused: out of descriptors or memory; resuming as connections end");
                        }
                        // A connection that ends frees a descriptor: retry then,
                        // or after the pause, whichever comes first.
                        tokio::select! {
                            biased;
                            () = &mut signal => break 'accepting,
                            () = tasks.ended_past(seen) => {}
                            () = tokio::time::sleep(pause) => {}
                        }
                    }
                }
            }
        }
    }

    // Graceful shutdown: stop accepting now, ask connections to end, wait
    // for them until the drain deadline, kill the rest.
    let empty = tracing::field::Empty;
    let step = crate::trace::Step::begin(tracing::debug_span!(
        target: "conn_core::lifecycle",
        "drain",
        transport = endpoint.scheme(),
        endpoint = %endpoint,
        outcome = empty,
        duration_us = empty,
        accepted = empty,
        closed = empty,
        killed = empty,
        cut_by_peer = empty,
    ));
    drop(listener);
    let start = tokio::time::Instant::now();
    graceful.fire();
    let deadline = Deadline::after(drain);
    let drained = deadline.run(tasks.all_ended()).await;
    if drained.is_err() {
        work.deadline_passed();
        tasks.kill_all();
        tasks.all_ended().await;
    }
    tasks.tally_into(&mut report);
    report.drain = start.elapsed();
    report.requests = work.counts();
    let span = step.span();
    span.record("accepted", report.accepted);
    span.record("closed", report.closed);
    span.record("killed", report.killed);
    span.record("cut_by_peer", report.cut_by_peer);
    step.end(&Ok(()));
    Ok(report)
}

/// Awaits a serve loop and, should its listener break
/// ([`ShutdownReport::listener_failed`]), cancels `stop`: a daemon that
/// serves several listeners on one token then drains them all, as it would
/// on its signal, instead of serving on with one of them gone.
///
/// ```
/// use std::time::Duration;
/// use conn_core::{mem::MemListener, serve::{lines, serve, stop_all_on_failure}};
/// use tokio_util::sync::CancellationToken;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let stop = CancellationToken::new();
/// let echo = tower::service_fn(|line: String| async move { Ok::<_, conn_core::Error>(line) });
/// let serving = serve(MemListener::bind("stop-all-doc")?, lines(echo))
///     .with_graceful_shutdown(stop.clone().cancelled_owned(), Duration::from_secs(1));
/// let serving = tokio::spawn(stop_all_on_failure(serving, stop.clone()));
/// stop.cancel(); // the signal: no failure, the report says so
/// assert!(serving.await.unwrap()?.listener_failed.is_none());
/// # Ok(()) }
/// ```
pub async fn stop_all_on_failure(
    serving: impl IntoFuture<Output = Result<ShutdownReport>>,
    stop: tokio_util::sync::CancellationToken,
) -> Result<ShutdownReport> {
    let result = serving.await;
    if result.as_ref().is_ok_and(|r| r.listener_failed.is_some()) {
        stop.cancel();
    }
    result
}
