//! A network namespace with the kernel side of a TAP or TUN device in it,
//! made by the test itself (unique names from pid + counter) and torn down
//! by a Drop guard even when the test fails; a way to run kernel sockets
//! inside that namespace; and the exchanges with the kernel that the TAP
//! tests (`interop.rs`) and the TUN tests (`tun.rs`) both run.

#![allow(dead_code)]

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use conn_core::{Connection, Deadline};
use conn_utcp::{Device, Ipv4Cidr, Stack, StackGroup, Tap, Tun, UtcpListener, UtcpStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The kernel's address in the namespace, and the stack's.
pub const KERNEL: &str = "10.77.0.1";
pub const STACK: &str = "10.77.0.2";
/// The same two over IPv6.
pub const KERNEL6: &str = "fd77::1";
pub const STACK6: &str = "fd77::2";

/// True when the test may create namespaces and TAP or TUN devices;
/// prints (and records) why it skips otherwise.
pub fn root_or_skip(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    conn_test_support::skip(
        test,
        "it needs root (network namespaces, TAP and TUN devices)",
    );
    false
}

pub fn soon() -> Deadline {
    Deadline::after(Duration::from_secs(10))
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("run ip");
    assert!(status.success(), "ip {}", args.join(" "));
}

/// A namespace named after this process and a counter, with a TAP or TUN
/// device's kernel side moved into it and configured as 10.77.0.1/24.
pub struct Net {
    pub ns: String,
    /// The device's name.
    pub dev: String,
}

impl Net {
    /// Creates the namespace and opens `queues` queues of a fresh TAP
    /// device (this process keeps the queues; the kernel side moves).
    pub fn new(queues: usize) -> (Net, Vec<Tap>) {
        Net::open("x", |name| Tap::open_queues(name, queues))
    }

    /// As [`Net::new`], with a TUN device.
    pub fn new_tun(queues: usize) -> (Net, Vec<Tun>) {
        Net::open("t", |name| Tun::open_queues(name, queues))
    }

    fn open<D>(kind: &str, open: impl FnOnce(&str) -> conn_core::Result<Vec<D>>) -> (Net, Vec<D>) {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let net = Net {
            ns: format!("utcp-{pid}-{n}"),
            dev: format!("ut{}{kind}{n}", pid % 100_000),
        };
        ip(&["netns", "add", &net.ns]);
        let queues = open(&net.dev).expect("open the device");
        ip(&["link", "set", &net.dev, "netns", &net.ns]);
        ip(&[
            "-n",
            &net.ns,
            "addr",
            "add",
            &format!("{KERNEL}/24"),
            "dev",
            &net.dev,
        ]);
        ip(&["-n", &net.ns, "link", "set", &net.dev, "up"]);
        ip(&["-n", &net.ns, "link", "set", "lo", "up"]);
        (net, queues)
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
        let tap = taps.pop().unwrap();
        let offloads = tap.offloads();
        net.dual_stack(tap, offloads)
    }

    /// As [`Net::with_dual_stack`], on a single-queue TUN device.
    pub fn with_dual_stack_tun() -> (Net, Stack, bool) {
        let (net, mut tuns) = Net::new_tun(1);
        let tun = tuns.pop().unwrap();
        let offloads = tun.offloads();
        net.dual_stack(tun, offloads)
    }

    fn dual_stack(self, device: impl Into<Device>, offloads: bool) -> (Net, Stack, bool) {
        self.add_kernel_v6();
        let stack = Stack::builder(device)
            .address(format!("{STACK}/24").parse().unwrap())
            .address_v6(format!("{STACK6}/64").parse().unwrap())
            .build()
            .unwrap();
        (self, stack, offloads)
    }

    /// Gives the kernel side [`KERNEL6`] too (without DAD, usable at once).
    pub fn add_kernel_v6(&self) {
        ip(&[
            "-n",
            &self.ns,
            "addr",
            "add",
            &format!("{KERNEL6}/64"),
            "dev",
            &self.dev,
            "nodad",
        ]);
    }

    /// Dual-stack stacks, one on each of `queues` (a group's: their own
    /// ephemeral ports, a TAP's sharing ARP and NDP), at [`STACK`] and
    /// [`STACK6`]; gives the kernel side [`KERNEL6`] too.
    pub fn dual_stack_group<D: Into<Device>>(&self, queues: Vec<D>) -> Vec<Stack> {
        self.add_kernel_v6();
        StackGroup::builders(queues, format!("{STACK}/24").parse::<Ipv4Cidr>().unwrap())
            .into_iter()
            .map(|b| {
                b.address_v6(format!("{STACK6}/64").parse().unwrap())
                    .build()
                    .unwrap()
            })
            .collect()
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

/// A counter of the namespace the calling thread is in, from
/// `/proc/thread-self/net/{file}`: for each group, a line of names and
/// then a line of values.
fn counter(file: &str, group: &str, name: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/thread-self/net/{file}"))
        .unwrap_or_else(|e| panic!("read /proc/thread-self/net/{file}: {e}"));
    let mut lines = text.lines().filter(|l| l.starts_with(group));
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        if let Some(i) = names.split_whitespace().position(|n| n == name) {
            return values
                .split_whitespace()
                .nth(i)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{group} {name} has no value in {file}"));
        }
    }
    panic!("{file} has no {group} {name}");
}

/// The kernel's count of SYNs it sent again, in the calling thread's
/// namespace. (Only SYNs: a data segment retransmitted because a loaded
/// test machine starved the stack's thread past the 200 ms RTO says
/// nothing about the backlog.)
pub fn syn_retransmits() -> u64 {
    counter("netstat", "TcpExt:", "TCPSynRetrans")
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

/// The namespace's curl fetches `http://HOST:8080/` (`host` an address,
/// an IPv6 one in brackets) from a one-page server on `stack`; returns
/// the request it sent and the peer address the server saw.
pub async fn curl_gets_a_page(net: &Net, stack: &Stack, host: &str) -> (String, SocketAddr) {
    let mut listener = UtcpListener::bind(stack, 8080, 4).unwrap();
    let server = tokio::spawn(async move {
        let mut s = listener.accept(soon()).await.unwrap();
        let peer = s.peer_addr();
        let mut request = Vec::new();
        let mut buf = [0; 1024];
        while !request.ends_with(b"\r\n\r\n") {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "the request ended early");
            request.extend_from_slice(&buf[..n]);
        }
        s.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello utcp\n",
        )
        .await
        .unwrap();
        s.close(soon()).await.unwrap();
        (String::from_utf8(request).unwrap(), peer)
    });
    let out = net
        .exec(&[
            "curl",
            "-sS",
            "-g",
            "--max-time",
            "10",
            &format!("http://{host}:8080/page"),
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"hello utcp\n");
    let (request, peer) = server.await.unwrap();
    assert!(request.starts_with("GET /page HTTP/1.1\r\n"), "{request}");
    (request, peer)
}

/// `len` bytes each way between `stack` and a kernel listener at
/// `kernel`:`port`: the stack connects and sends to EOF, then the kernel
/// sends its own; both arrive whole, their checksums as sent.
pub async fn bytes_each_way_arrive_intact(
    net: &Net,
    stack: &Stack,
    kernel: IpAddr,
    port: u16,
    len: usize,
) {
    let (bound, is_bound) = tokio::sync::oneshot::channel();
    let listen_on = SocketAddr::new(kernel, port);
    let peer = net.kernel(move || async move {
        let listener = tokio::net::TcpListener::bind(listen_on).await?;
        bound.send(()).unwrap();
        let (mut s, _) = listener.accept().await?;
        let mut got = Vec::with_capacity(len);
        s.read_to_end(&mut got).await?;
        s.write_all(&pattern(len, 2)).await?;
        s.shutdown().await?;
        std::io::Result::Ok((got.len(), checksum(&got)))
    });
    is_bound.await.unwrap();
    let c = UtcpStream::connect(stack, listen_on, soon()).await.unwrap();
    assert_eq!(c.local_addr().is_ipv6(), kernel.is_ipv6());
    let (mut rd, mut wr) = tokio::io::split(c);
    let out = pattern(len, 1);
    let sent = checksum(&out);
    let writer = tokio::spawn(async move {
        wr.write_all(&out).await.unwrap();
        wr.shutdown().await.unwrap();
        wr
    });
    let mut back = Vec::with_capacity(len);
    rd.read_to_end(&mut back).await.unwrap();
    let wr = writer.await.unwrap();
    let (got, sum) = peer.await.unwrap().unwrap();
    assert_eq!((got, sum), (len, sent), "utcp -> kernel");
    assert_eq!(
        (back.len(), checksum(&back)),
        (len, checksum(&pattern(len, 2))),
        "kernel -> utcp"
    );
    rd.unsplit(wr).close(soon()).await.unwrap();
}

/// Deletes the namespace's device under `stack`, which serves one
/// connection from the kernel: accept then fails naming the device,
/// the connection's read ends at once with a reset, and connect fails
/// too.
pub async fn a_deleted_device_fails_accept_and_connect_and_resets(net: &Net, stack: &Stack) {
    let mut listener = UtcpListener::bind(stack, 8000, 4).unwrap();
    let client = net.kernel(|| async {
        let c = tokio::net::TcpStream::connect(format!("{STACK}:8000")).await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        std::io::Result::Ok(c)
    });
    let mut s = listener.accept(soon()).await.unwrap();
    let status = net
        .exec(&["ip", "link", "del", &net.dev])
        .status()
        .await
        .unwrap();
    assert!(status.success(), "delete the device");
    let err = listener.accept(soon()).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&net.dev) && text.contains("went away"),
        "accept says which device went away: {text}"
    );
    assert_ne!(err.kind(), conn_core::ErrorKind::TimedOut, "{text}");
    let read = tokio::time::timeout(Duration::from_secs(5), s.read(&mut [0; 8]))
        .await
        .expect("a read on a stack without its device ends at once");
    assert_eq!(
        read.unwrap_err().kind(),
        std::io::ErrorKind::ConnectionReset
    );
    let to = SocketAddr::new(KERNEL.parse().unwrap(), 8001);
    let err = UtcpStream::connect(stack, to, soon()).await.unwrap_err();
    assert!(err.to_string().contains("went away"), "{err}");
    drop(client);
}

