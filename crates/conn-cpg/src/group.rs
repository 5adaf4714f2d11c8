//! One process's membership of one CPG group, driven by tokio's reactor.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Mutex;
use std::time::Duration;

use conn_core::{Error, ErrorKind, Result};
use rust_corosync::cpg::{self, Address, Guarantee, Handle, Model1Data, Model1Flags, ModelData};
use rust_corosync::{CsError, DispatchFlags, NodeId};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::error::cs_error;
use crate::{Event, Member, Membership, Reason};

/// libcpg keeps its handles in libqb's handle database, which has no lock
/// of its own: two threads creating handles at once can be handed the same
/// slot, and a later call finds its handle gone (BadHandle). Every call
/// into libcpg from this process goes through this one lock; none of them
/// blocks (dispatch runs what is ready, mcast says TRY_AGAIN when full).
static LIBCPG: Mutex<()> = Mutex::new(());

/// `call`, with no other thread of this process inside libcpg.
fn libcpg<T>(call: impl FnOnce() -> T) -> T {
    let _only_us = LIBCPG.lock().unwrap_or_else(|p| p.into_inner());
    call()
}

/// corosync's handle, finalized (by `Handle`'s own drop) under [`LIBCPG`].
struct LockedHandle(ManuallyDrop<Handle>);

impl Deref for LockedHandle {
    type Target = Handle;
    fn deref(&self) -> &Handle {
        &self.0
    }
}

impl Drop for LockedHandle {
    fn drop(&mut self) {
        // SAFETY: the handle is dropped here, once, and `self.0` is never
        // used again: this is `LockedHandle`'s own drop.
        libcpg(|| unsafe { ManuallyDrop::drop(&mut self.0) });
    }
}

thread_local! {
    /// Where corosync's callbacks put what they deliver. The callbacks are
    /// plain function pointers, called from inside `cpg_dispatch` on the
    /// thread that dispatches; `dispatch` lends its group's queue here for
    /// the length of the call.
    static DELIVERED: RefCell<Option<(String, VecDeque<Event>)>> = const { RefCell::new(None) };
}

fn on_deliver(_: &Handle, group: String, node: NodeId, pid: u32, msg: &[u8], _len: usize) {
    DELIVERED.with_borrow_mut(|sink| {
        if let Some((_, queue)) = sink.as_mut().filter(|(ours, _)| *ours == group) {
            queue.push_back(Event::Message {
                from: Member {
                    node: node.into(),
                    pid,
                },
                bytes: msg.to_vec(),
            });
        }
    });
}

fn on_confchg(
    _: &Handle,
    group: &str,
    members: Vec<Address>,
    left: Vec<Address>,
    joined: Vec<Address>,
) {
    let member = |a: &Address| Member {
        node: a.nodeid.into(),
        pid: a.pid,
    };
    let with_reason = |list: Vec<Address>| {
        list.iter()
            .map(|a| (member(a), Reason::from_cpg(a.reason)))
            .collect()
    };
    DELIVERED.with_borrow_mut(|sink| {
        if let Some((_, queue)) = sink.as_mut().filter(|(ours, _)| ours == group) {
            queue.push_back(Event::Membership(Membership {
                members: members.iter().map(member).collect(),
                left: with_reason(left),
                joined: with_reason(joined),
            }));
        }
    });
}

/// The CPG connection's descriptor, owned by corosync's library.
struct CpgFd(RawFd);

impl AsRawFd for CpgFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// This process's membership of one CPG group, through the local corosync.
///
/// Every member receives the same [`Event`]s in the same order: messages
/// (CPG delivers every message in agreed order, whatever guarantee is asked
/// for) and membership changes, each at the same point of that order.
/// Dropping the group leaves it (members see [`Reason::Leave`]); a process
/// that dies without leaving is seen as [`Reason::ProcDown`], a node that
/// vanishes as [`Reason::NodeDown`].
///
/// ```no_run
/// use conn_cpg::{CpgGroup, Event};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let mut group = CpgGroup::join("doc-group")?;
/// // The first event is our own join.
/// let Event::Membership(change) = group.next().await? else { unreachable!() };
/// assert!(change.members.contains(&group.me()));
/// # Ok(()) }
/// ```
pub struct CpgGroup {
    // Declared before `handle` so it leaves the reactor before corosync's
    // library closes the descriptor.
    fd: AsyncFd<CpgFd>,
    handle: LockedHandle,
    name: String,
    me: Member,
    queue: VecDeque<Event>,
}

impl std::fmt::Debug for CpgGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpgGroup")
            .field("name", &self.name)
            .field("me", &self.me)
            .field("queued", &self.queue.len())
            .finish()
    }
}

