use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tower::{ServiceBuilder, service_fn};

use super::{lines, serve};
use crate::layer::{DeadlineLayer, Shutdown};
use crate::mem::{MemListener, MemStream};
use crate::{Deadline, Error, ErrorKind};

/// A line service: "sleep N" answers after N ms, anything else is echoed.
fn sleepy()
-> impl tower::Service<String, Response = String, Error = Error, Future: Send> + Clone + Send + 'static
{
    service_fn(|req: String| async move {
        if let Some(ms) = req.strip_prefix("sleep ") {
            let ms: u64 = ms.parse().map_err(|_| Error::new(ErrorKind::InvalidType))?;
            tokio::time::sleep(Duration::from_millis(ms)).await;
            return Ok(format!("slept {ms}"));
        }
        Ok(req)
    })
}

async fn client(name: &str) -> BufReader<MemStream> {
    BufReader::new(MemStream::connect(name, Deadline::NEVER).await.unwrap())
}

async fn ask(c: &mut BufReader<MemStream>, line: &str) -> String {
    c.get_mut()
        .write_all(format!("{line}\n").as_bytes())
        .await
        .unwrap();
    let mut answer = String::new();
    c.read_line(&mut answer).await.unwrap();
    answer
}

#[tokio::test(start_paused = true)]
async fn graceful_shutdown_half_closes_idle_finishes_busy_and_kills_overrunning() {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        serve(
            MemListener::bind("serve-graceful").unwrap(),
            lines(sleepy()),
        )
        .with_graceful_shutdown(
            async {
                stopped.await.ok();
            },
            Duration::from_millis(500),
        )
        .into_future(),
    );

    // An idle connection, one with a call that finishes in time, one that overruns.
    let mut idle = client("serve-graceful").await;
    assert_eq!(ask(&mut idle, "warm").await, "warm\n");
    let mut busy = client("serve-graceful").await;
    busy.get_mut().write_all(b"sleep 200\n").await.unwrap();
    let mut stuck = client("serve-graceful").await;
    stuck.get_mut().write_all(b"sleep 60000\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;

    stop.send(()).unwrap();

    // The idle connection sees end-of-stream at once (a half-close), and
    // closing our side completes the orderly handshake.
    let mut rest = Vec::new();
    idle.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
    idle.into_inner().done(Deadline::NEVER).await.unwrap();

    // The busy one gets its answer, then end-of-stream.
    let mut answer = String::new();
    busy.read_line(&mut answer).await.unwrap();
    assert_eq!(answer, "slept 200\n");
    let mut rest = Vec::new();
    busy.read_to_end(&mut rest).await.unwrap();
    busy.into_inner().done(Deadline::NEVER).await.unwrap();

    // New connections are refused once the listener is gone.
    tokio::time::sleep(Duration::from_millis(1)).await;
    let refused = MemStream::connect("serve-graceful", Deadline::NOW)
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);

    let report = server.await.unwrap().unwrap();
    assert_eq!(report.accepted, 3);
    assert_eq!(report.closed, 2, "{report}");
    assert_eq!(report.killed, 1, "{report}");
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(report.drain, Duration::from_millis(500));

    // The overrunning connection was killed: end-of-stream, no answer.
    let mut rest = Vec::new();
    stuck.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
}

use crate::Connection as _;

