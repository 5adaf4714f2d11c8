//! `Tun`: one queue of a Linux TUN device (`/dev/net/tun`, `IFF_TUN |
//! IFF_NO_PI | IFF_MULTI_QUEUE`): bare IP packets, no link layer, on the
//! queue code it shares with [`Tap`](super::Tap) ([`super::queue`]).

use std::fmt;

use conn_core::Result;

use super::queue::{Kind, Queue};

/// One queue of a Linux TUN device: the stack that owns it sends and
/// receives IP packets (IPv4 and IPv6), with no Ethernet header, no MAC
/// and no ARP or NDP (smoltcp's `Medium::Ip`; a
/// [`StackBuilder::mac`](crate::StackBuilder::mac) is ignored).
///
/// As with a [`Tap`](crate::Tap), the device exists while a queue is open
/// and is gone once the last queue is dropped; its kernel side is an
/// ordinary interface to give addresses and bring up; the kernel's
/// checksum and segmentation offloads are asked for ([`Tun::offloads`]).
/// Opening needs `CAP_NET_ADMIN`; it must happen inside a tokio runtime.
/// A TUN deleted under its stack is handled as a TAP is: the stack's
/// connections are reset, and accept and connect fail naming the device.
///
/// ```no_run
/// use conn_utcp::{Stack, Tun};
///
/// # #[tokio::main] async fn main() -> conn_core::Result<()> {
/// let tun = Tun::open("tun7")?;   // then: ip addr add 10.7.0.1/24 dev tun7; ip link set tun7 up
/// assert_eq!(tun.name(), "tun7");
/// let stack = Stack::builder(tun)
///     .address("10.7.0.2/24".parse().unwrap())
///     .address_v6("fd07::2/64".parse().unwrap()) // and: ip addr add fd07::1/64 dev tun7
///     .build()?;
/// # drop(stack); Ok(()) }
/// ```
pub struct Tun {
    queue: Queue,
}

impl fmt::Debug for Tun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tun({:?})", self.queue)
    }
}

impl Tun {
    /// Opens (creating it if needed) the TUN device `name` with one queue.
    pub fn open(name: &str) -> Result<Tun> {
        let mut queues = Tun::open_queues(name, 1)?;
        Ok(queues.pop().expect("one queue"))
    }

    /// Opens `n` queues of the multi-queue TUN device `name`, one for each
    /// stack of a [`StackGroup`](crate::StackGroup) (see
    /// [`StackGroup::tun`](crate::StackGroup::tun)). The kernel steers each
    /// flow to one queue, as for a [`Tap`](crate::Tap); with no ARP, the
    /// stacks share nothing at all.
    pub fn open_queues(name: &str, n: usize) -> Result<Vec<Tun>> {
        let queues = Queue::open_all(Kind::Tun, name, n)?;
        Ok(queues.into_iter().map(|queue| Tun { queue }).collect())
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        self.queue.name()
    }

    /// Whether the kernel took the offloads (checksums and TCP
    /// segmentation) for this queue; without them it works packet by
    /// packet.
    pub fn offloads(&self) -> bool {
        self.queue.offloads()
    }

    /// This queue packet by packet, as when the kernel refuses the
    /// offloads: every packet within the MTU, checksums computed and checked
    /// by the stack. For a device bridged to hardware that must see
    /// finished checksums, or to compare the two paths; call it before the
    /// queue goes to a [`Stack`](crate::Stack).
    pub fn without_offloads(mut self) -> Result<Tun> {
        self.queue.disable_offloads()?;
        Ok(self)
    }

    /// Reads the next packet for `me`; false when the device is drained.
    pub(super) fn stage(&mut self, me: &super::Addrs) -> bool {
        self.queue.stage(me, |_| None).is_some()
    }

    pub(super) fn queue(&self) -> &Queue {
        &self.queue
    }

    pub(super) fn queue_mut(&mut self) -> &mut Queue {
        &mut self.queue
    }
}
