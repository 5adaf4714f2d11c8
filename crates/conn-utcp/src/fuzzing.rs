//! **Not API.** The fuzz target's entry point for the userspace stack's
//! receive path (see `fuzz/` at the repository root and
//! `crates/fuzz-targets`, which replays its corpus on stable). Hidden from
//! the docs; it may change or go at any time.
//!
//! A [`Stack`](crate::Stack) on a [`MemLink`](crate::MemLink), listening on
//! port 80, takes arbitrary bytes as received frames: the path a frame
//! from a TAP or TUN queue or the other end of a link takes into smoltcp's
//! interface. Two targets, one per medium: [`receive`] feeds Ethernet
//! frames (a TAP's), [`receive_ip`] bare IP packets (a TUN's, smoltcp's
//! `Medium::Ip`, on [`MemLink::pair_ip`](crate::MemLink::pair_ip)). They
//! are two targets rather than one with a medium byte so that the
//! Ethernet corpus already found keeps its meaning. The stack is polled
//! by hand, on a clock the input moves, so every input replays alike.

use smoltcp::phy::Medium;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{ArpPacket, EthernetFrame, EthernetProtocol, Ipv4Packet};

use crate::demux::{self, Frame};
use crate::device::vnet;
use crate::{MemLink, MemPort, Stack, UtcpListener};

/// The stack's MAC and address (10.0.0.2/24), and its peer's (10.0.0.1),
/// in the frames the builders below make.
pub const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
/// The peer's MAC.
pub const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// The stack's address.
pub const ADDR: [u8; 4] = [10, 0, 0, 2];
/// The peer's address.
pub const PEER: [u8; 4] = [10, 0, 0, 1];
/// The port the stack listens on.
const PORT: u16 = 80;
/// The link's MTU as smoltcp counts it: with the Ethernet header, or
/// (`Medium::Ip`) the IP packet alone.
fn mtu(medium: Medium) -> usize {
    match medium {
        Medium::Ethernet => 1514,
        _ => 1500,
    }
}

/// A stack and the other end of its link.
struct Harness {
    stack: Stack,
    peer: MemPort,
    _listener: UtcpListener,
    now: Instant,
}

impl Harness {
    fn new(medium: Medium) -> Harness {
        let (port, peer) = match medium {
            Medium::Ethernet => MemLink::pair_with_mtu(mtu(medium)),
            _ => MemLink::pair_ip(mtu(medium)),
        };
        let (stack, _waiter) = Stack::builder(port)
            .address(smoltcp::wire::Ipv4Cidr::new(ADDR.into(), 24))
            .mac(MAC)
            .buffers(4096, 4096)
            .assemble(Some(0x5eed))
            .expect("the fuzz stack builds");
        let listener = UtcpListener::bind(&stack, PORT, 2).expect("port 80 is free");
        Harness {
            stack,
            peer,
            _listener: listener,
            now: Instant::from_millis(1_000_000),
        }
    }

    /// Delivers `frame` to the stack `step` x 8 ms after the last one,
    /// polls, echoes what its connections received, polls again; returns
    /// the frames the stack sent.
    fn feed(&mut self, step: u8, frame: &[u8]) -> Vec<Vec<u8>> {
        self.now += Duration::from_millis(u64::from(step) * 8);
        self.peer.send_frame(frame);
        let mut inner = self.stack.lock();
        inner.poll_at(self.now);
        inner.conns.each_socket(|socket| {
            let mut buf = [0u8; 512];
            if socket.can_recv() {
                let n = socket.recv_slice(&mut buf).unwrap_or(0);
                if socket.can_send() {
                    let _ = socket.send_slice(&buf[..n]);
                }
            }
        });
        inner.poll_at(self.now);
        drop(inner);
        let mut sent = Vec::new();
        while let Some(frame) = self.peer.recv_frame() {
            sent.push(frame);
        }
        sent
    }
}

