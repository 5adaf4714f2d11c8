//! Every example in examples/ runs to completion in its one-shot mode: it
//! serves, makes its own requests, shuts down and prints its report.

#![cfg(all(feature = "axum", feature = "tonic"))]

use std::process::Command;

/// `cargo run --example name` with this test's features and target dir
/// (inherited), one-shot; returns its stdout after checking it succeeded.
fn run(name: &str) -> String {
    let output = Command::new(env!("CARGO"))
        .args([
            "run",
            "--quiet",
            "-p",
            "connkit",
            "--features",
            "axum,tonic",
        ])
        .args(["--example", name])
        .env("CONNKIT_EXAMPLE_ONESHOT", "1")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "example {name} failed: {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn axum_unix() {
    let out = run("axum_unix");
    assert!(out.contains("GET /whoami: 200 OK uid "), "{out}");
    // The client's pool may or may not have its first connection back in
    // time for the second request: one connection or two, both requests
    // finished and nothing killed.
    assert!(out.contains("killed at the deadline 0"), "{out}");
    assert!(out.contains("requests: started 2, finished 2"), "{out}");
}

#[test]
fn tonic_health() {
    let out = run("tonic_health");
    assert!(out.contains("client: watch says NotServing"), "{out}");
    assert!(out.contains("client: watch ended"), "{out}");
    assert!(out.contains("killed at the deadline 0"), "{out}");
}

#[test]
fn hyper_client() {
    let out = run("hyper_client");
    assert!(out.contains("GET utcp://10.77.0.1:8080/: 200 OK"), "{out}");
    assert!(out.contains("shutdown report"), "{out}");
}

#[test]
fn tower_http_stack() {
    let out = run("tower_http_stack");
    assert!(out.contains("encoding Some(\"gzip\")"), "{out}");
    assert!(out.contains("(connkit-timeout: 100m): 504"), "{out}");
    assert!(out.contains("(accept-encoding: identity): 503"), "{out}");
}
