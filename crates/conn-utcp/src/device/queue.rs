//! `Queue`: one queue of a Linux tun/tap device (`/dev/net/tun`), the part
//! [`Tap`](super::Tap) and [`Tun`](super::Tun) share: opening it
//! (`TUNSETIFF` with `IFF_NO_PI | IFF_MULTI_QUEUE | IFF_VNET_HDR`, then
//! `TUNSETOFFLOAD`, frame by frame when the kernel refuses), reading and
//! writing without blocking behind a `virtio_net_hdr`, waiting through
//! tokio's `AsyncFd` (never by polling in a loop), and noticing the device
//! deleted under it. The two differ only in what a frame is: an Ethernet
//! frame ([`Kind::Tap`]) or a bare IP packet ([`Kind::Tun`]).

use std::fmt;
use std::fs::OpenOptions;
use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;

use conn_core::{Error, ErrorKind, Result};
use smoltcp::phy::{Checksum, DeviceCapabilities, Medium, PacketMeta};
use tokio::io::unix::AsyncFd;

use super::vnet;

/// Which of the two a queue is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// `IFF_TAP`: Ethernet frames.
    Tap,
    /// `IFF_TUN`: IP packets, no link header.
    Tun,
}

impl Kind {
    fn flag(self) -> libc::c_int {
        match self {
            Kind::Tap => libc::IFF_TAP,
            Kind::Tun => libc::IFF_TUN,
        }
    }

    /// What an error says was being done, naming the kind of device.
    fn opening(self) -> &'static str {
        match self {
            Kind::Tap => "open tap",
            Kind::Tun => "open tun",
        }
    }

    /// Why TUNSETIFF refuses a valid name (`EINVAL`): an interface of
    /// another kind has it.
    fn name_taken(self) -> &'static str {
        match self {
            Kind::Tap => "the name is taken by an interface that is not a TAP device (a TUN, say)",
            Kind::Tun => "the name is taken by an interface that is not a TUN device (a TAP, say)",
        }
    }

    fn medium(self) -> Medium {
        match self {
            Kind::Tap => Medium::Ethernet,
            Kind::Tun => Medium::Ip,
        }
    }

    /// Frames as smoltcp counts them: the kernel's default MTU (1500),
    /// plus the 14-byte Ethernet header on a TAP device.
    fn mtu(self) -> usize {
        match self {
            Kind::Tap => 1514,
            Kind::Tun => 1500,
        }
    }
}

/// The largest frame either way with offloads on: a 64 KiB TCP segment
/// (IPv4's total length is 16 bits), behind an Ethernet header on TAP.
const GSO_PACKET: usize = 65535;
const BUFFER: usize = vnet::LEN + 14 + GSO_PACKET;

/// The offloads asked of the kernel: checksums left to whoever needs them
/// and TCP segmentation both ways (TSO6 too, for when the stack speaks
/// IPv6; the kernel refuses TSO without CSUM).
const OFFLOADS: libc::c_uint = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6;

/// One open queue of a tun/tap device.
pub(super) struct Queue {
    fd: Arc<AsyncFd<OwnedFd>>,
    name: String,
    kind: Kind,
    /// A `virtio_net_hdr` then the frame, as the queue reads and writes
    /// them.
    rx: Box<[u8]>,
    tx: Box<[u8]>,
    /// The length of the frame in `rx` (after its header) that
    /// [`stage`](Queue::stage) read, not yet handed to smoltcp.
    staged: Option<usize>,
    /// The kernel took [`OFFLOADS`] for this queue.
    offload: bool,
    /// The errno of a read that failed for good: the device was deleted
    /// under the queue (`EBADFD`) or broke.
    gone: Option<i32>,
    drained: bool,
    /// Read to `EAGAIN` with no readiness reported since: the queue is
    /// known empty, so a turn the stack takes for another reason (a socket
    /// call's kick, a timer) does not spend a `read` to learn it again.
    /// The reactor is edge-triggered: a frame that arrives after the
    /// `EAGAIN` is reported, and [`readable`](Queue::readable) ends this.
    quiet: bool,
}

impl fmt::Debug for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, fd {}", self.name, self.fd.as_raw_fd())
    }
}

