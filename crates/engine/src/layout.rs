//! What the engine keeps in its data root that its API does not report. Both readings need the
//! data root to be readable from here (root on the node, or an agent container that mounts it
//! at the same path) and answer `None` when it is not.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use sha2::{Digest, Sha256};

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

/// A container whose `json-file` log has no size limit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UnboundedLog {
    pub container_id: String,
    /// Bytes of its log file now.
    pub size: u64,
}

/// The containers logging with `json-file` and no `max-size`, which grows their log until
/// the disk is full (`json-file`'s default, unlike `local`), read from each container's
/// `ROOT/containers/ID/hostconfig.json` (where the engine keeps the log options in force,
/// its daemon-wide defaults merged in) and the size of `ID-json.log`. `None` when the data
/// root cannot be read here.
pub fn unbounded_json_logs(root_dir: &Path) -> Option<Vec<UnboundedLog>> {
    #[derive(serde::Deserialize)]
    struct HostConfig {
        #[serde(rename = "LogConfig", default)]
        log_config: LogConfig,
    }
    #[derive(serde::Deserialize, Default)]
    struct LogConfig {
        #[serde(rename = "Type", default)]
        kind: String,
        #[serde(rename = "Config", default)]
        config: Option<std::collections::BTreeMap<String, String>>,
    }
    let containers = std::fs::read_dir(root_dir.join("containers")).ok()?;
    let mut unbounded = Vec::new();
    for container in containers.flatten() {
        let dir = container.path();
        let Ok(text) = std::fs::read(dir.join("hostconfig.json")) else {
            continue;
        };
        let Ok(host) = serde_json::from_slice::<HostConfig>(&text) else {
            continue;
        };
        let limited = host
            .log_config
            .config
            .as_ref()
            .and_then(|c| c.get("max-size"))
            .is_some_and(|size| !size.is_empty() && size != "-1");
        if host.log_config.kind != "json-file" || limited {
            continue;
        }
        let id = container.file_name().to_string_lossy().into_owned();
        let size = std::fs::metadata(dir.join(format!("{id}-json.log"))).map_or(0, |m| m.len());
        unbounded.push(UnboundedLog {
            container_id: id,
            size,
        });
    }
    Some(unbounded)
}

/// One layer of an image as the engine's layer store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredLayer {
    /// `sha256:…` chain ID: the layer together with every layer below it, which is what the
    /// store keeps once however many images use it.
    pub chain_id: String,
    /// Bytes of the layer's own files, unpacked (`DiffSize`).
    pub size: u64,
}

/// The chain IDs of an image's layers from their diff IDs (`RootFS.Layers`), base first:
/// the first is its diff ID, each next one `sha256(previous + " " + diff ID)`, as the layer
/// store names them.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut chain: Vec<String> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match chain.last() {
            None => diff_id.clone(),
            Some(parent) => {
                let mut hasher = Sha256::new();
                hasher.update(parent.as_bytes());
                hasher.update(b" ");
                hasher.update(diff_id.as_bytes());
                sha256_text(&hasher.finalize().into())
            }
        };
        chain.push(next);
    }
    chain
}

