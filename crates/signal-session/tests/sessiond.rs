//! sessiond as a real process: sessions that outlive their client, the
//! kernel's permission rule against a client running as another user,
//! protected processes, session owners, limits and retirement,
//! misbehaving clients, graceful shutdown.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::time::Duration;

use common::sessiond::{Sessiond, root_or_skip, sessionctl};
use common::{a_kernel_thread, alive, eventually};
use conn_core::wire::Repr as _;
use conn_core::{Deadline, ErrorKind};
use signal_session::client::{Client, signal_server};
use signal_session::wire::{Frame, Message};
use signal_session::{Ash, Member, Outcome};

const NOBODY: u32 = 65534;

async fn client(daemon: &Sessiond) -> Client {
    Client::connect(&daemon.socket, Deadline::after(Duration::from_secs(10)))
        .await
        .unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "status {}\nstdout:\n{}stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn kill_json_names_each_member_and_its_outcome_and_sessiond_json_its_reports() {
    let mut daemon = Sessiond::start(&["--json"]);
    let new = sessionctl(&daemon.socket, None, &["new"]);
    assert!(new.status.success(), "{}", text(&new));
    let ash = String::from_utf8(new.stdout).unwrap().trim().to_owned();
    let spawned = sessionctl(&daemon.socket, None, &["spawn", &ash, "--", "sleep", "100"]);
    assert!(spawned.status.success(), "{}", text(&spawned));
    let pid: u64 = String::from_utf8(spawned.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    let out = sessionctl(
        &daemon.socket,
        None,
        &["kill", &ash, "-s", "TERM", "--json"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ash"], ash, "{json}");
    assert_eq!(json["signal"]["name"], "SIGTERM", "{json}");
    assert_eq!(json["signal"]["number"], libc::SIGTERM, "{json}");
    assert_eq!(json["atomic"], false, "{json}");
    assert_eq!(json["all_reached"], true, "{json}");
    assert_eq!(json["members"][0]["member"]["process"], pid, "{json}");
    assert_eq!(json["members"][0]["outcome"], "signalled", "{json}");

    let (status, rest) = daemon.terminate();
    assert!(status.success(), "{rest}");
    let report = rest
        .lines()
        .find_map(|l| l.strip_prefix("sessiond stopped: "))
        .unwrap_or_else(|| panic!("no report line in:\n{rest}"));
    let report: serde_json::Value = serde_json::from_str(report).unwrap();
    assert!(report["accepted"].as_u64().unwrap() >= 3, "{report}");
    assert_eq!(report["killed"], 0, "{report}");
    assert_eq!(report["threads"], 1, "{report}");
}

#[tokio::test]
async fn a_session_made_by_a_short_lived_client_outlives_it_and_is_killed_per_member() {
    let daemon = Sessiond::start(&[]);
    let new = sessionctl(&daemon.socket, None, &["new"]);
    assert!(new.status.success(), "{}", text(&new));
    let ash: Ash = String::from_utf8(new.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    let spawned = sessionctl(
        &daemon.socket,
        None,
        &[
            "spawn",
            &ash.to_string(),
            "--",
            "sh",
            "-c",
            "sleep 100 & wait",
        ],
    );
    assert!(spawned.status.success(), "{}", text(&spawned));
    let shell: u32 = String::from_utf8(spawned.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    let mut c = client(&daemon).await;
    assert!(c.list().await.unwrap().contains(&ash));
    for _ in 0..3000 {
        if c.members(ash).await.unwrap().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pids = c.members(ash).await.unwrap();
    assert_eq!(pids.len(), 2, "the shell and its sleep: {pids:?}");
    assert!(pids.contains(&shell));

    let report = signal_server(
        Some(&daemon.socket),
        ash,
        libc::SIGTERM,
        Deadline::after(Duration::from_secs(10)),
    )
    .await
    .unwrap();
    assert_eq!(report.pids(), pids);
    assert_eq!(report.count(Outcome::Signalled), 2, "{report}");
    eventually("the session's processes are gone", || {
        pids.iter().all(|&p| !alive(p))
    })
    .await;
}

#[tokio::test]
async fn nobody_may_signal_its_own_processes_and_not_roots() {
    if !root_or_skip("the cross-user permission test") {
        return;
    }
    let daemon = Sessiond::start(&[]);
    let mut root = client(&daemon).await;

    // A session of root's: nobody may not use it at all (kill, check,
    // freeze, adopt, spawn, members), and does not see it listed.
    let roots = root.new_session(None).await.unwrap();
    let r1 = root.spawn(roots, &["sleep", "100"]).await.unwrap();
    let r2 = root.spawn(roots, &["sleep", "100"]).await.unwrap();
    let r = roots.to_string();
    for args in [
        vec!["kill", &r, "-s", "TERM"],
        vec!["kill", &r, "-s", "0"],
        vec!["kill", &r, "-s", "TERM", "--atomic"],
        vec!["members", &r],
        vec!["spawn", &r, "--", "sleep", "100"],
    ] {
        let out = sessionctl(&daemon.socket, Some(NOBODY), &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("EPERM") && err.contains("belongs to uid 0"),
            "{args:?}: {}",
            text(&out)
        );
    }
    assert!(alive(r1) && alive(r2), "root's processes were spared");
    let out = sessionctl(&daemon.socket, Some(NOBODY), &["list"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(&r),
        "{}",
        text(&out)
    );
    // nobody may not adopt root's process, into root's session or its own.
    let out = sessionctl(
        &daemon.socket,
        Some(NOBODY),
        &["adopt", &r, &r1.to_string()],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("EPERM"),
        "{}",
        text(&out)
    );
    let own = sessionctl(&daemon.socket, Some(NOBODY), &["new"]);
    assert!(own.status.success(), "{}", text(&own));
    let own = String::from_utf8_lossy(&own.stdout).trim().to_owned();
    let out = sessionctl(
        &daemon.socket,
        Some(NOBODY),
        &["adopt", &own, &r1.to_string()],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("EPERM") && err.contains(&format!("may not signal pid {r1}")),
        "{}",
        text(&out)
    );

    // A mixed session of nobody's: nobody's own process (spawned by
    // nobody, so it runs as nobody) is signalled, the one root put in it is
    // denied.
    let mixed: Ash = {
        let out = sessionctl(&daemon.socket, Some(NOBODY), &["new"]);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    let theirs = sessionctl(
        &daemon.socket,
        Some(NOBODY),
        &["spawn", &mixed.to_string(), "--", "sleep", "100"],
    );
    assert!(theirs.status.success(), "{}", text(&theirs));
    let theirs: u32 = String::from_utf8(theirs.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let status = std::fs::read_to_string(format!("/proc/{theirs}/status")).unwrap();
    assert!(
        status.contains("Uid:\t65534\t65534\t65534"),
        "spawned as the caller: {status}"
    );
    // Root may use anyone's session.
    let ours = root.spawn(mixed, &["sleep", "100"]).await.unwrap();

    let out = sessionctl(
        &daemon.socket,
        Some(NOBODY),
        &["kill", &mixed.to_string(), "-s", "TERM"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("process {theirs}: signalled")),
        "{}",
        text(&out)
    );
    assert!(
        stdout.contains(&format!("process {ours}: permission denied")),
        "{}",
        text(&out)
    );
    eventually("nobody's process is gone", || !alive(theirs)).await;
    assert!(alive(ours));

    // Root may signal everyone.
    let report = root.signal(roots, libc::SIGKILL, false).await.unwrap();
    assert_eq!(report.count(Outcome::Signalled), 2, "{report}");
    let report = root.signal(mixed, libc::SIGKILL, false).await.unwrap();
    assert_eq!(
        report.outcome(Member::Process(ours)),
        Some(Outcome::Signalled)
    );
}

#[tokio::test]
async fn sessiond_survives_garbage_early_close_and_unknown_sessions() {
    let daemon = Sessiond::start(&[]);

    // Bytes that are no frame: told why, then dropped.
    let mut raw = UnixStream::connect(&daemon.socket).unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    raw.read_to_end(&mut answer).unwrap();
    let msg = Message::parse(&Frame::new_checked(&answer[..]).unwrap()).unwrap();
    assert!(
        matches!(
            msg,
            Message::Error {
                kind: ErrorKind::Protocol,
                ..
            }
        ),
        "{msg:?}"
    );

    // A header announcing more than the limit: refused before allocating.
    let mut raw = UnixStream::connect(&daemon.socket).unwrap();
    raw.write_all(&[b'S', b'D', 1, 4, 0x7f, 0xff, 0xff, 0xff])
        .unwrap();
    let mut answer = Vec::new();
    raw.read_to_end(&mut answer).unwrap();
    let msg = Message::parse(&Frame::new_checked(&answer[..]).unwrap()).unwrap();
    assert!(
        matches!(
            msg,
            Message::Error {
                kind: ErrorKind::Protocol,
                ..
            }
        ),
        "{msg:?}"
    );

    // Half a header, then gone; and a connection closed at once.
    let mut raw = UnixStream::connect(&daemon.socket).unwrap();
    raw.write_all(b"SD").unwrap();
    drop(raw);
    drop(UnixStream::connect(&daemon.socket).unwrap());

    // An unknown session is ESRCH, and the daemon answers on.
    let mut c = client(&daemon).await;
    let err = c
        .signal(Ash::from_raw(0xbad), libc::SIGTERM, false)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoSuchSession);
    assert_eq!(err.errno(), libc::ESRCH);
    let err = c.members(Ash::from_raw(0xbad)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoSuchSession);
    let fresh = c.new_session(None).await.unwrap();
    let err = c.signal(fresh, 1000, false).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidType, "{err}");
    assert!(!c.list().await.unwrap().is_empty());

    let log = daemon.log();
    assert!(log.contains("bad magic"), "the garbage was logged: {log}");
    assert!(log.contains("ending its connection"), "{log}");
}

#[tokio::test]
async fn sigterm_shuts_sessiond_down_gracefully_and_removes_its_socket() {
    let mut daemon = Sessiond::start(&[]);
    let mut c = client(&daemon).await;
    c.list().await.unwrap();
    let (status, stdout) = daemon.terminate();
    assert!(status.success(), "{status}: {}", daemon.log());
    assert!(stdout.contains("sessiond stopped: accepted 1"), "{stdout}");
    assert!(!daemon.socket.exists());
}

/// A process forked from this one that holds still until dropped (then
/// SIGKILLed and reaped).
struct Forked(u32);

impl Forked {
    /// Forks; the child runs `setup` (async-signal-safe calls only: this
    /// process has other threads) and then pauses until killed.
    fn new(setup: fn()) -> Forked {
        // SAFETY: the child calls only async-signal-safe functions (what
        // `setup` is limited to, pause and _exit) before it is killed.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            setup();
            loop {
                // SAFETY: pause reads nothing and only waits for a signal.
                unsafe { libc::pause() };
            }
        }
        Forked(pid as u32)
    }
}

impl Drop for Forked {
    fn drop(&mut self) {
        // SAFETY: kill and waitpid read only their integer arguments and a
        // null status pointer.
        unsafe {
            libc::kill(self.0 as i32, libc::SIGKILL);
            libc::waitpid(self.0 as i32, std::ptr::null_mut(), 0);
        }
    }
}

/// Sets the calling process's real, effective and saved uids.
fn setresuid(real: u32, effective: u32, saved: u32) {
    // SAFETY: the raw setresuid reads only its integer arguments and is
    // async-signal-safe; on failure the child exits at once.
    unsafe {
        if libc::syscall(libc::SYS_setresuid, real, effective, saved) != 0 {
            libc::_exit(111);
        }
    }
}

/// The `Uid:` line of `/proc/<pid>/status`, tab-separated.
fn uid_line(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// A sessiond configuration file with `text`, removed when dropped.
struct ConfigFile(std::path::PathBuf);

impl ConfigFile {
    fn new(text: &str) -> ConfigFile {
        let path = common::sessiond::unique("config.toml");
        std::fs::write(&path, text).unwrap();
        ConfigFile(path)
    }

    fn start(&self) -> Sessiond {
        Sessiond::start(&["--config", self.0.to_str().unwrap()])
    }
}

/// The cgroup2 mount point, from this process's mountinfo.
fn cgroup2_mount() -> Option<std::path::PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        (right.split_ascii_whitespace().next()? == "cgroup2")
            .then(|| left.split_ascii_whitespace().nth(4).map(Into::into))?
    })
}

/// The cgroup directory of `daemon`'s session `ash`, where the cgroup
/// backend puts it.
fn session_cgroup(daemon: &Sessiond, ash: Ash) -> std::path::PathBuf {
    let pid = daemon.child.as_ref().unwrap().id();
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let rel = cgroup.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
    cgroup2_mount()
        .unwrap_or_default()
        .join(rel.trim_start_matches('/'))
        .join("connkit")
        .join(format!("{pid}-{:016x}", ash.raw()))
}

fn new_as(daemon: &Sessiond, uid: Option<u32>) -> std::process::Output {
    sessionctl(&daemon.socket, uid, &["new"])
}

fn ash_of(out: &std::process::Output) -> Ash {
    assert!(out.status.success(), "{}", text(out));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[tokio::test]
async fn not_even_root_may_adopt_pid_0_init_kernel_threads_sessiond_or_its_ancestors() {
    if !root_or_skip("the protected-process test") {
        return;
    }
    let daemon = Sessiond::start(&[]);
    let sessiond = daemon.child.as_ref().unwrap().id();
    let home = std::fs::read_to_string(format!("/proc/{sessiond}/cgroup")).unwrap();
    let ash = ash_of(&new_as(&daemon, None));
    let a = ash.to_string();

    // The dangerous pids last: should one get through, the test has failed
    // on sessiond itself already.
    let mut refused = vec![
        (sessiond, "EPERM", "sessiond itself"),
        (
            std::process::id(),
            "EPERM",
            "an ancestor of the process holding",
        ),
    ];
    refused.extend(a_kernel_thread().map(|k| (k, "EPERM", "a kernel thread")));
    refused.push((0, "EINVAL", "is no process"));
    refused.push((1, "EPERM", "is init"));
    for (pid, errno, why) in refused {
        let out = sessionctl(&daemon.socket, None, &["adopt", &a, &pid.to_string()]);
        assert_eq!(out.status.code(), Some(2), "pid {pid}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(errno) && err.contains(&format!("pid {pid}")) && err.contains(why),
            "pid {pid}: {}",
            text(&out)
        );
    }
    let out = sessionctl(&daemon.socket, None, &["adopt", &a, "8388608"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ESRCH"),
        "{}",
        text(&out)
    );
    let members = sessionctl(&daemon.socket, None, &["members", &a]);
    assert!(members.status.success(), "{}", text(&members));
    assert!(
        members.stdout.is_empty(),
        "nothing moved: {}",
        text(&members)
    );
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{sessiond}/cgroup")).unwrap(),
        home,
        "sessiond stayed in its cgroup"
    );

    // The signalling path refuses too, for any signal: sessiond put into
    // its session's cgroup behind its back is not signalled (64 would end
    // it), and nothing else is either.
    let dir = session_cgroup(&daemon, ash);
    if !dir.join("cgroup.procs").exists() {
        conn_test_support::skip(
            "not_even_root_may_adopt_pid_0_init_kernel_threads_sessiond_or_its_ancestors (the signalling half)",
            "the session has no cgroup here",
        );
        return;
    }
    let member = sessionctl(&daemon.socket, None, &["spawn", &a, "--", "sleep", "100"]);
    let member: u32 = String::from_utf8_lossy(&member.stdout)
        .trim()
        .parse()
        .unwrap();
    std::fs::write(dir.join("cgroup.procs"), sessiond.to_string()).unwrap();
    let out = sessionctl(&daemon.socket, None, &["kill", &a, "-s", "64"]);
    let back = home.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
    let back = cgroup2_mount()
        .unwrap()
        .join(back.trim_start_matches('/'))
        .join("cgroup.procs");
    std::fs::write(back, sessiond.to_string()).unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("EPERM") && err.contains(&format!("pid {sessiond}")),
        "{}",
        text(&out)
    );
    assert!(alive(sessiond) && alive(member), "nothing was sent");
    let report = signal_server(
        Some(&daemon.socket),
        ash,
        libc::SIGKILL,
        Deadline::after(Duration::from_secs(10)),
    )
    .await
    .unwrap();
    assert_eq!(report.count(Outcome::Signalled), 1, "{report}");
}

#[tokio::test]
async fn a_process_whose_effective_uid_alone_is_nobodys_is_not_nobodys_to_adopt_or_kill() {
    if !root_or_skip("the kill(2) rule test") {
        return;
    }
    // real 0, effective nobody, saved 0: kill(2) refuses nobody.
    let target = Forked::new(|| setresuid(0, NOBODY, 0));
    let pid = target.0;
    eventually("the target switched its effective uid", || {
        uid_line(pid).starts_with("0\t65534\t0")
    })
    .await;
    let kill = std::process::Command::new("/bin/kill")
        .args(["-0", &pid.to_string()])
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .unwrap();
    assert!(
        !kill.status.success(),
        "the kernel says no: {}",
        text(&kill)
    );

    // The default rule is the kernel's: refused, nothing moved.
    let daemon = Sessiond::start(&[]);
    let ash = ash_of(&new_as(&daemon, Some(NOBODY))).to_string();
    let out = sessionctl(
        &daemon.socket,
        Some(NOBODY),
        &["adopt", &ash, &pid.to_string()],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("EPERM")
            && err.contains(&format!("may not signal pid {pid}"))
            && err.contains("kill(2)"),
        "{}",
        text(&out)
    );
    let members = sessionctl(&daemon.socket, Some(NOBODY), &["members", &ash]);
    assert!(members.stdout.is_empty(), "{}", text(&members));
    assert!(alive(pid));

    // Array Services' rule, when configured, also matches the effective
    // uid: then nobody may adopt and signal it.
    let wide = ConfigFile::new("permission = \"array-services\"\n");
    let daemon = wide.start();
    let ash = ash_of(&new_as(&daemon, Some(NOBODY))).to_string();
    let out = sessionctl(
        &daemon.socket,
        Some(NOBODY),
        &["adopt", &ash, &pid.to_string()],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = sessionctl(&daemon.socket, Some(NOBODY), &["kill", &ash, "-s", "TERM"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("process {pid}: signalled")),
        "{}",
        text(&out)
    );
    eventually("the target is gone", || !alive(pid)).await;
}

#[tokio::test]
async fn adopting_a_process_whose_child_the_caller_may_not_signal_moves_nothing() {
    if !root_or_skip("the descendant check") {
        return;
    }
    // nobody's process with a child that runs as root.
    let parent = Forked::new(|| {
        // SAFETY: fork in the (single-threaded) child; its own child only
        // pauses until killed.
        if unsafe { libc::fork() } == 0 {
            loop {
                // SAFETY: pause reads nothing and only waits for a signal.
                unsafe { libc::pause() };
            }
        }
        setresuid(NOBODY, NOBODY, NOBODY);
    });
    let pid = parent.0;
    let mut child = None;
    eventually("nobody's process with its root child", || {
        child = common::children(pid).first().copied();
        uid_line(pid).starts_with("65534") && child.is_some()
    })
    .await;
    let child = Forked(child.unwrap());
    assert!(uid_line(child.0).starts_with("0\t0\t0"));

    let daemon = Sessiond::start(&[]);
    let ash = ash_of(&new_as(&daemon, Some(NOBODY))).to_string();
    let out = sessionctl(
        &daemon.socket,
        Some(NOBODY),
        &["adopt", &ash, &pid.to_string()],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("EPERM")
            && err.contains(&format!("pid {} (a descendant of pid {pid})", child.0))
            && err.contains("nothing was moved"),
        "{}",
        text(&out)
    );
    let members = sessionctl(&daemon.socket, Some(NOBODY), &["members", &ash]);
    assert!(members.status.success(), "{}", text(&members));
    assert!(
        members.stdout.is_empty(),
        "nothing moved: {}",
        text(&members)
    );
    // Killed child first: its parent's death would hand it to init.
    drop(child);
}

#[tokio::test]
async fn sessions_belong_to_their_creator_are_limited_per_uid_and_retired_when_empty() {
    if !root_or_skip("the session owner test") {
        return;
    }
    let config =
        ConfigFile::new("max_sessions_per_uid = 3\nempty_session_grace_ms = 400\nsweep_ms = 50\n");
    let daemon = config.start();
    let mut root = client(&daemon).await;

    // nobody's limit is 3; root has none.
    let theirs: Vec<Ash> = (0..3)
        .map(|_| ash_of(&new_as(&daemon, Some(NOBODY))))
        .collect();
    let out = new_as(&daemon, Some(NOBODY));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("EAGAIN") && err.contains("max_sessions_per_uid = 3"),
        "{}",
        text(&out)
    );
    let mut ours = Vec::new();
    for _ in 0..4 {
        ours.push(root.new_session(None).await.unwrap());
    }

    // Each sees what it may use: nobody its own, root all.
    let out = sessionctl(&daemon.socket, Some(NOBODY), &["list"]);
    let listed: Vec<Ash> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    let mut expected = theirs.clone();
    expected.sort_unstable();
    assert_eq!(listed, expected, "{}", text(&out));
    assert_eq!(root.list().await.unwrap().len(), 7);

    // A session whose only process exits is retired without anyone
    // asking; one that never gets a process, after the grace period.
    let busy = root.new_session(None).await.unwrap();
    let dir = session_cgroup(&daemon, busy);
    root.spawn(busy, &["sleep", "1"]).await.unwrap();
    let idle = session_cgroup(&daemon, ours[0]);
    let cgroups = dir.exists();
    eventually("every empty session is retired", || {
        daemon.log().matches("session retired").count() >= 8
    })
    .await;
    if cgroups {
        assert!(!dir.exists() && !idle.exists(), "their cgroups are removed");
    }
    assert_eq!(root.list().await.unwrap(), Vec::<Ash>::new());
    // And nobody may create again.
    ash_of(&new_as(&daemon, Some(NOBODY)));
}
