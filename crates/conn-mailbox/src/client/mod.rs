//! The client: [`Mailbox`] (Spread's `SP_*` calls), [`MailboxSender`] (a
//! `tower::Service` for sending) and the mailbox as a `futures::Stream` of
//! received events.

pub(crate) mod decode;
mod sender;

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use conn_core::{BoxConnection, Connection, Deadline};
use conn_ipc::IpcStream;
use conn_tcp::TcpStream;
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::Mutex;

pub use sender::{MailboxSender, Outgoing};

use crate::error::Code;
use crate::limits::{
    MAX_GROUPS_PER_MESSAGE, MAX_MESSAGE, legal_destination, legal_group_name, legal_private_name,
};
use conn_core::wire::Repr as _;

use crate::wire::{Names, Repr, next_frame};
use crate::{Event, MailboxError, Secret, Service};
use decode::Decoded;

/// The result of mailbox operations.
pub type Result<T, E = MailboxError> = std::result::Result<T, E>;

type Writer = Arc<Mutex<WriteHalf<BoxConnection>>>;

/// A connection to `mailboxd` (Spread's `mailbox`).
///
/// ```
/// # use std::time::Duration;
/// use conn_core::Deadline;
/// # #[cfg(feature = "daemon")]
/// use conn_mailbox::{Event, Mailbox, Service, daemon::{DaemonConfig, run}};
///
/// # #[cfg(feature = "daemon")]
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let socket = std::env::temp_dir().join(format!("mailbox-doc-{}.sock", std::process::id()));
/// # let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// # let daemon = tokio::spawn(run(DaemonConfig::new(&socket), async { stopped.await.ok(); }));
/// # conn_mailbox::daemon::wait_ready(&socket, Deadline::NEVER).await?;
/// let soon = Deadline::after(Duration::from_secs(5));
/// let (mut a, a_name) = Mailbox::connect(&socket, "a", 0, true, soon).await?;
/// let (mut b, _) = Mailbox::connect(&socket, "b", 0, false, soon).await?;
/// assert_eq!(a_name, "#a#local");
/// // b writes to a's private group: unicast.
/// b.multicast(Service::RELIABLE, &[a_name.as_str()], 7, b"psst").await?;
/// match a.receive(soon).await? {
///     Event::Message(m) => assert_eq!((m.sender(), m.data()), ("#b#local", &b"psst"[..])),
///     other => panic!("{other:?}"),
/// }
/// a.disconnect(soon).await?;
/// b.kill();
/// # stop.send(()).unwrap(); daemon.await??;
/// # Ok(()) }
/// # #[cfg(not(feature = "daemon"))] fn main() {}
/// ```
pub struct Mailbox {
    rd: ReadHalf<BoxConnection>,
    wr: Writer,
    rbuf: BytesMut,
    /// Events read while waiting for a reply, and refusals, in arrival order.
    pending: VecDeque<Result<Event>>,
    private_group: String,
    next_req: u32,
    fd: RawFd,
    closed: bool,
}

/// How [`Mailbox::connect_with`] connects: today, the secret a daemon's TCP
/// clients must prove they hold.
///
/// Over `tcp://` with a secret, the client waits for the daemon's challenge,
/// answers it with an HMAC-SHA256 over both nonces, and says hello only
/// once the daemon has proved it holds the secret too. A daemon that
/// refuses the answer fails the connect with
/// [`MailboxError::Unauthenticated`] (kind `PermissionDenied`, "mailboxd at
/// tcp://ADDR refused the secret: ..."); so does one that cannot prove
/// itself, or that asks for a secret when none was given. Unix-socket
/// connections ignore the secret: the daemon knows their uid.
///
/// ```
/// use conn_mailbox::{ConnectOptions, Secret};
/// let options = ConnectOptions::new().secret(Secret::new(*b"a secret of 24 bytes ...")?);
/// # let _ = options;
/// // Or from a file only its owner may read:
/// // ConnectOptions::new().secret(Secret::load("/etc/connkit/mailbox.secret".as_ref())?)
/// # Ok::<(), conn_core::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct ConnectOptions {
    secret: Option<Secret>,
}

