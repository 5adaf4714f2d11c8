//! Kernel TCP with connkit's lifecycle.
//!
//! Not built yet: this crate is a placeholder in the workspace map
//! (DESIGN.md); its issue fills it.
