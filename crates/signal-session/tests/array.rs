//! signal_array across three sessiond processes on loopback: each node's
//! report, the nodes that do not answer, and a wrong secret refused.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::sessiond::{Sessiond, root_or_skip, sessionctl, unique};
use common::{alive, eventually};
use conn_core::{Deadline, ErrorKind};
use conn_test_support::TempFile;
use signal_session::client::{Client, signal_array};
use std::io::{Read, Write};

use conn_core::wire::Repr as _;
use signal_session::wire::{Frame, Message, NodeOutcome};
use signal_session::{Ash, Outcome};

const SECRET: &str = "correct horse battery staple\n";

/// A peer daemon listening on a loopback port of its own choosing.
fn peer(secret: &Path) -> Sessiond {
    let config = TempFile::new("peer.toml", format!("secret_file = {:?}\n", secret), 0o644);
    let daemon = Sessiond::start(&["--config", config.arg(), "--listen", "127.0.0.1:0"]);
    assert!(daemon.tcp.is_some());
    daemon
}

fn read_frame(stream: &mut std::net::TcpStream) -> Message {
    let mut header = [0u8; 8];
    stream.read_exact(&mut header).unwrap();
    let len = conn_core::wire::frame_len::<signal_session::wire::Sessiond>(&header)
        .unwrap()
        .unwrap();
    let mut bytes = header.to_vec();
    bytes.resize(len, 0);
    stream.read_exact(&mut bytes[8..]).unwrap();
    Message::parse(&Frame::new_checked(&bytes[..]).unwrap()).unwrap()
}

async fn client(daemon: &Sessiond) -> Client {
    Client::connect(&daemon.socket, Deadline::after(Duration::from_secs(10)))
        .await
        .unwrap()
}

/// The same session `ash` on `daemon`, with a sleep in it.
async fn sleeper_in(daemon: &Sessiond, ash: Option<Ash>) -> (Ash, u32) {
    let mut c = client(daemon).await;
    let ash = c.new_session(ash).await.unwrap();
    let pid = c.spawn(ash, &["sleep", "100"]).await.unwrap();
    (ash, pid)
}

