//! Which connection a received frame is for, read through smoltcp's
//! checked views before smoltcp takes the frame.
//!
//! smoltcp offers a segment to every socket of the set it is polled with,
//! one after another, TIME-WAIT sockets included (smoltcp #934). The stack
//! therefore keeps each connection in a set of its own and looks the
//! segment's four-tuple up first ([`Flow`]), so the cost of a packet does
//! not grow with the number of connections.

use std::net::IpAddr;

use smoltcp::phy::Medium;
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpAddress, IpProtocol, Ipv4Packet, Ipv6Packet, TcpOption,
    TcpPacket,
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
    /// The sender's MAC, where an answer the stack writes itself goes
    /// (zero on `Medium::Ip`, which has none).
    pub(crate) peer_mac: [u8; 6],
    /// The sender's timestamp (RFC 7323 TSval), if it sent one: an answer
    /// the stack writes itself echoes it.
    pub(crate) tsval: Option<u32>,
}

impl Segment {
    /// A connection request: SYN, without ACK or RST.
    pub(crate) fn opens(&self) -> bool {
        self.syn && !self.ack && !self.rst
    }
}

/// Where a frame's TCP segment is (see [`Frame::Tcp`]).
pub(crate) struct Tcp<'a> {
    pub(crate) src: IpAddr,
    pub(crate) dst: IpAddr,
    /// Where the IP packet starts in the frame: after the Ethernet
    /// header, or (`Medium::Ip`) at once.
    pub(crate) ip_at: usize,
    /// The IP header's length (IPv6: 40, extension headers being left
    /// to smoltcp).
    pub(crate) ip_header: usize,
    /// The TCP header and payload.
    pub(crate) segment: &'a [u8],
}

/// The TCP segment in `frame`'s IP packet, with the packet's source and
/// destination; `None` when it carries none (see [`Frame::Tcp`]). One
/// reader for both media: only where the IP packet starts differs.
pub(crate) fn tcp_of(frame: &[u8], medium: Medium) -> Option<Tcp<'_>> {
    let (version, packet) = crate::device::ip_packet(frame, medium)?;
    let ip_at = frame.len() - packet.len();
    let (src, dst, ip_header, end) = match version {
        4 => {
            let ip = Ipv4Packet::new_checked(packet).ok()?;
            // A fragment's ports may be in another fragment; smoltcp
            // (built without reassembly) drops it either way.
            if ip.next_header() != IpProtocol::Tcp || ip.more_frags() || ip.frag_offset() != 0 {
                return None;
            }
            let (src, dst) = (ip.src_addr().into(), ip.dst_addr().into());
            (
                src,
                dst,
                usize::from(ip.header_len()),
                usize::from(ip.total_len()),
            )
        }
        _ => {
            let ip = Ipv6Packet::new_checked(packet).ok()?;
            // Extension headers before TCP are left to smoltcp.
            if ip.next_header() != IpProtocol::Tcp {
                return None;
            }
            let (src, dst) = (ip.src_addr().into(), ip.dst_addr().into());
            (src, dst, 40, 40 + usize::from(ip.payload_len()))
        }
    };
    Some(Tcp {
        src,
        dst,
        ip_at,
        ip_header,
        segment: &packet[ip_header..end],
    })
}

