//! One session's cgroup: create, join, list, freeze, kill, remove.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use conn_core::{Error, ErrorKind, Result};

use super::OwnCgroup;
use crate::sys::procfs;

/// The name of the directory below the caller's own cgroup that holds one
/// child cgroup per session.
const PARENT: &str = "connkit";

/// How long freezing, or emptying after a kill, may take before we call it
/// stuck. The kernel usually needs microseconds.
const SETTLE: Duration = Duration::from_secs(10);

/// A session's own cgroup, `<own cgroup>/connkit/<pid>-<ash>`.
#[derive(Debug)]
pub(crate) struct Cgroup {
    dir: PathBuf,
    /// The path relative to the hierarchy's root, as `/proc/<pid>/cgroup`
    /// shows it.
    rel: String,
    /// Where survivors go when the session lets them go.
    home: PathBuf,
    /// The hierarchy's mount point, to send an adopted process back where
    /// it came from.
    mount: PathBuf,
}

impl Cgroup {
    /// Creates the cgroup `name` below `home/connkit`. Fails (`Err` with the
    /// reason) when the hierarchy is not writable.
    pub(crate) fn create(home: &OwnCgroup, name: &str) -> Result<Cgroup> {
        let parent = home.dir.join(PARENT);
        match fs::create_dir(&parent) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                return Err(Error::io(e, "create cgroup", parent.display()));
            }
            _ => {}
        }
        let dir = parent.join(name);
        fs::create_dir(&dir).map_err(|e| Error::io(e, "create cgroup", dir.display()))?;
        Ok(Cgroup {
            dir,
            rel: format!("{}/{PARENT}/{name}", home.rel.trim_end_matches('/')),
            home: home.dir.clone(),
            mount: home.mount.clone(),
        })
    }

    /// The cgroup's directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// True when `pid` is in this cgroup now.
    pub(crate) fn holds(&self, pid: u32) -> bool {
        procfs::cgroup_v2(pid).is_some_and(|rel| rel == self.rel)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn write(&self, name: &str, value: &str, op: &'static str) -> Result<()> {
        let path = self.file(name);
        fs::write(&path, value).map_err(|e| Error::io(e, op, path.display()))
    }

    /// `cgroup.procs` opened for writing, for a child to move itself in
    /// between fork and exec (it writes `0`, meaning "me").
    pub(crate) fn procs_for_child(&self) -> Result<OwnedFd> {
        let path = self.file("cgroup.procs");
        OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map(OwnedFd::from)
            .map_err(|e| Error::io(e, "open cgroup", path.display()))
    }

    /// Moves the running process `pid` (with all its threads) in.
    pub(crate) fn add(&self, pid: u32) -> io::Result<()> {
        fs::write(self.file("cgroup.procs"), pid.to_string())
    }

    /// Moves `pid` back to the cgroup `rel` (a path as `/proc/<pid>/cgroup`
    /// shows it) it was in before an adoption that is being taken back.
    pub(crate) fn send_back(&self, pid: u32, rel: &str) -> io::Result<()> {
        let procs = self
            .mount
            .join(rel.trim_start_matches('/'))
            .join("cgroup.procs");
        fs::write(procs, pid.to_string())
    }

    /// The processes in the cgroup now.
    pub(crate) fn pids(&self) -> Result<Vec<u32>> {
        let path = self.file("cgroup.procs");
        let text = fs::read_to_string(&path)
            .map_err(|e| Error::io(e, "list cgroup members", path.display()))?;
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// Freezes (`true`) or thaws the cgroup and waits until the kernel says
    /// it is done.
    pub(crate) fn freeze(&self, frozen: bool) -> Result<()> {
        self.write(
            "cgroup.freeze",
            if frozen { "1" } else { "0" },
            "freeze cgroup",
        )?;
        let want = if frozen { "frozen 1" } else { "frozen 0" };
        self.wait_events("freeze cgroup", |events| {
            events.lines().any(|l| l.trim() == want)
        })
    }

    /// Sends SIGKILL to every process in the cgroup, and to any it forks
    /// while this runs (`cgroup.kill`).
    pub(crate) fn kill_all(&self) -> Result<()> {
        self.write("cgroup.kill", "1", "kill cgroup")
    }

    /// Waits until no process is left.
    pub(crate) fn wait_empty(&self) -> Result<()> {
        self.wait_events("wait for cgroup to empty", |events| {
            events.lines().any(|l| l.trim() == "populated 0")
        })
    }

    /// Waits until `cgroup.events` satisfies `done`, woken by the kernel's
    /// change notification (POLLPRI) and, as a backstop, every 50 ms.
    fn wait_events(&self, op: &'static str, done: impl Fn(&str) -> bool) -> Result<()> {
        let path = self.file("cgroup.events");
        let fail = |e: io::Error| Error::io(e, op, path.display());
        let mut file = File::open(&path).map_err(fail)?;
        let start = Instant::now();
        let mut text = String::new();
        loop {
            text.clear();
            file.rewind().map_err(fail)?;
            file.read_to_string(&mut text).map_err(fail)?;
            if done(&text) {
                return Ok(());
            }
            if start.elapsed() > SETTLE {
                return Err(Error::new(ErrorKind::TimedOut)
                    .during(op)
                    .on(path.display())
                    .detail(format!("still {:?} after {SETTLE:?}", text.trim())));
            }
            let mut pfd = libc::pollfd {
                fd: file.as_raw_fd(),
                events: libc::POLLPRI,
                revents: 0,
            };
            // SAFETY: `pfd` is one valid pollfd that outlives the call.
            unsafe { libc::poll(&mut pfd, 1, 50) };
        }
    }

    /// Ends the session's hold: kills what is left (`kill`) or moves it back
    /// to the caller's own cgroup, then removes the directory.
    pub(crate) fn remove(&self, kill: bool) -> Result<()> {
        // A frozen cgroup would keep survivors frozen wherever they go.
        let _ = self.write("cgroup.freeze", "0", "thaw cgroup");
        if kill {
            self.kill_all()?;
            self.wait_empty()?;
        } else {
            let home = self.home.join("cgroup.procs");
            let mut procs = OpenOptions::new()
                .write(true)
                .open(&home)
                .map_err(|e| Error::io(e, "release session members", home.display()))?;
            for pid in self.pids()? {
                // A process that exited meanwhile is ESRCH: nothing to move.
                let _ = procs.write_all(pid.to_string().as_bytes());
            }
        }
        fs::remove_dir(&self.dir).map_err(|e| Error::io(e, "remove cgroup", self.dir.display()))
    }
}
