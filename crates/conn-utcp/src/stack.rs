//! `Stack`: the per-core context (mTCP's `mctx_t`). It owns one smoltcp
//! `Interface`, its `SocketSet` and one device, and one tokio task drives
//! it.
//!
//! # Sharing
//!
//! The interface, sockets and device sit behind one `std::sync::Mutex`
//! held only for short, non-blocking sections (a poll of the interface, a
//! copy into or out of a socket buffer), so a `Stack` and its sockets are
//! `Send + Sync` and work from an ordinary multi-thread `#[tokio::main]`.
//! For mTCP's shape, one stack per core with nothing shared, run each
//! stack and its connections on its own current-thread runtime (see
//! [`StackGroup`](crate::StackGroup)); the mutex is then never contended.
//!
//! # One socket set per connection
//!
//! smoltcp offers each received segment to every socket of the set it is
//! polled with, and gives every socket an egress turn on every poll. The
//! stack keeps each connection in a set of its own instead
//! ([`crate::conns`]), finds a segment's connection by its
//! four-tuple before smoltcp takes it ([`crate::demux`]), and polls
//! egress only for the connections with something to do, so the cost of a
//! packet does not grow with the number of connections. TIME-WAIT needs
//! no socket at all ([`crate::time_wait`]).
//!
//! # The driver
//!
//! The task sleeps until the device has frames (a `Notify` for a
//! [`MemLink`](crate::MemLink), tokio's `AsyncFd` readiness for a
//! [`Tap`](crate::Tap) or [`Tun`](crate::Tun)), a socket operation kicks it (another `Notify`),
//! or smoltcp's `poll_delay` says a timer is due. It never polls in a loop.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::Waker;
use std::time::Duration;

use conn_core::{Deadline, Error, ErrorKind, Result};
use smoltcp::iface::{Config, Interface, PollResult, SocketSet};
use smoltcp::phy::{self, Medium};
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Cidr, Ipv6Cidr};
use tokio::sync::Notify;

use crate::conns::{Conns, Key, Owner};
use crate::demux::{self, Flow, Frame, Segment};
use crate::device::{Addrs, Device, Driven, Ready};
use crate::id::{Entry, SockId, Table};
use crate::time_wait::{self, TimeWait};

/// Stack numbers fit the 12 bits a [`SockId`] has for them.
const STACK_NUMBERS: u32 = 1 << 12;
static NEXT_STACK: AtomicU32 = AtomicU32::new(1);

/// Received frames one turn of the driver takes at most, so a flood on
/// one device cannot hold the stack's lock (and its sockets' callers)
/// for long; the driver comes back at once for the rest.
const FRAMES_PER_TURN: usize = 256;

/// Handshakes one listener has under way at most, whatever its backlog
/// (Linux's `tcp_max_syn_backlog`): each holds a socket with both its
/// buffers, so a flood of SYNs that never finish costs a bounded amount.
const SYN_BACKLOG: usize = 1024;

/// How long a handshake may wait for the peer's next segment before its
/// socket gives up (with a reset) and its place in the backlog is free.
/// Linux gives up on a SYN-ACK after 5 retries, about a minute; smoltcp,
/// left alone, never does.
const HANDSHAKE_TIMEOUT: smoltcp::time::Duration = smoltcp::time::Duration::from_secs(20);

/// Segments one connection sends in one egress turn at most, so one bulk
/// sender cannot starve the others.
const SEGMENTS_PER_TURN: usize = 64;

/// Default socket buffer sizes (each direction).
const DEFAULT_BUFFER: usize = 64 * 1024;

/// Builds a [`Stack`]: device, address and prefix, gateway, MAC, buffers.
///
/// ```
/// use conn_utcp::{MemLink, Stack};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let (port, _other) = MemLink::pair();
/// let stack = Stack::builder(port)
///     .address("192.168.5.2/24".parse().unwrap())
///     .gateway("192.168.5.1".parse().unwrap())
///     .mac([0x02, 0, 0, 0, 0, 0x42])
///     .buffers(64 * 1024, 64 * 1024)
///     .build()?;
/// assert_eq!(stack.address(), Some("192.168.5.2".parse().unwrap()));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct StackBuilder {
    device: Device,
    address: Option<Ipv4Cidr>,
    gateway: Option<Ipv4Addr>,
    address_v6: Option<Ipv6Cidr>,
    gateway_v6: Option<Ipv6Addr>,
    mac: Option<[u8; 6]>,
    rx_buffer: usize,
    tx_buffer: usize,
    ports: (u16, u16),
}

