//! The running server's side: offer the listeners on a path until a
//! successor has taken them.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::io::Errno;
use tokio::net::UnixListener;

use super::channel::Channel;
use super::peer::{peer_of, refusal};
use super::wire::Repr;
use crate::activation::NamedFd;
use crate::{Error, ErrorKind, Result};

/// How long a successor has from connecting to confirming, unless
/// [`Offer::confirm_within`] says otherwise: an attempt that takes longer is
/// abandoned, and the server goes on serving and offering.
pub const CONFIRM_WITHIN: Duration = Duration::from_secs(30);

/// A running server's listeners, offered on a Unix socket to a successor.
///
/// The descriptors here are copies (`dup`) of the ones the server accepts
/// on; the offer never closes the server's own, so a successor that dies
/// or refuses takes nothing away. [`Offer::next`] serves one successor at
/// a time; only [`Attempt::Taken`] means the server should stop accepting.
///
/// The socket file is created with mode 0666: who may take the listeners
/// is decided by the peer's credentials (`SO_PEERCRED`: the same uid or
/// root), and a successor of another user is told why instead of getting
/// `EACCES`. The offer removes its socket file when it goes (only while the
/// path still names the file it created), so a successor can bind the same
/// path to offer in turn.
#[derive(Debug)]
pub struct Offer {
    listener: Option<UnixListener>,
    path: PathBuf,
    file: (u64, u64),
    listeners: Vec<NamedFd>,
    confirm_within: Duration,
}

/// What became of one successor's attempt.
#[derive(Debug)]
pub enum Attempt {
    /// The successor accepts on the listeners and confirmed: stop accepting,
    /// drain, and [`Offer::release`] the path.
    Taken(Handed),
    /// The successor's user may not take the listeners; it was told why.
    Refused {
        /// The successor's process id.
        pid: i32,
        /// What it was told.
        why: String,
    },
    /// The successor declined the listeners (e.g. they were not the ones it
    /// serves), saying why.
    Declined {
        /// The successor's process id.
        pid: i32,
        /// What it said.
        why: String,
    },
    /// The successor went away, broke the protocol or took too long before
    /// confirming: nothing changed.
    Abandoned {
        /// The successor's process id.
        pid: i32,
        /// What went wrong.
        error: Error,
    },
}

/// A successor that took the listeners and confirmed.
#[derive(Debug)]
pub struct Handed {
    pid: i32,
    /// Held open until [`Offer::release`]: its close is the successor's
    /// sign that the path is free.
    channel: Channel,
}

impl Handed {
    /// The successor's process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }
}

