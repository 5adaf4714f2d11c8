//! `test-all` and `demo`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent")
        .to_path_buf()
}

/// Tallies tests and failed steps across `test-all`.
#[derive(Default)]
struct Tally {
    passed: u64,
    failed: u64,
    /// What failed, as `step: test` (or the step alone), repeated at the
    /// end so a log that keeps only its tail still names the failure.
    failures: Vec<String>,
}

impl Tally {
    /// Counts one failure that is not a test's, and says it now and at the end.
    fn fail(&mut self, what: &str) {
        println!("test-all: FAILED {what}");
        self.failed += 1;
        self.failures.push(what.to_owned());
    }
}

/// Runs `cmd` through the shell from the workspace root, echoing its output
/// and adding any `test result:` / nextest summary counts to `tally`.
/// Returns whether it exited successfully.
fn run_step(name: &str, cmd: &str, tally: &mut Tally, count_tests: bool) -> bool {
    let start = Instant::now();
    println!("test-all: {name}: {cmd}");
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(format!("set -o pipefail; {cmd} 2>&1"))
        .env("CONNKIT_SKIP_LOG", skip_log())
        .current_dir(root())
        .stdout(Stdio::piped())
        .spawn()
        .expect("bash runs");
    let (mut passed, mut failed) = (0u64, 0u64);
    // cargo test prints each test binary's `Running` line before its
    // results; a failed test is named with the binary it ran in.
    let mut binary = String::new();
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line.unwrap_or_default();
        println!("{line}");
        if let Some((p, f)) = parse_test_result(&line) {
            passed += p;
            failed += f;
        }
        if let Some(running) = running_binary(&line) {
            binary = running;
        }
        if let Some(test) = failed_test(&line) {
            tally.failures.push(format!("{name}: {binary} {test}"));
        }
    }
    let ok = child.wait().map(|s| s.success()).unwrap_or(false);
    if count_tests {
        tally.passed += passed;
        tally.failed += failed;
    }
    if !ok && (!count_tests || failed == 0) {
        // A step that failed without failing tests counts as one failure.
        tally.fail(&format!("{name}: the step itself ({cmd})"));
    }
    let verdict = if ok { "ok" } else { "FAILED" };
    if count_tests {
        println!(
            "test-all: step {name}: {verdict} in {:.1?} ({passed} passed, {failed} failed)",
            start.elapsed()
        );
    } else {
        println!(
            "test-all: step {name}: {verdict} in {:.1?}",
            start.elapsed()
        );
    }
    ok
}

/// Where the tests record their skips during test-all (read by its last
/// line). Kept out of CARGO_TARGET_DIR, which may be elsewhere.
fn skip_log() -> PathBuf {
    root().join("target/test-all-skips.log")
}

/// The test binary a `cargo test` line starts, as its source path:
/// `     Running tests/http_drain.rs (target/debug/deps/http_drain-…)`.
fn running_binary(line: &str) -> Option<String> {
    let rest = line.trim().strip_prefix("Running ")?;
    Some(rest.split(" (").next().unwrap_or(rest).to_owned())
}

/// The name of a failed test in libtest's `test a::b ... FAILED`.
fn failed_test(line: &str) -> Option<&str> {
    line.trim()
        .strip_prefix("test ")?
        .strip_suffix(" ... FAILED")
}

/// Reads cargo test's `test result: ok. 41 passed; 0 failed; ...`, and the
/// plain `N passed, N failed` that harness-less test binaries print.
fn parse_test_result(line: &str) -> Option<(u64, u64)> {
    if let Some((p, f)) = line.trim().split_once(" passed, ")
        && let (Ok(p), Some(Ok(f))) = (p.parse(), f.strip_suffix(" failed").map(str::parse))
    {
        return Some((p, f));
    }
    let rest = line.trim().strip_prefix("test result: ")?;
    let number_before = |word: &str| -> Option<u64> {
        let i = rest.find(word)?;
        rest[..i]
            .split_whitespace()
            .last()?
            .trim_start_matches(['.', ';'])
            .parse()
            .ok()
    };
    Some((number_before(" passed")?, number_before(" failed")?))
}

