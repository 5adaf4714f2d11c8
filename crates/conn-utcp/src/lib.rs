//! Userspace TCP on smoltcp with connkit's lifecycle, after mTCP.
//!
//! * [`Stack`]: the per-core context (mTCP's `mctx_t`): one smoltcp
//!   interface, its sockets and one device, driven by one task that sleeps
//!   until frames, a socket call or a timer need it. Sockets are named by
//!   [`SockId`]s, reused once closed, with `mtcp_close`'s errors
//!   (`WrongContext`, `BadHandle`, `NotConnected`, `InvalidType`).
//! * [`UtcpListener`] (bind, accept with a deadline, a backlog) and
//!   [`UtcpStream`] (connect with a deadline, `AsyncRead`/`AsyncWrite`,
//!   done = FIN, close = FIN and wait for the peer's, kill = RST).
//! * Devices: [`MemLink`] (two stacks in one process, no kernel in the
//!   path), [`Tap`] (Linux TAP, Ethernet, multi-queue) and [`Tun`] (Linux
//!   TUN, bare IPv4/IPv6 packets with no ARP or NDP, multi-queue); ARP,
//!   NDP and ICMP echo are answered by smoltcp.
//! * [`StackGroup`]: one stack per queue of a multi-queue TAP or TUN device.
//! * [`UtcpTransport`] / [`register`]: the `utcp://` scheme of one stack;
//!   [`UtcpConnector`] is also a `tower::Service<http::Uri>`.
//!
//! # Example
//!
//! ```
//! use conn_core::{Connection, Deadline, Listener};
//! use conn_utcp::{MemLink, Stack, UtcpListener, UtcpStream};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main] async fn main() -> conn_core::Result<()> {
//! let (a, b) = MemLink::pair();
//! let server = Stack::builder(a).address("10.1.0.1/24".parse().unwrap()).build()?;
//! let client = Stack::builder(b).address("10.1.0.2/24".parse().unwrap()).build()?;
//!
//! let mut listener = UtcpListener::bind(&server, 80, 8)?;
//! let mut c = UtcpStream::connect(&client, "10.1.0.1:80".parse().unwrap(), Deadline::NEVER).await?;
//! let mut s = listener.accept(Deadline::NEVER).await?;
//! c.write_all(b"request").await?;
//! c.done(Deadline::NEVER).await?;            // FIN: the server reads end-of-stream
//! let mut got = Vec::new();
//! s.read_to_end(&mut got).await?;
//! s.write_all(b"answer").await?;             // ...and the client still receives
//! s.close(Deadline::NEVER).await?;
//! let mut answer = Vec::new();
//! c.read_to_end(&mut answer).await?;
//! assert_eq!(answer, b"answer");
//! c.close(Deadline::NEVER).await?;
//! # Ok(()) }
//! ```

mod conns;
mod demux;
mod device;
#[doc(hidden)]
pub mod fuzzing;
mod group;
mod id;
mod listener;
mod stack;
mod stream;
mod time_wait;
mod transport;

pub use device::{Device, MemLink, MemPort, Tap, Tun};
pub use group::StackGroup;
pub use id::SockId;
pub use listener::UtcpListener;
pub use smoltcp::socket::tcp::State as TcpState;
pub use smoltcp::wire::{Ipv4Cidr, Ipv6Cidr};
pub use stack::{Stack, StackBuilder};
pub use stream::UtcpStream;
pub use transport::{DEFAULT_BACKLOG, UtcpConnector, UtcpTransport, register};
