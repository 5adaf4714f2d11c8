//! A session of processes and connections, signalled as one with SIGTERM
//! (SGI Array Services' array sessions): the per-member report, then what
//! each member did with the signal. Needs no root: the session takes
//! whichever backend works here.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use connkit::core::mem::MemStream;
use connkit::core::{Connection, Deadline, Error, ErrorKind, Result};
use connkit::session::{Member, Session, Signal, signal_local};

fn sh(script: &str) -> Command {
    let mut c = Command::new("sh");
    c.args(["-c", script]).kill_on_drop(true);
    c
}

fn ended(status: std::process::ExitStatus) -> String {
    match status.signal() {
        Some(sig) if sig == Signal::TERM.raw() => "killed by SIGTERM".into(),
        _ => format!("{status}"),
    }
}

pub(super) async fn run(out: &mut dyn Write) -> Result<()> {
    writeln!(
        out,
        "\n== session: two processes (one forks) and two connections, signalled as one"
    )?;
    let session = Session::builder().kill_on_drop(true).create()?;
    writeln!(out, "session {} on {}", session.ash(), session.backend())?;
    let mut sleeper = session.spawn(sh("exec sleep 30"))?;
    let mut shell = session.spawn(sh("sleep 30 & wait"))?;
    let (sleeper_pid, shell_pid) = (sleeper.id().unwrap_or(0), shell.id().unwrap_or(0));
    // The shell's own sleep joins as soon as it is forked.
    let start = tokio::time::Instant::now();
    while session.pids()?.len() < 3 {
        if start.elapsed() > Duration::from_secs(5) {
            return Err(Error::new(ErrorKind::TimedOut)
                .during("demo session")
                .detail("the shell's sleep never showed up"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Two connections with echo handlers, as a server would have them.
    let mut peers = Vec::new();
    let mut handlers = Vec::new();
    for _ in 0..2 {
        let (ours, peer) = MemStream::pair();
        let mut conn = session.add_connection(ours, Duration::from_secs(1));
        let id = conn.id();
        handlers.push(tokio::spawn(async move {
            let mut buf = [0u8; 64];
            loop {
                match conn.read(&mut buf).await? {
                    0 => return Ok::<_, std::io::Error>(()),
                    n => conn.write_all(&buf[..n]).await?,
                }
            }
        }));
        peers.push((id, peer));
    }

    let report = signal_local(session.ash(), Signal::TERM.raw())?;
    writeln!(out, "signal_local: {report}")?;
    for (member, outcome) in &report.members {
        let who = match member {
            Member::Process(pid) if *pid == sleeper_pid => format!("sleep 30 (pid {pid})"),
            Member::Process(pid) if *pid == shell_pid => {
                format!("sh -c 'sleep 30 & wait' (pid {pid})")
            }
            Member::Process(pid) => format!("the shell's sleep 30 (pid {pid})"),
            other => other.to_string(),
        };
        writeln!(out, "  {who}: {outcome}")?;
    }

    writeln!(out, "sleep 30 ended: {}", ended(sleeper.wait().await?))?;
    writeln!(out, "the shell ended: {}", ended(shell.wait().await?))?;
    for (id, mut peer) in peers {
        let mut rest = Vec::new();
        peer.read_to_end(&mut rest).await?;
        let closed = peer.close(Deadline::after(Duration::from_secs(1))).await;
        writeln!(
            out,
            "peer of {}: saw end-of-stream (closed in order), its own close: {}",
            Member::Connection(id),
            match closed {
                Ok(()) => "Ok".to_string(),
                Err(e) => e.to_string(),
            }
        )?;
    }
    let mut ended_cleanly = 0;
    for handler in handlers {
        if matches!(handler.await, Ok(Ok(()))) {
            ended_cleanly += 1;
        }
    }
    writeln!(
        out,
        "connection handlers that saw end-of-stream and returned: {ended_cleanly} of 2"
    )?;
    Ok(())
}
