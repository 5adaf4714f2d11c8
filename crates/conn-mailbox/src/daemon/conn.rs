//! One client's connection: read frames and hand them to the router, write
//! what the router queued, end as the client or the router decides.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use conn_core::serve::Graceful;
use conn_core::{Connection, Deadline, Error, ErrorKind};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::outbox::{End, Outbox};
use super::router::{ClientId, Router};
use super::{DaemonConfig, Secret};
use crate::Cause;
use crate::error::Code;
use conn_core::wire::{Format, Problem, Repr as _};

use crate::wire::{Mailbox, READ_ROOM, Repr, WireError, frame_bytes, frame_len, next_frame};
use conn_core::budget::{Budget, Charge, OverBudget, TrimWhenGone, trim_heap};

/// How long an orderly close may take before the connection is dropped.
const CLOSE_WITHIN: Duration = Duration::from_secs(2);

/// Why reading ended.
enum ReadEnd {
    /// A whole frame arrived.
    Frame(Bytes),
    /// The peer closed its end.
    Eof,
    /// Bytes that are no frame.
    Bad(WireError),
    /// The socket failed.
    Io(std::io::Error),
}

/// The next whole frame in `buf`, or `Ok(None)` once `buf` has room for
/// more of one and `charge` allows that room. Buffers grow only with bytes
/// that arrived (see [`next_frame`]), and the budget is checked before a
/// byte is read into the new room.
fn frame_or_room(buf: &mut BytesMut, charge: &mut Charge) -> Result<Option<Bytes>, Unfit> {
    match next_frame(buf) {
        Err(e) => Err(Unfit::Bad(e)),
        Ok(Some(frame)) => Ok(Some(frame)),
        Ok(None) => match charge.resize(buf.capacity()) {
            Ok(()) => Ok(None),
            Err(e) => Err(Unfit::Over(e)),
        },
    }
}

/// Why the buffered bytes can neither be a frame nor wait for more.
enum Unfit {
    Bad(WireError),
    Over(OverBudget),
}

/// Room for the hello: more than any connect frame the wire can express
/// (a 255-byte name), so a client that has not said who it is costs this
/// and no budget; a longer first frame is no hello.
const HELLO_ROOM: usize = 512;

/// Tells a client it is refused (a reply to no request), then closes in
/// order; each step within [`CLOSE_WITHIN`], the close killing the
/// connection when it runs out.
async fn refuse_and_close<C: Connection>(mut conn: C, code: Code, detail: &str) {
    let refusal = Repr::Reply {
        req: 0,
        code: code as u16,
        detail,
    };
    let _ = Deadline::after(CLOSE_WITHIN)
        .run(conn.write_all(&frame_bytes(&refusal)))
        .await;
    let _ = conn.close(Deadline::after(CLOSE_WITHIN)).await;
}

/// Sends one handshake frame within `within`; a client that cannot take
/// it is past talking to.
async fn send_within<C: Connection>(
    conn: &mut C,
    frame: Repr<'_>,
    within: Duration,
    what: &str,
) -> Result<(), Unproved> {
    let error = match Deadline::after(within)
        .run(conn.write_all(&frame_bytes(&frame)))
        .await
    {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(e)) => Error::from(e),
        Err(_) => Error::new(ErrorKind::TimedOut)
            .detail(format!("the {what} could not be sent within {within:?}")),
    };
    Err(Unproved {
        error: error.during(AUTHENTICATE),
        tell: None,
    })
}

/// What the errors of a refused TCP client say was going on.
const AUTHENTICATE: &str = "authenticate TCP client";

/// Why a TCP client was not let in, and whether it is told.
struct Unproved {
    error: Error,
    /// What the refusal sent to the client says; `None` when the
    /// connection is past talking to.
    tell: Option<String>,
}

