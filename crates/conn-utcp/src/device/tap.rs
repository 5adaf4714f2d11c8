//! `Tap`: one queue of a Linux TAP device (`/dev/net/tun`, `IFF_TAP |
//! IFF_NO_PI | IFF_MULTI_QUEUE`), read and written without blocking and
//! waited on through tokio's `AsyncFd`, never by polling in a loop.

use std::collections::VecDeque;
use std::fmt;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Arc, Mutex};

use conn_core::{Error, ErrorKind, Result};
use std::num::NonZeroUsize;

use smoltcp::phy::{Checksum, DeviceCapabilities, Medium, PacketMeta};

use super::vnet;
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

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

/// Frames as smoltcp counts them: the kernel's default TAP MTU (1500) plus
/// the 14-byte Ethernet header.
const TAP_MTU: usize = 1514;

/// The largest frame either way with offloads on: a 64 KiB TCP segment
/// (IPv4's total length is 16 bits) behind its Ethernet header.
const GSO_FRAME: usize = 14 + 65535;

/// The offloads asked of the kernel: checksums left to whoever needs them
/// and TCP segmentation both ways (TSO6 too, for when the stack speaks
/// IPv6; the kernel refuses TSO without CSUM).
const OFFLOADS: libc::c_uint = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6;

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
    fd: Arc<AsyncFd<OwnedFd>>,
    name: String,
    /// A `virtio_net_hdr` then the frame, as the queue reads and writes
    /// them.
    rx: Box<[u8]>,
    tx: Box<[u8]>,
    /// The length of the frame in `rx` (after its header) that
    /// [`stage`](Tap::stage) read, not yet handed to smoltcp.
    staged: Option<usize>,
    /// The kernel took [`OFFLOADS`] for this queue.
    offload: bool,
    /// The errno of a read that failed for good: the device was deleted
    /// under the queue (`EBADFD`) or broke.
    gone: Option<i32>,
    drained: bool,
    /// This queue's place among its siblings, in a StackGroup.
    share: Option<(Arc<ArpShare>, usize)>,
}

