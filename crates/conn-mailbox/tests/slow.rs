//! A member that never reads is dropped when its queue fills; its group sees
//! it leave with cause network, and the others never stall.

mod common;

use common::*;
use conn_mailbox::{Cause, Event, MailboxError, Service};

#[tokio::test]
async fn flooded_member_that_never_reads_is_dropped() {
    let d = Daemon::start(&["--queue-messages", "64", "--queue-bytes", "262144"]);
    let mut watch = connect(&d, "watch", true).await;
    watch.join("flood", soon()).await.unwrap();
    membership(&mut watch).await;
    let mut slow = connect(&d, "slow", true).await;
    slow.join("flood", soon()).await.unwrap();
    wait_change(&mut watch, "flood", Cause::Join, "#slow#local").await;
    let publisher = connect(&d, "pub", false).await;
    let mut publisher = publisher;

    let body = vec![0x5a; 4096];
    let mut sent = 0u64;
    let mut received = 0u64;
    let dropped = 'flood: loop {
        assert!(sent < 20_000, "the slow member was never dropped");
        // Bursts of 32, each read by the watcher before the next, so only
        // the member that never reads falls behind.
        for _ in 0..32 {
            publisher
                .multicast(
                    Service::RELIABLE | Service::SELF_DISCARD,
                    &["flood"],
                    0,
                    &body,
                )
                .await
                .unwrap();
            sent += 1;
        }
        while received < sent {
            match next(&mut watch).await {
                Event::Message(m) => {
                    assert_eq!(m.data().len(), body.len());
                    received += 1;
                }
                Event::Membership(ms)
                    if ms.cause == Cause::Network && ms.changed == "#slow#local" =>
                {
                    break 'flood ms;
                }
                Event::Membership(ms) => panic!("unexpected {ms:?}"),
            }
        }
    };
    assert_eq!(dropped.members, ["#watch#local"]);
    println!("dropped after {sent} messages");
    let log = d.wait_log("fell behind");
    assert!(log.contains("#slow#local"), "{log}");

    // The others go on.
    publisher
        .multicast(Service::RELIABLE, &["flood"], 9, b"after")
        .await
        .unwrap();
    loop {
        if let Event::Message(m) = next(&mut watch).await
            && m.msg_type() == 9
        {
            break;
        }
    }
    // The slow member finds its session ended once it reads what got through.
    let end = loop {
        match slow.receive(soon()).await {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert!(matches!(end, MailboxError::ConnectionClosed), "{end}");
    watch.disconnect(soon()).await.unwrap();
    publisher.disconnect(soon()).await.unwrap();
}

#[tokio::test]
async fn unreliable_messages_are_missed_not_fatal() {
    let d = Daemon::start(&["--queue-messages", "16"]);
    let mut slow = connect(&d, "slowu", false).await;
    slow.join("u", soon()).await.unwrap();
    let mut publisher = connect(&d, "pubu", false).await;
    for i in 0..5000u32 {
        publisher
            .multicast(Service::UNRELIABLE, &["u"], 0, &i.to_be_bytes())
            .await
            .unwrap();
    }
    // Read what got through (until the stream is quiet), then prove the
    // session is alive with a reliable message.
    let mut got = Vec::new();
    while let Ok(ev) = slow
        .receive(conn_core::Deadline::after(
            std::time::Duration::from_millis(300),
        ))
        .await
    {
        match ev {
            Event::Message(m) => got.push(u32::from_be_bytes(m.data()[..4].try_into().unwrap())),
            other => panic!("{other:?}"),
        }
    }
    publisher
        .multicast(Service::RELIABLE, &["#slowu#local"], 1, b"end")
        .await
        .unwrap();
    // The reliable one arrives, after whatever unreliable ones were still
    // on their way (should the quiet spell above have been a stall).
    loop {
        let m = message(&mut slow).await;
        if m.msg_type() == 1 {
            assert_eq!(m.data(), b"end");
            break;
        }
        got.push(u32::from_be_bytes(m.data()[..4].try_into().unwrap()));
    }
    assert!(
        got.len() < 5000,
        "nothing was missed: the queue limit did not apply"
    );
    assert!(got.windows(2).all(|w| w[0] < w[1]));
    println!("received {} of 5000 unreliable messages", got.len());
    slow.disconnect(soon()).await.unwrap();
    publisher.disconnect(soon()).await.unwrap();
}
