use crate::IpcStream;

/// Caller-owned storage for one accepted connection and its buffer, reused
/// across connections by [`Listener::accept_into`] (libdill's
/// `ipc_storage`): conn-core's shared [`Slot`](conn_core::slot::Slot) for
/// [`IpcStream`].
///
/// ```
/// use conn_core::{Deadline, Listener};
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
/// left in it. Nothing here allocates after `IpcSlot::with_buffer`.
///
/// [`Listener::accept_into`]: conn_core::Listener::accept_into
pub type IpcSlot = conn_core::slot::Slot<IpcStream>;
