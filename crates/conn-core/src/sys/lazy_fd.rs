//! A non-blocking descriptor that joins tokio's reactor only when it must wait.
//!
//! tokio allocates one `Arc<ScheduledIo>` per registration (tokio 1.54,
//! `runtime/io/registration_set.rs`, `RegistrationSet::allocate`), and
//! deregistering pushes onto a `Vec` that the driver empties with
//! `mem::take`, so the next deregistration grows a fresh one: two
//! allocations per registered descriptor. To keep the
//! accept path free of allocations, descriptors start unregistered: every
//! operation tries its system call first and registers only when the call
//! would block. A connection that never has to wait never touches the
//! reactor; one that does pays tokio's registration once.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::task::{Context, Poll, ready};

use tokio::io::unix::AsyncFd;

/// What a descriptor waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Readable: data, a peer's end, a waiting connection, an error.
    Read,
    /// Writable: room to send, a finished `connect`, an error.
    Write,
}

/// A non-blocking descriptor that joins tokio's reactor only when a call on
/// it would block.
///
/// Every operation ([`poll_io`](LazyFd::poll_io)) first runs its system
/// call; only a `WouldBlock` registers the descriptor with the reactor of
/// the current runtime (once, for good). A connection served without
/// waiting never costs tokio's registration.
///
/// Dropping a `LazyFd` closes this process's descriptor and does nothing
/// else: no `shutdown(2)`, so after `fork` the other process's copy stays
/// fully usable. That is the transports' `kill`.
#[derive(Debug)]
pub struct LazyFd {
    state: State,
}

#[derive(Debug)]
enum State {
    /// Not (yet) known to tokio's reactor.
    Raw(OwnedFd),
    /// Registered with the reactor of the runtime that first had to wait.
    /// `untried` is the direction no call has been made in since: the
    /// reactor knows nothing of it until its first event, so its next call
    /// is tried at once instead of waiting for the reactor's turn (a
    /// connection registered by its read answers without waiting for its
    /// first writable event).
    Registered {
        afd: AsyncFd<OwnedFd>,
        untried: Option<Wait>,
    },
    /// Only while `register` moves the descriptor (a failed registration
    /// hands it back), so seen outside it only after a panic there.
    Released,
}

impl LazyFd {
    /// Wraps `fd`, which must already be non-blocking (`O_NONBLOCK`).
    pub fn new(fd: OwnedFd) -> LazyFd {
        LazyFd {
            state: State::Raw(fd),
        }
    }

