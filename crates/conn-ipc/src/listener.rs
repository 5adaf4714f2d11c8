use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use conn_core::lifecycle::SplitListener;
use conn_core::socket::SocketListener;
use conn_core::{Endpoint, Error, ErrorKind, Result};
use rustix::fs::{FileType, Mode};
use rustix::io::Errno;

use crate::IpcStream;
use crate::addr::IpcAddr;
use crate::family::Ipc;
use crate::stream::new_socket;

conn_core::socket_listener! {
/// A listening Unix-domain socket at a filesystem path or a Linux abstract
/// name (`@name`), with connkit's lifecycle (libdill `ipc_listen`).
///
/// ```
/// use conn_core::{Connection, Deadline, ErrorKind};
/// use conn_ipc::{IpcListener, IpcStream};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let path = std::env::temp_dir().join(format!("conn-ipc-doc-{}.sock", std::process::id()));
/// let mut listener = IpcListener::options().mode(0o600).bind(&path)?;
///
/// // Nobody waiting: NOW gives up at once.
/// let err = listener.accept(Deadline::NOW).await.unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::TimedOut);
///
/// let client = IpcStream::connect(&path, Deadline::NEVER).await?;
/// let server = listener.accept(Deadline::NOW).await?;
/// assert_eq!(server.peer_cred()?.pid, std::process::id());
/// client.kill();
/// server.kill();
///
/// drop(listener); // removes the socket file
/// assert!(!path.exists());
/// # Ok(()) }
/// ```
///
/// # Socket files
///
/// Binding over a path that holds a *stale* socket file (one nobody listens
/// on any more, left by a crashed process) replaces it. Binding over a live
/// listener fails with `AddrInUse`, and so does binding over a file that is
/// not a socket, which is never deleted. When the listener goes, it removes
/// its socket file, but only if the path still names the file it created
/// (same device and inode): a newer listener's file is left alone.
///
/// The file's mode can be set with [`IpcListenerOptions::mode`]. It is set
/// after `bind(2)` and before `listen(2)`; no peer can connect before
/// `listen`, so no peer ever connects through a file with the wrong mode.
///
/// # Cancel safety
///
/// [`accept`](IpcListener::accept) is cancel safe: the only thing it does
/// that has an effect is the `accept4(2)` call, and a connection it accepts
/// is returned in the same poll. `conn_core::serve` relies on this.
///
/// # Accepting
///
/// `accept` and `accept_until` (a cancellation token) hand out
/// [`IpcStream`]s; `accept_into` (from [`Listener`](conn_core::Listener))
/// places them in an [`IpcSlot`](crate::IpcSlot) without allocating. The
/// listener is conn-core's
/// [`SocketListener`](conn_core::socket::SocketListener) for Unix-domain
/// sockets, whose docs say what accepting allocates (nothing).
pub struct IpcListener(Ipc) -> IpcStream;
}

/// The socket file a listener created (or took over), to remove when it
/// goes unless [`SocketFileOwner::leave`] said otherwise.
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
    left: Arc<AtomicBool>,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if self.left.load(Ordering::SeqCst) {
            return;
        }
        // Remove the file only while the path still names the one we
        // created; a newer listener may have replaced it.
        if let Ok(st) = rustix::fs::lstat(self.path.as_path())
            && st.st_dev == self.dev
            && st.st_ino == self.ino
        {
            let _ = rustix::fs::unlink(self.path.as_path());
        }
    }
}

/// A handle on whether an [`IpcListener`] removes its socket file when it
/// goes, from [`IpcListener::socket_file_owner`]; it stays valid after the
/// listener moved into a serve loop.
///
/// In a handover the server's listener went to a successor that accepts on
/// the same socket through the same path: [`leave`](SocketFileOwner::leave)
/// keeps this listener from removing the file the successor now serves.
///
/// ```
/// use conn_ipc::IpcListener;
///
/// let path = std::env::temp_dir().join(format!("conn-ipc-owner-doc-{}.sock", std::process::id()));
/// let listener = IpcListener::bind(&path)?;
/// let owner = listener.socket_file_owner().expect("a path, not an abstract name");
/// owner.leave();
/// drop(listener);
/// assert!(path.exists(), "left for whoever took the listener over");
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), conn_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct SocketFileOwner {
    left: Arc<AtomicBool>,
}

