//! The lifecycle suite (conn-test-support's, shared by every transport)
//! on `mem://`.

use std::sync::atomic::{AtomicU32, Ordering};

use conn_core::mem::{MemConnector, MemListener, MemStream};
use conn_test_support::lifecycle::{Harness, Promise, Released};

/// `mem://` for the lifecycle suite: a fresh name per listener.
struct Mem;

impl Harness for Mem {
    type Listener = MemListener;
    type Conn = MemStream;
    type Connector = MemConnector;

    fn bind(&self) -> MemListener {
        static N: AtomicU32 = AtomicU32::new(0);
        MemListener::bind(&format!("suite-{}", N.fetch_add(1, Ordering::Relaxed))).unwrap()
    }
    fn connector(&self) -> MemConnector {
        MemConnector
    }
    fn released(&self, _: &MemStream) -> Released {
        Released::by_ownership("a mem stream is its pipe end and nothing else")
    }
    fn bulk(&self) -> usize {
        4 * conn_core::mem::MEM_BUFFER
    }
    fn cannot_keep(&self, promise: Promise) -> Option<&'static str> {
        match promise {
            Promise::CloseReset => {
                Some("an in-memory pipe has no reset: a vanished peer is end-of-stream")
            }
            Promise::KillAfterFork | Promise::EmfileRecovery => {
                Some("mem connections hold no descriptors and live in one process")
            }
            Promise::AcceptUntil => Some("MemListener has no accept_until"),
        }
    }
}

conn_test_support::lifecycle_suite!(Mem);