impl fmt::Debug for Tap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tap({}, fd {})", self.name, self.fd.as_raw_fd())
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
        if name.is_empty() || name.len() >= libc::IFNAMSIZ {
            return Err(Error::new(ErrorKind::InvalidType)
                .during("open tap")
                .on(name)
                .detail("an interface name has 1 to 15 bytes"));
        }
        (0..n.max(1)).map(|_| Tap::open_queue(name)).collect()
    }

    fn open_queue(name: &str) -> Result<Tap> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .map_err(|e| Error::io(e, "open tap", "/dev/net/tun"))?;
        let fd = OwnedFd::from(file);
        // SAFETY: `ifreq` is plain old data, all zeroes is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
            *dst = src as libc::c_char;
        }
        req.ifr_ifru.ifru_flags =
            (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_MULTI_QUEUE | libc::IFF_VNET_HDR) as _;
        // SAFETY: `fd` is an open /dev/net/tun descriptor and `req` a live,
        // NUL-terminated `ifreq` (the name is shorter than IFNAMSIZ, checked
        // above, and the rest is zero) that TUNSETIFF reads and writes.
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req) };
        if rc < 0 {
            return Err(Error::io(io::Error::last_os_error(), "open tap", name));
        }
        // Without the offloads (an old kernel, a seccomp filter) the queue
        // still works, frame by frame with checksums in software; the
        // header is there either way, all zeroes then.
        // SAFETY: TUNSETOFFLOAD takes its flags by value on an open tun fd.
        let offload = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETOFFLOAD, OFFLOADS) } == 0;
        // SAFETY: an `OwnedFd` holds a valid, open descriptor that stays
        // open and names the same file description until the `OwnedFd` is
        // dropped, which happens only with the `AsyncFd` that owns it; its
        // `as_raw_fd` always returns that one descriptor.
        let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
            .map_err(|e| Error::io(e.into_parts().1, "open tap", name))?;
        Ok(Tap {
            fd: Arc::new(fd),
            name: name.to_owned(),
            rx: vec![0; vnet::LEN + GSO_FRAME].into_boxed_slice(),
            tx: vec![0; vnet::LEN + GSO_FRAME].into_boxed_slice(),
            staged: None,
            offload,
            gone: None,
            drained: false,
            share: None,
        })
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn fd(&self) -> &Arc<AsyncFd<OwnedFd>> {
        &self.fd
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

    pub(super) fn take_drained(&mut self) -> bool {
        std::mem::take(&mut self.drained)
    }

    /// Reads the next frame for `me` into `rx` (dropping those for other
    /// addresses); false when the device is drained.
    pub(super) fn stage(&mut self, me: &super::Addrs) -> bool {
        self.staged = None;
        let (n, from_sibling) = loop {
            let from_sibling = self.share.as_ref().and_then(|(share, i)| {
                let frame = share.inboxes[*i].0.lock().ok()?.pop_front()?;
                let n = frame.len().min(self.rx.len() - vnet::LEN);
                self.rx[..vnet::LEN].fill(0);
                self.rx[vnet::LEN..vnet::LEN + n].copy_from_slice(&frame[..n]);
                Some((vnet::LEN + n) as isize)
            });
            let n = match from_sibling {
                Some(n) => n,
                // SAFETY: reads at most `rx.len()` bytes into the live buffer `rx`.
                None => unsafe {
                    libc::read(
                        self.fd.as_raw_fd(),
                        self.rx.as_mut_ptr().cast(),
                        self.rx.len(),
                    )
                },
            };
            if n < 0 {
                let errno = io::Error::last_os_error()
                    .raw_os_error()
                    .unwrap_or(libc::EIO);
                if errno == libc::EINTR {
                    continue;
                }
                if errno != libc::EAGAIN {
                    self.gone = Some(errno);
                }
                // Nothing more until the fd is readable (or ever, if gone).
                self.drained = true;
                return false;
            }
            // A read shorter than its header is not a frame.
            let Some(n) = (n as usize).checked_sub(vnet::LEN) else {
                continue;
            };
            let frame = &self.rx[vnet::LEN..vnet::LEN + n];
            if !super::for_us(frame, me) {
                continue;
            }
            // With offloads smoltcp checks no TCP checksum: the header
            // says which ones are due (see `vnet`).
            let hdr = vnet::Repr::parse(&self.rx).expect("the buffer holds a header");
            if self.offload && !vnet::rx_checksum_holds(&hdr, frame) {
                continue;
            }
            break (n, from_sibling.is_some());
        };
        let frame = &self.rx[vnet::LEN..vnet::LEN + n];
        if let (false, Some((share, me))) = (from_sibling, &self.share)
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
        self.staged = Some(n);
        true
    }

    pub(super) fn staged(&self) -> Option<&[u8]> {
        self.staged.map(|n| &self.rx[vnet::LEN..vnet::LEN + n])
    }

    /// Drops the staged frame unread.
    pub(super) fn discard(&mut self) {
        self.staged = None;
    }

    /// The staged frame, for smoltcp.
    pub(super) fn receive(&mut self) -> Option<(RxToken<'_>, TxToken<'_>)> {
        let n = self.staged.take()?;
        Some((
            RxToken {
                frame: &self.rx[vnet::LEN..vnet::LEN + n],
            },
            TxToken {
                fd: &self.fd,
                buf: &mut self.tx,
                offload: self.offload,
                gso: None,
            },
        ))
    }

    pub(super) fn transmit(&mut self) -> TxToken<'_> {
        TxToken {
            fd: &self.fd,
            buf: &mut self.tx,
            offload: self.offload,
            gso: None,
        }
    }

    /// The errno of the read that found the device gone, if one did.
    pub(super) fn gone(&self) -> Option<i32> {
        self.gone
    }

    /// Whether the kernel took the offloads (checksums and TCP
    /// segmentation) for this queue; without them it works frame by frame.
    pub fn offloads(&self) -> bool {
        self.offload
    }

    pub(super) fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        // The MSS smoltcp advertises and segments to stays the wire's.
        caps.max_transmission_unit = TAP_MTU;
        if self.offload {
            caps.checksum.tcp = Checksum::None;
            caps.segmentation.tcpv4 = NonZeroUsize::new(GSO_FRAME - 14);
            // Not `tcpv6`: smoltcp 0.14 builds the long segment but its
            // IPv6 dispatch then drops every packet above the MTU ("IPv6
            // fragmentation support is unimplemented") without looking at
            // the segmentation request, so a connection would send nothing.
            // IPv6 goes out MSS by MSS (checksums still offloaded); the
            // kernel's 64 KiB IPv6 segments are taken all the same.
        }
        caps
    }
}

pub(crate) struct RxToken<'a> {
    frame: &'a [u8],
}

impl RxToken<'_> {
    pub(super) fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.frame)
    }
}

pub(crate) struct TxToken<'a> {
    fd: &'a AsyncFd<OwnedFd>,
    buf: &'a mut [u8],
    offload: bool,
    /// The segment size smoltcp asked the device to split this frame to.
    gso: Option<u16>,
}

impl TxToken<'_> {
    pub(super) fn set_meta(&mut self, meta: PacketMeta) {
        self.gso = meta.segmentation_offload_size.map(|s| s.get());
    }

    pub(super) fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let len = len.min(self.buf.len() - vnet::LEN);
        let (hdr, frame) = self.buf[..vnet::LEN + len].split_at_mut(vnet::LEN);
        let r = f(frame);
        let repr = match self.offload {
            true => vnet::prepare_tx(frame, self.gso),
            false => vnet::Repr::default(),
        };
        repr.emit(hdr);
        // SAFETY: writes the initialised header and frame, `vnet::LEN +
        // len` bytes of the live buffer `buf`. A full queue (EAGAIN) drops
        // the frame, as a NIC would; TCP resends.
        unsafe {
            libc::write(
                self.fd.as_raw_fd(),
                self.buf.as_ptr().cast(),
                vnet::LEN + len,
            )
        };
        r
    }
}
