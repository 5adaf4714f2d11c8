use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use tokio::sync::mpsc;

use super::{MEM_BACKLOG, MemStream};
use crate::lifecycle::SplitListener;
use crate::{Deadline, Endpoint, Error, ErrorKind, Listener, Result};

type Backlog = mpsc::Sender<MemStream>;

/// The listeners bound to one name: one per accept loop (see
/// [`SplitListener`]); connects go round-robin among the live ones, as
/// `SO_REUSEPORT` spreads TCP connections.
#[derive(Default)]
struct Bound {
    backlogs: Vec<Backlog>,
    next: usize,
}

impl Bound {
    fn is_live(&self) -> bool {
        self.backlogs.iter().any(|tx| !tx.is_closed())
    }

    fn pick(&mut self) -> Option<Backlog> {
        self.backlogs.retain(|tx| !tx.is_closed());
        let n = self.backlogs.len();
        let tx = self.backlogs.get(self.next % n.max(1))?.clone();
        self.next = self.next.wrapping_add(1);
        Some(tx)
    }
}

/// The process-wide table of bound names.
static NAMES: LazyLock<Mutex<HashMap<String, Bound>>> = LazyLock::new(Default::default);

fn names() -> std::sync::MutexGuard<'static, HashMap<String, Bound>> {
    NAMES.lock().unwrap_or_else(|p| p.into_inner())
}

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
        let mut names = names();
        if names.get(name).is_some_and(Bound::is_live) {
            return Err(Error::new(ErrorKind::AddrInUse)
                .during("bind")
                .on(&endpoint));
        }
        names.insert(
            name.to_owned(),
            Bound {
                backlogs: vec![tx.clone()],
                next: 0,
            },
        );
        Ok(MemListener {
            name: name.to_owned(),
            endpoint,
            backlog: rx,
            registered: tx,
        })
    }

    /// The backlog of the listener holding `name` that is next in turn.
    pub(super) fn lookup(name: &str) -> Option<Backlog> {
        names().get_mut(name)?.pick()
    }
}

impl Listener for MemListener {
    type Conn = MemStream;

    async fn accept(&mut self, deadline: Deadline) -> Result<MemStream> {
        let step = crate::lifecycle_span!("accept", "mem", &self.endpoint);
        let accepted = match deadline.run(self.backlog.recv()).await {
            Ok(Some(conn)) => Ok(conn),
            // We hold a sender ourselves, so the channel cannot close.
            Ok(None) => Err(Error::new(ErrorKind::BadHandle)
                .during("accept")
                .on(&self.endpoint)),
            Err(e) => Err(e.during("accept").on(&self.endpoint)),
        };
        step.end(&accepted);
        accepted
    }

    fn local_endpoint(&self) -> Endpoint {
        self.endpoint.clone()
    }
}

/// Another listener on the same name, with a backlog of its own; connects
/// alternate between them.
impl SplitListener for MemListener {
    fn split(&self) -> Result<MemListener> {
        let (tx, rx) = mpsc::channel(MEM_BACKLOG);
        let mut names = names();
        let bound = names
            .get_mut(&self.name)
            .filter(|bound| {
                bound
                    .backlogs
                    .iter()
                    .any(|b| b.same_channel(&self.registered))
            })
            .ok_or_else(|| {
                Error::new(ErrorKind::BadHandle)
                    .during("split listener")
                    .on(&self.endpoint)
            })?;
        bound.backlogs.push(tx.clone());
        Ok(MemListener {
            name: self.name.clone(),
            endpoint: self.endpoint.clone(),
            backlog: rx,
            registered: tx,
        })
    }
}

impl Drop for MemListener {
    fn drop(&mut self) {
        let mut names = names();
        if let Some(bound) = names.get_mut(&self.name) {
            bound
                .backlogs
                .retain(|tx| !tx.same_channel(&self.registered));
            if bound.backlogs.is_empty() {
                names.remove(&self.name);
            }
        }
        // Refuse new connects at once; queued ones are dropped with us.
        self.backlog.close();
    }
}
