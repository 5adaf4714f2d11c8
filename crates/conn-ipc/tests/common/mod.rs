//! Helpers of conn-ipc's integration tests: unique paths, plus the
//! descriptor and child-process helpers every transport's tests share.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

// Not every test binary uses every shared helper.
#[allow(unused_imports)]
pub use conn_test_support::*;

/// A socket path no other test (or test run) uses.
pub fn temp_path(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    std::env::temp_dir().join(format!(
        "conn-ipc-{}-{}-{}.sock",
        std::process::id(),
        tag,
        N.fetch_add(1, Ordering::Relaxed)
    ))
}
