//! `MemLink`: two stacks wired back to back in one process, no kernel in
//! the path. Each direction is a queue of Ethernet frames (or IP
//! packets, [`MemLink::pair_ip`]) with a `Notify`
//! that wakes the receiving stack's driver; frame buffers are recycled
//! through a shared pool, so a steady transfer allocates nothing.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use smoltcp::phy::{ChecksumCapabilities, DeviceCapabilities, Medium};
use tokio::sync::Notify;

/// Ethernet MTU as smoltcp counts it (payload 1500 + 14-byte header).
const DEFAULT_MTU: usize = 1514;
/// Recycled buffers kept at most; more are freed.
const POOL_MAX: usize = 1024;

struct Queue {
    frames: Mutex<VecDeque<Vec<u8>>>,
    ready: Arc<Notify>,
}

struct Link {
    /// `queues[i]` holds the frames port `i` receives.
    queues: [Queue; 2],
    pool: Mutex<Vec<Vec<u8>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An in-memory Ethernet (or, [`MemLink::pair_ip`], IP) link between two
/// [`Stack`](crate::Stack)s.
///
/// ```
/// use conn_core::{Connection, Deadline, Listener};
/// use conn_utcp::{MemLink, Stack, UtcpListener, UtcpStream};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let (a, b) = MemLink::pair();
/// let server = Stack::builder(a).address("10.8.0.1/24".parse().unwrap()).build()?;
/// let client = Stack::builder(b).address("10.8.0.2/24".parse().unwrap()).build()?;
///
/// let mut listener = UtcpListener::bind(&server, 7, 4)?;
/// let mut c = UtcpStream::connect(&client, "10.8.0.1:7".parse().unwrap(), Deadline::NEVER).await?;
/// let mut s = listener.accept(Deadline::NEVER).await?;
/// c.write_all(b"hi").await?;
/// c.done(Deadline::NEVER).await?;
/// let mut got = Vec::new();
/// s.read_to_end(&mut got).await?;
/// assert_eq!(got, b"hi");
/// s.close(Deadline::NEVER).await?;
/// c.close(Deadline::NEVER).await?;
/// # Ok(()) }
/// ```
pub struct MemLink;

impl MemLink {
    /// Two ports of a fresh link with the Ethernet MTU.
    pub fn pair() -> (MemPort, MemPort) {
        MemLink::pair_with_mtu(DEFAULT_MTU)
    }

    /// Two ports of a fresh link carrying frames of up to `mtu` bytes
    /// (Ethernet header included, as smoltcp counts it).
    pub fn pair_with_mtu(mtu: usize) -> (MemPort, MemPort) {
        MemLink::pair_of(Medium::Ethernet, mtu)
    }

    /// Two ports of a fresh IP link: bare IPv4 and IPv6 packets of up to
    /// `mtu` bytes, no Ethernet header and no ARP or NDP, as a
    /// [`Tun`](crate::Tun) carries them (smoltcp's `Medium::Ip`).
    ///
    /// ```
    /// use conn_utcp::{MemLink, Stack};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
    /// let (a, b) = MemLink::pair_ip(1500);
    /// let one = Stack::builder(a).address("10.12.0.1/24".parse().unwrap()).build()?;
    /// # let _ = (one, b);
    /// # Ok(()) }
    /// ```
    pub fn pair_ip(mtu: usize) -> (MemPort, MemPort) {
        MemLink::pair_of(Medium::Ip, mtu)
    }

    fn pair_of(medium: Medium, mtu: usize) -> (MemPort, MemPort) {
        let queue = || Queue {
            frames: Mutex::new(VecDeque::new()),
            ready: Arc::new(Notify::new()),
        };
        let link = Arc::new(Link {
            queues: [queue(), queue()],
            pool: Mutex::new(Vec::new()),
        });
        (
            MemPort {
                link: link.clone(),
                side: 0,
                medium,
                mtu,
                staged: None,
            },
            MemPort {
                link,
                side: 1,
                medium,
                mtu,
                staged: None,
            },
        )
    }
}

/// One end of a [`MemLink`]; give it to [`Stack::builder`](crate::Stack::builder).
///
/// ```
/// use conn_utcp::{MemLink, Stack};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let (a, b) = MemLink::pair_with_mtu(9014); // jumbo frames
/// let one = Stack::builder(a).address("10.11.0.1/24".parse().unwrap()).build()?;
/// let two = Stack::builder(b).address("10.11.0.2/24".parse().unwrap()).build()?;
/// assert_ne!(one.number(), two.number());
/// # Ok(()) }
/// ```
pub struct MemPort {
    link: Arc<Link>,
    side: usize,
    medium: Medium,
    mtu: usize,
    /// The frame [`stage`](MemPort::stage) took off the queue, not yet
    /// handed to smoltcp.
    staged: Option<Vec<u8>>,
}

impl fmt::Debug for MemPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "MemPort({} of a link, {:?}, mtu {})",
            self.side, self.medium, self.mtu
        )
    }
}

