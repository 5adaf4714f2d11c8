//! The devices a [`Stack`](crate::Stack) can own: an in-memory link
//! ([`MemLink`]), a Linux TAP queue ([`Tap`], Ethernet frames) and a Linux
//! TUN queue ([`Tun`], bare IP packets: smoltcp's `Medium::Ip`).
//!
//! All are smoltcp `phy::Device`s through the [`Device`] enum, so the
//! driver is one concrete type and the per-packet path has no dynamic
//! dispatch and no allocation (frame buffers are recycled). TAP and TUN
//! share their queue code (`queue`: open, offloads, read, write, a device
//! gone); what a frame is, Ethernet or IP, is the device's
//! [`Medium`], which the stack's demultiplexer and offloads read frames by.

mod mem;
mod queue;
mod tap;
mod tun;
pub(crate) mod vnet;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use tokio::io::Interest;
use tokio::io::unix::{AsyncFd, AsyncFdReadyGuard};
use tokio::sync::Notify;

pub use mem::{MemLink, MemPort};
pub(crate) use tap::NeighbourShare;
pub use tap::Tap;
pub use tun::Tun;

/// The one device a [`Stack`](crate::Stack) owns.
///
/// ```
/// use conn_utcp::{Device, MemLink};
///
/// let (a, _b) = MemLink::pair();
/// let device: Device = a.into(); // what Stack::builder takes (or a Tap, a Tun)
/// assert!(matches!(device, Device::Mem(_)));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Device {
    /// One end of an in-memory link.
    Mem(MemPort),
    /// One queue of a Linux TAP device.
    Tap(Tap),
    /// One queue of a Linux TUN device (IP packets, no Ethernet).
    Tun(Tun),
}

impl From<MemPort> for Device {
    fn from(port: MemPort) -> Device {
        Device::Mem(port)
    }
}

impl From<Tap> for Device {
    fn from(tap: Tap) -> Device {
        Device::Tap(tap)
    }
}

impl From<Tun> for Device {
    fn from(tun: Tun) -> Device {
        Device::Tun(tun)
    }
}

/// What the driver task sleeps on for inbound frames: a MemLink's
/// `Notify`, or a TAP or TUN queue's descriptor (and, for a TAP queue in a
/// group, its siblings' ARP frames).
#[derive(Clone, Debug)]
pub(crate) enum Waiter {
    Mem(Arc<Notify>),
    Queue(Arc<AsyncFd<std::os::fd::OwnedFd>>, Option<Arc<Notify>>),
}

/// A readiness event; for a TAP or TUN queue it is tokio's guard, cleared
/// by the driver once the device has read to `EAGAIN`.
pub(crate) enum Ready<'a> {
    Frames,
    Queue(AsyncFdReadyGuard<'a, std::os::fd::OwnedFd>),
}

impl Waiter {
    /// Waits until frames may be waiting.
    pub(crate) async fn ready(&self) -> Ready<'_> {
        match self {
            Waiter::Mem(notify) => {
                notify.notified().await;
                Ready::Frames
            }
            Waiter::Queue(fd, arp) => {
                let siblings = async {
                    match arp {
                        Some(notify) => notify.notified().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    // Error readiness too: a device deleted under its
                    // queue reports only EPOLLERR, never readable.
                    ready = fd.ready(Interest::READABLE | Interest::ERROR) => match ready {
                        Ok(guard) => Ready::Queue(guard),
                        // The reactor is gone (runtime shutting down): never ready.
                        Err(_) => std::future::pending().await,
                    },
                    () = siblings => Ready::Frames,
                }
            }
        }
    }
}

impl Device {
    pub(crate) fn waiter(&self) -> Waiter {
        match self {
            Device::Mem(port) => Waiter::Mem(port.ready()),
            Device::Tap(tap) => Waiter::Queue(tap.queue().fd().clone(), tap.neighbour_notify()),
            Device::Tun(tun) => Waiter::Queue(tun.queue().fd().clone(), None),
        }
    }

