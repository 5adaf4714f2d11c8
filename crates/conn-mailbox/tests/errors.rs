//! Every named error, returned by the real daemon or the client's checks,
//! and bad bytes on the wire ending only the client that sent them.

mod common;

use common::*;
use conn_core::wire::Repr as _;
use conn_core::{Deadline, ErrorKind};
use conn_ipc::IpcStream;
use conn_mailbox::limits::{MAX_GROUPS_PER_MESSAGE, MAX_MESSAGE};
use conn_mailbox::wire::{Frame, Repr, frame_len};
use conn_mailbox::{Cause, Event, Mailbox, MailboxError, Service};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Reads one frame from a raw stream.
async fn read_raw(s: &mut IpcStream) -> Vec<u8> {
    let mut buf = vec![0u8; 4];
    s.read_exact(&mut buf).await.unwrap();
    let total = frame_len(&buf).unwrap().unwrap();
    buf.resize(total, 0);
    s.read_exact(&mut buf[4..]).await.unwrap();
    buf
}

#[tokio::test]
async fn names_and_uniqueness() {
    let d = Daemon::start(&[]);
    for bad in ["has space", "elevenchars", "", "a#b"] {
        let e = Mailbox::connect(d.path(), bad, 0, false, soon())
            .await
            .unwrap_err();
        assert!(matches!(e, MailboxError::IllegalName(_)), "{bad:?}: {e}");
        assert_eq!(e.kind(), ErrorKind::InvalidType);
    }
    // The daemon checks too, whatever a client sends.
    let mut raw = IpcStream::connect(d.path(), soon()).await.unwrap();
    raw.write_all(
        &Repr::Connect {
            version: 1,
            priority: 0,
            membership: false,
            name: "a b",
        }
        .to_vec()
        .unwrap(),
    )
    .await
    .unwrap();
    let reply = read_raw(&mut raw).await;
    assert!(matches!(
        Repr::parse(&Frame::new_checked(&reply[..]).unwrap()).unwrap(),
        Repr::Reply {
            req: 0,
            code: 1,
            ..
        }
    ));

    let first = connect(&d, "dup", false).await;
    let e = Mailbox::connect(d.path(), "dup", 0, false, soon())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, MailboxError::NotUnique(n) if n == "dup"),
        "{e}"
    );
    let core: conn_core::Error = e.into();
    assert_eq!(core.kind(), ErrorKind::AlreadyExists);
    assert!(
        core.to_string().contains("private name \"dup\" is taken"),
        "{core}"
    );
    first.kill();
}

#[tokio::test]
async fn groups_services_and_sizes() {
    let d = Daemon::start(&[]);
    let mut m = connect(&d, "e", false).await;
    let long = "g".repeat(40);
    assert!(matches!(
        m.join(&long, soon()).await.unwrap_err(),
        MailboxError::IllegalGroup(_)
    ));
    assert!(matches!(
        m.join("#e#local", soon()).await.unwrap_err(),
        MailboxError::IllegalGroup(_)
    ));
    // One client may be in at most MAX_GROUPS_PER_CLIENT groups.
    let mut lots = connect(&d, "lots", false).await;
    for i in 0..conn_mailbox::limits::MAX_GROUPS_PER_CLIENT {
        lots.join(&format!("g{i}"), soon()).await.unwrap();
    }
    let e = lots.join("one-more", soon()).await.unwrap_err();
    assert!(matches!(e, MailboxError::TooManyGroups { .. }), "{e}");
    lots.join("g0", soon()).await.unwrap(); // joining again is no new group
    lots.kill();
    // Leaving a group one is not in: refused by the daemon.
    assert!(
        matches!(m.leave("never", soon()).await.unwrap_err(), MailboxError::IllegalGroup(g) if g == "never")
    );

    let many: Vec<String> = (0..=MAX_GROUPS_PER_MESSAGE)
        .map(|i| format!("g{i}"))
        .collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let e = m
        .multicast(Service::AGREED, &many, 0, b"x")
        .await
        .unwrap_err();
    assert!(
        matches!(e, MailboxError::TooManyGroups { count, .. } if count == MAX_GROUPS_PER_MESSAGE + 1),
        "{e}"
    );
    assert!(matches!(
        m.multicast(Service::AGREED, &[], 0, b"x")
            .await
            .unwrap_err(),
        MailboxError::TooManyGroups { count: 0, .. }
    ));
    assert!(matches!(
        m.multicast(Service::AGREED, &[long.as_str()], 0, b"x")
            .await
            .unwrap_err(),
        MailboxError::IllegalGroup(_)
    ));

    for bits in [0, 0x3, 0x80, 0x40] {
        let e = m
            .multicast(Service::from_bits(bits), &["x"], 0, b"x")
            .await
            .unwrap_err();
        assert!(
            matches!(e, MailboxError::IllegalService(b) if b == bits),
            "{bits:#x}: {e}"
        );
        assert_eq!(e.kind(), ErrorKind::InvalidType);
    }

    let big = vec![7u8; MAX_MESSAGE + 1];
    let e = m
        .multicast(Service::AGREED, &["x"], 0, &big)
        .await
        .unwrap_err();
    assert!(
        matches!(e, MailboxError::MessageTooLong { len, max } if len == MAX_MESSAGE + 1 && max == MAX_MESSAGE)
    );
    assert_eq!(e.kind(), ErrorKind::MessageTooLong);
    // Exactly the maximum goes through.
    m.join("x", soon()).await.unwrap();
    m.multicast(Service::AGREED, &["x"], 0, &big[..MAX_MESSAGE])
        .await
        .unwrap();
    assert_eq!(message(&mut m).await.data().len(), MAX_MESSAGE);
    m.disconnect(soon()).await.unwrap();
}

