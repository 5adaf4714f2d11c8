//! Peer daemons prove they hold the array's secret: challenge-response
//! with HMAC-SHA256 over a fresh nonce per connection, binding the request
//! and the user it is for, so a MAC cannot be replayed or moved to
//! another request.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Domain separation: these MACs mean nothing anywhere else.
const CONTEXT: &[u8] = b"connkit sessiond remote v1";

/// A fresh random nonce.
pub(crate) fn nonce() -> conn_core::Result<[u8; 32]> {
    let mut nonce = [0u8; 32];
    getrandom::fill(&mut nonce).map_err(|e| {
        conn_core::Error::new(conn_core::ErrorKind::Other)
            .during("draw nonce")
            .detail(e.to_string())
    })?;
    Ok(nonce)
}

fn mac(secret: &[u8], nonce: &[u8; 32], ruid: u32, euid: u32, request: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(CONTEXT);
    mac.update(nonce);
    mac.update(&ruid.to_be_bytes());
    mac.update(&euid.to_be_bytes());
    mac.update(request);
    mac
}

/// The MAC a peer sends.
pub(crate) fn sign(
    secret: &[u8],
    nonce: &[u8; 32],
    ruid: u32,
    euid: u32,
    request: &[u8],
) -> [u8; 32] {
    mac(secret, nonce, ruid, euid, request)
        .finalize()
        .into_bytes()
        .into()
}

/// Checks a peer's MAC in constant time.
pub(crate) fn verify(
    secret: &[u8],
    nonce: &[u8; 32],
    ruid: u32,
    euid: u32,
    request: &[u8],
    tag: &[u8; 32],
) -> bool {
    mac(secret, nonce, ruid, euid, request)
        .verify_slice(tag)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mac_holds_only_for_its_secret_nonce_user_and_request() {
        let (secret, nonce) = (b"0123456789abcdef", [3u8; 32]);
        let tag = sign(secret, &nonce, 1000, 1000, b"kill");
        assert!(verify(secret, &nonce, 1000, 1000, b"kill", &tag));
        assert!(!verify(
            b"0123456789abcdeX",
            &nonce,
            1000,
            1000,
            b"kill",
            &tag
        ));
        assert!(!verify(secret, &[4; 32], 1000, 1000, b"kill", &tag));
        assert!(!verify(secret, &nonce, 0, 1000, b"kill", &tag));
        assert!(!verify(secret, &nonce, 1000, 1000, b"kilL", &tag));
        assert_ne!(super::nonce().unwrap(), super::nonce().unwrap());
    }
}
