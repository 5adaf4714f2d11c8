//! The MACs of mailboxd's TCP handshake, shared by the daemon and the
//! client (the mechanism is `conn_core::auth`).
//!
//! Both cover both nonces, the daemon's first; each direction has its own
//! context, so a client's answer played back to it is no daemon proof.

use conn_core::auth::{Mac, Secret};

use crate::wire::Nonce;

/// The client's answer: it holds the secret.
const CLIENT: &[u8] = b"connkit mailboxd client v1";
/// The daemon's proof: it holds the secret too.
const DAEMON: &[u8] = b"connkit mailboxd daemon v1";

fn mac(secret: &Secret, context: &[u8], daemon_nonce: &Nonce, client_nonce: &Nonce) -> Mac {
    Mac::new(secret, context)
        .chain(daemon_nonce)
        .chain(client_nonce)
}

/// The MAC a client answers the challenge with.
pub(crate) fn client_mac(secret: &Secret, daemon_nonce: &Nonce, client_nonce: &Nonce) -> Mac {
    mac(secret, CLIENT, daemon_nonce, client_nonce)
}

/// The MAC the daemon proves itself with.
pub(crate) fn daemon_mac(secret: &Secret, daemon_nonce: &Nonce, client_nonce: &Nonce) -> Mac {
    mac(secret, DAEMON, daemon_nonce, client_nonce)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_no_proof_and_binds_both_nonces() {
        let s = Secret::new(*b"0123456789abcdef").unwrap();
        let (d, c) = ([1u8; 32], [2u8; 32]);
        let answer = client_mac(&s, &d, &c).sign();
        assert!(client_mac(&s, &d, &c).verify(&answer));
        assert!(!daemon_mac(&s, &d, &c).verify(&answer));
        assert!(!client_mac(&s, &c, &d).verify(&answer));
        assert!(!client_mac(&s, &d, &[3; 32]).verify(&answer));
    }
}
