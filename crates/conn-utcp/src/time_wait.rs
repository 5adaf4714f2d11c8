//! TIME-WAIT without a socket.
//!
//! A connection whose side closed first waits 2 MSL in TIME-WAIT, so a
//! late duplicate of the old connection cannot land in a new one on the
//! same four-tuple, and so a FIN whose acknowledgement was lost gets
//! another. smoltcp keeps a whole socket for that, both buffers included;
//! 10,000 recent connections would hold 1.3 GB of 64 KiB buffers. The
//! stack instead keeps only the four-tuple and its expiry here, returns
//! the socket to its pool at once, and answers for the connection itself:
//! RFC 9293 §3.10.7.4, "the only thing that can arrive in this state is a
//! retransmission of the remote FIN. Acknowledge it, and restart the 2 MSL
//! timeout." A reset is ignored (RFC 1337, TIME-WAIT assassination); a new
//! SYN to a listening port ends the wait and opens a new connection, as
//! Linux does.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use smoltcp::phy::Medium;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, IpAddress, IpProtocol, Ipv4Packet,
    Ipv6Packet, TcpOption, TcpPacket, TcpSeqNumber,
};

use crate::demux::{Flow, Segment};

/// How long a four-tuple stays in TIME-WAIT: smoltcp's own 2 MSL.
pub(crate) const TIME_WAIT: Duration = Duration::from_secs(10);

/// The four-tuples in TIME-WAIT, with their expiries.
#[derive(Debug, Default)]
pub(crate) struct TimeWait {
    until: HashMap<Flow, Instant>,
    /// Expiries in the order they fall due (every wait is as long), with
    /// stale ones (a restarted wait) skipped when they come up.
    queue: VecDeque<(Instant, Flow)>,
}

impl TimeWait {
    /// Starts (or restarts) the wait of `flow` at `now`.
    pub(crate) fn insert(&mut self, flow: Flow, now: Instant) {
        let until = now + TIME_WAIT;
        self.until.insert(flow, until);
        self.queue.push_back((until, flow));
    }

    pub(crate) fn contains(&self, flow: &Flow) -> bool {
        self.until.contains_key(flow)
    }

    pub(crate) fn remove(&mut self, flow: &Flow) {
        self.until.remove(flow);
    }

    /// Four-tuples waiting.
    pub(crate) fn len(&self) -> usize {
        self.until.len()
    }

    /// Ends the waits due by `now`.
    pub(crate) fn expire(&mut self, now: Instant) {
        while let Some(&(at, flow)) = self.queue.front() {
            if at > now {
                break;
            }
            self.queue.pop_front();
            if self.until.get(&flow) == Some(&at) {
                self.until.remove(&flow);
            }
        }
        if self.until.is_empty() {
            self.queue.clear();
        }
    }

    /// When the next wait ends.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.queue
            .iter()
            .find(|(at, flow)| self.until.get(flow) == Some(at))
            .map(|&(at, _)| at)
    }
}

/// Bytes of the ACK [`write_ack`] writes to `peer`: Ethernet (not on
/// `Medium::Ip`), IP and TCP headers.
pub(crate) fn ack_len(seg: &Segment, medium: Medium) -> usize {
    link_header(medium) + if seg.flow.peer.is_ipv4() { 20 } else { 40 } + tcp_len(seg)
}

/// The ACK's TCP header: 20 bytes, and 12 more (two NOPs and the option)
/// to echo a timestamp, as RFC 7323 asks of every segment of a connection
/// that has them.
fn tcp_len(seg: &Segment) -> usize {
    20 + if seg.tsval.is_some() { 12 } else { 0 }
}

fn link_header(medium: Medium) -> usize {
    match medium {
        Medium::Ethernet => 14,
        _ => 0,
    }
}