/// What the tests use from Debian: real peers (curl, h2load, ping), network
/// namespaces (iproute2), corosync with the libraries conn-cpg links, and the
/// peers the benches' smoke runs under `cargo test` load (wrk, redis,
/// nats-server);
/// python3 with pip, which installs [`TEST_PYTHON_PACKAGES`].
pub const TEST_PACKAGES: &[(&str, &str)] = &[
    ("curl", "curl"),
    ("python3", "python3"),
    ("pip3", "python3-pip"),
    ("wrk", "wrk"),
    ("h2load", "nghttp2-client"),
    ("redis-server", "redis-server"),
    ("nats-server", "nats-server"),
    ("ip", "iproute2"),
    ("ping", "iputils-ping"),
    ("corosync", "corosync"),
    ("/usr/include/corosync/cpg.h", "libcpg-dev"),
    ("/usr/include/corosync/cfg.h", "libcfg-dev"),
    ("/usr/include/corosync/cmap.h", "libcmap-dev"),
    ("/usr/include/corosync/quorum.h", "libquorum-dev"),
    ("/usr/include/corosync/votequorum.h", "libvotequorum-dev"),
];

/// What the tests use from PyPI, as (module to import, package): grpcio,
/// gRPC's own client, and its health service stubs, for tests/grpcio.rs.
pub const TEST_PYTHON_PACKAGES: &[(&str, &str)] = &[
    ("grpc", "grpcio"),
    ("grpc_health.v1", "grpcio-health-checking"),
];

/// Installs, with python3's pip, the packages whose modules python3 cannot
/// import. Debian's own python3 refuses `pip install` outside a venv
/// (PEP 668, "externally-managed-environment"); only when pip says so is
/// the install retried with `--break-system-packages`, so a python3 that
/// accepts plain installs (pyenv, a venv) never gets the flag.
pub fn ensure_pip(packages: &[(&str, &str)]) -> bool {
    let imports = |modules: &[&str]| {
        Command::new("python3")
            .arg("-c")
            .arg(format!("import {}", modules.join(", ")))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let modules: Vec<&str> = packages.iter().map(|(module, _)| *module).collect();
    if imports(&modules) {
        return true;
    }
    let names: Vec<&str> = packages.iter().map(|(_, package)| *package).collect();
    println!("test-all: installing {} with pip", names.join(" "));
    let pip = |extra: &[&str]| {
        Command::new("python3")
            .args(["-m", "pip", "install", "--quiet"])
            .args(extra)
            .args(&names)
            .output()
    };
    let mut out = match pip(&[]) {
        Ok(out) => out,
        Err(e) => {
            println!("test-all: python3 does not run: {e}");
            return false;
        }
    };
    if !out.status.success()
        && String::from_utf8_lossy(&out.stderr).contains("externally-managed-environment")
    {
        println!("test-all: python3 is externally managed; again with --break-system-packages");
        match pip(&["--break-system-packages"]) {
            Ok(again) => out = again,
            Err(e) => {
                println!("test-all: python3 does not run: {e}");
                return false;
            }
        }
    }
    if !out.status.success() {
        print!("{}", String::from_utf8_lossy(&out.stdout));
        print!("{}", String::from_utf8_lossy(&out.stderr));
        return false;
    }
    // Installed is not enough: python3 must now import them.
    imports(&modules)
}

/// Installs Debian packages whose commands (or, for an absolute path, whose
/// files: a library's header) are missing.
pub fn ensure_apt(packages: &[(&str, &str)]) -> bool {
    let missing: Vec<&str> = packages
        .iter()
        .filter(|(command, _)| {
            if command.starts_with('/') {
                !std::path::Path::new(command).exists()
            } else {
                which(command).is_none()
            }
        })
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return true;
    }
    println!("test-all: installing {} with apt-get", missing.join(" "));
    let cmd = format!(
        "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq {} >/dev/null",
        missing.join(" ")
    );
    Command::new("bash")
        .arg("-c")
        .arg(cmd)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Where `command` is on PATH, if it is.
pub fn which(command: &str) -> Option<PathBuf> {
    // Daemons such as corosync live in sbin, which a user's PATH may lack.
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(command))
        .find(|p| p.is_file())
}

