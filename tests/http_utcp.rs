//! `connkit http --listen utcp://... --tap T --tap-host H` (and `--tun T
//! --tun-host H`, IPv4 and IPv6): the HTTP server on the userspace stack
//! over a TAP or TUN device it creates, reached by the kernel's own `curl`
//! through the kernel's TCP; SIGTERM drains it and the device is gone
//! afterwards; a device deleted under it ends it with its report and the
//! error. Each test runs in a network namespace of its
//! own, so nothing is made in the host's, and the namespace goes (with
//! anything left in it) even when the test fails. Needs root (skips loudly
//! otherwise).

mod common {
    pub mod wrk;
}

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

/// The device `connkit http` makes: `--tap` or `--tun`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tap,
    Tun,
}

/// The families the server is given addresses of.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Families {
    V4,
    V6,
    Both,
}

#[test]
fn the_kernels_curl_reaches_connkit_http_on_a_tap_and_sigterm_drains_it() {
    serve_on(Kind::Tap, Families::V4, false);
}

#[test]
fn per_core_serves_one_stack_per_queue_on_a_tap_and_sigterm_drains_them_all() {
    serve_on(Kind::Tap, Families::V4, true);
}

#[test]
fn per_core_serves_a_dual_stack_tap_over_ipv4_and_ipv6() {
    serve_on(Kind::Tap, Families::Both, true);
}

#[test]
fn the_kernels_curl_reaches_connkit_http_on_a_tun_over_ipv4_and_ipv6() {
    serve_on(Kind::Tun, Families::Both, false);
}

#[test]
fn per_core_serves_one_stack_per_queue_on_a_tun_over_ipv4_and_ipv6() {
    serve_on(Kind::Tun, Families::Both, true);
}

#[test]
fn connkit_http_on_a_tun_serves_ipv6_alone() {
    serve_on(Kind::Tun, Families::V6, false);
}

/// `connkit http` on a TAP or TUN device of its own with an address of
/// each of `families` (`--listen` and `--tap-host`/`--tun-host`, repeated
/// for both), on one thread or on two (`--per-core 2`: two queues, a
/// stack and a runtime each), reached by the namespace's curl over every
/// family it serves, then drained by SIGTERM.
/// Starts `cmd` (`connkit http ...` in a namespace) and reads its output
/// up to the line that says it listens: the server, the rest of its
/// output, and what it said so far.
fn start(mut cmd: Command) -> (Server, BufReader<std::process::ChildStdout>, String) {
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
    (server, out, lines)
}

fn serve_on(kind: Kind, families: Families, per_core: bool) {
    let (flag, what) = match kind {
        Kind::Tap => ("tap", "TAP"),
        Kind::Tun => ("tun", "TUN"),
    };
    if !rustix::process::geteuid().is_root() {
        conn_test_support::skip(
            &format!("connkit http on a {what} device (per_core: {per_core})"),
            format!("it needs root (creates a {what} device)"),
        );
        return;
    }
    let pid = std::process::id();
    // Unique per test of this process: kind, families and per_core (two
    // tests sharing a namespace name would delete each other's).
    let family = match families {
        Families::V4 => "4",
        Families::V6 => "6",
        Families::Both => "d",
    };
    let tag = format!(
        "{}{family}{}",
        &flag[1..2],
        if per_core { "m" } else { "s" }
    );
    let dev = format!("ck{}{tag}", pid % 1_000_000);
    let variant = u32::from(per_core) + 2 * u32::from(kind == Kind::Tun);
    let net = format!("10.{}.{}", 100 + variant * 13 + pid % 13, (pid / 50) % 250);
    let net6 = format!("fd{:02x}:{:x}:{variant}", pid % 256, pid / 256 % 65536);
    let ns = Netns::new(format!("ckhttp{}{tag}", pid % 1_000_000));
    let (mut listens, mut hosts, mut urls) = (Vec::new(), Vec::new(), Vec::new());
    if families != Families::V6 {
        listens.push(format!("utcp://{net}.2:8080"));
        hosts.push(format!("{net}.1/24"));
        urls.push(format!("http://{net}.2:8080/"));
    }
    if families != Families::V4 {
        listens.push(format!("utcp://[{net6}::2]:8080"));
        hosts.push(format!("{net6}::1/64"));
        urls.push(format!("http://[{net6}::2]:8080/"));
    }
    // The last URL again, for /stats: on the connection curl has open.
    let stats = format!("{}stats", urls.last().unwrap());
    urls.push(stats);
    // `ip netns exec` execs the program itself: the child is connkit.
    let mut cmd = ns.command(env!("CARGO_BIN_EXE_connkit"));
    cmd.args(["http", &format!("--{flag}"), &dev]);
    for listen in &listens {
        cmd.args(["--listen", listen]);
    }
    for host in &hosts {
        cmd.args([&format!("--{flag}-host"), host]);
    }
    if per_core {
        cmd.args(["--per-core", "2"]);
    }
    let (mut server, mut out, lines) = start(cmd);
    let listening = format!("listening on {}", listens.join(" and "));
    assert!(lines.contains(&listening), "{lines}");
    assert!(ns.has_device(&dev), "the server made no device {dev}");

    // One curl, one connection: every URL but the last is the page; the
    // last, /stats, counts the requests that came before it.
    let curl = ns
        .command("curl")
        .args(["-sS", "-g", "--max-time", "10"])
        .args(&urls)
        .output()
        .unwrap();
    assert!(
        curl.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&curl.stderr)
    );
    let body = String::from_utf8(curl.stdout).unwrap();
    let pages = urls.len() - 1;
    assert!(
        body.starts_with(&"hello from connkit\n".repeat(pages)),
        "{body}"
    );
    assert!(
        body.contains(&format!("\"requests\":{}", urls.len())),
        "{body}"
    );

    let pid = rustix::process::Pid::from_raw(server.child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{rest}");
    // curl keeps one connection per host: one per family.
    let accepted = listens.len();
    assert!(
        rest.contains(&format!("shutdown report: accepted {accepted}, closed in order {accepted}, killed at the deadline 0, cut by the peer 0, errors 0")),
        "{rest}"
    );
    assert_eq!(rest.contains(" on 2 threads"), per_core, "{rest}");
    assert!(!ns.has_device(&dev), "the device {dev} outlived the server");
}

