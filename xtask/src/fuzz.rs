//! `cargo xtask fuzz [--seconds N] [--jobs J] [--work DIR] [TARGET...]`:
//! runs the cargo-fuzz targets of `fuzz/` with nightly (or, where no nightly
//! can be had, stable with `RUSTC_BOOTSTRAP=1`), each for N seconds
//! (default 60), at most J at a time (default 1), and prints for each its
//! execs, exec/s, coverage (libFuzzer's `cov:` and `ft:`), corpus size and
//! crashes. `--keep-going` runs libFuzzer in fork mode, which saves a
//! crash and goes on rather than stopping at the first (for long runs).
//!
//! New inputs go to a work directory (`DIR/<target>`, by default
//! `$CARGO_TARGET_DIR/fuzz-work`), never into the committed `fuzz/corpus`,
//! which is read as seeds; `cargo xtask fuzz-cmin [--work DIR] [TARGET...]`
//! merges a work directory into `fuzz/corpus` and minimizes it. Crashes,
//! leaks, timeouts and out-of-memory inputs land in
//! `DIR/artifacts/<target>/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::steps::root;

/// libFuzzer's limits for every run: no input may take more than 10 s, no
/// single allocation more than 64 MiB, the process no more than 2 GiB.
const LIBFUZZER_LIMITS: &[&str] = &["-timeout=10", "-malloc_limit_mb=64", "-rss_limit_mb=2048"];

/// What the command line asked for.
struct Args {
    seconds: u64,
    keep_going: bool,
    jobs: usize,
    work: PathBuf,
    targets: Vec<String>,
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut parsed = Args {
        seconds: 60,
        keep_going: false,
        jobs: 1,
        work: target_dir().join("fuzz-work"),
        targets: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--seconds" => {
                parsed.seconds = value("--seconds")?
                    .parse()
                    .map_err(|e| format!("--seconds: {e}"))?
            }
            "--jobs" => {
                parsed.jobs = value("--jobs")?
                    .parse::<usize>()
                    .map_err(|e| format!("--jobs: {e}"))?
                    .max(1)
            }
            "--work" => parsed.work = PathBuf::from(value("--work")?),
            "--keep-going" => parsed.keep_going = true,
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            target => parsed.targets.push(target.to_owned()),
        }
    }
    Ok(parsed)
}

