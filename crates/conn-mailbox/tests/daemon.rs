//! The client against a real `mailboxd` process: total order, membership
//! causes, private groups, service flags, shutdown.

mod common;

use std::collections::HashMap;

use common::*;
use conn_mailbox::{Cause, Event, MailboxError, Outgoing, Service};
use futures::StreamExt;
use tower::ServiceExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_one_total_order() {
    let d = Daemon::start(&[]);
    const SENDERS: usize = 3;
    const EACH: usize = 1000;
    let mut receivers = Vec::new();
    for i in 0..3 {
        let mut r = connect(&d, &format!("r{i}"), false).await;
        r.join("order", soon()).await.unwrap();
        r.join("other", soon()).await.unwrap();
        receivers.push(r);
    }
    // Each sender on its own thread and runtime, released together.
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(SENDERS));
    let mut senders = Vec::new();
    for s in 0..SENDERS {
        let (socket, barrier) = (d.path().to_path_buf(), barrier.clone());
        senders.push(std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let (mut m, _) =
                    conn_mailbox::Mailbox::connect(&socket, &format!("s{s}"), 0, false, soon())
                        .await
                        .unwrap();
                barrier.wait();
                for i in 0..EACH {
                    // Alternate the groups: the order is one across groups.
                    let group = if i % 2 == 0 { "order" } else { "other" };
                    m.multicast(
                        Service::AGREED,
                        &[group],
                        s as i16,
                        format!("{s}:{i}").as_bytes(),
                    )
                    .await
                    .unwrap();
                    if i % 8 == 0 {
                        std::thread::yield_now();
                    }
                }
                m.disconnect(soon()).await.unwrap();
            })
        }));
    }
    let mut readers = Vec::new();
    for mut r in receivers {
        readers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while got.len() < SENDERS * EACH {
                let m = message(&mut r).await;
                got.push(String::from_utf8(m.data().to_vec()).unwrap());
            }
            got
        }));
    }
    for s in senders {
        tokio::task::spawn_blocking(move || s.join().unwrap())
            .await
            .unwrap();
    }
    let mut orders = Vec::new();
    for r in readers {
        orders.push(r.await.unwrap());
    }
    assert!(
        orders.iter().all(|o| *o == orders[0]),
        "receivers saw different orders"
    );
    // Each sender's messages in the order sent (FIFO within the total order).
    let mut last: HashMap<&str, i64> = HashMap::new();
    for m in &orders[0] {
        let (s, i) = m.split_once(':').unwrap();
        let i: i64 = i.parse().unwrap();
        let prev = last.insert(s, i).unwrap_or(-1);
        assert_eq!(i, prev + 1, "sender {s} out of order");
    }
    // The senders really interleaved (else the test shows nothing).
    let switches = orders[0]
        .windows(2)
        .filter(|w| w[0][..1] != w[1][..1])
        .count();
    println!("sender switches in the total order: {switches}");
    assert!(switches > 0, "the senders never interleaved");
}

#[tokio::test]
async fn membership_causes_join_leave_disconnect_network() {
    let d = Daemon::start(&[]);
    let mut a = connect(&d, "a", true).await;
    a.join("g", soon()).await.unwrap();
    let v1 = membership(&mut a).await;
    assert_eq!(
        (v1.cause, v1.changed.as_str(), strings(&v1.members)),
        (Cause::Join, "#a#local", vec!["#a#local".to_string()])
    );

    let mut b = connect(&d, "b", true).await;
    b.join("g", soon()).await.unwrap();
    let seen_by_a = membership(&mut a).await;
    let seen_by_b = membership(&mut b).await;
    assert_eq!(seen_by_a, seen_by_b);
    assert_eq!(seen_by_a.members, ["#a#local", "#b#local"]);
    assert!(seen_by_a.view > v1.view);

    let mut c = connect(&d, "c", true).await;
    c.join("g", soon()).await.unwrap();
    membership(&mut a).await;
    membership(&mut b).await;
    membership(&mut c).await;

    // Leave: the others see cause leave; the leaver gets its self-leave.
    b.leave("g", soon()).await.unwrap();
    let left = membership(&mut a).await;
    assert_eq!(
        (left.cause, left.changed.as_str()),
        (Cause::Leave, "#b#local")
    );
    assert_eq!(left.members, ["#a#local", "#c#local"]);
    let own = membership(&mut b).await;
    assert!(own.is_self_leave(), "{own:?}");
    membership(&mut c).await;

    // Disconnect: cause disconnect.
    c.disconnect(soon()).await.unwrap();
    let gone = membership(&mut a).await;
    assert_eq!(
        (gone.cause, gone.changed.as_str(), strings(&gone.members)),
        (Cause::Disconnect, "#c#local", vec!["#a#local".to_string()])
    );

    // Kill: no goodbye, so cause network once the daemon sees the closed socket.
    let mut k = connect(&d, "k", false).await;
    k.join("g", soon()).await.unwrap();
    membership(&mut a).await;
    k.kill();
    let lost = membership(&mut a).await;
    assert_eq!(
        (lost.cause, lost.changed.as_str()),
        (Cause::Network, "#k#local")
    );
    assert!(lost.view > gone.view);

    // The names of the gone are free again.
    let c2 = connect(&d, "c", false).await;
    c2.kill();
    a.disconnect(soon()).await.unwrap();
    b.disconnect(soon()).await.unwrap();
}