impl CpgGroup {
    /// Connects to the local corosync and joins `name`. Must run inside a
    /// tokio runtime. `ConnectionRefused` when no corosync answers on this
    /// node (or in this network namespace).
    pub fn join(name: &str) -> Result<CpgGroup> {
        let model = ModelData::ModelV1(Model1Data {
            flags: Model1Flags::None,
            deliver_fn: Some(on_deliver),
            confchg_fn: Some(on_confchg),
            totem_confchg_fn: None,
        });
        let handle = libcpg(|| cpg::initialize(&model, 0))
            .map(|handle| LockedHandle(ManuallyDrop::new(handle)))
            .map_err(|e| cs_error(e, "connect", name))?;
        let node: u32 = libcpg(|| cpg::local_get(&handle))
            .map_err(|e| cs_error(e, "connect", name))?
            .into();
        let raw = libcpg(|| cpg::fd_get(&handle)).map_err(|e| cs_error(e, "connect", name))?;
        // SAFETY: `raw` is the open descriptor of corosync's connection,
        // owned by `handle`; it stays open and names the same socket until
        // `handle` is finalized on drop, which happens after the `AsyncFd`
        // is dropped (it is declared first in `CpgGroup`), and `CpgFd`
        // always returns that one descriptor.
        let fd = unsafe { AsyncFd::register_with_interest(CpgFd(raw), Interest::READABLE) }
            .map_err(|e| Error::io(e.into_parts().1, "register", format_args!("cpg://{name}")))?;
        let mut group = CpgGroup {
            fd,
            handle,
            name: name.to_owned(),
            me: Member {
                node,
                pid: std::process::id(),
            },
            queue: VecDeque::new(),
        };
        group.retry(cpg::join, "join")?;
        Ok(group)
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This process as the group knows it.
    pub fn me(&self) -> Member {
        self.me
    }

    /// The largest message corosync sends in one piece.
    pub fn max_message(&self) -> Result<usize> {
        libcpg(|| cpg::max_atomic_msgsize_get(&self.handle))
            .map(|n| n as usize)
            .map_err(|e| cs_error(e, "query", &self.name))
    }

    /// Multicasts `bytes` to every member, this one included, in agreed
    /// order. When corosync's queue is full (flow control) it waits,
    /// dispatching what arrives meanwhile, and tries again.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        loop {
            match libcpg(|| cpg::mcast_joined(&self.handle, Guarantee::TypeAgreed, bytes)) {
                Ok(()) => return Ok(()),
                Err(CsError::CsErrTryAgain) => {
                    // Let corosync drain: take in what it delivers, or pause.
                    let _ = tokio::time::timeout(Duration::from_millis(1), self.fd.readable())
                        .await
                        .map(|ready| ready.map(|mut guard| guard.clear_ready()));
                    self.dispatch()?;
                }
                Err(e) => return Err(cs_error(e, "send", &self.name)),
            }
        }
    }

    /// The next message or membership change.
    pub async fn next(&mut self) -> Result<Event> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Ok(event);
            }
            let mut ready = self
                .fd
                .readable()
                .await
                .map_err(|e| Error::io(e, "receive", format_args!("cpg://{}", self.name)))?;
            ready.clear_ready();
            drop(ready);
            self.dispatch()?;
        }
    }

    /// An event already delivered, without waiting.
    pub fn try_next(&mut self) -> Result<Option<Event>> {
        if self.queue.is_empty() {
            self.dispatch()?;
        }
        Ok(self.queue.pop_front())
    }

    /// The members now, as corosync knows them.
    pub fn members(&self) -> Result<Vec<Member>> {
        let list = libcpg(|| cpg::membership_get(&self.handle, &self.name))
            .map_err(|e| cs_error(e, "list members", &self.name))?;
        Ok(list
            .iter()
            .map(|a| Member {
                node: a.nodeid.into(),
                pid: a.pid,
            })
            .collect())
    }

    /// Leaves the group in order: the others see [`Reason::Leave`].
    pub fn leave(mut self) -> Result<()> {
        self.retry(cpg::leave, "leave")
    }

    /// Runs every callback corosync has ready, into our queue.
    fn dispatch(&mut self) -> Result<()> {
        let queue = std::mem::take(&mut self.queue);
        DELIVERED.set(Some((self.name.clone(), queue)));
        let dispatched = libcpg(|| cpg::dispatch(&self.handle, DispatchFlags::All));
        if let Some((_, queue)) = DELIVERED.take() {
            self.queue = queue;
        }
        match dispatched {
            Ok(()) | Err(CsError::CsErrTryAgain) => Ok(()),
            Err(e) => Err(cs_error(e, "receive", &self.name)),
        }
    }

    /// `op`, tried again while corosync says TRY_AGAIN (it does while a
    /// membership change is being agreed).
    fn retry(
        &mut self,
        op: impl Fn(&Handle, &str) -> rust_corosync::Result<()>,
        what: &'static str,
    ) -> Result<()> {
        for _ in 0..1000 {
            match libcpg(|| op(&self.handle, &self.name)) {
                Err(CsError::CsErrTryAgain) => std::thread::sleep(Duration::from_millis(5)),
                done => return done.map_err(|e| cs_error(e, what, &self.name)),
            }
        }
        Err(Error::new(ErrorKind::TimedOut)
            .during(what)
            .on(format_args!("cpg://{}", self.name))
            .detail("corosync kept answering TRY_AGAIN for 5 s"))
    }
}
