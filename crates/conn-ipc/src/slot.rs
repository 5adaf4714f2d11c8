use conn_core::{Connection, Deadline, Error, ErrorKind, Result};

use crate::IpcStream;

/// Caller-owned storage for one accepted connection and its buffer, reused
/// across connections by [`IpcListener::accept_into`] (libdill's
/// `ipc_storage`).
///
/// ```
/// use conn_core::Deadline;
/// use conn_ipc::{IpcListener, IpcSlot, IpcStream};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let name = format!("@conn-ipc-slot-type-doc-{}", std::process::id());
/// let mut listener = IpcListener::bind(&name)?;
/// let mut slot = IpcSlot::with_buffer(1024);
/// assert!(slot.is_empty());
///
/// let _client = IpcStream::connect(&name, Deadline::NEVER).await?;
/// listener.accept_into(&mut slot, Deadline::NEVER).await?;
/// assert!(!slot.is_empty());
/// assert_eq!(slot.buffer().len(), 1024);
/// slot.kill(); // the slot is empty again, its buffer kept
/// assert!(slot.is_empty());
/// # Ok(()) }
/// ```
///
/// The buffer is scratch space: it keeps whatever the previous connection
/// left in it. Nothing here allocates after [`IpcSlot::with_buffer`].
///
/// [`IpcListener::accept_into`]: crate::IpcListener::accept_into
#[derive(Debug, Default)]
pub struct IpcSlot {
    conn: Option<IpcStream>,
    buf: Box<[u8]>,
}

impl IpcSlot {
    /// An empty slot without a buffer.
    pub fn new() -> IpcSlot {
        IpcSlot::default()
    }

    /// An empty slot with a `len`-byte buffer, allocated once here.
    pub fn with_buffer(len: usize) -> IpcSlot {
        IpcSlot {
            conn: None,
            buf: vec![0; len].into_boxed_slice(),
        }
    }

    /// True when no connection is in the slot.
    pub fn is_empty(&self) -> bool {
        self.conn.is_none()
    }

    /// The connection in the slot.
    pub fn conn(&mut self) -> Option<&mut IpcStream> {
        self.conn.as_mut()
    }

    /// The slot's buffer.
    pub fn buffer(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// The connection and the buffer at once.
    pub fn parts(&mut self) -> (Option<&mut IpcStream>, &mut [u8]) {
        (self.conn.as_mut(), &mut self.buf)
    }

    /// Takes the connection out, leaving the slot empty.
    pub fn take(&mut self) -> Option<IpcStream> {
        self.conn.take()
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

    pub(crate) fn put(&mut self, conn: IpcStream) -> &mut IpcStream {
        self.conn.insert(conn)
    }
}
