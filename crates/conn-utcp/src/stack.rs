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
//! # The driver
//!
//! The task sleeps until the device has frames (a `Notify` for a
//! [`MemLink`](crate::MemLink), tokio's `AsyncFd` readiness for a
//! [`Tap`](crate::Tap)), a socket operation kicks it (another `Notify`),
//! or smoltcp's `poll_delay` says a timer is due. It never polls in a loop.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use conn_core::{Deadline, Error, ErrorKind, Result};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::{AnySocket, tcp};
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Cidr};
use tokio::sync::Notify;

use crate::device::{Device, Driven, Ready};
use crate::id::{Entry, SockId, Table};

/// Stack numbers fit the 12 bits a [`SockId`] has for them.
const STACK_NUMBERS: u32 = 1 << 12;
static NEXT_STACK: AtomicU32 = AtomicU32::new(1);

/// CLOSED sockets a stack keeps for reuse at most.
const SPARE_SOCKETS: usize = 256;

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
/// assert_eq!(stack.address(), "192.168.5.2".parse::<std::net::Ipv4Addr>().unwrap());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct StackBuilder {
    device: Device,
    address: Option<Ipv4Cidr>,
    gateway: Option<Ipv4Addr>,
    mac: Option<[u8; 6]>,
    rx_buffer: usize,
    tx_buffer: usize,
    ports: (u16, u16),
}

impl StackBuilder {
    /// The interface's IPv4 address and prefix, e.g. `10.7.0.2/24` (required).
    pub fn address(mut self, cidr: Ipv4Cidr) -> Self {
        self.address = Some(cidr);
        self
    }

    /// The default gateway, for peers outside the prefix.
    pub fn gateway(mut self, gateway: Ipv4Addr) -> Self {
        self.gateway = Some(gateway);
        self
    }

