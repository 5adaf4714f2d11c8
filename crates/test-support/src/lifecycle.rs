//! One conformance suite of the lifecycle's promises, run against every
//! transport: each transport's tests describe it once in a [`Harness`]
//! and instantiate the suite with [`lifecycle_suite!`](crate::lifecycle_suite),
//! so the promises are written once and every transport is held to the
//! same ones.
//!
//! | promise | test |
//! |---|---|
//! | `Deadline::NOW` tries once | [`accept_with_deadline_now_times_out_at_once_and_takes_a_waiting_peer`] |
//! | `done` half-closes | [`done_lets_the_peer_read_end_of_stream_while_this_side_still_receives`] |
//! | `close` Ok, handle released | [`close_drains_until_the_peers_end_returns_ok_and_releases_the_handle`] |
//! | `close` reset, handle released | [`close_is_connection_reset_when_the_peer_vanished_with_unread_data_and_releases_the_handle`] |
//! | `close` timeout, handle released | [`close_times_out_when_the_peer_does_not_end_and_still_releases_the_handle`] |
//! | `kill` | [`kill_releases_the_handle_without_a_handshake`] |
//! | `kill` after fork | [`kill_in_a_child_after_fork_leaves_the_parents_copy_working_both_ways`] |
//! | `accept_into` reuse | [`accept_into_reuses_one_slot_and_kills_what_it_held`] |
//! | cancel safety | [`a_dropped_accept_loses_no_connection`], [`accept_until_a_fired_token_is_canceled_and_loses_no_peer`] |
//! | EMFILE recovery | [`accept_is_process_fd_limit_at_emfile_and_serve_recovers`] |
//!
//! A transport that cannot keep a promise says which and why in
//! [`Harness::cannot_keep`], so the suite lists every transport's
//! exceptions in one place (the harnesses) rather than in missing tests.
//! An excused test still checks what the excuse claims: a transport that
//! says it has no descriptors (no fork copies, no EMFILE) has none, one
//! without `accept_until` has none, and one whose `close` after a vanished
//! peer is not `ConnectionReset` still ends that close at once, without a
//! timeout, and releases the handle. A transport that gains the ability
//! fails the excused test until it takes the promise.

use std::fmt;
use std::future::Future;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::time::Duration;

use conn_core::serve::{lines, serve};
use conn_core::slot::Slot;
use conn_core::{Connection, Connector, Deadline, Error, ErrorKind, Listener, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::{at_once, child, child_done, fd_identity, pass_as_fd_3, role, run_child};

/// The promises a transport may be unable to keep, for
/// [`Harness::cannot_keep`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Promise {
    /// `close` is `ConnectionReset` when the peer vanished with data unread.
    CloseReset,
    /// `kill` in one process leaves another process's copy working.
    KillAfterFork,
    /// `accept` reports EMFILE as `ProcessFdLimit` and `serve` recovers.
    EmfileRecovery,
    /// The listener has an `accept_until` a cancellation token.
    AcceptUntil,
}

impl fmt::Display for Promise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Promise::CloseReset => "close is ConnectionReset when the peer vanished",
            Promise::KillAfterFork => "kill after fork leaves the other copy working",
            Promise::EmfileRecovery => "EMFILE is ProcessFdLimit and serve recovers",
            Promise::AcceptUntil => "accept_until a cancellation token",
        })
    }
}

/// A boxed accept, what [`Harness::accept_until`] returns.
pub type Accepting<'a, C> = Pin<Box<dyn Future<Output = Result<C>> + Send + 'a>>;

