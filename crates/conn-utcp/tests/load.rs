//! The stack under concurrent load from the Linux kernel's TCP over a TAP
//! device (needs root; skips loudly otherwise): many clients connecting at
//! once, orderly closes racing many transfers, and 256 MiB each way.

mod common;

use std::time::Duration;

use common::{
    KERNEL, Net, STACK, bytes_each_way_arrive_intact, checksum, pattern, root_or_skip,
    syn_retransmits,
};
use conn_core::{Connection, Deadline};
use conn_utcp::{DEFAULT_BACKLOG, UtcpListener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn soon() -> Deadline {
    Deadline::after(Duration::from_secs(20))
}

#[tokio::test]
async fn two_hundred_fifty_six_clients_connecting_at_once_are_all_accepted_without_a_syn_retransmit()
 {
    const CLIENTS: usize = 256;
    let test = "two_hundred_fifty_six_clients_connecting_at_once_are_all_accepted_without_a_syn_retransmit";
    if !root_or_skip(test) {
        return;
    }
    let (net, stack) = Net::with_stack();
    let mut listener = UtcpListener::bind(&stack, 8100, DEFAULT_BACKLOG).unwrap();
    // Every client connects before any is accepted: the backlog alone must
    // hold them, as the kernel's would.
    let (connected_tx, connected_rx) = tokio::sync::oneshot::channel();
    let clients = net.kernel(move || async move {
        let before = syn_retransmits();
        let connects =
            (0..CLIENTS).map(|_| tokio::net::TcpStream::connect(format!("{STACK}:8100")));
        let streams =
            tokio::time::timeout(Duration::from_secs(30), futures::future::join_all(connects))
                .await
                .expect("256 connects complete within 30 s");
        let _ = connected_tx.send(());
        let mut answered = 0;
        for mut s in streams.into_iter().map(|s| s.expect("connect")) {
            s.write_all(b"?").await.expect("write");
            let mut one = [0; 1];
            s.read_exact(&mut one).await.expect("the server answers");
            answered += usize::from(one == *b"!");
        }
        let after = syn_retransmits();
        (answered, after - before)
    });
    connected_rx.await.expect("the clients connected");
    let mut served = Vec::new();
    for _ in 0..CLIENTS {
        let mut s = listener.accept(soon()).await.expect("accept");
        served.push(tokio::spawn(async move {
            let mut one = [0; 1];
            s.read_exact(&mut one).await.expect("read");
            s.write_all(b"!").await.expect("write");
            s.close(soon()).await.expect("orderly close");
        }));
    }
    let (answered, syn_retransmits) = clients.await.unwrap();
    for s in served {
        s.await.unwrap();
    }
    assert_eq!(answered, CLIENTS, "every client got its answer");
    assert_eq!(syn_retransmits, 0, "the kernel had to send SYNs again");
}

#[tokio::test]
async fn orderly_close_under_load_delivers_every_byte_written_before_it() {
    const CLIENTS: usize = 64;
    const BYTES: usize = 512 * 1024;
    if !root_or_skip("orderly_close_under_load_delivers_every_byte_written_before_it") {
        return;
    }
    let (net, stack) = Net::with_stack();
    let mut listener = UtcpListener::bind(&stack, 8101, DEFAULT_BACKLOG).unwrap();
    let clients = net.kernel(move || async move {
        let reads = (0..CLIENTS).map(|_| async {
            let mut c = tokio::net::TcpStream::connect(format!("{STACK}:8101")).await?;
            let mut seed = [0; 1];
            c.read_exact(&mut seed).await?;
            let mut got = Vec::with_capacity(BYTES);
            c.read_to_end(&mut got).await?;
            // Our FIN, after theirs: their close then completes.
            drop(c);
            std::io::Result::Ok((seed[0], got.len(), checksum(&got)))
        });
        futures::future::join_all(reads).await
    });
    let mut closes = Vec::new();
    for i in 0..CLIENTS {
        let mut s = listener.accept(soon()).await.expect("accept");
        let seed = i as u8;
        closes.push(tokio::spawn(async move {
            s.write_all(&[seed]).await?;
            // The whole transfer is queued, far more than the send buffer
            // holds, then closed at once: close must send all of it first.
            s.write_all(&pattern(BYTES, seed)).await?;
            s.close(soon()).await.map_err(std::io::Error::from)
        }));
    }
    for (i, close) in closes.into_iter().enumerate() {
        close
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("connection {i}: close failed: {e}"));
    }
    let results = clients.await.unwrap();
    assert_eq!(results.len(), CLIENTS);
    for result in results {
        let (seed, len, sum) = result.expect("the client read to the end");
        assert_eq!(len, BYTES, "connection {seed}: bytes lost");
        assert_eq!(
            sum,
            checksum(&pattern(BYTES, seed)),
            "connection {seed}: bytes changed"
        );
    }
}

#[tokio::test]
async fn two_hundred_fifty_six_mebibytes_each_way_arrive_intact_with_offloads() {
    if !root_or_skip("two_hundred_fifty_six_mebibytes_each_way_arrive_intact_with_offloads") {
        return;
    }
    // Long enough for many windows of 64 KiB segments the kernel hands
    // over unchecked and GSO frames it splits, both ways, all checksummed.
    let (net, stack, offloads) = Net::with_dual_stack();
    assert!(
        offloads,
        "this kernel takes TAP offloads; the test is of that path"
    );
    bytes_each_way_arrive_intact(&net, &stack, KERNEL.parse().unwrap(), 8102, 256 << 20).await;
}
