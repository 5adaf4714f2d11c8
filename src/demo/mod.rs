//! `connkit demo`: the whole lifecycle on every transport, no set-up.
//!
//! Each part prints what it did and what the other side saw. The output is
//! checked by `tests/demo.rs`.

mod ipc;
mod layers;
mod mailbox;
mod mem;
mod session;
mod tcp;
mod utcp;

use std::io::Write;

use connkit::core::Result;

/// Runs every part of the demo, writing its story to `out`.
pub async fn run(out: &mut dyn Write) -> Result<()> {
    writeln!(
        out,
        "connkit demo: one connection lifecycle over many transports\n"
    )?;
    layers::run(out).await?;
    mem::run(out).await?;
    ipc::run(out).await?;
    tcp::run(out).await?;
    session::run(out).await?;
    mailbox::run(out).await?;
    utcp::run(out).await?;
    writeln!(out, "\ndemo finished")?;
    Ok(())
}