    /// The TAP or TUN queue underneath, if it is one.
    fn queue(&self) -> Option<&queue::Queue> {
        match self {
            Device::Mem(_) => None,
            Device::Tap(tap) => Some(tap.queue()),
            Device::Tun(tun) => Some(tun.queue()),
        }
    }

    fn queue_mut(&mut self) -> Option<&mut queue::Queue> {
        match self {
            Device::Mem(_) => None,
            Device::Tap(tap) => Some(tap.queue_mut()),
            Device::Tun(tun) => Some(tun.queue_mut()),
        }
    }

    /// What a frame of this device is: Ethernet, or (TUN) a bare IP packet.
    pub(crate) fn medium(&self) -> Medium {
        match (self, self.queue()) {
            (_, Some(queue)) => queue.medium(),
            (Device::Mem(port), None) => port.medium(),
            (_, None) => unreachable!("only a MemPort has no queue"),
        }
    }

    /// The device's descriptor was reported readable: the next receive
    /// reads it again (a queue read to EAGAIN is otherwise left alone).
    pub(crate) fn readable(&mut self) {
        if let Some(queue) = self.queue_mut() {
            queue.readable();
        }
    }

    /// True (once) when a receive found the device empty since last asked.
    pub(crate) fn take_drained(&mut self) -> bool {
        match self.queue_mut() {
            None => true,
            Some(queue) => queue.take_drained(),
        }
    }
}

/// A received frame of any device.
pub(crate) enum RxToken<'a> {
    Mem(mem::RxToken<'a>),
    Queue(queue::RxToken<'a>),
}

/// A frame to send on any device.
pub(crate) enum TxToken<'a> {
    Mem(mem::TxToken<'a>),
    Queue(queue::TxToken<'a>),
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        match self {
            RxToken::Mem(t) => t.consume(f),
            RxToken::Queue(t) => t.consume(f),
        }
    }
}

impl phy::TxToken for TxToken<'_> {
    fn set_meta(&mut self, meta: phy::PacketMeta) {
        if let TxToken::Queue(t) = self {
            t.set_meta(meta);
        }
    }

    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        match self {
            TxToken::Mem(t) => t.consume(len, f),
            TxToken::Queue(t) => t.consume(len, f),
        }
    }
}

