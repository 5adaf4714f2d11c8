//! Sending as a `tower::Service`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;

use super::{MailboxError, Writer, encode_multicast, write_frame};
use crate::Service;

/// One multicast, as a request to [`MailboxSender`].
///
/// ```
/// use conn_mailbox::{Outgoing, Service};
/// let req = Outgoing { service: Service::SAFE, groups: vec!["g".into()], msg_type: 3, data: "x".into() };
/// assert_eq!(req.data.len(), 1);
/// ```
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// Service level and flags.
    pub service: Service,
    /// Groups and private groups.
    pub groups: Vec<String>,
    /// Application message type.
    pub msg_type: i16,
    /// The body.
    pub data: Bytes,
}

/// Sends on a mailbox's connection; a `tower::Service<Outgoing>` whose
/// response is the number of body bytes sent. Clones share the connection.
///
/// ```
/// # use std::time::Duration;
/// use conn_core::Deadline;
/// # #[cfg(feature = "daemon")]
/// use conn_mailbox::{Mailbox, Outgoing, Service, daemon::{DaemonConfig, run}};
/// use tower::ServiceExt;
///
/// # #[cfg(feature = "daemon")]
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let socket = std::env::temp_dir().join(format!("mailbox-sender-doc-{}.sock", std::process::id()));
/// # let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// # let daemon = tokio::spawn(run(DaemonConfig::new(&socket), async { stopped.await.ok(); }));
/// # conn_mailbox::daemon::wait_ready(&socket, Deadline::NEVER).await?;
/// let (mbox, me) = Mailbox::connect(&socket, "s", 0, false, Deadline::NEVER).await?;
/// let sent = mbox.sender().oneshot(Outgoing {
///     service: Service::FIFO,
///     groups: vec![me.clone()],
///     msg_type: 0,
///     data: "to myself".into(),
/// }).await?;
/// assert_eq!(sent, 9);
/// mbox.kill();
/// # stop.send(()).unwrap(); daemon.await??;
/// # Ok(()) }
/// # #[cfg(not(feature = "daemon"))] fn main() {}
/// ```
#[derive(Clone)]
pub struct MailboxSender {
    wr: Writer,
}

impl MailboxSender {
    pub(super) fn new(wr: Writer) -> MailboxSender {
        MailboxSender { wr }
    }
}

impl std::fmt::Debug for MailboxSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailboxSender").finish_non_exhaustive()
    }
}

impl tower_service::Service<Outgoing> for MailboxSender {
    type Response = usize;
    type Error = MailboxError;
    type Future = Pin<Box<dyn Future<Output = Result<usize, MailboxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), MailboxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Outgoing) -> Self::Future {
        let wr = self.wr.clone();
        Box::pin(async move {
            let groups: Vec<&str> = req.groups.iter().map(String::as_str).collect();
            let frame = encode_multicast(req.service, &groups, req.msg_type, &req.data)?;
            write_frame(&wr, &frame).await?;
            Ok(req.data.len())
        })
    }
}
