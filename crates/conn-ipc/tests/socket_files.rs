//! Socket files: stale ones replaced, live ones and non-sockets refused,
//! modes set, files removed when (and only while) they are ours.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::temp_path;
use conn_core::{Deadline, ErrorKind};
use conn_ipc::{IpcListener, IpcStream};

fn liveness() -> Deadline {
    Deadline::after(Duration::from_secs(30))
}

#[tokio::test]
async fn bind_over_a_stale_socket_file_replaces_it() {
    let path = temp_path("stale");
    // A listener that died without removing its file (std never removes it).
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let err = conn_test_support::at_once(IpcStream::connect(&path, Deadline::NOW))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused); // stale indeed

    let mut listener = IpcListener::bind(&path).unwrap();
    let _client = IpcStream::connect(&path, liveness()).await.unwrap();
    listener.accept(liveness()).await.unwrap();
}

#[tokio::test]
async fn bind_over_a_live_listener_is_addr_in_use_and_leaves_it_working() {
    let path = temp_path("live");
    let mut first = IpcListener::bind(&path).unwrap();
    let err = IpcListener::bind(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    assert!(
        err.to_string().starts_with(&format!(
            "bind on ipc://{}: address in use (EADDRINUSE)",
            path.display()
        )),
        "{err}"
    );
    let _client = IpcStream::connect(&path, liveness()).await.unwrap();
    first.accept(liveness()).await.unwrap();
}

#[test]
fn bind_over_a_file_that_is_not_a_socket_fails_and_never_deletes_it() {
    let path = temp_path("not-a-socket");
    std::fs::write(&path, b"precious").unwrap();
    let err = IpcListener::bind(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    assert!(err.to_string().contains("not a socket"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn replace_stale_false_refuses_even_a_stale_file() {
    let path = temp_path("no-replace");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let err = IpcListener::options()
        .replace_stale(false)
        .bind(&path)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    assert!(path.exists());
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn the_socket_files_mode_is_set() {
    for mode in [0o600, 0o660, 0o666] {
        let path = temp_path("mode");
        let listener = IpcListener::options().mode(mode).bind(&path).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, mode);
        drop(listener);
    }
}

#[test]
fn the_socket_file_is_removed_when_the_listener_is_dropped() {
    let path = temp_path("removed");
    let listener = IpcListener::bind(&path).unwrap();
    assert!(path.exists());
    drop(listener);
    assert!(!path.exists());
}

#[test]
fn remove_on_drop_false_keeps_the_file() {
    let path = temp_path("kept");
    drop(
        IpcListener::options()
            .remove_on_drop(false)
            .bind(&path)
            .unwrap(),
    );
    assert!(path.exists());
    std::fs::remove_file(&path).unwrap();
}

#[tokio::test]
async fn a_dropped_listener_leaves_a_newer_listeners_file_alone() {
    let path = temp_path("replaced");
    let old = IpcListener::bind(&path).unwrap();
    // Someone removes the file and a new listener takes the path.
    std::fs::remove_file(&path).unwrap();
    let mut new = IpcListener::bind(&path).unwrap();
    drop(old);
    assert!(path.exists());
    let _client = IpcStream::connect(&path, liveness()).await.unwrap();
    new.accept(liveness()).await.unwrap();
    drop(new);
    assert!(!path.exists());
}

#[test]
fn a_dropped_listener_leaves_a_regular_file_put_in_its_place_alone() {
    let path = temp_path("replaced-by-file");
    let listener = IpcListener::bind(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, b"someone else's").unwrap();
    drop(listener);
    assert_eq!(std::fs::read(&path).unwrap(), b"someone else's");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn bad_addresses_are_invalid_and_named() {
    let err = IpcListener::bind("@").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidType);
    let long = format!("/tmp/{}", "x".repeat(200));
    let err = IpcListener::bind(&long).unwrap_err();
    assert_eq!(err.operation(), Some("bind"));
    assert!(err.to_string().contains("xxxx"), "{err}");
}
