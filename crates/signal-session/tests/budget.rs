//! No client can exhaust sessiond: clients holding partial maximum-size
//! frames, silent clients and stalled frames against the real daemon, its
//! memory and descriptors measured before, during and after, a
//! well-behaved client served throughout.

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::sessiond::{Sessiond, unique};
use conn_core::Deadline;
use conn_core::wire::Repr as _;
use conn_test_support::proc::wait_rss_at_most;
use conn_test_support::{fd_count, rss_kib};
use signal_session::client::Client;
use signal_session::wire::{MAX_PAYLOAD, Message};

const MIB: u64 = 1024;

/// Polls until `ok` holds for the daemon's descriptor count (10 s at most).
fn wait_fds(pid: u32, what: &str, ok: impl Fn(usize) -> bool) -> usize {
    let start = Instant::now();
    loop {
        let n = fd_count(pid);
        if ok(n) {
            return n;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{n} descriptors: want {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The header of a maximum-size frame and `body` bytes of its payload;
/// false when the daemon dropped the client on the way.
fn partial_max_frame(socket: &Path, body: &[u8]) -> (UnixStream, bool) {
    let mut s = UnixStream::connect(socket).expect("connect");
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let list = Message::List.to_vec().unwrap();
    let mut head = list[..4].to_vec();
    head.extend_from_slice(&(MAX_PAYLOAD as u32).to_be_bytes());
    let sent = s.write_all(&head).is_ok() && s.write_all(body).is_ok();
    (s, sent)
}

async fn served(client: &mut Client) {
    client
        .list()
        .await
        .expect("a well-behaved client is served");
}

/// A sessiond with default settings, its pid, and a client just served.
async fn started() -> (Sessiond, u32, Client) {
    let d = Sessiond::start(&[]);
    let pid = pid(&d);
    let mut client = Client::connect(&d.socket, Deadline::after(Duration::from_secs(10)))
        .await
        .unwrap();
    served(&mut client).await;
    (d, pid, client)
}

fn pid(d: &Sessiond) -> u32 {
    d.child.as_ref().unwrap().id()
}

#[tokio::test]
async fn partial_max_frames_stay_within_the_budget_and_memory_returns() {
    let (d, pid, mut client) = started().await;
    let (rss0, fds0) = (rss_kib(pid), fd_count(pid));

    let socket = d.socket.clone();
    let flood = tokio::task::spawn_blocking(move || {
        let body = vec![0x5a; MAX_PAYLOAD - 4096];
        let mut held = Vec::new();
        let mut dropped = 0;
        for _ in 0..300 {
            let (s, sent) = partial_max_frame(&socket, &body);
            dropped += usize::from(!sent);
            held.push(s);
        }
        (held, dropped)
    });
    let (held, dropped) = flood.await.unwrap();
    served(&mut client).await;
    let rss1 = rss_kib(pid);
    let fds1 = fd_count(pid);
    println!(
        "sessiond RSS before {rss0} KiB, during {rss1} KiB; fds {fds0} -> {fds1}; \
         {dropped} of 300 cut off while sending"
    );
    // Told why, then closed (the daemon drains what they still send).
    let log = d.log();
    let refused = log.matches("over memory budget").count();
    println!("{refused} of 300 refused over the budget");
    assert!(refused > 200, "only {refused} refused:\n{log}");
    assert!(
        rss1 < rss0 + 64 * MIB,
        "300 partial frames took sessiond from {rss0} to {rss1} KiB"
    );

    drop(held);
    wait_fds(pid, "back to the start", |n| n <= fds0);
    served(&mut client).await;
    let rss2 = rss_kib(pid);
    println!("sessiond RSS after the clients left: {rss2} KiB");
    assert!(
        rss2 < rss0 + 8 * MIB,
        "memory not returned: {rss0} KiB before, {rss1} during, {rss2} after"
    );
}

#[tokio::test]
async fn silent_clients_and_stalled_frames_are_dropped_idle_clients_are_not() {
    let config = unique("budget.toml");
    std::fs::write(
        &config,
        "hello_timeout_ms = 3000\nstall_timeout_ms = 3000\n",
    )
    .unwrap();
    let d = Sessiond::start(&["--config", config.to_str().unwrap()]);
    let pid = pid(&d);
    // A client between requests, idle past both timeouts.
    let mut idle = Client::connect(&d.socket, Deadline::after(Duration::from_secs(10)))
        .await
        .unwrap();
    served(&mut idle).await;
    let (rss0, fds0) = (rss_kib(pid), fd_count(pid));

    let silent: Vec<UnixStream> = (0..300)
        .map(|_| UnixStream::connect(&d.socket).expect("connect"))
        .collect();
    let body = vec![0x33; 100 * 1024];
    let stalled: Vec<UnixStream> = (0..30)
        .map(|_| {
            let (s, sent) = partial_max_frame(&d.socket, &body);
            assert!(sent);
            s
        })
        .collect();
    // All of them accepted (the backlog drains in a moment), none dropped yet.
    let fds1 = wait_fds(pid, "all 330 accepted", |n| n >= fds0 + 330);
    let rss1 = rss_kib(pid);

    // Both kinds go while the sockets stay open on this side.
    wait_fds(pid, "back to the start", |n| n <= fds0);
    let log = d.log();
    assert!(log.contains("silent for"), "{log}");
    assert!(log.contains("stalled"), "{log}");
    let rss2 = rss_kib(pid);
    println!("sessiond RSS before {rss0} KiB, during {rss1}, after {rss2}; fds {fds0} -> {fds1}");
    assert!(rss1 < rss0 + 64 * MIB, "{rss0} -> {rss1} KiB");
    assert!(rss2 < rss0 + 8 * MIB, "{rss0} -> {rss2} KiB");

    // The idle client was between frames: still connected, still served.
    served(&mut idle).await;
    drop((silent, stalled));
    let _ = std::fs::remove_file(config);
}

#[tokio::test]
async fn the_memory_of_a_flood_of_connections_goes_back_once_they_have_gone() {
    let (d, pid, mut client) = started().await;
    let (rss0, fds0) = (rss_kib(pid), fd_count(pid));

    // 300 connections, each held until all are accepted, then all closed:
    // no frame, no large buffer, only what 300 clients cost while open.
    let flood: Vec<UnixStream> = (0..300)
        .map(|_| UnixStream::connect(&d.socket).expect("connect"))
        .collect();
    wait_fds(pid, "all 300 accepted", |n| n >= fds0 + 300);
    let rss1 = rss_kib(pid);
    drop(flood);
    wait_fds(pid, "back to the start", |n| n <= fds0);
    served(&mut client).await;
    // Given back within a few seconds (glibc keeps small frees otherwise).
    let rss2 = wait_rss_at_most(pid, rss0 + MIB, Duration::from_secs(5));
    println!("sessiond RSS before {rss0} KiB, with 300 connections {rss1}, after {rss2}");
    assert!(
        rss2 <= rss0 + MIB,
        "the flood's memory stayed: {rss0} KiB before, {rss1} during, {rss2} after"
    );
}
