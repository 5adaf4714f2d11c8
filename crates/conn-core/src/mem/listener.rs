use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use tokio::sync::mpsc;

use super::{MEM_BACKLOG, MemStream};
use crate::{Deadline, Endpoint, Error, ErrorKind, Listener, Result};

type Backlog = mpsc::Sender<MemStream>;

/// The process-wide table of bound names.
static NAMES: LazyLock<Mutex<HashMap<String, Backlog>>> = LazyLock::new(Default::default);

/// A listener bound to a `mem://` name.
///
/// The name is released when the listener is dropped; connections still in
/// its backlog then read end-of-stream.
///
/// ```
/// use conn_core::{Deadline, ErrorKind, Listener, mem::{MemListener, MemStream}};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let mut listener = MemListener::bind("listener-doc")?;
/// assert_eq!(MemListener::bind("listener-doc").unwrap_err().kind(), ErrorKind::AddrInUse);
///
/// // Nobody waiting: NOW gives up at once.
/// let err = listener.accept(Deadline::NOW).await.unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::TimedOut);
///
/// let _client = MemStream::connect("listener-doc", Deadline::NEVER).await?;
/// let _server = listener.accept(Deadline::NOW).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MemListener {
    name: String,
    endpoint: Endpoint,
    backlog: mpsc::Receiver<MemStream>,
    registered: Backlog,
}

impl MemListener {
    /// Binds `name` (with or without the `mem://` prefix). A name held by a
    /// live listener is `AddrInUse`.
    pub fn bind(name: &str) -> Result<MemListener> {
        let name = name.strip_prefix("mem://").unwrap_or(name);
        let endpoint = Endpoint::new("mem", name)?;
        let (tx, rx) = mpsc::channel(MEM_BACKLOG);
        let mut names = NAMES.lock().unwrap_or_else(|p| p.into_inner());
        if names.get(name).is_some_and(|live| !live.is_closed()) {
            return Err(Error::new(ErrorKind::AddrInUse)
                .during("bind")
                .on(&endpoint));
        }
        names.insert(name.to_owned(), tx.clone());
        Ok(MemListener {
            name: name.to_owned(),
            endpoint,
            backlog: rx,
            registered: tx,
        })
    }

    /// The backlog sender for `name`, if a listener holds it.
    pub(super) fn lookup(name: &str) -> Option<Backlog> {
        let names = NAMES.lock().unwrap_or_else(|p| p.into_inner());
        names.get(name).filter(|tx| !tx.is_closed()).cloned()
    }
}

impl Listener for MemListener {
    type Conn = MemStream;

    async fn accept(&mut self, deadline: Deadline) -> Result<MemStream> {
        match deadline.run(self.backlog.recv()).await {
            Ok(Some(conn)) => Ok(conn),
            // We hold a sender ourselves, so the channel cannot close.
            Ok(None) => Err(Error::new(ErrorKind::BadHandle)
                .during("accept")
                .on(&self.endpoint)),
            Err(e) => Err(e.during("accept").on(&self.endpoint)),
        }
    }

    fn local_endpoint(&self) -> Endpoint {
        self.endpoint.clone()
    }
}

impl Drop for MemListener {
    fn drop(&mut self) {
        let mut names = NAMES.lock().unwrap_or_else(|p| p.into_inner());
        if names
            .get(&self.name)
            .is_some_and(|tx| tx.same_channel(&self.registered))
        {
            names.remove(&self.name);
        }
        // Refuse new connects at once; queued ones are dropped with us.
        self.backlog.close();
    }
}
