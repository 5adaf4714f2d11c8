//! `connkit http` over a Unix socket, reached by the real `curl
//! --unix-socket`, by `connkit get`, and by hyper-util's own Client.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use connkit::http::connector;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// A `connkit http` process on its own socket; killed if a test fails.
struct Server {
    child: Child,
    out: BufReader<std::process::ChildStdout>,
    socket: PathBuf,
}

impl Server {
    fn start(name: &str) -> Server {
        let socket =
            std::env::temp_dir().join(format!("connkit-{name}-{}.sock", std::process::id()));
        let mut child = Command::new(env!("CARGO_BIN_EXE_connkit"))
            .args([
                "http",
                "--listen",
                &format!("ipc://{}", socket.display()),
                "--drain-ms",
                "5000",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start connkit http");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert!(
            line.starts_with("connkit http: listening on ipc://"),
            "{line}"
        );
        Server { child, out, socket }
    }

    fn url(&self) -> String {
        format!("ipc://{}", self.socket.display())
    }

    fn curl(&self, urls: &[&str]) -> std::process::Output {
        Command::new("curl")
            .args(["-sS", "--fail", "--unix-socket"])
            .arg(&self.socket)
            .args(urls)
            .output()
            .expect("curl runs (cargo xtask test-all installs it)")
    }

    /// SIGTERM, then the rest of stdout and the exit status.
    fn terminate(mut self) -> (String, bool) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let status = self.child.wait().unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.out, &mut rest).unwrap();
        (rest, status.success())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stats_field(json: &str, field: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(json.lines().last().unwrap()).unwrap();
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no {field} in {json}"))
}

#[test]
fn curl_gets_hello_and_reuses_its_keep_alive_connection() {
    let server = Server::start("curl");
    let out = server.curl(&["http://connkit/"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from connkit\n");

    // One curl, three URLs: one connection, as the server's /stats shows.
    let out = server.curl(&["http://connkit/", "http://connkit/", "http://connkit/stats"]);
    let body = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{body}");
    assert_eq!(stats_field(&body, "accepted"), 2, "{body}");
    assert_eq!(stats_field(&body, "connections_open"), 1, "{body}");

    let (rest, ok) = server.terminate();
    assert!(ok, "{rest}");
    assert!(
        rest.contains("shutdown report: accepted 2, closed in order 2, killed 0, errors 0"),
        "{rest}"
    );
}

#[test]
fn a_slow_request_in_flight_during_sigterm_still_completes_and_the_server_exits_0() {
    let server = Server::start("sigterm");
    let socket = server.socket.clone();
    let slow = std::thread::spawn(move || {
        Command::new("curl")
            .args(["-sS", "--fail", "--unix-socket"])
            .arg(&socket)
            .arg("http://connkit/slow?ms=800")
            .output()
            .unwrap()
    });
    // Wait until the slow request is in flight, as /stats tells.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let out = server.curl(&["http://connkit/stats"]);
        if stats_field(&String::from_utf8_lossy(&out.stdout), "requests_in_flight") >= 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the slow request never arrived"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let socket = server.socket.clone();
    let (rest, ok) = server.terminate();
    let slow = slow.join().unwrap();
    assert!(
        slow.status.success(),
        "{}",
        String::from_utf8_lossy(&slow.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&slow.stdout), "slept 800 ms\n");
    assert!(ok, "{rest}");
    assert!(rest.contains("killed 0, errors 0"), "{rest}");
    assert!(
        !socket.exists(),
        "the socket file is removed when the server ends"
    );
}

#[test]
fn connkit_get_fetches_over_ipc_and_names_what_failed() {
    let server = Server::start("get");
    let out = Command::new(env!("CARGO_BIN_EXE_connkit"))
        .args(["get", "--via", &server.url(), "http://connkit/"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from connkit\n");

    let out = Command::new(env!("CARGO_BIN_EXE_connkit"))
        .args(["get", "--via", &server.url(), "http://connkit/missing"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 404"));

    let out = Command::new(env!("CARGO_BIN_EXE_connkit"))
        .args([
            "get",
            "--via",
            "ipc:///nonexistent/connkit.sock",
            "http://connkit/",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("connect on ipc:///nonexistent/connkit.sock") && err.contains("ENOENT"),
        "{err}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_connkit"))
        .args([
            "get",
            "--timeout-ms",
            "200",
            "--via",
            &server.url(),
            "http://connkit/slow?ms=5000",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ETIMEDOUT"), "{err}");
}

#[tokio::test]
async fn hyper_utils_client_dials_ipc_through_the_connkit_connector() {
    let server = Server::start("hyper");
    let via = server.url().parse().unwrap();
    let client = Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(connector(
        connkit::registry(),
        Some(via),
        Duration::from_secs(5),
    ));
    for _ in 0..3 {
        let response = client
            .get("http://connkit/".parse().unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"hello from connkit\n");
    }
    let response = client
        .get("http://connkit/stats".parse().unwrap())
        .await
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&body);
    assert_eq!(
        stats_field(&body, "accepted"),
        1,
        "keep-alive reuse: {body}"
    );
    drop(client);
    let (rest, ok) = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    assert!(ok, "{rest}");
}
