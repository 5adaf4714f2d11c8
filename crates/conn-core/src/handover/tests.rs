use std::os::fd::OwnedFd;
use std::time::Duration;

use super::*;

fn path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "conn-core-handover-{name}-{}.sock",
        std::process::id()
    ))
}

fn offered() -> (std::net::TcpListener, Vec<NamedFd>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let fd = OwnedFd::from(listener.try_clone().unwrap());
    let name = format!("tcp://{}", listener.local_addr().unwrap());
    (listener, vec![NamedFd { name, fd }])
}

#[tokio::test]
async fn a_successor_that_hangs_up_before_confirming_changes_nothing() {
    let path = path("abandon");
    let (listener, listeners) = offered();
    let mut offer = Offer::bind(&path, listeners).unwrap();
    let successor = tokio::spawn({
        let path = path.clone();
        async move {
            let received = take(&path).await.unwrap().unwrap();
            assert_eq!(received.listeners.len(), 1);
            // Dies here: its copies close, the connection with them.
            drop(received);
        }
    });
    match offer.next().await.unwrap() {
        Attempt::Abandoned { error, .. } => {
            assert_eq!(error.kind(), crate::ErrorKind::UnexpectedEof, "{error}")
        }
        other => panic!("expected Abandoned, got {other:?}"),
    }
    successor.await.unwrap();
    // The server's own listener still accepts, and the offer still stands.
    let addr = listener.local_addr().unwrap();
    let _client = std::net::TcpStream::connect(addr).unwrap();
    listener.accept().unwrap();
    assert!(path.exists());

    // A successor that declines: the server is told why.
    let successor = tokio::spawn({
        let path = path.clone();
        async move {
            let received = take(&path).await.unwrap().unwrap();
            received.confirmation.refuse("not mine").await.unwrap();
        }
    });
    match offer.next().await.unwrap() {
        Attempt::Declined { why, .. } => assert_eq!(why, "not mine"),
        other => panic!("expected Declined, got {other:?}"),
    }
    successor.await.unwrap();
    drop(offer);
    assert!(!path.exists(), "the offer removes its socket file");
}

#[tokio::test]
async fn a_successor_that_never_confirms_is_abandoned_at_the_deadline() {
    let path = path("slow");
    let (_listener, listeners) = offered();
    let mut offer = Offer::bind(&path, listeners)
        .unwrap()
        .confirm_within(Duration::from_millis(100));
    let successor = tokio::spawn({
        let path = path.clone();
        async move {
            let received = take(&path).await.unwrap().unwrap();
            tokio::time::sleep(Duration::from_secs(1)).await;
            drop(received);
        }
    });
    match offer.next().await.unwrap() {
        Attempt::Abandoned { error, .. } => {
            assert_eq!(error.kind(), crate::ErrorKind::TimedOut, "{error}")
        }
        other => panic!("expected Abandoned, got {other:?}"),
    }
    successor.abort();
}

#[tokio::test]
async fn a_stale_offer_file_is_replaced_and_a_live_one_is_in_use() {
    let path = path("stale");
    let stale = std::os::unix::net::UnixListener::bind(&path).unwrap();
    drop(stale); // the file stays, nobody listens
    assert!(
        take(&path).await.unwrap().is_none(),
        "a stale file offers nothing"
    );
    let offer = Offer::bind(&path, Vec::new()).unwrap();
    let err = Offer::bind(&path, Vec::new()).unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::AddrInUse, "{err}");
    drop(offer);
    assert!(!path.exists());
}

#[tokio::test]
async fn a_file_that_is_not_a_socket_is_never_removed() {
    let path = path("regular");
    std::fs::write(&path, b"keep me").unwrap();
    assert!(take(&path).await.unwrap().is_none());
    let err = Offer::bind(&path, Vec::new()).unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::AddrInUse, "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
    std::fs::remove_file(&path).unwrap();
}