impl ConnectOptions {
    /// No secret: for Unix sockets, and for a daemon started with
    /// `--tcp-insecure`.
    pub fn new() -> ConnectOptions {
        ConnectOptions::default()
    }

    /// The secret to answer a TCP daemon's challenge with (`mailboxd
    /// --secret FILE` holds the same).
    pub fn secret(mut self, secret: Secret) -> ConnectOptions {
        self.secret = Some(secret);
        self
    }
}

impl Mailbox {
    /// Connects to the daemon at `daemon` (a Unix socket path, or
    /// `tcp://host:port` for a daemon started with `--tcp`) under
    /// `private_name` (Spread's `SP_connect_timeout`); returns the mailbox
    /// and its private group
    /// `#name#daemon`. With `membership` the mailbox receives membership
    /// messages. `priority` is kept for Spread's sake and has no effect.
    ///
    /// With no secret: a TCP daemon that asks for one fails the connect
    /// with [`MailboxError::Unauthenticated`]; see
    /// [`Mailbox::connect_with`].
    pub async fn connect(
        daemon: impl AsRef<Path>,
        private_name: &str,
        priority: u8,
        membership: bool,
        deadline: Deadline,
    ) -> Result<(Mailbox, String)> {
        let options = ConnectOptions::new();
        Mailbox::connect_with(
            daemon,
            private_name,
            priority,
            membership,
            &options,
            deadline,
        )
        .await
    }

    /// [`Mailbox::connect`] with `options`: over `tcp://`, the secret
    /// that answers the daemon's challenge ([`ConnectOptions::secret`]).
    pub async fn connect_with(
        daemon: impl AsRef<Path>,
        private_name: &str,
        priority: u8,
        membership: bool,
        options: &ConnectOptions,
        deadline: Deadline,
    ) -> Result<(Mailbox, String)> {
        if !legal_private_name(private_name) {
            return Err(MailboxError::IllegalName(private_name.into()));
        }
        let daemon = daemon.as_ref();
        let tcp = daemon.to_str().and_then(|d| d.strip_prefix("tcp://"));
        let (stream, fd): (BoxConnection, RawFd) = match tcp {
            Some(addr) => {
                let s = TcpStream::connect(addr, deadline).await?;
                let fd = s.as_raw_fd();
                (Box::new(s), fd)
            }
            None => {
                let s = IpcStream::connect(daemon, deadline).await?;
                let fd = s.as_raw_fd();
                (Box::new(s), fd)
            }
        };
        let (rd, wr) = tokio::io::split(stream);
        let mut mbox = Mailbox {
            rd,
            wr: Arc::new(Mutex::new(wr)),
            rbuf: BytesMut::new(),
            pending: VecDeque::new(),
            private_group: String::new(),
            next_req: 1,
            fd,
            closed: false,
        };
        if let (Some(addr), Some(secret)) = (tcp, &options.secret) {
            mbox.authenticate(addr, secret, deadline).await?;
        }
        let hello = Repr::Connect {
            version: Repr::VERSION,
            priority,
            membership,
            name: private_name,
        };
        mbox.send_frame(&hello.to_vec()?).await?;
        let frame = mbox.first_frame(deadline).await?;
        match decode::decode(frame)? {
            Decoded::Welcome(pg) => mbox.private_group = pg,
            Decoded::Reply { code, detail, .. } => {
                return Err(refusal(code, &detail));
            }
            Decoded::Challenge(_) => {
                return Err(unauthenticated(
                    tcp.unwrap_or_default(),
                    "asks for a secret, and none was given (ConnectOptions::secret; \
                     `connkit mailbox --secret FILE`)",
                ));
            }
            other => {
                return Err(MailboxError::Protocol(format!(
                    "expected a welcome, got {other:?}"
                )));
            }
        }
        let pg = mbox.private_group.clone();
        Ok((mbox, pg))
    }

