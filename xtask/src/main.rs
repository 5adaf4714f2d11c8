//! connkit's task runner.
//!
//! * `cargo xtask test-all`: every check CI runs, one line per step with its time.
//! * `cargo xtask bench`: runs the benches and writes BENCHMARKS.md.
//! * `cargo xtask soak --minutes N [--out DIR]`: the servers under good and misbehaving
//!   clients for N minutes, RSS/descriptors/threads sampled every second, with a verdict.
//! * `cargo xtask demo`: runs `connkit demo`.
//! * `cargo xtask fuzz [--seconds N] [--jobs J] [--work DIR] [TARGET...]`: runs the
//!   cargo-fuzz targets of `fuzz/` (nightly); `cargo xtask fuzz-cmin` merges what they
//!   found into `fuzz/corpus` and minimizes it.
//! * `cargo xtask cluster-demo`: mailboxd on a three-node corosync cluster, a link cut and healed
//!   (root; installs corosync).
//! * `cargo xtask chaos --schedules N --seed S`: seeded chaos schedules on that cluster, each
//!   history checked (crates/conn-mailbox/tests/chaos; root; installs corosync).

mod bench;
mod fuzz;
mod soak;
mod steps;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    let ok = match task {
        "test-all" => steps::test_all(),
        "bench" => bench::run(&args[1..]),
        "soak" => soak::run(&args[1..]),
        "demo" => steps::demo(),
        "cluster-demo" => steps::cluster_demo(),
        "chaos" => steps::chaos(&args[1..]),
        "fuzz" => fuzz::run(&args[1..]),
        "fuzz-cmin" => fuzz::cmin(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <test-all | bench [NAME...] | soak --minutes N [--out DIR] | demo | cluster-demo | chaos [--schedules N] [--seed S] | fuzz [--seconds N] [--jobs J] [--work DIR] [--keep-going] [TARGET...] | fuzz-cmin [TARGET...]>"
            );
            task == "help" || task == "--help"
        }
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
