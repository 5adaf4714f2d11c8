//! Zero-downtime restart with the real `connkit` binary: `connkit http
//! --handover PATH` started twice, under continuous load (wrk over tcp with
//! a new connection per request, curl over ipc), loses no connection and no
//! request; a successor of another uid is refused; a successor killed
//! before it confirms leaves the running server serving.

mod common {
    pub mod wrk;
}

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// The environment variable `connkit http` reads to pause before it
/// confirms a handover (a test hook, src/cli/http.rs).
const PAUSE_BEFORE_CONFIRM: &str = "CONNKIT_HANDOVER_PAUSE_BEFORE_CONFIRM_MS";

/// How long any one expected line may take to appear.
const LINE_WITHIN: Duration = Duration::from_secs(20);

/// A `connkit http --handover` process, its stdout read line by line.
struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Server {
    fn command(listen: &str, handover: &Path) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_connkit"));
        cmd.args([
            "http",
            "--listen",
            listen,
            "--drain-ms",
            "5000",
            "--handover",
        ])
        .arg(handover)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        cmd
    }

    fn spawn(mut cmd: Command) -> Server {
        let mut child = cmd.spawn().expect("start connkit http");
        let (tx, lines) = mpsc::channel();
        let out = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in out.lines().map_while(|l| l.ok()) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Server {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    fn start(listen: &str, handover: &Path) -> Server {
        let mut server = Server::spawn(Server::command(listen, handover));
        server.wait_for("offering the listeners");
        server
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The tcp port it said it listens on (`listening on tcp://HOST:PORT`).
    fn port(&self) -> u16 {
        self.seen
            .iter()
            .find_map(|line| {
                let at = line.split("listening on tcp://").nth(1)?;
                let addr = at.split_whitespace().next()?;
                addr.rsplit_once(':')?.1.parse().ok()
            })
            .unwrap_or_else(|| {
                panic!(
                    "no `listening on tcp://` line in:\n{}",
                    self.seen.join("\n")
                )
            })
    }

    /// Waits for a line containing `text` and returns it.
    fn wait_for(&mut self, text: &str) -> String {
        let deadline = Instant::now() + LINE_WITHIN;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "pid {}: no line with {text:?} within {LINE_WITHIN:?}; so far:\n{}\n--- stderr\n{}",
                    self.pid(),
                    self.seen.join("\n"),
                    self.stderr()
                ),
            }
        }
    }

    fn stderr(&mut self) -> String {
        let _ = self.child.kill();
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        err
    }

    /// Waits for the process to exit on its own; its status and every line.
    fn exit(mut self) -> (bool, String) {
        let deadline = Instant::now() + LINE_WITHIN;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "pid {} did not exit; so far:\n{}",
                self.pid(),
                self.seen.join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(line);
        }
        let mut all = self.seen.join("\n");
        all.push_str("\n--- stderr\n");
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut all);
        }
        (status.success(), all)
    }

    fn terminate(self) -> (bool, String) {
        let pid = rustix::process::Pid::from_raw(self.pid() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        self.exit()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn temp(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("connkit-ho-{name}-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// Every test listens on a port the kernel picks: the successor, told the
/// same `tcp://127.0.0.1:0`, takes whatever port its predecessor has, and
/// no port is ever bound, released and bound again.
const ANY_PORT: &str = "tcp://127.0.0.1:0";

/// Asserts the report of a server that handed over: exit 0, every
/// connection closed in order, every request finished.
fn assert_drained_clean(ok: bool, out: &str) {
    assert!(ok, "the old server exits 0:\n{out}");
    assert!(out.contains("handed the listeners over to pid"), "{out}");
    assert!(
        out.contains("killed at the deadline 0, cut by the peer 0, errors 0"),
        "{out}"
    );
    assert!(
        out.contains("cut at the deadline 0, cut by the peer 0"),
        "{out}"
    );
}

/// One GET over a new TCP connection, `Connection: close`; true on a 200.
fn get_tcp(port: u16) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    if s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).is_ok() && answer.starts_with(b"HTTP/1.1 200")
}

/// Requests in a loop on their own thread until stopped: how many, how
/// many failed, and the longest gap between two completed ones.
struct Probe {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(u64, u64, Duration)>,
}

impl Probe {
    fn start(mut request: impl FnMut() -> bool + Send + 'static) -> Probe {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let (mut done, mut failed, mut gap) = (0, 0, Duration::ZERO);
                let mut last = Instant::now();
                // Bounded: the tests stop it within seconds; this is the guard.
                let until = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::SeqCst) && Instant::now() < until {
                    if request() {
                        done += 1;
                        gap = gap.max(last.elapsed());
                        last = Instant::now();
                    } else {
                        failed += 1;
                    }
                }
                (done, failed, gap)
            }
        });
        Probe { stop, thread }
    }

    fn stop(self) -> (u64, u64, Duration) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap()
    }
}

