//! Sessions of processes, tasks and connections signalled as one
//! (SGI Array Services' model), and `sessiond`.
//!
//! Not built yet: this crate is a placeholder in the workspace map
//! (DESIGN.md); its issue fills it.
