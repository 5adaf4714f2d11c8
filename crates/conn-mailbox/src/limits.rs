//! The stated limits, and the name rules every side checks.

/// The longest private name a client may choose (Spread's `MAX_PRIVATE_NAME`).
pub const MAX_PRIVATE_NAME: usize = 10;
/// The longest group name, private groups (`#name#daemon`) included
/// (Spread's `MAX_GROUP_NAME` is 32 with its terminating NUL).
pub const MAX_GROUP_NAME: usize = 31;
/// The most groups one multicast may address.
pub const MAX_GROUPS_PER_MESSAGE: usize = 128;
/// The largest message body: 1 MiB.
pub const MAX_MESSAGE: usize = 1 << 20;
/// The most groups one client may be a member of at once.
pub const MAX_GROUPS_PER_CLIENT: usize = 1024;

/// A legal name character: printable ASCII from `$` to `~` (Spread's rule,
/// which keeps blanks, control bytes and `#` out), except `#`, which only
/// marks private groups.
fn legal_char(b: u8) -> bool {
    (b'$'..=b'~').contains(&b)
}

/// Checks a private name: 1 to [`MAX_PRIVATE_NAME`] legal characters.
///
/// ```
/// use conn_mailbox::limits::legal_private_name;
/// assert!(legal_private_name("alice"));
/// assert!(!legal_private_name("has space"));
/// assert!(!legal_private_name("waytoolongname"));
/// ```
pub fn legal_private_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_PRIVATE_NAME && name.bytes().all(legal_char)
}

/// Checks the name of a group one may join: 1 to [`MAX_GROUP_NAME`] legal
/// characters and no `#` (names with `#` are private groups).
///
/// ```
/// use conn_mailbox::limits::legal_group_name;
/// assert!(legal_group_name("chat"));
/// assert!(!legal_group_name("#alice#local"));
/// ```
pub fn legal_group_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_GROUP_NAME && name.bytes().all(legal_char)
}

/// Checks a destination: a group name, or a private group `#name#daemon`.
pub fn legal_destination(name: &str) -> bool {
    match name.strip_prefix('#') {
        None => legal_group_name(name),
        Some(rest) => {
            name.len() <= MAX_GROUP_NAME
                && rest
                    .split_once('#')
                    .is_some_and(|(n, d)| legal_private_name(n) && legal_private_name(d))
        }
    }
}
