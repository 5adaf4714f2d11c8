//! Where this process's cgroup v2 directory is.

use std::fs;
use std::path::PathBuf;

/// This process's own place in the cgroup v2 hierarchy.
#[derive(Clone, Debug)]
pub(crate) struct OwnCgroup {
    /// Its directory: the mount point joined with `rel`.
    pub(crate) dir: PathBuf,
    /// Its path relative to the hierarchy's root, as `/proc/<pid>/cgroup`
    /// shows it (`/` for the root).
    pub(crate) rel: String,
    /// The hierarchy's mount point, where any process's `rel` is found.
    pub(crate) mount: PathBuf,
}

/// Finds this process's cgroup v2 directory: the `cgroup2` mount point from
/// `/proc/self/mountinfo` (which is `/sys/fs/cgroup` on a unified layout,
/// `/sys/fs/cgroup/unified` on a hybrid one) joined with the `0::` line of
/// `/proc/self/cgroup`. `Err` says why there is none.
pub(crate) fn own_cgroup() -> Result<OwnCgroup, String> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
    let mount = cgroup2_mount(&mountinfo).ok_or("no cgroup2 file system is mounted")?;
    let cgroups = fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
    let own = cgroups
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .ok_or("this process has no cgroup v2 membership")?;
    Ok(OwnCgroup {
        dir: mount.join(own.trim_start_matches('/')),
        rel: own.to_owned(),
        mount,
    })
}

/// The first `cgroup2` mount point in a mountinfo text. The file system
/// type follows the ` - ` separator; the mount point is field 5.
fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        if right.split_ascii_whitespace().next()? != "cgroup2" {
            return None;
        }
        let point = left.split_ascii_whitespace().nth(4)?;
        Some(PathBuf::from(unescape(point)))
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 4);
        match code.and_then(|c| u8::from_str_radix(c, 8).ok()) {
            Some(byte) => {
                out.push(char::from(byte));
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cgroup2_mount_of_a_hybrid_layout_is_found() {
        let mountinfo = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
        assert_eq!(
            cgroup2_mount(mountinfo),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
    }

    #[test]
    fn escaped_mount_points_are_unescaped() {
        let mountinfo = "41 31 0:38 / /mnt/my\\040cgroups rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup2_mount(mountinfo),
            Some(PathBuf::from("/mnt/my cgroups"))
        );
    }

    #[test]
    fn a_unified_layout_without_cgroup2_has_no_mount() {
        assert_eq!(
            cgroup2_mount("31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"),
            None
        );
    }
}
