//! Which connection a received frame is for, read through smoltcp's
//! checked views before smoltcp takes the frame.
//!
//! smoltcp offers a segment to every socket of the set it is polled with,
//! one after another, TIME-WAIT sockets included (smoltcp #934). The stack
//! therefore keeps each connection in a set of its own and looks the
//! segment's four-tuple up first ([`Flow`]), so the cost of a packet does
//! not grow with the number of connections.

use std::net::Ipv4Addr;

use smoltcp::wire::{EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, TcpPacket};

/// A connection as its peer's segments name it; the local address is the
/// stack's one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Flow {
    pub(crate) peer: Ipv4Addr,
    pub(crate) peer_port: u16,
    pub(crate) port: u16,
}

/// What a received frame is, as far as demultiplexing needs to know.
#[derive(Debug)]
pub(crate) enum Frame {
    /// A TCP segment in an unfragmented IPv4 packet.
    Tcp(Segment),
    /// ARP: it may tell the stack a neighbour some connections wait for.
    Arp,
    /// Anything else (ICMP, IP fragments, frames too short for their own
    /// headers): smoltcp's alone to answer or drop.
    Other,
}

/// The fields of a TCP segment the stack acts on before smoltcp does.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Segment {
    pub(crate) flow: Flow,
    pub(crate) syn: bool,
    pub(crate) ack: bool,
    pub(crate) fin: bool,
    pub(crate) rst: bool,
    pub(crate) seq: u32,
    pub(crate) ack_number: u32,
    /// Bytes of payload.
    pub(crate) len: u32,
    /// The sender's MAC, where an answer the stack writes itself goes.
    pub(crate) peer_mac: [u8; 6],
}

impl Segment {
    /// A connection request: SYN, without ACK or RST.
    pub(crate) fn opens(&self) -> bool {
        self.syn && !self.ack && !self.rst
    }
}

/// Reads `frame`'s headers, each length checked before it is used.
pub(crate) fn classify(frame: &[u8]) -> Frame {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return Frame::Other;
    };
    match eth.ethertype() {
        EthernetProtocol::Arp => return Frame::Arp,
        EthernetProtocol::Ipv4 => {}
        _ => return Frame::Other,
    }
    let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
        return Frame::Other;
    };
    // A fragment's ports may be in another fragment; smoltcp (built
    // without reassembly) drops it either way.
    if ip.next_header() != IpProtocol::Tcp || ip.more_frags() || ip.frag_offset() != 0 {
        return Frame::Other;
    }
    let Ok(tcp) = TcpPacket::new_checked(ip.payload()) else {
        return Frame::Other;
    };
    Frame::Tcp(Segment {
        flow: Flow {
            peer: ip.src_addr(),
            peer_port: tcp.src_port(),
            port: tcp.dst_port(),
        },
        syn: tcp.syn(),
        ack: tcp.ack(),
        fin: tcp.fin(),
        rst: tcp.rst(),
        seq: tcp.seq_number().0 as u32,
        ack_number: tcp.ack_number().0 as u32,
        len: tcp.payload().len() as u32,
        peer_mac: eth.src_addr().0,
    })
}

/// Whether `frame`'s IPv4 and TCP checksums hold (for the segments the
/// stack answers itself; smoltcp checks the ones it takes).
pub(crate) fn checksums_hold(frame: &[u8]) -> bool {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return false;
    };
    let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
        return false;
    };
    let Ok(tcp) = TcpPacket::new_checked(ip.payload()) else {
        return false;
    };
    let (src, dst) = (ip.src_addr().into(), ip.dst_addr().into());
    ip.verify_checksum() && tcp.verify_checksum(&src, &dst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzzing::{ADDR, PEER, SYN, arp_request, ethernet, tcp_segment};

    #[test]
    fn a_segment_is_named_by_its_four_tuple() {
        let Frame::Tcp(seg) = classify(&tcp_segment(80, 1000, 0, SYN, b"hi")) else {
            panic!("a TCP segment");
        };
        assert_eq!(seg.flow.peer.octets(), PEER);
        assert_eq!((seg.flow.peer_port, seg.flow.port), (40000, 80));
        assert!(seg.opens() && !seg.fin);
        assert_eq!((seg.seq, seg.len), (1000, 2));
        assert_ne!(ADDR, PEER);
    }

    #[test]
    fn a_truncated_segment_is_left_to_smoltcp() {
        let mut frame = tcp_segment(80, 1000, 0, SYN, &[]);
        frame.truncate(14 + 20 + 10); // half a TCP header
        // The IPv4 total length still claims the whole segment.
        assert!(matches!(classify(&frame), Frame::Other));
        assert!(matches!(classify(&frame[..10]), Frame::Other));
    }

    #[test]
    fn arp_is_told_apart() {
        assert!(matches!(classify(&arp_request()), Frame::Arp));
        assert!(matches!(
            classify(&ethernet(0x86dd, &[0; 40])),
            Frame::Other
        ));
    }
}
