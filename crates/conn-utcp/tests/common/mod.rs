//! A network namespace with the kernel side of a TAP device in it, made by
//! the test itself (unique names from pid + counter) and torn down by a
//! Drop guard even when the test fails; and a way to run kernel sockets
//! inside that namespace.

#![allow(dead_code)]

use std::future::Future;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use conn_utcp::{Stack, Tap};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The kernel's address in the namespace, and the stack's.
pub const KERNEL: &str = "10.77.0.1";
pub const STACK: &str = "10.77.0.2";
/// The same two over IPv6.
pub const KERNEL6: &str = "fd77::1";
pub const STACK6: &str = "fd77::2";

/// True when the test may create namespaces and TAP devices; prints why
/// it skips otherwise.
pub fn root_or_skip(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    conn_test_support::skip(test, "it needs root (network namespaces, TAP devices)");
    false
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("run ip");
    assert!(status.success(), "ip {}", args.join(" "));
}

/// A namespace named after this process and a counter, with a TAP
/// device's kernel side moved into it and configured as 10.77.0.1/24.
pub struct Net {
    pub ns: String,
    pub tap: String,
}

impl Net {
    /// Creates the namespace and opens `queues` queues of a fresh TAP
    /// device (this process keeps the queues; the kernel side moves).
    pub fn new(queues: usize) -> (Net, Vec<Tap>) {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let net = Net {
            ns: format!("utcp-{pid}-{n}"),
            tap: format!("ut{}x{n}", pid % 100_000),
        };
        ip(&["netns", "add", &net.ns]);
        let taps = Tap::open_queues(&net.tap, queues).expect("open the TAP device");
        ip(&["link", "set", &net.tap, "netns", &net.ns]);
        ip(&[
            "-n",
            &net.ns,
            "addr",
            "add",
            &format!("{KERNEL}/24"),
            "dev",
            &net.tap,
        ]);
        ip(&["-n", &net.ns, "link", "set", &net.tap, "up"]);
        ip(&["-n", &net.ns, "link", "set", "lo", "up"]);
        (net, taps)
    }

    /// The namespace with a stack on a single-queue TAP at 10.77.0.2/24.
    pub fn with_stack() -> (Net, Stack) {
        let (net, mut taps) = Net::new(1);
        let stack = Stack::builder(taps.pop().unwrap())
            .address(format!("{STACK}/24").parse().unwrap())
            .build()
            .unwrap();
        (net, stack)
    }

    /// The namespace with a dual-stack stack on a single-queue TAP: IPv4
    /// as [`Net::with_stack`], and [`STACK6`] (the kernel side [`KERNEL6`]);
    /// and whether the kernel took the TAP offloads.
    pub fn with_dual_stack() -> (Net, Stack, bool) {
        let (net, mut taps) = Net::new(1);
        ip(&[
            "-n",
            &net.ns,
            "addr",
            "add",
            &format!("{KERNEL6}/64"),
            "dev",
            &net.tap,
            "nodad",
        ]);
        let tap = taps.pop().unwrap();
        let offloads = tap.offloads();
        let stack = Stack::builder(tap)
            .address(format!("{STACK}/24").parse().unwrap())
            .address_v6(format!("{STACK6}/64").parse().unwrap())
            .build()
            .unwrap();
        (net, stack, offloads)
    }

    /// Runs `f` on a thread inside the namespace with its own
    /// current-thread runtime: the kernel sockets it makes live there.
    pub fn kernel<F, Fut, T>(&self, f: F) -> tokio::sync::oneshot::Receiver<T>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
        T: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let path = format!("/var/run/netns/{}", self.ns);
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).expect("open the namespace");
            // SAFETY: `ns` is an open namespace file; setns moves only this thread.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let _ = tx.send(rt.block_on(f()));
        });
        rx
    }

    /// `ip netns exec NS <cmd...>`.
    pub fn exec(&self, cmd: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new("ip");
        c.args(["netns", "exec", &self.ns]).args(cmd);
        c
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

/// FNV-1a, to compare what was sent with what arrived.
pub fn checksum(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// `len` bytes of a pattern seeded by `seed`.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .rotate_left(seed as u32 % 32) as u8
                ^ seed
        })
        .collect()
}
