//! The fallback backend: a session is a set of pidfds, grown from `/proc`.
//!
//! Without a cgroup, membership of descendants is worked out each time it is
//! needed: a process belongs to the session when it is a tracked member, a
//! child of one, or in a POSIX session (`setsid`) that the session's spawned
//! members lead. Spawned members start their own POSIX session, and this
//! process becomes a child subreaper, so a member that double-forks (its
//! child orphaned) still carries the session id and still lives below us.
//! An adopted process's orphaned children, reparented elsewhere before a
//! scan saw them, are lost: that is what the cgroup backend is for.

use std::collections::{HashMap, HashSet};

use crate::Signal;
use crate::caller::Permit;
use crate::order::parents_first;
use crate::sys::procfs::{self, Stat};
use crate::sys::{PidFd, Sent};

/// The tracked processes of one session.
#[derive(Debug, Default)]
pub(crate) struct PidSet {
    members: HashMap<u32, Tracked>,
    /// POSIX session ids whose every process belongs to us.
    sids: HashSet<u32>,
}

#[derive(Debug)]
struct Tracked {
    fd: PidFd,
    /// Its parent at the last scan, to signal parents first.
    ppid: u32,
    /// Reap it when it exits: it was found as an orphan of the session,
    /// never a child this process spawned (a `Child` somewhere in this
    /// process may wait for those, and must get their status).
    reap: bool,
}

impl PidSet {
    /// Tracks a process this session spawned into its own POSIX session.
    pub(crate) fn add_spawned(&mut self, fd: PidFd) {
        self.sids.insert(fd.pid());
        let ppid = std::process::id();
        self.members.insert(
            fd.pid(),
            Tracked {
                fd,
                ppid,
                reap: false,
            },
        );
    }

    /// Tracks an adopted process.
    pub(crate) fn add_adopted(&mut self, fd: PidFd) {
        let ppid = procfs::stat(fd.pid()).map_or(0, |s| s.ppid);
        self.members.insert(
            fd.pid(),
            Tracked {
                fd,
                ppid,
                reap: false,
            },
        );
    }

    /// Drops exited members (reaping those that were orphaned to us), then
    /// takes in every live descendant and session-mate the scan finds.
    pub(crate) fn refresh(&mut self) {
        self.members.retain(|_, t| {
            if !t.fd.has_exited() {
                return true;
            }
            if t.reap {
                t.fd.try_reap();
            }
            false
        });
        let all = procfs::all();
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        let mut queue: Vec<u32> = Vec::new();
        for s in &all {
            children.entry(s.ppid).or_default().push(s.pid);
            // Orphans move to a new parent; keep each member's current one.
            if let Some(t) = self.members.get_mut(&s.pid) {
                t.ppid = s.ppid;
            }
            if self.sids.contains(&s.sid) && !self.members.contains_key(&s.pid) {
                queue.push(s.pid);
            }
        }
        queue.extend(self.members.keys().copied());
        let mut seen: HashSet<u32> = HashSet::new();
        while let Some(pid) = queue.pop() {
            if !seen.insert(pid) {
                continue;
            }
            if !self.members.contains_key(&pid) {
                let Some((fd, stat)) = self.confirm(pid) else {
                    continue;
                };
                // Not our child when found, or in a session we lead: either
                // way no `Child` of this process stands for it.
                let reap = stat.ppid != std::process::id() || self.sids.contains(&stat.sid);
                self.members.insert(
                    pid,
                    Tracked {
                        fd,
                        ppid: stat.ppid,
                        reap,
                    },
                );
            }
            if let Some(kids) = children.get(&pid) {
                queue.extend(kids);
            }
        }
    }

    /// Opens a pidfd for a candidate and checks, race-free, that the process
    /// it names still qualifies: the stat is read after opening, and the
    /// pidfd is still live after reading, so the stat is that process's.
    fn confirm(&self, pid: u32) -> Option<(PidFd, Stat)> {
        let fd = PidFd::open(pid).ok()?;
        let stat = procfs::stat(pid)?;
        let qualifies = self.sids.contains(&stat.sid) || self.members.contains_key(&stat.ppid);
        (qualifies && !fd.has_exited()).then_some((fd, stat))
    }

    /// Stops tracking `pid` (an adoption taken back); false when it was
    /// not tracked.
    pub(crate) fn forget(&mut self, pid: u32) -> bool {
        self.members.remove(&pid).is_some()
    }

    /// The live members' pids.
    pub(crate) fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self.members.keys().copied().collect();
        pids.sort_unstable();
        pids
    }

    /// Signals every member through its pidfd, parents before their
    /// children (see [`parents_first`]). A member that has exited by the
    /// time its turn comes is `Gone`, not signalled: a zombie accepts a
    /// signal without complaint, but it never receives it.
    ///
    /// With a `caller`, a member the caller may not signal (see
    /// [`Caller`](crate::Caller)) is `Denied` and gets nothing.
    pub(crate) fn signal(
        &self,
        sig: Signal,
        caller: Option<&Permit>,
    ) -> Vec<(u32, std::io::Result<Sent>)> {
        let pids: Vec<u32> = self.members.keys().copied().collect();
        let order = parents_first(&pids, |p| self.members.get(&p).map(|t| t.ppid));
        let mut sent: Vec<_> = order
            .into_iter()
            .map(|pid| {
                let fd = &self.members[&pid].fd;
                // The uids are read after the pidfd was opened and before
                // it is checked for exit, so they are this process's.
                let permitted = permits(caller, pid);
                let sent = if fd.has_exited() {
                    Ok(Sent::Gone)
                } else if !permitted {
                    Ok(Sent::Denied)
                } else {
                    fd.send(sig)
                };
                (pid, sent)
            })
            .collect();
        sent.sort_unstable_by_key(|(pid, _)| *pid);
        sent
    }
}

/// Whether `caller` may signal `pid` (no caller: the kernel decides). A
/// process gone meanwhile counts as permitted; the exit check reports it.
pub(crate) fn permits(caller: Option<&Permit>, pid: u32) -> bool {
    caller.is_none_or(|c| c.allows(pid).unwrap_or(true))
}
