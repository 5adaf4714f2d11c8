//! connkit's core: one connection lifecycle over many transports, composed
//! as tower services.
//!
//! * [`Deadline`]: libdill's deadlines (`NOW`, `NEVER`, a point in time).
//! * [`Error`] / [`ErrorKind`]: one error taxonomy, each kind with its errno.
//! * [`Connection`], [`Listener`], [`Connector`]: the lifecycle (accept,
//!   connect, done, close, kill), with object-safe twins in
//!   [`lifecycle::dynamic`] and a [`Registry`] from URL scheme to transport.
//! * [`mem`]: the in-memory transport, `mem://name`.
//! * [`layer`]: `DeadlineLayer`, `CancelLayer`, `ShutdownLayer`.
//! * [`serve()`]: the accept loop with graceful shutdown.
//! * `auth` (feature `auth`): shared-secret challenge-response, HMAC-SHA256
//!   over a fresh nonce, and secret files only their owner may read.
//! * [`activation`]: systemd socket activation (`LISTEN_FDS`, `LISTEN_FDNAMES`).
//! * [`handover`]: zero-downtime restart, the listeners passed to a successor.
//! * [`socket`]: the one skeleton of the kernel-socket transports
//!   (`conn-ipc`, `conn-tcp`), a stream and a listener generic over a
//!   socket [`Family`](socket::Family).
//! * [`slot::Slot`]: caller-owned storage for `accept_into`.
//! * [`wire`]: the one wire kit every frame format here is built with.
//!
//! # Example: a server composed from layers, shut down gracefully
//!
//! ```
//! use std::time::Duration;
//! use conn_core::{Deadline, layer::{CancelLayer, DeadlineLayer, Shutdown}, mem::{MemListener, MemStream}, serve::{lines, serve}};
//! use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
//! use tokio_util::sync::CancellationToken;
//! use tower::ServiceBuilder;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
//! let calls = Shutdown::new();
//! let service = ServiceBuilder::new()
//!     .layer(calls.layer())                                   // refuse calls after shutdown
//!     .layer(CancelLayer::new(CancellationToken::new()))      // end calls on a token
//!     .layer(DeadlineLayer::new(Duration::from_millis(500)))  // each call within 500 ms
//!     .service_fn(|req: String| async move { Ok::<_, conn_core::Error>(format!("echo {req}")) });
//!
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = tokio::spawn(
//!     serve(MemListener::bind("lib-doc")?, lines(service))
//!         .with_graceful_shutdown(async { stopped.await.ok(); }, Duration::from_secs(1))
//!         .into_future(),
//! );
//!
//! let mut client = BufReader::new(MemStream::connect("lib-doc", Deadline::NEVER).await?);
//! client.get_mut().write_all(b"hi\n").await?;
//! let mut line = String::new();
//! client.read_line(&mut line).await?;
//! assert_eq!(line, "echo hi\n");
//!
//! stop.send(()).unwrap();
//! let report = server.await.unwrap()?;
//! println!("{report}");
//! # Ok(()) }
//! ```

pub mod activation;
#[cfg(feature = "auth")]
pub mod auth;
pub mod budget;
mod deadline;
mod endpoint;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod handover;
pub mod layer;
pub mod lifecycle;
pub mod mem;
mod registry;
pub mod serve;
pub mod slot;
pub mod socket;
mod sys;
pub mod trace;
pub mod wire;

pub use deadline::{Deadline, Timed};
pub use endpoint::Endpoint;
pub use error::{BoxError, Error, ErrorKind, Result, ResultExt};
pub use lifecycle::dynamic::{
    BoxConnection, BoxConnector, BoxListener, DynConnection, DynConnector, DynListener,
};
pub use lifecycle::{Connection, Connector, Listener, PeerAddr, PeerCred};
pub use registry::{Registry, Transport};
pub use serve::{ShutdownReport, serve};
