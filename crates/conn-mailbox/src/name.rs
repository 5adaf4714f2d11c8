//! Group names held inline.
//!
//! Every name a daemon sends (a group, a private group `#name#daemon`, a
//! member) is at most [`MAX_GROUP_NAME`] bytes, as Spread's `char
//! group[MAX_GROUP_NAME]` is. So a received message carries its names in
//! place, like Spread's fixed arrays, and receiving allocates nothing for
//! them.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use crate::MailboxError;
use crate::limits::MAX_GROUP_NAME;

/// A group or private-group name of at most [`MAX_GROUP_NAME`] bytes,
/// stored inline (no allocation; `Copy`). It reads as a `&str`.
///
/// ```
/// use conn_mailbox::GroupName;
///
/// let g = GroupName::new("#alice#local")?;
/// assert_eq!(g, "#alice#local");
/// assert_eq!(g.len(), 12);                       // str's methods, through Deref
/// assert!(g.starts_with('#'));
/// assert_eq!(format!("{g}"), "#alice#local");
/// assert!(GroupName::new(&"x".repeat(32)).is_err()); // over MAX_GROUP_NAME
/// # Ok::<(), conn_mailbox::MailboxError>(())
/// ```
#[derive(Clone, Copy)]
pub struct GroupName {
    len: u8,
    bytes: [u8; MAX_GROUP_NAME],
}

impl GroupName {
    /// The empty name (what a daemon's shutdown announces as the member
    /// that changed).
    pub const EMPTY: GroupName = GroupName {
        len: 0,
        bytes: [0; MAX_GROUP_NAME],
    };

    /// `name`, if it is at most [`MAX_GROUP_NAME`] bytes; else
    /// [`MailboxError::IllegalGroup`]. Only the length is checked here:
    /// whether a name is legal for joining is the daemon's and
    /// [`limits`](crate::limits)' business.
    pub fn new(name: &str) -> Result<GroupName, MailboxError> {
        if name.len() > MAX_GROUP_NAME {
            return Err(MailboxError::IllegalGroup(name.into()));
        }
        let mut bytes = [0; MAX_GROUP_NAME];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        Ok(GroupName {
            len: name.len() as u8,
            bytes,
        })
    }

    /// A name a daemon sent: within the limit, or the daemon broke the
    /// protocol (every daemon checks names against the limits first).
    pub(crate) fn from_daemon(name: &str) -> Result<GroupName, MailboxError> {
        GroupName::new(name).map_err(|_| {
            MailboxError::Protocol(format!("from the daemon: a name of {} bytes", name.len()))
        })
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        let bytes = &self.bytes[..self.len as usize];
        // SAFETY: `new`, the only maker of a non-empty name, copied these
        // bytes whole from a `&str`, so they are UTF-8; nothing changes
        // them afterwards (the fields are private).
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }
}

impl Deref for GroupName {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for GroupName {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for GroupName {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl TryFrom<&str> for GroupName {
    type Error = MailboxError;
    fn try_from(name: &str) -> Result<GroupName, MailboxError> {
        GroupName::new(name)
    }
}

impl std::str::FromStr for GroupName {
    type Err = MailboxError;
    fn from_str(name: &str) -> Result<GroupName, MailboxError> {
        GroupName::new(name)
    }
}

impl From<GroupName> for String {
    fn from(name: GroupName) -> String {
        name.as_str().to_owned()
    }
}

impl Default for GroupName {
    fn default() -> GroupName {
        GroupName::EMPTY
    }
}

impl PartialEq for GroupName {
    fn eq(&self, other: &GroupName) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for GroupName {}

impl PartialOrd for GroupName {
    fn partial_cmp(&self, other: &GroupName) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for GroupName {
    fn cmp(&self, other: &GroupName) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

/// Hashes as the `str` does, as `Borrow<str>` requires.
impl Hash for GroupName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

macro_rules! eq_with {
    ($($t:ty),*) => {$(
        impl PartialEq<$t> for GroupName {
            fn eq(&self, other: &$t) -> bool {
                self.as_str() == AsRef::<str>::as_ref(other)
            }
        }
        impl PartialEq<GroupName> for $t {
            fn eq(&self, other: &GroupName) -> bool {
                AsRef::<str>::as_ref(self) == other.as_str()
            }
        }
    )*};
}
eq_with!(str, &str, String);

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl serde::Serialize for GroupName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn names_up_to_the_limit_are_kept_whole() {
        let longest = "n".repeat(MAX_GROUP_NAME);
        assert_eq!(GroupName::new(&longest).unwrap(), longest.as_str());
        assert_eq!(GroupName::new("").unwrap(), GroupName::EMPTY);
        assert_eq!(GroupName::new("é#ü").unwrap().as_str(), "é#ü");
    }

    #[test]
    fn a_name_over_the_limit_is_an_error_naming_it() {
        let long = "n".repeat(MAX_GROUP_NAME + 1);
        match GroupName::new(&long) {
            Err(MailboxError::IllegalGroup(g)) => assert_eq!(g, long),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn looks_up_like_a_str() {
        let set: HashSet<GroupName> = ["a", "b"].map(|n| GroupName::new(n).unwrap()).into();
        assert!(set.contains("a"));
        assert!(!set.contains("c"));
        assert_eq!(
            ["#x#d", "y"].map(|n| GroupName::new(n).unwrap()).join(","),
            "#x#d,y"
        );
    }
}
