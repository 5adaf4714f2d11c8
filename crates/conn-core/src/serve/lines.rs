use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tower_service::Service;

use super::Incoming;
use crate::{Connection, Deadline, Error, Result};

/// A complete connection handler for line-based request/response protocols:
/// each `\n`-terminated line is a request to `service`, each response is
/// written back as one line (an error as `ERR <error>`).
///
/// It ends connections the way the serve loop asks: when the peer half-closes
/// it closes in order; when graceful shutdown begins, an idle connection (no
/// partial request buffered) half-closes and closes in order at once, and a
/// connection with a request in flight answers it first.
///
/// See [`serve`](super::serve) for an example.
pub fn lines<S>(service: S) -> LineHandler<S> {
    LineHandler { service }
}

/// The handler [`lines`] makes.
#[derive(Clone, Debug)]
pub struct LineHandler<S> {
    service: S,
}

impl<C, S> Service<Incoming<C>> for LineHandler<S>
where
    C: Connection,
    S: Service<String, Response = String> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<Error> + Send,
{
    type Response = ();
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<()>> {
        // Readiness of the inner service is awaited per request.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, incoming: Incoming<C>) -> Self::Future {
        // One allocation per connection, not per request.
        Box::pin(handle(self.service.clone(), incoming))
    }
}

async fn handle<C, S>(mut service: S, incoming: Incoming<C>) -> Result<()>
where
    C: Connection,
    S: Service<String, Response = String>,
    S::Error: Into<Error>,
{
    let (conn, graceful) = incoming.into_parts();
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    loop {
        let idle = line.is_empty() && reader.buffer().is_empty();
        if graceful.is_shutting_down() && idle {
            break;
        }
        let read = tokio::select! {
            biased;
            read = reader.read_line(&mut line) => read?,
            // A partial line stays in `line`; the loop head decides whether
            // the connection was idle.
            () = graceful.wait(), if !graceful.is_shutting_down() => continue,
        };
        if read == 0 && line.is_empty() {
            break; // the peer ended its side
        }
        let request = line.trim_end_matches(['\r', '\n']).to_owned();
        line.clear();
        let answer = match std::future::poll_fn(|cx| service.poll_ready(cx)).await {
            Ok(()) => service.call(request).await.map_err(Into::into),
            Err(e) => Err(e.into()),
        };
        let mut out = match answer {
            Ok(response) => response,
            Err(e) => format!("ERR {e}"),
        };
        out.push('\n');
        reader.get_mut().write_all(out.as_bytes()).await?;
        if read == 0 {
            break; // the request was the peer's last words
        }
    }
    reader.into_inner().close(Deadline::NEVER).await
}
