//! `connkit demo` runs with no set-up, exits 0 and tells the whole story.

use std::process::Command;

#[test]
fn the_demo_runs_every_part_and_reports_the_shutdown() {
    let out = Command::new(env!("CARGO_BIN_EXE_connkit"))
        .arg("demo")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "sleep 10 ms          -> slept 10 ms",
        "sleep 1000 ms        -> error: call: deadline passed (ETIMEDOUT)",
        "cancel during a call -> error: call: canceled (ECANCELED)",
        "call of 5000 ms    -> error: call: canceled (ECANCELED): the shutdown's drain deadline passed",
        "call after shutdown -> error: call: shutting down (ESHUTDOWN)",
        "drain report: finished 1, cancelled 1",
        "idle client saw:  end-of-stream at once (half-closed); closed in order",
        "busy client saw:  \"slept 100 ms\\n\" then end-of-stream",
        "overrunning client saw: end-of-stream after the drain deadline (killed)",
        "shutdown report: accepted 3, closed in order 2, killed at the deadline 1, cut by the peer 0, errors 0",
        "done:  the server saw \"question\" then end-of-stream; the client still received \"answer\" then end-of-stream",
        "close: the server saw end-of-stream, ended its side, and the client's close returned Ok",
        "kill:  the server saw end-of-stream with no handshake; its next write: broken pipe (EPIPE)",
        "the socket file is gone with the listener: true",
        "close: the peer saw end-of-stream (FIN); close returned Ok",
        "abort: the peer saw connection reset by peer (ECONNRESET)",
        ": 200 OK \"hello from connkit\\n\"",
        "HTTP server shutdown report: accepted 1, closed in order 1, killed at the deadline 0, cut by the peer 0, errors 0",
        "== session: two processes (one forks) and two connections, signalled as one",
        ": 5 members, 5 signalled",
        "  connection #1: signalled",
        "  connection #2: signalled",
        "sleep 30 ended: killed by SIGTERM",
        "the shell ended: killed by SIGTERM",
        "peer of connection #1: saw end-of-stream (closed in order), its own close: Ok",
        "peer of connection #2: saw end-of-stream (closed in order), its own close: Ok",
        "connection handlers that saw end-of-stream and returned: 2 of 2",
        "the same order at all three: true",
        "mailboxd shutdown report: accepted 4, closed in order 3, killed at the deadline 0, cut by the peer 1, errors 0",
        "c disconnected: a saw view 4, cause disconnect, members #a#demo,#b#demo",
        "b killed:       a saw view 5, cause network (no goodbye: the daemon only saw the socket close), members #a#demo",
        "transfer: the server read 262144 bytes then end-of-stream (FIN)",
        "close: the client saw end-of-stream (FIN); the server's close returned Ok",
        "kill: the server saw connection reset by peer (ECONNRESET)",
        "close after the reset: not connected (ENOTCONN)",
        "demo finished",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    // The session's processes, whose pids vary: each one signalled.
    for process in [
        "  sleep 30 (pid ",
        "  sh -c 'sleep 30 & wait' (pid ",
        "  the shell's sleep 30 (pid ",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(process) && l.ends_with("): signalled")),
            "no {process:?}...: signalled line in:\n{stdout}"
        );
    }
}
