//! `UtcpListener`: a listening port of a [`Stack`] with an accept backlog.

use std::fmt;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::task::Poll;

use conn_core::{Deadline, Endpoint, Error, ErrorKind, Listener, Result};

use crate::UtcpStream;
use crate::conns::Owner;
use crate::id::{Entry, SockId};
use crate::stack::{Backlog, Stack, bad_handle, endpoint_of};

/// A listening port of a [`Stack`].
///
/// Each SYN to the port gets a socket of its own (from the stack's pool)
/// the moment it arrives, so any number of clients may connect at once.
/// `backlog` bounds the handshakes under way and the connections waiting
/// for [`accept`](Listener::accept) together; a SYN beyond it is dropped,
/// as Linux drops it when a listen queue is full, and the client sends it
/// again after its retransmission timeout. A flood of SYNs so costs at
/// most `backlog` sockets, and the stack's established connections go on
/// being served.
///
/// ```
/// use conn_core::{Deadline, ErrorKind, Listener};
/// use conn_utcp::{MemLink, Stack, UtcpListener};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let (a, _b) = MemLink::pair();
/// let stack = Stack::builder(a).address("10.4.0.1/24".parse().unwrap()).build()?;
/// let mut listener = UtcpListener::bind(&stack, 8080, 16)?;
/// assert_eq!(UtcpListener::bind(&stack, 8080, 16).unwrap_err().kind(), ErrorKind::AddrInUse);
/// assert_eq!(listener.accept(Deadline::NOW).await.unwrap_err().kind(), ErrorKind::TimedOut);
/// assert_eq!(listener.local_endpoint().to_string(), "utcp://10.4.0.1:8080");
/// listener.close()?;
/// # Ok(()) }
/// ```
pub struct UtcpListener {
    stack: Stack,
    id: SockId,
    generation: u32,
    local: SocketAddr,
    live: bool,
}

impl fmt::Debug for UtcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UtcpListener({} at {})", self.id, self.local)
    }
}

impl UtcpListener {
    /// Listens on `port` of `stack` (0 picks a free port) with room for
    /// `backlog` (at least 1) connections, in their handshake or waiting to
    /// be accepted; Linux's default is 4096 (`net.core.somaxconn`).
    /// `AddrInUse` when a listener of this stack holds the port.
    pub fn bind(stack: &Stack, port: u16, backlog: usize) -> Result<UtcpListener> {
        let mut guard = stack.lock();
        let inner = &mut *guard;
        let port = match port {
            0 => inner.ephemeral_port(None).ok_or_else(|| {
                Error::new(ErrorKind::AddrNotAvailable)
                    .during("bind")
                    .detail("no free port")
            })?,
            p => p,
        };
        let local = SocketAddr::new(stack.primary(), port);
        if inner.listener_port_taken(port) {
            return Err(Error::new(ErrorKind::AddrInUse)
                .during("bind")
                .on(endpoint_of(local)));
        }
        inner.listeners.insert(port, Backlog::new(backlog));
        let (index, generation) = inner.table.insert(Entry::Listener { port });
        Ok(UtcpListener {
            stack: stack.clone(),
            id: stack.id(index),
            generation,
            local,
            live: true,
        })
    }

    /// The same listener, named by `ip` (one of the stack's addresses;
    /// it takes connections to every one of them either way).
    pub(crate) fn named(mut self, ip: std::net::IpAddr) -> UtcpListener {
        self.local.set_ip(ip);
        self
    }

    /// Waits for the next connection until `deadline` (mTCP
    /// `mtcp_accept`); [`Deadline::NOW`] is `TimedOut` at once when no
    /// handshake has completed.
    pub async fn accept(&mut self, deadline: Deadline) -> Result<UtcpStream> {
        let step = conn_core::lifecycle_span!("accept", "utcp", self.id);
        let accepted = accept_on(&self.stack, self.id, Some(self.generation), deadline).await;
        step.end(&accepted);
        accepted
    }

    /// This listener's socket id.
    pub fn id(&self) -> SockId {
        self.id
    }

    /// Gives up the typed handle and returns the id, for mTCP-style calls
    /// on [`Stack`] (`close`); the listener stays open until closed there.
    pub fn into_id(mut self) -> SockId {
        self.live = false;
        self.id
    }

    /// The stack this listener belongs to.
    pub fn stack(&self) -> &Stack {
        &self.stack
    }

    /// The local address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Stops listening and frees the id; connections not yet accepted are
    /// reset. `BadHandle` when it was closed already (through its id).
    pub fn close(mut self) -> Result<()> {
        self.live = false;
        let mut inner = self.stack.lock();
        if inner
            .table
            .get_mut(self.id.index(), Some(self.generation))
            .is_none()
        {
            return Err(bad_handle(self.id, "close"));
        }
        inner.close_listener(self.id.index());
        drop(inner);
        self.stack.kick();
        Ok(())
    }
}