/// Reads `frame` (an Ethernet frame, or an IP packet on `Medium::Ip`),
/// each header's length checked before it is used.
pub(crate) fn classify(frame: &[u8], medium: Medium) -> Frame {
    let eth = match medium {
        Medium::Ethernet => match EthernetFrame::new_checked(frame) {
            Ok(eth) => Some(eth),
            Err(_) => return Frame::Other,
        },
        _ => None,
    };
    let arp = eth
        .as_ref()
        .is_some_and(|eth| eth.ethertype() == EthernetProtocol::Arp);
    let icmpv6 = crate::device::ip_packet(frame, medium).is_some_and(|(v, packet)| {
        v == 6
            && Ipv6Packet::new_checked(packet)
                .is_ok_and(|ip| ip.next_header() == IpProtocol::Icmpv6)
    });
    if arp || icmpv6 {
        return Frame::Neighbour;
    }
    let Some(found) = tcp_of(frame, medium) else {
        return Frame::Other;
    };
    let Ok(tcp) = TcpPacket::new_checked(found.segment) else {
        return Frame::Other;
    };
    Frame::Tcp(Segment {
        flow: Flow {
            peer: found.src,
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
        peer_mac: eth.map_or([0; 6], |eth| eth.src_addr().0),
        tsval: tsval_of(tcp.options()),
    })
}

/// The TSval of a timestamp option among `options`; `None` without one
/// or where the options do not parse.
fn tsval_of(mut options: &[u8]) -> Option<u32> {
    while !options.is_empty() {
        match TcpOption::parse(options).ok()? {
            (_, TcpOption::EndOfList) => return None,
            (_, TcpOption::TimeStamp { tsval, .. }) => return Some(tsval),
            (rest, _) => options = rest,
        }
    }
    None
}

/// Whether `frame`'s IP (v4) and TCP checksums hold (for the segments
/// the stack answers itself, or takes with offloads on; smoltcp checks
/// the ones it takes otherwise).
pub(crate) fn checksums_hold(frame: &[u8], medium: Medium) -> bool {
    let Some(found) = tcp_of(frame, medium) else {
        return false;
    };
    let ip = &frame[found.ip_at..];
    if found.src.is_ipv4() && !Ipv4Packet::new_checked(ip).is_ok_and(|ip| ip.verify_checksum()) {
        return false;
    }
    let Ok(tcp) = TcpPacket::new_checked(found.segment) else {
        return false;
    };
    tcp.verify_checksum(&IpAddress::from(found.src), &IpAddress::from(found.dst))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzzing::{ADDR, PEER, SYN, arp_request, ethernet, tcp_segment};

    #[test]
    fn a_segment_is_named_by_its_four_tuple() {
        let Frame::Tcp(seg) = classify(&tcp_segment(80, 1000, 0, SYN, b"hi"), Medium::Ethernet)
        else {
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
        assert!(matches!(classify(&frame, Medium::Ethernet), Frame::Other));
        assert!(matches!(
            classify(&frame[..10], Medium::Ethernet),
            Frame::Other
        ));
    }

    #[test]
    fn arp_is_told_apart() {
        assert!(matches!(
            classify(&arp_request(), Medium::Ethernet),
            Frame::Neighbour
        ));
        assert!(matches!(
            classify(&ethernet(0x86dd, &[0; 40]), Medium::Ethernet),
            Frame::Other
        ));
    }

    #[test]
    fn an_ip_packet_reads_as_the_same_segment_as_its_ethernet_frame() {
        let frame = tcp_segment(80, 1000, 0, SYN, b"hi");
        let (Frame::Tcp(eth), Frame::Tcp(ip)) = (
            classify(&frame, Medium::Ethernet),
            classify(&frame[14..], Medium::Ip),
        ) else {
            panic!("a TCP segment on both media");
        };
        assert_eq!((eth.flow, eth.seq, eth.len), (ip.flow, ip.seq, ip.len));
        assert_eq!(ip.peer_mac, [0; 6], "an IP link has no MACs");
        // The same bytes read by the other medium are not a segment: an
        // Ethernet frame starts with a MAC, not an IP version.
        assert!(matches!(classify(&frame, Medium::Ip), Frame::Other));
        assert!(matches!(
            classify(&frame[14..], Medium::Ethernet),
            Frame::Other
        ));
        // Checksums (left zero by the builder) are read alike.
        assert!(!checksums_hold(&frame[14..], Medium::Ip));
        assert!(matches!(classify(&[], Medium::Ip), Frame::Other));
    }

    #[test]
    fn an_ip_link_filters_packets_by_address_as_an_ethernet_one_does() {
        use crate::device::{Addrs, for_us};
        let me = Addrs {
            v4: Some(ADDR.into()),
            v6: None,
        };
        let to_us = tcp_segment(80, 1, 0, SYN, &[]);
        let elsewhere = crate::fuzzing::tcp_segment_to([10, 0, 0, 255], 80, 1, 0, SYN, &[]);
        for (frame, medium) in [(&to_us[..], Medium::Ethernet), (&to_us[14..], Medium::Ip)] {
            assert!(for_us(frame, &me, medium));
        }
        for (frame, medium) in [
            (&elsewhere[..], Medium::Ethernet),
            (&elsewhere[14..], Medium::Ip),
        ] {
            assert!(!for_us(frame, &me, medium));
        }
        // IPv6 without an IPv6 address: nothing for us.
        let mut v6 = vec![0x60, 0, 0, 0, 0, 0, 6, 64];
        v6.extend_from_slice(&[0; 32]);
        assert!(!for_us(&v6, &me, Medium::Ip));
    }
}
