//! No client can exhaust mailboxd: clients holding partial maximum-size
//! frames, silent clients and stalled frames against the real daemon, its
//! memory and descriptors measured before, during and after, a
//! well-behaved pair served throughout.

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use common::*;
use conn_core::wire::Repr as _;
use conn_mailbox::wire::{MAX_FRAME_BODY, Repr};
use conn_mailbox::{Cause, Mailbox, Service};
use conn_test_support::proc::wait_rss_at_most;
use conn_test_support::{fd_count, rss_kib};

const MIB: u64 = 1024;

/// A raw client that has said hello as `name` (its welcome left unread).
fn hello(socket: &Path, name: &str) -> UnixStream {
    let mut s = UnixStream::connect(socket).expect("connect");
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let connect = Repr::Connect {
        version: Repr::VERSION,
        priority: 0,
        membership: true,
        name,
    };
    s.write_all(&connect.to_vec().unwrap()).expect("hello");
    s
}

/// Sends the header of a maximum-size frame and `body` bytes of it; false
/// when the daemon dropped the client on the way.
fn partial_max_frame(s: &mut UnixStream, body: &[u8]) -> bool {
    let mut head = (MAX_FRAME_BODY as u32).to_be_bytes().to_vec();
    head.push(4); // a multicast frame, never finished
    s.write_all(&head).is_ok() && s.write_all(body).is_ok()
}

/// One message from `from` to `group` reaches `to` (after any sent before).
async fn served(from: &mut Mailbox, to: &mut Mailbox, group: &str, text: &[u8]) {
    from.multicast(Service::AGREED, &[group], 0, text)
        .await
        .unwrap();
    loop {
        match next(to).await {
            conn_mailbox::Event::Message(m) if m.data() == text => return,
            _ => {}
        }
    }
}

/// `watch`, a member of "g", and `talk`, who has just been served there.
async fn watched(d: &Daemon) -> (Mailbox, Mailbox) {
    let mut watch = connect(d, "watch", true).await;
    watch.join("g", soon()).await.unwrap();
    membership(&mut watch).await;
    let mut talk = connect(d, "talk", false).await;
    served(&mut talk, &mut watch, "g", b"before").await;
    (watch, talk)
}

#[tokio::test]
async fn partial_max_frames_stay_within_the_budget_and_memory_returns() {
    let d = Daemon::start(&[]);
    let pid = d.child.id();
    let (mut watch, mut talk) = watched(&d).await;
    let (rss0, fds0) = (rss_kib(pid), fd_count(pid));

    // 300 clients, each with all but 4 KiB of a maximum-size frame; the
    // last joins "g" first, so its drop shows in the membership.
    let socket = d.path().to_owned();
    let flood = tokio::task::spawn_blocking(move || {
        let body = vec![0x5a; MAX_FRAME_BODY - 4096];
        let mut held = Vec::new();
        let mut dropped = 0;
        for i in 0..300 {
            let mut s = hello(&socket, &format!("f{i}"));
            if i == 299 {
                let join = Repr::Join { req: 1, group: "g" };
                s.write_all(&join.to_vec().unwrap()).unwrap();
                std::thread::sleep(Duration::from_millis(100));
            }
            if !partial_max_frame(&mut s, &body) {
                dropped += 1;
            }
            held.push(s);
        }
        (held, dropped)
    });
    let (held, dropped) = flood.await.unwrap();
    let ms = wait_change(&mut watch, "g", Cause::Network, "#f299#local").await;
    assert_eq!(ms.members, ["#watch#local"]);
    served(&mut talk, &mut watch, "g", b"during").await;
    let (rss1, fds1) = (rss_kib(pid), fd_count(pid));
    let log = d.wait_log("over memory budget");
    println!(
        "mailboxd RSS before {rss0} KiB, during {rss1} KiB; fds {fds0} -> {fds1}; \
         {dropped} of 300 dropped while sending"
    );
    assert!(dropped > 200, "only {dropped} dropped:\n{log}");
    assert!(
        rss1 < rss0 + 64 * MIB,
        "300 partial frames took mailboxd from {rss0} to {rss1} KiB"
    );

    drop(held);
    wait_fds_at_most(pid, fds0);
    served(&mut talk, &mut watch, "g", b"after").await;
    let rss2 = rss_kib(pid);
    println!("mailboxd RSS after the clients left: {rss2} KiB");
    assert!(
        rss2 < rss0 + 8 * MIB,
        "memory not returned: {rss0} KiB before, {rss1} during, {rss2} after"
    );
}

