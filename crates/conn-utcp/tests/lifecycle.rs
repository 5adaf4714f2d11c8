//! The lifecycle suite (conn-test-support's, shared by every transport)
//! over a MemLink: two smoltcp stacks in this process.

use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};

use conn_test_support::lifecycle::{Harness, Promise, Released};
use conn_utcp::{MemLink, Stack, UtcpConnector, UtcpListener, UtcpStream};

/// Two stacks on a fresh link, in a subnet of their own (the memlink
/// tests count up from 1; these count down from 250).
struct Utcp {
    server: Stack,
    client: Stack,
    port: AtomicU16,
}

impl Utcp {
    fn new() -> Utcp {
        static NET: AtomicU32 = AtomicU32::new(250);
        let n = NET.fetch_sub(1, Ordering::Relaxed);
        let (a, b) = MemLink::pair();
        let stack = |link, host| {
            Stack::builder(link)
                .address(format!("10.{n}.0.{host}/24").parse().unwrap())
                .build()
                .unwrap()
        };
        Utcp {
            server: stack(a, 1),
            client: stack(b, 2),
            port: AtomicU16::new(7000),
        }
    }
}

impl Harness for Utcp {
    type Listener = UtcpListener;
    type Conn = UtcpStream;
    type Connector = UtcpConnector;

    fn bind(&self) -> UtcpListener {
        let port = self.port.fetch_add(1, Ordering::Relaxed);
        UtcpListener::bind(&self.server, port, 4).unwrap()
    }
    fn connector(&self) -> UtcpConnector {
        UtcpConnector::new(self.client.clone())
    }
    fn released(&self, conn: &UtcpStream) -> Released {
        let (stack, id) = (conn.stack().clone(), conn.id());
        Released::when(move || stack.state(id).is_err())
    }
    /// No other process holds a copy of a userspace socket: releasing it
    /// is ending it, with a reset (mTCP `mtcp_abort`).
    fn kill_resets(&self) -> bool {
        true
    }
    /// utcp errors name the socket id (`mtcp_*`'s handle).
    fn errors_name_the_endpoint(&self) -> bool {
        false
    }
    fn bulk(&self) -> usize {
        1 << 20
    }
    fn cannot_keep(&self, promise: Promise) -> Option<&'static str> {
        match promise {
            Promise::CloseReset => Some(
                "a reset that arrives before close ends the socket, and closing an ended \
                 connection is NotConnected (mTCP mtcp_close); memlink.rs tests both",
            ),
            Promise::KillAfterFork | Promise::EmfileRecovery => {
                Some("a userspace socket is no descriptor: no copy across fork, no EMFILE")
            }
            Promise::AcceptUntil => Some("UtcpListener has no accept_until"),
        }
    }
}

conn_test_support::lifecycle_suite!(Utcp::new());
