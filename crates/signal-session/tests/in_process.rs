//! In-process members: tasks hear every signal, shutdown controllers and
//! connections take SIGTERM as "end gracefully" and SIGKILL as "end now".

use std::time::Duration;

use conn_core::layer::Shutdown;
use conn_core::mem::{MemListener, MemStream};
use conn_core::{Connection, Deadline, Error, ErrorKind, Listener};
use futures::StreamExt;
use signal_session::{Member, Outcome, Session, Signal, signal_local};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::task::JoinSet;
use tower::{ServiceBuilder, ServiceExt, service_fn};

/// Liveness only.
const PATIENCE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_task_member_hears_every_signal_in_order_and_leaves_when_dropped() {
    let session = Session::create().unwrap();
    let mut first = session.member();
    let second = session.member();

    session.signal(libc::SIGHUP).unwrap();
    session.signal(libc::SIGUSR1).unwrap();
    assert_eq!(first.next().await, Some(Signal::HUP));
    assert_eq!(first.next().await, Some(Signal::USR1));

    let second_id = second.id();
    drop(second);
    let report = session.signal(0).unwrap();
    assert_eq!(
        report.members,
        vec![(Member::Task(first.id()), Outcome::Checked)]
    );
    assert_eq!(report.outcome(Member::Task(second_id)), None);

    drop(session);
    assert_eq!(first.recv().await, None, "the stream ends with the session");
}

#[tokio::test]
async fn sigterm_triggers_a_shutdown_member_and_sigkill_aborts_its_calls() {
    let session = Session::create().unwrap();
    let shutdown = Shutdown::new();
    let id = session.add_shutdown(&shutdown);
    let svc = ServiceBuilder::new()
        .layer(shutdown.layer())
        .service(service_fn(|()| async {
            std::future::pending::<()>().await;
            Ok::<_, Error>(())
        }));
    let stuck = tokio::spawn(svc.clone().oneshot(()));
    tokio::time::timeout(PATIENCE, async {
        while shutdown.in_flight() == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();

    let report = signal_local(session.ash(), libc::SIGTERM).unwrap();
    assert_eq!(
        report.outcome(Member::Shutdown(id)),
        Some(Outcome::Signalled)
    );
    assert!(shutdown.is_triggered());
    let refused = svc.clone().oneshot(()).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ShuttingDown);
    assert_eq!(
        shutdown.in_flight(),
        1,
        "SIGTERM lets the call in flight go on"
    );

    let report = signal_local(session.ash(), libc::SIGUSR1).unwrap();
    assert_eq!(report.outcome(Member::Shutdown(id)), Some(Outcome::Ignored));

    signal_local(session.ash(), libc::SIGKILL).unwrap();
    let err = tokio::time::timeout(PATIENCE, stuck)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Canceled);
    assert!(session.remove(id));
}

/// An echo server whose connections are members of `session`; it stops
/// accepting when the session gets SIGTERM. Returns each handler's result.
async fn echo_server(session: &Session, mut listener: MemListener) -> Vec<std::io::Result<()>> {
    let mut stop = session.member();
    let mut handlers = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.until(Signal::TERM) => break,
            conn = listener.accept(Deadline::NEVER) => {
                let conn = session.add_connection(conn.unwrap(), PATIENCE);
                handlers.spawn(async move {
                    let mut conn = BufReader::new(conn);
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if conn.read_line(&mut line).await? == 0 {
                            return Ok(());
                        }
                        conn.get_mut().write_all(line.as_bytes()).await?;
                    }
                });
            }
        }
    }
    handlers.join_all().await
}

async fn connect_and_echo(name: &str, n: usize) -> Vec<BufReader<MemStream>> {
    let mut clients = Vec::new();
    for i in 0..n {
        let mut c = BufReader::new(MemStream::connect(name, Deadline::NEVER).await.unwrap());
        c.get_mut()
            .write_all(format!("hi {i}\n").as_bytes())
            .await
            .unwrap();
        let mut line = String::new();
        c.read_line(&mut line).await.unwrap();
        assert_eq!(line, format!("hi {i}\n"));
        clients.push(c);
    }
    clients
}

