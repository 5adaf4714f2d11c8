//! The connections of one stack, each in a smoltcp `SocketSet` of its own.
//!
//! smoltcp polls the set it is handed, socket by socket, on every ingress
//! segment and every egress turn. Handing it one connection's set at a
//! time (the one a segment's [`Flow`] names, or one whose socket has
//! something to send or a timer due) keeps the cost of a packet the same
//! with one connection or ten thousand. What smoltcp's whole-set poll did
//! implicitly the table does explicitly:
//!
//! * `flows`: four-tuple to connection, for ingress;
//! * `dirty`: connections to give an egress turn (a segment arrived, the
//!   application wrote, read or closed, a timer fell due);
//! * `timers`: each connection's next `poll_at`, in order;
//! * `spare`: closed connections kept with their buffers, so a stream of
//!   short connections neither allocates nor zeroes 2 buffers each;
//! * `ports`: local ports of the connections this stack dialled.

use std::collections::{BTreeSet, HashMap};

use slab::Slab;
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;

use crate::demux::Flow;

/// RFC 7323 timestamps, offered on every connection as Linux offers them:
/// a millisecond clock from an offset random per process. They give RTT
/// samples on every ACK, and the kernel at the other end reuses a port it
/// still holds in TIME-WAIT from a connection to us only if that
/// connection had them (`tcp_tw_reuse`, checked against PAWS).
pub(crate) fn tsval() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    static BASE: std::sync::OnceLock<(std::time::Instant, u32)> = std::sync::OnceLock::new();
    let (start, offset) = BASE.get_or_init(|| {
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        (std::time::Instant::now(), random as u32)
    });
    offset.wrapping_add(start.elapsed().as_millis() as u32)
}

/// Closed connections a stack keeps for reuse at most.
const SPARE: usize = 256;

/// Who holds a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Owner {
    /// Made for a SYN to the listener on this port; handshake under way.
    Handshake(u16),
    /// Established, waiting in the backlog of the listener on this port.
    Ready(u16),
    /// A socket id (a `UtcpStream`) holds it.
    Stream,
    /// Its id is gone; it finishes (FIN-WAIT, LAST-ACK, a reset to send)
    /// and is then recycled.
    Released,
}

/// One connection: its own socket set with its one TCP socket.
pub(crate) struct Conn {
    set: SocketSet<'static>,
    handle: SocketHandle,
    pub(crate) flow: Option<Flow>,
    /// Its local port is counted in [`Conns::ports`].
    dialled: bool,
    pub(crate) owner: Owner,
    timer: Option<Instant>,
    dirty: bool,
    /// The state [`Conn::observe`] saw last.
    seen: tcp::State,
    /// It reached CLOSED from LAST-ACK or TIME-WAIT: both FINs went and
    /// were acknowledged, so the connection ended in order, not by a reset.
    ended_in_order: bool,
}

impl Conn {
    /// Notes the socket's state after smoltcp had it; returns it.
    pub(crate) fn observe(&mut self) -> tcp::State {
        let state = self.socket().state();
        if state == tcp::State::Closed
            && matches!(self.seen, tcp::State::LastAck | tcp::State::TimeWait)
        {
            self.ended_in_order = true;
        }
        self.seen = state;
        state
    }

    /// Both sides ended and acknowledged their FINs before the socket
    /// closed (a reset or an abort leaves this false).
    pub(crate) fn ended_in_order(&self) -> bool {
        self.ended_in_order
    }

    pub(crate) fn socket(&mut self) -> &mut tcp::Socket<'static> {
        self.set.get_mut::<tcp::Socket>(self.handle)
    }

    pub(crate) fn set(&mut self) -> &mut SocketSet<'static> {
        &mut self.set
    }
}

/// Index of a connection in its stack's [`Conns`].
pub(crate) type Key = usize;

/// The connection table of one stack.
pub(crate) struct Conns {
    slab: Slab<Conn>,
    flows: HashMap<Flow, Key>,
    timers: BTreeSet<(Instant, Key)>,
    dirty: Vec<Key>,
    spare: Vec<Conn>,
    ports: HashMap<u16, u32>,
    rx_buffer: usize,
    tx_buffer: usize,
}

impl Conns {
    pub(crate) fn new(rx_buffer: usize, tx_buffer: usize) -> Conns {
        Conns {
            slab: Slab::new(),
            flows: HashMap::new(),
            timers: BTreeSet::new(),
            dirty: Vec::new(),
            spare: Vec::new(),
            ports: HashMap::new(),
            rx_buffer,
            tx_buffer,
        }
    }

