//! `Tap`: one queue of a Linux TAP device (`/dev/net/tun`, `IFF_TAP |
//! IFF_NO_PI | IFF_MULTI_QUEUE`), on the queue code it shares with
//! [`Tun`](super::Tun) ([`super::queue`]); what is TAP's own is Ethernet,
//! with ARP and NDP, which the stacks of one multi-queue device share.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};

use conn_core::Result;
use tokio::sync::Notify;

use super::queue::{Kind, Queue};

/// ARP and NDP frames shared among the stacks of one multi-queue device.
/// The stacks share their addresses and MAC, but the kernel hands an ARP
/// reply or a neighbour advertisement to whichever queue its hash picks
/// (always the same one for a given neighbour), not to the stack that
/// asked; so each stack passes the ARP and NDP frames it reads to its
/// siblings, and every stack learns every neighbour. (Without NDP shared,
/// an IPv6 flow steered to the other queue waited on its SYN-ACK until
/// the kernel's neighbour entry went stale: 5 s for 16 flows.)
#[derive(Debug, Default)]
pub(crate) struct NeighbourShare {
    inboxes: Vec<(Inbox, Arc<Notify>)>,
}

/// ARP and NDP frames from siblings, waiting for one queue's stack.
type Inbox = Mutex<VecDeque<Vec<u8>>>;

impl NeighbourShare {
    pub(crate) fn new(n: usize) -> Arc<NeighbourShare> {
        Arc::new(NeighbourShare {
            inboxes: (0..n)
                .map(|_| (Mutex::new(VecDeque::new()), Arc::new(Notify::new())))
                .collect(),
        })
    }
}

const ETHERTYPE_ARP: [u8; 2] = [0x08, 0x06];
const ETHERTYPE_IPV6: [u8; 2] = [0x86, 0xdd];
const ICMPV6: u8 = 58;
/// ICMPv6 neighbour solicitation and advertisement (RFC 4861).
const NDP: std::ops::RangeInclusive<u8> = 135..=136;
/// Frames waiting for a sibling at most.
const NEIGHBOUR_INBOX: usize = 64;

/// One queue of a Linux TAP device.
///
/// The device exists while a queue is open (it is not made persistent) and
/// is gone once the last queue is dropped. The kernel side of it is an
/// ordinary interface: give it an address, bring it up, and the kernel's
/// TCP talks to the [`Stack`](crate::Stack) that owns the queue. Opening
/// needs `CAP_NET_ADMIN`; it must happen inside a tokio runtime.
///
/// ```no_run
/// use conn_utcp::{Stack, Tap};
///
/// # #[tokio::main] async fn main() -> conn_core::Result<()> {
/// let tap = Tap::open("tap7")?;            // then: ip addr add 10.7.0.1/24 dev tap7; ip link set tap7 up
/// let stack = Stack::builder(tap).address("10.7.0.2/24".parse().unwrap()).build()?;
/// # drop(stack); Ok(()) }
/// ```
pub struct Tap {
    queue: Queue,
    /// This queue's place among its siblings, in a StackGroup.
    share: Option<(Arc<NeighbourShare>, usize)>,
}

impl fmt::Debug for Tap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tap({:?})", self.queue)
    }
}

impl Tap {
    /// Opens (creating it if needed) the TAP device `name` with one queue.
    pub fn open(name: &str) -> Result<Tap> {
        let mut queues = Tap::open_queues(name, 1)?;
        Ok(queues.pop().expect("one queue"))
    }

    /// Opens `n` queues of the multi-queue TAP device `name`, one for each
    /// stack of a [`StackGroup`](crate::StackGroup). The kernel spreads the
    /// flows it sends over the queues by flow hash and remembers, per flow,
    /// the queue a reply came from, so a flow stays on one stack.
    pub fn open_queues(name: &str, n: usize) -> Result<Vec<Tap>> {
        let queues = Queue::open_all(Kind::Tap, name, n)?;
        Ok(queues
            .into_iter()
            .map(|queue| Tap { queue, share: None })
            .collect())
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        self.queue.name()
    }

