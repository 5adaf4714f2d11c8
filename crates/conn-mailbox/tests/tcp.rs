//! A daemon with `--tcp`: TCP clients prove they hold the daemon's secret
//! (HMAC-SHA256 over fresh nonces) before they say hello; those that do
//! share groups with Unix-socket clients and have no uid, so access-listed
//! groups refuse them. Clients that answer wrong, late or not at all are
//! dropped, logged and counted, and nothing they sent reaches a group.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream as StdTcp;
use std::time::Duration;

use common::*;
use conn_core::ErrorKind;
use conn_core::wire::Repr as _;
use conn_mailbox::error::Code;
use conn_mailbox::wire::{Frame, Kind, Repr, frame_len};
use conn_mailbox::{Cause, ConnectOptions, Event, Mailbox, MailboxError, Secret, Service};
use conn_test_support::TempFile;

const SECRET: &str = "the daemon's secret, 32 bytes ok";

fn secret_file() -> TempFile {
    TempFile::new("mailbox-tcp-secret", format!("{SECRET}\n"), 0o600)
}

/// Connects to the daemon at `tcp://addr` as `name` (with membership
/// messages), answering its challenge with `secret`.
async fn connect_tcp(
    addr: &str,
    name: &str,
    secret: &str,
) -> Result<(Mailbox, String), MailboxError> {
    let options = ConnectOptions::new().secret(Secret::new(secret.as_bytes()).unwrap());
    Mailbox::connect_with(format!("tcp://{addr}"), name, 0, true, &options, soon()).await
}

/// A daemon on loopback TCP with the test's secret (and `more` flags).
fn daemon_with_secret(secret: &TempFile, more: &[&str]) -> (Daemon, String) {
    let mut args = vec!["--tcp", "127.0.0.1:0", "--secret", secret.arg()];
    args.extend_from_slice(more);
    let d = Daemon::start(&args);
    let addr = d.tcp_addr();
    (d, addr)
}

/// A daemon with the test's secret, and a Unix client `local` that joined
/// "room" (its own join not yet read).
async fn room_with_a_member(secret: &TempFile) -> (Daemon, String, Mailbox) {
    let (d, addr) = daemon_with_secret(secret, &[]);
    let mut local = connect(&d, "local", true).await;
    local.join("room", soon()).await.unwrap();
    (d, addr, local)
}

/// A client that speaks the wire by hand, to do what `Mailbox` never would.
struct Raw(StdTcp);

impl Raw {
    fn connect(addr: &str) -> Raw {
        let s = StdTcp::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Raw(s)
    }

    fn send(&mut self, repr: &Repr<'_>) {
        self.0.write_all(&repr.to_vec().unwrap()).unwrap();
    }

    /// The next whole frame, or `None` at end of stream.
    fn frame(&mut self) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 4];
        match self.0.read_exact(&mut buf) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
                ) =>
            {
                return None;
            }
            Err(e) => panic!("read a frame: {e}"),
        }
        let total = frame_len(&buf).unwrap().unwrap();
        buf.resize(total, 0);
        self.0.read_exact(&mut buf[4..]).unwrap();
        Some(buf)
    }

    /// Reads the daemon's challenge nonce.
    fn challenge(&mut self) -> [u8; 32] {
        let f = self.frame().expect("a challenge");
        match Repr::parse(&Frame::new_checked(&f[..]).unwrap()).unwrap() {
            Repr::Challenge { nonce } => nonce,
            other => panic!("expected a challenge, got {other:?}"),
        }
    }

    /// Reads the daemon's refusal (a reply to no request) and then the end
    /// of the stream; returns the refusal's text.
    fn refusal(&mut self) -> String {
        let f = self.frame().expect("a refusal");
        let text = match Repr::parse(&Frame::new_checked(&f[..]).unwrap()).unwrap() {
            Repr::Reply {
                req: 0,
                code,
                detail,
            } => {
                assert_eq!(
                    Code::from_u16(code),
                    Some(Code::Unauthenticated),
                    "{detail}"
                );
                detail.to_string()
            }
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert_eq!(self.frame(), None, "the daemon ends the connection");
        text
    }

    /// What a client that never authenticated would send to get into `group`.
    fn barge_in(&mut self, group: &str) {
        self.send(&Repr::Connect {
            version: Repr::VERSION,
            priority: 0,
            membership: true,
            name: "intruder",
        });
        self.send(&Repr::Join { req: 1, group });
        self.send(&Repr::Multicast {
            service: Service::AGREED.bits(),
            msg_type: 66,
            groups: (&[group]).into(),
            payload: b"injected",
        });
    }
}