    /// A connection in CLOSED state, held by `owner`, named by `flow`.
    /// Its socket is the caller's to `listen` or `connect`.
    pub(crate) fn open(&mut self, owner: Owner, flow: Flow, dialled: bool) -> Key {
        let conn = self.spare.pop().unwrap_or_else(|| {
            let rx = tcp::SocketBuffer::new(vec![0; self.rx_buffer]);
            let tx = tcp::SocketBuffer::new(vec![0; self.tx_buffer]);
            let mut socket = tcp::Socket::new(rx, tx);
            // connkit's streams are TCP_NODELAY by default.
            socket.set_nagle_enabled(false);
            let mut set = SocketSet::new(Vec::with_capacity(1));
            let handle = set.add(socket);
            Conn {
                set,
                handle,
                flow: None,
                dialled: false,
                owner,
                timer: None,
                dirty: false,
                seen: tcp::State::Closed,
                ended_in_order: false,
            }
        });
        let key = self.slab.insert(conn);
        let conn = &mut self.slab[key];
        // A reused socket keeps no setting of its last connection.
        conn.socket().set_timeout(None);
        // smoltcp turns timestamps off for a peer that does not offer them.
        conn.socket().set_tsval_generator(Some(tsval));
        conn.seen = tcp::State::Closed;
        conn.ended_in_order = false;
        conn.owner = owner;
        conn.flow = Some(flow);
        conn.dialled = dialled;
        self.flows.insert(flow, key);
        if dialled {
            *self.ports.entry(flow.port).or_default() += 1;
        }
        key
    }

    /// Takes `key` out of the table (its flow, timer and port with it)
    /// and keeps it for reuse.
    pub(crate) fn recycle(&mut self, key: Key) {
        let Some(mut conn) = self.slab.try_remove(key) else {
            return;
        };
        if let Some(flow) = conn.flow.take() {
            if self.flows.get(&flow) == Some(&key) {
                self.flows.remove(&flow);
            }
            if conn.dialled
                && let Some(n) = self.ports.get_mut(&flow.port)
            {
                *n -= 1;
                if *n == 0 {
                    self.ports.remove(&flow.port);
                }
            }
        }
        if let Some(at) = conn.timer.take() {
            self.timers.remove(&(at, key));
        }
        conn.dirty = false;
        if self.spare.len() < SPARE {
            self.spare.push(conn);
        }
    }

    pub(crate) fn get(&mut self, key: Key) -> Option<&mut Conn> {
        self.slab.get_mut(key)
    }

    /// The socket of `key`, which the caller knows is live.
    pub(crate) fn socket(&mut self, key: Key) -> &mut tcp::Socket<'static> {
        self.slab[key].socket()
    }

    /// Every live connection's key.
    pub(crate) fn keys(&self) -> Vec<Key> {
        self.slab.iter().map(|(k, _)| k).collect()
    }

    /// The connection `flow` names.
    pub(crate) fn find(&self, flow: &Flow) -> Option<Key> {
        self.flows.get(flow).copied()
    }

    /// Whether a dialled connection uses local `port`.
    pub(crate) fn port_dialled(&self, port: u16) -> bool {
        self.ports.contains_key(&port)
    }

    /// Gives `key` an egress turn at the driver's next poll.
    pub(crate) fn touch(&mut self, key: Key) {
        if let Some(conn) = self.slab.get_mut(key)
            && !std::mem::replace(&mut conn.dirty, true)
        {
            self.dirty.push(key);
        }
    }

    /// Gives every connection an egress turn (an ARP or NDP answer may
    /// have brought the neighbour some of them wait for; both are rare).
    pub(crate) fn touch_all(&mut self) {
        for (key, conn) in self.slab.iter_mut() {
            if !std::mem::replace(&mut conn.dirty, true) {
                self.dirty.push(key);
            }
        }
    }

    /// Moves the connections whose timer is due by `now` to `dirty`.
    pub(crate) fn due(&mut self, now: Instant) {
        while let Some(&(at, key)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            if let Some(conn) = self.slab.get_mut(key) {
                conn.timer = None;
            }
            self.touch(key);
        }
    }

    /// The connections to give an egress turn, in the order touched.
    pub(crate) fn take_dirty(&mut self, into: &mut Vec<Key>) {
        into.append(&mut self.dirty);
        for &key in into.iter() {
            if let Some(conn) = self.slab.get_mut(key) {
                conn.dirty = false;
            }
        }
    }

    /// Sets `key`'s next timer.
    pub(crate) fn schedule(&mut self, key: Key, at: Option<Instant>) {
        let Some(conn) = self.slab.get_mut(key) else {
            return;
        };
        if conn.timer == at {
            return;
        }
        if let Some(old) = conn.timer.take() {
            self.timers.remove(&(old, key));
        }
        if let Some(at) = at {
            self.timers.insert((at, key));
        }
        conn.timer = at;
    }

    /// The earliest timer.
    pub(crate) fn next_timer(&self) -> Option<Instant> {
        self.timers.first().map(|&(at, _)| at)
    }

    /// Whether anything waits for an egress turn.
    pub(crate) fn any_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// The keys of the connections held by `owner`.
    pub(crate) fn held_by(&self, owner: Owner) -> Vec<Key> {
        self.slab
            .iter()
            .filter(|(_, c)| c.owner == owner)
            .map(|(k, _)| k)
            .collect()
    }

    /// Connections whose id is gone but which have not finished.
    pub(crate) fn released(&self) -> usize {
        self.slab
            .iter()
            .filter(|(_, c)| c.owner == Owner::Released)
            .count()
    }

    /// Every live connection's socket (the fuzz harness plays the
    /// application with them); each gets an egress turn.
    pub(crate) fn each_socket(&mut self, mut f: impl FnMut(&mut tcp::Socket<'static>)) {
        for (key, conn) in self.slab.iter_mut() {
            f(conn.socket());
            if !std::mem::replace(&mut conn.dirty, true) {
                self.dirty.push(key);
            }
        }
    }
}
