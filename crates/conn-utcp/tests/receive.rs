//! What a stack does with frames received from its device: here raw
//! frames sent by the other end of a MemLink, played by the test.

use std::time::Duration;

use conn_utcp::fuzzing::{ADDR, MAC, PEER, SYN, arp_request, tcp_segment, tcp_segment_to};
use conn_utcp::{MemLink, MemPort, Stack, UtcpListener};

/// The IPv4 source and destination of a frame, if it carries IPv4.
fn ipv4_addrs(frame: &[u8]) -> Option<([u8; 4], [u8; 4])> {
    if frame.len() < 34 || frame[12..14] != [8, 0] {
        return None;
    }
    Some((
        frame[26..30].try_into().unwrap(),
        frame[30..34].try_into().unwrap(),
    ))
}

/// Frames the stack sent until one from its own address to the peer
/// arrives (the answer to the last frame sent); all of them.
async fn until_answered(peer: &MemPort) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    for _ in 0..500 {
        while let Some(f) = peer.recv_frame() {
            let answered = ipv4_addrs(&f) == Some((ADDR, PEER));
            got.push(f);
            if answered {
                return got;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the stack never answered the SYN to its own address: {got:02x?}");
}

/// A stack at 10.0.0.2 listening on port 80, the other end of its link,
/// and the peer (10.0.0.1) known to it by an ARP request.
fn listening_stack() -> (Stack, UtcpListener, MemPort) {
    let (port, peer) = MemLink::pair();
    let stack = Stack::builder(port)
        .address("10.0.0.2/24".parse().unwrap())
        .mac(MAC)
        .build()
        .unwrap();
    let listener = UtcpListener::bind(&stack, 80, 4).unwrap();
    peer.send_frame(&arp_request());
    (stack, listener, peer)
}

#[tokio::test(flavor = "current_thread")]
async fn a_tcp_segment_to_a_broadcast_or_multicast_address_is_not_answered() {
    let (stack, _listener, peer) = listening_stack();
    // A SYN to the listening port and to a closed one, at each address
    // that is not the stack's own: no SYN-ACK, no reset, from any of them.
    for dst in [[255, 255, 255, 255], [10, 0, 0, 255], [224, 0, 0, 1]] {
        for port in [80, 81] {
            peer.send_frame(&tcp_segment_to(dst, port, 1000, 0, SYN, &[]));
        }
    }
    // Then one the stack must answer: everything before it was handled.
    peer.send_frame(&tcp_segment(80, 5000, 0, SYN, &[]));
    let sent = until_answered(&peer).await;
    for frame in &sent {
        if let Some((src, dst)) = ipv4_addrs(frame) {
            assert_eq!(
                (src, dst),
                (ADDR, PEER),
                "the stack sent a packet from {src:?} to {dst:?}"
            );
        }
    }
    assert_eq!(stack.lingering(), 0);
}

#[tokio::test(flavor = "current_thread")]
async fn a_tcp_segment_from_the_unspecified_address_leaves_the_stack_running() {
    let (_stack, _listener, peer) = listening_stack();
    for port in [80, 81] {
        let mut syn = tcp_segment(port, 1000, 0, SYN, &[]);
        syn[26..30].copy_from_slice(&[0; 4]); // from 0.0.0.0
        peer.send_frame(&syn);
    }
    // smoltcp panicked answering it, which ended the stack's driver: the
    // SYN after it went unanswered.
    peer.send_frame(&tcp_segment(80, 5000, 0, SYN, &[]));
    let sent = until_answered(&peer).await;
    for frame in &sent {
        if let Some((src, dst)) = ipv4_addrs(frame) {
            assert_eq!((src, dst), (ADDR, PEER));
        }
    }
}

const SYN_ACK: u8 = 0x12;
const ACK: u8 = 0x10;
const PSH_ACK: u8 = 0x18;
const FIN_ACK: u8 = 0x11;

/// A segment to port 80 from the peer's port `from`.
fn segment_from(from: u16, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = tcp_segment(80, seq, ack, flags, payload);
    f[34..36].copy_from_slice(&from.to_be_bytes());
    f
}

/// The TCP segments among `frames`: (destination port, flags, seq, ack, payload).
fn segments(frames: &[Vec<u8>]) -> Vec<(u16, u8, u32, u32, Vec<u8>)> {
    frames
        .iter()
        .filter(|f| f.len() >= 54 && f[12..14] == [8, 0] && f[23] == 6)
        .map(|f| {
            let at = |i: usize| u32::from_be_bytes(f[i..i + 4].try_into().unwrap());
            let header = usize::from(f[46] >> 4) * 4;
            (
                u16::from_be_bytes([f[36], f[37]]),
                f[47],
                at(38),
                at(42),
                f[34 + header..].to_vec(),
            )
        })
        .collect()
}

/// Everything the stack sends within `ms` milliseconds.
async fn sent_within(peer: &MemPort, ms: u64) -> Vec<Vec<u8>> {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    std::iter::from_fn(|| peer.recv_frame()).collect()
}

/// Plays a client's handshake from port `from` (ISN 1000); the stack's ISN.
async fn handshake(peer: &MemPort, from: u16) -> u32 {
    peer.send_frame(&segment_from(from, 1000, 0, SYN, &[]));
    let answer = segments(&until_answered(peer).await);
    let &(_, flags, isn, ack, _) = answer.last().unwrap();
    assert_eq!((flags, ack), (SYN_ACK, 1001), "a SYN-ACK");
    peer.send_frame(&segment_from(from, 1001, isn + 1, ACK, &[]));
    isn
}

#[tokio::test(flavor = "current_thread")]
async fn a_syn_flood_fills_the_backlog_and_no_more_while_established_connections_go_on() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (stack, mut listener, peer) = listening_stack(); // backlog 4
    let isn = handshake(&peer, 40000).await;
    let mut s = listener
        .accept(conn_core::Deadline::after(Duration::from_secs(5)))
        .await
        .unwrap();
    // 100 SYNs from 100 ports that never finish their handshake.
    for from in 50000..50100 {
        peer.send_frame(&segment_from(from, 7, 0, SYN, &[]));
    }
    let sent = segments(&sent_within(&peer, 300).await);
    assert!(
        !sent.iter().any(|s| s.1 & 0x04 != 0),
        "a SYN past the backlog is dropped (the client tries again), not reset: {sent:?}"
    );
    let answered: std::collections::BTreeSet<u16> = sent
        .iter()
        .filter(|s| s.1 == SYN_ACK)
        .map(|s| s.0)
        .collect();
    assert_eq!(
        answered,
        (50000..50004).collect(),
        "the first 4 SYNs fill the backlog of 4; the rest are dropped, not reset"
    );
    // The established connection is served all the while.
    peer.send_frame(&segment_from(40000, 1001, isn + 1, PSH_ACK, b"ping"));
    let mut buf = [0; 4];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    s.write_all(b"pong").await.unwrap();
    let sent = segments(&sent_within(&peer, 100).await);
    assert!(
        sent.iter().any(|s| s.0 == 40000 && s.4 == b"pong"),
        "the answer went out: {sent:?}"
    );
    drop(stack);
}

#[tokio::test(flavor = "current_thread")]
async fn a_fin_retransmitted_in_time_wait_is_acknowledged_without_a_socket() {
    use conn_core::{Connection, Deadline};
    let (stack, mut listener, peer) = listening_stack();
    let isn = handshake(&peer, 40000).await;
    let s = listener
        .accept(Deadline::after(Duration::from_secs(5)))
        .await
        .unwrap();
    let closing =
        tokio::spawn(async move { s.close(Deadline::after(Duration::from_secs(5))).await });
    // The stack's FIN (seq isn + 1); the peer acknowledges it and sends its own.
    let fin = loop {
        let sent = segments(&sent_within(&peer, 20).await);
        if let Some(s) = sent.into_iter().find(|s| s.1 & 0x01 != 0) {
            break s;
        }
    };
    assert_eq!(fin.2, isn + 1);
    peer.send_frame(&segment_from(40000, 1001, isn + 2, FIN_ACK, &[]));
    closing.await.unwrap().unwrap();
    let _ = sent_within(&peer, 50).await; // the ACK of that FIN
    assert_eq!(stack.lingering(), 1, "the four-tuple waits in TIME-WAIT");
    // The ACK was lost: the peer sends its FIN again, and gets an ACK.
    peer.send_frame(&segment_from(40000, 1001, isn + 2, FIN_ACK, &[]));
    let again = segments(&sent_within(&peer, 100).await);
    assert_eq!(
        again,
        vec![(40000, ACK, isn + 2, 1002, Vec::new())],
        "one ACK, our FIN and theirs counted"
    );
    // Anything else for it is dropped, a reset included (RFC 1337).
    peer.send_frame(&segment_from(40000, 1002, isn + 2, 0x04, &[]));
    peer.send_frame(&segment_from(40000, 1002, isn + 2, ACK, &[]));
    assert!(segments(&sent_within(&peer, 100).await).is_empty());
    assert_eq!(stack.lingering(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn malformed_and_truncated_frames_are_dropped_and_an_established_connection_goes_on() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (stack, mut listener, peer) = listening_stack();
    let isn = handshake(&peer, 40001).await;
    let mut s = listener
        .accept(conn_core::Deadline::after(Duration::from_secs(5)))
        .await
        .unwrap();
    let good = segment_from(40001, 1001, isn + 1, PSH_ACK, b"ping");
    // The malformed frames carry other bytes at the same place in the
    // stream: were one taken, the connection would read them.
    let evil = segment_from(40001, 1001, isn + 1, PSH_ACK, b"EVIL");
    let mut bad = Vec::new();
    // Cut anywhere: inside the Ethernet, IPv4 and TCP headers and payload.
    for len in [0, 5, 13, 14, 20, 33, 34, 40, 53, evil.len() - 1] {
        bad.push(evil[..len].to_vec());
    }
    // IPv4 lengths that lie: total length past the frame, header length
    // past the total, a header shorter than 20 bytes.
    for (at, value) in [(16usize, 0xffu8), (14, 0x4f), (14, 0x41)] {
        let mut f = evil.clone();
        f[at] = value;
        bad.push(f);
    }
    // A TCP data offset past the segment, and one inside the fixed header.
    for offset in [0xf0u8, 0x10] {
        let mut f = evil.clone();
        f[46] = offset;
        bad.push(f);
    }
    // Not IPv4 at all, though it says so; and an unknown ethertype.
    let mut f = evil.clone();
    f[14] = 0x65;
    bad.push(f);
    let mut f = evil.clone();
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    bad.push(f);
    for f in &bad {
        peer.send_frame(f);
    }
    let sent = segments(&sent_within(&peer, 100).await);
    assert!(
        !sent.iter().any(|s| s.1 & 0x04 != 0),
        "no malformed frame is answered with a reset: {sent:?}"
    );
    // Nothing of them reached the connection; the real segment does.
    peer.send_frame(&good);
    let mut buf = [0; 4];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    s.write_all(b"pong").await.unwrap();
    let sent = segments(&sent_within(&peer, 100).await);
    assert!(
        sent.iter().any(|s| s.0 == 40001 && s.4 == b"pong"),
        "the answer went out: {sent:?}"
    );
    drop(stack);
}
