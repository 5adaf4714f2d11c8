//! A server over `mem://`, shut down gracefully with calls in flight.

use std::io::Write;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tower::ServiceBuilder;

use connkit::core::layer::DeadlineLayer;
use connkit::core::mem::{MemListener, MemStream};
use connkit::core::serve::{lines, serve};
use connkit::core::{Connection, Deadline, Error, Result};

/// "sleep N" answers after N ms; anything else is echoed.
async fn answer(req: String) -> Result<String> {
    match req.strip_prefix("sleep ").map(str::parse::<u64>) {
        Some(Ok(ms)) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(format!("slept {ms} ms"))
        }
        _ => Ok(req),
    }
}

async fn dial(name: &str) -> Result<BufReader<MemStream>> {
    Ok(BufReader::new(
        MemStream::connect(name, Deadline::NEVER).await?,
    ))
}

async fn read_rest(c: &mut BufReader<MemStream>) -> Result<String> {
    let mut s = String::new();
    c.read_to_string(&mut s).await?;
    Ok(if s.is_empty() {
        "end-of-stream".into()
    } else {
        format!("{s:?} then end-of-stream")
    })
}

pub(super) async fn run(out: &mut dyn Write) -> Result<()> {
    let name = format!("demo-{}", std::process::id());
    writeln!(
        out,
        "\n== serve over mem://{name}: line protocol, Deadline(2 s) per call, drain 300 ms"
    )?;
    let service = ServiceBuilder::new()
        .layer(DeadlineLayer::new(Duration::from_secs(2)))
        .service_fn(answer);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        serve(MemListener::bind(&name)?, lines(service))
            .with_graceful_shutdown(
                async {
                    stopped.await.ok();
                },
                Duration::from_millis(300),
            )
            .into_future(),
    );

    let mut idle = dial(&name).await?;
    idle.get_mut().write_all(b"hello\n").await?;
    let mut line = String::new();
    idle.read_line(&mut line).await?;
    writeln!(out, "  idle client:  \"hello\" -> {:?}", line.trim_end())?;

    let mut busy = dial(&name).await?;
    busy.get_mut().write_all(b"sleep 100\n").await?;
    let mut stuck = dial(&name).await?;
    stuck.get_mut().write_all(b"sleep 60000\n").await?;
    tokio::time::sleep(Duration::from_millis(10)).await;

    writeln!(
        out,
        "  graceful shutdown: 1 idle, 1 busy (sleep 100), 1 overrunning (sleep 60000)"
    )?;
    stop.send(()).ok();

    let seen = read_rest(&mut idle).await?;
    idle.into_inner().close(Deadline::NEVER).await?;
    writeln!(
        out,
        "  idle client saw:  {seen} at once (half-closed); closed in order"
    )?;
    let seen = read_rest(&mut busy).await?;
    busy.into_inner().close(Deadline::NEVER).await?;
    writeln!(out, "  busy client saw:  {seen}")?;
    let seen = read_rest(&mut stuck).await?;
    stuck.into_inner().kill();
    writeln!(
        out,
        "  overrunning client saw: {seen} after the drain deadline (killed)"
    )?;

    let report = server.await.map_err(Error::from)??;
    writeln!(out, "  shutdown report: {report}")?;
    Ok(())
}