#[tokio::test]
async fn private_groups_self_discard_and_many_groups() {
    let d = Daemon::start(&[]);
    let mut a = connect(&d, "pa", false).await;
    let mut b = connect(&d, "pb", false).await;
    a.join("x", soon()).await.unwrap();
    a.join("y", soon()).await.unwrap();
    b.join("x", soon()).await.unwrap();
    // To two groups a is in: a gets one copy, b (in x) one.
    b.multicast(Service::SAFE, &["x", "y"], -3, b"both")
        .await
        .unwrap();
    let m = message(&mut a).await;
    assert_eq!(
        (strings(m.groups()), m.msg_type(), m.service(), m.data()),
        (
            vec!["x".to_string(), "y".to_string()],
            -3,
            Service::SAFE,
            &b"both"[..]
        )
    );
    let own = message(&mut b).await;
    assert_eq!(own.sender(), "#pb#local");
    // SELF_DISCARD: only a gets it; then unicast to b's private group.
    b.multicast(Service::FIFO | Service::SELF_DISCARD, &["x"], 0, b"not me")
        .await
        .unwrap();
    b.multicast(Service::RELIABLE, &["#pb#local"], 0, b"me")
        .await
        .unwrap();
    assert_eq!(message(&mut a).await.data(), b"not me");
    assert_eq!(message(&mut b).await.data(), b"me");
    a.kill();
    b.kill();
}

#[tokio::test]
async fn tower_sender_and_stream() {
    let d = Daemon::start(&[]);
    let mut rx = connect(&d, "rx", false).await;
    rx.join("t", soon()).await.unwrap();
    let tx = connect(&d, "tx", false).await;
    for i in 0..5u8 {
        let sent = tx
            .sender()
            .oneshot(Outgoing {
                service: Service::CAUSAL,
                groups: vec!["t".into()],
                msg_type: i as i16,
                data: vec![i; 3].into(),
            })
            .await
            .unwrap();
        assert_eq!(sent, 3);
    }
    let got: Vec<i16> = (&mut rx)
        .take(5)
        .map(|e| match e.unwrap() {
            Event::Message(m) => m.msg_type(),
            other => panic!("{other:?}"),
        })
        .collect()
        .await;
    assert_eq!(got, [0, 1, 2, 3, 4]);
    tx.disconnect(soon()).await.unwrap();
    rx.kill();
}

#[tokio::test]
async fn sigterm_tells_members_with_cause_disconnect() {
    let mut d = Daemon::start(&[]);
    let mut a = connect(&d, "ta", true).await;
    a.join("g", soon()).await.unwrap();
    membership(&mut a).await;
    d.sigterm();
    let last = membership(&mut a).await;
    assert_eq!(
        (last.group.as_str(), last.cause, last.members.len()),
        ("g", Cause::Disconnect, 0)
    );
    // Then the session ends; every call says so.
    let end = a.receive(soon()).await.unwrap_err();
    assert!(matches!(end, MailboxError::ConnectionClosed), "{end}");
    assert!(matches!(
        a.join("g", soon()).await.unwrap_err(),
        MailboxError::ConnectionClosed
    ));
    assert!(
        d.wait(),
        "mailboxd exits 0 after SIGTERM:\n{}",
        d.log_text()
    );
    assert!(d.log_text().contains("mailboxd shutting down"));
}
