//! Daemon to daemon over TCP: the array-wide kill, authenticated with the
//! array's shared secret.
//!
//! The serving daemon sends a fresh nonce ([`Message::Challenge`]); the
//! asking one answers with one [`Message::Remote`]: the request frame, the
//! uids of the user it speaks for, and an HMAC-SHA256 over all of it and
//! the nonce. A wrong MAC is refused (EPERM) and logged; only a kill on the
//! serving node is accepted this way, never a spawn or an adoption.

use std::sync::Arc;
use std::time::Duration;

use conn_core::serve::Incoming;
use conn_core::{Connection, Deadline, Error, ErrorKind, Result};
use conn_tcp::TcpStream;
use futures::future::join_all;

use super::array::{self, NodeRequest};
use super::auth;
use super::state::Daemon;
use crate::Caller;
use crate::wire::io::{read_frame, read_message, write_message};
use crate::wire::{Message, NodeOutcome, NodeResult};
use conn_core::wire::Repr as _;

/// How long a peer has to answer the challenge.
const AUTH_PATIENCE: Duration = Duration::from_secs(5);

fn auth_failed() -> Error {
    Error::new(ErrorKind::PermissionDenied)
        .during("authenticate peer daemon")
        .detail("authentication failed: the request does not carry this array's secret")
}

/// Serves one peer daemon: challenge, one authenticated kill, answer.
pub(crate) async fn serve_peer(daemon: Arc<Daemon>, incoming: Incoming<TcpStream>) -> Result<()> {
    let (mut conn, _graceful) = incoming.into_parts();
    let peer = conn.peer_addr();
    let answer = match answer_peer(&daemon, &mut conn).await {
        Ok(answer) => answer,
        Err(e) => {
            tracing::warn!("peer {peer}: {e}; ending its connection");
            Message::error(&e)
        }
    };
    let _ = write_message(&mut conn, &answer).await;
    conn.close(Deadline::after(Duration::from_secs(1))).await
}

async fn answer_peer(daemon: &Daemon, conn: &mut TcpStream) -> Result<Message> {
    let secret = daemon.secret.as_ref().ok_or_else(auth_failed)?;
    let nonce = auth::nonce()?;
    write_message(conn, &Message::Challenge { nonce }).await?;
    let msg = Deadline::after(AUTH_PATIENCE)
        .run(read_message(conn))
        .await
        .map_err(|e| e.during("wait for peer's answer to the challenge"))??;
    let Some(Message::Remote {
        mac,
        ruid,
        euid,
        request,
    }) = msg
    else {
        return Err(Error::new(ErrorKind::Protocol)
            .during("authenticate peer daemon")
            .detail("expected an authenticated request"));
    };
    if !auth::verify(secret, &nonce, ruid, euid, &request, &mac) {
        return Err(auth_failed());
    }
    let request = NodeRequest::from_frame(Caller { ruid, euid }, &request)?;
    Ok(request.serve(daemon))
}

/// Asks every node of `array` to signal its members of `ash`, all at once,
/// and reports each; a node silent at `deadline` is reported as not
/// answering.
pub(crate) async fn fan_out(
    daemon: &Daemon,
    array: &str,
    request: NodeRequest,
    deadline: Deadline,
) -> Result<Vec<NodeResult>> {
    let op = "kill array session";
    let nodes = daemon.config.arrays.get(array).ok_or_else(|| {
        Error::new(ErrorKind::NotFound)
            .during(op)
            .on(format_args!("array {array:?}"))
            .detail(if array == super::array::CLUSTER_ARRAY {
                "no such array in this sessiond's configuration, and this sessiond was not \
                 started with --cluster corosync"
            } else {
                "no such array in this sessiond's configuration"
            })
    })?;
    let secret = daemon.secret.as_ref().ok_or_else(|| {
        Error::new(ErrorKind::NotSupported)
            .during(op)
            .on(format_args!("array {array:?}"))
            .detail(
                "this sessiond has no secret_file, and remote signalling is always authenticated",
            )
    })?;
    let caller = request.caller;
    let request = request.frame()?;
    let asks = nodes.iter().map(|node| {
        let request = &request;
        async move {
            let outcome = match deadline
                .run(ask_node(&node.addr, secret, caller, request, deadline))
                .await
            {
                Ok(Ok(answer)) => array::outcome(answer),
                Ok(Err(e)) => NodeOutcome::NoAnswer {
                    kind: e.kind(),
                    message: e.to_string(),
                },
                Err(_) => NodeOutcome::NoAnswer {
                    kind: ErrorKind::TimedOut,
                    message: "no answer by the deadline".into(),
                },
            };
            NodeResult {
                name: node.name.clone(),
                addr: node.addr.clone(),
                outcome,
            }
        }
    });
    Ok(join_all(asks).await)
}

async fn ask_node(
    addr: &str,
    secret: &conn_core::auth::Secret,
    caller: Caller,
    request: &[u8],
    deadline: Deadline,
) -> Result<Message> {
    let mut conn = TcpStream::connect(addr, deadline).await?;
    let Some(Message::Challenge { nonce }) = read_message(&mut conn).await? else {
        return Err(Error::new(ErrorKind::Protocol)
            .during("ask peer daemon")
            .on(addr)
            .detail("expected a challenge"));
    };
    let mac = auth::sign(secret, &nonce, caller.ruid, caller.euid, request);
    let remote = Message::Remote {
        mac,
        ruid: caller.ruid,
        euid: caller.euid,
        request: request.to_vec(),
    };
    write_message(&mut conn, &remote).await?;
    let answer = read_frame(&mut conn).await?.ok_or_else(|| {
        Error::new(ErrorKind::UnexpectedEof)
            .during("ask peer daemon")
            .on(addr)
            .detail("the peer hung up without an answer")
    })?;
    let answer = Message::decode(&answer[..])?;
    conn.kill();
    Ok(answer)
}