impl SocketFileOwner {
    /// From now on the listener leaves its socket file when it goes.
    pub fn leave(&self) {
        self.left.store(true, Ordering::SeqCst);
    }

    /// Undoes [`leave`](SocketFileOwner::leave): the listener removes its
    /// socket file when it goes again. A successor leaves the file until
    /// its predecessor has seen its confirmation, then reclaims it.
    pub fn reclaim(&self) {
        self.left.store(false, Ordering::SeqCst);
    }
}

/// How [`IpcListener::options`] binds: the socket file's mode, the backlog,
/// and what happens to stale files.
///
/// ```
/// use std::os::unix::fs::PermissionsExt;
/// use conn_ipc::IpcListenerOptions;
///
/// let path = std::env::temp_dir().join(format!("conn-ipc-opts-doc-{}.sock", std::process::id()));
/// let listener = IpcListenerOptions::new().mode(0o660).backlog(16).bind(&path)?;
/// assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o660);
/// drop(listener);
/// # Ok::<(), conn_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct IpcListenerOptions {
    mode: Option<u32>,
    backlog: i32,
    replace_stale: bool,
    remove_on_drop: bool,
}

impl Default for IpcListenerOptions {
    fn default() -> Self {
        IpcListenerOptions {
            mode: None,
            backlog: 128,
            replace_stale: true,
            remove_on_drop: true,
        }
    }
}

impl IpcListenerOptions {
    /// The defaults: the mode the umask gives, a backlog of 128, stale
    /// socket files replaced, the file removed when the listener goes.
    pub fn new() -> Self {
        IpcListenerOptions::default()
    }

    /// Sets the socket file's permission bits, e.g. `0o600` so only the
    /// owner can connect. Ignored for abstract names, which have no file.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Sets the `listen(2)` backlog: connections the kernel queues before
    /// `connect` is refused with `EAGAIN`.
    pub fn backlog(mut self, backlog: i32) -> Self {
        self.backlog = backlog;
        self
    }

    /// Whether a stale socket file at the path is replaced (default `true`).
    /// With `false`, any existing file is `AddrInUse`.
    pub fn replace_stale(mut self, replace: bool) -> Self {
        self.replace_stale = replace;
        self
    }

    /// Whether the listener removes its socket file when it goes (default
    /// `true`).
    pub fn remove_on_drop(mut self, remove: bool) -> Self {
        self.remove_on_drop = remove;
        self
    }

