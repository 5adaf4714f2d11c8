//! Shared-secret challenge-response: HMAC-SHA256 over a fresh random nonce
//! per connection (feature `auth`).
//!
//! The daemons use it where a peer has no uid to check: sessiond's peer
//! daemons (array-wide kills) and mailboxd's TCP clients. The pieces:
//!
//! * [`Secret`]: the shared key, read from a file that only its owner may
//!   read ([`Secret::load`] refuses a file group or others can access, as
//!   ssh refuses such a private key, and refuses an empty or short secret).
//! * [`nonce`]: 32 fresh random bytes from the kernel, one per connection,
//!   so an answer seen once is worth nothing on the next connection.
//! * [`Mac`]: HMAC-SHA256 keyed by the secret, started with a context that
//!   says what the MAC is for (domain separation: a MAC made for one
//!   protocol or one direction means nothing in another); [`Mac::verify`]
//!   compares in constant time.
//!
//! What it does not do: it proves that the peer holds the secret when the
//! MAC is made, nothing more. The bytes that follow are neither encrypted
//! nor authenticated, so an attacker on the path can read them and, by
//! taking over the TCP stream, inject. Across untrusted networks run the
//! protocol inside a tunnel (WireGuard, ssh, stunnel).
//!
//! # Example: one challenge, answered and checked
//!
//! ```
//! use conn_core::auth::{Mac, Secret, nonce};
//!
//! # fn main() -> conn_core::Result<()> {
//! let secret = Secret::new(*b"a shared secret of 32 bytes, ok!")?;
//! const CONTEXT: &[u8] = b"example protocol v1";
//!
//! // The server draws a nonce for this connection and sends it.
//! let challenge = nonce()?;
//! // The client answers with a MAC over the nonce (and whatever else the
//! // protocol binds to it: a request, a user).
//! let answer = Mac::new(&secret, CONTEXT).chain(&challenge).chain(b"alice").sign();
//! // The server checks it, in constant time.
//! assert!(Mac::new(&secret, CONTEXT).chain(&challenge).chain(b"alice").verify(&answer));
//! // The same answer is worth nothing for another user or another nonce.
//! assert!(!Mac::new(&secret, CONTEXT).chain(&challenge).chain(b"mallory").verify(&answer));
//! assert!(!Mac::new(&secret, CONTEXT).chain(&nonce()?).chain(b"alice").verify(&answer));
//! # Ok(()) }
//! ```

use std::fmt;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use crate::{Error, ErrorKind, Result};

type HmacSha256 = Hmac<Sha256>;

/// The length of a [`nonce`].
pub const NONCE_LEN: usize = 32;
/// The length of a MAC ([`Mac::sign`]).
pub const TAG_LEN: usize = 32;

/// A challenge: [`NONCE_LEN`] random bytes.
pub type Nonce = [u8; NONCE_LEN];
/// A MAC: HMAC-SHA256's [`TAG_LEN`] bytes.
pub type Tag = [u8; TAG_LEN];

/// The largest secret file read (a key, not a document).
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// A shared secret: the HMAC key both ends hold.
///
/// Its `Debug` shows only its length, so a secret never reaches a log.
///
/// ```
/// use conn_core::auth::Secret;
/// let secret = Secret::new(*b"0123456789abcdef")?;
/// assert_eq!(format!("{secret:?}"), "Secret(16 bytes)");
/// assert!(Secret::new(*b"short").is_err());
/// # Ok::<(), conn_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    key: Vec<u8>,
}

impl Secret {
    /// The shortest secret accepted: 16 bytes. A shorter one could be
    /// guessed online, one connection per guess.
    pub const MIN_LEN: usize = 16;

    /// A secret from bytes; refuses one shorter than [`Secret::MIN_LEN`]
    /// (an empty one included).
    pub fn new(key: impl Into<Vec<u8>>) -> Result<Secret> {
        let key = key.into();
        check_len(&key).map_err(|e| e.during("make secret"))?;
        Ok(Secret { key })
    }

