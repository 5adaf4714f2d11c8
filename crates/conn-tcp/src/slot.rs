use crate::TcpStream;

/// Caller-owned storage for one accepted connection and its buffer, reused
/// across connections by [`Listener::accept_into`] (libdill's
/// `tcp_storage`): conn-core's shared [`Slot`](conn_core::slot::Slot) for
/// [`TcpStream`].
///
/// ```
/// use conn_core::{Deadline, Listener};
/// use conn_tcp::{TcpListener, TcpSlot};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let mut listener = TcpListener::bind("127.0.0.1:0")?;
/// let mut slot = TcpSlot::with_buffer(1024);
/// assert!(slot.is_empty());
///
/// let _client = std::net::TcpStream::connect(listener.local_addr())?;
/// listener.accept_into(&mut slot, Deadline::NEVER).await?;
/// assert!(!slot.is_empty());
/// slot.kill(); // the slot is empty again, its buffer kept
/// assert!(slot.is_empty());
/// # Ok(()) }
/// ```
///
/// [`Listener::accept_into`]: conn_core::Listener::accept_into
pub type TcpSlot = conn_core::slot::Slot<TcpStream>;