/// One transport, as the suite needs to see it.
pub trait Harness: Send + Sync + 'static {
    /// Its listener.
    type Listener: Listener<Conn = Self::Conn>;
    /// Its connections, accepted and dialed alike.
    type Conn: Connection + fmt::Debug;
    /// What dials its listeners' endpoints.
    type Connector: Connector<Conn = Self::Conn>;

    /// A listener at a fresh address no other test uses.
    fn bind(&self) -> Self::Listener;

    /// A connector that reaches this harness's listeners.
    fn connector(&self) -> Self::Connector;

    /// Why the transport cannot keep `promise`, or `None` when it does.
    fn cannot_keep(&self, _promise: Promise) -> Option<&'static str> {
        None
    }

    /// The descriptor a connection holds, for transports with descriptors:
    /// how the suite proves a handle released and passes a copy to a child.
    fn raw_fd(&self, _conn: &Self::Conn) -> Option<RawFd> {
        None
    }

    /// Adopts a connection inherited as a descriptor (`from_fd`).
    fn adopt(&self, _fd: OwnedFd) -> Result<Self::Conn> {
        Err(Error::new(ErrorKind::NotSupported).detail("no descriptors"))
    }

    /// What will tell, later, whether `conn`'s handle was released. By
    /// default its descriptor's identity; transports without descriptors
    /// say how else.
    fn released(&self, conn: &Self::Conn) -> Released {
        let fd = self
            .raw_fd(conn)
            .expect("a harness without descriptors says in `released` how to see a release");
        Released::fd(fd)
    }

    /// True when `kill` (and a timed-out `close`) resets the connection, so
    /// the peer reads `ConnectionReset` rather than end-of-stream
    /// (userspace TCP: no other process holds a copy).
    fn kill_resets(&self) -> bool {
        false
    }

    /// True when accept errors name the listener's endpoint (rather than,
    /// say, a socket id).
    fn errors_name_the_endpoint(&self) -> bool {
        true
    }

    /// Bytes a peer writes to prove `close` drains: more than the
    /// transport buffers.
    fn bulk(&self) -> usize {
        4 << 20
    }

    /// `accept_until` on `listener`, where the transport has one.
    fn accept_until<'a>(
        &self,
        _listener: &'a mut Self::Listener,
        _deadline: Deadline,
        _token: &'a CancellationToken,
    ) -> Option<Accepting<'a, Self::Conn>> {
        None
    }
}

/// A probe, taken while a connection is open, that later tells whether its
/// handle was released.
pub struct Released(Probe);

enum Probe {
    Fd(RawFd, String),
    Check(Box<dyn Fn() -> bool + Send>),
    Ownership(&'static str),
}

impl Released {
    /// The descriptor `fd`, known by what `/proc/self/fd` says it is now
    /// (a number reused by another socket is not mistaken for it).
    pub fn fd(fd: RawFd) -> Released {
        let identity = fd_identity(fd).expect("the connection's descriptor is open");
        Released(Probe::Fd(fd, identity))
    }

    /// Released once `check` returns true (e.g. a socket id is free).
    pub fn when(check: impl Fn() -> bool + Send + 'static) -> Released {
        Released(Probe::Check(Box::new(check)))
    }

    /// A transport with no handle beyond the value itself: `close` and
    /// `kill` take it by value and drop it, which the compiler checks.
    pub fn by_ownership(why: &'static str) -> Released {
        Released(Probe::Ownership(why))
    }

    /// Asserts the handle is gone.
    pub fn assert(&self) {
        match &self.0 {
            Probe::Fd(fd, identity) => crate::assert_released(*fd, identity),
            Probe::Check(check) => assert!(check(), "the handle is still held"),
            Probe::Ownership(why) => eprintln!("released by ownership: {why}"),
        }
    }
}

/// Long enough never to be reached by a working implementation.
pub fn liveness() -> Deadline {
    Deadline::after(Duration::from_secs(30))
}

/// The path `cargo test -- --exact` takes for the test `name` in the
/// module whose `module_path!()` is `module` (the test crate's name
/// first), so a test can re-run itself in a child process.
pub fn test_path(module: &str, name: &str) -> String {
    match module.split_once("::") {
        Some((_, inner)) => format!("{inner}::{name}"),
        None => name.to_owned(),
    }
}

/// Why `h` cannot keep `promise`, or `None` when it keeps it.
fn excuse<H: Harness>(h: &H, promise: Promise) -> Option<&'static str> {
    h.cannot_keep(promise)
}

/// What an excuse of "no descriptors" claims, checked: neither side of a
/// connection has one. (A transport with descriptors keeps the promise.)
async fn has_no_descriptors<H: Harness>(h: &H, promise: Promise, why: &str) {
    let (_listener, client, server) = connected(h).await;
    assert!(
        h.raw_fd(&client).is_none() && h.raw_fd(&server).is_none(),
        "excused from \"{promise}\" ({why}), yet its connections have descriptors: keep the promise"
    );
}

