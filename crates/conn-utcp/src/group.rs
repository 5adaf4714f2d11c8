//! `StackGroup`: N stacks, one per queue of a multi-queue TAP or TUN device.

use conn_core::Result;
use smoltcp::wire::{IpCidr, Ipv4Cidr};

use crate::{Device, Stack, StackBuilder, Tap, Tun, UtcpListener};

/// N [`Stack`]s sharing one address, each owning one queue of a
/// multi-queue TAP or TUN device (mTCP's one context per core).
///
/// Flows never cross stacks: the kernel picks the queue of each frame it
/// sends by flow hash and, for a flow whose frames it has seen coming from
/// a queue, answers on that queue (tun's flow steering), so every segment
/// of a connection reaches the stack that owns its socket. Each stack gets
/// its own slice of the ephemeral ports, so two stacks never build the
/// same four-tuple, and a server listens on every stack
/// ([`StackGroup::listen`]). On a TAP device, ARP and NDP frames are the
/// exception: the kernel hands an ARP reply or a neighbour advertisement
/// to any queue, so each stack passes those frames to its siblings and all
/// of them learn every neighbour. A TUN device has no neighbours to learn.
///
/// Every stack's driver is spawned on the runtime that builds the group.
/// For mTCP's strict shape (one thread per core, nothing shared), build
/// each stack with [`Stack::builder`] on its own thread's current-thread
/// runtime from the queues of [`Tap::open_queues`] instead; a group does
/// not pin threads to cores itself.
///
/// ```no_run
/// use conn_utcp::StackGroup;
///
/// # #[tokio::main] async fn main() -> conn_core::Result<()> {
/// let group = StackGroup::tap("tap7", 2, "10.7.0.2/24".parse().unwrap())?;
/// let listeners = group.listen(8080, 64)?;   // one per stack; accept on each
/// assert_eq!(listeners.len(), 2);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct StackGroup {
    stacks: Vec<Stack>,
}

impl StackGroup {
    /// Opens `n` queues of TAP device `name` and builds one stack on each,
    /// all at `cidr` (and one MAC, derived from it).
    pub fn tap(name: &str, n: usize, cidr: Ipv4Cidr) -> Result<StackGroup> {
        StackGroup::from_taps(Tap::open_queues(name, n)?, cidr)
    }

    /// Opens `n` queues of TUN device `name` and builds one stack on each,
    /// all at `cidr`. With no link layer there is no ARP to pass around:
    /// the stacks share nothing but the address.
    ///
    /// ```no_run
    /// use conn_utcp::StackGroup;
    ///
    /// # #[tokio::main] async fn main() -> conn_core::Result<()> {
    /// let group = StackGroup::tun("tun7", 2, "10.7.0.2/24".parse().unwrap())?;
    /// assert_eq!(group.listen(8080, 64)?.len(), 2);
    /// # Ok(()) }
    /// ```
    pub fn tun(name: &str, n: usize, cidr: Ipv4Cidr) -> Result<StackGroup> {
        StackGroup::from_queues(Tun::open_queues(name, n)?, cidr)
    }

    /// One stack on each of `queues` (queues of one TAP device, from
    /// [`Tap::open_queues`]), all at `cidr`.
    pub fn from_taps(queues: Vec<Tap>, cidr: Ipv4Cidr) -> Result<StackGroup> {
        StackGroup::from_queues(queues, cidr)
    }

    /// One stack on each of `queues` (queues of one TAP or TUN device,
    /// from [`Tap::open_queues`] or [`Tun::open_queues`]), all at `cidr`.
    pub fn from_queues<D: Into<Device>>(queues: Vec<D>, cidr: Ipv4Cidr) -> Result<StackGroup> {
        let stacks = StackGroup::builders(queues, cidr)
            .into_iter()
            .map(StackBuilder::build)
            .collect::<Result<Vec<_>>>()?;
        Ok(StackGroup { stacks })
    }

    /// The builders of the stacks [`from_queues`](StackGroup::from_queues)
    /// would build: one per queue (of a TAP or a TUN device), all at
    /// `cidr`, each with its own slice of the ephemeral ports, TAP queues
    /// passing ARP and NDP frames to each other. Build each
    /// on the thread whose runtime is to drive it, for mTCP's strict shape
    /// (e.g. in `conn_core::serve::Server::serve_with`).
    ///
    /// `cidr` is IPv4 or IPv6 (an `Ipv4Cidr` or an `Ipv6Cidr`); add the
    /// other family's address to each builder for dual-stack stacks.
    pub fn builders<D: Into<Device>>(queues: Vec<D>, cidr: impl Into<IpCidr>) -> Vec<StackBuilder> {
        let cidr = cidr.into();
        let n = queues.len().max(1) as u32;
        let share = crate::device::NeighbourShare::new(queues.len());
        let span = (65535 - 49152 + 1) / n;
        queues
            .into_iter()
            .enumerate()
            .map(|(i, queue)| {
                let mut device = queue.into();
                if let Device::Tap(tap) = &mut device {
                    tap.share_neighbours(share.clone(), i);
                }
                let first = 49152 + i as u32 * span;
                let builder = match cidr {
                    IpCidr::Ipv4(v4) => Stack::builder(device).address(v4),
                    IpCidr::Ipv6(v6) => Stack::builder(device).address_v6(v6),
                };
                builder.ephemeral_ports(first as u16, (first + span - 1) as u16)
            })
            .collect()
    }

    /// The stacks, one per queue.
    pub fn stacks(&self) -> &[Stack] {
        &self.stacks
    }

    /// Listens on `port` of every stack, `backlog` each.
    pub fn listen(&self, port: u16, backlog: usize) -> Result<Vec<UtcpListener>> {
        self.stacks
            .iter()
            .map(|s| UtcpListener::bind(s, port, backlog))
            .collect()
    }
}
