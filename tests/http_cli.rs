//! `connkit http` over a Unix socket and over kernel TCP, each reached by
//! the real `curl`, by `connkit get`, and by hyper-util's own Client.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use connkit::http::connector;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The transports `connkit http` is tested over.
#[derive(Clone, Copy, Debug)]
enum Transport {
    Ipc,
    Tcp,
}

/// A transport, and whether the server runs per core (`--per-core 2`) or
/// on one thread.
#[derive(Clone, Copy, Debug)]
struct Over {
    transport: Transport,
    per_core: bool,
}

/// Every transport in both serving modes.
const BOTH: [Over; 4] = [
    Over {
        transport: Transport::Ipc,
        per_core: false,
    },
    Over {
        transport: Transport::Tcp,
        per_core: false,
    },
    Over {
        transport: Transport::Ipc,
        per_core: true,
    },
    Over {
        transport: Transport::Tcp,
        per_core: true,
    },
];

/// A `connkit http` process on its own socket or port; killed if a test fails.
struct Server {
    child: Child,
    out: BufReader<std::process::ChildStdout>,
    /// The endpoint it listens on, as it printed it.
    endpoint: String,
    over: Over,
}

impl Server {
    fn start(name: &str, over: Over) -> Server {
        Server::start_with(name, over, &[])
    }

    /// [`Server::start`] with more `connkit http` flags.
    fn start_with(name: &str, over: Over, extra: &[&str]) -> Server {
        let listen = match over.transport {
            Transport::Ipc => {
                let path = std::env::temp_dir().join(format!(
                    "connkit-{name}-{}-{}.sock",
                    std::process::id(),
                    over.per_core
                ));
                format!("ipc://{}", path.display())
            }
            Transport::Tcp => "tcp://127.0.0.1:0".to_string(),
        };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_connkit"));
        cmd.args(["http", "--listen", &listen, "--drain-ms", "5000"]);
        if over.per_core {
            cmd.args(["--per-core", "2"]);
        }
        cmd.args(extra);
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .expect("start connkit http");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let endpoint = line
            .trim()
            .strip_prefix("connkit http: listening on ")
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Server {
            child,
            out,
            endpoint,
            over,
        }
    }

    /// The socket file, for ipc.
    fn socket(&self) -> Option<PathBuf> {
        self.endpoint.strip_prefix("ipc://").map(PathBuf::from)
    }

    /// The http:// URL for `path` as curl and `connkit get` address this server.
    fn http(&self, path: &str) -> String {
        match self.over.transport {
            Transport::Ipc => format!("http://connkit{path}"),
            Transport::Tcp => format!(
                "http://{}{path}",
                self.endpoint.trim_start_matches("tcp://")
            ),
        }
    }

    /// A curl command that reaches this server.
    fn curl_cmd(&self) -> Command {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--fail"]);
        if let Some(socket) = self.socket() {
            cmd.arg("--unix-socket").arg(socket);
        }
        cmd
    }

    fn curl(&self, paths: &[&str]) -> std::process::Output {
        self.curl_cmd()
            .args(paths.iter().map(|p| self.http(p)))
            .output()
            .expect("curl runs (cargo xtask test-all installs it)")
    }

    /// `connkit get` with `extra` options, reaching `path` on this server.
    fn get(&self, extra: &[&str], path: &str) -> std::process::Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_connkit"));
        cmd.arg("get").args(extra);
        if self.socket().is_some() {
            cmd.args(["--via", &self.endpoint]);
        }
        cmd.arg(self.http(path)).output().unwrap()
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
        // A server killed outright leaves its socket file behind.
        if let Some(socket) = self.socket() {
            let _ = std::fs::remove_file(socket);
        }
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
    for over in BOTH {
        let server = Server::start("curl", over);
        let out = server.curl(&["/"]);
        assert!(out.status.success(), "{over:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from connkit\n");

        // One curl, three URLs: one connection, as the server's /stats shows.
        let out = server.curl(&["/", "/", "/stats"]);
        let body = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{over:?}: {body}");
        assert_eq!(stats_field(&body, "accepted"), 2, "{over:?}: {body}");
        assert_eq!(
            stats_field(&body, "connections_open"),
            1,
            "{over:?}: {body}"
        );

        let (rest, ok) = server.terminate();
        assert!(ok, "{over:?}: {rest}");
        assert!(
            rest.contains("shutdown report: accepted 2, closed in order 2, killed at the deadline 0, cut by the peer 0, errors 0"),
            "{over:?}: {rest}"
        );
        assert_eq!(
            rest.contains(" on 2 threads"),
            over.per_core,
            "{over:?}: one merged report, naming the threads: {rest}"
        );
    }
}

