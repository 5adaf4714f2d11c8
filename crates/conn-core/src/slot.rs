//! Caller-owned storage for one accepted connection and its buffer.

use crate::{Connection, Deadline, Error, ErrorKind, Result};

/// Caller-owned storage for one accepted connection and its buffer, reused
/// across connections by a listener's `accept_into` (libdill's
/// `ipc_storage`, `ipc_accept_mem`). The socket transports name it for
/// their stream type: `conn_ipc::IpcSlot`, `conn_tcp::TcpSlot`.
///
/// ```
/// use conn_core::{Connection, Deadline, slot::Slot, mem::{MemListener, MemStream}};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let mut listener = MemListener::bind("slot-doc")?;
/// let mut slot: Slot<MemStream> = Slot::with_buffer(1024);
/// assert!(slot.is_empty());
///
/// let _client = MemStream::connect("slot-doc", Deadline::NEVER).await?;
/// slot.put(conn_core::Listener::accept(&mut listener, Deadline::NEVER).await?);
/// assert!(!slot.is_empty());
/// assert_eq!(slot.buffer().len(), 1024);
/// slot.kill(); // the slot is empty again, its buffer kept
/// assert!(slot.is_empty());
/// # Ok(()) }
/// ```
///
/// The buffer is scratch space: it keeps whatever the previous connection
/// left in it. Nothing here allocates after [`Slot::with_buffer`].
#[derive(Debug)]
pub struct Slot<C> {
    conn: Option<C>,
    buf: Box<[u8]>,
}

impl<C> Default for Slot<C> {
    fn default() -> Self {
        Slot {
            conn: None,
            buf: Box::default(),
        }
    }
}

impl<C: Connection> Slot<C> {
    /// An empty slot without a buffer.
    pub fn new() -> Slot<C> {
        Slot::default()
    }

    /// An empty slot with a `len`-byte buffer, allocated once here.
    pub fn with_buffer(len: usize) -> Slot<C> {
        Slot {
            conn: None,
            buf: vec![0; len].into_boxed_slice(),
        }
    }

    /// True when no connection is in the slot.
    pub fn is_empty(&self) -> bool {
        self.conn.is_none()
    }

    /// The connection in the slot.
    pub fn conn(&mut self) -> Option<&mut C> {
        self.conn.as_mut()
    }

    /// The slot's buffer.
    pub fn buffer(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// The connection and the buffer at once.
    pub fn parts(&mut self) -> (Option<&mut C>, &mut [u8]) {
        (self.conn.as_mut(), &mut self.buf)
    }

    /// Takes the connection out, leaving the slot empty.
    pub fn take(&mut self) -> Option<C> {
        self.conn.take()
    }

    /// Puts `conn` in the slot, killing a connection still there first.
    pub fn put(&mut self, conn: C) -> &mut C {
        self.kill();
        self.conn.insert(conn)
    }

    /// Closes the connection in the slot in order (see
    /// [`Connection::close`]); the slot is empty afterwards, whatever this
    /// returns. `BadHandle` when the slot is empty.
    pub async fn close(&mut self, deadline: Deadline) -> Result<()> {
        match self.conn.take() {
            Some(conn) => conn.close(deadline).await,
            None => Err(Error::new(ErrorKind::BadHandle)
                .during("close")
                .detail("the slot holds no connection")),
        }
    }

    /// Kills the connection in the slot, if any (see [`Connection::kill`]).
    pub fn kill(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.kill();
        }
    }
}
