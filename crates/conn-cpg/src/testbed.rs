//! A real corosync cluster on one machine, for tests and demos.
//!
//! Each node is a network namespace of its own with one interface on a
//! bridge (itself in a namespace of its own, so the host's network is never
//! touched) and its own `corosync -f` with a private `/run` and
//! `/var/lib/corosync` (a mount namespace, tmpfs). A client reaches a node's
//! corosync from inside that node's network namespace: corosync's IPC uses
//! abstract Unix sockets, which are per network namespace. Everything is
//! named uniquely per cluster and torn down when the [`Cluster`] is
//! dropped, also when a test fails.
//!
//! Needs root, `ip` (iproute2) and `corosync` (Debian's packages
//! `corosync` and `iproute2`).
//!
//! ```no_run
//! use conn_cpg::testbed::Cluster;
//!
//! let cluster = Cluster::start(3)?;
//! cluster.wait_until_formed(std::time::Duration::from_secs(30))?;
//! // Run a client on node 2, inside its network namespace.
//! let members = std::thread::spawn({
//!     let netns = cluster.node(1).netns().to_owned();
//!     move || {
//!         conn_cpg::testbed::enter_netns(&netns).unwrap();
//!         // ... a tokio runtime and CpgGroup::join here ...
//!     }
//! });
//! members.join().unwrap();
//! # Ok::<(), conn_core::Error>(())
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use conn_core::{Error, ErrorKind, Result};

static CLUSTERS: AtomicUsize = AtomicUsize::new(0);

/// One corosync node of a [`Cluster`].
#[derive(Debug)]
pub struct Node {
    id: u32,
    netns: String,
    addr: String,
    /// The hub-side end of its link, to cut and heal.
    hub_port: String,
    corosync: Option<Child>,
}

impl Node {
    /// corosync's node id (1, 2, 3, ...).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The network namespace the node lives in.
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// The node's address on the cluster's bridge.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// A command that runs inside the node's network namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.netns]).arg(program);
        cmd
    }
}

/// Several corosync nodes joined by a bridge; see the [module](self) docs.
#[derive(Debug)]
pub struct Cluster {
    name: String,
    hub: String,
    dir: PathBuf,
    nodes: Vec<Node>,
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io(e, "testbed", what.to_owned()))?;
    if out.status.success() {
        return Ok(());
    }
    Err(Error::new(ErrorKind::Other)
        .during("testbed")
        .detail(format!(
            "{what}: {:?} failed: {}",
            cmd,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
}

fn ip(args: &[&str]) -> Result<()> {
    run(
        Command::new("ip").args(args),
        &format!("ip {}", args.join(" ")),
    )
}

/// Why this machine cannot run a testbed, if it cannot: not root, or no
/// `ip` or `corosync`. Tests print it loudly and skip.
pub fn unavailable() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("needs root (network namespaces and corosync)".into());
    }
    for (tool, package) in [("ip", "iproute2"), ("corosync", "corosync")] {
        let found = std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).any(|d| d.join(tool).exists()))
            .unwrap_or(false)
            || Path::new("/usr/sbin").join(tool).exists();
        if !found {
            return Some(format!("needs {tool} (Debian package {package})"));
        }
    }
    None
}

/// Moves the calling thread into network namespace `netns` (a name under
/// `/run/netns`). Call it on a thread of its own: sockets that thread opens
/// afterwards, corosync's IPC included, live in that namespace.
pub fn enter_netns(netns: &str) -> Result<()> {
    let path = Path::new("/run/netns").join(netns);
    let fd = std::fs::File::open(&path).map_err(|e| Error::io(e, "enter netns", path.display()))?;
    rustix::thread::move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&fd),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .map_err(|e| Error::io(e.into(), "enter netns", path.display()))
}

