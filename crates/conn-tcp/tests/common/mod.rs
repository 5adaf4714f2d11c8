//! Helpers of conn-tcp's integration tests: deadlines, closed ports and std
//! peers, plus the descriptor and child-process helpers every transport's
//! tests share.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use conn_core::Deadline;
// Not every test binary uses every shared helper.
#[allow(unused_imports)]
pub use conn_test_support::*;

/// Long enough never to be reached by a working implementation.
pub fn liveness() -> Deadline {
    Deadline::after(Duration::from_secs(30))
}

/// The same, for blocking std peers.
pub const PEER_TIMEOUT: Option<Duration> = Some(Duration::from_secs(30));

/// A loopback address nobody listens on (a port the kernel just handed
/// out and took back).
pub fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A blocking std peer with generous timeouts, so a broken test fails
/// instead of hanging.
pub fn std_peer(stream: std::net::TcpStream) -> std::net::TcpStream {
    stream.set_read_timeout(PEER_TIMEOUT).unwrap();
    stream.set_write_timeout(PEER_TIMEOUT).unwrap();
    stream
}
