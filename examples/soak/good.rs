//! Well-behaved clients: every answer is checked, and anything that is not
//! what was asked for is an error, recorded with what failed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use conn_test_support::proc::alive;
use connkit::core::{Deadline, Endpoint};
use connkit::mailbox::{Event, Mailbox, Service};
use connkit::session::Outcome;
use connkit::session::client::Client as SessionClient;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;

/// How long any one good call may take before it counts as an error.
const PATIENCE: Duration = Duration::from_secs(30);

/// What the good clients did, shared by all of them.
#[derive(Default)]
pub struct Tally {
    /// HTTP requests answered as asked.
    pub requests: AtomicU64,
    /// Mailbox messages received in order, as sent.
    pub messages: AtomicU64,
    /// Sessions made, filled, killed and reported as asked.
    pub sessions: AtomicU64,
    /// Every failure: seconds into the run and what failed.
    pub errors: std::sync::Mutex<Vec<(f64, String)>>,
    started: std::sync::OnceLock<Instant>,
}

impl Tally {
    /// A tally whose clock starts now.
    pub fn new() -> Arc<Tally> {
        let t = Tally::default();
        let _ = t.started.set(Instant::now());
        Arc::new(t)
    }

    /// Records a failure, printing it at once.
    pub fn error(&self, what: String) {
        let at = self
            .started
            .get()
            .map_or(0.0, |s| s.elapsed().as_secs_f64());
        eprintln!("soak: GOOD CLIENT ERROR at {at:.1}s: {what}");
        self.errors.lock().expect("tally lock").push((at, what));
    }

    /// How many errors so far.
    pub fn error_count(&self) -> usize {
        self.errors.lock().expect("tally lock").len()
    }
}

/// What every good client shares: the tally, the stop token, and the gate
/// the driver closes (by taking it for writing) for a quiet sample. A
/// client holds it for reading through one whole round, so a closed gate
/// means no good call is in flight.
#[derive(Clone)]
pub struct Ctx {
    /// Where results go.
    pub tally: Arc<Tally>,
    /// Cancelled at the end of the run.
    pub stop: CancellationToken,
    /// Closed for quiet samples.
    pub gate: Arc<RwLock<()>>,
}

