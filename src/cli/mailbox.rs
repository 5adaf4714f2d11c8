//! `connkit mailbox`: a mailboxd client like Spread's `spuser`, interactive
//! on stdin, or one scriptable step (`join`, `send`, `listen`).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use conn_mailbox::{ConnectOptions, Event, Mailbox, MailboxError, Secret, Service};
use tokio::io::{AsyncBufReadExt, BufReader};

use connkit::core::Deadline;

/// What to do once connected.
#[derive(Debug, Clone)]
pub enum Step {
    /// Read commands from stdin: `join G`, `leave G`, `send G TEXT`,
    /// `receive`, `quit`; events print as they arrive.
    Interactive,
    /// Join the groups, print events, stay a member until stdin closes.
    Join(Vec<String>),
    /// Send `text` to `group` (AGREED) and disconnect.
    Send {
        /// The group (or private group).
        group: String,
        /// The message.
        text: String,
    },
    /// Join `group`, print `count` events (its own join included), leave.
    Listen {
        /// The group.
        group: String,
        /// How many events to print before leaving.
        count: usize,
    },
}

const CONNECT_WITHIN: Duration = Duration::from_secs(10);

/// The environment variable naming the secret file when `--secret` is not
/// given.
pub const SECRET_FILE_ENV: &str = "CONNKIT_MAILBOX_SECRET_FILE";

/// The secret file to use: `flag` (`--secret`), else
/// [`SECRET_FILE_ENV`] when it is set and not empty.
pub fn secret_file(flag: Option<std::path::PathBuf>) -> Option<std::path::PathBuf> {
    flag.or_else(|| {
        std::env::var_os(SECRET_FILE_ENV)
            .filter(|v| !v.is_empty())
            .map(Into::into)
    })
}

/// Connects to the daemon at `daemon` as `name` and runs `step`; events print
/// one a line (JSON with `json`). Over `tcp://`, `secret` is the file holding
/// the daemon's secret (mode 600; see `conn_mailbox::ConnectOptions`); a
/// daemon that refuses it fails the run with its reason. On a Unix socket
/// `secret` is not read.
pub async fn run(
    daemon: &Path,
    name: &str,
    secret: Option<&Path>,
    json: bool,
    step: Step,
) -> Result<(), String> {
    let mut options = ConnectOptions::new();
    // A Unix socket's daemon knows the uid: no secret is read for it.
    let tcp = daemon.to_str().is_some_and(|d| d.starts_with("tcp://"));
    if let Some(path) = secret.filter(|_| tcp) {
        options = options.secret(Secret::load(path).map_err(|e| e.to_string())?);
    }
    let within = Deadline::after(CONNECT_WITHIN);
    let (mut mbox, me) = Mailbox::connect_with(daemon, name, 0, true, &options, within)
        .await
        .map_err(|e| format!("connect to {} as {name}: {e}", daemon.display()))?;
    let out = |ev: &Event| print_event(ev, json);
    match step {
        Step::Send { group, text } => {
            mbox.multicast(Service::AGREED, &[group.as_str()], 0, text.as_bytes())
                .await
                .map_err(|e| format!("send to {group}: {e}"))?;
            confirm_sent(&mut mbox)
                .await
                .map_err(|e| format!("send to {group}: {e}"))?;
        }
        Step::Listen { group, count } => {
            mbox.join(&group, Deadline::after(CONNECT_WITHIN))
                .await
                .map_err(|e| format!("join {group}: {e}"))?;
            for _ in 0..count {
                let ev = mbox
                    .receive(Deadline::NEVER)
                    .await
                    .map_err(|e| format!("receive: {e}"))?;
                out(&ev);
            }
        }
        Step::Join(groups) => {
            for g in &groups {
                mbox.join(g, Deadline::after(CONNECT_WITHIN))
                    .await
                    .map_err(|e| format!("join {g}: {e}"))?;
            }
            let mut stdin = BufReader::new(tokio::io::stdin()).lines();
            loop {
                tokio::select! {
                    line = stdin.next_line() => if !matches!(line, Ok(Some(_))) { break },
                    ev = mbox.receive(Deadline::NEVER) => out(&ev.map_err(|e| format!("receive: {e}"))?),
                }
            }
        }
        Step::Interactive => {
            println!(
                "connected as {me}; commands: join G | leave G | send G TEXT | receive | quit"
            );
            let mut stdin = BufReader::new(tokio::io::stdin()).lines();
            loop {
                tokio::select! {
                    line = stdin.next_line() => {
                        let Ok(Some(line)) = line else { break };
                        if !command(&mut mbox, line.trim(), json).await? {
                            break;
                        }
                    }
                    ev = mbox.receive(Deadline::NEVER) => match ev {
                        Ok(ev) => out(&ev),
                        Err(e @ MailboxError::NotAllowed { .. }) => println!("refused: {e}"),
                        Err(e) => return Err(format!("receive: {e}")),
                    },
                }
            }
        }
    }
    mbox.disconnect(Deadline::after(CONNECT_WITHIN))
        .await
        .map_err(|e| format!("disconnect: {e}"))
}