    /// Binds and listens at `path`: a filesystem path, or a Linux abstract
    /// name written `@name`, with or without `ipc://`.
    pub fn bind(&self, path: impl AsRef<Path>) -> Result<IpcListener> {
        let (addr, endpoint) = IpcAddr::parse(path.as_ref(), "bind")?;
        let fail = |e: io::Error| Error::io(e, "bind", &endpoint);
        let sockaddr = addr.socket_addr().map_err(fail)?;
        let fd = new_socket().map_err(fail)?;
        match (rustix::net::bind(&fd, &sockaddr), &addr) {
            (Ok(()), _) => {}
            (Err(Errno::ADDRINUSE), IpcAddr::Path(path)) if self.replace_stale => {
                match probe(path) {
                    Probe::Gone => {}
                    Probe::Stale => match rustix::fs::unlink(path.as_path()) {
                        Ok(()) | Err(Errno::NOENT) => {}
                        Err(e) => {
                            return Err(fail(e.into()).detail("removing the stale socket file"));
                        }
                    },
                    Probe::Live => {
                        return Err(in_use(&endpoint, "another listener is accepting there"));
                    }
                    Probe::NotSocket => {
                        return Err(in_use(
                            &endpoint,
                            "the path exists and is not a socket; it was left alone",
                        ));
                    }
                }
                rustix::net::bind(&fd, &sockaddr).map_err(|e| fail(e.into()))?;
            }
            (Err(e), _) => return Err(fail(e.into())),
        }
        let file = match &addr {
            IpcAddr::Path(path) => {
                // The file is ours from here on: set its mode before
                // `listen` (no peer can connect before that), note its
                // identity, and remove it again if anything fails.
                let setup = || -> io::Result<SocketFile> {
                    if let Some(mode) = self.mode {
                        rustix::fs::chmod(path.as_path(), Mode::from_raw_mode(mode))?;
                    }
                    let st = rustix::fs::lstat(path.as_path())?;
                    rustix::net::listen(&fd, self.backlog)?;
                    Ok(SocketFile {
                        path: path.clone(),
                        dev: st.st_dev,
                        ino: st.st_ino,
                        // Without remove_on_drop the file is left from the
                        // start, so dropping this record keeps it.
                        left: Arc::new(AtomicBool::new(!self.remove_on_drop)),
                    })
                };
                match setup() {
                    Ok(file) => self.remove_on_drop.then_some(file),
                    Err(e) => {
                        let _ = rustix::fs::unlink(path.as_path());
                        return Err(fail(e));
                    }
                }
            }
            IpcAddr::Abstract(_) => {
                rustix::net::listen(&fd, self.backlog).map_err(|e| fail(e.into()))?;
                None
            }
        };
        Ok(IpcListener(SocketListener::new(fd, endpoint, file)))
    }
}

fn in_use(endpoint: &Endpoint, why: &'static str) -> Error {
    Error::new(ErrorKind::AddrInUse)
        .during("bind")
        .on(endpoint)
        .detail(why)
}

/// What holds a path that `bind` found in use.
enum Probe {
    /// Nothing any more.
    Gone,
    /// A socket file nobody listens on.
    Stale,
    /// A socket file with a listener behind it (or one we cannot check).
    Live,
    /// Something that is not a socket.
    NotSocket,
}

fn probe(path: &Path) -> Probe {
    let st = match rustix::fs::lstat(path) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Probe::Gone,
        Err(_) => return Probe::Live,
    };
    if FileType::from_raw_mode(st.st_mode) != FileType::Socket {
        return Probe::NotSocket;
    }
    let Ok(sockaddr) = rustix::net::SocketAddrUnix::new(path) else {
        return Probe::Live;
    };
    let Ok(fd) = new_socket() else {
        return Probe::Live;
    };
    match rustix::net::connect(&fd, &sockaddr) {
        // Only a refusal proves nobody listens; anything else (a connection,
        // a full backlog, no permission) leaves the file alone. A listener
        // that is starting has its file a moment before it listens (bind,
        // then listen), so a refusal counts only if it is still a refusal,
        // on the same file, a little later.
        Err(Errno::CONNREFUSED) => {
            std::thread::sleep(STARTING_LISTENER_GRACE);
            let same_file = rustix::fs::lstat(path)
                .is_ok_and(|again| (again.st_dev, again.st_ino) == (st.st_dev, st.st_ino));
            let Ok(fd) = new_socket() else {
                return Probe::Live;
            };
            match rustix::net::connect(&fd, &sockaddr) {
                Err(Errno::CONNREFUSED) if same_file => Probe::Stale,
                Err(Errno::NOENT) => Probe::Gone,
                _ => Probe::Live,
            }
        }
        Err(Errno::NOENT) => Probe::Gone,
        _ => Probe::Live,
    }
}

/// How long a socket file that refuses connections is given to start
/// listening before it counts as stale: far longer than the moment between
/// a listener's bind(2) and listen(2).
const STARTING_LISTENER_GRACE: std::time::Duration = std::time::Duration::from_millis(20);

