//! wrk, the HTTP load generator nobody here wrote: started against a URL
//! (from this namespace or through `ip netns exec`), its output read back
//! into numbers, and the check that it saw no error.

// Each test binary that includes this uses only part of it.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};

/// What one wrk run measured.
#[derive(Debug)]
pub struct Wrk {
    pub requests: u64,
    pub per_second: f64,
    pub socket_errors: String,
    pub non_2xx: u64,
}

/// Starts wrk as `cmd` (`wrk`, or `ip netns exec NS wrk`): 32 connections
/// on 2 threads, a new connection per request, for `seconds`, on `url`.
pub fn start(mut cmd: Command, url: &str, seconds: u32) -> Child {
    cmd.args(["-t", "2", "-c", "32", "-d", &format!("{seconds}s")])
        .args(["-H", "Connection: close"])
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wrk runs (cargo xtask test-all installs it)")
}

/// Waits for `child` and reads what it printed.
pub fn result(child: Child) -> Wrk {
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "wrk failed: {text}");
    let line = |prefix: &str| text.lines().find(|l| l.trim_start().starts_with(prefix));
    // wrk prints these two lines only when there is something to count.
    let socket_errors = line("Socket errors:").unwrap_or("none").trim().to_string();
    let non_2xx = line("Non-2xx or 3xx responses:")
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0);
    let requests = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no request count in {text}"));
    let per_second = line("Requests/sec:")
        .and_then(|l| l.split(':').nth(1)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in {text}"));
    Wrk {
        requests,
        per_second,
        socket_errors,
        non_2xx,
    }
}

/// No connect or socket error, no failed request, and some requests.
pub fn assert_clean(run: &Wrk) {
    let clean = run.socket_errors == "none"
        || run.socket_errors == "Socket errors: connect 0, read 0, write 0, timeout 0";
    assert!(clean, "connect or socket errors: {run:?}");
    assert_eq!(run.non_2xx, 0, "failed requests: {run:?}");
    assert!(run.requests > 0, "{run:?}");
}
