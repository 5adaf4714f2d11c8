//! A daemon with `--tcp`: clients over TCP and over the Unix socket share
//! groups; TCP clients have no known uid, so access-listed groups refuse them.

mod common;

use common::*;
use conn_mailbox::{Cause, Mailbox, MailboxError, Service};

#[tokio::test]
async fn tcp_clients_share_groups_and_have_no_uid() {
    let acl = std::env::temp_dir().join(format!("{}.toml", unique("mailbox-tcp-acl")));
    std::fs::write(&acl, "[groups.local-only]\njoin = [0]\n").unwrap();
    let d = Daemon::start(&["--tcp", "127.0.0.1:0", "--acl", acl.to_str().unwrap()]);
    let log = d.wait_log("listening on tcp ");
    let addr = log
        .lines()
        .find_map(|l| l.split("listening on tcp ").nth(1))
        .unwrap()
        .trim()
        .to_string();
    let mut local = connect(&d, "local", true).await;
    local.join("mixed", soon()).await.unwrap();
    membership(&mut local).await;

    let (mut remote, me) = Mailbox::connect(format!("tcp://{addr}"), "remote", 0, true, soon())
        .await
        .unwrap();
    assert_eq!(me, "#remote#local");
    let e = remote.join("local-only", soon()).await.unwrap_err();
    assert!(
        matches!(e, MailboxError::NotAllowed { op: "join", .. }),
        "{e}"
    );
    remote.join("mixed", soon()).await.unwrap();
    wait_change(&mut local, "mixed", Cause::Join, "#remote#local").await;
    remote
        .multicast(Service::AGREED, &["mixed"], 0, b"over tcp")
        .await
        .unwrap();
    assert_eq!(message(&mut local).await.data(), b"over tcp");
    remote.disconnect(soon()).await.unwrap();
    let gone = wait_change(&mut local, "mixed", Cause::Disconnect, "#remote#local").await;
    assert_eq!(gone.members, ["#local#local"]);
    local.disconnect(soon()).await.unwrap();
    std::fs::remove_file(&acl).ok();
}