impl IpcListener {
    /// Binds and listens at `path` with the default options (see
    /// [`IpcListenerOptions`]): a filesystem path, or a Linux abstract name
    /// written `@name`, with or without `ipc://`.
    pub fn bind(path: impl AsRef<Path>) -> Result<IpcListener> {
        IpcListenerOptions::new().bind(path)
    }

    /// Options for binding: the socket file's mode, the backlog, stale
    /// files.
    pub fn options() -> IpcListenerOptions {
        IpcListenerOptions::new()
    }

    /// Adopts a listening Unix-domain stream socket, e.g. one passed by
    /// systemd (see `conn_core::activation::listen_fds`) (libdill
    /// `ipc_listener_fromfd`). The descriptor is made non-blocking. The
    /// socket file, if any, belongs to whoever created it and is left alone.
    ///
    /// `NotSocket` when `fd` is not a socket; `InvalidType` when it is not a
    /// listening Unix-domain stream socket.
    pub fn from_fd(fd: std::os::fd::OwnedFd) -> Result<IpcListener> {
        SocketListener::from_fd(fd).map(IpcListener)
    }

    /// Makes this listener, adopted with [`from_fd`](IpcListener::from_fd),
    /// the owner of the socket file at its address: it removes the file
    /// when it goes, as if it had bound it (and only while the path still
    /// names the file found now). For a successor in a handover, which
    /// takes the path over with the descriptor; not for sockets systemd
    /// passed, whose files systemd owns. Nothing for an abstract name.
    ///
    /// `InvalidType` when the path does not name a socket file now.
    ///
    /// ```
    /// use std::os::fd::AsFd;
    /// use conn_ipc::IpcListener;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
    /// let path = std::env::temp_dir().join(format!("conn-ipc-own-doc-{}.sock", std::process::id()));
    /// let old = IpcListener::bind(&path)?;
    /// // A handover: the descriptor goes to the successor, the file stays.
    /// let fd = old.as_fd().try_clone_to_owned().unwrap();
    /// old.socket_file_owner().unwrap().leave();
    /// drop(old);
    /// assert!(path.exists());
    ///
    /// let mut new = IpcListener::from_fd(fd)?;
    /// new.own_socket_file()?;
    /// drop(new);
    /// assert!(!path.exists(), "the last owner removes it");
    /// # Ok(()) }
    /// ```
    pub fn own_socket_file(&mut self) -> Result<()> {
        let addr = IpcAddr::of_socket(std::os::fd::AsFd::as_fd(self), false);
        let Some(IpcAddr::Path(path)) = addr else {
            return Ok(());
        };
        let st = rustix::fs::lstat(path.as_path())
            .map_err(|e| Error::io(e.into(), "own socket file", self.endpoint()))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::Socket {
            return Err(Error::new(ErrorKind::InvalidType)
                .during("own socket file")
                .on(self.endpoint())
                .detail("the path is not a socket file"));
        }
        *self.0.local_mut() = Some(SocketFile {
            path,
            dev: st.st_dev,
            ino: st.st_ino,
            left: Arc::default(),
        });
        Ok(())
    }

    /// The handle that decides whether this listener removes its socket
    /// file when it goes; `None` when it owns none (an abstract name, an
    /// adopted descriptor, a split copy, `remove_on_drop(false)`).
    pub fn socket_file_owner(&self) -> Option<SocketFileOwner> {
        self.0.local().as_ref().map(|file| SocketFileOwner {
            left: file.left.clone(),
        })
    }
}

/// Another descriptor for the same listening socket (`dup`): both accept
/// from the one queue. The copy never removes the socket file; the original
/// does, when it goes.
impl SplitListener for IpcListener {
    fn split(&self) -> Result<IpcListener> {
        self.0.duplicate(None).map(IpcListener)
    }
}