impl Offer {
    /// Offers `listeners` on `path`. A stale socket file there (nobody
    /// listening: a crashed server's) is replaced; a live one, or a file
    /// that is not a socket (never removed), is `AddrInUse`. Needs a tokio
    /// runtime.
    pub fn bind(path: impl AsRef<Path>, listeners: Vec<NamedFd>) -> Result<Offer> {
        let path = path.as_ref().to_path_buf();
        let fail = |e: std::io::Error| Error::io(e, "offer listeners", path.display());
        let std_listener = match std::os::unix::net::UnixListener::bind(&path) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                let is_socket = rustix::fs::lstat(&path).is_ok_and(|st| {
                    rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Socket
                });
                if !is_socket {
                    return Err(Error::new(ErrorKind::AddrInUse)
                        .during("offer listeners")
                        .on(path.display())
                        .detail("the path exists and is not a socket; it was left alone"));
                }
                match std::os::unix::net::UnixStream::connect(&path) {
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                        match rustix::fs::unlink(&path) {
                            Ok(()) | Err(Errno::NOENT) => {}
                            Err(e) => return Err(fail(e.into())),
                        }
                        std::os::unix::net::UnixListener::bind(&path).map_err(fail)?
                    }
                    _ => {
                        return Err(Error::new(ErrorKind::AddrInUse)
                            .during("offer listeners")
                            .on(path.display())
                            .detail("a live server offers its listeners there"));
                    }
                }
            }
            Err(e) => return Err(fail(e)),
        };
        let set_up = || -> std::io::Result<((u64, u64), UnixListener)> {
            rustix::fs::chmod(&path, rustix::fs::Mode::from_raw_mode(0o666))?;
            let st = rustix::fs::lstat(&path)?;
            std_listener.set_nonblocking(true)?;
            Ok((
                (st.st_dev, st.st_ino),
                UnixListener::from_std(std_listener)?,
            ))
        };
        match set_up() {
            Ok((file, listener)) => Ok(Offer {
                listener: Some(listener),
                path,
                file,
                listeners,
                confirm_within: CONFIRM_WITHIN,
            }),
            Err(e) => {
                let _ = rustix::fs::unlink(&path);
                Err(fail(e))
            }
        }
    }

    /// How long a successor has from connecting to confirming (default
    /// [`CONFIRM_WITHIN`]).
    pub fn confirm_within(mut self, within: Duration) -> Offer {
        self.confirm_within = within;
        self
    }

    /// The path successors connect to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The names offered, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.listeners.iter().map(|l| l.name.as_str())
    }

    /// Waits for the next successor and serves its attempt to the end.
    /// Cancel safe between attempts; an attempt cancelled midway is, to the
    /// successor, a server that went away before the offer was confirmed.
    /// An error means the offer's own socket failed.
    pub async fn next(&mut self) -> Result<Attempt> {
        let listener = self
            .listener
            .as_ref()
            .expect("an offer listens until released");
        let (stream, _) = listener
            .accept()
            .await
            .map_err(|e| Error::io(e, "accept successor", self.path.display()))?;
        let mut channel = Channel::new(stream);
        let peer = peer_of(channel.stream())?;
        if let Some(why) = refusal(peer, rustix::process::geteuid().as_raw()) {
            // Answer its Take (so it is not cut off mid-send), best effort:
            // the successor may be gone already.
            let _ = tokio::time::timeout(self.confirm_within, channel.recv()).await;
            let _ = channel.send(&Repr::Refused { why: why.clone() }, &[]).await;
            return Ok(Attempt::Refused { pid: peer.pid, why });
        }
        let fds: Vec<BorrowedFd<'_>> = self.listeners.iter().map(|l| l.fd.as_fd()).collect();
        let names: Vec<String> = self.names().map(str::to_owned).collect();
        let attempt = async {
            expect(&mut channel, "Take", |r| matches!(r, Repr::Take)).await?;
            channel.send(&Repr::Offer { names }, &fds).await?;
            match channel.recv().await? {
                (Repr::Confirm, _) => Ok(None),
                (Repr::Refused { why }, _) => Ok(Some(why)),
                (other, _) => Err(unexpected("Confirm", &other)),
            }
        };
        let outcome = match tokio::time::timeout(self.confirm_within, attempt).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Error::new(ErrorKind::TimedOut)
                .during("handover")
                .detail(format!("no confirmation within {:?}", self.confirm_within))),
        };
        Ok(match outcome {
            Ok(None) => Attempt::Taken(Handed {
                pid: peer.pid,
                channel,
            }),
            Ok(Some(why)) => Attempt::Declined { pid: peer.pid, why },
            Err(error) => Attempt::Abandoned {
                pid: peer.pid,
                error,
            },
        })
    }

    /// Stops offering after `handed` took the listeners: removes the socket
    /// file, then closes the connection, which tells the successor the path
    /// is free for its own offer. The descriptors here close; the
    /// successor's copies (and the server's own, until it drains) live on.
    pub fn release(self, handed: Handed) {
        let Handed { channel, .. } = handed;
        drop(self);
        drop(channel);
    }
}

async fn expect(channel: &mut Channel, what: &str, ok: impl Fn(&Repr) -> bool) -> Result<()> {
    let (repr, fds) = channel.recv().await?;
    if ok(&repr) && fds.is_empty() {
        Ok(())
    } else {
        Err(unexpected(what, &repr))
    }
}

pub(super) fn unexpected(expected: &str, got: &Repr) -> Error {
    Error::new(ErrorKind::Protocol)
        .during("handover")
        .detail(format!("expected {expected}, got {got:?}"))
}

impl Drop for Offer {
    fn drop(&mut self) {
        // Close the socket first, then remove the file, and only while the
        // path still names the file this offer created.
        drop(self.listener.take());
        if let Ok(st) = rustix::fs::lstat(&self.path)
            && (st.st_dev, st.st_ino) == self.file
        {
            let _ = rustix::fs::unlink(&self.path);
        }
    }
}