    /// The descriptor; `None` only if registering it panicked (no runtime).
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.state {
            State::Raw(fd) => Some(fd.as_fd()),
            State::Registered { afd, .. } => Some(afd.get_ref().as_fd()),
            State::Released => None,
        }
    }

    /// True once an operation had to wait and so joined tokio's reactor.
    pub fn is_registered(&self) -> bool {
        matches!(self.state, State::Registered { .. })
    }

    /// Runs `op` on the descriptor, `EBADF` if it is gone.
    pub fn with_fd<R>(&self, op: impl FnOnce(BorrowedFd<'_>) -> io::Result<R>) -> io::Result<R> {
        match self.fd() {
            Some(fd) => op(fd),
            None => Err(rustix::io::Errno::BADF.into()),
        }
    }

    /// A second descriptor for the same open file (`dup`, close-on-exec),
    /// not yet registered, so it joins the reactor of whichever runtime first
    /// waits on it: how a listener gets one handle per core.
    pub fn duplicate(&self) -> io::Result<LazyFd> {
        self.with_fd(|fd| Ok(LazyFd::new(rustix::io::fcntl_dupfd_cloexec(fd, 0)?)))
    }

    /// Joins the current runtime's reactor, after a call waiting for `wait`
    /// found the descriptor not ready.
    fn register(&mut self, wait: Wait) -> io::Result<()> {
        if let State::Raw(_) = self.state {
            let State::Raw(fd) = std::mem::replace(&mut self.state, State::Released) else {
                unreachable!("checked above")
            };
            // SAFETY: an `OwnedFd` holds a valid, open descriptor that stays
            // open and names the same file description until the `OwnedFd`
            // is dropped, which happens only when the `AsyncFd` that now
            // owns it is dropped (or hands it back below); its
            // `as_raw_fd` always returns that one descriptor.
            match unsafe { AsyncFd::register(fd) } {
                Ok(afd) => {
                    let untried = Some(match wait {
                        Wait::Read => Wait::Write,
                        Wait::Write => Wait::Read,
                    });
                    self.state = State::Registered { afd, untried }
                }
                Err(e) => {
                    let (fd, err) = e.into_parts();
                    self.state = State::Raw(fd);
                    return Err(err);
                }
            }
        }
        Ok(())
    }

    /// Runs the non-blocking call `op` until it does not block: at once
    /// while unregistered, then (after registering) whenever the reactor
    /// reports the descriptor ready for `wait`.
    ///
    /// `op` must report "try again later" as [`io::ErrorKind::WouldBlock`].
    pub fn poll_io<R>(
        &mut self,
        cx: &mut Context<'_>,
        wait: Wait,
        op: impl FnMut(BorrowedFd<'_>) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        self.poll_until_done(cx, wait, op, |_| false)
    }

    /// Like [`poll_io`](LazyFd::poll_io) for a call that moves up to `wanted`
    /// bytes and returns how many it moved (read, send). A transfer that
    /// moved some bytes but fewer than `wanted` drained the socket (or
    /// filled its send buffer), so the reactor's readiness is cleared at
    /// once, as tokio's own sockets do: the next call waits for the next
    /// edge instead of spending a system call to learn `EAGAIN`.
    ///
    /// Readiness that arrived after the call is kept (tokio clears only the
    /// readiness event the call was made under), so no wake-up is lost.
    pub fn poll_transfer(
        &mut self,
        cx: &mut Context<'_>,
        wait: Wait,
        wanted: usize,
        op: impl FnMut(BorrowedFd<'_>) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        self.poll_until_done(cx, wait, op, |&n| n > 0 && n < wanted)
    }

    /// The body of both: `drained(result)` tells when a successful call
    /// leaves the descriptor not ready any more.
    fn poll_until_done<R>(
        &mut self,
        cx: &mut Context<'_>,
        wait: Wait,
        mut op: impl FnMut(BorrowedFd<'_>) -> io::Result<R>,
        drained: impl Fn(&R) -> bool,
    ) -> Poll<io::Result<R>> {
        loop {
            match &mut self.state {
                State::Raw(fd) => {
                    // Unregistered, every call is tried at once (and spends
                    // tokio's budget, as the readiness check does below).
                    match ready!(try_now(cx, fd.as_fd(), &mut op)) {
                        Some(done) => return Poll::Ready(done),
                        None => self.register(wait)?,
                    }
                }
                State::Registered { afd, untried } => {
                    if *untried == Some(wait) {
                        let tried = ready!(try_now(cx, afd.get_ref().as_fd(), &mut op));
                        *untried = None;
                        if let Some(done) = tried {
                            return Poll::Ready(done);
                        }
                    }
                    let mut guard = match wait {
                        Wait::Read => ready!(afd.poll_read_ready(cx))?,
                        Wait::Write => ready!(afd.poll_write_ready(cx))?,
                    };
                    if let Ok(done) = guard.try_io(|afd| op(afd.get_ref().as_fd())) {
                        if done.as_ref().is_ok_and(&drained) {
                            guard.clear_ready();
                        }
                        return Poll::Ready(done);
                    }
                }
                State::Released => return Poll::Ready(Err(rustix::io::Errno::BADF.into())),
            }
        }
    }
}

/// One call of `op` now, under tokio's cooperative budget as its own
/// sockets spend it (a task that always finds the descriptor ready still
/// yields now and then): `None` if it would block.
fn try_now<R>(
    cx: &mut Context<'_>,
    fd: BorrowedFd<'_>,
    op: &mut impl FnMut(BorrowedFd<'_>) -> io::Result<R>,
) -> Poll<Option<io::Result<R>>> {
    let coop = ready!(tokio::task::coop::poll_proceed(cx));
    match op(fd) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Ready(None),
        done => {
            coop.made_progress();
            Poll::Ready(Some(done))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_call_that_does_not_block_never_joins_the_reactor() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut a = LazyFd::new(OwnedFd::from(a));
        std::io::Write::write_all(&mut &b, b"x").unwrap();
        let mut buf = [0u8; 1];
        let n = std::future::poll_fn(|cx| {
            a.poll_io(cx, Wait::Read, |fd| Ok(rustix::io::read(fd, &mut buf)?))
        })
        .await
        .unwrap();
        assert_eq!(n, 1);
        assert!(!a.is_registered());
    }
}