/// Starts wrk on the server at `port` of this namespace's loopback.
fn wrk(port: u16, seconds: u32) -> Child {
    common::wrk::start(
        Command::new("wrk"),
        &format!("http://127.0.0.1:{port}/"),
        seconds,
    )
}

#[test]
fn tcp_handover_twice_under_wrk_load_loses_no_connection_and_no_request() {
    let handover = temp("tcp");
    let listen = ANY_PORT;

    // The same load with no handover, for the figures: on a server of its
    // own, so that wrk's end (which cuts its open connections) is not in
    // the reports checked below.
    let alone = Server::start(ANY_PORT, &temp("tcp-alone"));
    let baseline = common::wrk::result(wrk(alone.port(), 3));
    common::wrk::assert_clean(&baseline);
    assert!(alone.terminate().0);

    let mut first = Server::start(listen, &handover);
    let port = first.port();
    // Now the load again, with two handovers in a row inside it.
    let load = wrk(port, 6);
    let probe = Probe::start(move || get_tcp(port));
    std::thread::sleep(Duration::from_millis(1500));
    let mut second = Server::spawn(Server::command(listen, &handover));
    second.wait_for(&format!("taken over from pid {}", first.pid()));
    second.wait_for("offering the listeners");
    first.wait_for("handed the listeners over");
    std::thread::sleep(Duration::from_millis(1500));
    let mut third = Server::spawn(Server::command(listen, &handover));
    third.wait_for(&format!("taken over from pid {}", second.pid()));
    third.wait_for("offering the listeners");
    let during = common::wrk::result(load);
    let (probed, probe_failed, gap) = probe.stop();

    common::wrk::assert_clean(&during);
    assert_eq!(probe_failed, 0, "the probe's requests all succeed");
    let (ok, out) = first.exit();
    assert_drained_clean(ok, &out);
    let (ok, out) = second.exit();
    assert_drained_clean(ok, &out);

    // The third serves everything after.
    assert!(get_tcp(port));
    let (ok, out) = third.terminate();
    assert!(ok, "{out}");
    assert!(out.contains("killed at the deadline 0"), "{out}");
    assert!(!handover.exists(), "the last offer removed its socket file");

    println!(
        "handover figures (debug build, wrk -c32 Connection: close): no handover {:.0} req/s; \
         two handovers in 6 s {:.0} req/s; longest gap between two completed probe requests {:?} \
         ({probed} probe requests)",
        baseline.per_second, during.per_second, gap
    );
}

#[test]
fn ipc_handover_under_a_curl_loop_keeps_the_socket_file_and_loses_nothing() {
    let handover = temp("ipc-offer");
    let socket = temp("ipc");
    let listen = format!("ipc://{}", socket.display());
    let first = Server::start(&listen, &handover);
    let curl_socket = socket.clone();
    let probe = Probe::start(move || {
        Command::new("curl")
            .args(["-sS", "--fail", "-H", "Connection: close", "--unix-socket"])
            .arg(&curl_socket)
            .arg("http://connkit/")
            .output()
            .is_ok_and(|out| out.status.success())
    });
    std::thread::sleep(Duration::from_millis(500));
    let mut second = Server::spawn(Server::command(&listen, &handover));
    second.wait_for(&format!("taken over from pid {}", first.pid()));
    second.wait_for("offering the listeners");
    let (ok, out) = first.exit();
    assert_drained_clean(ok, &out);
    assert!(
        socket.exists(),
        "the old server left the socket file it handed over"
    );
    std::thread::sleep(Duration::from_millis(500));
    let (done, failed, gap) = probe.stop();
    assert_eq!(failed, 0, "every curl succeeded ({done} did)");
    assert!(done > 0);

    let (ok, out) = second.terminate();
    assert!(ok, "{out}");
    assert!(
        !socket.exists(),
        "the successor owned the path and removed it at its exit"
    );
    println!("ipc handover: {done} curl requests, none failed, longest gap {gap:?}");
}

#[test]
fn a_successor_of_another_uid_is_refused_and_the_server_serves_on() {
    if !rustix::process::geteuid().is_root() {
        conn_test_support::skip(
            "a_successor_of_another_uid_is_refused_and_the_server_serves_on",
            "it runs the successor as uid 65534, which needs root",
        );
        return;
    }
    let handover = temp("uid");
    let listen = ANY_PORT;
    let mut server = Server::start(listen, &handover);
    let port = server.port();
    let mut cmd = Server::command(listen, &handover);
    // SAFETY: runs in the forked child before exec; setgroups, setgid and
    // setuid are async-signal-safe and it allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setgroups(0, std::ptr::null()) < 0
                || libc::setgid(65534) < 0
                || libc::setuid(65534) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the other uid's successor fails");
    assert!(
        err.contains("refused by the running server")
            && err.contains("runs as uid 65534")
            && err.contains("only the same uid or root"),
        "its error says why: {err}"
    );
    let line = server.wait_for("refused a successor");
    assert!(line.contains("uid 65534"), "{line}");
    assert!(get_tcp(port), "the server serves on");
    let (ok, out) = server.terminate();
    assert!(ok, "{out}");
    assert!(!out.contains("handed the listeners over"), "{out}");
}

