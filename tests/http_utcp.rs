//! `connkit http --listen utcp://... --tap T --tap-host H`: the HTTP server
//! on the userspace stack over a TAP device it creates, reached by the
//! kernel's own `curl` through the kernel's TCP; SIGTERM drains it and the
//! device is gone afterwards. Each test runs in a network namespace of its
//! own, so nothing is made in the host's, and the namespace goes (with
//! anything left in it) even when the test fails. Needs root (skips loudly
//! otherwise).

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

/// A network namespace of the test's own; deleted, with its devices, on drop.
struct Netns(String);

impl Netns {
    fn new(name: String) -> Netns {
        let _ = ip(&["netns", "del", &name]);
        assert!(ip(&["netns", "add", &name]), "ip netns add {name}");
        let ns = Netns(name);
        assert!(ip(&["-n", &ns.0, "link", "set", "lo", "up"]));
        ns
    }

    /// `program args` run inside the namespace.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.0, program]);
        cmd
    }

    fn has_device(&self, tap: &str) -> bool {
        ip(&["-n", &self.0, "link", "show", tap])
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.0]);
    }
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The server process, killed if the test fails (before its namespace goes).
struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_kernels_curl_reaches_connkit_http_on_a_tap_and_sigterm_drains_it() {
    serve_on_a_tap(false);
}

#[test]
fn per_core_serves_one_stack_per_queue_on_a_tap_and_sigterm_drains_them_all() {
    serve_on_a_tap(true);
}

/// `connkit http` on a TAP device of its own, on one thread or on two
/// (`--per-core 2`: two queues, a stack and a runtime each), reached by
/// the host's curl, then drained by SIGTERM.
fn serve_on_a_tap(per_core: bool) {
    if !rustix::process::geteuid().is_root() {
        conn_test_support::skip(
            &format!("connkit http on a TAP device (per_core: {per_core})"),
            "it needs root (creates a TAP device)",
        );
        return;
    }
    let pid = std::process::id();
    let tap = format!("ck{}{}", pid % 1_000_000, if per_core { "m" } else { "s" });
    let net = format!(
        "10.{}.{}",
        180 + pid % 38 + u32::from(per_core) * 38,
        (pid / 50) % 250
    );
    let ns = Netns::new(format!(
        "ckhttp{}{}",
        pid % 1_000_000,
        if per_core { "m" } else { "s" }
    ));
    // `ip netns exec` execs the program itself: the child is connkit.
    let mut cmd = ns.command(env!("CARGO_BIN_EXE_connkit"));
    cmd.args([
        "http",
        "--listen",
        &format!("utcp://{net}.2:8080"),
        "--tap",
        &tap,
        "--tap-host",
        &format!("{net}.1/24"),
    ]);
    if per_core {
        cmd.args(["--per-core", "2"]);
    }
    let mut server = Server {
        child: cmd
            .stdout(Stdio::piped())
            .spawn()
            .expect("start connkit http"),
    };
    let mut out = BufReader::new(server.child.stdout.take().unwrap());
    let mut lines = String::new();
    while !lines.contains("listening on") {
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "ended early: {lines}"
        );
        lines.push_str(&line);
    }
    assert!(
        lines.contains(&format!("listening on utcp://{net}.2:8080")),
        "{lines}"
    );
    assert!(ns.has_device(&tap), "the server made no device {tap}");

    let curl = ns
        .command("curl")
        .args(["-sS", "--max-time", "10"])
        .arg(format!("http://{net}.2:8080/"))
        .arg(format!("http://{net}.2:8080/stats"))
        .output()
        .unwrap();
    assert!(
        curl.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&curl.stderr)
    );
    let body = String::from_utf8(curl.stdout).unwrap();
    assert!(body.starts_with("hello from connkit\n"), "{body}");
    assert!(body.contains("\"requests\":2"), "{body}");

    let pid = rustix::process::Pid::from_raw(server.child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{rest}");
    assert!(
        rest.contains("shutdown report: accepted 1, closed in order 1, killed at the deadline 0, cut by the peer 0, errors 0"),
        "{rest}"
    );
    assert_eq!(rest.contains(" on 2 threads"), per_core, "{rest}");
    assert!(!ns.has_device(&tap), "the device {tap} outlived the server");
}
