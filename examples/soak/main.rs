//! The soak: `connkit http` (over `tcp://` and `ipc://`), `mailboxd` and
//! `sessiond` as separate processes under mixed load for N minutes: good
//! clients whose every answer is checked, and misbehaving clients (slow
//! heads, half heads then silence, garbage, partial maximum-size frames,
//! clients SIGKILLed mid-frame, early closes, floods of a few hundred
//! connections), each a child process. Every second each server's RSS,
//! descriptors and threads go into `OUT/<server>.csv`; the summary compares
//! quiet samples (no client of either kind connected) at a mark and at the
//! end.
//!
//! Run it as `cargo xtask soak --minutes N [--out DIR]`, which builds the
//! servers and this example in release mode. The verdict (non-zero exit
//! when violated):
//!
//! * no good client saw an error;
//! * runs of 5 minutes or more: RSS and descriptors at the end within 5%
//!   of the one-minute mark;
//! * shorter runs: the mark is at half the run, RSS is only reported, and
//!   descriptors may grow by at most a small constant (8);
//! * every server is alive at the end, and exits with success and its
//!   report on SIGTERM.

mod bad;
mod good;
mod servers;
mod verdict;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use conn_test_support::proc::Usage;
use connkit::core::Endpoint;
use tokio::io::AsyncBufReadExt;
use tokio::sync::{RwLock, Semaphore};
use tokio_util::sync::CancellationToken;

use bad::{Kind, Target};
use good::{Ctx, Tally};
use servers::Server;