/// Checks a frame the stack sent: within the MTU; on Ethernet a
/// well-formed frame from the stack's MAC carrying ARP or IPv4, on
/// `Medium::Ip` an IPv4 packet alone; the IPv4 well-formed, from the
/// stack's address to a unicast one.
fn check_sent(frame: &[u8], medium: Medium) {
    assert!(
        frame.len() <= mtu(medium),
        "a {}-byte frame sent",
        frame.len()
    );
    if medium == Medium::Ethernet {
        let eth = EthernetFrame::new_checked(frame).expect("the stack sends Ethernet frames");
        assert_eq!(eth.src_addr().0, MAC);
        match eth.ethertype() {
            EthernetProtocol::Ipv4 => {}
            EthernetProtocol::Arp => {
                ArpPacket::new_checked(eth.payload()).expect("well-formed ARP");
                return;
            }
            other => panic!("the stack sent a frame of ethertype {other}"),
        }
    }
    let Some((4, packet)) = crate::device::ip_packet(frame, medium) else {
        panic!("the stack sent something other than IPv4: {frame:02x?}");
    };
    let ip = Ipv4Packet::new_checked(packet).expect("well-formed IPv4");
    assert_eq!(ip.src_addr().octets(), ADDR);
    let dst = ip.dst_addr();
    assert!(
        !dst.is_broadcast()
            && !dst.is_multicast()
            && !dst.is_unspecified()
            && dst.octets() != [10, 0, 0, 255],
        "the stack sent a packet to {dst}"
    );
}

/// Reads `data` as records: a time step (u8, 8 ms each), a u16 length and
/// that many bytes of frame (fewer at the end of the input).
fn records(mut data: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let (&step, rest) = data.split_first()?;
        let (len, rest) = rest.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*len)).min(rest.len());
        let (frame, rest) = rest.split_at(len);
        data = rest;
        Some((step, frame))
    })
}

/// The receive target: each record of `data` is one Ethernet frame
/// received, a time step before it. Asserts that nothing panics and that
/// every frame the stack sends in answer is well-formed, from its own
/// address.
pub fn receive(data: &[u8]) {
    receive_on(Medium::Ethernet, data);
}

/// The receive target of an IP link (a TUN's medium): as [`receive`],
/// each record one bare IP packet.
pub fn receive_ip(data: &[u8]) {
    receive_on(Medium::Ip, data);
}

fn receive_on(medium: Medium, data: &[u8]) {
    let mut h = Harness::new(medium);
    for (step, frame) in records(data) {
        // What a TAP or TUN queue with offloads does first with a frame
        // whose header vouches for nothing: any bytes must do (its answer
        // matters not here, smoltcp checks the sum again).
        let _ = vnet::rx_checksum_holds(&vnet::Repr::default(), frame, medium);
        for sent in h.feed(step, frame) {
            check_sent(&sent, medium);
            check_offload_header(&sent, medium);
        }
    }
}

/// Readies a copy of `frame`, as sent, for a queue with offloads, and
/// does the kernel's part: the header's offsets lie inside the frame, and
/// completing the checksum where it says gives a segment that verifies.
fn check_offload_header(frame: &[u8], medium: Medium) {
    let mut copy = frame.to_vec();
    let hdr = vnet::prepare_tx(&mut copy, Some(1460), medium);
    if !hdr.checksum_trusted() {
        return; // not TCP: nothing left to the kernel
    }
    let (start, at) = (
        usize::from(hdr.csum_start),
        usize::from(hdr.csum_start + hdr.csum_offset),
    );
    assert!(
        at + 2 <= copy.len() && usize::from(hdr.hdr_len) <= copy.len(),
        "{hdr:?}"
    );
    let sum = !smoltcp::wire::checksum::data(&copy[start..]);
    copy[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    // The TCP sum alone: a MemLink's stack leaves the IPv4 header's zero.
    let tcp = demux::tcp_of(&copy, medium).expect("still a TCP segment");
    let (src, dst) = (tcp.src.into(), tcp.dst.into());
    let segment = smoltcp::wire::TcpPacket::new_checked(tcp.segment).expect("a TCP header");
    assert!(
        segment.verify_checksum(&src, &dst),
        "the completed checksum fails: {hdr:?}"
    );
}

/// An Ethernet frame from the peer to the stack.
pub fn ethernet(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&MAC);
    f.extend_from_slice(&PEER_MAC);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An IPv4 packet from the peer to the stack, in an Ethernet frame
/// (checksums are left zero: a MemLink does not check them).
pub fn ipv4(protocol: u8, payload: &[u8]) -> Vec<u8> {
    ipv4_to(ADDR, protocol, payload)
}

/// An IPv4 packet from the peer to `dst`, in an Ethernet frame to the
/// stack's MAC.
pub fn ipv4_to(dst: [u8; 4], protocol: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 1, 0x40, 0, 64, protocol, 0, 0]);
    p.extend_from_slice(&PEER);
    p.extend_from_slice(&dst);
    p.extend_from_slice(payload);
    ethernet(0x0800, &p)
}

/// A TCP segment from the peer's port 40000 to the stack's `port`.
pub fn tcp_segment(port: u16, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    tcp_segment_to(ADDR, port, seq, ack, flags, payload)
}