async fn dial<H: Harness>(h: &H, listener: &H::Listener) -> H::Conn {
    h.connector()
        .connect(&listener.local_endpoint(), liveness())
        .await
        .expect("connect")
}

/// A listener, a client connected to it, and the server side accepted.
pub async fn connected<H: Harness>(h: &H) -> (H::Listener, H::Conn, H::Conn) {
    let mut listener = h.bind();
    let client = dial(h, &listener).await;
    let server = listener.accept(liveness()).await.expect("accept");
    (listener, client, server)
}

/// Reads what the peer of a killed connection sees: end-of-stream, or for
/// transports whose kill resets, `ConnectionReset`.
async fn assert_peer_sees_the_end<H: Harness>(h: &H, peer: &mut H::Conn) {
    let mut rest = Vec::new();
    let got = liveness()
        .run(peer.read_to_end(&mut rest))
        .await
        .expect("the peer saw the end in time");
    match got {
        Ok(_) => assert!(rest.is_empty(), "unexpected bytes: {rest:?}"),
        Err(e) if h.kill_resets() => {
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
        }
        Err(e) => panic!("the peer read an error, not end-of-stream: {e}"),
    }
}

/// `accept(Deadline::NOW)` returns `TimedOut` at once when nobody waits,
/// and accepts a peer that is already waiting (libdill's deadline 0).
pub async fn accept_with_deadline_now_times_out_at_once_and_takes_a_waiting_peer<H: Harness>(
    h: &H,
) {
    let mut listener = h.bind();
    let err = at_once(listener.accept(Deadline::NOW))
        .await
        .expect_err("nobody is waiting");
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert_eq!(err.operation(), Some("accept"), "{err}");
    if h.errors_name_the_endpoint() {
        let endpoint = listener.local_endpoint().to_string();
        assert_eq!(err.target(), Some(endpoint.as_str()), "{err}");
    }

    let _client = dial(h, &listener).await;
    // Time for the peer to be queued everywhere (a userspace stack
    // finishes the handshake on its own task); NOW must then take it.
    tokio::time::sleep(Duration::from_millis(50)).await;
    at_once(listener.accept(Deadline::NOW))
        .await
        .expect("a waiting peer is accepted with Deadline::NOW");
}

/// After `done` the peer reads end-of-stream, and this side still
/// receives its answer.
pub async fn done_lets_the_peer_read_end_of_stream_while_this_side_still_receives<H: Harness>(
    h: &H,
) {
    let (_listener, mut client, mut server) = connected(h).await;
    client.write_all(b"request").await.unwrap();
    client.done(liveness()).await.unwrap();
    let mut got = Vec::new();
    server.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"request");

    server.write_all(b"answer").await.unwrap();
    server.done(liveness()).await.unwrap();
    let mut answer = Vec::new();
    client.read_to_end(&mut answer).await.unwrap();
    assert_eq!(answer, b"answer");
}

/// `close` drains inbound data until the peer's own end, returns `Ok`, and
/// releases the handle.
pub async fn close_drains_until_the_peers_end_returns_ok_and_releases_the_handle<H: Harness>(
    h: &H,
) {
    let (_listener, client, mut server) = connected(h).await;
    let released = h.released(&client);
    let bulk = h.bulk();
    // More than the transport buffers: the server's write completes only
    // because the closing client drains it.
    let peer = tokio::spawn(async move {
        server.write_all(&vec![7u8; bulk]).await.unwrap();
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).await.unwrap(); // the client's end
        assert!(rest.is_empty());
        server.close(liveness()).await.unwrap();
    });
    client.close(liveness()).await.unwrap();
    peer.await.unwrap();
    released.assert();
}

/// `close` is `ConnectionReset` when the peer vanished with data it never
/// read, names its operation, and releases the handle anyway.
pub async fn close_is_connection_reset_when_the_peer_vanished_with_unread_data_and_releases_the_handle<
    H: Harness,