/// Sends a marker from `from` to `group` and returns what `to` received
/// before it: messages, and membership changes about anyone but `to` and
/// `from`.
async fn messages_before_marker(from: &mut Mailbox, to: &mut Mailbox, group: &str) -> Vec<String> {
    from.multicast(Service::AGREED, &[group], 1, b"marker")
        .await
        .unwrap();
    let us = [
        to.private_group().to_owned(),
        from.private_group().to_owned(),
    ];
    let mut seen = Vec::new();
    loop {
        match next(to).await {
            Event::Message(m) if m.msg_type() == 1 && m.data() == b"marker" => return seen,
            Event::Message(m) => seen.push(format!(
                "{} from {}",
                String::from_utf8_lossy(m.data()),
                m.sender()
            )),
            Event::Membership(ms) if us.iter().any(|u| ms.changed == u.as_str()) => {}
            Event::Membership(ms) => seen.push(format!("{} {}", ms.cause.as_str(), ms.changed)),
        }
    }
}

/// SIGTERMs the daemon and returns its log with the shutdown report.
fn stop_and_report(mut d: Daemon) -> String {
    d.sigterm();
    assert!(d.wait(), "mailboxd exits 0 on SIGTERM");
    let log = d.log_text();
    assert!(log.contains("mailboxd stopped"), "{log}");
    log
}

