//! The node snapshot: the planner's only input about a node. Its JSON form is a public contract
//! (`gc snapshot` writes it, `gc plan --snapshot` reads it), so field names never change.

use std::collections::BTreeMap;
use std::num::NonZeroU64;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The snapshot format version this build writes and reads.
pub const SNAPSHOT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub version: u32,
    /// Planning uses this as "now", so a recorded snapshot replays to the same plan.
    pub taken_at: Timestamp,
    pub filesystem: Filesystem,
    pub images: Vec<Image>,
    pub containers: Vec<Container>,
    /// Images of each Swarm service seen on the node, newest first.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub service_image_history: BTreeMap<String, Vec<String>>,
    /// The engine's build cache records; `None` when they were not asked for (an older
    /// snapshot, or an observation that did not need them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_cache: Option<Vec<BuildCacheRecord>>,
}

/// The filesystem that holds the engine's images, as statvfs sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filesystem {
    pub path: std::path::PathBuf,
    /// What writers without the root reserve can have: the size less the reserved blocks,
    /// which is what `df`'s `Use%` is a share of.
    pub capacity_bytes: u64,
    /// What they can still write (`f_bavail`).
    pub available_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub id: String,
    #[serde(default)]
    pub repo_tags: Vec<String>,
    #[serde(default)]
    pub repo_digests: Vec<String>,
    pub size_bytes: u64,
    /// Bytes in layers that other images also use; deleting this image does not free them.
    #[serde(default)]
    pub shared_bytes: u64,
    pub first_seen: Timestamp,
    /// `None`: no container has ever used the image.
    pub last_used: Option<Timestamp>,
    /// Pinned by the `swarmkeeper.gc.pin=true` label.
    #[serde(default)]
    pub pinned: bool,
    /// The image's layers, base first; `None` when not known (an older snapshot, or an
    /// engine whose layers could not be read). With every image's layers known, a plan counts
    /// a layer as freed only when the last image holding it goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<Layer>>,
}

/// One layer of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "LayerFields")]
pub struct Layer {
    /// What identifies the layer on the node (`sha256:…`): two images share the layer when
    /// they list the same digest. Live observation gives the layer store's chain ID, which
    /// names a layer together with every layer below it, as the engine stores it.
    digest: Box<str>,
    /// Bytes of the layer on disk, unpacked.
    size_bytes: u64,
    /// The digest folded to 64 bits when it is `sha256:` and 64 hex digits: the planner's
    /// key, so that it never reads the digest's text again (see [`Layer::key`]). 32 bytes a
    /// layer in all: a million of them are read in a few milliseconds.
    #[serde(skip)]
    key: Option<NonZeroU64>,
}

#[derive(Deserialize)]
struct LayerFields {
    digest: String,
    size_bytes: u64,
}

impl From<LayerFields> for Layer {
    fn from(fields: LayerFields) -> Layer {
        Layer::new(fields.digest, fields.size_bytes)
    }
}

impl Layer {
    pub fn new(digest: String, size_bytes: u64) -> Layer {
        Layer {
            key: sha256_key(&digest),
            digest: digest.into_boxed_str(),
            size_bytes,
        }
    }

    pub fn digest(&self) -> &str {
        &self.digest
    }

    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// A `sha256:` digest's four 64-bit quarters mixed: two layers with the same key count as
    /// the same layer. Real digests are uniformly random, so among a million layers two share
    /// a key with odds of about 1 in 10^8; the cost would be a miscounted layer. A small key
    /// keeps the planner's table in cache (a million layers in 100 ms). `None` for a digest of
    /// another form (a hand-written snapshot), which is then compared whole.
    pub fn key(&self) -> Option<u64> {
        self.key.map(NonZeroU64::get)
    }
}

/// `sha256:` followed by 64 lowercase hex digits, its four 64-bit quarters mixed into one
/// (its lowest bit set: a key is never zero). A real digest is random already; the mixing keeps
/// hand-written ones (`sha256:1111…`) apart too.
fn sha256_key(digest: &str) -> Option<NonZeroU64> {
    let hex = digest.strip_prefix("sha256:")?;
    let lowercase_hex = |b: u8| matches!(b, b'0'..=b'9' | b'a'..=b'f');
    if hex.len() != 64 || !hex.bytes().all(lowercase_hex) {
        return None;
    }
    let key = (0..4).try_fold(0u64, |key, quarter| {
        let part = u64::from_str_radix(&hex[quarter * 16..quarter * 16 + 16], 16).ok()?;
        Some(splitmix(key ^ part))
    })?;
    NonZeroU64::new(key | 1)
}

/// SplitMix64's finaliser: every bit of the input moves every bit of the output.
fn splitmix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One record of the engine's build cache (BuildKit), as `/system/df` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildCacheRecord {
    pub id: String,
    pub size_bytes: u64,
    /// A build is using it now.
    #[serde(default)]
    pub in_use: bool,
    /// Its data is also part of an image: pruning it frees nothing of that.
    #[serde(default)]
    pub shared: bool,
    pub created: Timestamp,
    /// `None`: never used since it was created.
    #[serde(default)]
    pub last_used: Option<Timestamp>,
}

impl Image {
    /// How outputs name the image: its first tag, else its first `repo@sha256:…` (Swarm pulls
    /// by digest, so images on workers often have no tag), else its id.
    pub fn name(&self) -> &str {
        self.repo_tags
            .first()
            .or(self.repo_digests.first())
            .unwrap_or(&self.id)
    }