>(
    h: &H,
) {
    let excused = excuse(h, Promise::CloseReset);
    let (_listener, client, mut server) = connected(h).await;
    let released = h.released(&server);
    // Data the client never reads: releasing it with data queued resets.
    server.write_all(b"never read").await.unwrap();
    client.kill();

    let result = server.close(liveness()).await;
    match excused {
        None => {
            let err = result.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
            assert_eq!(err.operation(), Some("close"), "{err}");
            assert!(err.target().is_some(), "{err}");
        }
        // What every transport keeps: the close ends on the vanished
        // peer, not on its deadline.
        Some(why) => {
            if let Err(err) = &result {
                assert_ne!(err.kind(), ErrorKind::TimedOut, "{why}: {err}");
            }
        }
    }
    released.assert();
}

/// `close` gives up with `TimedOut` when the peer does not end in time,
/// releases the handle anyway, and has sent this side's end first.
pub async fn close_times_out_when_the_peer_does_not_end_and_still_releases_the_handle<
    H: Harness,
>(
    h: &H,
) {
    let (_listener, client, mut server) = connected(h).await;
    let released = h.released(&client);
    let err = client
        .close(Deadline::after(Duration::from_millis(200)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert_eq!(err.operation(), Some("close"), "{err}");
    released.assert();
    assert_peer_sees_the_end(h, &mut server).await;
}

/// `kill` releases the handle at once, without a handshake; the peer sees
/// the end the transport gives (end-of-stream, or a reset).
pub async fn kill_releases_the_handle_without_a_handshake<H: Harness>(h: &H) {
    let (_listener, client, mut server) = connected(h).await;
    let released = h.released(&client);
    client.kill();
    released.assert();
    assert_peer_sees_the_end(h, &mut server).await;
}

const KILL_ROLE: &str = "lifecycle-kill-inherited";

/// A child process that inherited a copy of a connection kills it: the
/// parent's copy goes on working both ways and the peer sees no end; the
/// last copy's kill is the end. `path` is this test's own path (see
/// [`test_path`]), so it can re-run itself as the child.
pub async fn kill_in_a_child_after_fork_leaves_the_parents_copy_working_both_ways<H: Harness>(
    h: &H,
    path: &str,
) {
    if let Some(why) = excuse(h, Promise::KillAfterFork) {
        return has_no_descriptors(h, Promise::KillAfterFork, why).await;
    }
    if role().as_deref() == Some(KILL_ROLE) {
        // SAFETY: the parent made descriptor 3 a copy of its connection
        // for this process alone; nothing else here uses it.
        let fd = unsafe { OwnedFd::from_raw_fd(3) };
        h.adopt(fd).expect("an inherited connection").kill();
        child_done(KILL_ROLE);
        return;
    }

    let (_listener, mut peer, mut conn) = connected(h).await;
    let fd = h
        .raw_fd(&conn)
        .expect("a transport that keeps KillAfterFork has descriptors");
    let mut cmd = child(path, KILL_ROLE);
    pass_as_fd_3(&mut cmd, fd);
    run_child(cmd, KILL_ROLE);

    // The peer sees no end: trying once finds nothing to read, not EOF.
    let mut buf = [0u8; 64];
    let err = at_once(Deadline::NOW.run(peer.read(&mut buf)))
        .await
        .expect_err("the peer must not see an end");
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");

    // The parent's copy works both ways.
    conn.write_all(b"still here").await.unwrap();
    let mut got = [0u8; 10];
    peer.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"still here");
    peer.write_all(b"so am I").await.unwrap();
    let mut got = [0u8; 7];
    conn.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"so am I");

    // The last copy's kill is the end.
    conn.kill();
    assert_peer_sees_the_end(h, &mut peer).await;
}