/// Whether `cargo +nightly` runs at all.
pub fn nightly_available() -> bool {
    Command::new("cargo")
        .args(["+nightly", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs a minimal nightly toolchain with rustup if there is none, as
/// test-all installs its other tools: a fresh machine has only stable.
pub fn ensure_nightly() -> bool {
    if nightly_available() {
        return true;
    }
    println!(
        "fuzz: no nightly toolchain; installing one (rustup toolchain install nightly --profile minimal, about 2 minutes)"
    );
    let installed = Command::new("rustup")
        .args(["toolchain", "install", "nightly", "--profile", "minimal"])
        .status()
        .is_ok_and(|s| s.success());
    installed && nightly_available()
}

/// The toolchain cargo-fuzz builds with: nightly when there is one (or
/// rustup can install it); else stable with `RUSTC_BOOTSTRAP=1`, which
/// accepts the `-Z` flags cargo-fuzz passes (sanitizer runtimes ship with
/// stable's standard library too), so a machine that can get no nightly
/// still fuzzes instead of skipping. `CONNKIT_FUZZ_TOOLCHAIN=stable`
/// asks for the fallback (to test it).
pub fn toolchain() -> &'static str {
    static CHOSEN: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    CHOSEN.get_or_init(|| {
        let forced = std::env::var("CONNKIT_FUZZ_TOOLCHAIN").is_ok_and(|t| t == "stable");
        if !forced && ensure_nightly() {
            return "nightly";
        }
        println!(
            "fuzz: !!! no nightly toolchain: building the fuzz targets with stable and RUSTC_BOOTSTRAP=1"
        );
        "stable"
    })
}

/// Installs cargo-fuzz if `cargo fuzz` does not run (as test-all does
/// cargo-deny).
pub fn ensure_cargo_fuzz() -> bool {
    crate::steps::ensure_cargo_tool(Some(toolchain()), "fuzz", "cargo-fuzz", 1)
}

/// The arguments and the targets they name, once nightly and cargo-fuzz
/// are there; `None` (said why, as `task: ...`) otherwise.
fn prepare(task: &str, args: &[String]) -> Option<(Args, Vec<String>)> {
    let args = match parse_args(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{task}: {e}");
            eprintln!(
                "usage: cargo xtask {task} [--seconds N] [--jobs J] [--work DIR] [--keep-going] [TARGET...]"
            );
            return None;
        }
    };
    toolchain();
    if !ensure_cargo_fuzz() {
        println!("{task}: FAILED: cargo-fuzz could not be installed");
        return None;
    }
    match chosen_targets(&args) {
        Ok(t) => Some((args, t)),
        Err(e) => {
            println!("{task}: FAILED: {e}");
            None
        }
    }
}

/// `cargo +TOOLCHAIN fuzz <sub>` on `fuzz/` ([`toolchain`]), with the fuzz
/// build's own target directory.
fn cargo_fuzz(sub: &str) -> Command {
    let mut cmd = Command::new("cargo");
    let toolchain = toolchain();
    if toolchain == "stable" {
        cmd.env("RUSTC_BOOTSTRAP", "1");
    }
    cmd.arg(format!("+{toolchain}"))
        .args(["fuzz", sub, "--fuzz-dir"])
        .arg(root().join("fuzz"))
        .current_dir(root());
    if sub != "list" {
        cmd.arg("--target-dir").arg(target_dir().join("fuzz"));
    }
    cmd
}

/// The targets `fuzz/` declares.
fn all_targets() -> Result<Vec<String>, String> {
    let out = cargo_fuzz("list")
        .output()
        .map_err(|e| format!("cargo fuzz list: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo fuzz list: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

fn chosen_targets(args: &Args) -> Result<Vec<String>, String> {
    let all = all_targets()?;
    if args.targets.is_empty() {
        return Ok(all);
    }
    for t in &args.targets {
        if !all.contains(t) {
            return Err(format!("no fuzz target {t}; there are: {}", all.join(" ")));
        }
    }
    Ok(args.targets.clone())
}

/// What one run printed, read from libFuzzer's status lines and final
/// statistics.
#[derive(Debug, Default, PartialEq)]
struct Stats {
    execs: u64,
    exec_per_sec: u64,
    cov: u64,
    ft: u64,
    corpus_inputs: u64,
    corpus_size: String,
}

/// The number after `key` in `line` (`cov: 123`, `stat::x: 5`).
fn number_after(line: &str, key: &str) -> Option<u64> {
    let at = line.find(key)? + key.len();
    line[at..]
        .split_whitespace()
        .next()?
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .ok()
}

fn parse_stats(log: &str) -> Stats {
    let mut s = Stats::default();
    for line in log.lines() {
        if line.starts_with('#') && line.contains(" cov: ") {
            s.cov = number_after(line, " cov: ").unwrap_or(s.cov);
            s.ft = number_after(line, " ft: ").unwrap_or(s.ft);
            // `corp: 187/9875b`, or in fork mode just `corp: 187`.
            if let Some(corp) = line
                .split(" corp: ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
            {
                let (n, size) = corp.split_once('/').unwrap_or((corp, ""));
                s.corpus_inputs = n.parse().unwrap_or(s.corpus_inputs);
                s.corpus_size = size.to_owned();
            }
            s.exec_per_sec = number_after(line, " exec/s: ").unwrap_or(s.exec_per_sec);
            s.execs = line[1..]
                .split_whitespace()
                .next()
                .and_then(|n| n.trim_end_matches(':').parse().ok())
                .unwrap_or(s.execs);
        }
        if let Some(n) = number_after(line, "stat::number_of_executed_units: ") {
            s.execs = n;
        }
        if let Some(n) = number_after(line, "stat::average_exec_per_sec: ") {
            s.exec_per_sec = n;
        }
    }
    s
}

/// Crash, leak, timeout and out-of-memory inputs in `dir`.
fn artifacts(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                ["crash-", "leak-", "timeout-", "oom-", "slow-unit-"]
                    .iter()
                    .any(|k| n.starts_with(k))
            })
        })
        .collect();
    found.sort();
    found
}

/// How many files `dir` holds and how many bytes they take.
fn dir_size(dir: &Path) -> (usize, u64) {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .fold((0, 0), |(n, b), m| (n + 1, b + m.len()))
}

/// One running target.
struct Run {
    target: String,
    child: std::process::Child,
    log: PathBuf,
    artifacts: PathBuf,
    before: usize,
    start: Instant,
}

fn start(target: &str, args: &Args) -> Result<Run, String> {
    let corpus = args.work.join(target);
    let art = args.work.join("artifacts").join(target);
    for dir in [&corpus, &art] {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let log = args.work.join(format!("{target}.log"));
    let out = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = cargo_fuzz("run");
    cmd.arg(target)
        .arg(&corpus)
        .arg(root().join("fuzz/corpus").join(target))
        .arg("--")
        .arg(format!("-max_total_time={}", args.seconds))
        .args(LIBFUZZER_LIMITS)
        .arg("-print_final_stats=1")
        .args(if args.keep_going {
            // Fork mode: a crash is saved and the run goes on.
            &[
                "-fork=1",
                "-ignore_crashes=1",
                "-ignore_timeouts=1",
                "-ignore_ooms=1",
            ][..]
        } else {
            &[]
        })
        .arg(format!("-artifact_prefix={}/", art.display()))
        .stdout(out)
        .stderr(err);
    println!(
        "fuzz: {target}: running {} s (log {}, new inputs in {})",
        args.seconds,
        log.display(),
        corpus.display()
    );
    let before = artifacts(&art).len();
    let child = cmd.spawn().map_err(|e| format!("cargo fuzz run: {e}"))?;
    Ok(Run {
        target: target.to_owned(),
        child,
        log,
        artifacts: art,
        before,
        start: Instant::now(),
    })
}

/// Waits for `run`, prints its line; true when it found nothing.
fn finish(mut run: Run, args: &Args) -> bool {
    let status = run.child.wait();
    let log = std::fs::read_to_string(&run.log).unwrap_or_default();
    let s = parse_stats(&log);
    let found = artifacts(&run.artifacts);
    let new = found.len().saturating_sub(run.before);
    let (files, bytes) = dir_size(&args.work.join(&run.target));
    let ok = status.as_ref().is_ok_and(|s| s.success()) && new == 0;
    println!(
        "fuzz: {}: {} in {:.0?}: {} execs, {} exec/s, cov {}, ft {}, corpus {} inputs{} ({files} files, {} KiB in the work dir), crashes {}",
        run.target,
        if ok { "ok" } else { "FAILED" },
        run.start.elapsed(),
        s.execs,
        s.exec_per_sec,
        s.cov,
        s.ft,
        s.corpus_inputs,
        if s.corpus_size.is_empty() {
            String::new()
        } else {
            format!(" of {}", s.corpus_size)
        },
        bytes.div_ceil(1024),
        new,
    );
    if !ok {
        for a in &found[run.before.min(found.len())..] {
            println!("fuzz: {}: found {}", run.target, a.display());
        }
        // The end of libFuzzer's report says what failed and where.
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        for line in tail.into_iter().rev() {
            println!("fuzz: {}: | {line}", run.target);
        }
    }
    ok
}

/// `cargo xtask fuzz`.
pub fn run(args: &[String]) -> bool {
    let Some((args, targets)) = prepare("fuzz", args) else {
        return false;
    };
    println!(
        "fuzz: building {} targets with cargo +{} fuzz",
        targets.len(),
        toolchain()
    );
    let built = cargo_fuzz("build").status().is_ok_and(|s| s.success());
    if !built {
        println!("fuzz: FAILED: cargo +{} fuzz build", toolchain());
        return false;
    }
    let mut all_ok = true;
    let mut queue = targets.iter();
    let mut running: Vec<Run> = Vec::new();
    loop {
        while running.len() < args.jobs {
            let Some(t) = queue.next() else { break };
            match start(t, &args) {
                Ok(r) => running.push(r),
                Err(e) => {
                    println!("fuzz: {t}: FAILED to start: {e}");
                    all_ok = false;
                }
            }
        }
        if running.is_empty() {
            break;
        }
        // The first to end is finished first (they all run as long).
        let done = loop {
            if let Some(i) = running
                .iter_mut()
                .position(|r| matches!(r.child.try_wait(), Ok(Some(_)) | Err(_)))
            {
                break i;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        };
        all_ok &= finish(running.remove(done), &args);
    }
    println!(
        "fuzz: {} {}",
        targets.len(),
        if all_ok {
            "targets ok"
        } else {
            "targets run, FAILED"
        }
    );
    all_ok
}

/// `cargo xtask fuzz-cmin`: merges each target's work directory into
/// `fuzz/corpus/<target>` and minimizes that with `cargo fuzz cmin`,
/// keeping the named inputs (`seed-*`, `crash-*`) as they are.
pub fn cmin(args: &[String]) -> bool {
    let Some((args, targets)) = prepare("fuzz-cmin", args) else {
        return false;
    };
    let mut ok = true;
    for t in &targets {
        let corpus = root().join("fuzz/corpus").join(t);
        let work = args.work.join(t);
        let mut copied = 0;
        for entry in std::fs::read_dir(&work).into_iter().flatten().flatten() {
            if std::fs::copy(entry.path(), corpus.join(entry.file_name())).is_ok() {
                copied += 1;
            }
        }
        let (before, _) = dir_size(&corpus);
        // Named inputs (seed-*, crash-*) stay whatever cmin makes of them:
        // the seeds and the regressions are the corpus's point.
        let named: Vec<(std::ffi::OsString, Vec<u8>)> = std::fs::read_dir(&corpus)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with("seed-") || n.starts_with("crash-"))
            })
            .filter_map(|e| Some((e.file_name(), std::fs::read(e.path()).ok()?)))
            .collect();
        let status = cargo_fuzz("cmin")
            .arg(t)
            .arg(&corpus)
            .arg("--")
            .args(LIBFUZZER_LIMITS)
            // The smallest set covering every feature, not the greedy
            // merge's (about half the files).
            .arg("-set_cover_merge=1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let mut good = status.is_ok_and(|s| s.success());
        for (name, bytes) in &named {
            good &= std::fs::write(corpus.join(name), bytes).is_ok();
        }
        let (after, bytes) = dir_size(&corpus);
        ok &= good;
        println!(
            "fuzz-cmin: {t}: {} ({copied} merged from {}, {before} inputs minimized to {after}, {} KiB)",
            if good { "ok" } else { "FAILED" },
            work.display(),
            bytes.div_ceil(1024)
        );
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libfuzzer_status_lines_and_final_stats() {
        let log = "\
#2\tINITED cov: 10 ft: 11 corp: 3/40b exec/s: 0 rss: 30Mb
#65536\tpulse  cov: 812 ft: 2390 corp: 187/9875b lim: 652 exec/s: 21845 rss: 61Mb
#70000\tDONE   cov: 815 ft: 2401 corp: 190/10Kb lim: 652 exec/s: 23333 rss: 62Mb
stat::number_of_executed_units: 70012
stat::average_exec_per_sec:     23337
";
        assert_eq!(
            parse_stats(log),
            Stats {
                execs: 70012,
                exec_per_sec: 23337,
                cov: 815,
                ft: 2401,
                corpus_inputs: 190,
                corpus_size: "10Kb".into(),
            }
        );
    }

    #[test]
    fn reads_fork_mode_status_lines() {
        let log = "#1234567: cov: 900 ft: 3000 corp: 250 exec/s: 2000 oom/timeout/crash: 0/0/1 time: 600s job: 40 dft_time: 0\n";
        let s = parse_stats(log);
        assert_eq!(
            (s.execs, s.cov, s.ft, s.corpus_inputs, s.exec_per_sec),
            (1234567, 900, 3000, 250, 2000)
        );
    }

    #[test]
    fn options_and_targets_are_told_apart() {
        let a = parse_args(&["--seconds".into(), "30".into(), "handover".into()]).unwrap();
        assert_eq!(
            (a.seconds, a.jobs, a.targets),
            (30, 1, vec!["handover".to_owned()])
        );
        assert!(parse_args(&["--bogus".into()]).is_err());
        assert!(parse_args(&["--seconds".into()]).is_err());
    }
}
