//! The `virtio_net_hdr` a TAP or TUN queue opened with `IFF_VNET_HDR` puts
//! before every frame (or IP packet) (`include/uapi/linux/virtio_net.h`, the 10-byte legacy
//! form), and what the stack does with it: the offloads that let the
//! kernel hand over, and take, 64 KiB TCP segments with checksums left to
//! whoever needs them.
//!
//! * Received: `NEEDS_CSUM` means the TCP checksum was never computed (the
//!   segment comes from the kernel's own TCP, in memory); `DATA_VALID`
//!   means the kernel checked it. Either way the stack need not. A segment
//!   with neither flag (bridged in from a wire) is checked in software,
//!   and dropped when it fails, before smoltcp sees it.
//! * Sent: every TCP segment goes out with `NEEDS_CSUM` and the
//!   pseudo-header sum in its checksum field, as Linux's own
//!   `CHECKSUM_PARTIAL` does, so nobody computes a checksum for a
//!   segment that never leaves the machine; a segment longer than the MSS
//!   that smoltcp built for segmentation offload goes as one GSO frame
//!   (`GSO_TCPV4`, `gso_size` = the MSS), which the kernel splits.

use std::net::IpAddr;

use smoltcp::phy::Medium;
use smoltcp::wire::{IpProtocol, TcpPacket, checksum};

/// Bytes of the legacy header (`sizeof(struct virtio_net_hdr)`), the
/// kernel's default `TUNSETVNETHDRSZ`.
pub(crate) const LEN: usize = 10;

const F_NEEDS_CSUM: u8 = 1;
const F_DATA_VALID: u8 = 2;
const GSO_NONE: u8 = 0;
const GSO_TCPV4: u8 = 1;
const GSO_TCPV6: u8 = 4;
/// Where the checksum sits in a TCP header.
const TCP_CHECKSUM_OFFSET: u16 = 16;

/// The fields of a `virtio_net_hdr` (little-endian on every Linux this
/// runs on: the legacy header is in the guest's byte order, and for a TAP
/// queue the "guest" is this process).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Repr {
    pub(crate) flags: u8,
    pub(crate) gso_type: u8,
    pub(crate) hdr_len: u16,
    pub(crate) gso_size: u16,
    pub(crate) csum_start: u16,
    pub(crate) csum_offset: u16,
}