    /// The next frame while connecting.
    async fn first_frame(&mut self, deadline: Deadline) -> Result<Bytes> {
        deadline
            .run(std::future::poll_fn(|cx| self.poll_frame(cx)))
            .await
            .map_err(|e| MailboxError::Io(e.during("connect to mailboxd")))?
    }

    /// Over TCP with a secret: answer the daemon's challenge, check its
    /// proof (see [`ConnectOptions`]).
    async fn authenticate(
        &mut self,
        addr: &str,
        secret: &Secret,
        deadline: Deadline,
    ) -> Result<()> {
        let theirs = match self.first_frame(deadline).await {
            Ok(frame) => match decode::decode(frame)? {
                Decoded::Challenge(nonce) => nonce,
                Decoded::Reply { code, detail, .. } => return Err(refusal(code, &detail)),
                other => {
                    return Err(MailboxError::Protocol(format!(
                        "expected a challenge, got {other:?}"
                    )));
                }
            },
            Err(MailboxError::ConnectionClosed) => {
                return Err(unauthenticated(
                    addr,
                    "closed the connection without a challenge (is it started with \
                     --secret, or with --tcp-insecure?)",
                ));
            }
            Err(e) => return Err(e),
        };
        let ours = conn_core::auth::nonce()?;
        let answer = Repr::Answer {
            nonce: ours,
            mac: crate::auth::client_mac(secret, &theirs, &ours).sign(),
        };
        self.send_frame(&answer.to_vec()?).await?;
        let refused =
            |detail: &str| unauthenticated(addr, &format!("refused the secret: {detail}"));
        match self.first_frame(deadline).await {
            Ok(frame) => match decode::decode(frame)? {
                Decoded::Proof(mac)
                    if crate::auth::daemon_mac(secret, &theirs, &ours).verify(&mac) =>
                {
                    Ok(())
                }
                Decoded::Proof(_) => Err(unauthenticated(
                    addr,
                    "could not prove it holds the secret (a wrong proof): it is not the \
                     daemon this secret is for",
                )),
                Decoded::Reply { code, detail, .. }
                    if Code::from_u16(code) == Some(Code::Unauthenticated) =>
                {
                    Err(refused(&detail))
                }
                Decoded::Reply { code, detail, .. } => Err(refusal(code, &detail)),
                other => Err(MailboxError::Protocol(format!(
                    "expected the daemon's proof, got {other:?}"
                ))),
            },
            // A daemon that refuses may close before its refusal is read.
            Err(MailboxError::ConnectionClosed) => {
                Err(refused("it closed the connection without a proof"))
            }
            Err(e) => Err(e),
        }
    }

    /// Adopts a mailbox on a Unix socket inherited across `fork`/`exec` (its
    /// descriptor and private group). Nothing may have been read from it
    /// here before.
    pub fn from_fd(fd: OwnedFd, private_group: String) -> Result<Mailbox> {
        let stream = IpcStream::from_fd(fd)?;
        let fd = stream.as_raw_fd();
        let (rd, wr) = tokio::io::split(Box::new(stream) as BoxConnection);
        Ok(Mailbox {
            rd,
            wr: Arc::new(Mutex::new(wr)),
            rbuf: BytesMut::new(),
            pending: VecDeque::new(),
            private_group,
            next_req: 1,
            fd,
            closed: false,
        })
    }

    /// This mailbox's private group, `#name#daemon`.
    pub fn private_group(&self) -> &str {
        &self.private_group
    }

    /// The connection's descriptor (to hand a copy to a child process).
    pub fn as_raw_fd(&self) -> RawFd {
        self.fd
    }

