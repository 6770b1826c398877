//! The size of the filesystem that holds the engine's data root, and which filesystem it is.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use swarmkeeper_gc::Filesystem;

/// statvfs of `path`, as `df` reads it: available bytes are those a writer without the root
/// reserve can use (`f_bavail`), and capacity is the size less that reserve
/// (`f_blocks − (f_bfree − f_bavail)`), so that usage is `df`'s `Use%`.
///
/// cadvisor, and so the kubelet, divides by the whole size instead and counts the reserve as
/// used. On ext4's usual 5 % reserve that reads about a point higher; on a filesystem with a
/// large reserve it reads far higher: a node whose `df` said 22 % showed 72 % that way (the
/// filesystem under this project's machines reserves 63 % of its blocks).
pub fn measure(path: &Path) -> std::io::Result<Filesystem> {
    let usage = usage(path)?;
    Ok(Filesystem {
        path: path.to_path_buf(),
        capacity_bytes: usage.size_bytes.saturating_sub(usage.reserved_bytes),
        available_bytes: usage.available_bytes,
    })
}

/// What statvfs says of a filesystem, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsUsage {
    /// `f_blocks`: the whole size, as `df`'s `Size`.
    pub size_bytes: u64,
    /// `f_bavail`: what an unprivileged writer can still use.
    pub available_bytes: u64,
    /// `f_bfree − f_bavail`: kept for root (or the user `resuid` names).
    pub reserved_bytes: u64,
}

pub fn usage(path: &Path) -> std::io::Result<FsUsage> {
    let stat = rustix::fs::statvfs(path)?;
    let block = stat.f_frsize;
    Ok(FsUsage {
        size_bytes: stat.f_blocks.saturating_mul(block),
        available_bytes: stat.f_bavail.saturating_mul(block),
        reserved_bytes: stat
            .f_bfree
            .saturating_sub(stat.f_bavail)
            .saturating_mul(block),
    })
}

/// The filesystem that holds a path, as the node's host sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountInfo {
    /// Where the filesystem is mounted on the host, e.g. `/` when the data root is a folder of
    /// the root filesystem, `/var/lib/docker` when it has a disk of its own.
    pub mount_point: PathBuf,
    /// The mounted device or source, e.g. `/dev/sda1`, `tmpfs`.
    pub source: String,
    /// e.g. `ext4`, `xfs`, `tmpfs`.
    pub fs_type: String,
}

/// The filesystem holding `path` from `/proc/self/mountinfo`. In an agent container the data
/// root is a bind mount at the same path as on the host, so the host's mount point is the
/// path less what lies below the filesystem's root (mountinfo's fourth field).
pub fn mount_info(path: &Path) -> Option<MountInfo> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    find_mount(&text, path)
}

/// [`mount_info`] over a mountinfo text: the last-mounted entry whose mount point is the
/// longest prefix of `path`.
pub fn find_mount(mountinfo: &str, path: &Path) -> Option<MountInfo> {
    struct Entry<'a> {
        root: &'a str,
        mount_point: PathBuf,
        fs_type: &'a str,
        source: &'a str,
    }
    let entries = mountinfo.lines().filter_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let fields: Vec<&str> = left.split(' ').collect();
        let mut right = right.split(' ');
        Some(Entry {
            root: fields.get(3)?,
            mount_point: PathBuf::from(unescape(fields.get(4)?)),
            fs_type: right.next()?,
            source: right.next()?,
        })
    });
    let best =
        entries
            .filter(|e| path.starts_with(&e.mount_point))
            .fold(None::<Entry>, |best, e| match best {
                Some(b)
                    if b.mount_point.components().count() > e.mount_point.components().count() =>
                {
                    Some(b)
                }
                _ => Some(e),
            })?;
    // Where `path` lies inside the filesystem, and so the host's mount point above it.
    let below = path.strip_prefix(&best.mount_point).ok()?;
    let inside = Path::new(&unescape(best.root)).join(below);
    let mount_point = strip_suffix(path, &inside).unwrap_or(best.mount_point);
    Some(MountInfo {
        mount_point,
        source: unescape(best.source),
        fs_type: best.fs_type.to_string(),
    })
}