/// A TCP segment from the peer's port 40000 to `dst`:`port`.
pub fn tcp_segment_to(
    dst: [u8; 4],
    port: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut t = Vec::with_capacity(20 + payload.len());
    t.extend_from_slice(&40000u16.to_be_bytes());
    t.extend_from_slice(&port.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.extend_from_slice(&[0x50, flags, 0x10, 0, 0, 0, 0, 0]);
    t.extend_from_slice(payload);
    ipv4_to(dst, 6, &t)
}

/// The peer asks who has the stack's address.
pub fn arp_request() -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
    a.extend_from_slice(&PEER_MAC);
    a.extend_from_slice(&PEER);
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&ADDR);
    let mut f = ethernet(0x0806, &a);
    f[..6].copy_from_slice(&[0xff; 6]);
    f
}

fn record(step: u8, frame: &[u8]) -> Vec<u8> {
    let mut r = vec![step];
    r.extend_from_slice(&(frame.len() as u16).to_be_bytes());
    r.extend_from_slice(frame);
    r
}

/// TCP flags.
pub const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH_ACK: u8 = 0x18;
const FIN_ACK: u8 = 0x11;
const RST: u8 = 0x04;

/// Seed inputs for [`receive`]: an ARP request, an ICMP echo, a SYN to a
/// closed port, and a whole connection to port 80 (handshake, data, FIN),
/// its acknowledgements computed from the stack's own answers.
pub fn receive_seeds() -> Vec<(String, Vec<u8>)> {
    seeds(Medium::Ethernet)
}

/// Seed inputs for [`receive_ip`]: those of [`receive_seeds`] as bare IP
/// packets, without ARP (an IP link has none).
pub fn receive_ip_seeds() -> Vec<(String, Vec<u8>)> {
    seeds(Medium::Ip)
}

fn seeds(medium: Medium) -> Vec<(String, Vec<u8>)> {
    // The builders make Ethernet frames; an IP link carries their payload.
    let on_link = |frame: Vec<u8>| match medium {
        Medium::Ethernet => frame,
        _ => frame[14..].to_vec(),
    };
    // ARP first where there is ARP: the stack learns the peer's MAC.
    let hello: Vec<Vec<u8>> = match medium {
        Medium::Ethernet => vec![arp_request()],
        _ => Vec::new(),
    };
    let with_hello = |frame: Vec<u8>| {
        let mut input: Vec<u8> = hello.iter().flat_map(|f| record(1, f)).collect();
        input.extend(record(1, &on_link(frame)));
        input
    };
    let mut seeds = vec![
        (
            "icmp-echo".to_owned(),
            with_hello(ipv4(1, &[8, 0, 0, 0, 0, 1, 0, 1, b'p', b'i', b'n', b'g'])),
        ),
        (
            "syn-closed-port".to_owned(),
            with_hello(tcp_segment(81, 1000, 0, SYN, &[])),
        ),
    ];
    if medium == Medium::Ethernet {
        seeds.insert(0, ("arp".to_owned(), record(1, &arp_request())));
    }
    // A connection, played against a harness to learn its sequence numbers.
    let mut h = Harness::new(medium);
    let mut input = Vec::new();
    let mut play = |h: &mut Harness, frame: Vec<u8>| {
        input.extend(record(1, &frame));
        h.feed(1, &frame)
    };
    for frame in &hello {
        play(&mut h, frame.clone());
    }
    let answer = play(&mut h, on_link(tcp_segment(PORT, 1000, 0, SYN, &[])));
    let isn = answer
        .iter()
        .find_map(|f| match demux::classify(f, medium) {
            Frame::Tcp(seg) if seg.syn => Some(seg.seq),
            _ => None,
        });
    if let Some(isn) = isn {
        play(&mut h, on_link(tcp_segment(PORT, 1001, isn + 1, ACK, &[])));
        play(
            &mut h,
            on_link(tcp_segment(PORT, 1001, isn + 1, PSH_ACK, b"hello")),
        );
        play(
            &mut h,
            on_link(tcp_segment(PORT, 1006, isn + 6, FIN_ACK, &[])),
        );
        play(&mut h, on_link(tcp_segment(PORT, 1007, isn + 7, RST, &[])));
        seeds.push(("connection".to_owned(), input));
    }
    seeds
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The connection seed exists only if the stack answered the SYN: on
    /// both media, the harness really carries a handshake.
    #[test]
    fn both_media_get_a_whole_connection_as_a_seed() {
        for seeds in [receive_seeds(), receive_ip_seeds()] {
            assert!(seeds.iter().any(|(name, _)| name == "connection"));
        }
        assert!(!receive_ip_seeds().iter().any(|(name, _)| name == "arp"));
    }
}
