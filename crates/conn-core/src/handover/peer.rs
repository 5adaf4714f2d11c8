//! Who may take the listeners: the same user, or root (`SO_PEERCRED`).

use std::os::fd::AsFd;

use crate::{Error, Result};

/// The peer's credentials as the kernel recorded them at `connect(2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Peer {
    pub(super) pid: i32,
    pub(super) uid: u32,
}

pub(super) fn peer_of(fd: impl AsFd) -> Result<Peer> {
    let cred = rustix::net::sockopt::socket_peercred(fd)
        .map_err(|e| Error::from(std::io::Error::from(e)).during("read SO_PEERCRED"))?;
    Ok(Peer {
        pid: cred.pid.as_raw_nonzero().get(),
        uid: cred.uid.as_raw(),
    })
}

/// Why `peer` may not take listeners from a process running as `me`, or
/// `None` when it may: it runs as the same user, or as root.
pub(super) fn refusal(peer: Peer, me: u32) -> Option<String> {
    if peer.uid == me || peer.uid == 0 {
        return None;
    }
    Some(format!(
        "the successor (pid {}) runs as uid {}, the server as uid {me}: \
         only the same uid or root may take its listeners",
        peer.pid, peer.uid
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_uid_or_root_may_take_and_no_one_else() {
        let peer = |uid| Peer { pid: 7, uid };
        assert_eq!(refusal(peer(1000), 1000), None);
        assert_eq!(refusal(peer(0), 1000), None);
        let why = refusal(peer(65534), 0).unwrap();
        assert!(why.contains("uid 65534") && why.contains("uid 0"), "{why}");
        assert!(refusal(peer(1001), 1000).is_some());
    }
}
