//! Group mailboxes: the `mailboxd` daemon and its client (Spread's model).
//!
//! Not built yet: this crate is a placeholder in the workspace map
//! (DESIGN.md); its issue fills it.
