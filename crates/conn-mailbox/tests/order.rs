//! The hard case of one total order: receivers with different
//! subscriptions, and messages to several groups at once. Any two messages
//! that two receivers both get arrive in the same order at both.

mod common;

use std::collections::HashMap;

use common::*;
use conn_mailbox::Service;

/// Who joins what: every pair shares some groups and not others.
const SUBSCRIPTIONS: [&[&str]; 4] = [&["a"], &["a", "b"], &["b", "c"], &["a", "c"]];
/// The groups of a sender's messages, in turn: single groups and unions.
const DESTINATIONS: [&[&str]; 5] = [&["a"], &["b"], &["c"], &["a", "b"], &["b", "c"]];
const SENDERS: usize = 3;
const EACH: usize = 500;

fn reaches(destination: &[&str], subscription: &[&str]) -> bool {
    destination.iter().any(|g| subscription.contains(g))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_of_different_groups_see_their_common_messages_in_one_order() {
    let d = Daemon::start(&[]);
    let mut receivers = Vec::new();
    for (i, groups) in SUBSCRIPTIONS.iter().enumerate() {
        let mut r = connect(&d, &format!("r{i}"), false).await;
        for g in *groups {
            r.join(g, soon()).await.unwrap();
        }
        receivers.push(r);
    }
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
                    let to = DESTINATIONS[i % DESTINATIONS.len()];
                    m.multicast(Service::AGREED, to, 0, format!("{s}:{i}").as_bytes())
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
    for (r, groups) in receivers.into_iter().zip(SUBSCRIPTIONS) {
        // Exactly what this subscription is owed, each once.
        let owed = (0..EACH)
            .filter(|i| reaches(DESTINATIONS[i % DESTINATIONS.len()], groups))
            .count()
            * SENDERS;
        let mut r = r;
        readers.push(tokio::spawn(async move {
            let mut got = Vec::with_capacity(owed);
            while got.len() < owed {
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

    for (k, order) in orders.iter().enumerate() {
        // Each once, only what was owed, and FIFO per sender.
        let mut last: HashMap<&str, i64> = HashMap::new();
        for m in order {
            let (s, i) = m.split_once(':').unwrap();
            let i: i64 = i.parse().unwrap();
            assert!(
                reaches(
                    DESTINATIONS[i as usize % DESTINATIONS.len()],
                    SUBSCRIPTIONS[k]
                ),
                "r{k} got {m}, which was not for it"
            );
            let prev = last.insert(s, i).unwrap_or(-1);
            assert!(
                i > prev,
                "r{k}: sender {s} out of order or duplicated at {i}"
            );
        }
    }
    // Every pair: the messages both got, in the same relative order.
    let mut compared = 0;
    for a in 0..orders.len() {
        for b in a + 1..orders.len() {
            let in_b: std::collections::HashSet<&String> = orders[b].iter().collect();
            let in_a: std::collections::HashSet<&String> = orders[a].iter().collect();
            let common_a: Vec<&String> = orders[a].iter().filter(|m| in_b.contains(m)).collect();
            let common_b: Vec<&String> = orders[b].iter().filter(|m| in_a.contains(m)).collect();
            assert!(
                !common_a.is_empty(),
                "r{a} and r{b} share nothing: the test shows nothing"
            );
            assert_eq!(common_a, common_b, "r{a} and r{b} disagree on the order");
            compared += common_a.len();
        }
    }
    println!("messages compared across pairs of receivers: {compared}");
}
