//! What the engine keeps in its data root that its API does not report. Both readings need the
//! data root to be readable from here (root on the node, or an agent container that mounts it
//! at the same path) and answer `None` when it is not.

use std::path::Path;

use jiff::Timestamp;

/// When the image's config was written to the engine's image store: the moment a pull, load or
/// build brought the image to this node. The API only knows `LastTagTime`, which a pull leaves
/// unset, and `Created`, the build time, possibly months ago.
pub fn image_stored_at(root_dir: &Path, image_id: &str) -> Option<Timestamp> {
    let hex = image_id.strip_prefix("sha256:").unwrap_or(image_id);
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    // One directory per storage driver (overlay2, vfs, …): the engine uses one of them.
    std::fs::read_dir(root_dir.join("image"))
        .ok()?
        .flatten()
        .filter_map(|driver| {
            let config = driver.path().join("imagedb/content/sha256").join(hex);
            let modified = std::fs::metadata(config).ok()?.modified().ok()?;
            Timestamp::try_from(modified).ok()
        })
        .max()
}

/// Bytes of container logs kept by the `json-file` and `local` drivers under
/// `ROOT/containers/ID/`, which `/system/df` leaves out.
pub fn container_log_bytes(root_dir: &Path) -> Option<u64> {
    let containers = std::fs::read_dir(root_dir.join("containers")).ok()?;
    let mut total = 0u64;
    for container in containers.flatten() {
        let dir = container.path();
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().contains("-json.log") {
                total += entry.metadata().map_or(0, |m| m.len());
            }
        }
        if let Ok(local) = std::fs::read_dir(dir.join("local-logs")) {
            total += local
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum::<u64>();
        }
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(purpose: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "swarmkeeper-layout-{purpose}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn counts_json_file_and_local_logs() {
        let root = scratch("logs");
        let c1 = root.join("containers/abc");
        let c2 = root.join("containers/def/local-logs");
        std::fs::create_dir_all(&c1).unwrap();
        std::fs::create_dir_all(&c2).unwrap();
        std::fs::write(c1.join("abc-json.log"), vec![0u8; 100]).unwrap();
        std::fs::write(c1.join("abc-json.log.1"), vec![0u8; 50]).unwrap();
        std::fs::write(c1.join("config.v2.json"), vec![0u8; 999]).unwrap();
        std::fs::write(c2.join("container.log"), vec![0u8; 30]).unwrap();
        assert_eq!(container_log_bytes(&root), Some(180));
        assert_eq!(container_log_bytes(&root.join("missing")), None);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn finds_when_an_image_was_stored() {
        let root = scratch("imagedb");
        let dir = root.join("image/overlay2/imagedb/content/sha256");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("abc123"), b"{}").unwrap();
        let stored = image_stored_at(&root, "sha256:abc123").unwrap();
        assert!(Timestamp::now().duration_since(stored).as_secs().abs() < 60);
        assert_eq!(image_stored_at(&root, "sha256:def456"), None);
        assert_eq!(image_stored_at(&root, "sha256:../../etc"), None);
        assert_eq!(
            image_stored_at(&root.join("missing"), "sha256:abc123"),
            None
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