    /// A `tower::Service` that sends on this mailbox's connection.
    pub fn sender(&self) -> MailboxSender {
        MailboxSender::new(self.wr.clone())
    }

    /// Joins `group` (Spread's `SP_join`); returns once the daemon accepted
    /// it. The membership message follows through [`Mailbox::receive`].
    pub async fn join(&mut self, group: &str, deadline: Deadline) -> Result<()> {
        if !legal_group_name(group) {
            return Err(MailboxError::IllegalGroup(group.into()));
        }
        let req = self.req();
        self.request(Repr::Join { req, group }.to_vec()?, req, deadline)
            .await
    }

    /// Leaves `group` (Spread's `SP_leave`); the self-leave message follows.
    pub async fn leave(&mut self, group: &str, deadline: Deadline) -> Result<()> {
        if !legal_group_name(group) {
            return Err(MailboxError::IllegalGroup(group.into()));
        }
        let req = self.req();
        self.request(Repr::Leave { req, group }.to_vec()?, req, deadline)
            .await
    }

    /// Sends `data` to `groups` (groups and private groups) with `service`
    /// (Spread's `SP_multicast`); returns the bytes sent. A send the
    /// daemon refuses (access list) comes back as an error from a later
    /// [`Mailbox::receive`].
    pub async fn multicast(
        &mut self,
        service: Service,
        groups: &[&str],
        msg_type: i16,
        data: &[u8],
    ) -> Result<usize> {
        let frame = encode_multicast(service, groups, msg_type, data)?;
        self.send_frame(&frame).await?;
        Ok(data.len())
    }

    /// The next message or membership change (Spread's `SP_receive`).
    pub async fn receive(&mut self, deadline: Deadline) -> Result<Event> {
        deadline
            .run(std::future::poll_fn(|cx| self.poll_event(cx)))
            .await
            .map_err(|e| MailboxError::Io(e.during("receive").on(&self.private_group)))?
    }

    /// Like [`Mailbox::receive`], copying a message's body into `buf`
    /// (Spread's `SP_receive` with a caller buffer). When `buf` is too
    /// short: `BufferTooShort`, and the message stays queued for the next
    /// call unless `drop_if_short` (Spread's `DROP_RECV`). Returns the event
    /// (a message still carries its body) and the body length.
    pub async fn receive_into(
        &mut self,
        buf: &mut [u8],
        drop_if_short: bool,
        deadline: Deadline,
    ) -> Result<(Event, usize)> {
        let next = self.receive(deadline).await?;
        let Event::Message(m) = &next else {
            return Ok((next, 0));
        };
        let len = m.data().len();
        if len > buf.len() {
            if !drop_if_short {
                self.pending.push_front(Ok(next));
            }
            return Err(MailboxError::BufferTooShort {
                needed: len,
                dropped: drop_if_short,
            });
        }
        buf[..len].copy_from_slice(m.data());
        Ok((next, len))
    }

    /// Disconnects in order (Spread's `SP_disconnect`): the daemon is told,
    /// so members see cause disconnect at once; then the connection closes.
    pub async fn disconnect(self, deadline: Deadline) -> Result<()> {
        let Mailbox { rd, wr, .. } = self;
        {
            let mut w = wr.lock().await;
            deadline
                .run(w.write_all(&Repr::Disconnect.to_vec()?))
                .await
                .map_err(|e| e.during("disconnect"))?
                .map_err(|e| closed_or(e.into()))?;
        }
        // With no sender clone left, finish the orderly close; otherwise the
        // daemon closes its end and the last copy's drop releases ours.
        if let Ok(w) = Arc::try_unwrap(wr) {
            let conn = rd.unsplit(w.into_inner());
            conn.close(deadline).await.or_else(|e| match e.kind() {
                conn_core::ErrorKind::ConnectionReset => Ok(()),
                _ => Err(e),
            })?;
        }
        Ok(())
    }

