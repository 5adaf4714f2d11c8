//! corosync's `cs_error_t` in connkit's one error taxonomy.

use conn_core::{Error, ErrorKind};
use rust_corosync::CsError;

/// `op` on `group` failed with corosync's `err`.
pub(crate) fn cs_error(err: CsError, op: &'static str, group: &str) -> Error {
    let kind = match err {
        // The library could not reach corosync's IPC: no daemon on this node.
        CsError::CsErrLibrary | CsError::CsErrInit => ErrorKind::ConnectionRefused,
        CsError::CsErrTryAgain | CsError::CsErrBusy | CsError::CsErrQueueFull => ErrorKind::Refused,
        CsError::CsErrTimeout => ErrorKind::TimedOut,
        CsError::CsErrNoMemory | CsError::CsErrNoResources => ErrorKind::OutOfMemory,
        CsError::CsErrBadHandle => ErrorKind::BadHandle,
        CsError::CsErrAccess | CsError::CsErrSecurity => ErrorKind::PermissionDenied,
        CsError::CsErrTooBig | CsError::CsErrNameTooLong => ErrorKind::MessageTooLong,
        CsError::CsErrExist => ErrorKind::AlreadyExists,
        CsError::CsErrNotExist | CsError::CsErrNameNotFound => ErrorKind::NotFound,
        CsError::CsErrInvalidParam | CsError::CsErrBadFlags => ErrorKind::InvalidType,
        CsError::CsErrNotSupported => ErrorKind::NotSupported,
        CsError::CsErrMessageError => ErrorKind::Protocol,
        CsError::CsErrInterrupt => ErrorKind::Interrupted,
        _ => ErrorKind::Other,
    };
    let mut e = Error::new(kind)
        .during(op)
        .on(format_args!("cpg://{group}"))
        .detail(format!("corosync: {err}"));
    if kind == ErrorKind::ConnectionRefused {
        e = e.detail(format!(
            "corosync: {err} (is corosync running on this node, in this network namespace?)"
        ));
    }
    e
}
