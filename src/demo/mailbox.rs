//! Group mailboxes: an embedded daemon, three members, one order for all,
//! and a disconnect and a kill as the others saw them.

use std::io::Write;
use std::time::Duration;

use connkit::core::{Deadline, Error, Result};
use connkit::mailbox::daemon::{DaemonConfig, run as daemon};
use connkit::mailbox::{Event, Mailbox, Membership, Service};

fn err(e: connkit::mailbox::MailboxError) -> Error {
    e.into()
}

async fn membership(m: &mut Mailbox, within: Deadline) -> Result<Membership> {
    loop {
        if let Event::Membership(ms) = m.receive(within).await.map_err(err)? {
            return Ok(ms);
        }
    }
}

pub(super) async fn run(out: &mut dyn Write) -> Result<()> {
    let socket =
        std::env::temp_dir().join(format!("connkit-demo-mailbox-{}.sock", std::process::id()));
    let mut config = DaemonConfig::new(&socket);
    config.name = "demo".into();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(daemon(config, async {
        stopped.await.ok();
    }));
    writeln!(
        out,
        "\n== mailboxd (embedded) on {}: three members of group \"demo\"",
        socket.display()
    )?;
    let within = Deadline::after(Duration::from_secs(5));
    connkit::mailbox::daemon::wait_ready(&socket, within).await?;

    let mut members = Vec::new();
    for name in ["a", "b", "c"] {
        let (mut m, _) = Mailbox::connect(&socket, name, 0, true, within)
            .await
            .map_err(err)?;
        m.join("demo", within).await.map_err(err)?;
        members.push(m);
    }
    // Everyone has seen all three joins before anyone sends.
    for (i, m) in members.iter_mut().enumerate() {
        for _ in i..3 {
            membership(m, within).await?;
        }
    }

    // Three senders at once, two messages each; the daemon orders them.
    let mut tasks = Vec::new();
    for (i, mut m) in members.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let me = ["a", "b", "c"][i];
            for n in 1..=2 {
                m.multicast(Service::AGREED, &["demo"], 0, format!("{me}{n}").as_bytes())
                    .await?;
                tokio::task::yield_now().await;
            }
            let mut seen = Vec::new();
            while seen.len() < 6 {
                if let Event::Message(msg) = m.receive(within).await? {
                    seen.push(String::from_utf8_lossy(msg.data()).into_owned());
                }
            }
            Ok::<_, connkit::mailbox::MailboxError>((m, seen))
        }));
    }
    let mut members = Vec::new();
    let mut orders = Vec::new();
    for t in tasks {
        let (m, seen) = t.await?.map_err(err)?;
        members.push(m);
        orders.push(seen);
    }
    writeln!(
        out,
        "  a, b and c each sent 2 at once; a saw {}; the same order at all three: {}",
        orders[0].join(" "),
        orders.iter().all(|o| *o == orders[0])
    )?;

    let c = members.pop().expect("c");
    let b = members.pop().expect("b");
    let mut a = members.pop().expect("a");
    c.disconnect(within).await.map_err(err)?;
    let seen = membership(&mut a, within).await?;
    writeln!(
        out,
        "  c disconnected: a saw view {}, cause {}, members {}",
        seen.view,
        seen.cause.as_str(),
        seen.members.join(",")
    )?;
    b.kill();
    let seen = membership(&mut a, within).await?;
    writeln!(
        out,
        "  b killed:       a saw view {}, cause {} (no goodbye: the daemon only saw the socket close), members {}",
        seen.view,
        seen.cause.as_str(),
        seen.members.join(",")
    )?;
    a.disconnect(within).await.map_err(err)?;
    let _ = stop.send(());
    let report = server.await??;
    writeln!(out, "  mailboxd shutdown report: {report}")?;
    Ok(())
}
