//! Unix-domain byte streams with connkit's lifecycle (libdill's `ipc_*`).
//!
//! * [`IpcListener`]: `bind` at a path or a Linux abstract name (`@name`),
//!   with the socket file's mode, stale files replaced and the file removed
//!   when the listener goes; `accept`, `accept_until` a cancellation token,
//!   and ([`Listener::accept_into`](conn_core::Listener::accept_into)) an
//!   [`IpcSlot`] without allocating.
//! * [`IpcStream`]: `connect`, `pair`, `from_fd`, [`peer_cred`](IpcStream::peer_cred),
//!   and [`Connection`](conn_core::Connection)'s `done` / `close` / `kill`.
//! * [`IpcTransport`] and [`register`]: the `ipc://` scheme in a
//!   [`Registry`](conn_core::Registry).
//!
//! The stream and listener are conn-core's one socket skeleton
//! ([`conn_core::socket`]) for Unix-domain sockets; this crate keeps its
//! addresses, socket files and options.
//!
//! Every call that can block takes a [`Deadline`](conn_core::Deadline), and
//! every error names its operation and target:
//! `accept on ipc:///run/x.sock: process fd limit reached (EMFILE)`.
//!
//! # Example
//!
//! ```
//! use conn_core::{Connection, Deadline};
//! use conn_ipc::{IpcListener, IpcStream};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
//! let path = std::env::temp_dir().join(format!("conn-ipc-lib-doc-{}.sock", std::process::id()));
//! let mut listener = IpcListener::options().mode(0o600).bind(&path)?;
//! let mut client = IpcStream::connect(&path, Deadline::NEVER).await?;
//! let mut server = listener.accept(Deadline::NEVER).await?;
//!
//! client.write_all(b"request").await?;
//! client.done(Deadline::NEVER).await?;
//! let mut request = Vec::new();
//! server.read_to_end(&mut request).await?;
//! server.write_all(b"answer").await?;
//! server.close(Deadline::NEVER).await?;
//!
//! let mut answer = Vec::new();
//! client.read_to_end(&mut answer).await?;
//! assert_eq!(answer, b"answer");
//! client.close(Deadline::NEVER).await?;
//! # Ok(()) }
//! ```

mod addr;
mod family;
mod listener;
mod slot;
mod stream;
mod transport;

pub use conn_core::PeerCred;
pub use listener::{IpcListener, IpcListenerOptions, SocketFileOwner};
pub use slot::IpcSlot;
pub use stream::IpcStream;
pub use transport::{IpcConnector, IpcTransport, register};