    /// Reads the secret in the file at `path`: its bytes with trailing
    /// line ends (`\n`, `\r\n`) removed, so `echo`ed and `openssl rand
    /// -hex 32 >`'d files both work.
    ///
    /// Refused with a clear error: a file that group or others may read,
    /// write or run (mode `& 0o077`: `PermissionDenied`, as ssh refuses an
    /// unprotected private key; `chmod 600` it), a file that is not a
    /// regular file, an empty secret or one shorter than
    /// [`Secret::MIN_LEN`] (`InvalidType`), and any error reading it. The
    /// mode is checked on the descriptor the secret is read from, so the
    /// file cannot be swapped between the check and the read.
    ///
    /// ```
    /// use std::os::unix::fs::PermissionsExt;
    /// use conn_core::{ErrorKind, auth::Secret};
    ///
    /// let path = std::env::temp_dir().join(format!("auth-doc-{}.secret", std::process::id()));
    /// std::fs::write(&path, "0123456789abcdef0123\n")?;
    /// std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
    /// let e = Secret::load(&path).unwrap_err();
    /// assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    /// assert!(e.to_string().contains("chmod 600"), "{e}");
    ///
    /// std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    /// assert_eq!(Secret::load(&path)?, Secret::new(*b"0123456789abcdef0123")?);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load(path: &Path) -> Result<Secret> {
        read_secret(path)
    }

    /// The key's length in bytes.
    pub fn len(&self) -> usize {
        self.key.len()
    }

    /// Never true: an empty secret is refused when it is made. (Here for
    /// clippy's `len_without_is_empty`.)
    pub fn is_empty(&self) -> bool {
        self.key.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.key.len())
    }
}

fn check_len(key: &[u8]) -> Result<()> {
    let detail = match key.len() {
        0 => "the secret is empty".to_string(),
        n if n < Secret::MIN_LEN => format!(
            "{n} bytes; a secret needs {} or more (e.g. `head -c 32 /dev/urandom | base64 > FILE`)",
            Secret::MIN_LEN
        ),
        _ => return Ok(()),
    };
    Err(Error::new(ErrorKind::InvalidType).detail(detail))
}

fn read_secret(path: &Path) -> Result<Secret> {
    const OP: &str = "read secret file";
    let at = || path.display();
    let file = std::fs::File::open(path).map_err(|e| Error::io(e, OP, at()))?;
    let meta = file.metadata().map_err(|e| Error::io(e, OP, at()))?;
    if !meta.is_file() {
        return Err(Error::new(ErrorKind::InvalidType)
            .during(OP)
            .on(at())
            .detail("not a regular file"));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(Error::new(ErrorKind::PermissionDenied)
            .during(OP)
            .on(at())
            .detail(format!(
                "mode {mode:04o}: group or others may access the secret; \
                 `chmod 600 {}` it (as ssh refuses an unprotected private key)",
                path.display()
            )));
    }
    let mut key = Vec::new();
    file.take(MAX_SECRET_FILE + 1)
        .read_to_end(&mut key)
        .map_err(|e| Error::io(e, OP, at()))?;
    if key.len() as u64 > MAX_SECRET_FILE {
        return Err(Error::new(ErrorKind::InvalidType)
            .during(OP)
            .on(at())
            .detail(format!("more than {MAX_SECRET_FILE} bytes: not a secret")));
    }
    while key.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        key.pop();
    }
    check_len(&key).map_err(|e| e.during(OP).on(at()))?;
    Ok(Secret { key })
}

/// A fresh random nonce from the kernel (`getrandom(2)`), one per
/// connection.
///
/// ```
/// assert_ne!(conn_core::auth::nonce()?, conn_core::auth::nonce()?);
/// # Ok::<(), conn_core::Error>(())
/// ```
pub fn nonce() -> Result<Nonce> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|e| {
        Error::new(ErrorKind::Other)
            .during("draw nonce")
            .detail(e.to_string())
    })?;
    Ok(nonce)
}