impl Queue {
    /// Opens `n` (at least one) queues of the `kind` device `name`,
    /// creating it if needed; it must happen inside a tokio runtime.
    pub(super) fn open_all(kind: Kind, name: &str, n: usize) -> Result<Vec<Queue>> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ {
            return Err(Error::new(ErrorKind::InvalidType)
                .during(kind.opening())
                .on(name)
                .detail("an interface name has 1 to 15 bytes"));
        }
        (0..n.max(1)).map(|_| Queue::open(kind, name)).collect()
    }

    fn open(kind: Kind, name: &str) -> Result<Queue> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .map_err(|e| Error::io(e, kind.opening(), "/dev/net/tun"))?;
        let fd = OwnedFd::from(file);
        // SAFETY: `ifreq` is plain old data, all zeroes is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
            *dst = src as libc::c_char;
        }
        req.ifr_ifru.ifru_flags =
            (kind.flag() | libc::IFF_NO_PI | libc::IFF_MULTI_QUEUE | libc::IFF_VNET_HDR) as _;
        // SAFETY: `fd` is an open /dev/net/tun descriptor and `req` a live,
        // NUL-terminated `ifreq` (the name is shorter than IFNAMSIZ, checked
        // by `open_all`, and the rest is zero) that TUNSETIFF reads and writes.
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            let hint = match e.raw_os_error() {
                Some(libc::EINVAL) => Some(kind.name_taken()),
                Some(libc::EPERM) => Some("opening needs CAP_NET_ADMIN"),
                _ => None,
            };
            let err = Error::io(e, kind.opening(), name);
            return Err(match hint {
                Some(hint) => err.detail(hint),
                None => err,
            });
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
            .map_err(|e| Error::io(e.into_parts().1, kind.opening(), name))?;
        Ok(Queue {
            fd: Arc::new(fd),
            name: name.to_owned(),
            kind,
            rx: vec![0; BUFFER].into_boxed_slice(),
            tx: vec![0; BUFFER].into_boxed_slice(),
            staged: None,
            offload,
            gone: None,
            drained: false,
            quiet: false,
        })
    }

    pub(super) fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn fd(&self) -> &Arc<AsyncFd<OwnedFd>> {
        &self.fd
    }

    pub(super) fn medium(&self) -> Medium {
        self.kind.medium()
    }

    pub(super) fn offloads(&self) -> bool {
        self.offload
    }

    /// Turns the offloads off (`TUNSETOFFLOAD` with no flags): frame by
    /// frame from here on, as when the kernel refuses them.
    pub(super) fn disable_offloads(&mut self) -> Result<()> {
        // SAFETY: TUNSETOFFLOAD takes its flags by value on an open tun fd.
        let rc =
            unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::TUNSETOFFLOAD, 0 as libc::c_uint) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return Err(Error::io(e, "turn the offloads off", &self.name));
        }
        self.offload = false;
        Ok(())
    }

    /// The reactor reported the descriptor readable (or in error).
    pub(super) fn readable(&mut self) {
        self.quiet = false;
    }

    pub(super) fn take_drained(&mut self) -> bool {
        std::mem::take(&mut self.drained)
    }

    /// Reads the next frame for `me` into `rx` (dropping those for other
    /// addresses, and those whose checksum fails where the kernel did not
    /// vouch for it); `None` when the device is drained. `inject` may
    /// supply a frame instead of the device (a sibling's ARP frame, on a
    /// TAP): it writes it into the buffer it is given and returns its
    /// length. Returns whether the staged frame was injected.
    pub(super) fn stage(
        &mut self,
        me: &super::Addrs,
        mut inject: impl FnMut(&mut [u8]) -> Option<usize>,
    ) -> Option<bool> {
        self.staged = None;
        let medium = self.kind.medium();
        loop {
            let injected = inject(&mut self.rx[vnet::LEN..]).map(|n| {
                self.rx[..vnet::LEN].fill(0);
                (vnet::LEN + n) as isize
            });
            let n = match injected {
                Some(n) => n,
                None if self.quiet => return None,
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
                self.quiet = true;
                return None;
            }
            // A read shorter than its header is not a frame.
            let Some(n) = (n as usize).checked_sub(vnet::LEN) else {
                continue;
            };
            let frame = &self.rx[vnet::LEN..vnet::LEN + n];
            if !super::for_us(frame, me, medium) {
                continue;
            }
            // With offloads smoltcp checks no TCP checksum: the header
            // says which ones are due (see `vnet`).
            let hdr = vnet::Repr::parse(&self.rx).expect("the buffer holds a header");
            if self.offload && !vnet::rx_checksum_holds(&hdr, frame, medium) {
                continue;
            }
            self.staged = Some(n);
            return Some(injected.is_some());
        }
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
        let rx = RxToken {
            frame: &self.rx[vnet::LEN..vnet::LEN + n],
        };
        Some((
            rx,
            TxToken::new(&self.fd, &mut self.tx, self.offload, self.kind),
        ))
    }

    pub(super) fn transmit(&mut self) -> TxToken<'_> {
        TxToken::new(&self.fd, &mut self.tx, self.offload, self.kind)
    }

    /// The errno of the read that found the device gone, if one did.
    pub(super) fn gone(&self) -> Option<i32> {
        self.gone
    }

    pub(super) fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = self.kind.medium();
        // The MSS smoltcp advertises and segments to stays the wire's.
        caps.max_transmission_unit = self.kind.mtu();
        if self.offload {
            caps.checksum.tcp = Checksum::None;
            caps.segmentation.tcpv4 = NonZeroUsize::new(GSO_PACKET);
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
    medium: Medium,
    /// The segment size smoltcp asked the device to split this frame to.
    gso: Option<u16>,
}

impl<'a> TxToken<'a> {
    fn new(fd: &'a AsyncFd<OwnedFd>, buf: &'a mut [u8], offload: bool, kind: Kind) -> Self {
        TxToken {
            fd,
            buf,
            offload,
            medium: kind.medium(),
            gso: None,
        }
    }

    pub(super) fn set_meta(&mut self, meta: PacketMeta) {
        self.gso = meta.segmentation_offload_size.map(|s| s.get());
    }

    pub(super) fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let len = len.min(self.buf.len() - vnet::LEN);
        let (hdr, frame) = self.buf[..vnet::LEN + len].split_at_mut(vnet::LEN);
        let r = f(frame);
        let repr = match self.offload {
            true => vnet::prepare_tx(frame, self.gso, self.medium),
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
