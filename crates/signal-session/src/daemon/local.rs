//! Clients on the Unix socket.

use std::sync::Arc;
use std::time::Duration;

use conn_core::serve::Incoming;
use conn_core::{Connection, Deadline, Result};
use conn_ipc::IpcStream;

use super::array::{self, NodeRequest};
use super::state::{Client, Daemon};
use crate::Caller;
use crate::wire::Message;
use crate::wire::io::{read_message, write_message};

/// Serves one client until it hangs up, sends bytes that are not a frame
/// (logged, connection ended; the daemon goes on), or shutdown begins.
pub(crate) async fn serve_client(daemon: Arc<Daemon>, incoming: Incoming<IpcStream>) -> Result<()> {
    let (mut conn, graceful) = incoming.into_parts();
    let cred = conn.peer_cred()?;
    let client = Client {
        pid: cred.pid,
        caller: Caller::of_process(cred.pid, cred.uid),
        gid: cred.gid,
    };
    loop {
        let msg = tokio::select! {
            biased;
            () = graceful.wait() => break,
            msg = read_message(&mut conn) => msg,
        };
        let msg = match msg {
            Ok(Some(msg)) => msg,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(
                    "client pid {} uid {}: {e}; ending its connection",
                    client.pid,
                    client.caller.euid
                );
                // Tell it why, if it still listens, then close: closing
                // drains what it sent, so the answer is not lost to a
                // reset. A client that never hangs up costs us 200 ms.
                let patience = Deadline::after(Duration::from_millis(200));
                let _ = patience
                    .run(write_message(&mut conn, &Message::error(&e)))
                    .await;
                let _ = conn.close(patience).await;
                return Ok(());
            }
        };
        let answer = match msg {
            Message::Kill {
                ash,
                sig,
                atomic,
                array: Some(array),
                deadline_ms,
            } => {
                let deadline = Deadline::after(Duration::from_millis(u64::from(deadline_ms)));
                let report = match NodeRequest::new(client.caller, ash, sig, atomic) {
                    Ok(request) => array::kill_array(&daemon, &array, request, deadline).await,
                    Err(e) => Err(e),
                };
                report
                    .map(Message::ArrayReport)
                    .unwrap_or_else(|e| Message::error(&e))
            }
            msg => daemon.handle(client, msg),
        };
        write_message(&mut conn, &answer).await?;
    }
    conn.close(Deadline::after(Duration::from_secs(1))).await
}
