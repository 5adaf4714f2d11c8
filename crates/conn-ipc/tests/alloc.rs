//! What a steady `accept_into` loop allocates, counted by a global allocator.
//!
//! Allocations are counted per thread, only while a measured section runs,
//! on a current-thread runtime (so tokio's driver runs on the counted
//! thread too). Clients are plain blocking `std` sockets driven between the
//! measured sections, so only the server side is counted.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::os::unix::net::{SocketAddr, UnixStream as StdStream};
use std::time::Duration;

use common::temp_path;
use conn_core::{Deadline, Listener};
use conn_ipc::{IpcListener, IpcSlot};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Counting;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    let _ = ON.try_with(|on| {
        if on.get() {
            let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

// SAFETY: every call is passed on to the system allocator unchanged; the
// counting touches only const-initialised thread-locals, which never
// allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's contract is System's contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Counts the allocations this thread makes while `f`'s future runs.
async fn counted<T>(f: impl std::future::Future<Output = T>) -> (T, u64) {
    let before = ALLOCS.with(Cell::get);
    ON.with(|on| on.set(true));
    let out = f.await;
    ON.with(|on| on.set(false));
    (out, ALLOCS.with(Cell::get) - before)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn liveness() -> Deadline {
    Deadline::after(Duration::from_secs(30))
}

// Enough rounds for tokio's cooperative budget (128 operations a task
// tick) to run out once: the first time it does, tokio's list of deferred
// wake-ups grows, once for the thread's life.
const WARMUP: usize = 60;
const ROUNDS: usize = 500;

#[test]
fn a_steady_accept_into_loop_serving_ready_requests_allocates_nothing() {
    runtime().block_on(async {
        let path = temp_path("alloc-steady");
        let addr = SocketAddr::from_pathname(&path).unwrap();
        let mut listener = IpcListener::bind(&path).unwrap();
        let mut slot = IpcSlot::with_buffer(256);
        let mut total = 0;
        for round in 0..WARMUP + ROUNDS {
            // The client sends its request and its end, unmeasured.
            let mut client = StdStream::connect_addr(&addr).unwrap();
            client.write_all(b"ping").unwrap();
            client.shutdown(std::net::Shutdown::Write).unwrap();

            // Accept, read the request, answer, close in order: measured.
            let (registered, allocs) = counted(async {
                let conn = listener.accept_into(&mut slot, liveness()).await.unwrap();
                let registered_after_accept = conn.is_registered();
                let (conn, buf) = slot.parts();
                let conn = conn.unwrap();
                let mut len = 0;
                loop {
                    match conn.read(&mut buf[len..]).await.unwrap() {
                        0 => break,
                        n => len += n,
                    }
                }
                assert!(&buf[..len] == b"ping");
                conn.write_all(b"pong").await.unwrap();
                let registered = registered_after_accept || conn.is_registered();
                slot.close(liveness()).await.unwrap();
                registered
            })
            .await;
            assert!(!registered, "no step had to wait, so nothing registered");
            if round >= WARMUP {
                total += allocs;
            }

            let mut answer = Vec::new();
            client.read_to_end(&mut answer).unwrap();
            assert_eq!(answer, b"pong");
        }
        assert_eq!(total, 0, "allocations in {ROUNDS} accept_into rounds");
    });
}

/// A connection whose first read must wait joins tokio's reactor, and that
/// costs exactly what registering any descriptor with tokio costs, measured
/// the same way with a bare `tokio::io::unix::AsyncFd`.
#[test]
fn a_connection_that_must_wait_costs_only_tokios_registration() {
    runtime().block_on(async {
        // Baseline: register a socket with tokio, wait until it is readable
        // (the peer writes after the wait began), read, drop.
        let mut baseline = 0;
        for round in 0..WARMUP + ROUNDS {
            let (ours, mut peer) = StdStream::pair().unwrap();
            ours.set_nonblocking(true).unwrap();
            let (_, allocs) = counted(async {
                // SAFETY: the std stream owns its descriptor, which stays
                // open until the AsyncFd (its new owner) is dropped.
                let afd = unsafe { tokio::io::unix::AsyncFd::register(ours) }.unwrap();
                let wait = async {
                    let mut guard = afd.readable().await.unwrap();
                    let mut byte = [0u8; 1];
                    let n = guard
                        .try_io(|s| s.get_ref().read(&mut byte))
                        .unwrap()
                        .unwrap();
                    assert_eq!(n, 1);
                };
                let send = async {
                    tokio::task::yield_now().await;
                    peer.write_all(b"x").unwrap();
                };
                tokio::join!(wait, send);
                drop(afd);
            })
            .await;
            if round >= WARMUP {
                baseline += allocs;
            }
        }

        // The same with an accepted connection in a reused slot.
        let path = temp_path("alloc-wait");
        let addr = SocketAddr::from_pathname(&path).unwrap();
        let mut listener = IpcListener::bind(&path).unwrap();
        let mut slot = IpcSlot::with_buffer(256);
        let mut ours = 0;
        for round in 0..WARMUP + ROUNDS {
            let mut client = StdStream::connect_addr(&addr).unwrap();
            let (registered, allocs) = counted(async {
                listener.accept_into(&mut slot, liveness()).await.unwrap();
                let (conn, buf) = slot.parts();
                let conn = conn.unwrap();
                let wait = async {
                    let n = conn.read(&mut buf[..1]).await.unwrap();
                    assert_eq!(n, 1);
                };
                let send = async {
                    tokio::task::yield_now().await;
                    client.write_all(b"x").unwrap();
                };
                tokio::join!(wait, send);
                let registered = conn.is_registered();
                slot.kill();
                registered
            })
            .await;
            assert!(registered, "the read had to wait");
            if round >= WARMUP {
                ours += allocs;
            }
        }
        println!(
            "per connection: ours {ours}/{ROUNDS}, bare tokio registration {baseline}/{ROUNDS}"
        );
        assert!(
            baseline > 0,
            "tokio's registration allocates (if not, tighten this test)"
        );
        assert_eq!(ours, baseline, "ours {ours} vs tokio's own {baseline}");
    });
}
