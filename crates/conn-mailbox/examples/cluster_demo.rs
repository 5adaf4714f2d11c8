//! `cargo xtask cluster-demo`: three corosync nodes on this machine (the
//! conn-cpg testbed), a clustered mailboxd on each, one member per node in
//! group `demo`; messages, a cut link, the heal; then what each member saw.
//!
//! Run as root with corosync installed: `cluster_demo PATH-TO-MAILBOXD`.

use std::time::Duration;

use conn_core::Deadline;
use conn_cpg::testbed::{self, Cluster};
use conn_mailbox::testbed::ClusterDaemon;
use conn_mailbox::{Cause, Event, Mailbox, Service};

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(60))
}

/// A member and everything it received, as lines.
struct Member {
    mbox: Mailbox,
    saw: Vec<String>,
}

impl Member {
    /// Receives (and records) until an event `done` accepts.
    async fn until(&mut self, done: impl Fn(&Event) -> bool) {
        loop {
            let ev = self.mbox.receive(deadline()).await.expect("receive");
            self.saw.push(match &ev {
                Event::Message(m) => format!(
                    "message  from {:8} {:?}",
                    m.sender(),
                    String::from_utf8_lossy(m.data())
                ),
                Event::Membership(m) => format!(
                    "view {:<3} {:10} {:8} members {:?}",
                    m.view,
                    m.cause.as_str(),
                    m.changed,
                    m.members
                ),
            });
            if done(&ev) {
                return;
            }
        }
    }
}

fn change(cause: Cause, who: &str) -> impl Fn(&Event) -> bool + '_ {
    move |ev| matches!(ev, Event::Membership(m) if m.cause == cause && m.changed == who)
}

fn says(text: &str) -> impl Fn(&Event) -> bool + '_ {
    move |ev| matches!(ev, Event::Message(m) if m.data() == text.as_bytes())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mailboxd = std::env::args()
        .nth(1)
        .ok_or("usage: cluster_demo MAILBOXD")?;
    if let Some(why) = testbed::unavailable() {
        return Err(format!("the corosync testbed {why}").into());
    }
    println!("cluster-demo: starting three corosync nodes (network namespaces, one bridge)");
    let cluster = Cluster::start(3)?;
    cluster.wait_until_formed(Duration::from_secs(60))?;
    println!("cluster-demo: formed: {}", cluster.name());
    // Killed, their sockets and logs removed, with the demo whatever happens.
    let mut daemons = Vec::new();
    for i in 0..3 {
        let mut d = ClusterDaemon::spawn_in(mailboxd.as_ref(), &cluster, i);
        d.wait_ready(Duration::from_secs(60))?;
        println!(
            "cluster-demo: mailboxd n{} up in {}",
            i + 1,
            cluster.node(i).netns()
        );
        daemons.push(d);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let members = rt.block_on(async {
        let mut members: Vec<Member> = Vec::new();
        for (socket, name) in daemons
            .iter()
            .map(|d| &d.socket)
            .zip(["alice", "bob", "carol"])
        {
            let (mut mbox, me) = Mailbox::connect(socket, name, 0, true, deadline()).await?;
            mbox.join("demo", deadline()).await?;
            members.push(Member {
                mbox,
                saw: Vec::new(),
            });
            for m in &mut members {
                m.until(change(Cause::Join, &me)).await;
            }
        }
        for i in 0..3 {
            let text = format!("hello from node {}", i + 1);
            members[i]
                .mbox
                .multicast(Service::AGREED, &["demo"], 0, text.as_bytes())
                .await?;
            for m in &mut members {
                m.until(says(&text)).await;
            }
        }
        println!("cluster-demo: cutting node 3's link");
        cluster.cut(2)?;
        for m in &mut members[..2] {
            m.until(change(Cause::Network, "#carol#n3")).await;
        }
        members[2].until(change(Cause::Network, "#bob#n2")).await;
        members[0]
            .mbox
            .multicast(Service::AGREED, &["demo"], 0, b"while node 3 is cut off")
            .await?;
        for m in &mut members[..2] {
            m.until(says("while node 3 is cut off")).await;
        }
        println!("cluster-demo: healing node 3's link");
        cluster.heal(2)?;
        for m in &mut members {
            m.until(change(Cause::Join, "#carol#n3")).await;
        }
        members[1]
            .mbox
            .multicast(Service::AGREED, &["demo"], 0, b"all together again")
            .await?;
        for m in &mut members {
            m.until(says("all together again")).await;
        }
        Ok::<_, Box<dyn std::error::Error>>(members)
    })?;
    for (m, node) in members.iter().zip(1..) {
        println!("\n{} on node {node} saw:", m.mbox.private_group());
        for line in &m.saw {
            println!("  {line}");
        }
    }
    drop(daemons);
    drop(cluster);
    println!("\ncluster-demo: torn down");
    Ok(())
}