#[tokio::test]
async fn buffer_too_short_keeps_or_drops() {
    let d = Daemon::start(&[]);
    let mut m = connect(&d, "buf", false).await;
    let me = m.private_group().to_string();
    for body in [&b"first message"[..], b"second message", b"3rd"] {
        m.multicast(Service::FIFO, &[me.as_str()], 0, body)
            .await
            .unwrap();
    }
    let mut small = [0u8; 4];
    let e = m.receive_into(&mut small, false, soon()).await.unwrap_err();
    assert!(
        matches!(
            e,
            MailboxError::BufferTooShort {
                needed: 13,
                dropped: false
            }
        ),
        "{e}"
    );
    assert_eq!(e.kind(), ErrorKind::NoBufferSpace);
    // Still queued: a big enough buffer gets it.
    let mut big = [0u8; 64];
    let (_, n) = m.receive_into(&mut big, false, soon()).await.unwrap();
    assert_eq!(&big[..n], b"first message");
    // Asked to drop: gone, the next call gets the one after.
    let e = m.receive_into(&mut small, true, soon()).await.unwrap_err();
    assert!(
        matches!(
            e,
            MailboxError::BufferTooShort {
                needed: 14,
                dropped: true
            }
        ),
        "{e}"
    );
    let (_, n) = m.receive_into(&mut small, false, soon()).await.unwrap();
    assert_eq!(&small[..n], b"3rd");
    // Nothing more: a deadline error, not a hang.
    let e = m
        .receive(Deadline::after(std::time::Duration::from_millis(50)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    m.kill();
}

#[tokio::test]
async fn garbage_ends_only_that_client() {
    let d = Daemon::start(&[]);
    let mut good = connect(&d, "good", true).await;
    good.join("g", soon()).await.unwrap();
    membership(&mut good).await;

    // A client that says hello, joins, then sends a length no frame may have.
    let mut bad = IpcStream::connect(d.path(), soon()).await.unwrap();
    bad.write_all(
        &Repr::Connect {
            version: 1,
            priority: 0,
            membership: false,
            name: "bad",
        }
        .to_vec()
        .unwrap(),
    )
    .await
    .unwrap();
    bad.write_all(&Repr::Join { req: 1, group: "g" }.to_vec().unwrap())
        .await
        .unwrap();
    let joined = wait_change(&mut good, "g", Cause::Join, "#bad#local").await;
    assert_eq!(joined.members, ["#good#local", "#bad#local"]);
    bad.write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3])
        .await
        .unwrap();
    let lost = wait_change(&mut good, "g", Cause::Network, "#bad#local").await;
    assert_eq!(lost.members, ["#good#local"]);
    let log = d.wait_log("bad frame");
    assert!(
        log.contains("#bad#local") && log.contains("mailbox frame: length 4294967295"),
        "{log}"
    );
    // The bad client's connection is gone.
    let mut rest = Vec::new();
    let _ = bad.read_to_end(&mut rest).await;

    // Garbage before any hello, and a frame of an unknown kind after one.
    let mut pre = IpcStream::connect(d.path(), soon()).await.unwrap();
    pre.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    d.wait_log("client ended before hello");
    let mut odd = IpcStream::connect(d.path(), soon()).await.unwrap();
    odd.write_all(
        &Repr::Connect {
            version: 1,
            priority: 0,
            membership: false,
            name: "odd",
        }
        .to_vec()
        .unwrap(),
    )
    .await
    .unwrap();
    odd.write_all(&[0, 0, 0, 1, 99]).await.unwrap();
    d.wait_log("unknown frame kind 99");

    // The daemon and the good client go on.
    good.multicast(Service::AGREED, &["g"], 0, b"still here")
        .await
        .unwrap();
    match next(&mut good).await {
        Event::Message(m) => assert_eq!(m.data(), b"still here"),
        other => panic!("{other:?}"),
    }
    let newcomer = connect(&d, "bad", false).await; // the name is free again
    newcomer.kill();
    good.disconnect(soon()).await.unwrap();
}

#[test]
fn mode_with_an_abstract_socket_is_an_error_that_says_why() {
    let name = format!("@{}", unique("mailboxd-abstract"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailboxd"))
        .args(["--socket", &name, "--mode", "660"])
        .output()
        .expect("run mailboxd");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "mailboxd took --mode for {name}: {err}"
    );
    assert!(err.contains("abstract socket has no file"), "{err}");
    assert!(err.contains(&name), "{err}");
}

#[tokio::test]
async fn with_json_mailboxd_prints_its_shutdown_report_as_one_json_object() {
    let mut d = Daemon::start(&["--json"]);
    let polite = connect(&d, "polite", false).await;
    polite.disconnect(soon()).await.unwrap();
    // A client that vanishes without a word: cut by the peer, not closed.
    let rude = connect(&d, "rude", false).await;
    drop(rude);
    d.wait_log("without a goodbye");
    d.sigterm();
    assert!(d.wait(), "mailboxd exits 0 on SIGTERM");
    let out = d.out_text();
    let report: serde_json::Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("one JSON object on stdout ({e}): {out:?}"));
    // Daemon::start's probe (connected and closed, no hello), polite, rude.
    assert_eq!(report["accepted"], 3, "{report}");
    assert_eq!(report["closed"], 2, "{report}");
    assert_eq!(report["cut_by_peer"], 1, "{report}");
    assert_eq!(report["killed"], 0, "{report}");
    assert_eq!(report["errors"]["total"], 0, "{report}");
}
