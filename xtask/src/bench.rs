//! `cargo xtask bench`: runs the benches and writes BENCHMARKS.md.
//!
//! Each bench (in `benches/`) measures connkit and its peer in the same run
//! and writes its table to `target/bench-tables/<bench>.md`; this task runs
//! them and gathers the tables, in order, into BENCHMARKS.md.

use std::fmt::Write as _;
use std::process::Command;

use crate::steps::root;

/// Every bench, in the order BENCHMARKS.md lists them.
const BENCHES: &[&str] = &[
    "layers", "ipc", "http", "serve", "utcp", "session", "mailbox", "cluster",
];

pub fn run(names: &[String]) -> bool {
    let chosen: Vec<&str> = if names.is_empty() {
        BENCHES.to_vec()
    } else {
        names.iter().map(String::as_str).collect()
    };
    if !crate::steps::ensure_apt(&[("wrk", "wrk"), ("h2load", "nghttp2-client")]) {
        eprintln!("bench: could not install wrk and h2load; benches/http.rs will say it skipped");
    }
    if !crate::steps::ensure_apt(&[("redis-server", "redis-server")]) {
        eprintln!("bench: could not install redis-server; benches/mailbox.rs will say it skipped");
    }
    let tables = root().join("target/bench-tables");
    let mut ok = true;
    for name in &chosen {
        println!("bench: {name}");
        let mut cmd = Command::new("cargo");
        cmd.args(["bench", "-p", "connkit", "--bench", name]);
        if *name == "cluster" {
            // A corosync testbed and the clustered daemon it runs.
            if !crate::steps::ensure_apt(crate::steps::TEST_PACKAGES) {
                eprintln!("bench: could not install corosync; benches/cluster.rs cannot build");
            }
            let _ = Command::new("cargo")
                .args([
                    "build",
                    "--release",
                    "-p",
                    "conn-mailbox",
                    "--features",
                    "corosync",
                ])
                .args(["--bin", "mailboxd"])
                .current_dir(root())
                .status();
            cmd.args(["--features", "corosync"]);
        }
        if *name == "http" {
            // Its peers: axum::serve and tonic's own server.
            cmd.args(["--features", "axum,tonic"]);
        }
        let status = cmd.current_dir(root()).status();
        ok &= status.is_ok_and(|s| s.success());
    }
    let mut doc = String::from(
        "# Benchmarks\n\nWritten by `cargo xtask bench`. Every row measures connkit and its peer in the \
         same run on the same machine (2 shared cores: compare ratios, not absolute times). \
         Ratios are connkit / peer for times (lower is better) unless a row says otherwise.\n",
    );
    for name in BENCHES {
        match std::fs::read_to_string(tables.join(format!("{name}.md"))) {
            Ok(table) => {
                let _ = write!(doc, "\n{table}");
            }
            Err(_) => {
                let _ = write!(
                    doc,
                    "\n## {name}\n\nNot run yet: `cargo xtask bench {name}`.\n"
                );
            }
        }
    }
    if let Err(e) = std::fs::write(root().join("BENCHMARKS.md"), doc) {
        eprintln!("bench: cannot write BENCHMARKS.md: {e}");
        return false;
    }
    println!("bench: BENCHMARKS.md written");
    ok
}
