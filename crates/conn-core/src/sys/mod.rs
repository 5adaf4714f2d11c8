//! Kernel-socket building blocks behind [`socket`](crate::socket): written
//! once here, so every socket transport waits, accepts, adopts and releases
//! descriptors the same way. Private: the transports use the skeleton.
//!
//! | file | job |
//! |---|---|
//! | [`LazyFd`] | a non-blocking descriptor that joins tokio's reactor only when a call would block, so a hot accept loop allocates nothing; dropping it only closes this process's descriptor (a fork-safe kill, never `shutdown(2)`) |
//! | [`LazyFd::poll_read`], [`LazyFd::poll_send`], [`LazyFd::shutdown`] | the byte-stream calls behind `AsyncRead` / `AsyncWrite` / `done` |
//! | [`accept_with`] | accept until a [`Deadline`](crate::Deadline), trying the system call first so `Deadline::NOW` accepts a waiting peer and otherwise gives up at once; cancel safe |
//! | [`until_cancelled`] | runs an operation until a `CancellationToken` fires (`Canceled`) |
//! | [`SocketKind::adopt`] | the `from_fd` checks: `NotSocket`, `InvalidType` for the wrong family, type, protocol or role; makes the descriptor non-blocking |
//!
//! The orderly close and half-close live in [`lifecycle`](crate::lifecycle)
//! ([`close_in_order`](crate::lifecycle::close_in_order),
//! [`half_close`](crate::lifecycle::half_close)); socket activation in
//! [`activation`](crate::activation).

mod accept;
mod adopt;
mod cancel;
mod lazy_fd;
mod stream_io;

pub(crate) use accept::accept_with;
pub use accept::{accept_from, accept_nonblocking};
pub(crate) use adopt::Role;
pub use adopt::SocketKind;
pub(crate) use cancel::until_cancelled;
pub(crate) use lazy_fd::{LazyFd, Wait};
