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