/// Installs the cargo subcommand `sub` (package `package`, `cargo install`
/// takes about `minutes`) unless `cargo [+toolchain] sub --version` runs.
pub fn ensure_cargo_tool(toolchain: Option<&str>, sub: &str, package: &str, minutes: u32) -> bool {
    let installed = Command::new("cargo")
        .args(toolchain.map(|t| format!("+{t}")))
        .args([sub, "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if installed {
        return true;
    }
    println!("test-all: installing {package} (about {minutes} minutes)");
    Command::new("cargo")
        .args(["install", "--locked", package])
        .status()
        .is_ok_and(|s| s.success())
}

/// Removes what an earlier `cargo package` extracted of this workspace's
/// own crates into `$CARGO_HOME/registry/src`. cargo verifies each package
/// against the others through a local registry, extracts them there, and
/// never extracts a version again once its directory exists: a second run
/// with changed sources (the same version, 0.1.0) would verify against the
/// first run's code. crates.io's own extractions are left alone.
fn forget_packaged_workspace_crates() {
    const OURS: &[&str] = &[
        "conn-core-",
        "conn-cpg-",
        "conn-ipc-",
        "conn-tcp-",
        "conn-utcp-",
        "conn-mailbox-",
        "signal-session-",
        "connkit-",
    ];
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let Some(src) = home.map(|h| h.join("registry/src")) else {
        return;
    };
    let Ok(registries) = std::fs::read_dir(&src) else {
        return;
    };
    for registry in registries.flatten() {
        if registry
            .file_name()
            .to_string_lossy()
            .starts_with("index.crates.io-")
        {
            continue;
        }
        let Ok(crates) = std::fs::read_dir(registry.path()) else {
            continue;
        };
        for krate in crates.flatten() {
            let name = krate.file_name().to_string_lossy().into_owned();
            if OURS.iter().any(|ours| name.starts_with(ours)) {
                let _ = std::fs::remove_dir_all(krate.path());
            }
        }
    }
}

fn ensure_cargo_deny() -> bool {
    ensure_cargo_tool(None, "deny", "cargo-deny", 3)
}

/// The fuzz corpus replayed on stable (always), then every cargo-fuzz
/// target run briefly: on nightly (installed if missing), or where none
/// can be had on stable with `RUSTC_BOOTSTRAP=1` (see
/// [`crate::fuzz::toolchain`]), so the step never skips.
fn fuzz_steps(tally: &mut Tally) -> bool {
    // The test step ran these tests already and counted them; this step
    // names them, so a corpus failure shows as such.
    let mut ok = run_step(
        "fuzz-replay",
        "cargo test -p conn-fuzz-targets --test corpus --locked",
        tally,
        false,
    );
    if !crate::fuzz::ensure_cargo_fuzz() {
        tally.fail("fuzz: cargo-fuzz could not be installed");
        return false;
    }
    ok &= run_step("fuzz", "cargo xtask fuzz --seconds 10", tally, false);
    ok
}

/// Every check: format, lints, tests (unit, integration, doc), licences.
pub fn test_all() -> bool {
    let start = Instant::now();
    let mut tally = Tally::default();
    let mut all_ok = true;
    // Every skip a test records (conn_test_support::skip) lands here;
    // each step gets its path in CONNKIT_SKIP_LOG.
    let skips = skip_log();
    let _ = std::fs::create_dir_all(root().join("target"));
    let _ = std::fs::write(&skips, "");
    if !ensure_apt(TEST_PACKAGES) {
        tally.fail("packages: could not install the Debian packages the tests use");
        all_ok = false;
    }
    if !ensure_pip(TEST_PYTHON_PACKAGES) {
        tally.fail("packages: could not install the Python packages the tests use (grpcio)");
        all_ok = false;
    }
    let steps: &[(&str, &str, bool)] = &[
        ("fmt", "cargo fmt --all -- --check", false),
        (
            "clippy",
            "cargo clippy --workspace --all-targets --all-features --locked -- -D warnings",
            false,
        ),
        // Default features too: code only a feature calls is dead without
        // it, and a user's `cargo clippy` sees the default build.
        (
            "clippy-default-features",
            "cargo clippy --workspace --all-targets --locked -- -D warnings",
            false,
        ),
        (
            "test",
            "cargo test --workspace --all-targets --all-features --locked --no-fail-fast",
            true,
        ),
        (
            "doc-test",
            "cargo test --workspace --doc --all-features --locked",
            true,
        ),
    ];
    println!(
        "test-all: the test step includes crates/conn-mailbox/tests/chaos: three chaos schedules \
         on the corosync testbed (seeds 1, 2 and 3, printed as `chaos: seed N: ...`; \
         more with `cargo xtask chaos`)"
    );
    for (name, cmd, count) in steps {
        all_ok &= run_step(name, cmd, &mut tally, *count);
    }
    // Every publishable crate builds from its packaged sources alone:
    // versioned path dependencies, license files, nothing read from outside
    // the crate. (`--allow-dirty`: what is checked is the tree on disk,
    // committed or not.)
    forget_packaged_workspace_crates();
    all_ok &= run_step(
        "package",
        "cargo package --workspace --locked --allow-dirty --exclude xtask \
         --exclude conn-fuzz-targets --exclude conn-test-support",
        &mut tally,
        false,
    );
    // One minute of the soak: the servers as processes under good and
    // misbehaving clients (examples/soak; `cargo xtask soak --minutes 30`
    // is the long run). One pass/fail step.
    println!("test-all: soak: ONE MINUTE of load on connkit http, mailboxd and sessiond");
    all_ok &= run_step("soak", "cargo xtask soak --minutes 1", &mut tally, false);
    all_ok &= fuzz_steps(&mut tally);
    if ensure_cargo_deny() {
        println!("test-all: cargo deny: advisories need a network database and are skipped here");
        // `--offline` wants every crate of Cargo.lock on disk, and a Linux
        // build never downloads the Windows-only ones: fetch them for every
        // target first, or a fresh machine fails here.
        all_ok &= run_step("fetch", "cargo fetch --locked", &mut tally, false);
        all_ok &= run_step(
            "deny",
            "cargo deny --offline check --hide-inclusion-graph licenses bans sources",
            &mut tally,
            false,
        );
    } else {
        tally.fail("deny: cargo-deny could not be installed");
        all_ok = false;
    }
    println!("test-all: finished in {:.1?}", start.elapsed());
    let skipped: Vec<String> = std::fs::read_to_string(&skips)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    for skip in &skipped {
        println!("test-all: skipped {skip}");
    }
    for failure in &tally.failures {
        println!("test-all: FAILED {failure}");
    }
    println!(
        "test-all: {} passed, {} failed, {} skipped",
        tally.passed,
        tally.failed,
        skipped.len()
    );
    all_ok && tally.failed == 0
}

/// `connkit demo`, built in release mode.
pub fn demo() -> bool {
    Command::new("cargo")
        .args(["run", "--release", "-p", "connkit", "--", "demo"])
        .current_dir(root())
        .status()
        .is_ok_and(|s| s.success())
}

/// mailboxd on a three-node corosync cluster made on this machine: a group
/// across it, a link cut and healed, what each member saw; then torn down.
pub fn cluster_demo() -> bool {
    if !ensure_apt(TEST_PACKAGES) {
        eprintln!("cluster-demo: could not install corosync and its libraries");
        return false;
    }
    let build = Command::new("cargo")
        .args([
            "build",
            "--release",
            "-p",
            "conn-mailbox",
            "--features",
            "corosync",
        ])
        .args(["--bin", "mailboxd", "--example", "cluster_demo"])
        .current_dir(root())
        .status()
        .is_ok_and(|s| s.success());
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
        .join("release");
    build
        && Command::new(target.join("examples/cluster_demo"))
            .arg(target.join("mailboxd"))
            .status()
            .is_ok_and(|s| s.success())
}

/// `cargo xtask chaos [--schedules N] [--seed S]`: N seeded chaos schedules
/// (default 20) on the three-node corosync testbed, seeds S, S+1, ...
/// (default: a random S, printed), each history checked; the test binary
/// crates/conn-mailbox/tests/chaos in release mode prints a line per
/// schedule, every anomaly with its seed and the command to replay it, and
/// the totals.
pub fn chaos(args: &[String]) -> bool {
    let (mut schedules, mut seed) = (20u64, None::<u64>);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value = |it: &mut std::slice::Iter<'_, String>| it.next().and_then(|v| v.parse().ok());
        match arg.as_str() {
            "--schedules" => match value(&mut it) {
                Some(n) => schedules = n,
                None => return chaos_usage(),
            },
            "--seed" => match value(&mut it) {
                Some(s) => seed = Some(s),
                None => return chaos_usage(),
            },
            _ => return chaos_usage(),
        }
    }
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64 % 1_000_000_000)
            .unwrap_or(1)
    });
    if !ensure_apt(TEST_PACKAGES) {
        eprintln!("chaos: could not install corosync and its libraries");
        return false;
    }
    println!(
        "chaos: {schedules} schedules from seed {seed} (replay one: cargo xtask chaos --schedules 1 --seed SEED)"
    );
    Command::new("cargo")
        .args([
            "test",
            "--release",
            "-p",
            "conn-mailbox",
            "--features",
            "corosync",
        ])
        .args(["--test", "chaos", "--", "--nocapture", "--test-threads=1"])
        .env("CONNKIT_CHAOS_SCHEDULES", schedules.to_string())
        .env("CONNKIT_CHAOS_SEED", seed.to_string())
        .current_dir(root())
        .status()
        .is_ok_and(|s| s.success())
}