/// An HMAC-SHA256 being computed: keyed by a [`Secret`], begun with a
/// context, fed the fields the protocol binds, then signed or verified.
///
/// The context comes first, as is, so each protocol (and each direction of
/// one) must use its own, none a prefix of another's fields.
///
/// ```
/// use conn_core::auth::{Mac, Secret};
/// let secret = Secret::new(*b"0123456789abcdef")?;
/// let tag = Mac::new(&secret, b"doc v1").chain(b"fields").sign();
/// assert!(Mac::new(&secret, b"doc v1").chain(b"fields").verify(&tag));
/// assert!(!Mac::new(&secret, b"doc v2").chain(b"fields").verify(&tag));
/// # Ok::<(), conn_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Mac {
    inner: HmacSha256,
}

impl Mac {
    /// A MAC keyed by `secret`, begun with `context`.
    pub fn new(secret: &Secret, context: &[u8]) -> Mac {
        let mut inner =
            HmacSha256::new_from_slice(&secret.key).expect("HMAC takes keys of any length");
        inner.update(context);
        Mac { inner }
    }

    /// Feeds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
    }

    /// Feeds `bytes` and hands the MAC on, to chain fields.
    pub fn chain(mut self, bytes: &[u8]) -> Mac {
        self.update(bytes);
        self
    }

    /// The tag to send.
    pub fn sign(self) -> Tag {
        self.inner.finalize().into_bytes().into()
    }

    /// True when `tag` is this MAC's, compared in constant time.
    pub fn verify(self, tag: &Tag) -> bool {
        self.inner.verify_slice(tag).is_ok()
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Mac(HMAC-SHA256, ..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, contents: &[u8], mode: u32) -> std::path::PathBuf {
        let path =
            std::env::temp_dir().join(format!("conn-core-auth-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn a_tag_holds_only_for_its_secret_context_and_fields() {
        let secret = Secret::new(*b"0123456789abcdef").unwrap();
        let other = Secret::new(*b"0123456789abcdeX").unwrap();
        let tag = Mac::new(&secret, b"ctx").chain(b"a").chain(b"b").sign();
        assert!(Mac::new(&secret, b"ctx").chain(b"ab").verify(&tag));
        assert!(!Mac::new(&other, b"ctx").chain(b"ab").verify(&tag));
        assert!(!Mac::new(&secret, b"ctX").chain(b"ab").verify(&tag));
        assert!(!Mac::new(&secret, b"ctx").chain(b"aB").verify(&tag));
        let mut flipped = tag;
        flipped[31] ^= 1;
        assert!(!Mac::new(&secret, b"ctx").chain(b"ab").verify(&flipped));
    }

    #[test]
    fn a_secret_file_others_can_read_is_refused_with_the_fix() {
        for mode in [0o644, 0o640, 0o604, 0o620, 0o601] {
            let path = file(&format!("open-{mode:o}"), b"0123456789abcdef\n", mode);
            let e = Secret::load(&path).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{mode:o}: {e}");
            let text = e.to_string();
            assert!(text.contains(&format!("{mode:04o}")), "{text}");
            assert!(text.contains("chmod 600"), "{text}");
            assert!(text.contains(&path.display().to_string()), "{text}");
            std::fs::remove_file(&path).unwrap();
        }
    }

    #[test]
    fn an_empty_or_short_secret_file_is_refused() {
        for (name, contents, says) in [
            ("empty", &b""[..], "the secret is empty"),
            ("newline", &b"\n\r\n"[..], "the secret is empty"),
            (
                "short",
                &b"tiny\n"[..],
                "4 bytes; a secret needs 16 or more",
            ),
        ] {
            let path = file(name, contents, 0o600);
            let e = Secret::load(&path).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidType, "{e}");
            assert!(e.to_string().contains(says), "{e}");
            std::fs::remove_file(&path).unwrap();
        }
    }

    #[test]
    fn a_private_secret_file_loads_without_its_line_end() {
        let path = file("ok", b"0123456789abcdef0123\r\n", 0o400);
        assert_eq!(
            Secret::load(&path).unwrap(),
            Secret::new(*b"0123456789abcdef0123").unwrap()
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_directory_or_missing_file_is_no_secret() {
        let e = Secret::load(&std::env::temp_dir()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidType, "{e}");
        let e = Secret::load(Path::new("/nonexistent/connkit.secret")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(nonce().unwrap(), nonce().unwrap());
    }
}