/// `path` without the trailing components `suffix` names (`/var/lib/docker` less
/// `/lib/docker` is `/var`); `None` when it does not end with them.
fn strip_suffix(path: &Path, suffix: &Path) -> Option<PathBuf> {
    let path: Vec<_> = path.components().collect();
    let suffix: Vec<_> = suffix
        .components()
        .filter(|c| !matches!(c, std::path::Component::RootDir))
        .collect();
    let keep = path.len().checked_sub(suffix.len())?;
    (path[keep..] == suffix[..]).then(|| path[..keep].iter().collect::<PathBuf>())
}

/// mountinfo writes space, tab, newline and backslash as `\040`, `\011`, `\012`, `\134`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|_| bytes[i] == b'\\');
        match octal.and_then(|o| u8::from_str_radix(std::str::from_utf8(o).ok()?, 8).ok()) {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_real_filesystem() {
        let fs = measure(Path::new("/")).unwrap();
        assert!(fs.capacity_bytes > 0);
        assert!(fs.available_bytes <= fs.capacity_bytes);
        let usage = usage(Path::new("/")).unwrap();
        assert_eq!(fs.capacity_bytes + usage.reserved_bytes, usage.size_bytes);
        assert!(measure(Path::new("/nonexistent/swarmkeeper")).is_err());
    }

    const HOST: &str = "\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
30 27 0:40 / /var/lib/docker/overlay2/abc/merged rw - overlay overlay rw
41 27 0:50 / /srv/my\\040data rw - xfs /dev/sdb1 rw
";

    #[test]
    fn a_folder_of_the_root_filesystem_is_on_slash() {
        let m = find_mount(HOST, Path::new("/var/lib/docker")).unwrap();
        assert_eq!(m.mount_point, Path::new("/"));
        assert_eq!(
            (m.source.as_str(), m.fs_type.as_str()),
            ("/dev/vda", "ext4")
        );
        let m = find_mount(HOST, Path::new("/srv/my data/docker")).unwrap();
        assert_eq!(m.mount_point, Path::new("/srv/my data"));
        assert_eq!(m.fs_type, "xfs");
    }

    // Inside the agent's container: its own root is an overlay, the data root a bind mount.
    const CONTAINER: &str = "\
600 500 0:90 / / ro,relatime - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/X
610 600 254:0 /var/lib/docker /var/lib/docker ro,relatime - ext4 /dev/vda rw
620 600 0:91 / /var/lib/swarmkeeper rw - ext4 /dev/vda rw
700 600 0:99 / /data/docker ro - xfs /dev/sdb1 rw
701 600 0:99 /docker /srv/docker ro - xfs /dev/sdc1 rw
";

    #[test]
    fn in_a_container_the_bind_mount_names_the_hosts_filesystem() {
        // Not the container's overlay root: the bind mount of the data root.
        let m = find_mount(CONTAINER, Path::new("/var/lib/docker")).unwrap();
        assert_eq!(m.mount_point, Path::new("/"));
        assert_eq!(m.fs_type, "ext4");
        // A data root with a disk of its own.
        let m = find_mount(CONTAINER, Path::new("/data/docker")).unwrap();
        assert_eq!(m.mount_point, Path::new("/data/docker"));
        // A data root in a folder of a filesystem mounted at /srv on the host.
        let m = find_mount(CONTAINER, Path::new("/srv/docker")).unwrap();
        assert_eq!(m.mount_point, Path::new("/srv"));
        assert_eq!(m.source, "/dev/sdc1");
    }

    #[test]
    fn reads_this_machines_mountinfo() {
        let m = mount_info(Path::new("/")).unwrap();
        assert_eq!(m.mount_point, Path::new("/"));
        assert!(!m.fs_type.is_empty());
    }
}