/// Over TCP with a secret: challenge the client, check its answer, prove
/// the daemon holds the secret too. Each step within `within` (the hello
/// timeout). Nothing the client sends before its answer is checked
/// reaches the router; what follows stays in `buf` for the hello.
async fn authenticate<C: Connection>(
    conn: &mut C,
    buf: &mut BytesMut,
    secret: &Secret,
    within: Duration,
) -> Result<(), Unproved> {
    let refuse = |kind: ErrorKind, detail: String, tell: bool| Unproved {
        tell: tell.then(|| detail.clone()),
        error: Error::new(kind).during(AUTHENTICATE).detail(detail),
    };
    let ours = conn_core::auth::nonce().map_err(|e| Unproved {
        error: e.during(AUTHENTICATE),
        tell: None,
    })?;
    send_within(conn, Repr::Challenge { nonce: ours }, within, "challenge").await?;
    let answer = match Deadline::after(within).run(read_hello(conn, buf)).await {
        Err(_) => {
            let why = format!("no answer to the challenge within {within:?}");
            return Err(refuse(ErrorKind::TimedOut, why, true));
        }
        Ok(ReadEnd::Eof) => {
            let why = "the client hung up without answering the challenge".into();
            return Err(refuse(ErrorKind::UnexpectedEof, why, false));
        }
        Ok(ReadEnd::Io(e)) => {
            return Err(Unproved {
                error: Error::from(e).during(AUTHENTICATE),
                tell: None,
            });
        }
        Ok(ReadEnd::Bad(e)) => {
            let why = format!("bytes that are no answer to the challenge: {e}");
            return Err(refuse(ErrorKind::Protocol, why, true));
        }
        Ok(ReadEnd::Frame(f)) => f,
    };
    let theirs = match Repr::decode(&answer[..]) {
        Ok(Repr::Answer { nonce, mac }) => {
            if !crate::auth::client_mac(secret, &ours, &nonce).verify(&mac) {
                let why = "wrong answer to the challenge: the client does not hold this \
                           daemon's secret"
                    .into();
                return Err(refuse(ErrorKind::PermissionDenied, why, true));
            }
            nonce
        }
        Ok(Repr::Connect { .. }) => {
            let why = "a hello without answering the challenge: this daemon's TCP clients \
                       must give its secret"
                .into();
            return Err(refuse(ErrorKind::PermissionDenied, why, true));
        }
        Ok(other) => {
            let why = format!(
                "a {:?} frame instead of an answer to the challenge",
                other.kind()
            );
            return Err(refuse(ErrorKind::Protocol, why, true));
        }
        Err(e) => {
            let why = format!("a bad answer to the challenge: {e}");
            return Err(refuse(ErrorKind::Protocol, why, true));
        }
    };
    let mac = crate::auth::daemon_mac(secret, &ours, &theirs).sign();
    send_within(conn, Repr::Proof { mac }, within, "proof").await
}

/// Reads the first frame into a buffer of [`HELLO_ROOM`] that never grows;
/// cancel safe (a partial frame stays in `buf`).
async fn read_hello<R: AsyncRead + Unpin>(rd: &mut R, buf: &mut BytesMut) -> ReadEnd {
    loop {
        match frame_len(buf) {
            Err(e) => return ReadEnd::Bad(e),
            Ok(Some(total)) if total > HELLO_ROOM => {
                return ReadEnd::Bad(Mailbox::error(Problem::BadField(
                    "a first frame longer than any hello",
                )));
            }
            Ok(Some(total)) if buf.len() >= total => {
                return ReadEnd::Frame(buf.split_to(total).freeze());
            }
            Ok(_) => {}
        }
        match rd.read_buf(buf).await {
            Ok(0) => return ReadEnd::Eof,
            Ok(_) => {}
            Err(e) => return ReadEnd::Io(e),
        }
    }
}

/// Who is at the other end, as far as the daemon can tell.
pub(crate) enum Peer {
    /// On the Unix socket: the uid from `SO_PEERCRED` (`None` when it
    /// could not be read).
    Local { uid: Option<u32> },
    /// Over TCP: no uid; with a secret configured it must prove it holds
    /// the secret before its hello is read.
    Tcp { addr: SocketAddr },
}

