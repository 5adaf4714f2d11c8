//! The order in which a session's processes are signalled: parents first.
//!
//! Signals go out one pidfd at a time, so a process can see the effect of
//! the signal to another before its own arrives. Were a child signalled
//! first, its parent could reap it and exit normally in between (a shell
//! whose `wait` returns because its jobs died exits 0), and the parent's
//! own signal would then hit a zombie: the parent would never have been
//! signalled while it lived. Sending top-down means every process gets the
//! signal while its children, not yet signalled, still hold it up.

use std::collections::{HashMap, HashSet};

/// `pids` sorted so that each process comes before every descendant of it
/// in the set (by depth below the set's roots, then by pid). `ppid_of`
/// gives each member's parent; a parent outside the set makes a root.
pub(crate) fn parents_first(pids: &[u32], ppid_of: impl Fn(u32) -> Option<u32>) -> Vec<u32> {
    let members: HashSet<u32> = pids.iter().copied().collect();
    let parent: HashMap<u32, u32> = pids
        .iter()
        .filter_map(|&p| {
            ppid_of(p)
                .filter(|pp| members.contains(pp))
                .map(|pp| (p, pp))
        })
        .collect();
    let depth = |mut pid: u32| {
        let mut depth = 0usize;
        // Parents read at different moments cannot form a cycle in a real
        // tree, but a reused pid could fake one: never walk further than
        // the set is large.
        while let Some(&pp) = parent.get(&pid) {
            if depth > pids.len() {
                break;
            }
            depth += 1;
            pid = pp;
        }
        depth
    };
    let mut ordered: Vec<(usize, u32)> = pids.iter().map(|&p| (depth(p), p)).collect();
    ordered.sort_unstable();
    ordered.into_iter().map(|(_, p)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_come_before_their_children_whatever_the_pids() {
        // A shell (900) with two jobs whose pids wrapped around (5, 7), and
        // a grandchild (3) below 7; 42 is a separate root.
        let tree = HashMap::from([(900, 1), (5, 900), (7, 900), (3, 7), (42, 1)]);
        let order = parents_first(&[3, 5, 7, 42, 900], |p| tree.get(&p).copied());
        assert_eq!(order, vec![42, 900, 5, 7, 3]);
    }

    #[test]
    fn a_member_without_a_known_parent_is_a_root() {
        let order = parents_first(&[9, 4], |_| None);
        assert_eq!(order, vec![4, 9]);
    }
}
