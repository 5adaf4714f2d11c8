//! A transport's own named stream and listener types over the skeleton.
//!
//! A transport adds constructors and options of its own (`connect` to a
//! path or a host name, `pair`, `abort`, `TCP_NODELAY`), which Rust lets a
//! crate write only on a type of its own. These macros declare that type
//! as a newtype over [`SocketStream`](super::SocketStream) or
//! [`SocketListener`](super::SocketListener) and forward every trait the
//! skeleton implements, so no transport writes the forwarding again.

/// Declares a transport's stream type, a newtype over
/// [`SocketStream<F>`](crate::socket::SocketStream), with `AsyncRead`,
/// `AsyncWrite` (vectored), [`Connection`](crate::Connection), `AsFd`,
/// `AsRawFd`, `Debug` and `is_registered` forwarded. The inner stream is
/// the `pub(crate)` field `0`.
///
/// ```
/// # use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
/// # use conn_core::{Endpoint, Result, socket::{Family, SocketKind}};
/// # #[derive(Debug)] pub struct Unix;
/// # impl Family for Unix {
/// #     const KIND: SocketKind = SocketKind::UNIX;
/// #     const SCHEME: &'static str = "unix";
/// #     type Peer = ();
/// #     type Local = ();
/// #     fn unnamed(fd: RawFd) -> impl std::fmt::Display { fd }
/// #     fn target(_: &(), fd: RawFd) -> impl std::fmt::Display + '_ { fd }
/// #     fn peer_endpoint(_: &()) -> Option<Endpoint> { None }
/// #     fn accept(fd: BorrowedFd<'_>, _: &Endpoint, _: &()) -> std::io::Result<(OwnedFd, ())> {
/// #         let flags = rustix::net::SocketFlags::NONBLOCK | rustix::net::SocketFlags::CLOEXEC;
/// #         Ok((rustix::net::accept_with(fd, flags)?, ()))
/// #     }
/// #     fn adopted_peer(_: BorrowedFd<'_>) -> Result<()> { Ok(()) }
/// #     fn adopted_listener(fd: BorrowedFd<'_>) -> Result<(Endpoint, ())> {
/// #         Ok((Endpoint::new("unix", std::os::fd::AsRawFd::as_raw_fd(&fd))?, ()))
/// #     }
/// # }
/// use conn_core::{Connection, Deadline, socket::SocketStream};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// conn_core::socket_stream! {
///     /// A Unix-domain stream.
///     pub struct UnixStream(Unix);
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let (a, b) = std::os::unix::net::UnixStream::pair()?;
/// let mut a = UnixStream(SocketStream::from_fd(a.into())?);
/// let mut b = UnixStream(SocketStream::from_fd(b.into())?);
/// a.write_all(b"hi").await?;
/// a.done(Deadline::NEVER).await?;
/// let mut got = Vec::new();
/// b.read_to_end(&mut got).await?;
/// assert_eq!(got, b"hi");
/// # Ok(()) }
/// ```
#[macro_export]
macro_rules! socket_stream {
    ($(#[$meta:meta])* $vis:vis struct $name:ident($family:ty);) => {
        $(#[$meta])*
        $vis struct $name(pub(crate) $crate::socket::SocketStream<$family>);

        impl $name {
            /// True once the stream has had to wait and so joined tokio's
            /// reactor (which costs tokio one allocation).
            pub fn is_registered(&self) -> bool {
                self.0.is_registered()
            }
        }

        impl $crate::Connection for $name {
            async fn done(&mut self, deadline: $crate::Deadline) -> $crate::Result<()> {
                $crate::Connection::done(&mut self.0, deadline).await
            }
            async fn close(self, deadline: $crate::Deadline) -> $crate::Result<()> {
                $crate::Connection::close(self.0, deadline).await
            }
            fn kill(self) {
                $crate::Connection::kill(self.0)
            }
            fn peer_endpoint(&self) -> Option<$crate::Endpoint> {
                $crate::Connection::peer_endpoint(&self.0)
            }
            fn peer_addr(&self) -> Option<$crate::PeerAddr> {
                $crate::Connection::peer_addr(&self.0)
            }
            fn peer_cred(&self) -> Option<$crate::PeerCred> {
                $crate::Connection::peer_cred(&self.0)
            }
        }

        impl $crate::socket::__private::AsyncRead for $name {
            fn poll_read(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                buf: &mut $crate::socket::__private::ReadBuf<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                $crate::socket::__private::AsyncRead::poll_read(::std::pin::Pin::new(&mut self.get_mut().0), cx, buf)
            }
        }

        impl $crate::socket::__private::AsyncWrite for $name {
            fn poll_write(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                buf: &[u8],
            ) -> ::std::task::Poll<::std::io::Result<usize>> {
                $crate::socket::__private::AsyncWrite::poll_write(::std::pin::Pin::new(&mut self.get_mut().0), cx, buf)
            }
            fn poll_write_vectored(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                bufs: &[::std::io::IoSlice<'_>],
            ) -> ::std::task::Poll<::std::io::Result<usize>> {
                $crate::socket::__private::AsyncWrite::poll_write_vectored(::std::pin::Pin::new(&mut self.get_mut().0), cx, bufs)
            }
            fn is_write_vectored(&self) -> bool {
                $crate::socket::__private::AsyncWrite::is_write_vectored(&self.0)
            }
            fn poll_flush(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                $crate::socket::__private::AsyncWrite::poll_flush(::std::pin::Pin::new(&mut self.get_mut().0), cx)
            }
            fn poll_shutdown(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                $crate::socket::__private::AsyncWrite::poll_shutdown(::std::pin::Pin::new(&mut self.get_mut().0), cx)
            }
        }

        $crate::__socket_fd_impls!($name);
    };
}

/// Declares a transport's listener type, a newtype over
/// [`SocketListener<F>`](crate::socket::SocketListener) whose connections
/// are `$stream` (declared with [`socket_stream!`](crate::socket_stream)),
/// with `accept`, `accept_until`, `endpoint`,
/// [`Listener`](crate::Listener) (so `accept_into` a
/// [`Slot`](crate::slot::Slot)), `AsFd`, `AsRawFd` and `Debug`
/// forwarded. The inner listener is the `pub(crate)` field `0`.
#[macro_export]
macro_rules! socket_listener {
    ($(#[$meta:meta])* $vis:vis struct $name:ident($family:ty) -> $stream:ident;) => {
        $(#[$meta])*
        $vis struct $name(pub(crate) $crate::socket::SocketListener<$family>);

        impl $name {
            /// Waits for the next peer until `deadline`. The system call
            /// is tried first, so [`Deadline::NOW`]($crate::Deadline::NOW)
            /// accepts a peer already waiting and otherwise returns
            /// `TimedOut` at once. Resource errors keep their kind
            /// (`ProcessFdLimit` for EMFILE, `SystemFdLimit`,
            /// `OutOfMemory`) and name the listener. Cancel safe.
            pub async fn accept(&mut self, deadline: $crate::Deadline) -> $crate::Result<$stream> {
                self.0.accept(deadline).await.map($stream)
            }

            /// Like `accept`, but gives up with `Canceled` when `token`
            /// fires first (at once if it has fired already).
            pub async fn accept_until(
                &mut self,
                deadline: $crate::Deadline,
                token: &$crate::socket::__private::CancellationToken,
            ) -> $crate::Result<$stream> {
                self.0.accept_until(deadline, token).await.map($stream)
            }

            /// The endpoint this listener is bound to.
            pub fn endpoint(&self) -> &$crate::Endpoint {
                self.0.endpoint()
            }
        }

        impl $crate::Listener for $name {
            type Conn = $stream;

            async fn accept(&mut self, deadline: $crate::Deadline) -> $crate::Result<$stream> {
                $name::accept(self, deadline).await
            }

            fn local_endpoint(&self) -> $crate::Endpoint {
                self.0.endpoint().clone()
            }
        }

        $crate::__socket_fd_impls!($name);
    };
}

/// `AsFd`, `AsRawFd` and `Debug` of a newtype over a socket.
#[doc(hidden)]
#[macro_export]
macro_rules! __socket_fd_impls {
    ($name:ident) => {
        impl ::std::os::fd::AsFd for $name {
            fn as_fd(&self) -> ::std::os::fd::BorrowedFd<'_> {
                ::std::os::fd::AsFd::as_fd(&self.0)
            }
        }

        impl ::std::os::fd::AsRawFd for $name {
            fn as_raw_fd(&self) -> ::std::os::fd::RawFd {
                ::std::os::fd::AsRawFd::as_raw_fd(&self.0)
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.0).finish()
            }
        }
    };
}
