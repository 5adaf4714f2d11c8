//! Zero-downtime restart: `connkit http --handover` under load (32
//! clients, a new connection per request), once while a successor takes
//! the listeners over and once with no handover, on the same port with the
//! same binary. The clients note when each request completed, so the rate
//! is read over the handover's own second (from the successor's start) as
//! well as over the whole run, and the longest gap between two completed
//! requests is the longest the handover kept anyone waiting.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
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
/// A `connkit http` on a port the kernel picks (a successor, told the same
/// `tcp://127.0.0.1:0`, takes its predecessor's), and that port.
fn server(handover: &Path) -> (Server, u16) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_connkit"))
        .args(["http", "--listen", "tcp://127.0.0.1:0"])
        .arg("--handover")
        .arg(handover)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start connkit http");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let mut port = None;
    while out.read_line(&mut line).unwrap() > 0 {
        if let Some(at) = line.split("listening on tcp://").nth(1) {
            port = at
                .split_whitespace()
                .next()
                .and_then(|addr| addr.rsplit_once(':'))
                .and_then(|(_, p)| p.parse::<u16>().ok());
        }
        if line.contains("offering the listeners") {
            // Keep reading its output so it never blocks on a full pipe.
            let rest = std::thread::spawn(move || {
                let mut rest = String::new();
                let _ = out.read_to_string(&mut rest);
                rest
            });
            let port = port.expect("a `listening on tcp://` line before the offer");
            return ((child, rest), port);
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

/// Clients at once, each a new connection per request, as wrk -c32 with
/// `Connection: close`.
const CLIENTS: usize = 32;

/// What one loaded run saw.
struct Run {
    /// Completed requests per second over the whole run.
    rate: f64,
    /// Completed requests in the second from `during`'s start.
    second: f64,
    /// Failed requests (refused, reset, or not a 200).
    failed: usize,
    /// The longest time with no request completing.
    gap: Duration,
}

/// [`CLIENTS`] clients for [`seconds`]; `during` runs a third of the way in.
fn load(port: u16, during: impl FnOnce()) -> Run {
    let start = Instant::now();
    let run = Duration::from_secs(u64::from(seconds()));
    let end = start + run;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            std::thread::spawn(move || {
                let (mut done, mut failed) = (Vec::with_capacity(1 << 16), 0);
                while Instant::now() < end {
                    if get(port) {
                        done.push(Instant::now());
                    } else {
                        failed += 1;
                    }
                }
                (done, failed)
            })
        })
        .collect();
    std::thread::sleep(run / 3);
    let mark = Instant::now();
    during();
    let (mut done, mut failed) = (Vec::new(), 0);
    for c in clients {
        let (d, f) = c.join().unwrap();
        done.extend(d);
        failed += f;
    }
    done.sort();
    let gap = std::iter::once(start)
        .chain(done.iter().copied())
        .zip(done.iter().copied())
        .map(|(a, b)| b - a)
        .max()
        .unwrap_or(run);
    let window = mark..mark + Duration::from_secs(1);
    Run {
        rate: done.len() as f64 / run.as_secs_f64(),
        second: done.iter().filter(|t| window.contains(t)).count() as f64,
        failed,
        gap,
    }
}

fn main() {
    let handover =
        std::env::temp_dir().join(format!("connkit-bench-ho-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&handover);
    let (mut current, port) = server(&handover);
    let (mut plain, mut across) = (vec![], vec![]);
    for _ in 0..rounds() {
        let run = load(port, || {});
        assert_eq!(run.failed, 0, "failed requests under load with no handover");
        plain.push(run);

        let mut successor = None;
        let run = load(port, || successor = Some(server(&handover).0));
        assert_eq!(
            run.failed, 0,
            "failed requests under load across a handover"
        );
        across.push(run);
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
    let of = |runs: &[Run], f: fn(&Run) -> f64| median(runs.iter().map(f).collect());
    let (plain_second, ho_second) = (of(&plain, |r| r.second), of(&across, |r| r.second));
    let (plain_rate, ho_rate) = (of(&plain, |r| r.rate), of(&across, |r| r.rate));
    let ms = |r: &Run| r.gap.as_secs_f64() * 1000.0;
    let (plain_gap, ho_gap) = (of(&plain, ms), of(&across, ms));

    common::write_table(
        "handover",
        "Zero-downtime restart: connkit http --handover under load (benches/handover.rs)",
        &format!(
            "{CLIENTS} clients at once, each making one request per new connection \
             (`Connection: close`), for {}s against `connkit http --handover`, with a successor \
             started a third of the way in; the peer column is the same load on the same server \
             with no handover. The handover's second is the second from the successor's start \
             (in the run without one, the same second of the run). {} rounds alternated, medians. \
             The clients, the servers and, during a handover, the starting process share the 2 \
             cores. No request failed in any run, and the old server exited 0 with nothing \
             killed.",
            seconds(),
            rounds()
        ),
        &[
            common::Row {
                what: "requests completed in the handover's second".into(),
                ours: ho_second,
                peer: plain_second,
                unit: "req",
                goal: "ratio >= 0.95".into(),
                met: ho_second / plain_second >= 0.95,
            },
            common::Row {
                what: "requests/s over the whole run".into(),
                ours: ho_rate,
                peer: plain_rate,
                unit: "req/s",
                goal: "ratio >= 0.95".into(),
                met: ho_rate / plain_rate >= 0.95,
            },
            common::Row {
                what: "longest gap between two completed requests".into(),
                ours: ho_gap,
                peer: plain_gap,
                unit: "ms",
                goal: "handover <= 100 ms".into(),
                met: ho_gap <= 100.0,
            },
        ],
    );
}
