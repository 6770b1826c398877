//! The size of the filesystem that holds the engine's data root.

use std::path::Path;

use swarmkeeper_gc::Filesystem;

/// statvfs of `path`. Available bytes are those an unprivileged writer could use (`f_bavail`),
/// as the kubelet's cadvisor reports them; the engine's pulls run as root but the kubelet
/// parity of the thresholds matters more than the root reserve.
pub fn measure(path: &Path) -> std::io::Result<Filesystem> {
    let stat = rustix::fs::statvfs(path)?;
    let block = stat.f_frsize;
    Ok(Filesystem {
        path: path.to_path_buf(),
        capacity_bytes: stat.f_blocks.saturating_mul(block),
        available_bytes: stat.f_bavail.saturating_mul(block),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn measures_a_real_filesystem() {
        let fs = super::measure(std::path::Path::new("/")).unwrap();
        assert!(fs.capacity_bytes > 0);
        assert!(fs.available_bytes <= fs.capacity_bytes);
        assert!(super::measure(std::path::Path::new("/nonexistent/swarmkeeper")).is_err());
    }
}
