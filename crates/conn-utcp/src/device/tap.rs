//! `Tap`: one queue of a Linux TAP device (`/dev/net/tun`, `IFF_TAP |
//! IFF_NO_PI | IFF_MULTI_QUEUE`), on the queue code it shares with
//! [`Tun`](super::Tun) ([`super::queue`]); what is TAP's own is Ethernet
//! and ARP, which the stacks of one multi-queue device share.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};

use conn_core::Result;
use tokio::sync::Notify;

use super::queue::{Kind, Queue};

/// ARP frames shared among the stacks of one multi-queue device. The
/// stacks share one address and MAC, but the kernel hands an ARP reply to
/// whichever queue its hash picks, not to the stack that asked; so each
/// stack passes the ARP frames it reads to its siblings, and every stack
/// learns every neighbour.
#[derive(Debug, Default)]
pub(crate) struct ArpShare {
    inboxes: Vec<(Inbox, Arc<Notify>)>,
}

/// ARP frames from siblings, waiting for one queue's stack.
type Inbox = Mutex<VecDeque<Vec<u8>>>;

impl ArpShare {
    pub(crate) fn new(n: usize) -> Arc<ArpShare> {
        Arc::new(ArpShare {
            inboxes: (0..n)
                .map(|_| (Mutex::new(VecDeque::new()), Arc::new(Notify::new())))
                .collect(),
        })
    }
}

const ETHERTYPE_ARP: [u8; 2] = [0x08, 0x06];
/// ARP frames waiting for a sibling at most.
const ARP_INBOX: usize = 64;

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
    share: Option<(Arc<ArpShare>, usize)>,
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

    /// Joins this queue to `share` as sibling `index`.
    pub(crate) fn share_arp(&mut self, share: Arc<ArpShare>, index: usize) {
        self.share = Some((share, index));
    }

    /// What wakes this queue's driver besides the descriptor: ARP frames
    /// from siblings.
    pub(crate) fn arp_notify(&self) -> Option<Arc<Notify>> {
        self.share
            .as_ref()
            .map(|(share, i)| share.inboxes[*i].1.clone())
    }

    /// Reads the next frame for `me` (a sibling's ARP frame first, if one
    /// waits); false when the device is drained. An ARP frame read from
    /// the device goes to the siblings too.
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
            && frame.get(12..14) == Some(&ETHERTYPE_ARP[..])
        {
            for (i, (inbox, notify)) in share.inboxes.iter().enumerate() {
                if i != *me {
                    // Bounded: a sibling that lags loses ARP frames,
                    // as a busy NIC would, and asks again.
                    if let Ok(mut inbox) = inbox.lock()
                        && inbox.len() < ARP_INBOX
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
