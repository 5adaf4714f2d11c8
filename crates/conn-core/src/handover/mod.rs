//! Zero-downtime restart: a running server hands its listening sockets to
//! a successor process over a Unix socket, then drains.
//!
//! The protocol (nginx's binary upgrade, HAProxy's `-x`, Envoy's hot
//! restart, in their shape), one successor at a time:
//!
//! 1. The running server offers its listeners on a path ([`Offer::bind`]),
//!    each under a name, its endpoint (`tcp://0.0.0.0:80`,
//!    `ipc:///run/app.sock`).
//! 2. A successor connects and sends `Take` ([`take`]). The server reads
//!    its credentials (`SO_PEERCRED`): a successor that is neither of the
//!    server's uid nor root gets `Refused{why}` and nothing else.
//! 3. The server answers `Offer{names}` with copies of the listening
//!    descriptors beside it (`SCM_RIGHTS`). It keeps accepting: both
//!    processes now hold the same kernel sockets, so no connection waiting
//!    in a queue is lost whichever of them accepts it.
//! 4. The successor starts accepting on them and sends `Confirm`
//!    ([`Confirmation::confirm`]), or `Refused{why}` if they are not what it
//!    serves. Only `Confirm` ([`Attempt::Taken`]) makes the server stop
//!    accepting; it removes its offer's socket file, hangs up (which tells
//!    the successor the path is free for its own offer), drains within its
//!    deadline and exits with its report. A successor that dies or hangs up
//!    before confirming changes nothing: the server serves and offers on.
//!
//! # Who closes, who unlinks
//!
//! Neither side closes a descriptor the other needs: the server sends
//! copies and closes its own only after `Confirm`, by which time the
//! successor accepts on its copies; a successor that goes away closes only
//! its copies. A Unix-domain listener's socket file is never removed during
//! a handover: the server that handed it over leaves it when it exits, and
//! the successor's listener, made from the inherited descriptor, owns the
//! path from its `Confirm` on and removes it when it exits without handing
//! over in turn (`conn_ipc::IpcListener::own_socket_file`). Sockets passed
//! by systemd ([`activation`](crate::activation)) belong to systemd and are
//! never removed.
//!
//! The frames ([`wire`]) follow connkit's wire pattern: a checked view and a
//! `Repr` that parses and emits.
//!
//! # Example
//!
//! ```
//! use std::os::fd::OwnedFd;
//! use std::time::Duration;
//! use conn_core::activation::NamedFd;
//! use conn_core::handover::{Attempt, Offer, take};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
//! let path = std::env::temp_dir().join(format!("conn-core-handover-doc-{}.sock", std::process::id()));
//! let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
//! let name = format!("tcp://{}", listener.local_addr().unwrap());
//! let copy = OwnedFd::from(listener.try_clone().unwrap());
//!
//! // The running server offers a copy of its listener...
//! let mut offer = Offer::bind(&path, vec![NamedFd { name: name.clone(), fd: copy }])?;
//! let server = tokio::spawn(async move {
//!     match offer.next().await? {
//!         Attempt::Taken(handed) => { offer.release(handed); Ok(true) }
//!         _ => Ok::<_, conn_core::Error>(false),
//!     }
//! });
//!
//! // ...a successor takes it, and confirms once it accepts on it.
//! let received = take(&path).await?.expect("a server offers there");
//! assert_eq!(received.listeners[0].name, name);
//! let taken = std::net::TcpListener::from(received.listeners.into_iter().next().unwrap().fd);
//! assert_eq!(taken.local_addr().unwrap(), listener.local_addr().unwrap());
//! received.confirmation.confirm(Duration::from_secs(5)).await?;
//! assert!(server.await.unwrap()?);
//! assert!(!path.exists(), "the offer's socket file is gone, free for the successor's offer");
//!
//! // Nothing offers there now.
//! assert!(take(&path).await?.is_none());
//! # Ok(()) }
//! ```

mod channel;
mod offer;
mod peer;
mod take;
pub mod wire;

pub use crate::activation::NamedFd;
pub use offer::{Attempt, CONFIRM_WITHIN, Handed, Offer};
pub use take::{Confirmation, Received, take};

#[cfg(test)]
mod tests;