impl StackBuilder {
    /// The interface's IPv4 address and prefix, e.g. `10.7.0.2/24`. A
    /// stack needs this one, or an IPv6 one ([`address_v6`](Self::address_v6)),
    /// or both.
    pub fn address(mut self, cidr: Ipv4Cidr) -> Self {
        self.address = Some(cidr);
        self
    }

    /// The default gateway, for peers outside the prefix.
    pub fn gateway(mut self, gateway: Ipv4Addr) -> Self {
        self.gateway = Some(gateway);
        self
    }

    /// An IPv6 address and prefix beside the IPv4 one, e.g. `fd00::2/64`
    /// (a dual-stack interface): listeners take connections on both,
    /// and connections dial IPv6 peers from it. Neighbours are found by
    /// NDP, which smoltcp answers.
    ///
    /// ```
    /// use conn_utcp::{MemLink, Stack};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
    /// let (port, _other) = MemLink::pair();
    /// let stack = Stack::builder(port)
    ///     .address("10.1.0.2/24".parse().unwrap())
    ///     .address_v6("fd00::2/64".parse().unwrap())
    ///     .build()?;
    /// assert_eq!(stack.address_v6(), Some("fd00::2".parse().unwrap()));
    /// # Ok(()) }
    /// ```
    pub fn address_v6(mut self, cidr: Ipv6Cidr) -> Self {
        self.address_v6 = Some(cidr);
        self
    }

    /// The default IPv6 gateway, for IPv6 peers outside the prefix.
    pub fn gateway_v6(mut self, gateway: Ipv6Addr) -> Self {
        self.gateway_v6 = Some(gateway);
        self
    }

    /// The MAC address; by default a locally administered one derived from
    /// the IP address (so the stacks of a [`StackGroup`](crate::StackGroup)
    /// on one TAP device share it, as one interface must). Irrelevant on a
    /// [`Tun`](crate::Tun) (or [`MemLink::pair_ip`](crate::MemLink::pair_ip)):
    /// an IP link has no MAC, and the one given is not used.
    pub fn mac(mut self, mac: [u8; 6]) -> Self {
        self.mac = Some(mac);
        self
    }

    /// Receive and send buffer sizes of each connection (default 64 KiB
    /// each; above 64 KiB smoltcp scales the window).
    pub fn buffers(mut self, rx: usize, tx: usize) -> Self {
        self.rx_buffer = rx.max(1024);
        self.tx_buffer = tx.max(1024);
        self
    }

    /// The ephemeral ports `connect` picks from (default 49152..=65535).
    /// Stacks sharing one address need disjoint ranges.
    pub fn ephemeral_ports(mut self, first: u16, last: u16) -> Self {
        self.ports = (first.min(last).max(1), last.max(first).max(1));
        self
    }