#[test]
fn a_tap_deleted_under_connkit_http_ends_it_with_its_report_and_the_error() {
    let test = "a_tap_deleted_under_connkit_http_ends_it_with_its_report_and_the_error";
    if !rustix::process::geteuid().is_root() {
        conn_test_support::skip(test, "it needs root (creates a TAP device)");
        return;
    }
    let pid = std::process::id();
    let dev = format!("ck{}g", pid % 1_000_000);
    let net = format!("10.{}.{}", 160 + pid % 13, (pid / 50) % 250);
    let ns = Netns::new(format!("ckhttp{}g", pid % 1_000_000));
    let mut cmd = ns.command(env!("CARGO_BIN_EXE_connkit"));
    cmd.args(["http", "--tap", &dev, "--listen"])
        .arg(format!("utcp://{net}.2:8080"))
        .arg("--tap-host")
        .arg(format!("{net}.1/24"));
    cmd.stderr(Stdio::piped()); // the error, read once it has exited
    let (mut server, mut out, _) = start(cmd);
    let curl = ns
        .command("curl")
        .args(["-sS", "--max-time", "10"])
        .arg(format!("http://{net}.2:8080/"))
        .output()
        .unwrap();
    assert!(
        curl.status.success(),
        "{}",
        String::from_utf8_lossy(&curl.stderr)
    );

    assert!(ip(&["-n", &ns.0, "link", "del", &dev]), "delete {dev}");
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let mut err = String::new();
    server
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = server.child.wait().unwrap();
    assert!(
        !status.success(),
        "a broken listener is no clean exit: {rest}"
    );
    // The report first, counting the connection served before; then why.
    assert!(rest.contains("shutdown report: accepted 1, "), "{rest}");
    assert!(
        rest.contains("serving ended because the listener failed") && rest.contains("went away"),
        "{rest}"
    );
    assert!(err.contains(&dev) && err.contains("went away"), "{err}");
}

#[test]
fn wrk_with_32_connections_each_request_on_a_new_one_sees_no_error_over_a_tap() {
    let test = "wrk_with_32_connections_each_request_on_a_new_one_sees_no_error_over_a_tap";
    if !rustix::process::geteuid().is_root() {
        conn_test_support::skip(test, "it needs root (creates a TAP device)");
        return;
    }
    let pid = std::process::id();
    let dev = format!("ck{}w", pid % 1_000_000);
    let net = format!("10.{}.{}", 173 + pid % 13, (pid / 50) % 250);
    let ns = Netns::new(format!("ckhttp{}w", pid % 1_000_000));
    let mut cmd = ns.command(env!("CARGO_BIN_EXE_connkit"));
    cmd.args(["http", "--tap", &dev, "--listen"])
        .arg(format!("utcp://{net}.2:8080"))
        .arg("--tap-host")
        .arg(format!("{net}.1/24"));
    let (server, mut out, _) = start(cmd);
    // Thousands of connections opened and closed at once, each a SYN the
    // listener's backlog must hold and a close that must be orderly: a
    // dropped SYN shows as a connect timeout, a reset as a read error.
    let mut wrk = ns.command("wrk");
    wrk.args(["--timeout", "5s"]);
    let run = common::wrk::result(common::wrk::start(wrk, &format!("http://{net}.2:8080/"), 2));
    common::wrk::assert_clean(&run);
    assert!(run.requests > 100, "{run:?}");

    let pid = rustix::process::Pid::from_raw(server.child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let report = rest
        .lines()
        .find_map(|l| l.split_once("shutdown report: ").map(|(_, r)| r))
        .unwrap_or_else(|| panic!("no report: {rest}"));
    let count = |what: &str| -> u64 {
        let at = report
            .find(what)
            .unwrap_or_else(|| panic!("no {what} in {report}"));
        let digits = report[at + what.len()..].trim_start();
        let end = digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(digits.len());
        digits[..end].parse().unwrap()
    };
    // Every request wrk counted was a connection the server closed in
    // order; wrk's end may cut a few more, nothing failed or was killed.
    assert!(
        count("closed in order") >= run.requests,
        "{report} vs {run:?}"
    );
    assert_eq!(
        (count("killed at the deadline"), count("errors")),
        (0, 0),
        "{report}"
    );
    drop(server);
}