#[tokio::test]
async fn silent_clients_and_stalled_frames_are_dropped_listeners_are_not() {
    let d = Daemon::start(&["--hello-timeout", "3", "--stall-timeout", "3"]);
    let pid = d.child.id();
    let mut watch = connect(&d, "watch", true).await;
    watch.join("g", soon()).await.unwrap();
    membership(&mut watch).await;
    let mut talk = connect(&d, "talk", false).await;
    // A member that only listens, past both timeouts.
    let mut listener = connect(&d, "listen", true).await;
    listener.join("g", soon()).await.unwrap();
    wait_change(&mut watch, "g", Cause::Join, "#listen#local").await;
    let (rss0, fds0) = (rss_kib(pid), fd_count(pid));

    // 300 clients that never say hello, 30 that stop inside a frame.
    let silent: Vec<UnixStream> = (0..300)
        .map(|_| UnixStream::connect(d.path()).expect("connect"))
        .collect();
    let body = vec![0x33; 100 * 1024];
    let mut stalled = Vec::new();
    for i in 0..30 {
        let mut s = hello(d.path(), &format!("s{i}"));
        assert!(partial_max_frame(&mut s, &body));
        stalled.push(s);
    }
    served(&mut talk, &mut watch, "g", b"during").await;
    // All of them accepted (the backlog drains in a moment), none dropped yet.
    let start = std::time::Instant::now();
    while fd_count(pid) < fds0 + 330 && start.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let (rss1, fds1) = (rss_kib(pid), fd_count(pid));
    assert!(
        fds1 >= fds0 + 330,
        "{fds0} -> {fds1} descriptors:\n{}",
        d.log_text()
    );

    // Both kinds go while the sockets stay open on this side.
    wait_fds_at_most(pid, fds0);
    let log = d.wait_log("no hello within");
    assert!(log.contains("stalled"), "{log}");
    let rss2 = rss_kib(pid);
    println!(
        "mailboxd RSS before {rss0} KiB, during {rss1}, after {rss2}; fds {fds0} -> {fds1} -> {}",
        fd_count(pid)
    );
    assert!(rss1 < rss0 + 64 * MIB, "{rss0} -> {rss1} KiB");
    assert!(rss2 < rss0 + 8 * MIB, "{rss0} -> {rss2} KiB");

    // The listener was idle between frames: still a member, still served.
    served(&mut talk, &mut listener, "g", b"still here").await;
    drop((silent, stalled));
}

#[tokio::test]
async fn a_flood_to_members_that_never_read_is_bounded_and_returned() {
    let d = Daemon::start(&["--queue-bytes", "4194304"]);
    let pid = d.child.id();
    let mut watch = connect(&d, "watch", true).await;
    watch.join("g", soon()).await.unwrap();
    membership(&mut watch).await;
    let mut talk = connect(&d, "talk", false).await;
    let rss0 = rss_kib(pid);

    // 16 members that never read, each flooded with its own distinct data
    // (messages to its private group) until it falls behind.
    let slow: Vec<UnixStream> = (0..16)
        .map(|i| hello(d.path(), &format!("slow{i}")))
        .collect();
    let mut body = vec![0u8; 64 * 1024];
    let mut peak = rss0;
    for round in 0..100u32 {
        for i in 0..16 {
            body[..8].copy_from_slice(&(u64::from(round) << 8 | i).to_be_bytes());
            let to = format!("#slow{i}#local");
            talk.multicast(Service::RELIABLE, &[to.as_str()], 0, &body)
                .await
                .unwrap();
        }
        if round % 10 == 0 {
            served(&mut talk, &mut watch, "g", &round.to_be_bytes()).await;
            peak = peak.max(rss_kib(pid));
        }
    }
    let log = d.wait_log("fell behind");
    assert_eq!(log.matches("fell behind").count(), 16, "{log}");
    served(&mut talk, &mut watch, "g", b"after").await;
    drop(slow);
    let rss2 = rss_kib(pid);
    println!("mailboxd RSS before {rss0} KiB, peak during {peak}, after {rss2}");
    // 16 queues of 4 MiB at most, and all of it back once they are dropped.
    assert!(
        peak < rss0 + 16 * 4 * MIB + 16 * MIB,
        "{rss0} -> {peak} KiB"
    );
    assert!(rss2 < rss0 + 8 * MIB, "{rss0} -> {peak} -> {rss2} KiB");
}

#[tokio::test]
async fn the_memory_of_a_flood_of_connections_goes_back_once_they_have_gone() {
    let d = Daemon::start(&[]);
    let pid = d.child.id();
    let (mut watch, mut talk) = watched(&d).await;
    let (rss0, fds0) = (rss_kib(pid), fd_count(pid));

    // 300 connections, each held until all are accepted, then all closed:
    // no frame, no large buffer, only what 300 clients cost while open.
    let flood: Vec<UnixStream> = (0..300)
        .map(|_| UnixStream::connect(d.path()).expect("connect"))
        .collect();
    let start = std::time::Instant::now();
    while fd_count(pid) < fds0 + 300 && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let rss1 = rss_kib(pid);
    drop(flood);
    wait_fds_at_most(pid, fds0);
    served(&mut talk, &mut watch, "g", b"after").await;
    // Given back within a few seconds (glibc keeps small frees otherwise).
    let rss2 = wait_rss_at_most(pid, rss0 + MIB, Duration::from_secs(5));
    println!("mailboxd RSS before {rss0} KiB, with 300 connections {rss1}, after {rss2}");
    assert!(
        rss2 <= rss0 + MIB,
        "the flood's memory stayed: {rss0} KiB before, {rss1} during, {rss2} after"
    );
}
