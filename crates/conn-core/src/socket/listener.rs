//! The listening socket every kernel-socket transport's listener wraps.

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use tokio_util::sync::CancellationToken;

use super::{Family, SocketStream};
use crate::sys::{LazyFd, Role, accept_with, until_cancelled};
use crate::{Deadline, Endpoint, Error, Result};

/// One listening stream socket of family `F`.
///
/// [`accept`](SocketListener::accept) tries the system call first, so
/// [`Deadline::NOW`] accepts a peer already waiting and otherwise returns
/// `TimedOut` at once. Resource errors keep their kind: `ProcessFdLimit`
/// (EMFILE), `SystemFdLimit` (ENFILE), `OutOfMemory`, each naming the
/// listener: `accept on ipc:///run/x.sock: process fd limit reached
/// (EMFILE)`.
///
/// # Cancel safety
///
/// `accept` is cancel safe: the only thing it does that has an effect is
/// the `accept4(2)` call, and a connection it accepts is returned in the
/// same poll. `conn_core::serve` relies on this.
///
/// # Allocations
///
/// Accepting allocates nothing: the peer is kept by value (or, for an
/// endpoint, by reference count), and the accepted stream joins tokio's
/// reactor only when a call on it would block. tokio allocates for every
/// descriptor it registers (an `Arc<ScheduledIo>`, and on release a fresh
/// pending-release `Vec`), so a connection served without waiting costs
/// nothing and one that waits pays that registration once. The listener
/// registers the first time an accept has to wait, once.
pub struct SocketListener<F: Family> {
    io: LazyFd,
    endpoint: Endpoint,
    local: F::Local,
}

impl<F: Family> SocketListener<F> {
    /// Wraps the listening, non-blocking socket `fd`, bound at `endpoint`.
    pub fn new(fd: OwnedFd, endpoint: Endpoint, local: F::Local) -> SocketListener<F> {
        SocketListener {
            io: LazyFd::new(fd),
            endpoint,
            local,
        }
    }

    /// Adopts a listening stream socket of this family, e.g. one passed by
    /// systemd (see [`activation::listen_fds`](crate::activation::listen_fds)),
    /// and makes it non-blocking.
    ///
    /// `NotSocket` when `fd` is not a socket; `InvalidType` when it is of
    /// another family or type, or is not listening.
    pub fn from_fd(fd: OwnedFd) -> Result<SocketListener<F>> {
        let raw = fd.as_raw_fd();
        F::KIND.adopt(
            fd.as_fd(),
            Role::Listening,
            "adopt listener",
            F::unnamed(raw),
        )?;
        let (endpoint, local) = F::adopted_listener(fd.as_fd())
            .map_err(|e| e.during("adopt listener").on(F::unnamed(raw)))?;
        Ok(SocketListener::new(fd, endpoint, local))
    }

    /// Waits for the next peer until `deadline` (libdill `ipc_accept`,
    /// `tcp_accept`); cancel safe.
    pub async fn accept(&mut self, deadline: Deadline) -> Result<SocketStream<F>> {
        let (endpoint, local) = (&self.endpoint, &self.local);
        let step = crate::lifecycle_span!("accept", F::SCHEME, endpoint);
        let accepted = accept_with(&mut self.io, deadline, |fd| F::accept(fd, endpoint, local))
            .await
            .map_err(|e| e.during("accept").on(endpoint));
        step.end(&accepted);
        let (fd, peer) = accepted?;
        Ok(SocketStream::new(fd, peer))
    }

    /// Like [`accept`](SocketListener::accept), but gives up with
    /// `Canceled` when `token` fires first (at once if it has fired
    /// already, even with a peer waiting, who is not lost).
    pub async fn accept_until(
        &mut self,
        deadline: Deadline,
        token: &CancellationToken,
    ) -> Result<SocketStream<F>> {
        let accepted = until_cancelled(token, self.accept(deadline)).await;
        accepted.map_err(|e| e.during("accept").on(&self.endpoint))
    }

    /// The endpoint this listener is bound to, e.g. `ipc:///run/x.sock`.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// What the family keeps for this listener.
    pub fn local(&self) -> &F::Local {
        &self.local
    }

    /// The same, to change.
    pub fn local_mut(&mut self) -> &mut F::Local {
        &mut self.local
    }

    /// A second descriptor for the same listening socket (`dup`), not yet
    /// registered, so it joins the reactor of whichever runtime first waits
    /// on it; both accept from the one queue. `local` is the copy's own.
    pub fn duplicate(&self, local: F::Local) -> Result<SocketListener<F>> {
        let io = self
            .io
            .duplicate()
            .map_err(|e| Error::io(e, "split listener", &self.endpoint))?;
        Ok(SocketListener {
            io,
            endpoint: self.endpoint.clone(),
            local,
        })
    }
}

impl<F: Family> AsFd for SocketListener<F> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io
            .fd()
            .expect("a socket listener always holds its descriptor")
    }
}

impl<F: Family> AsRawFd for SocketListener<F> {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl<F: Family> fmt::Debug for SocketListener<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketListener")
            .field("fd", &self.as_raw_fd())
            .field("endpoint", &self.endpoint)
            .field("local", &self.local)
            .finish()
    }
}
