//! What the engine reports, as plain data independent of any API version's field names.

use std::collections::BTreeMap;
use std::path::PathBuf;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// `GET /info`, reduced to what swarmkeeper uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineInfo {
    /// `DockerRootDir`: the filesystem whose usage image GC measures.
    pub root_dir: PathBuf,
    /// `Name`: the engine host's hostname.
    pub hostname: String,
    /// `Swarm.NodeID`; `None` when the engine is not part of a swarm.
    pub node_id: Option<String>,
    /// `Swarm.LocalNodeState`: `inactive` (not in a swarm), `pending`, `active`, `error` or
    /// `locked` (kept as text: the engine may know more states than this crate).
    pub local_node_state: String,
    /// `Swarm.ControlAvailable`: the node is a swarm manager, so the swarm API (services,
    /// tasks, nodes) answers here.
    pub is_manager: bool,
    /// `ServerVersion`, e.g. `20.10.24+dfsg1`.
    pub server_version: String,
    /// The registries of the daemon's `insecure-registries` given by name (`host:port`,
    /// `RegistryConfig.IndexConfigs` with `Secure: false`): those it pulls from over plain
    /// HTTP. Ranges (`InsecureRegistryCIDRs`, 127.0.0.0/8 by default) are not listed.
    pub insecure_registries: Vec<String>,
    /// `SystemTime`: the engine's clock, to compare with times the engine set.
    pub system_time: Option<Timestamp>,
    /// `Swarm.Cluster.ID`: which swarm this is, when the node is a manager.
    pub cluster_id: Option<String>,
}

/// `GET /system/df`: the engine's disk usage by kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemDf {
    /// Bytes of all image layers together, each shared layer counted once.
    pub layers_size: u64,
    /// Top-level images (not the intermediate images of the classic builder).
    pub images: Vec<DfImage>,
    pub containers: Vec<DfContainer>,
    pub volumes: Vec<DfVolume>,
    pub build_cache: Vec<DfBuildCache>,
}

/// One image in [`SystemDf`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DfImage {
    /// `sha256:…`.
    pub id: String,
    /// `repo:tag` references; empty for a dangling image.
    pub repo_tags: Vec<String>,
    /// `repo@sha256:…` references, known for images pulled from or pushed to a registry.
    pub repo_digests: Vec<String>,
    /// When the image was built (its config's `created`), not when it arrived here.
    pub created: Timestamp,
    /// Bytes of all the image's layers, shared ones included.
    pub size: u64,
    /// Bytes of the layers this image shares with other images; deleting the image frees
    /// `size - shared_size`.
    pub shared_size: u64,
    pub labels: BTreeMap<String, String>,
    /// How many containers (in any state) use the image; -1 when the engine did not count.
    pub containers: i64,
}

/// One container in [`SystemDf`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DfContainer {
    pub id: String,
    /// `sha256:…` of the image the container runs.
    pub image_id: String,
    /// `created`, `running`, `paused`, `restarting`, `removing`, `exited` or `dead`.
    pub state: String,
    pub created: Timestamp,
    pub labels: BTreeMap<String, String>,
    /// Bytes the container has written to its own writable layer.
    pub size_rw: u64,
    /// The container's names without the leading `/`.
    pub names: Vec<String>,
    /// The names of the volumes it mounts (its `Mounts` of type `volume`).
    #[serde(default)]
    pub volumes: Vec<String>,
}

/// One volume in [`SystemDf`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DfVolume {
    pub name: String,
    /// e.g. `local`.
    #[serde(default)]
    pub driver: String,
    /// Where the volume's data is on the engine's host, e.g.
    /// `/var/lib/docker/volumes/NAME/_data`; empty for a driver that does not say.
    #[serde(default)]
    pub mountpoint: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `None` when the engine could not measure the volume (e.g. a non-local driver).
    pub size: Option<u64>,
    /// How many containers reference the volume; -1 when the engine did not count.
    pub ref_count: i64,
}

/// One build cache record in [`SystemDf`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DfBuildCache {
    pub id: String,
    pub size: u64,
    pub in_use: bool,
    /// Its data is also part of an image.
    pub shared: bool,
    /// `None` when the engine did not say.
    pub created: Option<Timestamp>,
    /// `None`: never used since it was made.
    pub last_used: Option<Timestamp>,
}

/// One container from `GET /containers/json?all=1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSummary {
    pub id: String,
    /// `sha256:…` of the image the container runs.
    pub image_id: String,
    /// `created`, `running`, `paused`, `restarting`, `removing`, `exited` or `dead`.
    pub state: String,
    pub created: Timestamp,
    pub labels: BTreeMap<String, String>,
    /// The container's names without the leading `/`.
    pub names: Vec<String>,
}

/// A container's start and finish times from `GET /containers/{id}/json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerTimes {
    /// `None` when the container never started.
    pub started_at: Option<Timestamp>,
    /// `None` when the container has not stopped since it last started, or never ran.
    pub finished_at: Option<Timestamp>,
}

/// What an [`EngineEvent`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Image,
    Container,
    /// A volume's `create`, `mount`, `unmount` or `destroy` (`actor_id` is its name).
    Volume,
}

/// One image or container event from `GET /events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineEvent {
    pub kind: EventKind,
    /// The engine's `Action`, e.g. `pull`, `tag`, `untag`, `load`, `delete`, `create`, `start`,
    /// `die`, `destroy`; some carry details, like `exec_start: sh -c …` or
    /// `health_status: healthy`.
    pub action: String,
    /// `Actor.ID`: the image ID, the container ID, or for `pull` the pulled reference.
    pub actor_id: String,
    /// For container events, the `image` attribute: the reference the container was created
    /// with, as the user wrote it.
    pub image: Option<String>,
    /// `Actor.Attributes`: labels, `name`, `exitCode`, ….
    pub attributes: BTreeMap<String, String>,
    /// When the engine recorded the event, to the nanosecond.
    pub time: Timestamp,
}

/// What `GET /containers/{id}/json` says about a container's environment and mounts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContainerMounts {
    /// `Config.Env`: `KEY=VALUE` entries.
    pub env: Vec<String>,
    pub mounts: Vec<ContainerMount>,
}

/// One of a container's mounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerMount {
    /// Where the data is on the engine's host (a bind's source, a volume's `_data` folder).
    pub source: std::path::PathBuf,
    /// Where the container sees it.
    pub destination: std::path::PathBuf,
}