fn chaos_usage() -> bool {
    eprintln!("usage: cargo xtask chaos [--schedules N] [--seed S]");
    false
}

#[cfg(test)]
mod tests {
    use super::{failed_test, parse_test_result, running_binary};

    #[test]
    fn reads_cargo_test_summaries() {
        let line = "test result: ok. 41 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.10s";
        assert_eq!(parse_test_result(line), Some((41, 0)));
        let line = "test result: FAILED. 16 passed; 3 failed; 0 ignored";
        assert_eq!(parse_test_result(line), Some((16, 3)));
        assert_eq!(parse_test_result("running 3 tests"), None);
        assert_eq!(parse_test_result("1 passed, 0 failed"), Some((1, 0)));
    }

    #[test]
    fn names_a_failed_test_with_its_binary() {
        let running = "     Running tests/http_drain.rs (target/debug/deps/http_drain-0123abcd)";
        assert_eq!(
            running_binary(running).as_deref(),
            Some("tests/http_drain.rs")
        );
        assert_eq!(
            failed_test("test drain_kills_at_the_deadline ... FAILED"),
            Some("drain_kills_at_the_deadline")
        );
        assert_eq!(failed_test("test drain_kills_at_the_deadline ... ok"), None);
        assert_eq!(running_binary("running 3 tests"), None);
    }
}