/// Where a received frame's IP packet starts and which version it is
/// (4 or 6): after the Ethernet header with its ethertype on
/// `Medium::Ethernet`, at once with its version nibble on `Medium::Ip`.
/// `None`: not IP (ARP, say), or too short to tell.
pub(crate) fn ip_packet(frame: &[u8], medium: Medium) -> Option<(u8, &[u8])> {
    const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
    const ETHERTYPE_IPV6: [u8; 2] = [0x86, 0xdd];
    match medium {
        Medium::Ethernet => match frame.get(12..14)? {
            t if t == ETHERTYPE_IPV4 => Some((4, &frame[14..])),
            t if t == ETHERTYPE_IPV6 => Some((6, &frame[14..])),
            _ => None,
        },
        Medium::Ip => match frame.first()? >> 4 {
            v @ (4 | 6) => Some((v, frame)),
            _ => None,
        },
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Whether a received frame goes on to smoltcp: anything but an IP
/// packet addressed to another address than the stack's own, `me` (any
/// of a family the stack has no address of), or IPv4 from the
/// unspecified address.
///
/// smoltcp takes IPv4 sent to the broadcast and multicast addresses too,
/// and answers a TCP segment sent there from that address: a SYN-ACK or a
/// reset whose source is 255.255.255.255 (found by the `utcp_rx` fuzz
/// target). The stack is a TCP host with one address and routes nothing,
/// so nothing sent to another address is for it; those frames are dropped
/// here, as a NIC's filter would. (A ping to a broadcast address goes
/// unanswered with them.) So is IPv4 from the unspecified address 0.0.0.0,
/// which smoltcp takes (for DHCP) and then panics answering: a SYN from
/// 0.0.0.0 ended the stack's driver task (`assert!(!dst.is_unspecified())`
/// in smoltcp's `dispatch_ip`; found by the 30-minute `utcp_rx` run).
pub(crate) fn for_us(frame: &[u8], me: &Addrs, medium: Medium) -> bool {
    match ip_packet(frame, medium) {
        // Not IP (ARP, or nothing smoltcp will take): smoltcp decides.
        None => true,
        Some((6, packet)) => {
            // To our address, or multicast (NDP's solicitations go to the
            // solicited-node group); nothing at all without an IPv6 address.
            let Some(v6) = me.v6 else { return false };
            let Some(dst) = packet.get(24..40) else {
                return true;
            };
            dst == v6.octets() || dst[0] == 0xff
        }
        Some((_, packet)) => {
            // Too short to hold the addresses: smoltcp refuses it itself.
            let (Some(src), Some(dst)) = (packet.get(12..16), packet.get(16..20)) else {
                return true;
            };
            me.v4.is_some_and(|v4| dst == v4.octets()) && src != [0; 4]
        }
    }
}

/// The device as smoltcp drives it (a crate-private wrapper, so the token
/// types stay private), with the stack's address, which received IPv4
/// packets must be addressed to ([`for_us`]).
///
/// A frame is received in two steps, so the stack can see which
/// connection it is for before smoltcp takes it: [`stage`](Driven::stage)
/// reads it, [`staged`](Driven::staged) shows it, and smoltcp's `receive`
/// then hands over that one frame (and nothing when none is staged).
#[derive(Debug)]
pub(crate) struct Driven(pub(crate) Device, pub(crate) Addrs);

/// The stack's own addresses, which received packets must be sent to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Addrs {
    pub(crate) v4: Option<Ipv4Addr>,
    pub(crate) v6: Option<Ipv6Addr>,
}

impl Addrs {
    /// The stack's address of `peer`'s family, if it has one.
    pub(crate) fn matching(&self, peer: IpAddr) -> Option<IpAddr> {
        match peer {
            IpAddr::V4(_) => self.v4.map(IpAddr::V4),
            IpAddr::V6(_) => self.v6.map(IpAddr::V6),
        }
    }
}

impl Driven {
    /// Reads the next frame for this stack; false when there is none.
    pub(crate) fn stage(&mut self) -> bool {
        match &mut self.0 {
            Device::Mem(port) => port.stage(&self.1),
            Device::Tap(tap) => tap.stage(&self.1),
            Device::Tun(tun) => tun.stage(&self.1),
        }
    }

    /// The staged frame.
    pub(crate) fn staged(&self) -> Option<&[u8]> {
        match &self.0 {
            Device::Mem(port) => port.staged(),
            dev => dev.queue()?.staged(),
        }
    }

    /// Why the device can no longer be read (a TAP or TUN device deleted
    /// under its queue), once a read found that; with the device's name.
    pub(crate) fn gone(&self) -> Option<(i32, &str)> {
        let queue = self.0.queue()?;
        queue.gone().map(|errno| (errno, queue.name()))
    }

    /// Drops the staged frame: no one takes it.
    pub(crate) fn discard(&mut self) {
        match &mut self.0 {
            Device::Mem(port) => port.discard(),
            dev => dev.queue_mut().expect("a queue").discard(),
        }
    }
}

impl phy::Device for Driven {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        match &mut self.0 {
            Device::Mem(port) => port
                .receive()
                .map(|(r, t)| (RxToken::Mem(r), TxToken::Mem(t))),
            dev => dev
                .queue_mut()?
                .receive()
                .map(|(r, t)| (RxToken::Queue(r), TxToken::Queue(t))),
        }
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        match &mut self.0 {
            Device::Mem(port) => Some(TxToken::Mem(port.transmit())),
            dev => Some(TxToken::Queue(dev.queue_mut()?.transmit())),
        }
    }

    fn capabilities(&self) -> DeviceCapabilities {
        match &self.0 {
            Device::Mem(port) => port.capabilities(),
            dev => dev.queue().expect("a queue").capabilities(),
        }
    }
}
