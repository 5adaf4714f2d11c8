//! The clustered mailboxd of these tests: `conn_mailbox::testbed`'s, run
//! from the binary cargo built for them.

pub type ClusterDaemon = conn_mailbox::testbed::ClusterDaemon;

/// The `mailboxd` binary built with this test.
pub fn mailboxd() -> &'static std::path::Path {
    env!("CARGO_BIN_EXE_mailboxd").as_ref()
}