    /// Builds the stack and spawns its driver task on the current tokio
    /// runtime (so call it inside one).
    pub fn build(self) -> Result<Stack> {
        let (stack, waiter) = self.assemble(None)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| {
            Error::new(ErrorKind::NotSupported)
                .during("build stack")
                .with_source(e)
        })?;
        let weak = Arc::downgrade(&stack.shared);
        let kick = stack.shared.kick.clone();
        runtime.spawn(drive(weak, kick, waiter));
        Ok(stack)
    }

    /// The stack without its driver task: the fuzz target polls it
    /// itself. `random_seed` fixes smoltcp's randomness (sequence numbers,
    /// ports), for inputs that replay alike.
    pub(crate) fn assemble(
        self,
        random_seed: Option<u64>,
    ) -> Result<(Stack, crate::device::Waiter)> {
        let (cidr, cidr6) = (self.address, self.address_v6);
        // The low four bytes of the address name the stack in its MAC.
        let ip = match (cidr, cidr6) {
            (Some(v4), _) => v4.address().octets(),
            (None, Some(v6)) => v6.address().octets()[12..].try_into().expect("4 bytes"),
            (None, None) => {
                return Err(Error::new(ErrorKind::InvalidType)
                    .during("build stack")
                    .detail("an IPv4 or IPv6 address and prefix are required"));
            }
        };
        let mut device = Driven(
            self.device,
            Addrs {
                v4: cidr.map(|c| c.address()),
                v6: cidr6.map(|c| c.address()),
            },
        );
        let mac = self.mac.unwrap_or([0x02, 0x75, ip[0], ip[1], ip[2], ip[3]]);
        let number = NEXT_STACK.fetch_add(1, Ordering::Relaxed) % STACK_NUMBERS;
        // A TUN (or an IP MemLink) has no link layer: no MAC, no ARP or
        // NDP; smoltcp then reads and writes bare IP packets.
        let medium = device.0.medium();
        let hardware = match medium {
            Medium::Ip => HardwareAddress::Ip,
            _ => HardwareAddress::Ethernet(EthernetAddress(mac)),
        };
        let mut config = Config::new(hardware);
        config.random_seed = random_seed.unwrap_or_else(|| seed(number));
        let mut iface = Interface::new(config, &mut device, SmolInstant::now());
        iface.update_ip_addrs(|addrs| {
            if let Some(v4) = cidr {
                let _ = addrs.push(IpCidr::Ipv4(v4));
            }
            if let Some(v6) = cidr6 {
                let _ = addrs.push(IpCidr::Ipv6(v6));
            }
        });
        if let Some(gw) = self.gateway_v6 {
            iface
                .routes_mut()
                .add_default_ipv6_route(gw)
                .map_err(|_| Error::new(ErrorKind::NoBufferSpace).during("build stack"))?;
        }
        if let Some(gw) = self.gateway {
            iface
                .routes_mut()
                .add_default_ipv4_route(gw)
                .map_err(|_| Error::new(ErrorKind::NoBufferSpace).during("build stack"))?;
        }
        let waiter = device.0.waiter();
        let shared = Arc::new(Shared {
            number,
            cidr,
            cidr6,
            kick: Arc::new(Notify::new()),
            inner: Mutex::new(Inner {
                iface,
                device,
                table: Table::default(),
                conns: Conns::new(self.rx_buffer, self.tx_buffer),
                listeners: HashMap::new(),
                nobody: SocketSet::new(Vec::new()),
                time_wait: TimeWait::default(),
                mac,
                medium,
                ports: self.ports,
                next_port: self.ports.0,
                round: Vec::new(),
                failed: None,
            }),
        });
        Ok((Stack { shared }, waiter))
    }
}

fn seed(number: u32) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    now ^ (u64::from(std::process::id()) << 32) ^ u64::from(number)
}

/// The per-core context: one smoltcp interface, its sockets, one device,
/// one driver task. Cheap to clone (a handle).
///
/// mTCP's socket calls live here, named by [`SockId`], with `mtcp_close`'s
/// errors: an id another stack made is `WrongContext` (EACCES), an unknown
/// or closed id `BadHandle` (EBADF), closing a connection that already
/// ended `NotConnected` (ENOTCONN), a call for the other socket type
/// `InvalidType` (EINVAL).
///
/// ```
/// use conn_core::{Deadline, ErrorKind};
/// use conn_utcp::{MemLink, Stack, UtcpListener};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let (a, b) = MemLink::pair();
/// let one = Stack::builder(a).address("10.6.0.1/24".parse().unwrap()).build()?;
/// let two = Stack::builder(b).address("10.6.0.2/24".parse().unwrap()).build()?;
/// let id = UtcpListener::bind(&one, 80, 2)?.into_id();
///
/// assert_eq!(two.close(id, Deadline::NOW).await.unwrap_err().kind(), ErrorKind::WrongContext);
/// assert_eq!(one.abort(id).unwrap_err().kind(), ErrorKind::InvalidType);
/// one.close(id, Deadline::NOW).await?;          // a listener can be closed
/// assert_eq!(one.close(id, Deadline::NOW).await.unwrap_err().kind(), ErrorKind::BadHandle);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Stack {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    number: u32,
    cidr: Option<Ipv4Cidr>,
    cidr6: Option<Ipv6Cidr>,
    kick: Arc<Notify>,
    inner: Mutex<Inner>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Let the driver see that the stack is gone and end.
        self.kick.notify_one();
    }
}

