//! corosync's closed process groups (CPG), as an async group for tokio.
//!
//! connkit's daemons reach beyond one machine through an existing
//! group-communication engine, never a ring protocol of their own: corosync's
//! Totem (extended virtual synchrony, the line of research Spread's ring came
//! from) through its CPG service, reached with `rust-corosync` over Debian's
//! `libcpg`. This crate is that thin layer:
//!
//! * [`CpgGroup`]: join a named group through the local corosync, multicast
//!   to it, and receive a stream of [`Event`]s: messages in one agreed order
//!   at every member, and membership changes with CPG's reasons
//!   ([`Reason`]: join, leave, node down, node up, process down), each
//!   delivered in the same place of the order at every member (virtual
//!   synchrony). The descriptor joins tokio's reactor; nothing polls.
//! * [`cluster_nodes`]: the cluster's configured nodes, up or down (the
//!   `nodelist` in corosync's configuration map).
//! * [`testbed`]: corosync nodes in network namespaces of their own, joined
//!   by a bridge, for tests and demos that need a real cluster on one
//!   machine; links can be cut and nodes killed.
//!
//! # Example
//!
//! ```no_run
//! use conn_cpg::{CpgGroup, Event};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
//! // Needs a running corosync on this node (see `testbed` for one in a namespace).
//! let mut group = CpgGroup::join("connkit-doc")?;
//! group.send(b"hello").await?;
//! loop {
//!     match group.next().await? {
//!         Event::Message { from, bytes } => println!("{from}: {:?}", String::from_utf8_lossy(&bytes)),
//!         Event::Membership(change) => println!("now {} members", change.members.len()),
//!     }
//! }
//! # }
//! ```

mod error;
mod event;
mod group;
mod nodes;
pub mod testbed;

pub use event::{Event, Member, Membership, Reason};
pub use group::CpgGroup;
pub use nodes::{ClusterNode, cluster_nodes};
