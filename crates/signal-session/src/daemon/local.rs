//! Clients on the Unix socket.

use std::sync::Arc;
use std::time::Duration;

use conn_core::budget::{Budget, Charge, TrimWhenGone, trim_heap};
use conn_core::serve::Incoming;
use conn_core::{Connection, Deadline, Error, Result};
use conn_ipc::IpcStream;

use super::array::{self, NodeRequest};
use super::state::{Client, Daemon};
use crate::Caller;
use conn_core::wire::Repr as _;

use crate::wire::Message;
use crate::wire::io::{FrameLimits, READ_ROOM, read_frame_within, write_message};

/// Reads one request within the client's budget: the first within the
/// hello timeout, any frame begun within the stall timeout of each byte.
/// The buffer's charge goes back once the frame is parsed.
async fn read_request(
    daemon: &Daemon,
    conn: &mut IpcStream,
    charge: &mut Charge,
    first: bool,
) -> Result<Option<Message>> {
    let mut grow = |size| {
        charge
            .resize(size)
            .map_err(|over| Error::from(over).during("read sessiond frame"))
    };
    let mut limits = FrameLimits {
        grow: Some(&mut grow),
        stall: Some(daemon.config.stall_timeout()),
    };
    let read = read_frame_within(conn, &mut limits);
    let bytes = if first {
        let within = daemon.config.hello_timeout();
        Deadline::after(within).run(read).await.map_err(|e| {
            e.during("wait for a new client's first frame")
                .detail(format!("silent for {within:?}"))
        })?
    } else {
        read.await
    };
    let parsed = match bytes {
        Ok(Some(bytes)) => Message::decode(&bytes[..]).map(Some).map_err(Error::from),
        Ok(None) => Ok(None),
        Err(e) => Err(e),
    };
    release(charge);
    parsed
}

/// Gives a frame buffer's charge back, and a large one's memory to the kernel.
fn release(charge: &mut Charge) {
    let large = charge.held() > READ_ROOM;
    let _ = charge.resize(0);
    if large {
        trim_heap();
    }
}

/// Serves one client until it hangs up, sends bytes that are not a frame
/// (logged, connection ended; the daemon goes on), passes its memory
/// budget, stays silent past the hello timeout, stalls inside a frame, or
/// shutdown begins.
pub(crate) async fn serve_client(
    daemon: Arc<Daemon>,
    budget: Arc<Budget>,
    incoming: Incoming<IpcStream>,
) -> Result<()> {
    // However this client ends, what it cost goes back to the kernel soon.
    let _trim = TrimWhenGone::new();
    let (mut conn, graceful) = incoming.into_parts();
    let cred = conn.peer_cred()?;
    let client = Client {
        pid: cred.pid,
        caller: Caller::of_process(cred.pid, cred.uid),
        gid: cred.gid,
    };
    let mut charge = Charge::new(budget);
    let mut first = true;
    loop {
        let msg = tokio::select! {
            biased;
            () = graceful.wait() => break,
            msg = read_request(&daemon, &mut conn, &mut charge, first) => msg,
        };
        first = false;
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
                    Ok(request) => array::signal_array(&daemon, &array, request, deadline).await,
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