pub(crate) struct Inner {
    pub(crate) iface: Interface,
    pub(crate) device: Driven,
    pub(crate) table: Table,
    pub(crate) conns: Conns,
    /// Listening ports and their backlogs.
    pub(crate) listeners: HashMap<u16, Backlog>,
    /// An empty socket set, for the frames no connection takes: smoltcp
    /// answers ARP and ICMP echo itself, and resets a segment no socket
    /// takes.
    nobody: SocketSet<'static>,
    time_wait: TimeWait,
    mac: [u8; 6],
    /// The device's: what a frame is, Ethernet or a bare IP packet.
    medium: Medium,
    ports: (u16, u16),
    next_port: u16,
    /// The keys of one egress round (kept to reuse its allocation).
    round: Vec<Key>,
    /// The device went away (errno, name): every connection was reset,
    /// and accept and connect fail with [`Inner::device_gone`].
    failed: Option<(i32, String)>,
}

/// A listening port's backlog: the handshakes under way and the
/// connections established, waiting for `accept`.
#[derive(Debug)]
pub(crate) struct Backlog {
    /// Handshakes and waiting connections together, at most; a SYN
    /// beyond it is dropped, as Linux drops it, and the peer sends it
    /// again.
    limit: usize,
    handshaking: usize,
    pub(crate) ready: VecDeque<Key>,
    pub(crate) waker: Option<Waker>,
}

impl Backlog {
    pub(crate) fn new(limit: usize) -> Backlog {
        Backlog {
            limit: limit.max(1),
            handshaking: 0,
            ready: VecDeque::new(),
            waker: None,
        }
    }

    fn has_room(&self) -> bool {
        self.handshaking < SYN_BACKLOG && self.handshaking + self.ready.len() < self.limit
    }
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at: Vec<String> = [
            self.shared.cidr.map(|c| c.to_string()),
            self.shared.cidr6.map(|c| c.to_string()),
        ]
        .into_iter()
        .flatten()
        .collect();
        write!(f, "Stack({} at {})", self.shared.number, at.join(" and "))
    }
}

impl Stack {
    /// Starts building a stack that owns `device`.
    pub fn builder(device: impl Into<Device>) -> StackBuilder {
        StackBuilder {
            device: device.into(),
            address: None,
            gateway: None,
            address_v6: None,
            gateway_v6: None,
            mac: None,
            rx_buffer: DEFAULT_BUFFER,
            tx_buffer: DEFAULT_BUFFER,
            ports: (49152, 65535),
        }
    }

    /// This stack's number, as carried in the [`SockId`]s it makes.
    pub fn number(&self) -> u32 {
        self.shared.number
    }

    /// The interface's IPv4 address, if it has one
    /// ([`StackBuilder::address`]).
    pub fn address(&self) -> Option<Ipv4Addr> {
        self.shared.cidr.map(|c| c.address())
    }

    /// The interface's IPv4 address and prefix, if it has one.
    pub fn cidr(&self) -> Option<Ipv4Cidr> {
        self.shared.cidr
    }

    /// The interface's IPv6 address, if it has one
    /// ([`StackBuilder::address_v6`]).
    pub fn address_v6(&self) -> Option<Ipv6Addr> {
        self.shared.cidr6.map(|c| c.address())
    }

    /// The address a listener is named by: the IPv4 one, or the IPv6 one
    /// on a stack without IPv4.
    pub(crate) fn primary(&self) -> IpAddr {
        match (self.address(), self.address_v6()) {
            (Some(v4), _) => v4.into(),
            (None, Some(v6)) => v6.into(),
            (None, None) => unreachable!("a stack is built with an address"),
        }
    }

