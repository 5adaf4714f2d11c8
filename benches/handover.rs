//! Zero-downtime restart: `connkit http --handover` under wrk (32
//! connections, a new connection per request), once while a successor
//! takes the listeners over and once with no handover, on the same port
//! with the same binary. Beside wrk a probe makes one request at a time
//! and notes the longest gap between two that completed.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Seconds per wrk run: a full measurement, or a smoke test.
fn seconds() -> u32 {
    if common::measuring() { 6 } else { 2 }
}

/// Rounds, each a run without and a run with a handover, alternated.
fn rounds() -> usize {
    if common::measuring() { 3 } else { 1 }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// A running server and the rest of its stdout, gathered as it comes.
type Server = (Child, std::thread::JoinHandle<String>);

/// Starts `connkit http --handover`, returning once it offers.
fn server(port: u16, handover: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_connkit"))
        .args(["http", "--listen", &format!("tcp://127.0.0.1:{port}")])
        .arg("--handover")
        .arg(handover)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start connkit http");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 {
        if line.contains("offering the listeners") {
            // Keep reading its output so it never blocks on a full pipe.
            let rest = std::thread::spawn(move || {
                let mut rest = String::new();
                let _ = out.read_to_string(&mut rest);
                rest
            });
            return (child, rest);
        }
        line.clear();
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("connkit http did not start");
}

fn get(port: u16) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let mut answer = Vec::new();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_ok()
        && s.read_to_end(&mut answer).is_ok()
        && answer.starts_with(b"HTTP/1.1 200")
}

/// wrk's requests/s and whether it saw no error; the probe's longest gap.
fn load(port: u16, during: impl FnOnce()) -> (f64, bool, Duration) {
    let wrk = Command::new("wrk")
        .args(["-t", "2", "-c", "32", "-d", &format!("{}s", seconds())])
        .args(["-H", "Connection: close"])
        .arg(format!("http://127.0.0.1:{port}/"))
        .stdout(Stdio::piped())
        .spawn();
    let Ok(wrk) = wrk else {
        return (f64::NAN, false, Duration::ZERO);
    };
    let stop = Arc::new(AtomicBool::new(false));
    let probe = std::thread::spawn({
        let stop = stop.clone();
        move || {
            let (mut gap, mut last, mut failed) = (Duration::ZERO, Instant::now(), 0);
            let until = Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::SeqCst) && Instant::now() < until {
                if get(port) {
                    gap = gap.max(last.elapsed());
                    last = Instant::now();
                } else {
                    failed += 1;
                }
            }
            (gap, failed)
        }
    });
    std::thread::sleep(Duration::from_millis(u64::from(seconds()) * 1000 / 3));
    during();
    let out = wrk.wait_with_output().unwrap();
    stop.store(true, Ordering::SeqCst);
    let (gap, failed) = probe.join().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // wrk prints these lines only when it has something to count.
    let clean = !text.contains("Socket errors") && !text.contains("Non-2xx") && failed == 0;
    let rate = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|r| r.trim().parse().ok())
        .unwrap_or(f64::NAN);
    (rate, clean, gap)
}

fn main() {
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("!!! SKIPPED handover bench: wrk is not installed");
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let handover =
        std::env::temp_dir().join(format!("connkit-bench-ho-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&handover);
    let mut current = server(port, &handover);
    let (mut plain_rates, mut plain_gaps, mut ho_rates, mut ho_gaps) =
        (vec![], vec![], vec![], vec![]);
    for _ in 0..rounds() {
        let (rate, clean, gap) = load(port, || {});
        assert!(clean, "errors under load with no handover");
        plain_rates.push(rate);
        plain_gaps.push(gap.as_secs_f64() * 1000.0);

        let mut successor = None;
        let (rate, clean, gap) = load(port, || successor = Some(server(port, &handover)));
        assert!(clean, "errors under load across a handover");
        ho_rates.push(rate);
        ho_gaps.push(gap.as_secs_f64() * 1000.0);
        let mut old = std::mem::replace(&mut current, successor.expect("a successor"));
        let exited_ok = old.0.wait().is_ok_and(|s| s.success());
        let report = old.1.join().unwrap();
        assert!(
            exited_ok && report.contains("killed at the deadline 0"),
            "the old server drains clean: {report}"
        );
    }
    let _ = Command::new("kill")
        .arg(current.0.id().to_string())
        .status();
    let _ = current.0.wait();
    let (plain_rate, ho_rate) = (median(plain_rates), median(ho_rates));
    let (plain_gap, ho_gap) = (median(plain_gaps), median(ho_gaps));

    common::write_table(
        "handover",
        "Zero-downtime restart: connkit http --handover under load (benches/handover.rs)",
        &format!(
            "wrk -t2 -c32 -d{}s with `Connection: close` (every request a new connection) against \
             `connkit http --handover`, with a successor started a third of the way in, against the \
             same load on the same server with no handover (the peer column); {} rounds alternated, \
             medians. The runs share the 2 cores with wrk, and during a handover two servers and a \
             starting process share them. Beside wrk one probe \
             makes a request at a time; its longest gap between two completed requests is the \
             longest the handover kept anyone waiting. Both runs had zero socket errors and zero \
             non-2xx responses, and the old server exited 0 with nothing killed.",
            seconds(),
            rounds()
        ),
        &[
            common::Row {
                what: "requests/s, a handover inside the run".into(),
                ours: ho_rate,
                peer: plain_rate,
                unit: "req/s",
                goal: "rate ratio >= 0.95 (the issue's goal; measured over the whole run, not the handover's second alone)".into(),
                met: ho_rate / plain_rate >= 0.95,
            },
            common::Row {
                what: "longest gap between two completed probe requests".into(),
                ours: ho_gap,
                peer: plain_gap,
                unit: "ms",
                goal: "handover ≤ 100 ms".into(),
                met: ho_gap <= 100.0,
            },
        ],
    );
}
