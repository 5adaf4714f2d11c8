//! Kernel-socket building blocks shared by the socket transports
//! (`conn-ipc`, `conn-tcp`): written once here, so every socket transport
//! waits, accepts, adopts and releases descriptors the same way.
//!
//! | file | job |
//! |---|---|
//! | [`LazyFd`] | a non-blocking descriptor that joins tokio's reactor only when a call would block, so a hot accept loop allocates nothing; dropping it only closes this process's descriptor (a fork-safe kill, never `shutdown(2)`) |
//! | [`LazyFd::poll_read`], [`LazyFd::poll_send`], [`LazyFd::shutdown`] | the byte-stream calls behind `AsyncRead` / `AsyncWrite` / `done` |
//! | [`accept`](accept()) / [`accept_with`] | accept until a [`Deadline`](crate::Deadline), trying the system call first so `Deadline::NOW` accepts a waiting peer and otherwise gives up at once; cancel safe |
//! | [`until_cancelled`] | runs an operation until a `CancellationToken` fires (`Canceled`) |
//! | [`SocketKind::adopt`] | the `from_fd` checks: `NotSocket`, `InvalidType` for the wrong family, type, protocol or role; makes the descriptor non-blocking |
//!
//! The orderly close and half-close live in [`lifecycle`](crate::lifecycle)
//! ([`close_in_order`](crate::lifecycle::close_in_order),
//! [`half_close`](crate::lifecycle::half_close)); socket activation in
//! [`activation`](crate::activation).
//!
//! # Example: a minimal stream type on these parts
//!
//! ```
//! use std::os::fd::OwnedFd;
//! use std::pin::Pin;
//! use std::task::{Context, Poll};
//! use conn_core::sys::LazyFd;
//! use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
//!
//! struct Stream(LazyFd);
//!
//! impl AsyncRead for Stream {
//!     fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
//!         self.get_mut().0.poll_read(cx, buf)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
//! let (a, b) = std::os::unix::net::UnixStream::pair()?;
//! b.set_nonblocking(true)?;
//! let mut b = Stream(LazyFd::new(OwnedFd::from(b)));
//! std::io::Write::write_all(&mut &a, b"hi")?;
//! drop(a);
//! let mut got = Vec::new();
//! b.read_to_end(&mut got).await?;
//! assert_eq!(got, b"hi");
//! # Ok(()) }
//! ```

mod accept;
mod adopt;
mod cancel;
mod lazy_fd;
mod stream_io;

pub use accept::{accept, accept_nonblocking, accept_with};
pub use adopt::{Role, SocketKind};
pub use cancel::until_cancelled;
pub use lazy_fd::{LazyFd, Wait};