    /// Whether `ip` is one of the interface's addresses.
    pub fn has_address(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => Some(v4) == self.address(),
            IpAddr::V6(v6) => Some(v6) == self.address_v6(),
        }
    }

    /// mTCP `mtcp_close`: closes the socket `id` in order and frees the id.
    ///
    /// A connection sends its FIN, reads and drops inbound data until the
    /// peer's FIN or `deadline`, and is released either way (on `TimedOut`
    /// with a reset). A listener stops listening (connections not yet
    /// accepted are reset). A connection both sides had already closed in
    /// order (its socket CLOSED after LAST-ACK or TIME-WAIT) closes `Ok`;
    /// one that was reset or aborted is `NotConnected`, and its id is
    /// freed then too.
    pub async fn close(&self, id: SockId, deadline: Deadline) -> Result<()> {
        let key = {
            let mut inner = self.lock_for(id, "close")?;
            match inner.table.get_mut(id.index(), None) {
                None => return Err(bad_handle(id, "close")),
                Some(Entry::Listener { .. }) => {
                    inner.close_listener(id.index());
                    drop(inner);
                    self.kick();
                    return Ok(());
                }
                Some(Entry::Stream(key)) => *key,
            }
        };
        crate::stream::close_conn(self, id, None, key, deadline).await
    }

    /// mTCP `mtcp_abort`: ends the connection `id` at once with a reset (the
    /// peer reads `ECONNRESET`) and frees the id. `InvalidType` for a listener.
    pub fn abort(&self, id: SockId) -> Result<()> {
        let mut inner = self.lock_for(id, "abort")?;
        match inner.table.get_mut(id.index(), None) {
            None => Err(bad_handle(id, "abort")),
            Some(Entry::Listener { .. }) => Err(Error::new(ErrorKind::InvalidType)
                .during("abort")
                .on(id)
                .detail("a listener is closed, not aborted")),
            Some(Entry::Stream(_)) => {
                inner.abort_stream(id.index());
                drop(inner);
                self.kick();
                Ok(())
            }
        }
    }

    /// The TCP state of connection `id` (for logs and tests).
    pub fn state(&self, id: SockId) -> Result<tcp::State> {
        let mut inner = self.lock_for(id, "state")?;
        match inner.table.get_mut(id.index(), None) {
            None => Err(bad_handle(id, "state")),
            Some(Entry::Listener { .. }) => Ok(tcp::State::Listen),
            Some(Entry::Stream(key)) => {
                let key = *key;
                Ok(inner.conns.socket(key).state())
            }
        }
    }

    /// Connections of this stack that are released but not yet CLOSED
    /// (FIN-WAIT, LAST-ACK, TIME-WAIT).
    pub fn lingering(&self) -> usize {
        self.lock().lingering()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.shared.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Locks the stack for an operation on `id`, refusing another stack's id.
    pub(crate) fn lock_for(&self, id: SockId, op: &'static str) -> Result<MutexGuard<'_, Inner>> {
        if id.stack() != self.shared.number {
            return Err(Error::new(ErrorKind::WrongContext)
                .during(op)
                .on(id)
                .detail(format!("the socket is not of stack {}", self.shared.number)));
        }
        Ok(self.lock())
    }

    /// Wakes the driver: a socket has something to send.
    pub(crate) fn kick(&self) {
        self.shared.kick.notify_one();
    }

    pub(crate) fn id(&self, index: u32) -> SockId {
        SockId::new(self.shared.number, index)
    }
}

pub(crate) fn bad_handle(id: SockId, op: &'static str) -> Error {
    Error::new(ErrorKind::BadHandle).during(op).on(id)
}

impl Inner {
    /// Whether any listener or dialled connection uses local `port`, or,
    /// given a `peer`, a connection to it from that port lives or waits
    /// in TIME-WAIT.
    fn port_in_use(&self, port: u16, peer: Option<SocketAddr>) -> bool {
        if self.listeners.contains_key(&port) || self.conns.port_dialled(port) {
            return true;
        }
        peer.is_some_and(|peer| {
            let flow = Flow {
                peer: peer.ip(),
                peer_port: peer.port(),
                port,
            };
            self.conns.find(&flow).is_some() || self.time_wait.contains(&flow)
        })
    }

    /// A free ephemeral port (for a connection to `peer`, if given).
    pub(crate) fn ephemeral_port(&mut self, peer: Option<SocketAddr>) -> Option<u16> {
        let (first, last) = self.ports;
        let span = u32::from(last - first) + 1;
        for _ in 0..span {
            let port = self.next_port;
            self.next_port = if port >= last { first } else { port + 1 };
            if !self.port_in_use(port, peer) {
                return Some(port);
            }
        }
        None
    }

    pub(crate) fn listener_port_taken(&self, port: u16) -> bool {
        self.listeners.contains_key(&port)
    }

    /// Releases connection `key`: it finishes what it has to send (a FIN,
    /// a reset, LAST-ACK) and is recycled once CLOSED or in TIME-WAIT.
    pub(crate) fn release(&mut self, key: Key) {
        if let Some(conn) = self.conns.get(key) {
            conn.owner = Owner::Released;
        }
        self.conns.touch(key);
    }

    pub(crate) fn abort_stream(&mut self, index: u32) {
        if let Some(Entry::Stream(key)) = self.table.remove(index) {
            self.conns.socket(key).abort();
            self.release(key);
        }
    }

    pub(crate) fn close_listener(&mut self, index: u32) {
        let Some(Entry::Listener { port }) = self.table.remove(index) else {
            return;
        };
        self.listeners.remove(&port);
        for owner in [Owner::Handshake(port), Owner::Ready(port)] {
            for key in self.conns.held_by(owner) {
                // Not yet accepted: reset, as the kernel does when a
                // listening socket with a full queue is closed.
                self.conns.socket(key).abort();
                self.release(key);
            }
        }
    }

    /// One turn of the driver: process frames, send, reap finished
    /// sockets. Returns when to come back at the latest.
    fn poll(&mut self) -> Option<Duration> {
        self.poll_at(SmolInstant::now())
    }

    /// One turn at `now`: timers due, up to [`FRAMES_PER_TURN`] received
    /// frames each to its own connection, then an egress turn for every
    /// connection that has something to do. Returns when to come back.
    pub(crate) fn poll_at(&mut self, now: SmolInstant) -> Option<Duration> {
        self.iface.poll_maintenance(now);
        self.time_wait.expire(now);
        self.conns.due(now);
        let mut frames = 0;
        while frames < FRAMES_PER_TURN && self.device.stage() {
            self.ingress(now);
            frames += 1;
        }
        if self.failed.is_none()
            && let Some((errno, name)) = self.device.gone()
        {
            self.failed = Some((errno, name.to_owned()));
            self.fail();
            return None;
        }
        self.egress(now);
        if frames == FRAMES_PER_TURN || self.conns.any_dirty() {
            return Some(Duration::ZERO);
        }
        [self.conns.next_timer(), self.time_wait.next()]
            .into_iter()
            .flatten()
            .min()
            .map(|at| match at > now {
                true => Duration::from_micros((at - now).total_micros()),
                false => Duration::ZERO,
            })
    }

    /// Hands the staged frame to smoltcp with the socket set it is for.
    fn ingress(&mut self, now: SmolInstant) {
        let Some(frame) = self.device.staged() else {
            return;
        };
        match demux::classify(frame, self.medium) {
            Frame::Tcp(seg) => self.ingress_tcp(now, seg),
            Frame::Neighbour => {
                self.iface
                    .poll_ingress_single(now, &mut self.device, &mut self.nobody);
                self.conns.touch_all();
            }
            Frame::Other => {
                self.iface
                    .poll_ingress_single(now, &mut self.device, &mut self.nobody);
            }
        }
    }

    fn ingress_tcp(&mut self, now: SmolInstant, seg: Segment) {
        let key = match self.conns.find(&seg.flow) {
            Some(key) => key,
            None => {
                let port = seg.flow.port;
                if self.time_wait.contains(&seg.flow) {
                    if seg.opens() && self.listeners.contains_key(&port) {
                        // A new connection on the old four-tuple ends the wait.
                        self.time_wait.remove(&seg.flow);
                    } else {
                        self.answer_time_wait(now, &seg);
                        return;
                    }
                }
                match self.listeners.get_mut(&port) {
                    Some(backlog) if seg.opens() => {
                        if !backlog.has_room() {
                            self.device.discard();
                            return;
                        }
                        backlog.handshaking += 1;
                        let key = self.conns.open(Owner::Handshake(port), seg.flow, false);
                        let socket = self.conns.socket(key);
                        socket
                            .listen(port)
                            .expect("a closed socket listens on a nonzero port");
                        socket.set_timeout(Some(HANDSHAKE_TIMEOUT));
                        key
                    }
                    _ => {
                        self.iface
                            .poll_ingress_single(now, &mut self.device, &mut self.nobody);
                        return;
                    }
                }
            }
        };
        let conn = self.conns.get(key).expect("a connection the table found");
        self.iface
            .poll_ingress_single(now, &mut self.device, conn.set());
        self.conns.touch(key);
    }

    /// A segment for a four-tuple in TIME-WAIT (see [`crate::time_wait`]):
    /// a retransmitted FIN is acknowledged and restarts the wait; the rest
    /// is dropped.
    fn answer_time_wait(&mut self, now: SmolInstant, seg: &Segment) {
        let verify = phy::Device::capabilities(&self.device).checksum.tcp.rx();
        let medium = self.medium;
        let intact = !verify
            || self
                .device
                .staged()
                .is_some_and(|frame| demux::checksums_hold(frame, medium));
        self.device.discard();
        if !(intact && seg.fin && seg.ack) || seg.rst {
            return;
        }
        self.time_wait.insert(seg.flow, now);
        let (me, mac) = (self.device.1, self.mac);
        let Some(me) = me.matching(seg.flow.peer) else {
            return;
        };
        if let Some(tx) = phy::Device::transmit(&mut self.device, now) {
            phy::TxToken::consume(tx, time_wait::ack_len(seg, medium), |buf| {
                time_wait::write_ack(seg, me, mac, crate::conns::tsval(), buf, medium)
            });
        }
    }

    /// An egress turn for every connection touched since the last one,
    /// each then settled.
    fn egress(&mut self, now: SmolInstant) {
        let mut round = std::mem::take(&mut self.round);
        self.conns.take_dirty(&mut round);
        for &key in &round {
            let Some(conn) = self.conns.get(key) else {
                continue;
            };
            let mut sent_all = false;
            for _ in 0..SEGMENTS_PER_TURN {
                if self.iface.poll_egress(now, &mut self.device, conn.set()) == PollResult::None {
                    sent_all = true;
                    break;
                }
            }
            self.settle(key, now);
            if !sent_all {
                self.conns.touch(key);
            }
        }
        round.clear();
        self.round = round;
    }

    /// Acts on `key`'s state after smoltcp had it: a finished handshake
    /// joins its listener's queue, a released connection that is done
    /// is recycled (to TIME-WAIT, if it closed first); then its timer.
    fn settle(&mut self, key: Key, now: SmolInstant) {
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        let state = conn.observe();
        match (conn.owner, state) {
            (Owner::Handshake(port), State::Listen | State::Closed) => {
                // The segment opened nothing (a bad checksum, a reset
                // during the handshake): the place in the backlog is free.
                if let Some(backlog) = self.listeners.get_mut(&port) {
                    backlog.handshaking -= 1;
                }
                self.conns.recycle(key);
                return;
            }
            (Owner::Handshake(_), State::SynReceived) => {}
            (Owner::Handshake(port), _) => {
                conn.owner = Owner::Ready(port);
                conn.socket().set_timeout(None);
                if let Some(backlog) = self.listeners.get_mut(&port) {
                    backlog.handshaking -= 1;
                    backlog.ready.push_back(key);
                    if let Some(waker) = backlog.waker.take() {
                        waker.wake();
                    }
                }
            }
            (Owner::Released, State::Closed) => {
                self.conns.recycle(key);
                return;
            }
            (Owner::Released, State::TimeWait) => {
                if let Some(flow) = conn.flow {
                    self.time_wait.insert(flow, now);
                }
                self.conns.recycle(key);
                return;
            }
            _ => {}
        }
        let conn = self.conns.get(key).expect("settled above");
        let at = self.iface.poll_at(now, conn.set());
        self.conns.schedule(key, at);
    }

    /// The device is gone: every connection is reset (its reads and
    /// writes fail with `ConnectionReset`) and every accept waiting wakes
    /// to [`Inner::device_gone`]. Nothing can be sent any more, so the
    /// table is left as it is for the ids to be closed.
    fn fail(&mut self) {
        for key in self.conns.keys() {
            self.conns.socket(key).abort();
        }
        for backlog in self.listeners.values_mut() {
            if let Some(waker) = backlog.waker.take() {
                waker.wake();
            }
        }
        tracing::warn!(device = %self.failed.as_ref().map_or("", |f| &f.1), "the stack's device went away; its connections are reset");
    }

    /// The error of an accept or connect on a stack whose device went away.
    pub(crate) fn device_gone(&self) -> Option<Error> {
        let (errno, name) = self.failed.as_ref()?;
        Some(
            Error::io(
                std::io::Error::from_raw_os_error(*errno),
                "read device",
                name,
            )
            .detail("the device went away under the stack (deleted?); its connections were reset"),
        )
    }

    /// Connections released and not finished, and four-tuples in TIME-WAIT.
    fn lingering(&self) -> usize {
        self.conns.released() + self.time_wait.len()
    }
}

/// The driver task: poll, then sleep until frames arrive, a socket call
/// kicks, or smoltcp's next timer. Ends when the last `Stack` is dropped.
async fn drive(stack: Weak<Shared>, kick: Arc<Notify>, waiter: crate::device::Waiter) {
    // `readable`: the reactor reported the device's descriptor, so it is
    // read again (other turns skip a queue already read to EAGAIN).
    let turn = |readable: bool| {
        let shared = stack.upgrade()?;
        let mut inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
        if readable {
            inner.device.0.readable();
        }
        let delay = inner.poll();
        // A stack whose device went away has nothing left to drive.
        if inner.failed.is_some() {
            return None;
        }
        Some((delay, inner.device.0.take_drained()))
    };
    let on_ready = |ready: Ready<'_>| {
        let next = turn(matches!(ready, Ready::Queue(_)));
        // The device was read to EAGAIN: wait for readiness anew.
        if let (Some((_, true)), Ready::Queue(mut guard)) = (next, ready) {
            guard.clear_ready();
        }
        next.map(|(delay, _)| delay)
    };
    let Some((mut delay, _)) = turn(true) else {
        return;
    };
    // One timer for the task's life, moved only to an earlier deadline: a
    // later one lets it fire early, and that turn sets it again. tokio wakes
    // its own reactor (an eventfd write, then an epoll_wait that returns at
    // once) whenever a timer moves earlier than the reactor's next wake, so
    // a fresh timer per turn cost two syscalls a request/response.
    let timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(timer);
    let mut armed: Option<tokio::time::Instant> = None;
    loop {
        if delay == Some(Duration::ZERO) {
            // More to do at once (a full batch of frames, a socket with
            // more to send, a timer already due): another turn, after the
            // tasks this one woke, never a timer, which tokio rounds up to
            // its next millisecond (a request/response then waited for it).
            yield_once().await;
            let Some((d, _)) = turn(false) else { return };
            delay = d;
            continue;
        }
        let due = delay.map(|d| tokio::time::Instant::now() + d);
        if let Some(at) = due.filter(|at| armed.is_none_or(|armed| *at < armed)) {
            // Usually a turn wants an earlier timer because it woke a
            // socket's task (a request read: its delayed ACK is due), and
            // that task's write kicks us within the same tick; the turn
            // after the kick sends the ACK with the answer and wants no
            // earlier timer. So let the woken tasks run before moving it.
            yield_once().await;
            let quick = tokio::select! {
                biased;
                ready = waiter.ready() => Some(on_ready(ready)),
                _ = kick.notified() => Some(turn(false).map(|(d, _)| d)),
                () = std::future::ready(()) => None,
            };
            if let Some(next) = quick {
                let Some(d) = next else { return };
                delay = d;
                continue;
            }
            timer.as_mut().reset(at);
            armed = Some(at);
        }
        // The device first, so steady kicks cannot keep frames waiting.
        let next = tokio::select! {
            biased;
            ready = waiter.ready() => on_ready(ready),
            _ = kick.notified() => turn(false).map(|(d, _)| d),
            () = &mut timer, if armed.is_some() => {
                armed = None;
                turn(false).map(|(d, _)| d)
            }
        };
        let Some(d) = next else { return };
        delay = d;
    }
}

/// Returns once, after every task already woken on this (current-thread)
/// runtime has run: the task wakes itself, which queues it behind them.
/// `tokio::task::yield_now` would instead wait for the reactor's next
/// poll, an epoll_wait of its own.
async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return std::task::Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await
}

/// The address `addr` as text with the `utcp://` scheme.
pub(crate) fn endpoint_of(addr: impl Into<SocketAddr>) -> conn_core::Endpoint {
    let addr: SocketAddr = addr.into();
    conn_core::Endpoint::new("utcp", addr).expect("a socket address is a valid endpoint")
}