/// Serves one client connection until it ends.
pub(crate) async fn serve_client<C: Connection>(
    mut conn: C,
    graceful: Graceful,
    peer: Peer,
    conn_no: u64,
    router: Arc<Router>,
    config: Arc<DaemonConfig>,
    budget: Arc<Budget>,
) -> conn_core::Result<()> {
    // However this client ends, what it cost goes back to the kernel soon.
    let _trim = TrimWhenGone::new();
    let mut buf = BytesMut::with_capacity(HELLO_ROOM);
    let within = config.hello_timeout;
    let uid = match peer {
        Peer::Local { uid } => uid,
        Peer::Tcp { addr } => {
            if let Some(secret) = &config.secret {
                let proved = tokio::select! {
                    r = authenticate(&mut conn, &mut buf, secret, within) => r,
                    () = graceful.wait() => return Ok(()),
                };
                if let Err(refused) = proved {
                    let e = refused.error.on(format_args!("tcp://{addr}"));
                    tracing::warn!(conn = conn_no, "TCP client dropped: {e}");
                    if let Some(detail) = refused.tell {
                        refuse_and_close(conn, Code::Unauthenticated, &detail).await;
                    } else {
                        conn.kill();
                    }
                    return Err(e);
                }
            }
            None
        }
    };
    // Hello: a Connect frame within the hello timeout, or the connection goes.
    let hello = tokio::select! {
        r = Deadline::after(within).run(read_hello(&mut conn, &mut buf)) => r,
        () = graceful.wait() => return Ok(()),
    };
    let frame = match hello {
        Ok(ReadEnd::Frame(f)) => f,
        Ok(ReadEnd::Bad(e)) => {
            tracing::warn!(conn = conn_no, error = %e, "client ended before hello: bad frame");
            conn.kill();
            return Ok(());
        }
        Ok(ReadEnd::Io(e)) => {
            tracing::debug!(conn = conn_no, error = %e, "client ended before hello: read failed");
            conn.kill();
            return Ok(());
        }
        Ok(ReadEnd::Eof) => {
            conn.kill();
            return Ok(());
        }
        Err(_) => {
            tracing::warn!(
                conn = conn_no,
                ?uid,
                "client ended: no hello within {within:?}"
            );
            conn.kill();
            return Ok(());
        }
    };
    let (name, membership) = match Repr::decode(&frame[..]) {
        Ok(Repr::Connect {
            version: Repr::VERSION,
            name,
            membership,
            ..
        }) => (name.to_owned(), membership),
        other => {
            let why = match other {
                Err(e) => e.to_string(),
                Ok(r) => format!(
                    "expected a connect frame of version {}, got {:?}",
                    Repr::VERSION,
                    r.kind()
                ),
            };
            tracing::warn!(conn = conn_no, error = %why, "client ended: bad hello");
            let refusal = Repr::Reply {
                req: 0,
                code: Code::Protocol as u16,
                detail: &why,
            };
            let _ = conn.write_all(&frame_bytes(&refusal)).await;
            conn.kill();
            return Ok(());
        }
    };
    let outbox = Arc::new(Outbox::new(config.queue));
    let (id, private_group) = match router.register(&name, membership, uid, outbox.clone()) {
        Ok(ok) => ok,
        Err((code, detail)) => {
            tracing::info!(conn = conn_no, name, ?code, "client refused");
            refuse_and_close(conn, code, &detail).await;
            return Ok(());
        }
    };
    tracing::debug!(conn = conn_no, client = %private_group, ?uid, "client connected");

    let (mut rd, mut wr) = tokio::io::split(conn);
    let end = {
        let reader = Reader {
            buf,
            charge: Charge::new(budget),
            stall: config.stall_timeout,
            id,
            router: &router,
            client: &private_group,
        }
        .run(&mut rd);
        let writer = write_loop(&mut wr, &outbox);
        tokio::pin!(reader, writer);
        tokio::select! {
            // The reader told the router, which ended the outbox: let the writer finish.
            () = &mut reader => writer.await,
            end = &mut writer => end,
        }
    };
    let conn = rd.unsplit(wr);
    // The serve loop's report tells a goodbye (closed in order) from a client
    // that vanished (cut by the peer) and from one the daemon dropped.
    let during = || format!("serve mailbox client {private_group}");
    let result = match end {
        Ok(End::Goodbye) => match conn.close(Deadline::after(CLOSE_WITHIN)).await {
            Err(e) => {
                tracing::debug!(client = %private_group, error = %e, "orderly close failed");
                Err(e.during(during()))
            }
            Ok(()) => Ok(()),
        },
        Ok(End::Drop(reason)) => {
            let kind = if reason.starts_with("fell behind") {
                tracing::warn!(client = %private_group, ?uid, "client dropped: {reason}");
                ErrorKind::NoBufferSpace
            } else if reason.starts_with("over memory budget") {
                ErrorKind::NoBufferSpace
            } else if reason.starts_with("stalled") {
                ErrorKind::TimedOut
            } else {
                tracing::info!(client = %private_group, ?uid, "client ended: {reason}");
                if reason.starts_with("bad frame") {
                    ErrorKind::Protocol
                } else {
                    ErrorKind::ConnectionReset
                }
            };
            conn.kill();
            Err(Error::new(kind).during(during()).detail(reason))
        }
        Err(e) => {
            // The writer failed: the client is gone without a word.
            router.remove(id, Cause::Network, End::Drop(e.to_string()));
            tracing::info!(client = %private_group, error = %e, "client lost");
            conn.kill();
            Err(e.during(during()))
        }
    };
    // The router let go of the outbox when it removed the client; what a
    // client that fell far behind had queued is freed with this last copy.
    let large = outbox.peak() > LARGE_QUEUE;
    drop(outbox);
    if large {
        trim_heap();
    }
    result
}

