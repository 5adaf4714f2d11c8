//! sessiond's configuration file (TOML).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use conn_core::{Error, ErrorKind, Result};
use serde::Deserialize;

use crate::Rule;

/// What a sessiond reads from its configuration file.
///
/// ```
/// use signal_session::daemon::Config;
///
/// let config: Config = toml::from_str(r#"
///     listen = "127.0.0.1:7301"            # where peer daemons reach this one
///     secret_file = "/etc/connkit/array.secret"
///
///     [arrays]
///     lab = [
///         { name = "a", addr = "127.0.0.1:7301" },
///         { name = "b", addr = "10.0.0.2:7301" },
///     ]
/// "#).unwrap();
/// assert_eq!(config.arrays["lab"][1].name, "b");
///
/// // The defaults: the kernel's kill(2) rule, 64 sessions per non-root
/// // uid, an empty session retired after 60 s, swept every second.
/// use signal_session::Rule;
/// use std::time::Duration;
/// assert_eq!(config.permission, Rule::Kernel);
/// assert_eq!(config.session_limit(), 64);
/// assert_eq!(config.empty_grace(), Duration::from_secs(60));
///
/// let wide: Config = toml::from_str(r#"
///     permission = "array-services"   # also match the receiver's effective uid
///     max_sessions_per_uid = 8
///     empty_session_grace_ms = 5000
/// "#).unwrap();
/// assert_eq!(wide.permission, Rule::ArrayServices);
/// assert_eq!(wide.session_limit(), 8);
/// ```
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The Unix socket clients talk to (default: [`default_socket`](crate::client::default_socket)).
    pub socket: Option<PathBuf>,
    /// The TCP address peer daemons reach this one at; no TCP without it.
    pub listen: Option<String>,
    /// The file holding the array's shared secret (16 bytes or more; a
    /// trailing newline is dropped). Needed for any TCP traffic, either
    /// way: no unauthenticated remote signalling.
    pub secret_file: Option<PathBuf>,
    /// Arrays by name: the nodes an array-wide kill fans out to.
    #[serde(default)]
    pub arrays: BTreeMap<String, Vec<Node>>,
    /// Whom a client may signal or adopt: `"kernel"` (the default,
    /// Linux's `kill(2)` rule: the client's real or effective uid against
    /// the process's real or saved uid) or `"array-services"` (the
    /// process's effective uid matches too; wider than the kernel, see
    /// [`Rule::ArrayServices`]).
    #[serde(default)]
    pub permission: Rule,
    /// How many sessions one non-root uid may hold at once (default
    /// [`DEFAULT_SESSION_LIMIT`]); root has no limit.
    pub max_sessions_per_uid: Option<usize>,
    /// How long a session that never got a process is kept before it is
    /// retired, in milliseconds (default 60 000). A session whose processes
    /// have all exited is retired at the next sweep.
    pub empty_session_grace_ms: Option<u64>,
    /// How often empty sessions are looked for, in milliseconds (default
    /// 1000): one sweep over all sessions, not a watch per session.
    pub sweep_ms: Option<u64>,
    /// Most bytes one client's frame may hold while it arrives (default
    /// 2 MiB, room for the largest frame); a client past it is dropped.
    pub client_buffer_bytes: Option<usize>,
    /// Most bytes all clients' frames may hold together while they arrive
    /// (default 32 MiB); a client whose frame would pass it is dropped.
    pub client_buffers_total_bytes: Option<usize>,
    /// How long a new client may stay silent before its first frame, in
    /// milliseconds (default 5000).
    pub hello_timeout_ms: Option<u64>,
    /// How long a frame begun may wait for its next byte, in milliseconds
    /// (default 10 000). A client between frames is never timed out.
    pub stall_timeout_ms: Option<u64>,
}

/// Sessions one non-root uid may hold when the configuration says nothing.
pub const DEFAULT_SESSION_LIMIT: usize = 64;

/// One node of an array.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// Its name, as reports show it.
    pub name: String,
    /// The TCP address its sessiond listens on.
    pub addr: String,
}

/// The shortest secret accepted.
pub const MIN_SECRET: usize = conn_core::auth::Secret::MIN_LEN;

impl Config {
    /// `max_sessions_per_uid`, or its default.
    pub fn session_limit(&self) -> usize {
        self.max_sessions_per_uid.unwrap_or(DEFAULT_SESSION_LIMIT)
    }

    /// `empty_session_grace_ms`, or its default of 60 s.
    pub fn empty_grace(&self) -> Duration {
        Duration::from_millis(self.empty_session_grace_ms.unwrap_or(60_000))
    }

    /// `sweep_ms`, or its default of 1 s (at least 10 ms).
    pub fn sweep_every(&self) -> Duration {
        Duration::from_millis(self.sweep_ms.unwrap_or(1000).max(10))
    }

    /// `client_buffer_bytes`, or its default of 2 MiB.
    pub fn client_buffer(&self) -> usize {
        self.client_buffer_bytes.unwrap_or(2 << 20)
    }

    /// `client_buffers_total_bytes`, or its default of 32 MiB: 300 clients
    /// each holding a partial maximum-size frame stay under 64 MiB.
    pub fn client_buffers_total(&self) -> usize {
        self.client_buffers_total_bytes.unwrap_or(32 << 20)
    }

    /// `hello_timeout_ms`, or its default of 5 s.
    pub fn hello_timeout(&self) -> Duration {
        Duration::from_millis(self.hello_timeout_ms.unwrap_or(5000))
    }

    /// `stall_timeout_ms`, or its default of 10 s.
    pub fn stall_timeout(&self) -> Duration {
        Duration::from_millis(self.stall_timeout_ms.unwrap_or(10_000))
    }

    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(e, "read sessiond config", path.display()))?;
        toml::from_str(&text).map_err(|e| {
            Error::new(ErrorKind::InvalidType)
                .during("parse sessiond config")
                .on(path.display())
                .detail(e.to_string())
        })
    }

    /// Reads the shared secret, if a file is configured: 16 bytes or more,
    /// trailing line ends removed, in a file only its owner may read
    /// (`PermissionDenied` otherwise; see [`conn_core::auth::Secret::load`]).
    pub fn secret(&self) -> Result<Option<conn_core::auth::Secret>> {
        let Some(path) = &self.secret_file else {
            return Ok(None);
        };
        conn_core::auth::Secret::load(path).map(Some)
    }
}
