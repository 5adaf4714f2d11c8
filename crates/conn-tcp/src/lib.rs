//! Kernel TCP with connkit's lifecycle: the same accept, connect, done,
//! close and kill as every connkit transport, plus TCP's own `abort`.
//!
//! * [`TcpListener`]: `bind` an IPv4 or IPv6 address (`SO_REUSEADDR`; with
//!   [`TcpListenerOptions`], `SO_REUSEPORT` for per-core listeners and the
//!   backlog), `accept`, `accept_until` a cancellation token,
//!   ([`Listener::accept_into`](conn_core::Listener::accept_into)) a
//!   [`TcpSlot`] without allocating, `from_fd` for socket activation.
//! * [`TcpStream`]: `connect` to an address or a host name (every address
//!   it resolves to, in turn, until the deadline), `TCP_NODELAY` by
//!   default, `from_fd`, [`abort`](TcpStream::abort), and
//!   [`Connection`](conn_core::Connection)'s `done` / `close` / `kill`.
//! * [`TcpTransport`] and [`register`]: the `tcp://` scheme in a
//!   [`Registry`](conn_core::Registry).
//!
//! The stream and listener are conn-core's one socket skeleton
//! ([`conn_core::socket`]: descriptors that join tokio's reactor only when
//! a call would block, accept, the `from_fd` checks, done / close / kill),
//! shared with `conn-ipc`; this crate keeps its addresses and options.
//!
//! Every call that can block takes a [`Deadline`](conn_core::Deadline), and
//! every error names its operation and target:
//! `connect on tcp://127.0.0.1:1: connection refused (ECONNREFUSED)`.
//!
//! # Example
//!
//! ```
//! use conn_core::{Connection, Deadline};
//! use conn_tcp::{TcpListener, TcpStream};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
//! let mut listener = TcpListener::bind("127.0.0.1:0")?;
//! let mut client = TcpStream::connect(listener.local_addr(), Deadline::NEVER).await?;
//! let mut server = listener.accept(Deadline::NEVER).await?;
//!
//! client.write_all(b"request").await?;
//! client.done(Deadline::NEVER).await?;         // FIN: the server reads end-of-stream
//! let mut request = Vec::new();
//! server.read_to_end(&mut request).await?;
//! server.write_all(b"answer").await?;          // ...and the client still receives
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

pub use addr::ToTcpAddr;
pub use listener::{TcpListener, TcpListenerOptions};
pub use slot::TcpSlot;
pub use stream::TcpStream;
pub use transport::{TcpConnector, TcpTransport, register};
