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
    "layers", "ipc", "http", "drain", "handover", "serve", "utcp", "session", "mailbox", "cluster",
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
    if !crate::steps::ensure_apt(&[
        ("redis-server", "redis-server"),
        ("nats-server", "nats-server"),
    ]) {
        eprintln!(
            "bench: could not install redis-server and nats-server; benches/mailbox.rs will say which peer it skipped"
        );
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
    // A bench not run this time keeps its section from the last run, so
    // re-measuring one bench does not erase the others.
    let earlier = std::fs::read_to_string(root().join("BENCHMARKS.md")).unwrap_or_default();
    for name in BENCHES {
        let _ = write!(doc, "\n{}\n", marker(name));
        let fresh = chosen.contains(name);
        match std::fs::read_to_string(tables.join(format!("{name}.md"))) {
            Ok(table) if fresh => {
                let _ = write!(doc, "{table}");
            }
            _ => match earlier_section(&earlier, name) {
                Some(section) => {
                    let _ = writeln!(doc, "{section}");
                }
                None => {
                    let _ = write!(
                        doc,
                        "## {name}\n\nNot run yet: `cargo xtask bench {name}`.\n"
                    );
                }
            },
        }
    }
    if let Err(e) = std::fs::write(root().join("BENCHMARKS.md"), doc) {
        eprintln!("bench: cannot write BENCHMARKS.md: {e}");
        return false;
    }
    println!("bench: BENCHMARKS.md written");
    ok
}

/// The line that opens a bench's section in BENCHMARKS.md.
fn marker(name: &str) -> String {
    format!("<!-- bench: {name} -->")
}

/// `name`'s section of an earlier BENCHMARKS.md: from its marker to the
/// next marker.
fn earlier_section<'a>(doc: &'a str, name: &str) -> Option<&'a str> {
    let start = doc.find(&marker(name))? + marker(name).len();
    let rest = doc[start..].trim_start_matches('\n');
    let end = rest.find("<!-- bench: ").unwrap_or(rest.len());
    Some(rest[..end].trim_end())
}

#[cfg(test)]
mod tests {
    use super::earlier_section;

    #[test]
    fn a_bench_not_run_keeps_its_earlier_section() {
        let doc = "# B\n\n<!-- bench: a -->\n## A\n| x |\n\n<!-- bench: b -->\n## B\n| y |\n";
        assert_eq!(earlier_section(doc, "a"), Some("## A\n| x |"));
        assert_eq!(earlier_section(doc, "b"), Some("## B\n| y |"));
        assert_eq!(earlier_section(doc, "c"), None);
    }
}
