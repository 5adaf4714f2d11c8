//! Userspace TCP on smoltcp with connkit's lifecycle (mTCP's model).
//!
//! Not built yet: this crate is a placeholder in the workspace map
//! (DESIGN.md); its issue fills it.
