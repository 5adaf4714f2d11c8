//! The servers under soak, each a separate process: `connkit http` over
//! `tcp://` and over `ipc://`, `mailboxd` and `sessiond`, logging to a
//! file each, ended with SIGTERM.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::bad::Target;

/// How long a head, a hello or a stalled frame may take before the
/// servers end the connection. Short, so that the bad clients' connections
/// go within a soak's quiet window; a good client never comes near it.
pub const CUT_AFTER: Duration = Duration::from_secs(3);

/// One server process.
pub struct Server {
    /// Its name in the CSV file and the summary.
    pub name: &'static str,
    /// Where the bad clients reach it.
    pub target: Target,
    child: Option<Child>,
    pid: u32,
    /// Its stdout and stderr.
    pub log: PathBuf,
}

impl Server {
    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// What it logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether it still runs (not exited, not a zombie).
    pub fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// SIGTERM, then waits up to `within` for it to exit. Ok with its
    /// report lines when it exited with success; Err saying what happened.
    pub fn terminate(&mut self, within: Duration) -> Result<Vec<String>, String> {
        let Some(mut child) = self.child.take() else {
            return Err(format!("{}: already gone", self.name));
        };
        // SAFETY: kill(2) on our own child's pid; only integers are passed.
        unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGTERM) };
        let start = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if start.elapsed() < within => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "{} (pid {}): still running {within:?} after SIGTERM; killed",
                        self.name, self.pid
                    ));
                }
                Err(e) => return Err(format!("{}: wait: {e}", self.name)),
            }
        };
        let log = self.log_text();
        let report: Vec<String> = log
            .lines()
            .filter(|l| l.contains("shutdown report") || l.contains("stopped"))
            .map(str::to_owned)
            .collect();
        if !status.success() {
            return Err(format!(
                "{} (pid {}): exited with {status} after SIGTERM; log {}",
                self.name,
                self.pid,
                self.log.display()
            ));
        }
        if report.is_empty() {
            return Err(format!(
                "{}: exited without a report; log {}",
                self.name,
                self.log.display()
            ));
        }
        Ok(report)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `cmd` with stdout and stderr into `log`, and waits until `ready`
/// says it serves (10 s at most).
fn start(
    name: &'static str,
    mut cmd: Command,
    log: PathBuf,
    ready: impl Fn(&str) -> Option<Target>,
) -> Result<Server, String> {
    let file = std::fs::File::create(&log).map_err(|e| format!("create {}: {e}", log.display()))?;
    let err = file
        .try_clone()
        .map_err(|e| format!("dup {}: {e}", log.display()))?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .env("RUST_LOG", "info")
        .spawn()
        .map_err(|e| format!("start {name} ({cmd:?}): {e}"))?;
    let pid = child.id();
    let mut server = Server {
        name,
        target: Target::Session(String::new()),
        child: Some(child),
        pid,
        log,
    };
    let start = Instant::now();
    loop {
        if let Some(target) = ready(&server.log_text()) {
            server.target = target;
            return Ok(server);
        }
        if !server.alive() || start.elapsed() > Duration::from_secs(10) {
            return Err(format!("{name} did not come up:\n{}", server.log_text()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `connkit http` on `listen` (`tcp://127.0.0.1:0` or `ipc://PATH`).
pub fn http(name: &'static str, bins: &Path, out: &Path, listen: &str) -> Result<Server, String> {
    let mut cmd = Command::new(bins.join("connkit"));
    cmd.args(["http", "--listen", listen, "--drain-ms", "10000"])
        .arg("--header-timeout-ms")
        .arg(CUT_AFTER.as_millis().to_string());
    start(name, cmd, out.join(format!("{name}.log")), |log| {
        let endpoint = log
            .lines()
            .find_map(|l| l.strip_prefix("connkit http: listening on "))?
            .split(' ')
            .next()?;
        if let Some(addr) = endpoint.strip_prefix("tcp://") {
            Some(Target::HttpTcp(addr.to_owned()))
        } else {
            endpoint
                .strip_prefix("ipc://")
                .map(|p| Target::HttpIpc(p.to_owned()))
        }
    })
}

/// `mailboxd` on the Unix socket `socket`.
pub fn mailboxd(bins: &Path, out: &Path, socket: &Path) -> Result<Server, String> {
    let secs = CUT_AFTER.as_secs_f64().to_string();
    let mut cmd = Command::new(bins.join("mailboxd"));
    cmd.arg("--socket")
        .arg(socket)
        .args(["--hello-timeout", &secs, "--stall-timeout", &secs]);
    let path = socket.to_owned();
    start("mailboxd", cmd, out.join("mailboxd.log"), move |_| {
        // The file appears a moment before the daemon listens.
        std::os::unix::net::UnixStream::connect(&path)
            .ok()
            .map(|_| Target::Mailbox(path.display().to_string()))
    })
}

/// `sessiond` on the Unix socket `socket`, with a config of its own (short
/// timeouts, empty sessions retired quickly).
pub fn sessiond(bins: &Path, out: &Path, socket: &Path) -> Result<Server, String> {
    let config = out.join("sessiond.toml");
    let ms = CUT_AFTER.as_millis();
    std::fs::write(
        &config,
        format!(
            "hello_timeout_ms = {ms}\nstall_timeout_ms = {ms}\n\
             empty_session_grace_ms = 2000\nsweep_ms = 200\n"
        ),
    )
    .map_err(|e| format!("write {}: {e}", config.display()))?;
    let mut cmd = Command::new(bins.join("sessiond"));
    cmd.arg("--socket").arg(socket).arg("--config").arg(&config);
    start("sessiond", cmd, out.join("sessiond.log"), |log| {
        log.lines()
            .find_map(|l| l.strip_prefix("sessiond listening on ipc:"))
            .map(|p| Target::Session(p.trim_start_matches("//").to_owned()))
    })
}
