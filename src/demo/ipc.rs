//! done, close and kill on a real Unix socket, and what the peer saw.

use std::io::Write;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use connkit::core::{Connection, Deadline, Error, Result};
use connkit::ipc::{IpcListener, IpcStream};

/// Reads to end-of-stream and says what arrived.
async fn seen(conn: &mut IpcStream) -> String {
    let mut got = Vec::new();
    match conn.read_to_end(&mut got).await {
        Ok(_) if got.is_empty() => "end-of-stream".into(),
        Ok(_) => format!("{:?} then end-of-stream", String::from_utf8_lossy(&got)),
        Err(e) => format!("error: {}", Error::from(e)),
    }
}

pub(super) async fn run(out: &mut dyn Write) -> Result<()> {
    let path = std::env::temp_dir().join(format!("connkit-demo-{}.sock", std::process::id()));
    let mut listener = IpcListener::options().mode(0o600).bind(&path)?;
    writeln!(
        out,
        "\n== ipc://{}: done, close and kill on a Unix socket",
        path.display()
    )?;
    let within = Deadline::after(Duration::from_secs(5));

    // done: a half-close; the peer reads the end, this side still receives.
    let mut client = IpcStream::connect(&path, within).await?;
    let mut server = listener.accept(within).await?;
    client.write_all(b"question").await?;
    client.done(within).await?;
    let server_saw = seen(&mut server).await;
    server.write_all(b"answer").await?;
    server.close(within).await?;
    let client_got = seen(&mut client).await;
    client.close(within).await?;
    writeln!(
        out,
        "  done:  the server saw {server_saw}; the client still received {client_got}"
    )?;

    // close: tell the peer, wait for its own end, release.
    let client = IpcStream::connect(&path, within).await?;
    let mut server = listener.accept(within).await?;
    let closing = tokio::spawn(client.close(within));
    let server_saw = seen(&mut server).await;
    server.close(within).await?;
    let result = closing.await?;
    writeln!(
        out,
        "  close: the server saw {server_saw}, ended its side, and the client's close returned {}",
        match result {
            Ok(()) => "Ok".to_string(),
            Err(e) => e.to_string(),
        }
    )?;

    // kill: let go without a word; the peer sees only what the kernel shows.
    let client = IpcStream::connect(&path, within).await?;
    let mut server = listener.accept(within).await?;
    client.kill();
    let server_saw = seen(&mut server).await;
    let write = match server.write_all(b"anyone there?").await {
        Ok(()) => "succeeded".to_string(),
        Err(e) => Error::from(e).to_string(),
    };
    server.kill();
    writeln!(
        out,
        "  kill:  the server saw {server_saw} with no handshake; its next write: {write}"
    )?;
    drop(listener);
    writeln!(
        out,
        "  the socket file is gone with the listener: {}",
        !path.exists()
    )?;
    Ok(())
}
