//! `mem://name`: in-process connections with the full lifecycle.
//!
//! A [`MemListener`] registers a name in a process-wide table; a
//! [`MemStream::connect`] to that name queues one end of a tokio duplex pipe
//! in the listener's backlog and keeps the other. It is the embedded default
//! for tests, examples and the demo: no descriptors, no set-up, but the same
//! done / close / kill semantics as a socket.

mod listener;
mod stream;
mod transport;

pub use listener::MemListener;
pub use stream::MemStream;
pub use transport::{MemConnector, MemTransport};

/// Bytes each direction of a mem connection buffers before a writer waits.
pub const MEM_BUFFER: usize = 64 * 1024;

/// Connections a listener queues before `connect` waits for `accept`.
pub const MEM_BACKLOG: usize = 128;