/// A group name the round trip of [`confirm_sent`] leaves.
const SYNC_GROUP: &str = "connkit-send-sync";

/// Waits until the daemon has handled what was sent, and returns its
/// refusal if it refused the send. A refused multicast is answered with a
/// reply to no request, which a client that disconnects at once never
/// reads (so `send` used to exit 0 for a message nobody got). The round
/// trip is a leave of a group this fresh connection never joined: the
/// daemon answers "not a member" and changes nothing, and it answers in
/// order, so a refusal of the send is queued before that answer.
async fn confirm_sent(mbox: &mut Mailbox) -> Result<(), MailboxError> {
    match mbox
        .leave(SYNC_GROUP, Deadline::after(CONNECT_WITHIN))
        .await
    {
        Ok(()) | Err(MailboxError::IllegalGroup(_)) => {}
        Err(e) => return Err(e),
    }
    // The refusal, if any, is already queued: a zero deadline finds it.
    match mbox.receive(Deadline::after(Duration::ZERO)).await {
        Err(MailboxError::Io(e)) if e.kind() == connkit::core::ErrorKind::TimedOut => Ok(()),
        Err(e) => Err(e),
        Ok(_) => Ok(()), // an event (nothing this connection asked for): no refusal
    }
}

/// Runs one interactive command; false on `quit`.
async fn command(mbox: &mut Mailbox, line: &str, json: bool) -> Result<bool, String> {
    let soon = || Deadline::after(CONNECT_WITHIN);
    let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
    let rest = rest.trim();
    let result = match verb {
        "" => Ok(()),
        "quit" | "q" => return Ok(false),
        "join" | "j" => mbox.join(rest, soon()).await,
        "leave" | "l" => mbox.leave(rest, soon()).await,
        "send" | "s" => {
            let (group, text) = rest.split_once(' ').unwrap_or((rest, ""));
            mbox.multicast(Service::AGREED, &[group], 0, text.as_bytes())
                .await
                .map(|_| ())
        }
        "receive" | "r" => match mbox
            .receive(Deadline::after(Duration::from_millis(200)))
            .await
        {
            Ok(ev) => {
                print_event(&ev, json);
                Ok(())
            }
            Err(e) if e.kind() == connkit::core::ErrorKind::TimedOut => {
                println!("nothing to receive");
                Ok(())
            }
            Err(e) => Err(e),
        },
        other => {
            println!("unknown command {other:?}: join G | leave G | send G TEXT | receive | quit");
            Ok(())
        }
    };
    match result {
        Ok(()) => Ok(true),
        Err(MailboxError::ConnectionClosed) => Err("the daemon closed the session".into()),
        Err(e) => {
            println!("error: {e}");
            Ok(true)
        }
    }
}

/// One event, one line.
pub fn format_event(ev: &Event, json: bool) -> String {
    match (ev, json) {
        (Event::Message(m), false) => format!(
            "message from {} to {} type {} {}: {}",
            m.sender(),
            m.groups().iter().collect::<Vec<_>>().join(","),
            m.msg_type(),
            m.service().level_name(),
            String::from_utf8_lossy(m.data())
        ),
        (Event::Membership(ms), false) => format!(
            "membership {} view {} {} {} members {}",
            ms.group,
            ms.view,
            if ms.is_self_leave() {
                "self-leave"
            } else {
                ms.cause.as_str()
            },
            ms.changed,
            if ms.members.is_empty() {
                "(none)".to_string()
            } else {
                ms.members.join(",")
            }
        ),
        (Event::Message(m), true) => serde_json::json!({
            "event": "message",
            "sender": m.sender(),
            "groups": m.groups().iter().collect::<Vec<_>>(),
            "type": m.msg_type(),
            "service": m.service().level_name(),
            "data": String::from_utf8_lossy(m.data()),
        })
        .to_string(),
        (Event::Membership(ms), true) => serde_json::json!({
            "event": "membership",
            "group": ms.group,
            "view": ms.view,
            "cause": ms.cause.as_str(),
            "self_leave": ms.is_self_leave(),
            "changed": ms.changed,
            "members": ms.members,
        })
        .to_string(),
    }
}

fn print_event(ev: &Event, json: bool) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", format_event(ev, json));
    let _ = out.flush();
}