#[test]
fn tcp_without_a_secret_or_with_an_open_secret_file_will_not_start() {
    let run = |args: &[&str]| {
        let socket = std::env::temp_dir().join(format!("{}.sock", unique("mailboxd-nostart")));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailboxd"))
            .arg("--socket")
            .arg(&socket)
            .args(args)
            .output()
            .expect("run mailboxd");
        let _ = std::fs::remove_file(&socket);
        assert!(!out.status.success(), "mailboxd started with {args:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run(&["--tcp", "127.0.0.1:0"]);
    assert!(
        err.contains("--tcp needs --secret FILE") && err.contains("--tcp-insecure"),
        "{err}"
    );
    let open = TempFile::new("mailbox-open-secret", SECRET, 0o644);
    let err = run(&["--tcp", "127.0.0.1:0", "--secret", open.arg()]);
    assert!(
        err.contains("mode 0644") && err.contains("chmod 600") && err.contains(open.arg()),
        "{err}"
    );
    let empty = TempFile::new("mailbox-empty-secret", "\n", 0o600);
    let err = run(&["--tcp", "127.0.0.1:0", "--secret", empty.arg()]);
    assert!(err.contains("the secret is empty"), "{err}");
}

#[tokio::test]
async fn tcp_insecure_serves_tcp_clients_without_a_secret() {
    let d = Daemon::start(&["--tcp", "127.0.0.1:0", "--tcp-insecure"]);
    let addr = d.tcp_addr();
    assert!(d.log_text().contains("not authenticated (--tcp-insecure)"));
    let (remote, me) = Mailbox::connect(format!("tcp://{addr}"), "remote", 0, false, soon())
        .await
        .unwrap();
    assert_eq!(me, "#remote#local");
    remote.disconnect(soon()).await.unwrap();
}

#[tokio::test]
async fn the_right_secret_joins_sends_and_receives_over_tcp() {
    let secret = secret_file();
    let acl = TempFile::new(
        "mailbox-tcp-acl",
        "[groups.local-only]\njoin = [0]\n",
        0o600,
    );
    let (d, addr) = daemon_with_secret(&secret, &["--acl", acl.arg()]);
    let mut local = connect(&d, "local", true).await;
    local.join("mixed", soon()).await.unwrap();
    membership(&mut local).await;

    let (mut remote, me) = connect_tcp(&addr, "remote", SECRET).await.unwrap();
    assert_eq!(me, "#remote#local");
    // Authenticated, still no uid: an access-listed group refuses it.
    let e = remote.join("local-only", soon()).await.unwrap_err();
    assert!(
        matches!(e, MailboxError::NotAllowed { op: "join", .. }),
        "{e}"
    );
    remote.join("mixed", soon()).await.unwrap();
    wait_change(&mut local, "mixed", Cause::Join, "#remote#local").await;
    wait_change(&mut remote, "mixed", Cause::Join, "#remote#local").await;
    remote
        .multicast(Service::AGREED, &["mixed"], 0, b"over tcp")
        .await
        .unwrap();
    assert_eq!(message(&mut local).await.data(), b"over tcp");
    assert_eq!(message(&mut remote).await.data(), b"over tcp");
    local
        .multicast(Service::AGREED, &["mixed"], 0, b"back over tcp")
        .await
        .unwrap();
    let m = message(&mut remote).await;
    assert_eq!(
        (m.sender(), m.data()),
        ("#local#local", &b"back over tcp"[..])
    );
    assert_eq!(message(&mut local).await.data(), b"back over tcp");
    remote.disconnect(soon()).await.unwrap();
    let gone = wait_change(&mut local, "mixed", Cause::Disconnect, "#remote#local").await;
    assert_eq!(gone.members, ["#local#local"]);
    local.disconnect(soon()).await.unwrap();
    let log = stop_and_report(d);
    assert!(!log.contains("TCP client dropped"), "{log}");
}

#[tokio::test]
async fn a_wrong_secret_is_refused_and_nothing_it_sent_is_delivered() {
    let secret = secret_file();
    let (d, addr, mut local) = room_with_a_member(&secret).await;

    // The client: refused, with the daemon named.
    let e = connect_tcp(&addr, "wrong", "not the daemon's secret at all")
        .await
        .unwrap_err();
    assert!(matches!(e, MailboxError::Unauthenticated(_)), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    let text = e.to_string();
    assert!(
        text.contains(&format!("mailboxd at tcp://{addr} refused the secret"))
            && text.contains("wrong answer to the challenge"),
        "{text}"
    );

    // By hand: a wrong MAC, then everything it takes to get into the room.
    let mut raw = Raw::connect(&addr);
    raw.challenge();
    raw.send(&Repr::Answer {
        nonce: [5; 32],
        mac: [0; 32],
    });
    raw.barge_in("room");
    assert!(raw.refusal().contains("wrong answer"));
    drop(raw);

    let mut sender = connect(&d, "sender", false).await;
    let seen = messages_before_marker(&mut sender, &mut local, "room").await;
    assert!(
        seen.is_empty(),
        "refused clients got into the room: {seen:?}"
    );
    sender.kill();
    local.disconnect(soon()).await.unwrap();

    let log = stop_and_report(d);
    assert_eq!(
        log.matches("TCP client dropped: authenticate TCP client on tcp://127.0.0.1:")
            .count(),
        2,
        "{log}"
    );
    // Counted in the report, each with its cause.
    assert!(log.contains("errors 2"), "{log}");
    assert!(
        log.contains("error: authenticate TCP client on tcp://127.0.0.1:")
            && log.contains("permission denied (EPERM): wrong answer to the challenge"),
        "{log}"
    );
}

#[tokio::test]
async fn a_client_that_never_answers_is_dropped_and_the_others_are_served() {
    let secret = secret_file();
    let (d, addr) = daemon_with_secret(&secret, &["--hello-timeout", "1"]);
    let mut silent = Raw::connect(&addr);
    silent.challenge();

    // While it sits on its challenge, a TCP client and a local one work.
    let mut local = connect(&d, "local", true).await;
    local.join("room", soon()).await.unwrap();
    let (mut remote, _) = connect_tcp(&addr, "remote", SECRET).await.unwrap();
    remote.join("room", soon()).await.unwrap();
    remote
        .multicast(Service::AGREED, &["room"], 0, b"served")
        .await
        .unwrap();
    let seen = messages_before_marker(&mut remote, &mut local, "room").await;
    assert_eq!(seen, ["served from #remote#local"]);

    // The silent one is told why and dropped, no sooner than the timeout.
    let why = tokio::task::spawn_blocking(move || silent.refusal())
        .await
        .unwrap();
    assert!(
        why.contains("no answer to the challenge within 1s"),
        "{why}"
    );

    // And the others are still served.
    remote
        .multicast(Service::AGREED, &["room"], 0, b"still served")
        .await
        .unwrap();
    let seen = messages_before_marker(&mut remote, &mut local, "room").await;
    assert_eq!(seen, ["still served from #remote#local"]);
    remote.disconnect(soon()).await.unwrap();
    local.disconnect(soon()).await.unwrap();

    let log = stop_and_report(d);
    assert!(
        log.contains("TCP client dropped: authenticate TCP client on tcp://127.0.0.1:")
            && log.contains("deadline passed (ETIMEDOUT): no answer to the challenge within 1s"),
        "{log}"
    );
    assert!(log.contains("errors 1"), "{log}");
}

#[tokio::test]
async fn an_unauthenticated_client_cannot_inject_into_a_local_group() {
    let secret = secret_file();
    let (d, addr, mut local) = room_with_a_member(&secret).await;

    // A client that ignores the challenge and says hello, joins and sends.
    let mut raw = Raw::connect(&addr);
    raw.barge_in("room");
    raw.challenge();
    let why = raw.refusal();
    assert!(
        why.contains("a hello without answering the challenge"),
        "{why}"
    );
    // One that sends bytes that are no frame at all.
    let mut raw = Raw::connect(&addr);
    raw.0.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    raw.challenge();
    raw.refusal();

    // The client without a secret is told what is missing.
    let e = Mailbox::connect(format!("tcp://{addr}"), "nosecret", 0, true, soon())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    assert!(
        e.to_string().contains(&format!(
            "mailboxd at tcp://{addr} asks for a secret, and none was given"
        )),
        "{e}"
    );

    let mut sender = connect(&d, "sender", false).await;
    let seen = messages_before_marker(&mut sender, &mut local, "room").await;
    assert!(seen.is_empty(), "injected: {seen:?}");
    sender.kill();
    local.disconnect(soon()).await.unwrap();
    let log = stop_and_report(d);
    assert!(
        log.contains("permission denied (EPERM): a hello without answering the challenge"),
        "{log}"
    );
    assert!(
        log.contains("protocol error (EPROTO): bytes that are no answer to the challenge"),
        "{log}"
    );
}

#[tokio::test]
async fn a_client_with_a_secret_says_hello_only_to_a_daemon_that_proves_it() {
    // A fake daemon: it challenges, takes the answer, and "proves" itself
    // with a MAC it cannot make.
    let fake = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = fake.local_addr().unwrap().to_string();
    let fake = std::thread::spawn(move || {
        let (conn, _) = fake.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut raw = Raw(conn);
        raw.send(&Repr::Challenge { nonce: [8; 32] });
        let answer = raw.frame().expect("an answer");
        assert_eq!(answer[4], Kind::Answer as u8);
        raw.send(&Repr::Proof { mac: [0; 32] });
        // What the client sends next: nothing, if it saw through the proof.
        std::iter::from_fn(|| raw.frame()).count()
    });
    let e = connect_tcp(&addr, "c", SECRET).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(
        e.to_string().contains(&format!(
            "mailboxd at tcp://{addr} could not prove it holds the secret"
        )),
        "{e}"
    );
    let after_proof = tokio::task::spawn_blocking(move || fake.join().unwrap())
        .await
        .unwrap();
    assert_eq!(
        after_proof, 0,
        "the client said hello to a daemon that proved nothing"
    );

    // An insecure daemon sends no challenge: a client with a secret never
    // says hello to it.
    let insecure = Daemon::start(&[
        "--tcp",
        "127.0.0.1:0",
        "--tcp-insecure",
        "--hello-timeout",
        "1",
    ]);
    let addr = insecure.tcp_addr();
    let e = connect_tcp(&addr, "c", SECRET).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(e.to_string().contains("without a challenge"), "{e}");
}
