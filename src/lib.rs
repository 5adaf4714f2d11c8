//! connkit: one connection lifecycle over many transports, composed as tower
//! services.
//!
//! This facade re-exports every connkit crate and builds the [`registry`]
//! that knows all of their transports.
//!
//! ```
//! use connkit::core::{Connection, Deadline, Listener};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> connkit::core::Result<()> {
//! let registry = connkit::registry();
//! let mut listener = registry.bind("mem://facade-doc").await?;
//! let client = registry.connect("mem://facade-doc", Deadline::NEVER).await?;
//! let server = listener.accept(Deadline::NEVER).await?;
//! client.kill();
//! server.kill();
//! # Ok(()) }
//! ```

pub use conn_core as core;
pub use conn_ipc as ipc;
pub use conn_mailbox as mailbox;
pub use conn_tcp as tcp;
pub use conn_utcp as utcp;
pub use signal_session as session;

pub mod http;

/// A registry that knows every transport built into connkit: `mem://`,
/// `ipc://` and `tcp://`.
///
/// `utcp://` is not in it: a userspace stack is not process-wide like the
/// kernel's, it is one [`utcp::Stack`] on one device. Register the stack
/// that `utcp://` should mean with [`utcp::register`]`(&mut registry,
/// stack)`.
pub fn registry() -> core::Registry {
    let mut registry = core::Registry::with_defaults();
    ipc::register(&mut registry);
    tcp::register(&mut registry);
    registry
}

/// The README's example, compiled as a doc test so it cannot rot.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
