//! A real `mailboxd` process per test, on its own socket, killed on drop.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use conn_core::Deadline;
use conn_mailbox::{Cause, Event, Mailbox, Membership, Message};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A running daemon; its stderr goes to a log file tests can read.
pub struct Daemon {
    pub child: Child,
    pub socket: PathBuf,
    pub log: PathBuf,
    /// Where its stdout goes (the `--json` report).
    pub out: PathBuf,
}

pub fn unique(tag: &str) -> String {
    format!(
        "{tag}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

impl Daemon {
    /// Starts `mailboxd` with `args` on a fresh socket and waits for it.
    pub fn start(args: &[&str]) -> Daemon {
        let name = unique("mailboxd");
        let dir = std::env::temp_dir();
        let socket = dir.join(format!("{name}.sock"));
        let log = dir.join(format!("{name}.log"));
        let out = dir.join(format!("{name}.out"));
        let child = Command::new(env!("CARGO_BIN_EXE_mailboxd"))
            .arg("--socket")
            .arg(&socket)
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(std::fs::File::create(&out).expect("stdout file"))
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start mailboxd");
        let d = Daemon {
            child,
            socket,
            log,
            out,
        };
        // The socket file appears a moment before the daemon listens: wait
        // until a connection gets through.
        let start = Instant::now();
        while std::os::unix::net::UnixStream::connect(&d.socket).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "mailboxd did not come up: {}",
                d.log_text()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        d
    }

    /// What it printed on stdout so far.
    pub fn out_text(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle` (or fails after 10 s).
    pub fn wait_log(&self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let text = self.log_text();
            if text.contains(needle) {
                return text;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no {needle:?} in the daemon log:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The TCP address the daemon logged it listens on (a port 0
    /// resolved); fails after 10 s without one.
    pub fn tcp_addr(&self) -> String {
        let log = self.wait_log("listening on tcp ");
        log.lines()
            .find_map(|l| l.split("listening on tcp ").nth(1))
            .unwrap()
            .trim()
            .to_string()
    }

    pub fn sigterm(&self) {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "SIGTERM mailboxd");
    }

    /// Waits for the process to exit; true when it exited with success.
    pub fn wait(&mut self) -> bool {
        self.child.wait().expect("wait for mailboxd").success()
    }

    pub fn path(&self) -> &Path {
        &self.socket
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_file(&self.out);
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

pub fn soon() -> Deadline {
    Deadline::after(Duration::from_secs(10))
}

pub async fn connect(d: &Daemon, name: &str, membership: bool) -> Mailbox {
    Mailbox::connect(d.path(), name, 0, membership, soon())
        .await
        .unwrap_or_else(|e| panic!("connect {name}: {e}"))
        .0
}

pub async fn next(m: &mut Mailbox) -> Event {
    m.receive(soon())
        .await
        .unwrap_or_else(|e| panic!("receive on {}: {e}", m.private_group()))
}

pub async fn membership(m: &mut Mailbox) -> Membership {
    match next(m).await {
        Event::Membership(ms) => ms,
        other => panic!(
            "{}: expected a membership message, got {other:?}",
            m.private_group()
        ),
    }
}

pub async fn message(m: &mut Mailbox) -> Message {
    match next(m).await {
        Event::Message(msg) => msg,
        other => panic!("{}: expected a message, got {other:?}", m.private_group()),
    }
}

/// Reads membership messages of `group` until one with `cause` about `who`.
pub async fn wait_change(m: &mut Mailbox, group: &str, cause: Cause, who: &str) -> Membership {
    loop {
        let ms = membership(m).await;
        if ms.group == group && ms.cause == cause && ms.changed == who {
            return ms;
        }
    }
}

/// Names as owned strings, to compare inside tuples with string literals.
pub fn strings<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Vec<String> {
    names.into_iter().map(|n| n.as_ref().to_owned()).collect()
}

use conn_test_support::fd_count;

/// Waits until `pid` has at most `fds` descriptors open (or fails after 10 s).
pub fn wait_fds_at_most(pid: u32, fds: usize) {
    let start = Instant::now();
    while fd_count(pid) > fds {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "still {} descriptors open, want at most {fds}",
            fd_count(pid)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(feature = "corosync")]
pub mod cluster;