/// `accept_into` one slot twice: the second connection takes the slot,
/// whose buffer stays, and the first is killed.
pub async fn accept_into_reuses_one_slot_and_kills_what_it_held<H: Harness>(h: &H) {
    let mut listener = h.bind();
    let mut slot: Slot<H::Conn> = Slot::with_buffer(64);
    let mut first = dial(h, &listener).await;
    listener.accept_into(&mut slot, liveness()).await.unwrap();
    let mut second = dial(h, &listener).await;
    listener.accept_into(&mut slot, liveness()).await.unwrap();

    // The first connection was killed: its peer sees the end.
    assert_peer_sees_the_end(h, &mut first).await;
    // The slot holds the second, with its buffer.
    second.write_all(b"second").await.unwrap();
    second.done(liveness()).await.unwrap();
    let (conn, buf) = slot.parts();
    assert_eq!(buf.len(), 64);
    let conn = conn.expect("the slot holds the second connection");
    let mut got = Vec::new();
    conn.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"second");
    slot.close(liveness()).await.unwrap();
    assert!(slot.is_empty());
}

/// An accept dropped while it waits (as `select!` or a timeout drops it)
/// loses no connection: the next accept gets the next peer.
pub async fn a_dropped_accept_loses_no_connection<H: Harness>(h: &H) {
    let mut listener = h.bind();
    let r = Deadline::after(Duration::from_millis(20))
        .run(listener.accept(Deadline::NEVER))
        .await;
    assert_eq!(r.unwrap_err().kind(), ErrorKind::TimedOut);
    let _client = dial(h, &listener).await;
    listener.accept(liveness()).await.unwrap();
}

/// `accept_until` ends a waiting accept with `Canceled` when its token
/// fires, and a token that fired already refuses at once even with a peer
/// waiting, who is not lost.
pub async fn accept_until_a_fired_token_is_canceled_and_loses_no_peer<H: Harness>(h: &H) {
    if let Some(why) = excuse(h, Promise::AcceptUntil) {
        let mut listener = h.bind();
        let token = CancellationToken::new();
        assert!(
            h.accept_until(&mut listener, Deadline::NOW, &token)
                .is_none(),
            "excused from \"{}\" ({why}), yet it has accept_until: keep the promise",
            Promise::AcceptUntil
        );
        return;
    }
    let mut listener = h.bind();
    let endpoint = listener.local_endpoint().to_string();
    let token = CancellationToken::new();
    let waiting = h
        .accept_until(&mut listener, Deadline::NEVER, &token)
        .expect("a transport that keeps AcceptUntil has it");
    let (result, ()) = tokio::join!(waiting, async {
        tokio::task::yield_now().await;
        token.cancel();
    });
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Canceled, "{err}");
    assert_eq!(
        err.to_string(),
        format!("accept on {endpoint}: canceled (ECANCELED)")
    );

    let _client = dial(h, &listener).await;
    let err = h
        .accept_until(&mut listener, Deadline::NEVER, &token)
        .expect("as above")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Canceled, "{err}");
    listener.accept(liveness()).await.unwrap();
}

const EMFILE_ROLE: &str = "lifecycle-emfile";

/// With the process's descriptor table full, `accept` is `ProcessFdLimit`
/// naming the listener, and `serve` pauses and serves every waiting peer
/// once descriptors free up. Runs in a child process (this test re-run,
/// `path` as in [`kill_in_a_child_after_fork_leaves_the_parents_copy_working_both_ways`]),
/// since RLIMIT_NOFILE is per process.
pub async fn accept_is_process_fd_limit_at_emfile_and_serve_recovers<H: Harness>(
    h: &H,
    path: &str,
) {
    if let Some(why) = excuse(h, Promise::EmfileRecovery) {
        return has_no_descriptors(h, Promise::EmfileRecovery, why).await;
    }
    if role().as_deref() != Some(EMFILE_ROLE) {
        run_child(child(path, EMFILE_ROLE), EMFILE_ROLE);
        return;
    }

    const CLIENTS: usize = 6;
    let mut listener = h.bind();
    let endpoint = listener.local_endpoint();
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(dial(h, &listener).await);
    }
    // Room for a couple more descriptors to free later, then a full table.
    let mut spare: Vec<std::fs::File> = (0..2)
        .map(|_| std::fs::File::open("/dev/null").unwrap())
        .collect();
    let fillers = fill_descriptor_table();

    let err = at_once(listener.accept(Deadline::NOW)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ProcessFdLimit, "{err}");
    assert_eq!(
        err.to_string(),
        format!("accept on {endpoint}: process fd limit reached (EMFILE)")
    );

    let echo = tower::service_fn(|line: String| async move { Ok::<_, Error>(line) });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        serve(listener, lines(echo))
            .with_graceful_shutdown(
                async {
                    stopped.await.ok();
                },
                Duration::from_secs(30),
            )
            .into_future(),
    );
    // On this current-thread runtime the spawned loop runs (and meets
    // EMFILE on its first accept) before this task is polled again.
    tokio::task::yield_now().await;
    spare.clear(); // two descriptors free up

    let served = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| async move {
            c.write_all(format!("hello {i}\n").as_bytes())
                .await
                .unwrap();
            c.done(liveness()).await.unwrap();
            let mut answer = String::new();
            c.read_to_string(&mut answer).await.unwrap();
            assert_eq!(answer, format!("hello {i}\n"));
            c.close(liveness()).await.unwrap();
        });
    liveness()
        .run(join_all(served))
        .await
        .expect("every client served");

    stop.send(()).unwrap();
    let report = server.await.unwrap().unwrap();
    assert_eq!(report.accepted, CLIENTS as u64, "{report}");
    assert_eq!(report.closed, CLIENTS as u64, "{report}");
    assert!(report.fd_limit_episodes >= 1, "{report}");
    assert!(report.errors.is_empty(), "{report}");
    drop(fillers);
    child_done(EMFILE_ROLE);
}

