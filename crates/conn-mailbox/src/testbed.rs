//! `mailboxd --cluster corosync` in a node of [conn-cpg's testbed]
//! (`conn_cpg::testbed`): for tests, benches and demos that run daemons on a
//! corosync cluster of network namespaces. Needs root and corosync (the
//! testbed says why not when it cannot run).
//!
//! ```no_run
//! use std::time::Duration;
//! use conn_cpg::testbed::Cluster;
//! use conn_mailbox::testbed::ClusterDaemon;
//!
//! let cluster = Cluster::start(3)?;
//! cluster.wait_until_formed(Duration::from_secs(60))?;
//! let mut n1 = ClusterDaemon::spawn_in("target/release/mailboxd".as_ref(), &cluster, 0);
//! n1.wait_ready(Duration::from_secs(60))?;
//! // clients connect to n1.socket
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [conn-cpg's testbed]: conn_cpg::testbed

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use conn_cpg::testbed::{Cluster, Node};

/// A clustered mailboxd in one node's namespace; killed on drop, its
/// socket removed (its log too, unless the thread panics: then printed).
#[derive(Debug)]
pub struct ClusterDaemon {
    /// The daemon's process.
    pub child: Child,
    /// The Unix socket its clients connect to.
    pub socket: PathBuf,
    /// Its stderr (its log, at `RUST_LOG=info`).
    pub log: PathBuf,
    /// Keep the log file on drop (a caller that shows it later).
    pub keep_log: bool,
}

impl ClusterDaemon {
    /// Starts the `mailboxd` binary as `mailboxd --cluster corosync --name
    /// NAME ARGS...` on `node` in CPG group `group`, listening on `socket`,
    /// logging to `log`; does not wait. Panics if it cannot be started (a binary not
    /// built with the `corosync` feature starts and exits: see
    /// [`ClusterDaemon::wait_ready`]).
    pub fn spawn(
        mailboxd: &Path,
        node: &Node,
        name: &str,
        group: &str,
        socket: PathBuf,
        log: PathBuf,
        args: &[&OsStr],
    ) -> Self {
        let _ = std::fs::remove_file(&socket);
        let child = node
            .command(mailboxd)
            .arg("--socket")
            .arg(&socket)
            .args(["--name", name, "--cluster", "corosync"])
            .args(["--cluster-group", group])
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", mailboxd.display()));
        ClusterDaemon {
            child,
            socket,
            log,
            keep_log: false,
        }
    }

    /// The daemon named `n{i+1}` on node `i` of `cluster`, in the CPG
    /// group `{cluster}-mbx`, socket and log in the temp dir under a
    /// unique tag.
    pub fn spawn_in(mailboxd: &Path, cluster: &Cluster, i: usize) -> Self {
        ClusterDaemon::spawn_named(mailboxd, cluster, i, &format!("n{}", i + 1), &[])
    }

    /// As [`ClusterDaemon::spawn_in`], named `name` and given more `args`
    /// (an `--acl FILE`, say).
    pub fn spawn_named(
        mailboxd: &Path,
        cluster: &Cluster,
        i: usize,
        name: &str,
        args: &[&OsStr],
    ) -> Self {
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let tag = format!(
            "{}-n{}-{}",
            cluster.name(),
            i + 1,
            STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let dir = std::env::temp_dir();
        ClusterDaemon::spawn(
            mailboxd,
            cluster.node(i),
            name,
            &format!("{}-mbx", cluster.name()),
            dir.join(format!("mbx-{tag}.sock")),
            dir.join(format!("mbx-{tag}.log")),
            args,
        )
    }

    /// Waits until it accepts clients (it does once it holds the cluster's
    /// state); an error with its log if it exits first or `within` passes.
    pub fn wait_ready(&mut self, within: Duration) -> Result<(), String> {
        let start = Instant::now();
        while std::os::unix::net::UnixStream::connect(&self.socket).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("mailboxd exited ({status}):\n{}", self.log_text()));
            }
            if start.elapsed() > within {
                return Err(format!(
                    "mailboxd did not come up within {within:?}:\n{}",
                    self.log_text()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// What it logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `sig` to it (ESRCH once it is gone is ignored).
    pub fn signal(&self, sig: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        let _ = rustix::process::kill_process(pid, sig);
    }
}

impl Drop for ClusterDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
        if std::thread::panicking() {
            eprintln!("--- {}:\n{}", self.log.display(), self.log_text());
        }
        if !self.keep_log {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}
