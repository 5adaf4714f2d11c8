//! cgroup v2: a session is one child cgroup, so every fork of a member lands
//! in it, and the kernel can freeze or kill it as one.

mod group;
mod mount;

pub(crate) use group::Cgroup;
pub(crate) use mount::{OwnCgroup, own_cgroup};
