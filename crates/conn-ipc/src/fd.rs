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
pub(crate) enum Wait {
    Read,
    Write,
}

#[derive(Debug)]
pub(crate) enum LazyFd {
    /// Not (yet) known to tokio's reactor.
    Raw(OwnedFd),
    /// Registered with the reactor of the runtime that first had to wait.
    Registered(AsyncFd<OwnedFd>),
    /// Only while `register` moves the descriptor (a failed registration
    /// hands it back), so never seen outside this module.
    Released,
}

impl LazyFd {
    pub(crate) fn new(fd: OwnedFd) -> LazyFd {
        LazyFd::Raw(fd)
    }

    pub(crate) fn fd(&self) -> Option<BorrowedFd<'_>> {
        match self {
            LazyFd::Raw(fd) => Some(fd.as_fd()),
            LazyFd::Registered(afd) => Some(afd.get_ref().as_fd()),
            LazyFd::Released => None,
        }
    }

    pub(crate) fn is_registered(&self) -> bool {
        matches!(self, LazyFd::Registered(_))
    }

    /// Joins the current runtime's reactor.
    fn register(&mut self) -> io::Result<()> {
        if let LazyFd::Raw(_) = self {
            let LazyFd::Raw(fd) = std::mem::replace(self, LazyFd::Released) else {
                unreachable!("checked above")
            };
            // SAFETY: an `OwnedFd` holds a valid, open descriptor that stays
            // open and names the same file description until the `OwnedFd`
            // is dropped, which happens only when the `AsyncFd` that now
            // owns it is dropped (or hands it back below); its
            // `as_raw_fd` always returns that one descriptor.
            match unsafe { AsyncFd::register(fd) } {
                Ok(afd) => *self = LazyFd::Registered(afd),
                Err(e) => {
                    let (fd, err) = e.into_parts();
                    *self = LazyFd::Raw(fd);
                    return Err(err);
                }
            }
        }
        Ok(())
    }

    /// Runs the non-blocking call `op` until it does not block: at once
    /// while unregistered, then (after registering) whenever the reactor
    /// reports the descriptor ready for `wait`.
    pub(crate) fn poll_io<R>(
        &mut self,
        cx: &mut Context<'_>,
        wait: Wait,
        mut op: impl FnMut(BorrowedFd<'_>) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        loop {
            match self {
                LazyFd::Raw(fd) => match op(fd.as_fd()) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.register()?,
                    done => return Poll::Ready(done),
                },
                LazyFd::Registered(afd) => {
                    let mut guard = match wait {
                        Wait::Read => ready!(afd.poll_read_ready(cx))?,
                        Wait::Write => ready!(afd.poll_write_ready(cx))?,
                    };
                    if let Ok(done) = guard.try_io(|afd| op(afd.get_ref().as_fd())) {
                        return Poll::Ready(done);
                    }
                }
                LazyFd::Released => return Poll::Ready(Err(rustix::io::Errno::BADF.into())),
            }
        }
    }
}

/// Checks that `fd` is a Unix-domain stream socket, listening or not as
/// `listening` says, and makes it non-blocking.
pub(crate) fn adopt(
    fd: BorrowedFd<'_>,
    listening: bool,
    op: &'static str,
) -> conn_core::Result<()> {
    use conn_core::{Error, ErrorKind};
    use rustix::net::{AddressFamily, SocketType, sockopt};
    use std::os::fd::AsRawFd;

    let target = crate::addr::Unnamed(fd.as_raw_fd());
    let fail = |e: rustix::io::Errno| Error::io(e.into(), op, target);
    let invalid = |why: &'static str| {
        Error::new(ErrorKind::InvalidType)
            .during(op)
            .on(target)
            .detail(why)
    };
    // ENOTSOCK (NotSocket) for anything that is not a socket.
    let ty = sockopt::socket_type(fd).map_err(fail)?;
    if sockopt::socket_domain(fd).map_err(fail)? != AddressFamily::UNIX {
        return Err(invalid("not a Unix-domain socket"));
    }
    if ty != SocketType::STREAM {
        return Err(invalid("not a stream socket"));
    }
    match (sockopt::socket_acceptconn(fd).map_err(fail)?, listening) {
        (true, false) => return Err(invalid("a listening socket, not a connection")),
        (false, true) => return Err(invalid("not a listening socket")),
        _ => {}
    }
    rustix::io::ioctl_fionbio(fd, true).map_err(fail)
}