#[tokio::test]
async fn kill_array_reports_every_node_and_the_one_that_does_not_answer() {
    let secret = TempFile::new("secret", SECRET, 0o600);
    let wrong = TempFile::new("wrong-secret", "not the array's secret at all\n", 0o600);
    let b = peer(secret.path());
    let rogue = peer(wrong.path());
    // A dead node: its address refuses, and stays refused (held bound,
    // never listening) for the whole test.
    let (_dead, c_addr) = conn_test_support::refused_tcp_addr();
    // Accepts connections (the kernel's backlog) but never answers.
    let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mute_addr = mute.local_addr().unwrap().to_string();

    // a's own address is in its array, so the port must be known before
    // its config is written: the test binds it and hands the socket to
    // sessiond by socket activation, so nobody can take it in between.
    let a_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a_addr = a_listener.local_addr().unwrap().to_string();
    let config = TempFile::new(
        "a.toml",
        format!(
            r#"secret_file = {secret:?}
listen = "{a_addr}"

[arrays]
lab = [
    {{ name = "a", addr = "{a_addr}" }},
    {{ name = "b", addr = "{b}" }},
    {{ name = "c", addr = "{c_addr}" }},
]
mute = [ {{ name = "m", addr = "{mute_addr}" }} ]
rogue = [ {{ name = "r", addr = "{r}" }} ]
"#,
            secret = secret.path(),
            b = b.tcp.as_ref().unwrap(),
            r = rogue.tcp.as_ref().unwrap(),
        ),
        0o644,
    );
    let a = Sessiond::start_activated(
        &a_listener,
        &["--config", config.arg(), "--listen", &a_addr],
    );

    // One array session: the same handle on a and b, a sleep in each.
    let (ash, on_a) = sleeper_in(&a, None).await;
    let (_, on_b) = sleeper_in(&b, Some(ash)).await;

    // Checked first (signal 0), as JSON: one object, a node each, the
    // dead one without an answer; exit 1 as the text form.
    let out = sessionctl(
        &a.socket,
        None,
        &[
            "kill",
            &ash.to_string(),
            "-s",
            "0",
            "--array",
            "lab",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let nodes = json["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3, "{json}");
    assert_eq!(nodes[0]["name"], "a", "{json}");
    assert_eq!(
        nodes[0]["outcome"]["answered"]["ash"],
        ash.to_string(),
        "{json}"
    );
    assert_eq!(
        nodes[0]["outcome"]["answered"]["signal"]["number"], 0,
        "{json}"
    );
    let checked = &nodes[0]["outcome"]["answered"]["members"][0];
    assert_eq!(checked["member"]["process"], on_a, "{json}");
    assert_eq!(checked["outcome"], "checked", "{json}");
    assert_eq!(nodes[2]["name"], "c", "{json}");
    assert_eq!(
        nodes[2]["outcome"]["no_answer"]["kind"], "ECONNREFUSED",
        "{json}"
    );

    let report = signal_array(
        Some(&a.socket),
        "lab",
        ash,
        libc::SIGTERM,
        Deadline::after(Duration::from_secs(10)),
    )
    .await
    .unwrap();
    let names: Vec<&str> = report.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"], "{report}");
    let answered: Vec<(&str, Vec<u32>)> = report
        .answered()
        .map(|(name, r)| {
            assert_eq!(r.count(Outcome::Signalled), 1, "{report}");
            (name, r.pids())
        })
        .collect();
    assert_eq!(answered, [("a", vec![on_a]), ("b", vec![on_b])], "{report}");
    assert_eq!(report.silent(), ["c"], "{report}");
    eventually("both sleeps are gone", || !alive(on_a) && !alive(on_b)).await;

    // The user a kill is for travels with it: nobody, through the array,
    // may not signal root's processes on any node. The session is root's
    // on each node, so each node refuses the kill outright.
    if root_or_skip("the array permission check") {
        let (roots, root_a) = sleeper_in(&a, None).await;
        let (_, root_b) = sleeper_in(&b, Some(roots)).await;
        let out = sessionctl(
            &a.socket,
            Some(65534),
            &["kill", &roots.to_string(), "-s", "TERM", "--array", "lab"],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{stdout}");
        for node in ["a", "b"] {
            let line = stdout
                .lines()
                .find(|l| l.starts_with(&format!("node {node} (")))
                .unwrap_or_default();
            assert!(
                line.contains("refused") && line.contains("belongs to uid 0"),
                "{stdout}"
            );
        }
        for pid in [root_a, root_b] {
            assert!(alive(pid));
        }
        assert!(
            stdout.contains("node c (") && stdout.contains("no answer"),
            "{stdout}"
        );
        for daemon in [&a, &b] {
            client(daemon)
                .await
                .signal(roots, libc::SIGKILL, false)
                .await
                .unwrap();
        }
    }

    // A node that accepts but never answers is reported at the deadline.
    let report = signal_array(
        Some(&a.socket),
        "mute",
        ash,
        0,
        Deadline::after(Duration::from_millis(300)),
    )
    .await
    .unwrap();
    assert!(
        matches!(
            &report.nodes[0].outcome,
            NodeOutcome::NoAnswer {
                kind: ErrorKind::TimedOut,
                ..
            }
        ),
        "{report}"
    );
    drop(mute);

    // A daemon holding another secret refuses, and signals nothing.
    let (_, on_rogue) = sleeper_in(&rogue, Some(ash)).await;
    let report = signal_array(
        Some(&a.socket),
        "rogue",
        ash,
        libc::SIGKILL,
        Deadline::after(Duration::from_secs(10)),
    )
    .await
    .unwrap();
    match &report.nodes[0].outcome {
        NodeOutcome::Refused { kind, message } => {
            assert_eq!(*kind, ErrorKind::PermissionDenied, "{report}");
            assert!(message.contains("authentication failed"), "{report}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(alive(on_rogue), "a wrong secret signals nothing");
    assert!(
        rogue.log().contains("authentication failed"),
        "{}",
        rogue.log()
    );
    let mut r = client(&rogue).await;
    r.signal(ash, libc::SIGKILL, false).await.unwrap();

    // A request without the MAC, straight to a peer's port: refused.
    let (plain, on_b) = sleeper_in(&b, None).await;
    let mut raw = std::net::TcpStream::connect(b.tcp.as_ref().unwrap()).unwrap();
    let challenge = read_frame(&mut raw);
    assert!(
        matches!(challenge, Message::Challenge { .. }),
        "{challenge:?}"
    );
    let kill = Message::Kill {
        ash: plain,
        sig: libc::SIGKILL,
        atomic: false,
        array: None,
        deadline_ms: 0,
    };
    raw.write_all(&kill.to_vec().unwrap()).unwrap();
    let answer = read_frame(&mut raw);
    assert!(
        matches!(
            answer,
            Message::Error {
                kind: ErrorKind::Protocol,
                ..
            }
        ),
        "{answer:?}"
    );
    assert!(alive(on_b), "an unauthenticated kill signals nothing");
    client(&b)
        .await
        .signal(plain, libc::SIGKILL, false)
        .await
        .unwrap();

    // An array the configuration does not know is NotFound.
    let err = signal_array(
        Some(&a.socket),
        "nope",
        ash,
        0,
        Deadline::after(Duration::from_secs(5)),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    // Nor is "cluster" an array for a sessiond not started in a cluster;
    // the error says what would make it one.
    let err = signal_array(
        Some(&a.socket),
        "cluster",
        ash,
        0,
        Deadline::after(Duration::from_secs(5)),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("--cluster corosync"), "{err}");
}

#[test]
fn a_secret_file_others_may_read_keeps_sessiond_from_starting() {
    let open = TempFile::new("open-secret", SECRET, 0o644);
    let config = TempFile::new(
        "open.toml",
        format!("secret_file = {:?}\n", open.path()),
        0o644,
    );
    let out = Command::new(env!("CARGO_BIN_EXE_sessiond"))
        .arg("--socket")
        .arg(unique("sock"))
        .args(["--config", config.arg(), "--listen", "127.0.0.1:0"])
        .output()
        .expect("run sessiond");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "sessiond started with an open secret: {stderr}"
    );
    assert!(stderr.contains("chmod 600"), "{stderr}");
    assert!(
        stderr.contains(&open.path().display().to_string()),
        "{stderr}"
    );
}