impl MemPort {
    /// Sends one raw Ethernet frame to the other end, as if this end were
    /// a NIC: for a test or a bridge that plays the peer itself, rather
    /// than a [`Stack`](crate::Stack) owning this end.
    ///
    /// ```
    /// let (a, b) = conn_utcp::MemLink::pair();
    /// a.send_frame(&[0xff; 60]);
    /// assert_eq!(b.recv_frame().unwrap(), [0xff; 60]);
    /// assert!(b.recv_frame().is_none());
    /// ```
    pub fn send_frame(&self, frame: &[u8]) {
        let queue = &self.link.queues[1 - self.side];
        lock(&queue.frames).push_back(frame.to_vec());
        queue.ready.notify_one();
    }

    /// The next raw frame the other end sent to this one, if there is one
    /// (see [`MemPort::send_frame`]).
    pub fn recv_frame(&self) -> Option<Vec<u8>> {
        lock(&self.link.queues[self.side].frames).pop_front()
    }

    pub(crate) fn ready(&self) -> Arc<Notify> {
        self.link.queues[self.side].ready.clone()
    }

    /// Takes the next frame for `me` off the queue (dropping those for
    /// other addresses); false when the queue is empty.
    pub(super) fn stage(&mut self, me: &super::Addrs) -> bool {
        self.discard();
        loop {
            let Some(frame) = lock(&self.link.queues[self.side].frames).pop_front() else {
                return false;
            };
            if super::for_us(&frame, me, self.medium) {
                self.staged = Some(frame);
                return true;
            }
            self.recycle(frame);
        }
    }

    pub(super) fn staged(&self) -> Option<&[u8]> {
        self.staged.as_deref()
    }

    /// Drops the staged frame unread.
    pub(super) fn discard(&mut self) {
        if let Some(frame) = self.staged.take() {
            self.recycle(frame);
        }
    }

    fn recycle(&self, frame: Vec<u8>) {
        let mut pool = lock(&self.link.pool);
        if pool.len() < POOL_MAX {
            pool.push(frame);
        }
    }

    /// The staged frame, for smoltcp.
    pub(super) fn receive(&mut self) -> Option<(RxToken<'_>, TxToken<'_>)> {
        let frame = self.staged.take()?;
        Some((
            RxToken {
                link: &self.link,
                frame,
            },
            TxToken {
                link: &self.link,
                to: 1 - self.side,
            },
        ))
    }

    pub(super) fn transmit(&mut self) -> TxToken<'_> {
        TxToken {
            link: &self.link,
            to: 1 - self.side,
        }
    }

    pub(super) fn medium(&self) -> Medium {
        self.medium
    }

    pub(super) fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = self.medium;
        caps.max_transmission_unit = self.mtu;
        // Memory does not flip bits: skip computing and checking checksums.
        caps.checksum = ChecksumCapabilities::ignored();
        caps
    }
}

pub(crate) struct RxToken<'a> {
    link: &'a Link,
    frame: Vec<u8>,
}

impl RxToken<'_> {
    pub(super) fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let r = f(&self.frame);
        let mut pool = lock(&self.link.pool);
        if pool.len() < POOL_MAX {
            pool.push(self.frame);
        }
        r
    }
}

pub(crate) struct TxToken<'a> {
    link: &'a Link,
    to: usize,
}

impl TxToken<'_> {
    pub(super) fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = lock(&self.link.pool).pop().unwrap_or_default();
        frame.clear();
        frame.resize(len, 0);
        let r = f(&mut frame);
        let queue = &self.link.queues[self.to];
        lock(&queue.frames).push_back(frame);
        queue.ready.notify_one();
        r
    }
}