/// A queue this large, once freed, is worth handing back to the kernel.
const LARGE_QUEUE: usize = 1 << 20;

/// One client's reading side after the hello.
struct Reader<'a> {
    buf: BytesMut,
    charge: Charge,
    /// How long a partial frame may wait for its next byte.
    stall: Duration,
    id: ClientId,
    router: &'a Router,
    client: &'a str,
}

impl Reader<'_> {
    /// Reads frames and hands each to the router until the client leaves,
    /// breaks the protocol, stalls inside a frame, passes its budget, or
    /// the connection ends; then gives its memory back.
    async fn run<R: AsyncRead + Unpin>(mut self, rd: &mut R) {
        self.serve(rd).await;
        let large = self.charge.held() > READ_ROOM;
        drop(self);
        if large {
            trim_heap();
        }
    }

    async fn serve<R: AsyncRead + Unpin>(&mut self, rd: &mut R) {
        // The last read filled all the room it had: more is likely waiting.
        let mut filled = false;
        loop {
            let frame = match frame_or_room(&mut self.buf, &mut self.charge) {
                Ok(Some(frame)) => frame,
                Err(Unfit::Bad(e)) => return bad_frame(self.router, self.id, self.client, e),
                Err(Unfit::Over(e)) => return self.drop_client(e.to_string()),
                Ok(None) => {
                    // One full read per turn, as an event loop does: what it
                    // brought is queued for its receivers, so let their writers
                    // send it before taking in more. A sender's burst then goes
                    // out as it arrives instead of piling up in the outboxes
                    // (where it only adds latency) while the reader drains the
                    // socket. After a short read the socket is drained: the
                    // next read waits anyway, and the writers run then.
                    if std::mem::take(&mut filled) {
                        tokio::task::yield_now().await;
                    }
                    let room = self.buf.capacity() - self.buf.len();
                    match self.read(rd).await {
                        Ok(0) => {
                            return self.drop_client("connection closed without a goodbye".into());
                        }
                        Ok(n) => {
                            filled = n == room;
                            continue;
                        }
                        Err(why) => return self.drop_client(why),
                    }
                }
            };
            if !self.route(&frame) {
                return;
            }
        }
    }

    /// One read. A member between frames may listen as long as it likes;
    /// one inside a frame (bytes of it buffered) gets `stall` for the next
    /// byte, so a frame begun and never finished cannot pin its buffer.
    async fn read<R: AsyncRead + Unpin>(&mut self, rd: &mut R) -> Result<usize, String> {
        let partial = self.buf.len();
        let read = rd.read_buf(&mut self.buf);
        let got = if partial == 0 {
            read.await
        } else {
            match tokio::time::timeout(self.stall, read).await {
                Ok(got) => got,
                Err(_) => {
                    let why = format!(
                        "stalled: {partial} bytes of a frame and none more within {:?}",
                        self.stall
                    );
                    tracing::warn!(client = self.client, "client dropped: {why}");
                    return Err(why);
                }
            }
        };
        got.map_err(|e| format!("read failed: {e}"))
    }

    /// Hands one frame to the router; false when the client is done.
    fn route(&self, frame: &[u8]) -> bool {
        let (router, id) = (self.router, self.id);
        match Repr::decode(frame) {
            Ok(Repr::Multicast {
                service,
                msg_type,
                groups,
                payload,
            }) => router.multicast(id, service, msg_type, groups, payload),
            Ok(Repr::Join { req, group }) => router.join(id, req, group),
            Ok(Repr::Leave { req, group }) => router.leave(id, req, group),
            Ok(Repr::Disconnect) => {
                router.remove(id, Cause::Disconnect, End::Goodbye);
                return false;
            }
            Ok(other) => {
                bad_frame(
                    router,
                    id,
                    self.client,
                    Mailbox::error(Problem::BadField(kind_name(&other))),
                );
                return false;
            }
            Err(e) => {
                bad_frame(router, id, self.client, e);
                return false;
            }
        }
        true
    }

    /// Ends the client: the members of its groups see cause network.
    fn drop_client(&self, why: String) {
        if why.starts_with("over memory budget") {
            tracing::warn!(client = self.client, "client dropped: {why}");
        }
        self.router.remove(self.id, Cause::Network, End::Drop(why));
    }
}

