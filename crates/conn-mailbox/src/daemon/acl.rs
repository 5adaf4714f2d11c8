//! The optional access list: which uids may join and send to which groups,
//! and which may send to private groups.
//!
//! In a cluster (`mailboxd --cluster corosync`) the list in force is part
//! of the replicated state: a daemon given `--acl FILE` proposes the file's
//! text through CPG once it holds the cluster's state, every daemon parses
//! and installs it at the same place of the agreed stream, and every daemon
//! checks every join and multicast against the list in force where the op
//! lands in the stream (the op carries its client's uid). So a client of
//! any daemon is refused alike, whichever daemon was given the file; the
//! last list in the stream wins. `docs/cluster.md` has the rules.

use std::collections::HashMap;
use std::path::Path;

use conn_core::{Error, ErrorKind};
use serde::Deserialize;

/// Groups mapped to the uids that may join them and send to them, and the
/// uids that may send to private groups.
///
/// A TOML file:
///
/// * `[groups.NAME]` with `join` and `send` uid lists: who may join the
///   group and who may send to it. Groups not listed are open to everyone,
///   and a missing `join` or `send` list leaves that operation open.
/// * `[private]` with a `send` uid list: who may send to any private group
///   `#name#daemon` (Spread's unicast to one client), whichever client it
///   names, on this daemon or another in the cluster. Without `[private]`
///   (or without its `send`), private groups are open to everyone, as
///   before. Private groups cannot be joined, so there is no `join` here.
///   The one list is the rule for every client's private group: a daemon
///   that restricts who may talk to its groups usually means to restrict
///   who may talk to its clients directly too, and a per-target rule would
///   let any client decide who may reach it only by its (unauthenticated)
///   name.
///
/// Clients whose uid is unknown (TCP, authenticated or not) are refused
/// wherever a list exists. A message with several destinations is refused
/// whole when any one of them is refused: it reaches nobody, and the sender
/// gets the refusal naming that destination.
///
/// ```
/// use conn_mailbox::daemon::Acl;
/// let acl = Acl::parse(r#"
///     [groups.ops]
///     join = [0, 1000]
///     send = [0]
///
///     [private]
///     send = [0, 1000]
/// "#)?;
/// assert!(acl.may_join("ops", Some(1000)));
/// assert!(!acl.may_send("ops", Some(1000)));
/// assert!(acl.may_send("chat", Some(4242)));
/// assert!(!acl.may_join("ops", None));
/// // Private groups: only uids 0 and 1000 may send to any of them.
/// assert!(acl.may_send("#alice#local", Some(1000)));
/// assert!(!acl.may_send("#alice#local", Some(4242)));
/// assert!(!acl.may_send("#alice#local", None));
/// # Ok::<(), conn_core::Error>(())
/// ```
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acl {
    #[serde(default)]
    groups: HashMap<String, Rule>,
    #[serde(default)]
    private: Option<PrivateRule>,
    /// The text it was parsed from: what a clustered daemon sends the
    /// others, who parse it alike (one decoder, the TOML one).
    #[serde(skip)]
    text: String,
}

/// The longest access list text [`Acl::parse`] takes: 256 KiB. A
/// clustered daemon sends the text in one CPG message and every daemon
/// parses it; no list of uids comes near this.
pub const MAX_ACL_TEXT: usize = 256 * 1024;

/// Who may send to private groups.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrivateRule {
    send: Option<Vec<u32>>,
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
    /// Parses the TOML text of an access list (at most [`MAX_ACL_TEXT`]
    /// bytes).
    pub fn parse(text: &str) -> conn_core::Result<Acl> {
        if text.len() > MAX_ACL_TEXT {
            return Err(Error::new(ErrorKind::MessageTooLong)
                .during("parse access list")
                .detail(format!(
                    "{} bytes; an access list may hold {MAX_ACL_TEXT} ({} KiB)",
                    text.len(),
                    MAX_ACL_TEXT / 1024
                )));
        }
        let mut acl: Acl = toml::from_str(text).map_err(|e| {
            Error::new(ErrorKind::InvalidType)
                .during("parse access list")
                .detail(e.to_string())
        })?;
        if let Some(name) = acl.groups.keys().find(|g| g.starts_with('#')) {
            return Err(Error::new(ErrorKind::InvalidType)
                .during("parse access list")
                .detail(format!(
                    "[groups.{name:?}]: no group starts with '#'; private groups are \
                     covered by one [private] table (`send = [uids]`)"
                )));
        }
        acl.text = text.to_owned();
        Ok(acl)
    }

    /// The text the list was parsed from (empty for [`Acl::default`]).
    pub(crate) fn text(&self) -> &str {
        &self.text
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

    /// True when `uid` may send to `group`: for a private group
    /// (`#name#daemon`) the `[private]` rule, else the group's own.
    pub fn may_send(&self, group: &str, uid: Option<u32>) -> bool {
        if group.starts_with('#') {
            return self
                .private
                .as_ref()
                .is_none_or(|r| allowed(r.send.as_ref(), uid));
        }
        self.groups
            .get(group)
            .is_none_or(|r| allowed(r.send.as_ref(), uid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_rule_covers_every_private_group_and_no_group() {
        let acl = Acl::parse("[private]\nsend = [7]\n").unwrap();
        for pg in ["#a#local", "#b#other"] {
            assert!(acl.may_send(pg, Some(7)));
            assert!(!acl.may_send(pg, Some(8)));
            assert!(!acl.may_send(pg, None));
        }
        assert!(acl.may_send("chat", Some(8)));
        assert!(acl.may_send("chat", None));
    }

    #[test]
    fn without_a_private_rule_private_groups_stay_open() {
        let acl = Acl::parse("[groups.ops]\nsend = [0]\n").unwrap();
        assert!(acl.may_send("#a#local", None));
        assert!(
            Acl::parse("[private]\n")
                .unwrap()
                .may_send("#a#local", None)
        );
    }

    #[test]
    fn a_list_past_the_limit_is_refused_and_the_text_is_kept() {
        let e = Acl::parse(&" ".repeat(MAX_ACL_TEXT + 1)).unwrap_err();
        assert!(e.to_string().contains("262144"), "{e}");
        let text = "[private]\nsend = [7]\n";
        assert_eq!(Acl::parse(text).unwrap().text(), text);
    }

    #[test]
    fn a_private_join_list_or_a_group_named_like_a_private_one_is_refused() {
        let e = Acl::parse("[private]\njoin = [0]\n").unwrap_err();
        assert!(e.to_string().contains("join"), "{e}");
        let e = Acl::parse("[groups.\"#a#local\"]\nsend = [0]\n").unwrap_err();
        assert!(e.to_string().contains("[private]"), "{e}");
    }
}
