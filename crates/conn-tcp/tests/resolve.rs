//! `TcpStream::connect` tries every address a host name resolves to.
//!
//! A real name with two addresses needs a hosts file of the test's own: the
//! test makes a network namespace, gives it `/etc/netns/NS/hosts` (which
//! `ip netns exec` bind-mounts over `/etc/hosts`), and re-runs this binary
//! inside it. There, the listener takes only the name's *last* address, so
//! a connect succeeds only by moving on from the first. Needs root and
//! iproute2; says loudly when it cannot run.

use std::process::Command;
use std::time::Duration;

use conn_core::Deadline;
use conn_tcp::{TcpListener, TcpStream};

const NAME: &str = "two-addresses.connkit.test";

/// Removes the namespace and its hosts file even when the test fails.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        let _ = std::fs::remove_dir_all(format!("/etc/netns/{}", self.0));
    }
}

fn child() {
    let up = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .unwrap();
    assert!(up.success(), "bringing lo up in the namespace");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let addrs: Vec<_> = tokio::net::lookup_host((NAME, 9)).await.unwrap().collect();
        assert_eq!(
            addrs.len(),
            2,
            "the namespace's hosts file gives {NAME} two addresses: {addrs:?}"
        );
        let last = addrs[1].ip();
        let mut listener = TcpListener::bind((last, 0)).unwrap();
        let port = listener.local_addr().port();

        let stream = TcpStream::connect(
            format!("{NAME}:{port}"),
            Deadline::after(Duration::from_secs(10)),
        )
        .await
        .expect("the second address answers");
        assert_eq!(stream.peer_addr().ip(), last);
        let _ =
            conn_core::Listener::accept(&mut listener, Deadline::after(Duration::from_secs(10)))
                .await
                .unwrap();

        // Nobody on either address: the error names the host and both tries.
        drop(listener);
        let err = TcpStream::connect(
            format!("tcp://{NAME}:{port}"),
            Deadline::after(Duration::from_secs(10)),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), conn_core::ErrorKind::ConnectionRefused, "{err}");
        let text = err.to_string();
        assert!(
            text.contains(NAME) && text.contains("tried 2 addresses"),
            "{text}"
        );
    });
    println!("CHILD OK");
}

fn main() {
    if std::env::var_os("CONNKIT_RESOLVE_CHILD").is_some() {
        return child();
    }
    let root = rustix::process::geteuid().is_root();
    let ip = Command::new("ip").arg("-V").output().is_ok();
    if !root || !ip {
        conn_test_support::skip(
            "conn-tcp tests/resolve.rs",
            format!("it needs root and iproute2 (root: {root}, ip: {ip})"),
        );
        println!("0 passed, 0 failed");
        return;
    }
    let ns = Netns(format!("ckres{}", std::process::id()));
    let added = Command::new("ip")
        .args(["netns", "add", &ns.0])
        .status()
        .unwrap();
    assert!(added.success(), "ip netns add {}", ns.0);
    let dir = format!("/etc/netns/{}", ns.0);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        format!("{dir}/hosts"),
        format!("::1 {NAME}\n127.0.0.1 {NAME}\n"),
    )
    .unwrap();

    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(std::env::current_exe().unwrap())
        .env("CONNKIT_RESOLVE_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("CHILD OK"),
        "the child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(ns);
    println!("connect_tries_every_address_a_name_resolves_to ... ok");
    println!("1 passed, 0 failed");
}