    /// Bytes that deleting this image really gives back.
    pub fn unique_bytes(&self) -> u64 {
        self.size_bytes.saturating_sub(self.shared_bytes)
    }

    /// Last use, where an image never used counts as used when first seen: this keeps max-age
    /// from deleting an image the moment it was pulled.
    pub fn last_activity(&self) -> Timestamp {
        self.last_used.unwrap_or(self.first_seen)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    pub image_id: String,
    pub state: ContainerState,
    pub created: Timestamp,
    pub finished_at: Option<Timestamp>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    Running,
    Paused,
    Restarting,
    Created,
    Removing,
    Exited,
    Dead,
}

impl ContainerState {
    /// A container in a terminal state never runs again by itself.
    pub fn is_terminal(self) -> bool {
        matches!(self, ContainerState::Exited | ContainerState::Dead)
    }
}

/// A snapshot that could not be read, with the position of the fault in the JSON text.
#[derive(Debug, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct SnapshotError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl Snapshot {
    /// Parses the JSON form. Unknown fields are ignored so newer writers stay readable.
    pub fn from_json(text: &str) -> Result<Snapshot, SnapshotError> {
        let snapshot: Snapshot = serde_json::from_str(text).map_err(|e| SnapshotError {
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        })?;
        if snapshot.version != SNAPSHOT_VERSION {
            let (line, column) = position_of_key(text, "version");
            return Err(SnapshotError {
                line,
                column,
                message: format!(
                    "unsupported snapshot version {}, this build reads version {SNAPSHOT_VERSION}",
                    snapshot.version
                ),
            });
        }
        Ok(snapshot)
    }

    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("a snapshot always serialises")
    }
}

/// serde_json appends " at line L column C" to its messages; the error carries those separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Line and column (1-based) of the first `"key"` in the text, for errors found after parsing.
fn position_of_key(text: &str, key: &str) -> (usize, usize) {
    let needle = format!("\"{key}\"");
    let offset = text.find(&needle).unwrap_or(0);
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = offset - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"{
  "version": 1,
  "taken_at": "2026-11-26T12:00:00Z",
  "filesystem": {"path": "/var/lib/docker", "capacity_bytes": 1000, "available_bytes": 50},
  "images": [
    {"id": "sha256:a", "repo_tags": ["app:1"], "repo_digests": [], "size_bytes": 450,
     "shared_bytes": 0, "first_seen": "2026-11-26T10:00:00Z", "last_used": null, "pinned": false,
     "some_future_field": {"ignored": true}}
  ],
  "containers": [
    {"id": "c1", "image_id": "sha256:a", "state": "exited", "created": "2026-11-26T10:00:00Z",
     "finished_at": "2026-11-26T10:05:00Z", "labels": {"com.docker.swarm.service.name": "web"}}
  ],
  "service_image_history": {"web": ["sha256:a"]}
}"#;

    #[test]
    fn reads_the_contract_example_and_ignores_unknown_fields() {
        let s = Snapshot::from_json(MINIMAL).unwrap();
        assert_eq!(s.images[0].unique_bytes(), 450);
        assert_eq!(s.containers[0].state, ContainerState::Exited);
        assert_eq!(s.service_image_history["web"], vec!["sha256:a".to_string()]);
    }

    #[test]
    fn layer_keys_keep_hand_written_digests_apart() {
        let layer = |c: char| Layer::new(format!("sha256:{}", c.to_string().repeat(64)), 1);
        let keys: std::collections::HashSet<_> = "0123456789abcdef"
            .chars()
            .map(|c| layer(c).key().unwrap())
            .collect();
        assert_eq!(keys.len(), 16);
        assert_eq!(Layer::new("sha256:short".into(), 1).key(), None);
        assert_eq!(
            Layer::new(format!("sha256:{}", "A".repeat(64)), 1).key(),
            None
        );
    }

    #[test]
    fn round_trips_through_json() {
        let s = Snapshot::from_json(MINIMAL).unwrap();
        assert_eq!(Snapshot::from_json(&s.to_json_pretty()).unwrap(), s);
    }

    #[test]
    fn a_missing_field_is_named_with_its_position() {
        let text = MINIMAL.replace(r#""size_bytes": 450,"#, "");
        let err = Snapshot::from_json(&text).unwrap_err();
        assert!(err.message.contains("missing field `size_bytes`"), "{err}");
        assert_eq!(err.line, 8);
    }

    #[test]
    fn a_wrong_type_is_reported_at_its_position() {
        let text = MINIMAL.replace(r#""size_bytes": 450"#, r#""size_bytes": "big""#);
        let err = Snapshot::from_json(&text).unwrap_err();
        assert!(err.message.contains("invalid type"), "{err}");
        assert_eq!((err.line, err.column), (6, 86));
    }

    #[test]
    fn an_unknown_state_is_rejected() {
        let text = MINIMAL.replace(r#""state": "exited""#, r#""state": "sleeping""#);
        let err = Snapshot::from_json(&text).unwrap_err();
        assert!(err.message.contains("unknown variant `sleeping`"), "{err}");
    }

    #[test]
    fn another_version_is_rejected_at_the_version_key() {
        let text = MINIMAL.replace(r#""version": 1"#, r#""version": 7"#);
        let err = Snapshot::from_json(&text).unwrap_err();
        assert_eq!((err.line, err.column), (2, 3));
        assert!(err.message.contains("version 7"));
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        for cut in 0..MINIMAL.len() {
            if MINIMAL.is_char_boundary(cut) {
                assert!(Snapshot::from_json(&MINIMAL[..cut]).is_err());
            }
        }
    }
}
