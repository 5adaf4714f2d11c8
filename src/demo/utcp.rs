//! Userspace TCP over a MemLink: two smoltcp stacks in this process, no
//! kernel in the path; connect, transfer, close and kill as the other
//! stack saw them.

use std::io::Write;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use connkit::core::{Connection, Deadline, Error, Result};
use connkit::utcp::{MemLink, Stack, UtcpListener, UtcpStream};

async fn peer_saw(conn: &mut UtcpStream) -> String {
    let mut got = Vec::new();
    match conn.read_to_end(&mut got).await {
        Ok(_) if got.is_empty() => "end-of-stream (FIN)".into(),
        Ok(n) => format!("{n} bytes then end-of-stream (FIN)"),
        Err(e) => Error::from(e).kind().to_string(),
    }
}

pub(super) async fn run(out: &mut dyn Write) -> Result<()> {
    let (a, b) = MemLink::pair();
    let server = Stack::builder(a)
        .address("10.0.7.1/24".parse().expect("a cidr"))
        .build()?;
    let client = Stack::builder(b)
        .address("10.0.7.2/24".parse().expect("a cidr"))
        .build()?;
    writeln!(
        out,
        "\n== utcp://10.0.7.1:80: userspace TCP (smoltcp), two stacks on a MemLink"
    )?;
    let within = Deadline::after(Duration::from_secs(5));
    let mut listener = UtcpListener::bind(&server, 80, 4)?;
    let to = "10.0.7.1:80".parse().expect("an address");

    let mut c = UtcpStream::connect(&client, to, within).await?;
    let mut s = listener.accept(within).await?;
    writeln!(
        out,
        "  connect: {} -> {}, the server accepted it as {}",
        c.local_addr(),
        c.peer_addr(),
        s.id()
    )?;
    let data: Vec<u8> = (0..256 * 1024u32).map(|i| (i % 251) as u8).collect();
    // Written by its own task: more than the windows hold, so the server
    // must read while the client writes.
    let writer = tokio::spawn(async move {
        c.write_all(&data).await?;
        c.done(within).await?;
        Ok::<_, Error>(c)
    });
    let seen = peer_saw(&mut s).await;
    let mut c = writer.await??;
    writeln!(out, "  transfer: the server read {seen}")?;

    let closing = tokio::spawn(s.close(within));
    let seen = peer_saw(&mut c).await;
    c.close(within).await?;
    let closed = closing.await?;
    writeln!(
        out,
        "  close: the client saw {seen}; the server's close returned {}",
        closed.map_or_else(|e| e.to_string(), |()| "Ok".into())
    )?;

    let c = UtcpStream::connect(&client, to, within).await?;
    let mut s = listener.accept(within).await?;
    c.kill();
    let seen = peer_saw(&mut s).await;
    let after = s.close(within).await;
    writeln!(out, "  kill: the server saw {seen}")?;
    writeln!(
        out,
        "  close after the reset: {}",
        after.map_or_else(|e| e.kind().to_string(), |()| "Ok".into())
    )?;
    Ok(())
}
