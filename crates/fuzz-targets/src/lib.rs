//! Every fuzz target of the workspace, by name: the function that takes
//! the fuzzer's bytes and the seed inputs made from real frames. The
//! functions themselves live next to their decoders, in each crate's
//! hidden `fuzzing` module; this list is the one place both users read:
//!
//! * `fuzz/` (a cargo-fuzz project, nightly, outside the workspace): one
//!   `fuzz_targets/<name>.rs` per entry, calling [`Target::run`];
//! * `tests/corpus.rs` (stable): every file of `fuzz/corpus/<name>/`
//!   through the same function, so `cargo test` checks the corpus.
//!
//! `cargo run -p conn-fuzz-targets --bin fuzz-seeds` writes the seeds into
//! `fuzz/corpus/<name>/seed-*`.
//!
//! ```
//! let t = conn_fuzz_targets::target("handover").unwrap();
//! for (_, input) in (t.seeds)() {
//!     (t.run)(&input); // a seed never fails its own target
//! }
//! assert!(conn_fuzz_targets::target("no-such").is_none());
//! ```

use std::path::{Path, PathBuf};

/// One fuzz target.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// Its name: the file `fuzz/fuzz_targets/<name>.rs` and the corpus
    /// directory `fuzz/corpus/<name>/`.
    pub name: &'static str,
    /// What it decodes, for `cargo xtask fuzz` to print.
    pub what: &'static str,
    /// Runs one input; a failed property panics.
    pub run: fn(&[u8]),
    /// Seed inputs made from real frames, each with a name.
    pub seeds: fn() -> Vec<(String, Vec<u8>)>,
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "mailbox_frames",
        what: "mailbox client and daemon frames: stream splitter, Frame/Repr, client decode",
        run: conn_mailbox::fuzzing::frames,
        seeds: conn_mailbox::fuzzing::frames_seeds,
    },
    Target {
        name: "mailbox_cluster",
        what: "mailboxd's CPG batches (cluster ops, Sync) applied to two replicas",
        run: conn_mailbox::fuzzing::cluster,
        seeds: conn_mailbox::fuzzing::cluster_seeds,
    },
    Target {
        name: "session_frames",
        what: "sessiond frames read off a stream (read_frame_within) and Message",
        run: signal_session::fuzzing::frames,
        seeds: signal_session::fuzzing::frames_seeds,
    },
    Target {
        name: "session_cluster",
        what: "sessiond's CPG ask/answer and peer requests, served by a daemon",
        run: signal_session::fuzzing::cluster,
        seeds: signal_session::fuzzing::cluster_seeds,
    },
    Target {
        name: "handover",
        what: "conn-core handover frames (Take/Offer/Confirm/Refused) off a stream",
        run: conn_core::fuzzing::handover,
        seeds: conn_core::fuzzing::handover_seeds,
    },
    Target {
        name: "utcp_rx",
        what: "conn-utcp: Ethernet frames received by a listening smoltcp stack",
        run: conn_utcp::fuzzing::receive,
        seeds: conn_utcp::fuzzing::receive_seeds,
    },
    Target {
        name: "utcp_rx_ip",
        what: "conn-utcp: bare IP packets (a TUN's medium) received by a listening smoltcp stack",
        run: conn_utcp::fuzzing::receive_ip,
        seeds: conn_utcp::fuzzing::receive_ip_seeds,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// `fuzz/corpus/<name>/` of this repository.
pub fn corpus_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(name)
}

/// Runs every file of `dir` through `target`, in name order; returns how
/// many ran. A failing input panics with its path in the message.
pub fn replay(target: &Target, dir: &Path) -> std::io::Result<usize> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.is_file());
    files.sort();
    for path in &files {
        let input = std::fs::read(path)?;
        let run = std::panic::catch_unwind(|| (target.run)(&input));
        if let Err(panic) = run {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            panic!("{} fails on {}: {why}", target.name, path.display());
        }
    }
    Ok(files.len())
}