    /// The MAC address; by default a locally administered one derived from
    /// the IP address (so the stacks of a [`StackGroup`](crate::StackGroup)
    /// on one TAP device share it, as one interface must).
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
        let cidr = self.address.ok_or_else(|| {
            Error::new(ErrorKind::InvalidType)
                .during("build stack")
                .detail("an IPv4 address and prefix are required")
        })?;
        let mut device = Driven(self.device, cidr.address());
        let ip = cidr.address().octets();
        let mac = self.mac.unwrap_or([0x02, 0x75, ip[0], ip[1], ip[2], ip[3]]);
        let number = NEXT_STACK.fetch_add(1, Ordering::Relaxed) % STACK_NUMBERS;
        let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        config.random_seed = random_seed.unwrap_or_else(|| seed(number));
        let mut iface = Interface::new(config, &mut device, SmolInstant::now());
        iface.update_ip_addrs(|addrs| {
            let _ = addrs.push(IpCidr::Ipv4(cidr));
        });
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
            kick: Arc::new(Notify::new()),
            inner: Mutex::new(Inner {
                iface,
                sockets: SocketSet::new(Vec::new()),
                device,
                table: Table::default(),
                lingering: Vec::new(),
                spare: Vec::new(),
                rx_buffer: self.rx_buffer,
                tx_buffer: self.tx_buffer,
                ports: self.ports,
                next_port: self.ports.0,
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
    cidr: Ipv4Cidr,
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
    pub(crate) sockets: SocketSet<'static>,
    pub(crate) device: Driven,
    pub(crate) table: Table,
    /// Sockets whose handle is released but whose connection still runs
    /// (FIN-WAIT, LAST-ACK, TIME-WAIT, a reset not yet sent); the driver
    /// removes each once it reaches CLOSED.
    lingering: Vec<SocketHandle>,
    /// CLOSED sockets kept for reuse (smoltcp resets a socket when it
    /// listens or connects again), so a steady stream of connections does
    /// not allocate and zero two buffers per connection.
    spare: Vec<SocketHandle>,
    rx_buffer: usize,
    tx_buffer: usize,
    ports: (u16, u16),
    next_port: u16,
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Stack({} at {})", self.shared.number, self.shared.cidr)
    }
}

impl Stack {
    /// Starts building a stack that owns `device`.
    pub fn builder(device: impl Into<Device>) -> StackBuilder {
        StackBuilder {
            device: device.into(),
            address: None,
            gateway: None,
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

    /// The interface's IPv4 address.
    pub fn address(&self) -> Ipv4Addr {
        self.shared.cidr.address()
    }

    /// The interface's address and prefix.
    pub fn cidr(&self) -> Ipv4Cidr {
        self.shared.cidr
    }

    /// mTCP `mtcp_close`: closes the socket `id` in order and frees the id.
    ///
    /// A connection sends its FIN, reads and drops inbound data until the
    /// peer's FIN or `deadline`, and is released either way (on `TimedOut`
    /// with a reset). A listener stops listening (connections not yet
    /// accepted are reset). `NotConnected` when the connection had already
    /// ended (reset, or closed by both sides); the id is freed then too.
    pub async fn close(&self, id: SockId, deadline: Deadline) -> Result<()> {
        let handle = {
            let mut inner = self.lock_for(id, "close")?;
            match inner.table.get_mut(id.index(), None) {
                None => return Err(bad_handle(id, "close")),
                Some(Entry::Listener { .. }) => {
                    inner.close_listener(id.index());
                    drop(inner);
                    self.kick();
                    return Ok(());
                }
                Some(Entry::Stream(handle)) => *handle,
            }
        };
        crate::stream::close_handle(self, id, None, handle, deadline).await
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
            Some(Entry::Stream(h)) => {
                let h = *h;
                Ok(inner.sockets.get::<tcp::Socket>(h).state())
            }
        }
    }

    /// Connections of this stack that are released but not yet CLOSED
    /// (FIN-WAIT, LAST-ACK, TIME-WAIT).
    pub fn lingering(&self) -> usize {
        self.lock().lingering.len()
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
    /// A fresh TCP socket with this stack's buffer sizes.
    pub(crate) fn new_socket(&mut self) -> SocketHandle {
        if let Some(handle) = self.spare.pop() {
            return handle;
        }
        let rx = tcp::SocketBuffer::new(vec![0; self.rx_buffer]);
        let tx = tcp::SocketBuffer::new(vec![0; self.tx_buffer]);
        let mut socket = tcp::Socket::new(rx, tx);
        // connkit's streams are TCP_NODELAY by default.
        socket.set_nagle_enabled(false);
        self.sockets.add(socket)
    }

    pub(crate) fn socket(&mut self, handle: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(handle)
    }

    /// Whether any socket or listener of this stack uses local `port`.
    fn port_in_use(&self, port: u16) -> bool {
        self.table.listener_ports().any(|p| p == port)
            || self.sockets.iter().any(|(_, s)| {
                let Some(s) = tcp::Socket::downcast(s) else {
                    return false;
                };
                s.local_endpoint().is_some_and(|e| e.port == port)
                    || s.listen_endpoint().port == port
            })
    }

    /// A free ephemeral port.
    pub(crate) fn ephemeral_port(&mut self) -> Option<u16> {
        let (first, last) = self.ports;
        let span = u32::from(last - first) + 1;
        for _ in 0..span {
            let port = self.next_port;
            self.next_port = if port >= last { first } else { port + 1 };
            if !self.port_in_use(port) {
                return Some(port);
            }
        }
        None
    }

    pub(crate) fn listener_port_taken(&self, port: u16) -> bool {
        self.table.listener_ports().any(|p| p == port)
    }

    /// Releases a connection's smoltcp socket: gone at once when CLOSED
    /// and nothing is left to send, otherwise left to finish (TIME-WAIT,
    /// LAST-ACK, a reset to send) and removed by the driver.
    pub(crate) fn release(&mut self, handle: SocketHandle) {
        self.lingering.push(handle);
    }

    pub(crate) fn abort_stream(&mut self, index: u32) {
        if let Some(Entry::Stream(handle)) = self.table.remove(index) {
            self.socket(handle).abort();
            self.release(handle);
        }
    }

    pub(crate) fn close_listener(&mut self, index: u32) {
        if let Some(Entry::Listener { pool, .. }) = self.table.remove(index) {
            for handle in pool {
                // Not yet accepted: reset, as the kernel does when a
                // listening socket with a full queue is closed.
                self.socket(handle).abort();
                self.release(handle);
            }
        }
    }

    /// One turn of the driver: process frames, send, reap finished
    /// sockets. Returns when to come back at the latest.
    fn poll(&mut self) -> Option<Duration> {
        self.poll_at(SmolInstant::now())
    }

    /// One poll of the interface at `now`, then CLOSED sockets released.
    pub(crate) fn poll_at(&mut self, now: SmolInstant) -> Option<Duration> {
        self.iface.poll(now, &mut self.device, &mut self.sockets);
        let sockets = &mut self.sockets;
        let spare = &mut self.spare;
        self.lingering.retain(|&h| {
            let closed = sockets.get::<tcp::Socket>(h).state() == tcp::State::Closed;
            if closed {
                if spare.len() < SPARE_SOCKETS {
                    spare.push(h);
                } else {
                    sockets.remove(h);
                }
            }
            !closed
        });
        self.iface
            .poll_delay(now, &self.sockets)
            .map(|d| Duration::from_micros(d.total_micros()))
    }
}

/// The driver task: poll, then sleep until frames arrive, a socket call
/// kicks, or smoltcp's next timer. Ends when the last `Stack` is dropped.
async fn drive(stack: Weak<Shared>, kick: Arc<Notify>, waiter: crate::device::Waiter) {
    let turn = || {
        let shared = stack.upgrade()?;
        let mut inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
        let delay = inner.poll();
        Some((delay, inner.device.0.take_drained()))
    };
    let Some((mut delay, _)) = turn() else { return };
    loop {
        let sleep = async {
            match delay {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let next = tokio::select! {
            ready = waiter.ready() => {
                let next = turn();
                // The device was read to EAGAIN: wait for readiness anew.
                if let (Some((_, true)), Ready::Tap(mut guard)) = (next, ready) {
                    guard.clear_ready();
                }
                next
            }
            _ = kick.notified() => turn(),
            _ = sleep => turn(),
        };
        let Some((d, _)) = next else { return };
        delay = d;
    }
}

/// The address `addr` as text with the `utcp://` scheme.
pub(crate) fn endpoint_of(addr: SocketAddrV4) -> conn_core::Endpoint {
    conn_core::Endpoint::new("utcp", addr).expect("a socket address is a valid endpoint")
}