/// `sha256:` and the digest's 64 lowercase hex digits, as the engine writes digests. Snapshots
/// of nodes with thousands of layers write one per layer: without a formatter call per byte.
pub fn sha256_text(digest: &[u8; 32]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(71);
    text.push_str("sha256:");
    for byte in digest {
        text.push(char::from(HEX[usize::from(byte >> 4)]));
        text.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    text
}

/// When a container last started and finished, from the engine's own record of it
/// (`ROOT/containers/ID/config.v2.json`, written on every change of state): the same answer as
/// `GET /containers/{id}/json` without a request, which matters when a snapshot would
/// otherwise inspect every stopped container. `None` when the file cannot be read or does not
/// parse.
pub fn container_times(root_dir: &Path, container_id: &str) -> Option<crate::ContainerTimes> {
    #[derive(serde::Deserialize)]
    struct Config {
        #[serde(rename = "State")]
        state: State,
    }
    #[derive(serde::Deserialize)]
    struct State {
        #[serde(rename = "StartedAt", default)]
        started_at: String,
        #[serde(rename = "FinishedAt", default)]
        finished_at: String,
    }
    if container_id.is_empty() || !container_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let path = root_dir
        .join("containers")
        .join(container_id)
        .join("config.v2.json");
    let config: Config = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    Some(crate::ContainerTimes {
        started_at: crate::wire::engine_time(&config.state.started_at).ok()?,
        finished_at: crate::wire::engine_time(&config.state.finished_at).ok()?,
    })
}

/// The engine's image store under its data root (`ROOT/image/DRIVER`), read without a request
/// to the engine: each image's layers and their sizes.
pub struct ImageStore {
    /// One folder per storage driver the engine has used (`overlay2`, `vfs`, …).
    drivers: Vec<PathBuf>,
    /// Layer sizes already read: images built on the same bases share most of their layers.
    sizes: std::collections::HashMap<String, u64>,
}

impl ImageStore {
    /// `None` when the data root cannot be read here, or the engine keeps its images elsewhere
    /// (the containerd image store).
    pub fn open(root_dir: &Path) -> Option<ImageStore> {
        let drivers: Vec<PathBuf> = std::fs::read_dir(root_dir.join("image"))
            .ok()?
            .flatten()
            .map(|e| e.path())
            .collect();
        (!drivers.is_empty()).then(|| ImageStore {
            drivers,
            sizes: std::collections::HashMap::new(),
        })
    }

    /// The ids (`sha256:…`) of the images in the store (`DRIVER/imagedb/content/sha256/*`),
    /// in no particular order: top-level images and, on a node that builds with the classic
    /// builder, the intermediate images under them. Read without a request to the engine, so
    /// a caller can read the images' layers while the engine is busy answering another one.
    pub fn image_ids(&self) -> Vec<String> {
        self.drivers
            .iter()
            .filter_map(|driver| std::fs::read_dir(driver.join("imagedb/content/sha256")).ok())
            .flat_map(|entries| entries.flatten())
            .filter_map(|entry| {
                let name = entry.file_name();
                let hex = digest_hex(name.to_str()?)?;
                Some(format!("sha256:{hex}"))
            })
            .collect()
    }

    /// An image's layers, base first: its config (`DRIVER/imagedb/content/sha256/ID`, whose
    /// `rootfs.diff_ids` give the chain IDs) and each layer's `size` file
    /// (`DRIVER/layerdb/sha256/CHAIN/size`). `None` when the image is not in the store.
    pub fn layers(&mut self, image_id: &str) -> Option<Vec<StoredLayer>> {
        let hex = digest_hex(image_id)?;
        let (driver, config) = self.drivers.iter().find_map(|driver| {
            let config = std::fs::read(driver.join("imagedb/content/sha256").join(hex)).ok()?;
            Some((driver, config))
        })?;
        #[derive(serde::Deserialize)]
        struct Config {
            rootfs: RootFs,
        }
        #[derive(serde::Deserialize)]
        struct RootFs {
            #[serde(default)]
            diff_ids: Vec<String>,
        }
        let config: Config = serde_json::from_slice(&config).ok()?;
        chain_ids(&config.rootfs.diff_ids)
            .into_iter()
            .map(|chain_id| {
                let size = match self.sizes.get(&chain_id) {
                    Some(&size) => size,
                    None => {
                        let dir = driver.join("layerdb/sha256").join(digest_hex(&chain_id)?);
                        let size: u64 = std::fs::read_to_string(dir.join("size"))
                            .ok()?
                            .trim()
                            .parse()
                            .ok()?;
                        self.sizes.insert(chain_id.clone(), size);
                        size
                    }
                };
                Some(StoredLayer { chain_id, size })
            })
            .collect()
    }
}

/// The hex of a `sha256:HEX` digest, refused unless it is plain hex (it becomes a path).
fn digest_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    (!hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
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

    #[test]
    fn finds_json_file_logs_without_a_size_limit() {
        let root = scratch("unbounded");
        let container = |id: &str, host: &str, log: usize| {
            let dir = root.join("containers").join(id);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("hostconfig.json"), host).unwrap();
            std::fs::write(dir.join(format!("{id}-json.log")), vec![b'x'; log]).unwrap();
        };
        container(
            "aa",
            r#"{"LogConfig":{"Type":"json-file","Config":{}}}"#,
            70,
        );
        container(
            "bb",
            r#"{"LogConfig":{"Type":"json-file","Config":{"max-size":"10m"}}}"#,
            5,
        );
        container("cc", r#"{"LogConfig":{"Type":"local","Config":{}}}"#, 5);
        container(
            "dd",
            r#"{"LogConfig":{"Type":"json-file","Config":null}}"#,
            3,
        );
        let mut found = unbounded_json_logs(&root).unwrap();
        found.sort_by(|a, b| a.container_id.cmp(&b.container_id));
        assert_eq!(
            found,
            [
                UnboundedLog {
                    container_id: "aa".into(),
                    size: 70
                },
                UnboundedLog {
                    container_id: "dd".into(),
                    size: 3
                },
            ]
        );
        assert_eq!(unbounded_json_logs(&root.join("missing")), None);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn chain_ids_follow_the_layer_store() {
        // The values of `docker image inspect` for busybox:1.36 and the store's directories.
        let diff = |n: u8| format!("sha256:{}", format!("{n:x}").repeat(64));
        let ids = chain_ids(&[diff(1), diff(2)]);
        assert_eq!(ids[0], diff(1));
        let expected = Sha256::digest(format!("{} {}", diff(1), diff(2)).as_bytes());
        let hex: String = expected.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(ids[1], format!("sha256:{hex}"));
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn sha256_text_is_the_lowercase_hex_of_the_digest() {
        let digest: [u8; 32] = std::array::from_fn(|i| (i * 8 + 7) as u8);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(sha256_text(&digest), format!("sha256:{hex}"));
    }

    #[test]
    fn reads_a_containers_times_from_its_config() {
        let root = scratch("container-times");
        let dir = root.join("containers/abc123");
        std::fs::create_dir_all(&dir).unwrap();
        // As the engine writes it, trimmed.
        std::fs::write(
            dir.join("config.v2.json"),
            r#"{"State":{"Running":false,"StartedAt":"2026-11-29T22:38:13.799343345Z","FinishedAt":"2026-11-29T22:40:00Z"},"ID":"abc123"}"#,
        )
        .unwrap();
        let times = container_times(&root, "abc123").unwrap();
        assert_eq!(
            times.started_at,
            Some("2026-11-29T22:38:13.799343345Z".parse().unwrap())
        );
        assert_eq!(
            times.finished_at,
            Some("2026-11-29T22:40:00Z".parse().unwrap())
        );
        std::fs::write(
            dir.join("config.v2.json"),
            r#"{"State":{"StartedAt":"2026-11-29T22:38:13Z","FinishedAt":"0001-01-01T00:00:00Z"}}"#,
        )
        .unwrap();
        assert_eq!(container_times(&root, "abc123").unwrap().finished_at, None);
        assert_eq!(container_times(&root, "def456"), None);
        assert_eq!(container_times(&root, "../abc123"), None);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn reads_an_images_layers_from_the_store() {
        let root = scratch("layers");
        let store = root.join("image/overlay2");
        let diffs = [
            format!("sha256:{}", "a".repeat(64)),
            format!("sha256:{}", "b".repeat(64)),
        ];
        let chain = chain_ids(&diffs);
        let config = serde_json::json!({"rootfs": {"type": "layers", "diff_ids": diffs}});
        std::fs::create_dir_all(store.join("imagedb/content/sha256")).unwrap();
        std::fs::write(
            store.join("imagedb/content/sha256/cafe"),
            config.to_string(),
        )
        .unwrap();
        for (id, size) in chain.iter().zip(["100", "2048\n"]) {
            let dir = store
                .join("layerdb/sha256")
                .join(id.strip_prefix("sha256:").unwrap());
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("size"), size).unwrap();
        }
        let mut store = ImageStore::open(&root).unwrap();
        let layers = store.layers("sha256:cafe").unwrap();
        assert_eq!(
            layers,
            [
                StoredLayer {
                    chain_id: chain[0].clone(),
                    size: 100
                },
                StoredLayer {
                    chain_id: chain[1].clone(),
                    size: 2048
                },
            ]
        );
        assert_eq!(store.image_ids(), ["sha256:cafe"]);
        assert_eq!(store.layers("sha256:beef"), None);
        assert_eq!(store.layers("sha256:../x"), None);
        assert!(ImageStore::open(&root.join("missing")).is_none());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