#[test]
fn with_json_the_shutdown_report_is_one_json_object() {
    for over in BOTH {
        let server = Server::start_with("json", over, &["--json"]);
        let out = server.curl(&["/", "/"]);
        assert!(out.status.success(), "{over:?}");
        let (rest, ok) = server.terminate();
        assert!(ok, "{over:?}: {rest}");
        let line = rest
            .lines()
            .find_map(|l| l.split_once("shutdown report: ").map(|(_, json)| json))
            .unwrap_or_else(|| panic!("{over:?}: no report in {rest}"));
        let report: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(report["accepted"], 1, "{over:?}: {report}");
        assert_eq!(report["closed"], 1, "{over:?}: {report}");
        assert_eq!(report["killed"], 0, "{over:?}: {report}");
        assert_eq!(report["cut_by_peer"], 0, "{over:?}: {report}");
        assert_eq!(report["errors"]["total"], 0, "{over:?}: {report}");
        assert_eq!(report["requests"]["finished"], 2, "{over:?}: {report}");
        let threads = if over.per_core { 2 } else { 1 };
        assert_eq!(report["threads"], threads, "{over:?}: {report}");
        assert!(
            report["drain_secs"].as_f64().is_some(),
            "{over:?}: {report}"
        );
    }
}

#[test]
fn a_slow_request_in_flight_during_sigterm_still_completes_and_the_server_exits_0() {
    for over in BOTH {
        let server = Server::start("sigterm", over);
        let mut slow = server.curl_cmd();
        slow.arg(server.http("/slow?ms=800"));
        let slow = std::thread::spawn(move || slow.output().unwrap());
        // Wait until the slow request is in flight, as /stats tells.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let out = server.curl(&["/stats"]);
            if stats_field(&String::from_utf8_lossy(&out.stdout), "requests_in_flight") >= 2 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{over:?}: the slow request never arrived"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let socket = server.socket();
        let (rest, ok) = server.terminate();
        let slow = slow.join().unwrap();
        assert!(
            slow.status.success(),
            "{over:?}: {}",
            String::from_utf8_lossy(&slow.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&slow.stdout), "slept 800 ms\n");
        assert!(ok, "{over:?}: {rest}");
        assert!(
            rest.contains("killed at the deadline 0, cut by the peer 0, errors 0"),
            "{over:?}: {rest}"
        );
        assert!(
            rest.contains("cut at the deadline 0, cut by the peer 0"),
            "{over:?}: {rest}"
        );
        assert!(rest.contains("(1 after the signal)"), "{over:?}: {rest}");
        if let Some(socket) = socket {
            assert!(
                !socket.exists(),
                "the socket file is removed when the server ends"
            );
        }
    }
}

#[test]
fn connkit_get_fetches_over_ipc_and_tcp_and_names_what_failed() {
    for over in BOTH {
        let server = Server::start("get", over);
        for http2 in [&[][..], &["--http2"]] {
            let out = server.get(http2, "/");
            assert!(
                out.status.success(),
                "{over:?} {http2:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from connkit\n");
        }

        let out = server.get(&[], "/missing");
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("HTTP 404"),
            "{over:?}"
        );

        let out = server.get(&["--timeout-ms", "200"], "/slow?ms=5000");
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("ETIMEDOUT"), "{over:?}: {err}");
    }

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

    // A dead TCP target: a port held bound, never listening.
    let (_hold, dead) = conn_test_support::refused_tcp_addr();
    let port = dead.port();
    let out = Command::new(env!("CARGO_BIN_EXE_connkit"))
        .args(["get", &format!("http://127.0.0.1:{port}/")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("connect on tcp://127.0.0.1:{port}")) && err.contains("ECONNREFUSED"),
        "{err}"
    );
}

#[tokio::test]
async fn hyper_utils_client_dials_ipc_and_tcp_through_the_connkit_connector() {
    for over in BOTH {
        let server = Server::start("hyper", over);
        // Over ipc every request goes via the socket; over tcp the URL says where.
        let via = server.socket().map(|_| server.endpoint.parse().unwrap());
        let client = Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(connector(
            connkit::registry(),
            via,
            Duration::from_secs(5),
        ));
        for _ in 0..3 {
            let response = client.get(server.http("/").parse().unwrap()).await.unwrap();
            assert_eq!(response.status(), 200);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], b"hello from connkit\n");
        }
        let response = client
            .get(server.http("/stats").parse().unwrap())
            .await
            .unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8_lossy(&body);
        assert_eq!(
            stats_field(&body, "accepted"),
            1,
            "{over:?}: keep-alive reuse: {body}"
        );
        drop(client);
        let (rest, ok) = tokio::task::spawn_blocking(move || server.terminate())
            .await
            .unwrap();
        assert!(ok, "{over:?}: {rest}");
    }
}

#[tokio::test]
async fn one_transports_own_connector_is_a_service_of_uri_too() {
    let server = Server::start(
        "own-connector",
        Over {
            transport: Transport::Tcp,
            per_core: false,
        },
    );
    let dial = tower::ServiceBuilder::new()
        .layer(connkit::core::layer::DeadlineLayer::new(
            Duration::from_secs(5),
        ))
        .service(connkit::http::Connector::new(connkit::tcp::TcpConnector));
    let client = Client::builder(TokioExecutor::new())
        .build::<_, Empty<Bytes>>(tower::util::BoxCloneSyncService::new(dial));
    let response = client.get(server.http("/").parse().unwrap()).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"hello from connkit\n");
    drop(client);
    let (rest, ok) = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    assert!(ok, "{rest}");
}
