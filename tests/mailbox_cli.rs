//! `connkit mailbox` (the real binary) against a mailboxd: interactive and
//! scripted. The daemon is conn-mailbox's own, run on a thread of this test
//! (mailboxd's binary belongs to another package, so cargo does not build it
//! for these tests); the sockets and the client processes are real.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use connkit::mailbox::daemon::{DaemonConfig, run};

/// Where `connkit mailbox` reads its secret file's path from when
/// `--secret` is not given.
const SECRET_FILE_ENV: &str = "CONNKIT_MAILBOX_SECRET_FILE";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A daemon on a thread of its own, stopped on drop.
struct Daemon {
    socket: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Daemon {
    fn start() -> Daemon {
        Daemon::start_with(|_| {})
    }

    /// Starts one with the default configuration changed by `tune`.
    fn start_with(tune: impl FnOnce(&mut DaemonConfig)) -> Daemon {
        let socket = std::env::temp_dir().join(format!(
            "connkit-mailbox-cli-{}-{}.sock",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let mut config = DaemonConfig::new(&socket);
        tune(&mut config);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(run(config, async {
                stopped.await.ok();
            }))
            .expect("daemon");
        });
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(connkit::mailbox::daemon::wait_ready(
                &socket,
                connkit::core::Deadline::after(std::time::Duration::from_secs(10)),
            ))
            .expect("the daemon listens");
        Daemon {
            socket,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn connkit(daemon: &Path, name: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_connkit"));
    cmd.arg("mailbox")
        .arg("--daemon")
        .arg(daemon)
        .args(["--name", name]);
    cmd
}

struct Proc {
    child: Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Proc {
    fn spawn(mut cmd: Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("connkit mailbox");
        let out = BufReader::new(child.stdout.take().unwrap());
        Proc { child, out }
    }
    fn line(&mut self) -> String {
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "connkit mailbox ended early");
        line.trim_end().to_string()
    }
    fn say(&mut self, line: &str) {
        writeln!(self.child.stdin.as_mut().unwrap(), "{line}").unwrap();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn send(d: &Daemon, name: &str, group: &str, text: &str) {
    let out = connkit(&d.socket, name)
        .args(["send", group, text])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "send: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn interactive_join_send_receive_leave_quit() {
    let d = Daemon::start();
    let mut alice = Proc::spawn(connkit(&d.socket, "alice"));
    assert_eq!(
        alice.line(),
        "connected as #alice#local; commands: join G | leave G | send G TEXT | receive | quit"
    );
    alice.say("join chat");
    assert_eq!(
        alice.line(),
        "membership chat view 1 join #alice#local members #alice#local"
    );
    alice.say("send chat hello there");
    assert_eq!(
        alice.line(),
        "message from #alice#local to chat type 0 AGREED: hello there"
    );
    send(&d, "bob", "chat", "from bob");
    assert_eq!(
        alice.line(),
        "message from #bob#local to chat type 0 AGREED: from bob"
    );
    alice.say("join #bad");
    assert!(alice.line().starts_with("error: illegal group"));
    alice.say("receive");
    assert_eq!(alice.line(), "nothing to receive");
    alice.say("leave chat");
    assert_eq!(
        alice.line(),
        "membership chat view 2 self-leave #alice#local members (none)"
    );
    alice.say("quit");
    assert!(alice.child.wait().unwrap().success());
}

#[test]
fn scripted_listen_json_sees_joins_messages_and_leaves() {
    let d = Daemon::start();
    let mut listener = Proc::spawn({
        let mut c = connkit(&d.socket, "lis");
        c.args(["--json", "listen", "news", "--count", "5"]);
        c
    });
    let first: serde_json::Value = serde_json::from_str(&listener.line()).unwrap();
    assert_eq!(
        (
            first["event"].as_str(),
            first["cause"].as_str(),
            first["changed"].as_str()
        ),
        (Some("membership"), Some("join"), Some("#lis#local"))
    );
    // A member that stays joined until its stdin closes.
    let mut member = Proc::spawn({
        let mut c = connkit(&d.socket, "mem");
        c.args(["join", "news"]);
        c
    });
    let joined: serde_json::Value = serde_json::from_str(&listener.line()).unwrap();
    assert_eq!(
        (
            joined["cause"].as_str(),
            joined["members"].as_array().map(Vec::len)
        ),
        (Some("join"), Some(2))
    );
    send(&d, "s1", "news", "one");
    send(&d, "s2", "news", "two");
    for (want, sender) in [("one", "#s1#local"), ("two", "#s2#local")] {
        let m: serde_json::Value = serde_json::from_str(&listener.line()).unwrap();
        assert_eq!(
            (
                m["event"].as_str(),
                m["data"].as_str(),
                m["sender"].as_str()
            ),
            (Some("message"), Some(want), Some(sender))
        );
    }
    drop(member.child.stdin.take()); // stdin closes: the member disconnects
    let left: serde_json::Value = serde_json::from_str(&listener.line()).unwrap();
    assert_eq!(
        (left["cause"].as_str(), left["changed"].as_str()),
        (Some("disconnect"), Some("#mem#local"))
    );
    assert!(listener.child.wait().unwrap().success());
    assert!(member.child.wait().unwrap().success());
}

#[test]
fn errors_are_one_line_and_nonzero() {
    let d = Daemon::start();
    let out = connkit(&d.socket, "way-too-long-name")
        .args(["send", "g", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("illegal private name"), "{err}");
}

#[test]
fn a_send_the_daemon_refuses_exits_nonzero_and_says_why() {
    // Only uid 12345 may send to "locked"; this test's uid is not it.
    let acl = connkit::mailbox::daemon::Acl::parse("[groups.locked]\nsend = [12345]\n").unwrap();
    let d = Daemon::start_with(|c| c.acl = Some(acl));
    let out = connkit(&d.socket, "s")
        .args(["send", "locked", "x"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a refused send exited 0: {err}");
    assert!(
        err.contains("send to locked") && err.contains("locked"),
        "{err}"
    );
    // An open group still works, and exits 0.
    send(&d, "s", "open", "fine");
}

/// A daemon that also listens on loopback TCP, its clients there proving
/// they hold `secret`; returns it and its `tcp://` address.
fn start_tcp(secret: &str) -> (Daemon, String) {
    // A port free a moment ago; the daemon binds it with SO_REUSEADDR.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .to_string();
    let key = connkit::mailbox::Secret::new(secret.as_bytes()).unwrap();
    let d = Daemon::start_with(|c| {
        c.tcp = Some(addr.clone());
        c.secret = Some(key);
    });
    // The TCP listener is bound just after the Unix one.
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(
            start.elapsed().as_secs() < 10,
            "mailboxd never listened on {addr}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    (d, format!("tcp://{addr}"))
}

#[test]
fn a_refused_secret_exits_nonzero_and_says_why() {
    const SECRET: &str = "the daemon's own secret";
    let (_d, addr) = start_tcp(SECRET);
    let daemon = Path::new(&addr);
    let right = conn_test_support::TempFile::new("cli-secret", format!("{SECRET}\n"), 0o600);
    let wrong = conn_test_support::TempFile::new("cli-wrong", "somebody else's secret", 0o600);
    let open = conn_test_support::TempFile::new("cli-open", SECRET, 0o644);
    let fails = |mut cmd: Command| {
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "exited 0: {err}");
        err
    };
    let send = |secret: Option<&Path>| {
        let mut cmd = connkit(daemon, "s");
        if let Some(path) = secret {
            cmd.arg("--secret").arg(path);
        }
        cmd.args(["send", "g", "x"]).env_remove(SECRET_FILE_ENV);
        cmd
    };

    let err = fails(send(Some(wrong.path())));
    assert!(
        err.contains(&format!("mailboxd at {addr} refused the secret")),
        "{err}"
    );
    let err = fails(send(None));
    assert!(
        err.contains(&format!(
            "mailboxd at {addr} asks for a secret, and none was given"
        )),
        "{err}"
    );
    let err = fails(send(Some(open.path())));
    assert!(err.contains("chmod 600"), "{err}");

    // The right one, by flag and by the environment.
    let succeeds = |mut cmd: Command| {
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{err}");
    };
    succeeds(send(Some(right.path())));
    let mut by_env = send(None);
    by_env.env(SECRET_FILE_ENV, right.path());
    succeeds(by_env);
}