/// Writes into `buf` (at least [`ack_len`] bytes) the acknowledgement of
/// the FIN `seg` retransmitted: from `me` (`mac`, the address of the
/// peer's family) to its sender, our sequence number the one the peer
/// acknowledges, the peer's FIN counted, the peer's timestamp echoed with
/// `tsval` (ours) if it sent one. On `Medium::Ip` it is the bare IP
/// packet (`mac` unused).
pub(crate) fn write_ack(
    seg: &Segment,
    me: IpAddr,
    mac: [u8; 6],
    tsval: u32,
    buf: &mut [u8],
    medium: Medium,
) {
    let len = ack_len(seg, medium);
    let tcp_len = tcp_len(seg);
    let ip_at = link_header(medium);
    if medium == Medium::Ethernet {
        let mut eth = EthernetFrame::new_unchecked(&mut buf[..len]);
        eth.set_dst_addr(EthernetAddress(seg.peer_mac));
        eth.set_src_addr(EthernetAddress(mac));
        eth.set_ethertype(match seg.flow.peer {
            IpAddr::V4(_) => EthernetProtocol::Ipv4,
            IpAddr::V6(_) => EthernetProtocol::Ipv6,
        });
    }
    let packet = &mut buf[ip_at..len];
    let tcp_at = ip_at
        + match (me, seg.flow.peer) {
            (IpAddr::V4(me), IpAddr::V4(peer)) => {
                let mut ip = Ipv4Packet::new_unchecked(packet);
                ip.set_version(4);
                ip.set_header_len(20);
                ip.set_dscp(0);
                ip.set_ecn(0);
                ip.set_total_len(20 + tcp_len as u16);
                ip.set_ident(0);
                ip.clear_flags();
                ip.set_dont_frag(true);
                ip.set_frag_offset(0);
                ip.set_hop_limit(64);
                ip.set_next_header(IpProtocol::Tcp);
                ip.set_src_addr(me);
                ip.set_dst_addr(peer);
                ip.fill_checksum();
                20
            }
            (IpAddr::V6(me), IpAddr::V6(peer)) => {
                let mut ip = Ipv6Packet::new_unchecked(packet);
                ip.set_version(6);
                ip.set_traffic_class(0);
                ip.set_flow_label(0);
                ip.set_payload_len(tcp_len as u16);
                ip.set_next_header(IpProtocol::Tcp);
                ip.set_hop_limit(64);
                ip.set_src_addr(me);
                ip.set_dst_addr(peer);
                40
            }
            _ => unreachable!("the caller picks the address of the peer's family"),
        };
    let mut tcp = TcpPacket::new_unchecked(&mut buf[tcp_at..len]);
    tcp.set_src_port(seg.flow.port);
    tcp.set_dst_port(seg.flow.peer_port);
    tcp.set_seq_number(TcpSeqNumber(seg.ack_number as i32));
    let fin = u32::from(seg.fin);
    tcp.set_ack_number(TcpSeqNumber(seg.seq.wrapping_add(seg.len + fin) as i32));
    tcp.set_header_len(tcp_len as u8);
    if let Some(tsecr) = seg.tsval {
        let options = tcp.options_mut();
        let rest = TcpOption::NoOperation.emit(options);
        let rest = TcpOption::NoOperation.emit(rest);
        TcpOption::TimeStamp { tsval, tsecr }.emit(rest);
    }
    tcp.clear_flags();
    tcp.set_ack(true);
    tcp.set_window_len(0);
    tcp.set_urgent_at(0);
    tcp.fill_checksum(&IpAddress::from(me), &IpAddress::from(seg.flow.peer));
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::demux::{Frame, classify};
    use crate::fuzzing::{ADDR, MAC, PEER_MAC, tcp_segment};

    fn flow(port: u16) -> Flow {
        Flow {
            peer: Ipv4Addr::new(10, 0, 0, 1).into(),
            peer_port: port,
            port: 80,
        }
    }

    #[test]
    fn a_wait_ends_after_two_msl_and_a_restart_moves_its_end() {
        let mut tw = TimeWait::default();
        let t0 = Instant::from_secs(100);
        tw.insert(flow(1), t0);
        tw.insert(flow(2), t0 + Duration::from_secs(1));
        tw.insert(flow(1), t0 + Duration::from_secs(5)); // a FIN came again
        tw.expire(t0 + TIME_WAIT);
        assert!(tw.contains(&flow(1)), "restarted: waits on");
        assert!(tw.contains(&flow(2)));
        assert_eq!(tw.next(), Some(t0 + Duration::from_secs(1) + TIME_WAIT));
        tw.expire(t0 + Duration::from_secs(5) + TIME_WAIT);
        assert_eq!(tw.len(), 0);
        assert_eq!(tw.next(), None);
    }

    /// The ACK of `seg` over Ethernet, in a buffer of exactly
    /// [`ack_len`], its IPv4 checksum checked.
    fn ack_over_ethernet(seg: &Segment) -> Vec<u8> {
        let mut buf = vec![0u8; ack_len(seg, Medium::Ethernet)];
        write_ack(
            seg,
            Ipv4Addr::from(ADDR).into(),
            MAC,
            9,
            &mut buf,
            Medium::Ethernet,
        );
        let eth = EthernetFrame::new_checked(&buf[..]).unwrap();
        assert!(
            Ipv4Packet::new_checked(eth.payload())
                .unwrap()
                .verify_checksum()
        );
        buf
    }

    #[test]
    fn the_ack_of_a_retransmitted_fin_counts_the_fin_and_is_checksummed() {
        const FIN_ACK: u8 = 0x11;
        let Frame::Tcp(seg) = classify(&tcp_segment(80, 5000, 777, FIN_ACK, &[]), Medium::Ethernet)
        else {
            panic!("a segment");
        };
        let buf = ack_over_ethernet(&seg);
        assert_eq!(buf.len(), 54);
        let eth = EthernetFrame::new_checked(&buf[..]).unwrap();
        assert_eq!(eth.dst_addr().0, PEER_MAC);
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(tcp.verify_checksum(
            &IpAddress::Ipv4(ip.src_addr()),
            &IpAddress::Ipv4(ip.dst_addr())
        ));
        assert!(tcp.ack() && !tcp.fin() && !tcp.syn());
        assert_eq!((tcp.src_port(), tcp.dst_port()), (80, 40000));
        assert_eq!(tcp.seq_number(), TcpSeqNumber(777));
        assert_eq!(tcp.ack_number(), TcpSeqNumber(5001));
    }

    #[test]
    fn the_ack_echoes_the_timestamp_of_the_fin_it_answers() {
        const FIN_ACK: u8 = 0x11;
        // NOP, NOP, timestamp (kind 8, length 10): TSval 0x01020304.
        let options = [1, 1, 8, 10, 1, 2, 3, 4, 0, 0, 0, 7];
        let mut frame = tcp_segment(80, 5000, 777, FIN_ACK, &options);
        frame[14 + 20 + 12] = 0x80; // data offset: 8 words, the options in the header
        let Frame::Tcp(seg) = classify(&frame, Medium::Ethernet) else {
            panic!("a segment");
        };
        assert_eq!((seg.tsval, seg.len), (Some(0x0102_0304), 0));
        let buf = ack_over_ethernet(&seg);
        assert_eq!(buf.len(), 66, "12 bytes of options");
        let eth = EthernetFrame::new_checked(&buf[..]).unwrap();
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(tcp.verify_checksum(
            &IpAddress::Ipv4(ip.src_addr()),
            &IpAddress::Ipv4(ip.dst_addr())
        ));
        assert_eq!(tcp.header_len(), 32);
        assert_eq!(tcp.ack_number(), TcpSeqNumber(5001));
        let (mut opts, mut echoed) = (tcp.options(), None);
        while !opts.is_empty() {
            let (rest, option) = TcpOption::parse(opts).unwrap();
            if let TcpOption::TimeStamp { tsval, tsecr } = option {
                echoed = Some((tsval, tsecr));
            }
            opts = rest;
        }
        assert_eq!(echoed, Some((9, 0x0102_0304)));
    }

    #[test]
    fn on_an_ip_link_the_ack_is_a_bare_ip_packet() {
        const FIN_ACK: u8 = 0x11;
        let frame = tcp_segment(80, 5000, 777, FIN_ACK, &[]);
        let Frame::Tcp(seg) = classify(&frame[14..], Medium::Ip) else {
            panic!("a segment");
        };
        let mut buf = [0u8; 40];
        assert_eq!(ack_len(&seg, Medium::Ip), buf.len());
        write_ack(
            &seg,
            Ipv4Addr::from(ADDR).into(),
            MAC,
            9,
            &mut buf,
            Medium::Ip,
        );
        let ip = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert!(ip.verify_checksum());
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(tcp.verify_checksum(
            &IpAddress::Ipv4(ip.src_addr()),
            &IpAddress::Ipv4(ip.dst_addr())
        ));
        assert_eq!(tcp.ack_number(), TcpSeqNumber(5001));
    }
}
