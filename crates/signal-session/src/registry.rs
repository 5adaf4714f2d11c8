//! The process-wide table of live sessions, by handle.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};

use conn_core::{Error, ErrorKind, Result};

use crate::Ash;
use crate::session::Inner;

static SESSIONS: LazyLock<Mutex<HashMap<Ash, Weak<Inner>>>> = LazyLock::new(Default::default);

fn table() -> std::sync::MutexGuard<'static, HashMap<Ash, Weak<Inner>>> {
    SESSIONS.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn insert(ash: Ash, inner: &Arc<Inner>) {
    table().insert(ash, Arc::downgrade(inner));
}

pub(crate) fn remove(ash: Ash) {
    table().remove(&ash);
}

/// The live session `ash`, or `NoSuchSession` naming the operation.
pub(crate) fn lookup(ash: Ash, op: &'static str) -> Result<Arc<Inner>> {
    table().get(&ash).and_then(Weak::upgrade).ok_or_else(|| {
        Error::new(ErrorKind::NoSuchSession)
            .during(op)
            .on(format_args!("session {ash}"))
            .detail("no live session in this process has this handle")
    })
}

/// The handles of every live session in this process.
pub(crate) fn all() -> Vec<Ash> {
    let mut ashes: Vec<Ash> = table()
        .iter()
        .filter(|(_, w)| w.strong_count() > 0)
        .map(|(a, _)| *a)
        .collect();
    ashes.sort_unstable();
    ashes
}