/// Fills the descriptor table: lowers the soft RLIMIT_NOFILE to just above
/// the highest open descriptor and opens /dev/null into every hole below
/// it. Returns the fillers; dropping some frees that many descriptors.
/// Only for a child process of its own.
pub fn fill_descriptor_table() -> Vec<std::fs::File> {
    let highest = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .unwrap();
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write and read the struct we pass; the
    // caller is a child process of its own, so lowering its limit affects
    // no other test.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = highest + 1;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    let mut fillers = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => fillers.push(f),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => return fillers,
            Err(e) => panic!("filling the descriptor table: {e}"),
        }
    }
}

/// Runs futures concurrently on this task (no spawning, no new descriptors).
async fn join_all<F: Future<Output = ()>>(futs: impl Iterator<Item = F>) {
    let mut set: Vec<Pin<Box<F>>> = futs.map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        set.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if set.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}

/// Instantiates the lifecycle suite for the [`Harness`] that `$harness`
/// (an expression, evaluated in each test, inside its runtime) builds:
/// one `#[tokio::test]` per promise, named after it, in the module where
/// it is invoked.
///
/// ```text
/// conn_test_support::lifecycle_suite!(IpcHarness);
/// ```
#[macro_export]
macro_rules! lifecycle_suite {
    ($harness:expr) => {
        $crate::lifecycle_suite!(@tests $harness;
            accept_with_deadline_now_times_out_at_once_and_takes_a_waiting_peer,
            done_lets_the_peer_read_end_of_stream_while_this_side_still_receives,
            close_drains_until_the_peers_end_returns_ok_and_releases_the_handle,
            close_is_connection_reset_when_the_peer_vanished_with_unread_data_and_releases_the_handle,
            close_times_out_when_the_peer_does_not_end_and_still_releases_the_handle,
            kill_releases_the_handle_without_a_handshake,
            accept_into_reuses_one_slot_and_kills_what_it_held,
            a_dropped_accept_loses_no_connection,
            accept_until_a_fired_token_is_canceled_and_loses_no_peer,
        );
        $crate::lifecycle_suite!(@in_a_child $harness;
            kill_in_a_child_after_fork_leaves_the_parents_copy_working_both_ways,
            accept_is_process_fd_limit_at_emfile_and_serve_recovers,
        );
    };
    (@tests $harness:expr; $($name:ident,)*) => {$(
        #[tokio::test]
        async fn $name() {
            $crate::lifecycle::$name(&$harness).await
        }
    )*};
    (@in_a_child $harness:expr; $($name:ident,)*) => {$(
        #[tokio::test]
        async fn $name() {
            let path = $crate::lifecycle::test_path(module_path!(), stringify!($name));
            $crate::lifecycle::$name(&$harness, &path).await
        }
    )*};
}