impl Ctx {
    /// Runs `round` again and again, each inside the gate, until stopped;
    /// `pause` between rounds.
    async fn rounds<F, Fut>(&self, pause: Duration, mut round: F)
    where
        F: FnMut(u64) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let mut n = 0;
        while !self.stop.is_cancelled() {
            {
                let _open = self.gate.read().await;
                if self.stop.is_cancelled() {
                    break;
                }
                round(n).await;
            }
            n += 1;
            tokio::select! {
                _ = self.stop.cancelled() => break,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
}

/// HTTP/1.1 requests to `connkit http` at `authority` (a TCP address) or
/// through `via` (an `ipc://` endpoint): keep-alive on one pooled
/// connection, or a new connection for each request. Each asks for `/` or
/// `/bytes?n=N` and checks the status and the whole body.
pub async fn http(
    ctx: Ctx,
    what: String,
    authority: String,
    via: Option<Endpoint>,
    keep_alive: bool,
) {
    let mut builder = Client::builder(TokioExecutor::new());
    if !keep_alive {
        builder.pool_max_idle_per_host(0);
    }
    let client = builder.build::<_, Empty<Bytes>>(connkit::http::connector(
        connkit::registry(),
        via,
        PATIENCE,
    ));
    let c = &client;
    let (tally, what, authority) = (&ctx.tally, &what, &authority);
    ctx.rounds(Duration::from_millis(5), |n| async move {
        let (path, want) = if n % 2 == 0 {
            ("/".to_owned(), b"hello from connkit\n".to_vec())
        } else {
            let len = (n * 7919) % 200_000;
            (format!("/bytes?n={len}"), vec![0u8; len as usize])
        };
        let uri: http::Uri = format!("http://{authority}{path}").parse().expect("a URI");
        let fetch = async {
            let response = c.get(uri).await.map_err(|e| format!("{e:?}"))?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("body: {e:?}"))?
                .to_bytes();
            Ok::<_, String>((status, body))
        };
        match Deadline::after(PATIENCE).run(fetch).await {
            Ok(Ok((status, body))) if status == http::StatusCode::OK && body[..] == want[..] => {
                tally.requests.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Ok((status, body))) => tally.error(format!(
                "{what}: GET {path}: HTTP {status}, {} bytes of body, want 200 and {} bytes as sent",
                body.len(),
                want.len()
            )),
            Ok(Err(e)) => tally.error(format!("{what}: GET {path}: {e}")),
            Err(e) => tally.error(format!("{what}: GET {path}: {e}")),
        }
    })
    .await;
}

/// Mailbox rounds on mailboxd at `socket`: a member (with membership
/// messages) joins the group `group` and a sender multicasts numbered
/// messages of varied sizes to it; the member checks it receives each one,
/// in order, as sent. Both disconnect at the end of a round.
pub async fn mailbox(ctx: Ctx, socket: std::path::PathBuf, group: String) {
    let (tally, socket, group) = (&ctx.tally, &socket, &group);
    ctx.rounds(Duration::from_millis(20), |round| async move {
        if let Err(e) = mailbox_round(tally, socket, group, round).await {
            tally.error(format!("mailbox group {group} round {round}: {e}"));
        }
    })
    .await;
}

async fn mailbox_round(
    tally: &Tally,
    socket: &std::path::Path,
    group: &str,
    round: u64,
) -> Result<(), String> {
    let soon = || Deadline::after(PATIENCE);
    let (mut member, me) = Mailbox::connect(socket, &format!("{group}m"), 0, true, soon())
        .await
        .map_err(|e| format!("connect the member: {e}"))?;
    let (mut sender, _) = Mailbox::connect(socket, &format!("{group}s"), 0, false, soon())
        .await
        .map_err(|e| format!("connect the sender: {e}"))?;
    member
        .join(group, soon())
        .await
        .map_err(|e| format!("join {group}: {e}"))?;
    // Its own join comes first.
    match member.receive(soon()).await {
        Ok(Event::Membership(m)) if m.group == group && m.members.iter().any(|n| *n == me) => {}
        Ok(other) => return Err(format!("before its join, {me} received {other:?}")),
        Err(e) => return Err(format!("{me} waiting for its join: {e}")),
    }
    for batch in 0..10u64 {
        let mut sent = Vec::new();
        for i in 0..20u64 {
            let seq = batch * 20 + i;
            let len = 16 + ((round * 131 + seq * 977) % 8192) as usize;
            let mut data = vec![(seq % 251) as u8; len];
            data[..16].copy_from_slice(&[round.to_be_bytes(), seq.to_be_bytes()].concat());
            sender
                .multicast(Service::AGREED, &[group], seq as i16, &data)
                .await
                .map_err(|e| format!("multicast message {seq}: {e}"))?;
            sent.push(data);
        }
        for (i, data) in sent.iter().enumerate() {
            let seq = batch * 20 + i as u64;
            match member.receive(soon()).await {
                Ok(Event::Message(m)) if m.data() == &data[..] => {
                    tally.messages.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Event::Message(m)) => {
                    return Err(format!(
                        "message {seq}: received {} bytes starting {:?}, want {} bytes starting {:?} (out of order or altered)",
                        m.data().len(),
                        &m.data()[..m.data().len().min(16)],
                        data.len(),
                        &data[..16]
                    ));
                }
                Ok(Event::Membership(m)) => {
                    return Err(format!(
                        "waiting for message {seq}, a membership change: {m:?}"
                    ));
                }
                Err(e) => return Err(format!("receive message {seq}: {e}")),
            }
        }
    }
    sender
        .disconnect(soon())
        .await
        .map_err(|e| format!("disconnect the sender: {e}"))?;
    member
        .disconnect(soon())
        .await
        .map_err(|e| format!("disconnect the member: {e}"))?;
    Ok(())
}

/// Session rounds on sessiond at `socket`: a session is made, sessiond
/// spawns `sleep` into it and a `sleep` of ours is adopted; both must be
/// its members; a SIGKILL to the session must report both signalled, and
/// both must be gone.
pub async fn session(ctx: Ctx, socket: std::path::PathBuf) {
    let (tally, socket) = (&ctx.tally, &socket);
    ctx.rounds(Duration::from_millis(50), |round| async move {
        match session_round(socket).await {
            Ok(()) => {
                tally.sessions.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tally.error(format!("session round {round}: {e}")),
        }
    })
    .await;
}

async fn session_round(socket: &std::path::Path) -> Result<(), String> {
    let mut c = SessionClient::connect(socket, Deadline::after(PATIENCE))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let ash = c
        .new_session(None)
        .await
        .map_err(|e| format!("new session: {e}"))?;
    let spawned = c
        .spawn(ash, &["sleep", "600"])
        .await
        .map_err(|e| format!("spawn sleep into {ash}: {e}"))?;
    let mut ours = tokio::process::Command::new("sleep")
        .arg("600")
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("start sleep: {e}"))?;
    let adopted = ours.id().ok_or("our sleep has no pid")?;
    c.adopt(ash, adopted)
        .await
        .map_err(|e| format!("adopt pid {adopted} into {ash}: {e}"))?;
    let mut members = c
        .members(ash)
        .await
        .map_err(|e| format!("members of {ash}: {e}"))?;
    members.sort_unstable();
    let mut want = vec![spawned, adopted];
    want.sort_unstable();
    if members != want {
        return Err(format!("{ash} has members {members:?}, want {want:?}"));
    }
    let report = c
        .signal(ash, libc::SIGKILL, false)
        .await
        .map_err(|e| format!("kill {ash}: {e}"))?;
    if report.pids() != want || report.count(Outcome::Signalled) != 2 {
        return Err(format!(
            "kill {ash}: report {report}, want {want:?} both signalled"
        ));
    }
    let status = tokio::time::timeout(PATIENCE, ours.wait())
        .await
        .map_err(|_| format!("our adopted pid {adopted} still runs {PATIENCE:?} after the kill"))?
        .map_err(|e| format!("wait for pid {adopted}: {e}"))?;
    use std::os::unix::process::ExitStatusExt;
    if status.signal() != Some(libc::SIGKILL) {
        return Err(format!("pid {adopted} ended with {status}, want SIGKILL"));
    }
    let start = Instant::now();
    while alive(spawned) {
        if start.elapsed() > PATIENCE {
            return Err(format!(
                "spawned pid {spawned} still runs {PATIENCE:?} after the kill"
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    c.close(Deadline::after(PATIENCE))
        .await
        .map_err(|e| format!("close: {e}"))
}