    /// Whether the kernel took the offloads (checksums and TCP
    /// segmentation) for this queue; without them it works frame by frame.
    pub fn offloads(&self) -> bool {
        self.queue.offloads()
    }

    /// This queue frame by frame, as when the kernel refuses the
    /// offloads: every frame within the MTU, checksums computed and checked
    /// by the stack. For a device bridged to hardware that must see
    /// finished checksums, or to compare the two paths; call it before the
    /// queue goes to a [`Stack`](crate::Stack).
    pub fn without_offloads(mut self) -> Result<Tap> {
        self.queue.disable_offloads()?;
        Ok(self)
    }

    /// Joins this queue to `share` as sibling `index`.
    pub(crate) fn share_neighbours(&mut self, share: Arc<NeighbourShare>, index: usize) {
        self.share = Some((share, index));
    }

    /// What wakes this queue's driver besides the descriptor: ARP and NDP
    /// frames from siblings.
    pub(crate) fn neighbour_notify(&self) -> Option<Arc<Notify>> {
        self.share
            .as_ref()
            .map(|(share, i)| share.inboxes[*i].1.clone())
    }

    /// Reads the next frame for `me` (a sibling's ARP or NDP frame first,
    /// if one waits); false when the device is drained. An ARP or NDP
    /// frame read from the device goes to the siblings too.
    pub(super) fn stage(&mut self, me: &super::Addrs) -> bool {
        let share = &self.share;
        let from_sibling = |buf: &mut [u8]| {
            let (share, i) = share.as_ref()?;
            let frame = share.inboxes[*i].0.lock().ok()?.pop_front()?;
            let n = frame.len().min(buf.len());
            buf[..n].copy_from_slice(&frame[..n]);
            Some(n)
        };
        let Some(injected) = self.queue.stage(me, from_sibling) else {
            return false;
        };
        let frame = self.queue.staged().expect("just staged");
        if let (false, Some((share, me))) = (injected, &self.share)
            && tells_of_a_neighbour(frame)
        {
            for (i, (inbox, notify)) in share.inboxes.iter().enumerate() {
                if i != *me {
                    // Bounded: a sibling that lags loses these frames,
                    // as a busy NIC would, and asks again.
                    if let Ok(mut inbox) = inbox.lock()
                        && inbox.len() < NEIGHBOUR_INBOX
                    {
                        inbox.push_back(frame.to_vec());
                    }
                    notify.notify_one();
                }
            }
        }
        true
    }

    pub(super) fn queue(&self) -> &Queue {
        &self.queue
    }

    pub(super) fn queue_mut(&mut self) -> &mut Queue {
        &mut self.queue
    }
}

/// Whether an Ethernet frame is ARP, or an IPv6 neighbour solicitation or
/// advertisement (ICMPv6 right after the fixed header, as NDP always is).
fn tells_of_a_neighbour(frame: &[u8]) -> bool {
    match frame.get(12..14) {
        Some(t) if t == ETHERTYPE_ARP => true,
        Some(t) if t == ETHERTYPE_IPV6 => {
            frame.get(20) == Some(&ICMPV6) && frame.get(54).is_some_and(|t| NDP.contains(t))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzzing::{arp_request, ethernet};

    #[test]
    fn arp_and_ndp_are_shared_and_other_icmpv6_is_not() {
        assert!(tells_of_a_neighbour(&arp_request()));
        let icmpv6 = |kind: u8| {
            let mut p = vec![0x60, 0, 0, 0, 0, 8, ICMPV6, 255];
            p.extend_from_slice(&[0; 32]);
            p.extend_from_slice(&[kind, 0, 0, 0, 0, 0, 0, 0]);
            ethernet(0x86dd, &p)
        };
        assert!(tells_of_a_neighbour(&icmpv6(135)));
        assert!(tells_of_a_neighbour(&icmpv6(136)));
        // An echo request must be answered once, by the queue it came to.
        assert!(!tells_of_a_neighbour(&icmpv6(128)));
        assert!(!tells_of_a_neighbour(&icmpv6(136)[..54]));
    }
}