    /// Releases this process's copy of the connection without a word to the
    /// daemon (Spread's `SP_kill`): no goodbye, no `shutdown(2)`. After a
    /// fork the other copy keeps working; when the last copy goes the
    /// daemon sees a broken connection and members see cause network.
    ///
    /// A [`MailboxSender`] clone still alive keeps this process's copy open
    /// until it goes too.
    pub fn kill(self) {
        let Mailbox { rd, wr, .. } = self;
        match Arc::try_unwrap(wr) {
            Ok(w) => Connection::kill(rd.unsplit(w.into_inner())),
            // The sender's copy goes when it does; dropping never shuts down.
            Err(_) => drop(rd),
        }
    }

    fn req(&mut self) -> u32 {
        let r = self.next_req;
        self.next_req = self.next_req.wrapping_add(1).max(1);
        r
    }

    async fn send_frame(&mut self, frame: &[u8]) -> Result<()> {
        if self.closed {
            return Err(MailboxError::ConnectionClosed);
        }
        write_frame(&self.wr, frame).await
    }

    async fn request(&mut self, frame: Vec<u8>, req: u32, deadline: Deadline) -> Result<()> {
        self.send_frame(&frame).await?;
        let wait = std::future::poll_fn(|cx| {
            loop {
                let frame = match self.poll_frame(cx) {
                    Poll::Ready(Ok(f)) => f,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                };
                match decode::decode(frame) {
                    Ok(Decoded::Reply {
                        req: r,
                        code,
                        detail,
                    }) if r == req => {
                        return Poll::Ready(match code {
                            0 => Ok(()),
                            c => Err(refusal(c, &detail)),
                        });
                    }
                    Ok(Decoded::Reply {
                        req: 0,
                        code,
                        detail,
                    }) => self.pending.push_back(Err(refusal(code, &detail))),
                    Ok(Decoded::Reply { .. }) => {} // the answer to an abandoned request
                    Ok(Decoded::Event(ev)) => self.pending.push_back(Ok(ev)),
                    Ok(
                        other @ (Decoded::Welcome(_) | Decoded::Challenge(_) | Decoded::Proof(_)),
                    ) => {
                        return Poll::Ready(Err(unexpected(&other)));
                    }
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
        });
        deadline
            .run(wait)
            .await
            .map_err(|e| MailboxError::Io(e.during("request").on(&self.private_group)))?
    }

    /// The next event, from `pending` first, then from the socket.
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Result<Event>> {
        if let Some(ev) = self.pending.pop_front() {
            return Poll::Ready(ev);
        }
        loop {
            let frame = match self.poll_frame(cx) {
                Poll::Ready(Ok(f)) => f,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            match decode::decode(frame) {
                Ok(Decoded::Event(ev)) => return Poll::Ready(Ok(ev)),
                Ok(Decoded::Reply {
                    req: 0,
                    code,
                    detail,
                }) => {
                    return Poll::Ready(Err(refusal(code, &detail)));
                }
                Ok(Decoded::Reply { .. }) => continue,
                Ok(other @ (Decoded::Welcome(_) | Decoded::Challenge(_) | Decoded::Proof(_))) => {
                    return Poll::Ready(Err(unexpected(&other)));
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// The next whole frame from the socket.
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Result<Bytes>> {
        if self.closed {
            return Poll::Ready(Err(MailboxError::ConnectionClosed));
        }
        loop {
            match next_frame(&mut self.rbuf) {
                Err(e) => {
                    self.closed = true;
                    return Poll::Ready(Err(MailboxError::Protocol(e.to_string())));
                }
                Ok(Some(frame)) => return Poll::Ready(Ok(frame)),
                Ok(None) => {}
            }
            match tokio_util::io::poll_read_buf(Pin::new(&mut self.rd), cx, &mut self.rbuf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => {
                    self.closed = true;
                    return Poll::Ready(Err(MailboxError::ConnectionClosed));
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => {
                    self.closed = true;
                    return Poll::Ready(Err(closed_or(e.into())));
                }
            }
        }
    }
}

impl futures::Stream for Mailbox {
    type Item = Result<Event>;

    /// Events until the session ends (then `None`).
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match this.poll_event(cx) {
            Poll::Ready(Err(MailboxError::ConnectionClosed)) => Poll::Ready(None),
            Poll::Ready(r) => Poll::Ready(Some(r)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox")
            .field("private_group", &self.private_group)
            .field("fd", &self.fd)
            .field("closed", &self.closed)
            .finish()
    }
}

fn refusal(code: u16, detail: &str) -> MailboxError {
    match Code::from_u16(code) {
        Some(c) => MailboxError::from_code(c, detail),
        None => MailboxError::Protocol(format!("unknown refusal code {code}: {detail}")),
    }
}

/// A handshake frame in the middle of a session.
fn unexpected(frame: &Decoded) -> MailboxError {
    MailboxError::Protocol(match frame {
        Decoded::Welcome(_) => "a second welcome".into(),
        other => format!("a handshake frame in the session: {other:?}"),
    })
}

/// The daemon at `tcp://addr` did not let this client in, or is not the
/// daemon the secret is for.
fn unauthenticated(addr: &str, why: &str) -> MailboxError {
    MailboxError::Unauthenticated(
        conn_core::Error::new(conn_core::ErrorKind::PermissionDenied)
            .during("connect to mailboxd")
            .on(format_args!("tcp://{addr}"))
            .detail(format!("mailboxd at tcp://{addr} {why}")),
    )
}

/// Broken pipes and resets mean the session is gone.
fn closed_or(e: conn_core::Error) -> MailboxError {
    use conn_core::ErrorKind::*;
    match e.kind() {
        BrokenPipe | ConnectionReset | NotConnected => MailboxError::ConnectionClosed,
        _ => MailboxError::Io(e),
    }
}

async fn write_frame(wr: &Writer, frame: &[u8]) -> Result<()> {
    let mut w = wr.lock().await;
    w.write_all(frame).await.map_err(|e| closed_or(e.into()))
}

/// Checks a multicast against the limits, as the daemon will.
pub(crate) fn check_multicast(service: Service, groups: &[&str], data: &[u8]) -> Result<()> {
    if !service.is_valid() {
        return Err(MailboxError::IllegalService(service.bits()));
    }
    if groups.is_empty() || groups.len() > MAX_GROUPS_PER_MESSAGE {
        return Err(MailboxError::TooManyGroups {
            count: groups.len(),
            max: MAX_GROUPS_PER_MESSAGE,
        });
    }
    if let Some(g) = groups.iter().find(|g| !legal_destination(g)) {
        return Err(MailboxError::IllegalGroup((*g).into()));
    }
    if data.len() > MAX_MESSAGE {
        return Err(MailboxError::MessageTooLong {
            len: data.len(),
            max: MAX_MESSAGE,
        });
    }
    Ok(())
}

/// Checks a multicast against the limits and encodes it.
fn encode_multicast(
    service: Service,
    groups: &[&str],
    msg_type: i16,
    data: &[u8],
) -> Result<Vec<u8>> {
    check_multicast(service, groups, data)?;
    Ok(Repr::Multicast {
        service: service.bits(),
        msg_type,
        groups: Names::from(groups),
        payload: data,
    }
    .to_vec()?)
}

/// Compile-time check: a mailbox's futures may move between threads
/// (`tokio::spawn` on a multi-thread runtime).
#[allow(dead_code)]
fn futures_are_send(m: &mut Mailbox) {
    fn send<T: Send>(_: T) {}
    send(m.multicast(Service::AGREED, &["g"], 0, b""));
    send(m.join("g", Deadline::NEVER));
    send(m.receive(Deadline::NEVER));
}
