//! Sessions of processes, tasks and connections signalled as one: SGI
//! Array Services' array sessions, on one machine.
//!
//! * [`Session`]: a set of members under one 64-bit handle, an [`Ash`].
//!   Processes join by being spawned into it or adopted, and everything
//!   they fork belongs to it too: the session is a cgroup v2 of its own
//!   where the machine lets us write one, pidfds plus a child subreaper
//!   otherwise ([`Backend`]).
//! * In-process members: tasks ([`SessionMember`], a stream of
//!   [`Signal`]s), `conn_core::layer::Shutdown` controllers and
//!   connections ([`SessionConn`]): SIGTERM means graceful shutdown,
//!   SIGKILL means kill.
//! * [`signal_local`] (`askillash_local`): signal every member present now
//!   and report each ([`SignalReport`]); [`signal_local_atomic`] freezes the
//!   session first, so no fork escapes. Processes are signalled parents
//!   before children, so none can reap its signalled children and exit
//!   normally before its own signal comes.
//! * [`daemon`] (`sessiond`): sessions that outlive their clients, on a
//!   Unix socket, with the kernel's `kill(2)` permission rule per member
//!   ([`Caller`], [`Rule`]; Array Services' wider rule only when
//!   configured), sessions owned by the uid that made them, and
//!   array-wide kills fanned out to peer daemons over HMAC-authenticated TCP, or, with `sessiond --cluster corosync` (cargo
//!   feature `corosync`), to every node of the corosync cluster over CPG;
//!   [`client`] has `askillash_server` and
//!   `askillash_array` ([`client::signal_server`], [`client::signal_array`]);
//!   [`wire`] is its frame format; [`cli`] the `session` command line.
//!
//! # Example: stop a process tree and a server's connections together
//!
//! ```
//! use std::time::Duration;
//! use conn_core::layer::Shutdown;
//! use signal_session::{Member, Outcome, Session, signal_local};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
//! let session = Session::builder().kill_on_drop(true).create()?;
//! let mut sleep = tokio::process::Command::new("sleep");
//! sleep.arg("100");
//! let mut worker = session.spawn(sleep)?;
//! let calls = Shutdown::new();
//! let id = session.add_shutdown(&calls);
//!
//! let report = signal_local(session.ash(), libc::SIGTERM)?;
//! assert_eq!(report.outcome(Member::Shutdown(id)), Some(Outcome::Signalled));
//! assert!(calls.is_triggered());                    // new calls are refused now
//! assert!(!worker.wait().await?.success());         // the process got SIGTERM
//! # Ok(()) }
//! ```

mod ash;
mod backend;
mod caller;
mod cgroup;
#[cfg(feature = "daemon")]
pub mod cli;
pub mod client;
mod conn;
#[cfg(feature = "daemon")]
pub mod daemon;
#[doc(hidden)]
pub mod fuzzing;
mod local;
mod order;
mod protect;
mod registry;
mod report;
mod session;
mod signal;
mod signalling;
mod sys;
mod tracker;
pub mod wire;

pub use ash::Ash;
pub use backend::{Backend, BackendChoice};
pub use caller::{Caller, Rule};
pub use conn::SessionConn;
pub use local::{MemberId, SessionMember};
pub use report::{Member, Outcome, SignalReport};
pub use session::{Session, SessionBuilder};
pub use signal::Signal;
pub use signalling::{sessions, signal_local, signal_local_atomic};