impl Cluster {
    /// Starts `n` nodes (1 to 9). Their corosyncs form a cluster within a
    /// few seconds; [`wait_until_formed`](Cluster::wait_until_formed) waits
    /// for it.
    pub fn start(n: usize) -> Result<Cluster> {
        if let Some(why) = unavailable() {
            return Err(Error::new(ErrorKind::NotSupported)
                .during("testbed")
                .detail(why));
        }
        assert!((1..=9).contains(&n), "a testbed has 1 to 9 nodes");
        let name = format!(
            "ck{}x{}",
            std::process::id() % 100_000,
            CLUSTERS.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(format!("connkit-testbed-{name}"));
        let mut cluster = Cluster {
            hub: format!("{name}h"),
            name,
            dir,
            nodes: Vec::new(),
        };
        // From here on, Drop cleans up whatever was made.
        std::fs::create_dir_all(&cluster.dir)
            .map_err(|e| Error::io(e, "testbed", cluster.dir.display()))?;
        ip(&["netns", "add", &cluster.hub])?;
        ip(&["-n", &cluster.hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &cluster.hub, "link", "set", "br0", "up"])?;
        for i in 1..=n as u32 {
            let node = Node {
                id: i,
                netns: format!("{}n{i}", cluster.name),
                addr: format!("10.99.0.{i}"),
                hub_port: format!("{}p{i}", cluster.name),
                corosync: None,
            };
            let veth = format!("{}v{i}", cluster.name);
            ip(&["netns", "add", &node.netns])?;
            cluster.nodes.push(node);
            let node = cluster.nodes.last().unwrap();
            ip(&[
                "link",
                "add",
                &veth,
                "type",
                "veth",
                "peer",
                "name",
                &node.hub_port,
            ])?;
            ip(&["link", "set", &veth, "netns", &node.netns])?;
            ip(&["link", "set", &node.hub_port, "netns", &cluster.hub])?;
            ip(&[
                "-n",
                &cluster.hub,
                "link",
                "set",
                &node.hub_port,
                "master",
                "br0",
                "up",
            ])?;
            ip(&["-n", &node.netns, "link", "set", &veth, "name", "eth0"])?;
            ip(&[
                "-n",
                &node.netns,
                "addr",
                "add",
                &format!("{}/24", node.addr),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &node.netns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &node.netns, "link", "set", "lo", "up"])?;
        }
        let conf = cluster.config();
        for i in 0..n {
            let path = cluster.dir.join(format!("n{}.conf", i + 1));
            std::fs::write(&path, &conf).map_err(|e| Error::io(e, "testbed", path.display()))?;
            cluster.start_corosync(i)?;
        }
        Ok(cluster)
    }

    fn config(&self) -> String {
        let mut conf = format!(
            "totem {{\n  version: 2\n  cluster_name: {}\n  transport: knet\n  \
             crypto_cipher: none\n  crypto_hash: none\n  token: 1000\n}}\nnodelist {{\n",
            self.name
        );
        for node in &self.nodes {
            let _ = write!(
                conf,
                "  node {{\n    ring0_addr: {}\n    nodeid: {}\n    name: n{}\n  }}\n",
                node.addr, node.id, node.id
            );
        }
        conf.push_str(
            "}\nquorum {\n  provider: corosync_votequorum\n}\n\
             logging {\n  to_stderr: yes\n  to_syslog: no\n  to_logfile: no\n}\n",
        );
        conf
    }

    fn start_corosync(&mut self, i: usize) -> Result<()> {
        let conf = self.dir.join(format!("n{}.conf", i + 1));
        let log = self.log_path(i);
        let log =
            std::fs::File::create(&log).map_err(|e| Error::io(e, "testbed", log.display()))?;
        let node = &mut self.nodes[i];
        let script = format!(
            "mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /var/lib/corosync && exec corosync -f -c {}",
            conf.display()
        );
        let child = node
            .command("unshare")
            .args(["-m", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(
                log.try_clone()
                    .map_err(|e| Error::io(e, "testbed", "log"))?,
            )
            .stderr(log)
            .spawn()
            .map_err(|e| Error::io(e, "testbed", "start corosync"))?;
        node.corosync = Some(child);
        Ok(())
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("n{}.log", i + 1))
    }

    /// The cluster's unique name (also its corosync `cluster_name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Node `i`, counting from 0 (its corosync node id is `i + 1`).
    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    /// How many nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True for a cluster of no nodes (never, once started).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// What node `i`'s corosync logged, for a failing test to show.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.log_path(i)).unwrap_or_default()
    }

    /// Waits until every running node sees all running nodes as one quorate
    /// membership, or `within` passes (TimedOut, with the last view).
    pub fn wait_until_formed(&self, within: Duration) -> Result<()> {
        let running: Vec<&Node> = self.nodes.iter().filter(|n| n.corosync.is_some()).collect();
        let deadline = Instant::now() + within;
        let mut last = String::new();
        loop {
            let mut formed = true;
            for node in &running {
                let out = node.command("corosync-quorumtool").arg("-s").output();
                last = match out {
                    Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
                    Err(e) => e.to_string(),
                };
                let field = |name: &str| {
                    last.lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(|v| v.trim().to_owned())
                };
                let nodes = field("Nodes:").and_then(|v| v.parse::<usize>().ok());
                if nodes != Some(running.len()) || field("Quorate:").as_deref() != Some("Yes") {
                    formed = false;
                    break;
                }
            }
            if formed {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::new(ErrorKind::TimedOut)
                    .during("testbed")
                    .detail(format!("the cluster did not form; last view:\n{last}")));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Cuts node `i`'s link to the bridge: the others see it as node down.
    pub fn cut(&self, i: usize) -> Result<()> {
        ip(&[
            "-n",
            &self.hub,
            "link",
            "set",
            &self.nodes[i].hub_port,
            "down",
        ])
    }

    /// Restores node `i`'s link.
    pub fn heal(&self, i: usize) -> Result<()> {
        ip(&[
            "-n",
            &self.hub,
            "link",
            "set",
            &self.nodes[i].hub_port,
            "up",
        ])
    }

    /// Kills node `i`'s corosync with SIGKILL, as a crash would.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].corosync.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts node `i`'s corosync again after [`kill`](Cluster::kill) or
    /// [`stop`](Cluster::stop) (a fresh `/run` and `/var/lib/corosync`, the
    /// same config); nothing happens while it runs.
    ///
    /// ```no_run
    /// # let mut cluster = conn_cpg::testbed::Cluster::start(3)?;
    /// cluster.kill(2);
    /// cluster.restart(2)?;
    /// cluster.wait_until_formed(std::time::Duration::from_secs(30))?;
    /// # Ok::<(), conn_core::Error>(())
    /// ```
    pub fn restart(&mut self, i: usize) -> Result<()> {
        if self.nodes[i].corosync.is_some() {
            return Ok(());
        }
        self.start_corosync(i)
    }

    /// The pid of node `i`'s corosync while it runs (to stop and continue
    /// it with SIGSTOP and SIGCONT, as a hung machine would be).
    pub fn corosync_pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].corosync.as_ref().map(Child::id)
    }

    /// Stops node `i`'s corosync gracefully (SIGTERM) and waits for it.
    pub fn stop(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].corosync.take() {
            if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
            let _ = child.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        for node in &self.nodes {
            let _ = ip(&["netns", "del", &node.netns]);
        }
        let _ = ip(&["netns", "del", &self.hub]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