/// The soak driver (see the module documentation).
#[derive(Parser, Debug)]
#[command(name = "soak")]
struct Args {
    /// How long the load runs, in minutes (fractions allowed).
    #[arg(long, default_value_t = 1.0)]
    minutes: f64,
    /// Where the CSV files and the servers' logs go.
    #[arg(long, default_value = "target/soak")]
    out: PathBuf,
    /// Where the `connkit`, `mailboxd` and `sessiond` binaries are
    /// [default: the directory above this example's].
    #[arg(long)]
    bins: Option<PathBuf>,
    /// Run as one misbehaving client of this kind (the driver's children).
    #[arg(long, hide = true, requires = "target")]
    bad: Option<String>,
    /// The server the misbehaving client goes to.
    #[arg(long, hide = true)]
    target: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let (Some(kind), Some(target)) = (&args.bad, &args.target) {
        let run = Kind::parse(kind)
            .and_then(|k| Target::parse(target).map(|t| (k, t)))
            .and_then(|(k, t)| bad::run(k, &t));
        return match run {
            Ok(saw) => {
                println!("{kind}: {saw}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{kind} on {target}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match drive(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One row of a server's CSV file.
#[derive(Clone, Copy)]
struct Row {
    secs: f64,
    usage: Usage,
    phase: &'static str,
}

/// What the misbehaving clients did, by kind, and anything unexpected.
#[derive(Default)]
struct BadTally {
    runs: Mutex<std::collections::BTreeMap<&'static str, u64>>,
    notes: Mutex<Vec<String>>,
}

impl BadTally {
    fn ran(&self, kind: Kind) {
        *self
            .runs
            .lock()
            .expect("lock")
            .entry(kind.name())
            .or_default() += 1;
    }
    fn note(&self, what: String) {
        eprintln!("soak: note: {what}");
        self.notes.lock().expect("lock").push(what);
    }
}

fn drive(args: &Args) -> Result<bool, String> {
    let minutes = args.minutes;
    if minutes.is_nan() || minutes <= 0.0 {
        return Err(format!("--minutes {minutes}: want a positive number"));
    }
    let exe = std::env::current_exe().map_err(|e| format!("this program's path: {e}"))?;
    let bins = match &args.bins {
        Some(b) => b.clone(),
        None => exe
            .parent()
            .and_then(|p| p.parent())
            .ok_or("no directory above this example's")?
            .to_owned(),
    };
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("create {}: {e}", args.out.display()))?;
    let out = args
        .out
        .canonicalize()
        .map_err(|e| format!("{}: {e}", args.out.display()))?;
    // Socket paths must be short (108 bytes): not under `out`.
    let sockets = std::env::temp_dir().join(format!("connkit-soak-{}", std::process::id()));
    std::fs::create_dir_all(&sockets).map_err(|e| format!("create {}: {e}", sockets.display()))?;

    let mut servers = vec![
        servers::http("http-tcp", &bins, &out, "tcp://127.0.0.1:0")?,
        servers::http(
            "http-ipc",
            &bins,
            &out,
            &format!("ipc://{}", sockets.join("http.sock").display()),
        )?,
        servers::mailboxd(&bins, &out, &sockets.join("mailboxd.sock"))?,
        servers::sessiond(&bins, &out, &sockets.join("sessiond.sock"))?,
    ];
    println!(
        "soak: {minutes} minute(s); servers {}; CSV and logs in {}",
        servers
            .iter()
            .map(|s| format!("{} pid {} ({})", s.name, s.pid(), s.target.to_arg()))
            .collect::<Vec<_>>()
            .join(", "),
        out.display()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let tally = Tally::new();
    let bad_tally = Arc::new(BadTally::default());
    let ctx = Ctx {
        tally: tally.clone(),
        stop: CancellationToken::new(),
        gate: Arc::new(RwLock::new(())),
    };
    let result = rt.block_on(run(
        minutes,
        &exe,
        &out,
        &mut servers,
        ctx,
        bad_tally.clone(),
    ));
    let rows = result?;
    drop(rt);

    // The end: every server alive, then SIGTERM and its report.
    let mut wrong: Vec<String> = Vec::new();
    let mut reports = Vec::new();
    for s in &mut servers {
        if !s.alive() {
            wrong.push(format!(
                "{} (pid {}) died during the soak; log {}",
                s.name,
                s.pid(),
                s.log.display()
            ));
            continue;
        }
        match s.terminate(Duration::from_secs(30)) {
            Ok(lines) => reports.push((s.name, lines)),
            Err(e) => wrong.push(e),
        }
    }
    let _ = std::fs::remove_dir_all(&sockets);

    // The summary.
    let mark = verdict::mark_secs(minutes);
    println!(
        "\nsoak: summary of {minutes} minute(s); samples every second in {}/<server>.csv",
        out.display()
    );
    println!(
        "{:<9} {:>26} {:>26} {:>7} {:>7} {:>18}",
        "server",
        format!("quiet at {mark:.0}s rss/fds/thr"),
        "quiet at end rss/fds/thr",
        "Δrss",
        "Δfds",
        "peak rss/fds"
    );
    for (s, rows) in servers.iter().zip(&rows) {
        let quiet: Vec<&Row> = rows.iter().filter(|r| r.phase == "quiet").collect();
        let (Some(at_mark), Some(at_end)) = (quiet.first(), quiet.last()) else {
            wrong.push(format!("{}: no quiet samples were taken", s.name));
            continue;
        };
        if quiet.len() < 2 {
            wrong.push(format!("{}: only one quiet sample", s.name));
        }
        let peak_rss = rows.iter().map(|r| r.usage.rss_kib).max().unwrap_or(0);
        let peak_fds = rows.iter().map(|r| r.usage.fds).max().unwrap_or(0);
        let fmt = |u: &Usage| format!("{} KiB/{}/{}", u.rss_kib, u.fds, u.threads);
        println!(
            "{:<9} {:>26} {:>26} {:>+6.1}% {:>+6.1}% {:>18}",
            s.name,
            format!("{} @{:.0}s", fmt(&at_mark.usage), at_mark.secs),
            format!("{} @{:.0}s", fmt(&at_end.usage), at_end.secs),
            verdict::percent(at_mark.usage.rss_kib as f64, at_end.usage.rss_kib as f64),
            verdict::percent(at_mark.usage.fds as f64, at_end.usage.fds as f64),
            format!("{peak_rss} KiB/{peak_fds}")
        );
        wrong.extend(verdict::judge(s.name, minutes, at_mark.usage, at_end.usage));
    }
    let errors = tally.errors.lock().expect("lock").clone();
    println!(
        "good clients: {} HTTP requests, {} mailbox messages, {} sessions; {} errors",
        tally.requests.load(std::sync::atomic::Ordering::Relaxed),
        tally.messages.load(std::sync::atomic::Ordering::Relaxed),
        tally.sessions.load(std::sync::atomic::Ordering::Relaxed),
        errors.len()
    );
    for (at, e) in &errors {
        println!("  error at {at:.1}s: {e}");
    }
    if !errors.is_empty() {
        wrong.push(format!("{} good-client errors", errors.len()));
    }
    let runs = bad_tally.runs.lock().expect("lock").clone();
    let mut line = String::from("bad clients:");
    for (kind, n) in &runs {
        let _ = write!(line, " {kind} {n},");
    }
    println!("{}", line.trim_end_matches(','));
    let notes = bad_tally.notes.lock().expect("lock").clone();
    if !notes.is_empty() {
        println!(
            "  {} notes (unexpected, not failures), the first 20:",
            notes.len()
        );
        for n in notes.iter().take(20) {
            println!("  note: {n}");
        }
    }
    for (name, lines) in &reports {
        for l in lines {
            println!("{name} on SIGTERM: {l}");
        }
    }
    if minutes < verdict::LONG_RUN_MINUTES {
        println!(
            "(a run under {} minutes marks at half the run, reports RSS, and fails only on \
             descriptors grown by more than {} or on good-client errors)",
            verdict::LONG_RUN_MINUTES,
            verdict::SHORT_RUN_FD_SLACK
        );
    }
    if wrong.is_empty() {
        println!("soak: PASS");
        Ok(true)
    } else {
        for w in &wrong {
            println!("soak: FAIL: {w}");
        }
        Ok(false)
    }
}

/// The load and the sampling; each server's rows.
async fn run(
    minutes: f64,
    exe: &std::path::Path,
    out: &std::path::Path,
    servers: &mut [Server],
    ctx: Ctx,
    bad_tally: Arc<BadTally>,
) -> Result<Vec<Vec<Row>>, String> {
    let targets: Vec<Target> = servers.iter().map(|s| s.target.clone()).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for t in &targets {
        match t {
            Target::HttpTcp(addr) => {
                for keep in [true, false] {
                    let what = format!(
                        "http tcp {}",
                        if keep { "keep-alive" } else { "new connection" }
                    );
                    tasks.spawn(good::http(ctx.clone(), what, addr.clone(), None, keep));
                }
            }
            Target::HttpIpc(path) => {
                let via = Endpoint::parse(&format!("ipc://{path}")).map_err(|e| e.to_string())?;
                for keep in [true, false] {
                    let what = format!(
                        "http ipc {}",
                        if keep { "keep-alive" } else { "new connection" }
                    );
                    tasks.spawn(good::http(
                        ctx.clone(),
                        what,
                        "soak".into(),
                        Some(via.clone()),
                        keep,
                    ));
                }
            }
            Target::Mailbox(path) => {
                for g in ["g0", "g1"] {
                    tasks.spawn(good::mailbox(ctx.clone(), path.into(), g.into()));
                }
            }
            Target::Session(path) => {
                tasks.spawn(good::session(ctx.clone(), path.into()));
            }
        }
    }
    tasks.spawn(misbehave(ctx.clone(), exe.to_owned(), targets, bad_tally));

    let mut csv = Vec::new();
    for s in servers.iter() {
        let path = out.join(format!("{}.csv", s.name));
        let mut f =
            std::fs::File::create(&path).map_err(|e| format!("create {}: {e}", path.display()))?;
        writeln!(f, "secs,rss_kib,fds,threads,phase")
            .map_err(|e| format!("{}: {e}", path.display()))?;
        csv.push(f);
    }
    let mut rows: Vec<Vec<Row>> = vec![Vec::new(); servers.len()];
    let start = Instant::now();
    let total = Duration::from_secs_f64(minutes * 60.0);
    let mark = Duration::from_secs_f64(verdict::mark_secs(minutes));
    let mut marked = false;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut next_progress = Duration::from_secs(60);
    let mut phase = "load";
    let mut quiet_since: Option<(Instant, tokio::sync::OwnedRwLockWriteGuard<()>)> = None;
    let mut closing: Option<(
        Instant,
        tokio::task::JoinHandle<tokio::sync::OwnedRwLockWriteGuard<()>>,
    )> = None;
    let mut stable = 0;
    let mut last_fds: Vec<usize> = Vec::new();
    loop {
        tick.tick().await;
        let secs = start.elapsed().as_secs_f64();
        let mut now = Vec::new();
        for (i, s) in servers.iter_mut().enumerate() {
            let usage = Usage::of(s.pid()).map_err(|e| {
                format!(
                    "{} (pid {}) at {secs:.0}s: {e}; log {}",
                    s.name,
                    s.pid(),
                    s.log.display()
                )
            });
            let usage = match usage {
                Ok(u) if s.alive() => u,
                Ok(_) => {
                    return Err(format!(
                        "{} (pid {}) exited at {secs:.0}s; log {}:\n{}",
                        s.name,
                        s.pid(),
                        s.log.display(),
                        s.log_text()
                    ));
                }
                Err(e) => return Err(e),
            };
            now.push(usage.fds);
            let row = Row { secs, usage, phase };
            let _ = writeln!(
                csv[i],
                "{secs:.1},{},{},{},{phase}",
                usage.rss_kib, usage.fds, usage.threads
            );
            rows[i].push(row);
        }
        if start.elapsed() >= next_progress {
            next_progress += Duration::from_secs(60);
            let t = &ctx.tally;
            println!(
                "soak: {:.0}s: {}; good: {} requests, {} messages, {} sessions, {} errors",
                secs,
                servers
                    .iter()
                    .zip(&rows)
                    .map(|(s, r)| {
                        let u = r.last().expect("a row").usage;
                        format!(
                            "{} {} KiB {} fds {} thr",
                            s.name, u.rss_kib, u.fds, u.threads
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                t.requests.load(std::sync::atomic::Ordering::Relaxed),
                t.messages.load(std::sync::atomic::Ordering::Relaxed),
                t.sessions.load(std::sync::atomic::Ordering::Relaxed),
                t.error_count()
            );
        }
        match phase {
            "load" => {
                let due = if !marked { mark } else { total };
                if start.elapsed() >= due {
                    // Close the gate: every good round and bad client in
                    // flight finishes, and no new one starts. Sampling
                    // goes on meanwhile.
                    phase = "closing";
                    closing = Some((Instant::now(), tokio::spawn(ctx.gate.clone().write_owned())));
                }
            }
            "closing" => {
                let (since, task) = closing.as_mut().expect("closing");
                if task.is_finished() {
                    let guard = task.await.map_err(|e| format!("closing the gate: {e}"))?;
                    closing = None;
                    quiet_since = Some((Instant::now(), guard));
                    stable = 0;
                    phase = "settling";
                } else if since.elapsed() > Duration::from_secs(120) {
                    return Err("the clients did not stop within 120 s for a quiet sample".into());
                }
            }
            "settling" => {
                let since = quiet_since
                    .as_ref()
                    .map_or(Duration::ZERO, |(t, _)| t.elapsed());
                stable = if now == last_fds { stable + 1 } else { 0 };
                // Past the servers' own timeouts, and descriptors steady for 3 s
                // (or 30 s have passed: sampled as they are).
                if since > servers::CUT_AFTER + Duration::from_secs(1) && stable >= 3
                    || since > Duration::from_secs(30)
                {
                    phase = "quiet";
                }
            }
            _ => {
                // This tick's rows were the quiet sample.
                if marked {
                    break;
                }
                marked = true;
                quiet_since = None; // open the gate again
                phase = "load";
            }
        }
        last_fds = now;
    }
    ctx.stop.cancel();
    drop(quiet_since);
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done {
            ctx.tally.error(format!("a client task failed: {e}"));
        }
    }
    Ok(rows)
}

/// The misbehaving clients: one child process each, at most a few at a
/// time, cycling through every kind on every server, inside the gate.
async fn misbehave(ctx: Ctx, exe: PathBuf, targets: Vec<Target>, tally: Arc<BadTally>) {
    let at_once = Arc::new(Semaphore::new(6));
    let mut children = tokio::task::JoinSet::new();
    let combos: Vec<(Kind, Target)> = Kind::ALL
        .into_iter()
        .flat_map(|k| targets.iter().map(move |t| (k, t.clone())))
        .collect();
    let mut n: u64 = 0;
    while !ctx.stop.is_cancelled() {
        let permit = tokio::select! {
            _ = ctx.stop.cancelled() => break,
            p = at_once.clone().acquire_owned() => p.expect("never closed"),
        };
        let open = tokio::select! {
            _ = ctx.stop.cancelled() => break,
            g = ctx.gate.clone().read_owned() => g,
        };
        let (kind, target) = combos[(n as usize) % combos.len()].clone();
        let (exe, tally) = (exe.clone(), tally.clone());
        children.spawn(async move {
            one_bad_client(&exe, kind, &target, n, &tally).await;
            drop((open, permit));
        });
        n += 1;
        while children.try_join_next().is_some() {}
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    while children.join_next().await.is_some() {}
}

async fn one_bad_client(
    exe: &std::path::Path,
    kind: Kind,
    target: &Target,
    n: u64,
    tally: &BadTally,
) {
    let what = format!("{} on {}", kind.name(), target.to_arg());
    let child = tokio::process::Command::new(exe)
        .args(["--bad", kind.name(), "--target", &target.to_arg()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return tally.note(format!("{what}: could not start: {e}")),
    };
    tally.ran(kind);
    if kind == Kind::KilledMidFrame {
        let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("piped")).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line == bad::READY {
                    return true;
                }
            }
            false
        })
        .await;
        if ready != Ok(true) {
            tally.note(format!("{what}: never began its frame"));
        }
        // Somewhere in the frame's first 200 ms.
        tokio::time::sleep(Duration::from_millis(n * 37 % 200)).await;
        let _ = child.start_kill();
        match child.wait().await {
            Ok(status) => {
                use std::os::unix::process::ExitStatusExt;
                if status.signal() != Some(libc::SIGKILL) {
                    tally.note(format!("{what}: ended with {status} before the SIGKILL"));
                }
            }
            Err(e) => tally.note(format!("{what}: wait: {e}")),
        }
        return;
    }
    match tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await {
        Ok(Ok(out)) if out.status.success() => {}
        Ok(Ok(out)) => tally.note(format!(
            "{what}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(Err(e)) => tally.note(format!("{what}: wait: {e}")),
        Err(_) => tally.note(format!(
            "{what}: still connected after 30 s: the server never ended it"
        )),
    }
}