#[test]
fn a_successor_killed_before_it_confirms_leaves_the_server_serving() {
    let handover = temp("kill-offer");
    let socket = temp("kill");
    let listen = format!("ipc://{}", socket.display());
    let mut server = Server::start(&listen, &handover);
    let curl_socket = socket.clone();
    let probe = Probe::start(move || {
        Command::new("curl")
            .args(["-sS", "--fail", "--unix-socket"])
            .arg(&curl_socket)
            .arg("http://connkit/")
            .output()
            .is_ok_and(|out| out.status.success())
    });

    let mut cmd = Server::command(&listen, &handover);
    cmd.env(PAUSE_BEFORE_CONFIRM, "30000");
    let mut doomed = Server::spawn(cmd);
    doomed.wait_for("received 1 listener(s)");
    doomed.wait_for("pausing");
    let pid = rustix::process::Pid::from_raw(doomed.pid() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    let line = server.wait_for("went away before confirming");
    assert!(line.contains(&doomed.pid().to_string()), "{line}");
    drop(doomed);
    std::thread::sleep(Duration::from_millis(300));
    let (done, failed, _) = probe.stop();
    assert_eq!(failed, 0, "every request succeeded ({done} did)");
    assert!(socket.exists(), "nobody removed the socket file");

    // The offer still stands: a healthy successor takes over after all.
    let mut next = Server::spawn(Server::command(&listen, &handover));
    next.wait_for(&format!("taken over from pid {}", server.pid()));
    let (ok, out) = server.exit();
    assert_drained_clean(ok, &out);
    let (ok, out) = next.terminate();
    assert!(ok, "{out}");
}

#[test]
fn per_core_servers_hand_over_every_reuseport_socket_under_wrk_load() {
    let handover = temp("per-core");
    let listen = ANY_PORT;
    let per_core = |cmd: &mut Command| {
        cmd.args(["--per-core", "2"]);
    };
    let mut cmd = Server::command(listen, &handover);
    per_core(&mut cmd);
    let mut first = Server::spawn(cmd);
    first.wait_for("offering the listeners");
    let port = first.port();

    // One thread cannot serve two SO_REUSEPORT queues: it declines, and
    // says how to start it.
    let out = Server::command(listen, &handover).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("serve with --per-core 2"), "{err}");
    first.wait_for("declined the listeners");

    let load = wrk(port, 4);
    std::thread::sleep(Duration::from_millis(1500));
    let mut cmd = Server::command(listen, &handover);
    per_core(&mut cmd);
    let mut second = Server::spawn(cmd);
    let line = second.wait_for(&format!("taken over from pid {}", first.pid()));
    assert!(line.contains("2 threads"), "{line}");
    let during = common::wrk::result(load);
    common::wrk::assert_clean(&during);
    let (ok, out) = first.exit();
    assert_drained_clean(ok, &out);
    assert!(out.contains("on 2 threads"), "{out}");
    assert!(get_tcp(port));
    let (ok, out) = second.terminate();
    assert!(ok, "{out}");
}

#[test]
fn systemd_passed_listeners_are_served_by_name_and_their_socket_file_stays() {
    use std::os::fd::AsRawFd;
    let socket = temp("systemd");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let listen = format!("ipc://{}", socket.display());
    // systemd's protocol: LISTEN_PID is the service's own pid, so the shell
    // sets it to its pid and execs (keeping the pid and fd 3).
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "LISTEN_PID=$$ exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_connkit"))
        .args(["http", "--listen", &listen])
        .env("LISTEN_FDS", "1")
        .env("LISTEN_FDNAMES", "web")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    conn_test_support::pass_as_fd_3(&mut cmd, listener.as_raw_fd());
    let mut server = Server::spawn(cmd);
    let line = server.wait_for("listening on");
    assert!(
        line.ends_with(&format!("{listen} (from systemd: web)")),
        "{line}"
    );
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--unix-socket"])
        .arg(&socket)
        .arg("http://connkit/")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let (ok, out) = server.terminate();
    assert!(ok, "{out}");
    assert!(socket.exists(), "the socket file is systemd's, left alone");
    drop(listener);
    std::fs::remove_file(&socket).unwrap();
}
