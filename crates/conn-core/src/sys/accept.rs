//! Accepting until a deadline, the system call tried first.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::{SocketAddrAny, SocketFlags};

use super::{LazyFd, Wait};
use crate::{Deadline, Error, ErrorKind, Result};

/// `accept4(2)` with `SOCK_NONBLOCK | SOCK_CLOEXEC`, retried on `EINTR`;
/// `WouldBlock` when no peer is waiting.
pub fn accept_nonblocking(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    loop {
        match rustix::net::accept_with(fd, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC) {
            Err(Errno::INTR) => continue,
            r => return Ok(r?),
        }
    }
}

/// The same, also returning the peer's address when the kernel has one
/// (a connection reset while queued may have none any more).
pub fn accept_from(fd: BorrowedFd<'_>) -> io::Result<(OwnedFd, Option<SocketAddrAny>)> {
    loop {
        match rustix::net::acceptfrom_with(fd, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC) {
            Err(Errno::INTR) => continue,
            r => return Ok(r?),
        }
    }
}

/// Waits on the listening socket `io` for the next peer until `deadline`,
/// accepting with `accept` (a non-blocking call that reports "no peer yet"
/// as `WouldBlock`, e.g. [`accept_nonblocking`] or [`accept_from`]).
///
/// An expired deadline still tries the call once, even before the reactor
/// has seen the peer, so [`Deadline::NOW`] accepts a peer already waiting
/// (libdill's deadline 0 still performs the operation when it can) and otherwise returns
/// `TimedOut` at once. Resource errors keep their kind (`ProcessFdLimit`,
/// `SystemFdLimit`, `OutOfMemory`). Errors carry no operation or target;
/// the caller names them.
///
/// Cancel safe: the only effect is the accepting call, and a connection it
/// accepts is returned in the same poll.
pub async fn accept_with<R>(
    io: &mut LazyFd,
    deadline: Deadline,
    mut accept: impl FnMut(BorrowedFd<'_>) -> io::Result<R>,
) -> Result<R> {
    if deadline.is_expired() {
        // One try, the peer already waiting or none.
        return match io.with_fd(&mut accept) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                Err(Error::new(ErrorKind::TimedOut).detail("no peer is waiting"))
            }
            other => other.map_err(Error::from),
        };
    }
    // The call is tried at once while the descriptor is unregistered; once
    // registered, only when the reactor has said a peer may be waiting
    // (else a busy loop spends an `EAGAIN` before each wait).
    deadline
        .run(std::future::poll_fn(|cx| {
            io.poll_io(cx, Wait::Read, &mut accept)
        }))
        .await
        .and_then(|r| r.map_err(Error::from))
}

#[cfg(test)]
mod tests {
    use std::os::fd::OwnedFd;

    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn deadline_now_gives_up_at_once_and_still_takes_a_waiting_peer() {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let mut io = LazyFd::new(OwnedFd::from(std_listener));
        let err = accept_with(&mut io, Deadline::NOW, accept_nonblocking)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        let peer = std::net::TcpStream::connect(addr).unwrap();
        let (_conn, from) = accept_with(&mut io, Deadline::NOW, accept_from)
            .await
            .unwrap();
        let from = std::net::SocketAddr::try_from(from.unwrap()).unwrap();
        assert_eq!(from, peer.local_addr().unwrap());
    }
}