#[tokio::test]
async fn a_server_drains_its_connections_by_sigterm_to_their_session() {
    // The server owns its session; the test signals it by handle only.
    let listener = MemListener::bind("session-drain").unwrap();
    let session = Session::create().unwrap();
    let server_ash = session.ash();
    let task = tokio::spawn(async move { echo_server(&session, listener).await });
    let clients = connect_and_echo("session-drain", 3).await;

    let report = signal_local(server_ash, libc::SIGTERM).unwrap();
    assert_eq!(report.count(Outcome::Signalled), 4, "{report}"); // 3 connections + the accept loop
    let connections = report
        .members
        .iter()
        .filter(|(m, _)| matches!(m, Member::Connection(_)))
        .count();
    assert_eq!(connections, 3, "{report}");

    // Closed in order: each client reads the server's end, and the
    // handshake completes when the client ends its own side.
    for mut client in clients {
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        client
            .into_inner()
            .close(Deadline::after(PATIENCE))
            .await
            .unwrap();
    }
    let results = tokio::time::timeout(PATIENCE, task).await.unwrap().unwrap();
    assert_eq!(results.len(), 3);
    for r in results {
        r.unwrap();
    }
}

#[tokio::test]
async fn sigkill_kills_member_connections_without_telling_the_peer() {
    let session = Session::create().unwrap();
    let (ours, mut peer) = MemStream::pair();
    let conn = session.add_connection(ours, PATIENCE);
    let id = conn.id();
    let handler = tokio::spawn(async move {
        let mut conn = conn;
        let mut buf = [0u8; 16];
        let read = conn.read(&mut buf).await; // pending until the kill
        (read, conn)
    });
    tokio::task::yield_now().await;

    let report = session.signal(libc::SIGKILL).unwrap();
    assert_eq!(
        report.outcome(Member::Connection(id)),
        Some(Outcome::Signalled)
    );

    // The handler's pending read fails at once; no handshake was waited for.
    let (read, mut conn) = tokio::time::timeout(PATIENCE, handler)
        .await
        .unwrap()
        .unwrap();
    let err = Error::from(read.unwrap_err());
    assert_eq!(err.kind(), ErrorKind::ConnectionAborted);
    assert!(err.to_string().contains("killed by SIGKILL"), "{err}");
    assert!(conn.is_killed());
    let err = Error::from(conn.write_all(b"late").await.unwrap_err());
    assert_eq!(err.kind(), ErrorKind::ConnectionAborted);

    // The peer sees only what a dropped handle shows: end-of-stream, and
    // its writes break.
    let mut rest = Vec::new();
    assert_eq!(peer.read_to_end(&mut rest).await.unwrap(), 0);
    let err = Error::from(peer.write_all(b"anyone?").await.unwrap_err());
    assert_eq!(err.kind(), ErrorKind::BrokenPipe);

    // A killed connection is gone for later signals.
    let report = session.signal(libc::SIGTERM).unwrap();
    assert_eq!(
        report.outcome(Member::Connection(id)),
        Some(Outcome::AlreadyGone)
    );
}

#[tokio::test]
async fn sigterm_lets_a_reply_in_progress_finish_before_closing_in_order() {
    let session = Session::create().unwrap();
    let (ours, mut peer) = MemStream::pair();
    let mut conn = session.add_connection(ours, PATIENCE);

    session.signal(libc::SIGTERM).unwrap();
    assert!(conn.is_draining());
    // The handler was busy: its reply still goes out...
    conn.write_all(b"reply").await.unwrap();
    let mut got = [0u8; 5];
    peer.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"reply");
    // ...and its next read closes in order, ending when the peer ends.
    let closer = tokio::spawn(async move {
        let mut buf = [0u8; 8];
        conn.read(&mut buf).await
    });
    let mut rest = Vec::new();
    peer.read_to_end(&mut rest).await.unwrap();
    peer.close(Deadline::after(PATIENCE)).await.unwrap();
    let n = tokio::time::timeout(PATIENCE, closer)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(n, 0, "end-of-stream once closed in order");
}