fn kind_name(r: &Repr<'_>) -> &'static str {
    match r {
        Repr::Connect { .. } => "a second connect frame",
        _ => "a daemon-to-client frame from a client",
    }
}

fn bad_frame(router: &Router, id: ClientId, client: &str, e: WireError) {
    tracing::warn!(client, error = %e, "client ended: bad frame on the wire");
    router.remove(id, Cause::Network, End::Drop(format!("bad frame: {e}")));
}

/// Writes what the router queues, many frames per write, until the outbox ends.
async fn write_loop<W: AsyncWrite + Unpin>(wr: &mut W, outbox: &Outbox) -> conn_core::Result<End> {
    // A client that reads nothing blocks the writes; dropping it must not wait for them.
    tokio::select! {
        biased;
        () = outbox.dropped() => Ok(outbox.drop_reason().unwrap_or(End::Drop("dropped".into()))),
        r = write_frames(wr, outbox) => r,
    }
}

async fn write_frames<W: AsyncWrite + Unpin>(
    wr: &mut W,
    outbox: &Outbox,
) -> conn_core::Result<End> {
    let mut batch: Vec<Bytes> = Vec::new();
    loop {
        if let Some(end) = outbox.next(&mut batch).await {
            wr.flush()
                .await
                .map_err(|e| Error::io(e, "write", "client"))?;
            return Ok(end);
        }
        if let [one] = &batch[..] {
            write(wr, one).await?;
        } else {
            write_batch(wr, &mut batch).await?;
        }
        batch.clear();
    }
}

/// Frames one vectored write (sendmsg) takes at most.
const IOV: usize = 64;

/// Writes every frame of `batch` in order, many per system call and none
/// copied: vectored writes, resumed where a partial write stopped.
async fn write_batch<W: AsyncWrite + Unpin>(
    wr: &mut W,
    batch: &mut [Bytes],
) -> conn_core::Result<()> {
    use bytes::Buf;
    let mut first = 0;
    while first < batch.len() {
        let written = {
            let mut iov: [std::io::IoSlice<'_>; IOV] =
                std::array::from_fn(|_| std::io::IoSlice::new(&[]));
            let mut n = 0;
            for frame in batch[first..].iter().take(IOV) {
                iov[n] = std::io::IoSlice::new(frame);
                n += 1;
            }
            wr.write_vectored(&iov[..n]).await
        };
        let mut written = match written {
            Ok(0) => {
                return Err(Error::new(ErrorKind::BrokenPipe)
                    .during("write")
                    .on("client")
                    .detail("the connection took no bytes"));
            }
            Ok(n) => n,
            Err(e) => return Err(write_error(e)),
        };
        while written > 0 {
            let frame = &mut batch[first];
            let take = written.min(frame.len());
            frame.advance(take);
            written -= take;
            if frame.is_empty() {
                first += 1;
            }
        }
        while first < batch.len() && batch[first].is_empty() {
            first += 1;
        }
    }
    Ok(())
}

async fn write<W: AsyncWrite + Unpin>(wr: &mut W, bytes: &[u8]) -> conn_core::Result<()> {
    wr.write_all(bytes).await.map_err(write_error)
}

fn write_error(e: std::io::Error) -> Error {
    let e = Error::from(e);
    let kind = e.kind();
    if kind == ErrorKind::Other {
        e
    } else {
        Error::new(kind).during("write").on("client")
    }
}
