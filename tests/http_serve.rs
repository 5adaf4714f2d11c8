//! `connkit::http::serve` with real clients nobody here wrote: curl over
//! HTTP/1.1 and HTTP/2 (prior knowledge), over a Unix socket and TCP, and
//! h2load; the drain per protocol, the limits, and bad input.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use connkit::core::layer::DeadlineLayer;
use connkit::core::{Listener, ShutdownReport};
use connkit::http::{Http, Protocols, Routes, Stats};
use tokio::sync::oneshot;

/// A server on a Unix socket and one on TCP, both serving [`Routes`] behind
/// a `DeadlineLayer` that reads the request's own deadline.
struct App {
    dir: PathBuf,
    port: u16,
    stops: Vec<oneshot::Sender<()>>,
    reports: Vec<tokio::task::JoinHandle<connkit::core::Result<ShutdownReport>>>,
}

impl App {
    async fn start(name: &str, http: Http, drain: Duration) -> App {
        let dir =
            std::env::temp_dir().join(format!("connkit-http-serve-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let registry = connkit::registry();
        let ipc = registry
            .bind(&format!("ipc://{}", dir.join("s.sock").display()))
            .await
            .unwrap();
        let tcp = registry.bind("tcp://127.0.0.1:0").await.unwrap();
        let port: u16 = tcp
            .local_endpoint()
            .address()
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let app = tower::ServiceBuilder::new()
            .layer(DeadlineLayer::from_request(None))
            .service(Routes::new(Arc::new(Stats::default())));
        let mut stops = Vec::new();
        let mut reports = Vec::new();
        for listener in [ipc, tcp] {
            let (stop, stopped) = oneshot::channel::<()>();
            stops.push(stop);
            let server = http.serve(listener, app.clone()).with_graceful_shutdown(
                async {
                    stopped.await.ok();
                },
                drain,
            );
            reports.push(tokio::spawn(std::future::IntoFuture::into_future(server)));
        }
        App {
            dir,
            port,
            stops,
            reports,
        }
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("s.sock")
    }

    /// curl's arguments to reach `path` over the Unix socket or TCP.
    fn target(&self, unix: bool, path: &str) -> Vec<String> {
        if unix {
            vec![
                "--unix-socket".into(),
                self.socket().display().to_string(),
                format!("http://localhost{path}"),
            ]
        } else {
            vec![format!("http://127.0.0.1:{}{path}", self.port)]
        }
    }

    /// Signals both servers and returns their reports (Unix socket, TCP).
    async fn stop(mut self) -> Vec<ShutdownReport> {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        let mut out = Vec::new();
        for r in self.reports.drain(..) {
            out.push(r.await.unwrap().unwrap());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        out
    }
}

async fn curl(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new("curl")
            .args(["-sS", "--max-time", "20"])
            .args(&args)
            .output()
            .expect("curl runs (test-all installs it)")
    })
    .await
    .unwrap()
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_speaks_http1_and_http2_to_one_listener_over_unix_sockets_and_tcp() {
    let app = App::start("protocols", Http::new(), Duration::from_secs(5)).await;
    for unix in [true, false] {
        for (flag, version) in [("--http1.1", "1.1"), ("--http2-prior-knowledge", "2")] {
            let mut args = vec![flag.to_string(), "-w".into(), "|%{http_version}".into()];
            args.extend(app.target(unix, "/"));
            let out = curl(args).await;
            assert_eq!(
                text(&out),
                format!("hello from connkit\n|{version}"),
                "unix {unix} {flag}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            // A streamed body arrives whole.
            let mut args = vec![flag.to_string(), "-o".into(), "/dev/null".into()];
            args.extend(["-w".into(), "%{size_download}".into()]);
            args.extend(app.target(unix, "/bytes?n=3000000"));
            assert_eq!(text(&curl(args).await), "3000000", "unix {unix} {flag}");
        }
    }
    for report in app.stop().await {
        assert_eq!(report.accepted, 4, "{report}");
        assert_eq!(report.closed, 4, "{report}");
        assert_eq!(report.requests.started, 4, "{report}");
        assert_eq!(report.requests.finished, 4, "{report}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drain_lets_http1_and_http2_requests_finish_and_closes_busy_http1_with_connection_close()
 {
    let app = App::start("drain", Http::new(), Duration::from_secs(10)).await;
    let mut h1 = vec!["-i".into(), "--http1.1".into()];
    h1.extend(app.target(true, "/slow?ms=700"));
    let mut h2 = vec!["--http2-prior-knowledge".into()];
    h2.extend(app.target(true, "/slow?ms=700"));
    let busy_h1 = tokio::spawn(curl(h1));
    let busy_h2 = tokio::spawn(curl(h2));
    // An idle keep-alive connection: it must be closed at once, not waited for.
    let mut idle = UnixStream::connect(app.socket()).unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // It reads until the server's end, and then ends its own side.
    let idle = std::thread::spawn(move || {
        let mut seen = Vec::new();
        idle.read_to_end(&mut seen).unwrap();
        String::from_utf8_lossy(&seen).into_owned()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signalled = Instant::now();
    let reports = app.stop().await;
    let drained = signalled.elapsed();

    let h1 = text(&busy_h1.await.unwrap());
    assert!(h1.contains("slept 700 ms"), "{h1}");
    assert!(
        h1.to_ascii_lowercase().contains("connection: close"),
        "{h1}"
    );
    assert_eq!(text(&busy_h2.await.unwrap()), "slept 700 ms\n");
    assert!(idle.join().unwrap().contains("hello from connkit"));

    let report = &reports[0];
    assert!(drained < Duration::from_secs(5), "{drained:?}: {report}");
    assert_eq!(
        (report.accepted, report.closed, report.killed),
        (3, 3, 0),
        "{report}"
    );
    assert_eq!(report.requests.finished_after_signal, 2, "{report}");
    assert_eq!(report.requests.cut_at_deadline, 0, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_drain_deadline_what_is_left_is_killed_and_its_requests_counted_cut() {
    let app = App::start("deadline", Http::new(), Duration::from_millis(300)).await;
    let mut h1 = vec!["--http1.1".into()];
    h1.extend(app.target(false, "/slow?ms=20000"));
    let mut h2 = vec!["--http2-prior-knowledge".into()];
    h2.extend(app.target(false, "/slow?ms=20000"));
    let a = tokio::spawn(curl(h1));
    let b = tokio::spawn(curl(h2));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signalled = Instant::now();
    let reports = app.stop().await;
    assert!(signalled.elapsed() < Duration::from_secs(3));
    let report = &reports[1];
    assert_eq!((report.accepted, report.killed), (2, 2), "{report}");
    assert_eq!(report.requests.cut_at_deadline, 2, "{report}");
    assert_eq!(report.requests.finished, 0, "{report}");
    // Both clients saw their connection end, neither a response.
    for out in [a.await.unwrap(), b.await.unwrap()] {
        assert!(!out.status.success(), "{}", text(&out));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_deadline_from_grpc_timeout_or_connkit_timeout_becomes_504() {
    let app = App::start("timeout", Http::new(), Duration::from_secs(5)).await;
    for (header, flag) in [
        ("connkit-timeout: 100m", "--http1.1"),
        ("grpc-timeout: 100m", "--http2-prior-knowledge"),
    ] {
        let mut args = vec![
            flag.into(),
            "-H".into(),
            header.into(),
            "-w".into(),
            "|%{http_code}".into(),
        ];
        args.extend(app.target(true, "/slow?ms=5000"));
        let started = Instant::now();
        let out = text(&curl(args).await);
        assert!(out.ends_with("|504"), "{header}: {out}");
        assert!(out.contains("deadline passed"), "{header}: {out}");
        assert!(started.elapsed() < Duration::from_secs(4), "{header}");
    }
    // gRPC clients get DEADLINE_EXCEEDED in a trailers-only response.
    let mut args = vec![
        "--http2-prior-knowledge".into(),
        "-i".into(),
        "-H".into(),
        "grpc-timeout: 50m".into(),
        "-H".into(),
        "content-type: application/grpc".into(),
    ];
    args.extend(app.target(true, "/slow?ms=5000"));
    let out = text(&curl(args).await);
    assert!(out.contains("grpc-status: 4"), "{out}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_answer_and_the_server_goes_on_serving() {
    let http = Http::new()
        .header_read_timeout(Duration::from_millis(400))
        .max_header_bytes(16 * 1024);
    let app = App::start("bad", http, Duration::from_secs(5)).await;
    let sock = app.socket();
    let exchange = move |bytes: Vec<u8>| {
        let sock = sock.clone();
        tokio::task::spawn_blocking(move || {
            let mut s = UnixStream::connect(sock).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = s.write_all(&bytes);
            let mut answer = Vec::new();
            let started = Instant::now();
            let _ = s.read_to_end(&mut answer);
            (
                String::from_utf8_lossy(&answer).into_owned(),
                started.elapsed(),
            )
        })
    };
    // Malformed request line.
    let (answer, _) = exchange(b"GARBAGE\x01\x02 / HTTP/9\r\n\r\n".to_vec())
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
    // A head over the limit.
    let mut big = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 64 * 1024));
    big.extend(b"\r\n\r\n");
    let (answer, _) = exchange(big).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
    // Half a header, then silence: ended by the header timeout.
    let (answer, took) = exchange(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow:".to_vec())
        .await
        .unwrap();
    assert!(took < Duration::from_secs(3), "{took:?} {answer:?}");
    // A silent client: ended too.
    let (_, took) = exchange(Vec::new()).await.unwrap();
    assert!(took < Duration::from_secs(3), "{took:?}");
    // h2load opens a thousand streams on one connection: the server's
    // stream limit paces them, every one is answered.
    let port = app.port;
    let h2load = tokio::task::spawn_blocking(move || {
        Command::new("h2load")
            .args(["-n", "1000", "-c", "1", "-m", "1000"])
            .arg(format!("http://127.0.0.1:{port}/"))
            .output()
            .expect("h2load runs (test-all installs nghttp2-client)")
    })
    .await
    .unwrap();
    let h2 = text(&h2load);
    assert!(h2.contains("1000 succeeded, 0 failed, 0 errored"), "{h2}");
    // And the server still serves.
    let mut args = vec!["--http2-prior-knowledge".into()];
    args.extend(app.target(true, "/"));
    assert_eq!(text(&curl(args).await), "hello from connkit\n");
    let reports = app.stop().await;
    let report = &reports[0];
    assert_eq!(
        report.errors.count(connkit::core::ErrorKind::TimedOut),
        2,
        "{report}"
    );
    assert_eq!(
        report.errors.count(connkit::core::ErrorKind::Protocol),
        2,
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_preface_on_an_http1_only_server_is_refused_and_others_are_served() {
    let http = Http::new().protocols(Protocols::Http1);
    let app = App::start("h1only", http, Duration::from_secs(5)).await;
    let mut args = vec!["--http2-prior-knowledge".into()];
    args.extend(app.target(true, "/"));
    let out = curl(args).await;
    assert!(!out.status.success(), "{}", text(&out));
    let mut args = vec!["--http1.1".into()];
    args.extend(app.target(true, "/"));
    assert_eq!(text(&curl(args).await), "hello from connkit\n");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_limit_accept_waits_and_the_peer_is_served_when_one_ends() {
    let app = App::start(
        "limit",
        Http::new().max_connections(1),
        Duration::from_secs(5),
    )
    .await;
    let mut first = UnixStream::connect(app.socket()).unwrap();
    first
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 256];
    let n = first.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("hello"));
    // The second peer connects (the backlog holds it) but is not served...
    let mut second = UnixStream::connect(app.socket()).unwrap();
    second
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    second
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(second.read(&mut buf).is_err(), "served past the limit");
    // ...until the first ends.
    drop(first);
    second
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut answer = Vec::new();
    second.read_to_end(&mut answer).unwrap();
    assert!(String::from_utf8_lossy(&answer).contains("hello from connkit"));
    let reports = app.stop().await;
    assert_eq!(reports[0].accepted, 2, "{}", reports[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_resets_mid_request_is_cut_by_the_peer_not_closed_in_order() {
    let app = App::start("reset", Http::new(), Duration::from_secs(5)).await;
    let s = UnixStream::connect(app.socket()).unwrap();
    (&s).write_all(b"GET /slow?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(s); // gone before its answer
    tokio::time::sleep(Duration::from_millis(600)).await;
    let reports = app.stop().await;
    let report = &reports[0];
    assert_eq!(
        (report.accepted, report.closed, report.cut_by_peer),
        (1, 0, 1),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_killed_at_the_deadline_drops_its_handler_at_once() {
    use std::sync::atomic::{AtomicBool, Ordering};
    struct Dropped(Arc<AtomicBool>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = dropped.clone();
    let app = tower::service_fn(move |_req: http::Request<hyper::body::Incoming>| {
        let guard = Dropped(flag.clone());
        async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(guard);
            Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Empty::<
                bytes::Bytes,
            >::new()))
        }
    });
    let listener = connkit::registry().bind("tcp://127.0.0.1:0").await.unwrap();
    let port = listener
        .local_endpoint()
        .address()
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(std::future::IntoFuture::into_future(
        connkit::http::serve(listener, app).with_graceful_shutdown(
            async {
                stopped.await.ok();
            },
            Duration::from_millis(200),
        ),
    ));
    let client = tokio::spawn(curl(vec![
        "--http2-prior-knowledge".into(),
        format!("http://127.0.0.1:{port}/"),
    ]));
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.send(()).unwrap();
    let report = server.await.unwrap().unwrap();
    assert_eq!(report.killed, 1, "{report}");
    // The handler's future went with its stream, not 60 s later.
    let waited = Instant::now();
    while !dropped.load(Ordering::SeqCst) {
        assert!(
            waited.elapsed() < Duration::from_secs(5),
            "the handler outlived its kill"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = client.await;
}

/// Reads one HTTP/1.1 response with a `content-length` from `s`.
fn read_response(s: &mut UnixStream) -> String {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "closed mid-head");
        got.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&got).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("a content-length");
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    head + &String::from_utf8_lossy(&body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_connections_end_by_their_timeouts_never_early() {
    const HEADER: Duration = Duration::from_millis(400);
    const IDLE: Duration = Duration::from_millis(2000);
    let http = Http::new().header_read_timeout(HEADER).idle_timeout(IDLE);
    let app = App::start("quiet", http, Duration::from_secs(5)).await;
    let sock = app.socket();
    // HTTP/1 keep-alive: after one exchange, `then` is sent; how long until
    // the server ends the connection, counted from the response.
    let http1 = move |then: &'static [u8]| {
        let sock = sock.clone();
        tokio::task::spawn_blocking(move || {
            let mut s = UnixStream::connect(sock).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            assert!(read_response(&mut s).contains("hello from connkit"));
            let answered = Instant::now();
            s.write_all(then).unwrap();
            let mut rest = Vec::new();
            s.read_to_end(&mut rest).expect("ended, not timed out");
            (answered.elapsed(), rest)
        })
    };
    let half_head = http1(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow:");
    let silent = http1(b"");
    // HTTP/2: one request, then quiet; only the idle timeout applies.
    let sock = app.socket();
    let h2 = tokio::spawn(async move {
        let io = hyper_util::rt::TokioIo::new(tokio::net::UnixStream::connect(sock).await.unwrap());
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .unwrap();
        let conn = tokio::spawn(conn);
        let req = http::Request::get("http://x/")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        drop(resp);
        let answered = Instant::now();
        let _ = conn.await;
        answered.elapsed()
    });
    for (what, took, least) in [
        ("half a second head", half_head.await.unwrap(), HEADER),
        ("a silent keep-alive", silent.await.unwrap(), HEADER),
    ] {
        let (took, rest) = took;
        assert!(rest.is_empty(), "{what}: {rest:?}");
        assert!(
            took >= least && took < least * 5 / 4 + Duration::from_millis(500),
            "{what}: ended {took:?} after the response (limit {least:?})"
        );
    }
    let took = h2.await.unwrap();
    assert!(
        took >= IDLE && took < IDLE * 2,
        "http/2 ended {took:?} after its last response (idle timeout {IDLE:?})"
    );
    // And the server still serves.
    assert_eq!(
        text(&curl(app.target(true, "/")).await),
        "hello from connkit\n"
    );
    app.stop().await;
}
