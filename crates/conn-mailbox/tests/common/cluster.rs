//! The clustered mailboxd of these tests: `conn_mailbox::testbed`'s, run
//! from the binary cargo built for them; the testbed formed, daemons
//! started, clients connected, events awaited.

use std::time::Duration;

use conn_core::Deadline;
use conn_cpg::testbed::{self, Cluster};
use conn_mailbox::{Cause, Event, Mailbox, Membership};

pub type ClusterDaemon = conn_mailbox::testbed::ClusterDaemon;
type Daemon = ClusterDaemon;

/// The `mailboxd` binary built with this test.
pub fn mailboxd() -> &'static std::path::Path {
    env!("CARGO_BIN_EXE_mailboxd").as_ref()
}

/// How long a cluster event may take (corosync's token is 1 s here; a lost
/// node is declared after a few of them).
pub const WITHIN: Duration = Duration::from_secs(60);

pub fn within() -> Deadline {
    Deadline::after(WITHIN)
}

/// The testbed, formed, or a loud skip where it cannot run (CI installs
/// corosync and runs as root, so there it runs).
pub fn cluster() -> Option<Cluster> {
    if let Some(why) = testbed::unavailable() {
        conn_test_support::skip(
            "conn-mailbox cluster tests",
            format!("the corosync testbed {why}"),
        );
        return None;
    }
    let cluster = Cluster::start(3).expect("start the testbed");
    if let Err(e) = cluster.wait_until_formed(WITHIN) {
        panic!("{e}\nnode 1 logged:\n{}", cluster.log(0));
    }
    Some(cluster)
}

/// Starts `mailboxd --cluster corosync` named `n{i+1}` on node `i` and
/// waits until it accepts clients (it does once it holds the state).
pub fn start(cluster: &Cluster, i: usize) -> Daemon {
    let mut d = Daemon::spawn_in(mailboxd(), cluster, i);
    ready(&mut d, i);
    d
}

pub fn ready(d: &mut Daemon, i: usize) {
    if let Err(e) = d.wait_ready(WITHIN) {
        panic!("mailboxd on node {}: {e}", i + 1);
    }
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub async fn connect(d: &Daemon, name: &str) -> Mailbox {
    Mailbox::connect(&d.socket, name, 0, true, within())
        .await
        .unwrap_or_else(|e| panic!("connect {name}: {e}"))
        .0
}

pub async fn next(m: &mut Mailbox) -> Event {
    m.receive(within())
        .await
        .unwrap_or_else(|e| panic!("receive on {}: {e}", m.private_group()))
}

/// Membership messages of `group` until one with `cause` about `who`;
/// messages on the way are skipped.
pub async fn wait_change(m: &mut Mailbox, group: &str, cause: Cause, who: &str) -> Membership {
    loop {
        if let Event::Membership(ms) = next(m).await
            && ms.group == group
            && ms.cause == cause
            && ms.changed == who
        {
            return ms;
        }
    }
}
