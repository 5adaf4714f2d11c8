//! The successor's side: take a running server's listeners, then confirm.

use std::path::Path;
use std::time::Duration;

use tokio::net::UnixStream;

use super::channel::Channel;
use super::offer::unexpected;
use super::peer::peer_of;
use super::wire::Repr;
use crate::activation::NamedFd;
use crate::{Error, ErrorKind, Result};

/// Asks the server offering on `path` for its listeners.
///
/// `Ok(None)` when nothing offers there (no file, or a stale one nobody
/// listens on): the caller binds its own listeners. `TimedOut` when the
/// server does not answer within [`CONFIRM_WITHIN`](super::CONFIRM_WITHIN). `PermissionDenied`
/// with the server's reason when it refuses (another uid). On success the
/// server goes on accepting until [`Confirmation::confirm`]; dropping the
/// confirmation instead leaves it serving as before.
pub async fn take(path: impl AsRef<Path>) -> Result<Option<Received>> {
    let path = path.as_ref();
    let stream = match UnixStream::connect(path).await {
        Ok(stream) => stream,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(Error::io(e, "take listeners", path.display())),
    };
    let mut channel = Channel::new(stream);
    let predecessor = peer_of(channel.stream())?.pid;
    let on = |e: Error| e.during("take listeners").on(path.display());
    // A server that refuses may hang up before reading all of Take: its
    // answer is still there to read, and says more than EPIPE.
    let sent = channel.send(&Repr::Take, &[]).await;
    // A server that accepted but never answers must not hang the successor.
    let reply = tokio::time::timeout(super::CONFIRM_WITHIN, channel.recv())
        .await
        .map_err(|_| {
            on(Error::new(ErrorKind::TimedOut).detail(format!(
                "no offer from the running server (pid {predecessor}) within {:?}",
                super::CONFIRM_WITHIN
            )))
        })?;
    let reply = match (sent, reply) {
        (Err(e), Err(_)) => Err(e),
        (_, reply) => reply,
    };
    match reply.map_err(on)? {
        (Repr::Offer { names }, fds) if names.len() == fds.len() => Ok(Some(Received {
            listeners: names
                .into_iter()
                .zip(fds)
                .map(|(name, fd)| NamedFd { name, fd })
                .collect(),
            confirmation: Confirmation {
                channel,
                predecessor,
            },
        })),
        (Repr::Offer { names }, fds) => Err(on(Error::new(ErrorKind::Protocol).detail(format!(
            "an offer of {} names came with {} descriptors",
            names.len(),
            fds.len()
        )))),
        (Repr::Refused { why }, _) => Err(on(Error::new(ErrorKind::PermissionDenied).detail(
            format!("refused by the running server (pid {predecessor}): {why}"),
        ))),
        (other, _) => Err(on(unexpected("Offer", &other))),
    }
}

/// The listeners a running server handed over, and the confirmation it
/// waits for.
#[derive(Debug)]
pub struct Received {
    /// The listening descriptors with their names (endpoints), close-on-exec.
    pub listeners: Vec<NamedFd>,
    /// What to tell the server once this process accepts on them.
    pub confirmation: Confirmation,
}

/// The running server's wait for this process to confirm.
#[derive(Debug)]
pub struct Confirmation {
    channel: Channel,
    predecessor: i32,
}

impl Confirmation {
    /// The running server's process id.
    pub fn predecessor(&self) -> i32 {
        self.predecessor
    }

    /// Tells the server this process accepts on the listeners now, so it
    /// stops accepting and drains; then waits up to `within` for it to
    /// remove its offer's socket file and hang up, after which the path is
    /// free for this process's own [`Offer`](super::Offer).
    pub async fn confirm(mut self, within: Duration) -> Result<()> {
        self.channel
            .send(&Repr::Confirm, &[])
            .await
            .map_err(|e| e.during("confirm handover"))?;
        match tokio::time::timeout(within, self.channel.closed()).await {
            Ok(closed) => closed.map_err(|e| e.during("confirm handover")),
            Err(_) => Err(Error::new(ErrorKind::TimedOut)
                .during("confirm handover")
                .detail(format!(
                    "the running server (pid {}) did not release its offer within {within:?}",
                    self.predecessor
                ))),
        }
    }

    /// Declines the listeners, telling the server why; it goes on serving.
    pub async fn refuse(self, why: impl Into<String>) -> Result<()> {
        self.channel
            .send(&Repr::Refused { why: why.into() }, &[])
            .await
    }
}
