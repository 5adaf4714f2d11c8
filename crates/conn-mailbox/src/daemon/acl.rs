//! The optional access list: which uids may join and send to which groups.

use std::collections::HashMap;
use std::path::Path;

use conn_core::{Error, ErrorKind};
use serde::Deserialize;

/// Groups mapped to the uids that may join them and send to them.
///
/// A TOML file; groups not listed are open to everyone, a missing `join` or
/// `send` list leaves that operation open, and clients whose uid is unknown
/// (TCP) are refused wherever a list exists:
///
/// ```
/// use conn_mailbox::daemon::Acl;
/// let acl = Acl::parse(r#"
///     [groups.ops]
///     join = [0, 1000]
///     send = [0]
/// "#)?;
/// assert!(acl.may_join("ops", Some(1000)));
/// assert!(!acl.may_send("ops", Some(1000)));
/// assert!(acl.may_send("chat", Some(4242)));
/// assert!(!acl.may_join("ops", None));
/// # Ok::<(), conn_core::Error>(())
/// ```
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acl {
    #[serde(default)]
    groups: HashMap<String, Rule>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    join: Option<Vec<u32>>,
    send: Option<Vec<u32>>,
}

fn allowed(list: Option<&Vec<u32>>, uid: Option<u32>) -> bool {
    match list {
        None => true,
        Some(uids) => uid.is_some_and(|u| uids.contains(&u)),
    }
}

impl Acl {
    /// Parses the TOML text of an access list.
    pub fn parse(text: &str) -> conn_core::Result<Acl> {
        toml::from_str(text).map_err(|e| {
            Error::new(ErrorKind::InvalidType)
                .during("parse access list")
                .detail(e.to_string())
        })
    }

    /// Reads and parses the access list at `path`.
    pub fn load(path: &Path) -> conn_core::Result<Acl> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(e, "read access list", path.display()))?;
        Acl::parse(&text).map_err(|e| e.on(path.display()))
    }

    /// True when `uid` may join `group`.
    pub fn may_join(&self, group: &str, uid: Option<u32>) -> bool {
        self.groups
            .get(group)
            .is_none_or(|r| allowed(r.join.as_ref(), uid))
    }

    /// True when `uid` may send to `group`.
    pub fn may_send(&self, group: &str, uid: Option<u32>) -> bool {
        self.groups
            .get(group)
            .is_none_or(|r| allowed(r.send.as_ref(), uid))
    }
}