/// Accepts on the listener in slot `index`: the first connection of its
/// backlog whose handshake completed becomes a stream with an id of its own.
pub(crate) async fn accept_on(
    stack: &Stack,
    id: SockId,
    generation: Option<u32>,
    deadline: Deadline,
) -> Result<UtcpStream> {
    let index = id.index();
    let ready = poll_fn(|cx| {
        let mut guard = stack.lock();
        let inner = &mut *guard;
        let port = match inner.table.get_mut(index, generation) {
            Some(Entry::Listener { port }) => *port,
            Some(Entry::Stream(_)) => {
                return Poll::Ready(Err(Error::new(ErrorKind::InvalidType)
                    .detail("accept needs a listener, this is a connection")));
            }
            None => return Poll::Ready(Err(Error::new(ErrorKind::BadHandle))),
        };
        if let Some(e) = inner.device_gone() {
            return Poll::Ready(Err(e));
        }
        let backlog = inner
            .listeners
            .get_mut(&port)
            .expect("a live listener has a backlog");
        let Some(key) = backlog.ready.pop_front() else {
            if !backlog
                .waker
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
            {
                backlog.waker = Some(cx.waker().clone());
            }
            return Poll::Pending;
        };
        if let Some(conn) = inner.conns.get(key) {
            conn.owner = Owner::Stream;
        }
        let (new_index, new_generation) = inner.table.insert(Entry::Stream(key));
        Poll::Ready(Ok(UtcpStream::new(stack, inner, new_index, new_generation)))
    });
    deadline
        .run(ready)
        .await
        .and_then(|r| r)
        .map_err(|e| e.during("accept").on(id))
}

impl Stack {
    /// mTCP `mtcp_accept` on listener `id`: the next connection until
    /// `deadline`. `InvalidType` when `id` is a connection.
    pub async fn accept(&self, id: SockId, deadline: Deadline) -> Result<UtcpStream> {
        drop(self.lock_for(id, "accept")?);
        accept_on(self, id, None, deadline).await
    }
}

impl Listener for UtcpListener {
    type Conn = UtcpStream;

    async fn accept(&mut self, deadline: Deadline) -> Result<UtcpStream> {
        UtcpListener::accept(self, deadline).await
    }

    fn local_endpoint(&self) -> Endpoint {
        endpoint_of(self.local)
    }
}

impl Drop for UtcpListener {
    fn drop(&mut self) {
        if std::mem::take(&mut self.live) {
            let mut inner = self.stack.lock();
            if inner
                .table
                .get_mut(self.id.index(), Some(self.generation))
                .is_some()
            {
                inner.close_listener(self.id.index());
            }
            drop(inner);
            self.stack.kick();
        }
    }
}

#[cfg(test)]
mod tests {
    use smoltcp::time::{Duration, Instant};

    use crate::fuzzing::{SYN, arp_request, tcp_segment};
    use crate::{MemLink, Stack, UtcpListener};

    /// A stack polled by hand on a clock the test moves, listening on 80
    /// with a backlog of 1, and the raw other end of its link.
    fn stack() -> (Stack, UtcpListener, crate::MemPort) {
        let (port, peer) = MemLink::pair();
        let (stack, _waiter) = Stack::builder(port)
            .address("10.0.0.2/24".parse().unwrap())
            .mac(crate::fuzzing::MAC)
            .assemble(Some(1))
            .unwrap();
        let listener = UtcpListener::bind(&stack, 80, 1).unwrap();
        peer.send_frame(&arp_request());
        (stack, listener, peer)
    }

    fn flags_sent(peer: &crate::MemPort) -> Vec<u8> {
        std::iter::from_fn(|| peer.recv_frame())
            .filter(|f| f.len() >= 54 && f[23] == 6)
            .map(|f| f[47])
            .collect()
    }

    #[test]
    fn a_handshake_the_peer_abandons_gives_its_place_in_the_backlog_back() {
        let (stack, _listener, peer) = stack();
        let t0 = Instant::from_secs(1000);
        let syn_from = |port: u16| {
            let mut f = tcp_segment(80, 1, 0, SYN, &[]);
            f[34..36].copy_from_slice(&port.to_be_bytes());
            f
        };
        peer.send_frame(&syn_from(1));
        stack.lock().poll_at(t0);
        assert_eq!(flags_sent(&peer), [0x12], "a SYN-ACK");
        // The backlog of 1 is full: a second SYN is dropped.
        peer.send_frame(&syn_from(2));
        stack.lock().poll_at(t0 + Duration::from_millis(10));
        assert_eq!(flags_sent(&peer), [] as [u8; 0]);
        // The first peer never answers; past the handshake timeout its
        // socket gives up with a reset (SYN-ACK retransmits before that).
        let mut t = t0;
        let mut sent = Vec::new();
        while t < t0 + Duration::from_secs(21) {
            t += Duration::from_millis(250);
            stack.lock().poll_at(t);
            sent.extend(flags_sent(&peer));
        }
        assert!(
            sent.last().is_some_and(|f| f & 0x04 != 0),
            "a reset at the end: {sent:?}"
        );
        assert!(sent[..sent.len() - 1].iter().all(|&f| f == 0x12));
        // And the second peer's retransmitted SYN now finds room.
        peer.send_frame(&syn_from(2));
        stack.lock().poll_at(t + Duration::from_millis(10));
        assert_eq!(flags_sent(&peer), [0x12]);
    }
}
