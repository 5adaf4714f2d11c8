//! Which connection a received frame is for, read through smoltcp's
//! checked views before smoltcp takes the frame.
//!
//! smoltcp offers a segment to every socket of the set it is polled with,
//! one after another, TIME-WAIT sockets included (smoltcp #934). The stack
//! therefore keeps each connection in a set of its own and looks the
//! segment's four-tuple up first ([`Flow`]), so the cost of a packet does
//! not grow with the number of connections.

use std::net::IpAddr;

use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpAddress, IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket,
};

/// A connection as its peer's segments name it; the local address is the
/// stack's one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Flow {
    pub(crate) peer: IpAddr,
    pub(crate) peer_port: u16,
    pub(crate) port: u16,
}

/// What a received frame is, as far as demultiplexing needs to know.
#[derive(Debug)]
pub(crate) enum Frame {
    /// A TCP segment in an unfragmented IPv4 packet, or an IPv6 packet
    /// with no extension header.
    Tcp(Segment),
    /// ARP, or ICMPv6 (where NDP lives): it may tell the stack a
    /// neighbour some connections wait for.
    Neighbour,
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

/// The TCP segment in an Ethernet frame's IP packet, with the packet's
/// source and destination; `None` when it carries none (see [`Frame::Tcp`]).
pub(crate) fn tcp_of(
    eth_payload: &[u8],
    ethertype: EthernetProtocol,
) -> Option<(IpAddr, IpAddr, &[u8])> {
    match ethertype {
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_checked(eth_payload).ok()?;
            // A fragment's ports may be in another fragment; smoltcp
            // (built without reassembly) drops it either way.
            if ip.next_header() != IpProtocol::Tcp || ip.more_frags() || ip.frag_offset() != 0 {
                return None;
            }
            let payload = &eth_payload[usize::from(ip.header_len())..usize::from(ip.total_len())];
            Some((ip.src_addr().into(), ip.dst_addr().into(), payload))
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(eth_payload).ok()?;
            // Extension headers before TCP are left to smoltcp.
            if ip.next_header() != IpProtocol::Tcp {
                return None;
            }
            let end = 40 + usize::from(ip.payload_len());
            Some((
                ip.src_addr().into(),
                ip.dst_addr().into(),
                &eth_payload[40..end],
            ))
        }
        _ => None,
    }
}

/// Reads `frame`'s headers, each length checked before it is used.
pub(crate) fn classify(frame: &[u8]) -> Frame {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return Frame::Other;
    };
    if eth.ethertype() == EthernetProtocol::Arp
        || (eth.ethertype() == EthernetProtocol::Ipv6
            && Ipv6Packet::new_checked(eth.payload())
                .is_ok_and(|ip| ip.next_header() == IpProtocol::Icmpv6))
    {
        return Frame::Neighbour;
    }
    let Some((src, _, segment)) = tcp_of(eth.payload(), eth.ethertype()) else {
        return Frame::Other;
    };
    let Ok(tcp) = TcpPacket::new_checked(segment) else {
        return Frame::Other;
    };
    Frame::Tcp(Segment {
        flow: Flow {
            peer: src,
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

/// Whether `frame`'s IP (v4) and TCP checksums hold (for the segments
/// the stack answers itself, or takes with offloads on; smoltcp checks
/// the ones it takes otherwise).
pub(crate) fn checksums_hold(frame: &[u8]) -> bool {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return false;
    };
    if eth.ethertype() == EthernetProtocol::Ipv4
        && !Ipv4Packet::new_checked(eth.payload()).is_ok_and(|ip| ip.verify_checksum())
    {
        return false;
    }
    let Some((src, dst, segment)) = tcp_of(eth.payload(), eth.ethertype()) else {
        return false;
    };
    let Ok(tcp) = TcpPacket::new_checked(segment) else {
        return false;
    };
    tcp.verify_checksum(&IpAddress::from(src), &IpAddress::from(dst))
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
        assert_eq!(seg.flow.peer, std::net::Ipv4Addr::from(PEER));
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
        assert!(matches!(classify(&arp_request()), Frame::Neighbour));
        assert!(matches!(
            classify(&ethernet(0x86dd, &[0; 40])),
            Frame::Other
        ));
    }
}
