//! One handover connection: frames out and in, with descriptors beside
//! them as `SCM_RIGHTS`.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use tokio::io::Interest;
use tokio::net::UnixStream;

use bytes::BytesMut;

use super::wire::{HEADER_LEN, MAX_FDS, Repr, next_frame};
use crate::wire::Repr as _;
use crate::{Error, ErrorKind, Result};

/// A handover connection with what it has read and not yet parsed.
#[derive(Debug)]
pub(super) struct Channel {
    stream: UnixStream,
    buf: BytesMut,
    fds: Vec<OwnedFd>,
}

impl Channel {
    pub(super) fn new(stream: UnixStream) -> Channel {
        Channel {
            stream,
            buf: BytesMut::new(),
            fds: Vec::new(),
        }
    }

    pub(super) fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// Sends `repr`, with `fds` beside its first byte.
    pub(super) async fn send(&self, repr: &Repr, fds: &[BorrowedFd<'_>]) -> Result<()> {
        let bytes = repr.to_vec()?;
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut sent = 0;
        while sent < bytes.len() {
            let n = self
                .stream
                .async_io(Interest::WRITABLE, || {
                    let mut control = SendAncillaryBuffer::new(&mut space);
                    // The descriptors go with the first sendmsg only: the
                    // kernel attaches them to the bytes of that call.
                    if sent == 0
                        && !fds.is_empty()
                        && !control.push(SendAncillaryMessage::ScmRights(fds))
                    {
                        return Err(std::io::Error::other(
                            "too many descriptors for one message",
                        ));
                    }
                    Ok(rustix::net::sendmsg(
                        &self.stream,
                        &[IoSlice::new(&bytes[sent..])],
                        &mut control,
                        SendFlags::NOSIGNAL,
                    )?)
                })
                .await
                .map_err(|e| Error::from(e).during("send handover frame"))?;
            sent += n;
        }
        Ok(())
    }

    /// Receives the next frame and every descriptor that came with it.
    /// `UnexpectedEof` when the peer closed before a whole frame.
    pub(super) async fn recv(&mut self) -> Result<(Repr, Vec<OwnedFd>)> {
        loop {
            if let Some(repr) = next_frame(&mut self.buf)? {
                return Ok((repr, std::mem::take(&mut self.fds)));
            }
            if self.read_more().await? == 0 {
                return Err(Error::new(ErrorKind::UnexpectedEof)
                    .during("receive handover frame")
                    .detail(if self.buf.is_empty() {
                        "the other side closed the connection"
                    } else {
                        "the other side closed the connection inside a frame"
                    }));
            }
        }
    }

    /// Waits until the peer closes its side. `Protocol` when it sends
    /// anything instead.
    pub(super) async fn closed(&mut self) -> Result<()> {
        if self.read_more().await? == 0 && self.buf.is_empty() {
            return Ok(());
        }
        Err(Error::new(ErrorKind::Protocol)
            .during("handover")
            .detail("expected the other side to close, it sent more"))
    }

    /// One `recvmsg`: bytes onto the buffer, descriptors onto the list
    /// (close-on-exec). 0 at the peer's end.
    async fn read_more(&mut self) -> Result<usize> {
        let mut chunk = [0u8; 4096];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let stream = &self.stream;
        let fds = &mut self.fds;
        let n = stream
            .async_io(Interest::READABLE, || {
                let mut control = RecvAncillaryBuffer::new(&mut space);
                let msg = rustix::net::recvmsg(
                    stream,
                    &mut [IoSliceMut::new(&mut chunk)],
                    &mut control,
                    RecvFlags::CMSG_CLOEXEC,
                )?;
                // Take the descriptors before anything can fail: once
                // received they are ours to close.
                for message in control.drain() {
                    if let RecvAncillaryMessage::ScmRights(rights) = message {
                        fds.extend(rights);
                    }
                }
                if msg.flags.contains(ReturnFlags::CTRUNC) {
                    return Err(std::io::Error::other(
                        "descriptors were cut off: more than fit one offer",
                    ));
                }
                Ok(msg.bytes)
            })
            .await
            .map_err(|e| Error::from(e).during("receive handover frame"))?;
        self.buf.extend_from_slice(&chunk[..n]);
        if self.buf.len() > HEADER_LEN + super::wire::MAX_PAYLOAD {
            return Err(Error::new(ErrorKind::MessageTooLong)
                .during("receive handover frame")
                .detail("more bytes than one frame may have"));
        }
        Ok(n)
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }
}