#[tokio::test(start_paused = true)]
async fn a_panicking_handler_is_contained_and_reported() {
    let svc = service_fn(|req: String| async move {
        if req == "boom" {
            panic!("handler exploded");
        }
        Ok::<_, Error>(req)
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        serve(MemListener::bind("serve-panic").unwrap(), lines(svc))
            .with_graceful_shutdown(
                async {
                    stopped.await.ok();
                },
                Duration::from_millis(100),
            )
            .into_future(),
    );
    let mut bad = client("serve-panic").await;
    bad.get_mut().write_all(b"boom\n").await.unwrap();
    let mut rest = Vec::new();
    bad.read_to_end(&mut rest).await.unwrap();

    // The server goes on serving others.
    let mut good = client("serve-panic").await;
    assert_eq!(ask(&mut good, "still here").await, "still here\n");
    good.into_inner().done(Deadline::NEVER).await.unwrap();

    stop.send(()).unwrap();
    let report = server.await.unwrap().unwrap();
    assert_eq!(report.errors.total(), 1, "{report}");
    assert!(
        report.errors.sample()[0]
            .to_string()
            .contains("handler exploded"),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn layers_compose_with_towers_own_in_one_stack() {
    use tower::limit::ConcurrencyLimitLayer;
    use tower::timeout::TimeoutLayer;
    use tower::{Service, ServiceExt};

    let shutdown = Shutdown::new();
    let token = tokio_util::sync::CancellationToken::new();
    let mut svc = ServiceBuilder::new()
        .layer(shutdown.layer())
        .layer(crate::layer::CancelLayer::new(token.clone()))
        .layer(ConcurrencyLimitLayer::new(2))
        .layer(DeadlineLayer::new(Duration::from_millis(100)))
        .map_err(Error::from_boxed)
        .layer(TimeoutLayer::new(Duration::from_millis(50)))
        .service(sleepy());

    assert_eq!(
        svc.ready().await.unwrap().call("hi".into()).await.unwrap(),
        "hi"
    );
    // tower's TimeoutLayer fires first (50 ms) and its error converts into ours.
    let err = svc
        .ready()
        .await
        .unwrap()
        .call("sleep 70".into())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    token.cancel();
    let err = svc
        .ready()
        .await
        .unwrap()
        .call("hi".into())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Canceled);
    shutdown.trigger();
    let err = svc
        .ready()
        .await
        .unwrap()
        .call("hi".into())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ShuttingDown);
}

/// tokio-test's scripted I/O as a connection, to pin down the exact bytes the
/// line handler reads and writes.
/// A scripted peer, noting when the handler half-closed (shut down its
/// writing side).
struct Scripted(
    tokio_test::io::Mock,
    std::sync::Arc<std::sync::OnceLock<tokio::time::Instant>>,
);

impl tokio::io::AsyncRead for Scripted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Scripted {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let _ = self.1.set(tokio::time::Instant::now());
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl crate::Connection for Scripted {
    async fn done(&mut self, deadline: Deadline) -> crate::Result<()> {
        crate::lifecycle::half_close(self, deadline).await
    }
    async fn close(mut self, deadline: Deadline) -> crate::Result<()> {
        crate::lifecycle::close_in_order(&mut self, deadline).await
    }
    fn kill(self) {}
}

#[tokio::test(start_paused = true)]
async fn the_line_handler_answers_each_line_and_errors_as_err_lines_on_mock_io() {
    use tower::{Service, ServiceExt};
    let io = tokio_test::io::Builder::new()
        .read(b"ping\nsleep x\n")
        .write(b"ping\n")
        .write(b"ERR invalid argument or handle type (EINVAL)\n")
        .read(b"bye\n")
        .write(b"bye\n")
        .build();
    let incoming = super::Incoming::new(
        Scripted(io, Default::default()),
        super::Graceful::default(),
        super::Work::new(super::Graceful::default()),
        1,
    );
    let mut handler = lines(sleepy());
    ServiceExt::<super::Incoming<Scripted>>::ready(&mut handler)
        .await
        .unwrap()
        .call(incoming)
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_line_handler_ends_an_idle_connection_when_shutdown_begins_on_mock_io() {
    use tower::{Service, ServiceExt};
    let token = tokio_util::sync::CancellationToken::new();
    // The peer sends one request, then waits; the handler must not read again
    // once shutdown has begun while it was idle.
    let io = tokio_test::io::Builder::new()
        .read(b"hello\n")
        .write(b"hello\n")
        .wait(Duration::from_secs(1))
        .build();
    let half_closed = std::sync::Arc::new(std::sync::OnceLock::new());
    let incoming = super::Incoming::new(
        Scripted(io, half_closed.clone()),
        super::Graceful::new(token.clone()),
        super::Work::new(super::Graceful::new(token.clone())),
        1,
    );
    let mut handler = lines(sleepy());
    let call = tokio::spawn(
        ServiceExt::<super::Incoming<Scripted>>::ready(&mut handler)
            .await
            .unwrap()
            .call(incoming),
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
    let signal = tokio::time::Instant::now();
    token.cancel();
    call.await.unwrap().unwrap();
    // Ended at once, not when the peer's script ran out a second later (a
    // handler that ignored the signal would also end then, on the mock's
    // end of input): the half-close came on the signal, in the paused
    // clock's same instant.
    let half_closed = *half_closed.get().expect("the handler half-closed");
    assert_eq!(half_closed, signal, "half-closed when shutdown began");
}

#[tokio::test(start_paused = true)]
async fn a_serve_loop_dropped_before_it_finishes_takes_its_connections_with_it() {
    let server = tokio::spawn(
        serve(MemListener::bind("serve-dropped").unwrap(), lines(sleepy())).into_future(),
    );
    let mut open = client("serve-dropped").await;
    assert_eq!(ask(&mut open, "hello").await, "hello\n");
    open.get_mut().write_all(b"sleep 60000\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;

    server.abort();
    assert!(server.await.unwrap_err().is_cancelled());
    // The connection's handler went with the loop: its stream ends at once,
    // long before the call it was running would have answered.
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(1), open.read_to_end(&mut rest))
        .await
        .expect("the connection ends with its loop")
        .unwrap();
    assert!(rest.is_empty(), "{rest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_is_counted_once_however_fast_it_ends() {
    // Connections that end at once race the loop storing their abort
    // handles; each must still be counted exactly once, and none left open.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        serve(
            MemListener::bind("serve-fast-ends").unwrap(),
            lines(sleepy()),
        )
        .with_graceful_shutdown(
            async {
                stopped.await.ok();
            },
            Duration::from_secs(5),
        )
        .into_future(),
    );
    for _ in 0..500 {
        let c = MemStream::connect("serve-fast-ends", Deadline::NEVER)
            .await
            .unwrap();
        c.close(Deadline::NEVER).await.unwrap();
    }
    stop.send(()).unwrap();
    let report = server.await.unwrap().unwrap();
    assert_eq!(report.accepted, 500, "{report}");
    assert_eq!(
        report.closed + report.cut_by_peer + report.errors.total(),
        500,
        "{report}"
    );
    assert_eq!(report.killed, 0, "{report}");
}

/// A listener that breaks for good (as a userspace stack's does when its
/// device is deleted) once it has handed over `good` connections.
struct BreaksAfter {
    inner: MemListener,
    good: usize,
}

impl crate::Listener for BreaksAfter {
    type Conn = MemStream;

    async fn accept(&mut self, deadline: Deadline) -> crate::Result<MemStream> {
        if self.good == 0 {
            return Err(Error::new(ErrorKind::BadHandle).detail("the device went away"));
        }
        self.good -= 1;
        self.inner.accept(deadline).await
    }

    fn local_endpoint(&self) -> crate::Endpoint {
        self.inner.local_endpoint()
    }
}

#[tokio::test(start_paused = true)]
async fn a_listener_that_breaks_ends_the_loop_with_a_drain_and_a_report_that_says_why() {
    let listener = BreaksAfter {
        inner: MemListener::bind("serve-breaks").unwrap(),
        good: 1,
    };
    // Connected first: the loop's second accept then fails at once.
    let mut busy = client("serve-breaks").await;
    busy.get_mut().write_all(b"sleep 200\n").await.unwrap();
    let server = tokio::spawn(
        serve(listener, lines(sleepy()))
            .with_graceful_shutdown(std::future::pending(), Duration::from_secs(5))
            .into_future(),
    );
    // The call under way when the listener broke still gets its answer:
    // the connection is drained, not dropped with the loop.
    let mut answer = String::new();
    busy.read_line(&mut answer).await.unwrap();
    assert_eq!(answer, "slept 200\n");
    busy.into_inner().close(Deadline::NEVER).await.unwrap();
    let report = server.await.unwrap().expect("a report, not an error");
    let failed = report
        .listener_failed
        .as_ref()
        .expect("the failure is reported");
    assert_eq!(failed.kind(), ErrorKind::BadHandle);
    assert!(
        failed.to_string().contains("the device went away"),
        "{failed}"
    );
    assert_eq!((report.accepted, report.closed, report.killed), (1, 1, 0));
    assert!(
        report
            .to_string()
            .contains("serving ended because the listener failed"),
        "{report}"
    );
}