/// Every one of `stacks` (a group's) listens on `addr`'s port and echoes,
/// tagging the answer with its number; sixteen concurrent flows from the
/// kernel to `addr` must each be served whole by one stack (a
/// segment reaching another stack would break its exchange with a
/// reset), both stacks serve some, and the kernel sends no SYN twice: a
/// stack that never learnt its neighbour (the kernel's ARP reply or
/// neighbour advertisement reaches whichever queue its hash picks) answers
/// only the kernel's retry, a second or more later.
pub async fn every_flow_is_served_by_the_stack_that_owns_it(
    net: &Net,
    stacks: &[Stack],
    addr: SocketAddr,
) {
    // Every stack listens and echoes, tagging the answer with its number.
    for stack in stacks {
        let mut listener = UtcpListener::bind(stack, addr.port(), 16).unwrap();
        tokio::spawn(async move {
            loop {
                let Ok(mut s) = listener.accept(Deadline::NEVER).await else {
                    return;
                };
                let tag = s.stack().number();
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    s.read_to_end(&mut got).await.unwrap();
                    s.write_all(format!("{tag}:").as_bytes()).await.unwrap();
                    s.write_all(&got).await.unwrap();
                    s.close(soon()).await.unwrap();
                });
            }
        });
    }
    let numbers: Vec<u32> = stacks.iter().map(Stack::number).collect();
    // Sixteen concurrent flows: each one's segments must all reach the one
    // stack that owns its socket, or its exchange breaks with a reset.
    let (answers, syn_retransmits) = net
        .kernel(move || async move {
            let before = syn_retransmits();
            let mut tasks = Vec::new();
            for i in 0..16 {
                tasks.push(tokio::spawn(async move {
                    let mut c = tokio::net::TcpStream::connect(addr).await?;
                    c.write_all(format!("flow {i}").as_bytes()).await?;
                    c.shutdown().await?;
                    let mut answer = String::new();
                    c.read_to_string(&mut answer).await?;
                    std::io::Result::Ok(answer)
                }));
            }
            let mut answers = Vec::new();
            for t in tasks {
                answers.push(t.await.unwrap());
            }
            (answers, syn_retransmits() - before)
        })
        .await
        .unwrap();
    let mut served = std::collections::BTreeSet::new();
    for (i, answer) in answers.into_iter().enumerate() {
        let answer = answer.unwrap();
        let (tag, body) = answer.split_once(':').unwrap();
        let tag: u32 = tag.parse().unwrap();
        assert!(numbers.contains(&tag), "{answer}");
        assert_eq!(body, format!("flow {i}"));
        served.insert(tag);
    }
    // The kernel spread the sixteen flows over both queues (by flow hash;
    // all on one queue would happen once in 2^15 runs).
    assert_eq!(served.len(), 2, "served by {served:?} only");
    assert_eq!(
        syn_retransmits, 0,
        "SYNs sent again: a stack waited for a neighbour"
    );
}