impl Repr {
    /// Reads the header at the front of `buf`; `None` when it is shorter.
    pub(crate) fn parse(buf: &[u8]) -> Option<Repr> {
        let b = buf.get(..LEN)?;
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        Some(Repr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        })
    }

    /// Writes the header into the first [`LEN`] bytes of `buf`.
    pub(crate) fn emit(&self, buf: &mut [u8]) {
        buf[0] = self.flags;
        buf[1] = self.gso_type;
        buf[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        buf[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        buf[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        buf[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
    }

    /// Whether the frame's checksums are known good or were never due.
    pub(crate) fn checksum_trusted(&self) -> bool {
        self.flags & (F_NEEDS_CSUM | F_DATA_VALID) != 0
    }
}

/// Whether a received frame may go on: anything but a TCP segment whose
/// checksum the header does not vouch for and that fails it.
pub(crate) fn rx_checksum_holds(hdr: &Repr, frame: &[u8], medium: Medium) -> bool {
    if hdr.checksum_trusted() || crate::demux::tcp_of(frame, medium).is_none() {
        return true;
    }
    crate::demux::checksums_hold(frame, medium)
}

/// Readies `frame`, a frame smoltcp wrote with the TCP checksum left at
/// zero, for a TAP or TUN queue with offloads: its header says what the
/// kernel must still do, and a TCP segment gets its pseudo-header sum.
/// `gso_size`: smoltcp asked for segmentation at that size. The offsets
/// in the header count from the frame's start, Ethernet header or not.
pub(crate) fn prepare_tx(frame: &mut [u8], gso_size: Option<u16>, medium: Medium) -> Repr {
    let Some(tcp) = crate::demux::tcp_of(frame, medium) else {
        return Repr::default();
    };
    let Ok(header) = TcpPacket::new_checked(tcp.segment) else {
        return Repr::default();
    };
    let tcp_len = usize::from(header.header_len());
    let tcp_bytes = tcp.segment.len();
    let csum_start = tcp.ip_at + tcp.ip_header;
    let (partial, gso) = match (tcp.src, tcp.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => (
            checksum::pseudo_header_v4(&src, &dst, IpProtocol::Tcp, tcp_bytes as u32),
            GSO_TCPV4,
        ),
        (IpAddr::V6(src), IpAddr::V6(dst)) => (
            checksum::pseudo_header_v6(&src, &dst, IpProtocol::Tcp, tcp_bytes as u32),
            GSO_TCPV6,
        ),
        _ => return Repr::default(),
    };
    let at = csum_start + usize::from(TCP_CHECKSUM_OFFSET);
    frame[at..at + 2].copy_from_slice(&partial.to_be_bytes());
    let (gso_type, gso_size) = match gso_size {
        Some(size) if tcp_bytes > tcp_len + usize::from(size) => (gso, size),
        _ => (GSO_NONE, 0),
    };
    Repr {
        flags: F_NEEDS_CSUM,
        gso_type,
        hdr_len: (csum_start + tcp_len) as u16,
        gso_size,
        csum_start: csum_start as u16,
        csum_offset: TCP_CHECKSUM_OFFSET,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzzing::{SYN, tcp_segment};
    use smoltcp::wire::Ipv4Packet;

    #[test]
    fn a_header_reads_back_as_written() {
        let repr = Repr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            hdr_len: 66,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        };
        let mut buf = [0u8; LEN];
        repr.emit(&mut buf);
        assert_eq!(Repr::parse(&buf), Some(repr));
        assert_eq!(Repr::parse(&buf[..9]), None);
    }

    #[test]
    fn a_segment_sent_carries_its_pseudo_header_sum_and_a_long_one_asks_for_gso() {
        let mut frame = tcp_segment(80, 1, 0, SYN, &[7; 3000]);
        let hdr = prepare_tx(&mut frame, Some(1460), Medium::Ethernet);
        assert_eq!(
            (hdr.gso_type, hdr.gso_size, hdr.csum_start, hdr.hdr_len),
            (GSO_TCPV4, 1460, 34, 54)
        );
        // Completing the checksum over the segment, as the kernel will,
        // gives a segment that verifies.
        let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
        let tcp_bytes = ip.payload().to_vec();
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        let sum = !checksum::data(&tcp_bytes);
        let mut done = frame.clone();
        done[50..52].copy_from_slice(&sum.to_be_bytes());
        let ip = Ipv4Packet::new_checked(&done[14..]).unwrap();
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(tcp.verify_checksum(&src.into(), &dst.into()));
        // A segment within the MSS goes whole, its checksum still partial.
        let mut short = tcp_segment(80, 1, 0, SYN, &[7; 100]);
        let hdr = prepare_tx(&mut short, Some(1460), Medium::Ethernet);
        assert_eq!((hdr.flags, hdr.gso_type), (F_NEEDS_CSUM, GSO_NONE));
    }

    #[test]
    fn an_untrusted_segment_with_a_bad_checksum_is_refused() {
        let frame = tcp_segment(80, 1, 0, SYN, &[]); // checksum field 0
        assert!(!rx_checksum_holds(
            &Repr::default(),
            &frame,
            Medium::Ethernet
        ));
        let trusted = Repr {
            flags: F_NEEDS_CSUM,
            ..Repr::default()
        };
        assert!(rx_checksum_holds(&trusted, &frame, Medium::Ethernet));
        // Not TCP: smoltcp checks it itself.
        assert!(rx_checksum_holds(
            &Repr::default(),
            &[0u8; 60],
            Medium::Ethernet
        ));
    }

    #[test]
    fn on_an_ip_link_the_checksum_starts_after_the_ip_header_alone() {
        let frame = tcp_segment(80, 1, 0, SYN, &[7; 3000]);
        let mut packet = frame[14..].to_vec();
        let hdr = prepare_tx(&mut packet, Some(1460), Medium::Ip);
        assert_eq!(
            (hdr.gso_type, hdr.gso_size, hdr.csum_start, hdr.hdr_len),
            (GSO_TCPV4, 1460, 20, 40)
        );
        // The pseudo-header sum is the one the Ethernet frame gets.
        let mut eth = frame.clone();
        prepare_tx(&mut eth, Some(1460), Medium::Ethernet);
        assert_eq!(packet[36..38], eth[50..52]);
    }
}
