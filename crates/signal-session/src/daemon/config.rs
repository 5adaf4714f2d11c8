//! sessiond's configuration file (TOML).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use conn_core::{Error, ErrorKind, Result};
use serde::Deserialize;

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
}

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
pub const MIN_SECRET: usize = 16;

impl Config {
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

    /// Reads the shared secret, if a file is configured.
    pub fn secret(&self) -> Result<Option<Vec<u8>>> {
        let Some(path) = &self.secret_file else {
            return Ok(None);
        };
        let mut secret =
            std::fs::read(path).map_err(|e| Error::io(e, "read array secret", path.display()))?;
        while secret.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            secret.pop();
        }
        if secret.len() < MIN_SECRET {
            return Err(Error::new(ErrorKind::InvalidType)
                .during("read array secret")
                .on(path.display())
                .detail(format!(
                    "{} bytes; a secret needs {MIN_SECRET} or more",
                    secret.len()
                )));
        }
        Ok(Some(secret))
    }
}
