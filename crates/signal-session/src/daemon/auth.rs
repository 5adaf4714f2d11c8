//! Peer daemons prove they hold the array's secret: challenge-response
//! with HMAC-SHA256 over a fresh nonce per connection (the mechanism is
//! `conn_core::auth`), binding the request and the user it is for, so a MAC
//! cannot be replayed or moved to another request.

use conn_core::auth::{Mac, Nonce, Secret, Tag};

pub(crate) use conn_core::auth::nonce;

/// Domain separation: these MACs mean nothing anywhere else.
const CONTEXT: &[u8] = b"connkit sessiond remote v1";

fn mac(secret: &Secret, nonce: &Nonce, ruid: u32, euid: u32, request: &[u8]) -> Mac {
    Mac::new(secret, CONTEXT)
        .chain(nonce)
        .chain(&ruid.to_be_bytes())
        .chain(&euid.to_be_bytes())
        .chain(request)
}

/// The MAC a peer sends.
pub(crate) fn sign(secret: &Secret, nonce: &Nonce, ruid: u32, euid: u32, request: &[u8]) -> Tag {
    mac(secret, nonce, ruid, euid, request).sign()
}

/// Checks a peer's MAC in constant time.
pub(crate) fn verify(
    secret: &Secret,
    nonce: &Nonce,
    ruid: u32,
    euid: u32,
    request: &[u8],
    tag: &Tag,
) -> bool {
    mac(secret, nonce, ruid, euid, request).verify(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mac_holds_only_for_its_secret_nonce_user_and_request() {
        let secret = Secret::new(*b"0123456789abcdef").unwrap();
        let nonce = [3u8; 32];
        let tag = sign(&secret, &nonce, 1000, 1000, b"kill");
        assert!(verify(&secret, &nonce, 1000, 1000, b"kill", &tag));
        let other = Secret::new(*b"0123456789abcdeX").unwrap();
        assert!(!verify(&other, &nonce, 1000, 1000, b"kill", &tag));
        assert!(!verify(&secret, &[4; 32], 1000, 1000, b"kill", &tag));
        assert!(!verify(&secret, &nonce, 0, 1000, b"kill", &tag));
        assert!(!verify(&secret, &nonce, 1000, 1000, b"kilL", &tag));
        assert_ne!(super::nonce().unwrap(), super::nonce().unwrap());
    }

    #[test]
    fn the_mac_is_the_one_sessiond_always_sent() {
        // HMAC-SHA256(key, CONTEXT | nonce | ruid BE | euid BE | request),
        // pinned (computed with Python's hmac): a peer daemon of an older
        // build must still be understood.
        let secret = Secret::new(*b"0123456789abcdef").unwrap();
        let tag = sign(&secret, &[3u8; 32], 1000, 1001, b"kill");
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, PINNED);
    }

    const PINNED: &str = "3bb5dfe0ff72db36eb5d7de679aae27f70fa0f4ba10523712f51684fe6dc33b6";
}
