//! Group mailboxes: the `mailboxd` daemon and its client, in the model of
//! the Spread toolkit (`SP_connect`, `SP_join`, `SP_leave`, `SP_multicast`,
//! `SP_receive`, `SP_disconnect`, `SP_kill`).
//!
//! * [`Mailbox`]: connect under a private name (private group
//!   `#name#daemon`), join and leave groups, multicast to groups and private
//!   groups with a [`Service`] level, receive [`Event`]s (messages and
//!   [`Membership`] changes with their [`Cause`]), disconnect or kill. Also a
//!   `futures::Stream` of events; [`MailboxSender`] is a `tower::Service`.
//! * [`daemon`]: the daemon (`mailboxd` is a thin binary around it): one
//!   router sequences every message of every group in one total order;
//!   bounded per-client queues drop clients that fall behind; an optional
//!   [`daemon::Acl`] checks the caller's uid (`SO_PEERCRED`); TCP clients
//!   prove they hold a shared [`Secret`] first (HMAC-SHA256 challenge).
//! * [`wire`]: the frames, in smoltcp's checked-view-and-`Repr` pattern.
//! * [`limits`]: the stated maxima and name rules; [`MailboxError`] names
//!   every refusal.
//!
//! See [`daemon`] for a complete example.

mod auth;
mod client;
#[cfg(feature = "daemon")]
pub mod daemon;
pub mod error;
mod event;
#[doc(hidden)]
pub mod fuzzing;
pub mod limits;
mod name;
mod service;
#[cfg(feature = "corosync")]
pub mod testbed;
pub mod wire;

pub use client::{ConnectOptions, Mailbox, MailboxSender, Outgoing, Result};
pub use conn_core::auth::Secret;
pub use error::MailboxError;
pub use event::{Cause, Event, Membership, Message};
pub use name::GroupName;
pub use service::Service;
