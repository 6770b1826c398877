//! The engine's JSON as it really comes: lists and maps that may be `null`, sizes of -1 for
//! "not computed", `<none>` placeholders, and the zero time for "never".

use std::collections::BTreeMap;
use std::path::PathBuf;

use jiff::Timestamp;
use serde::{Deserialize, Deserializer};

use crate::model::{
    ContainerMount, ContainerMounts, ContainerSummary, ContainerTimes, DfBuildCache, DfContainer,
    DfImage, DfVolume, EngineEvent, EngineInfo, EventKind, SystemDf,
};

/// Treats `null` like an absent field; pair with `#[serde(default)]`.
pub(crate) fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Negative sizes mean "not computed".
fn size(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn unix_seconds(seconds: i64) -> Result<Timestamp, String> {
    Timestamp::from_second(seconds).map_err(|e| format!("time {seconds} is out of range: {e}"))
}

/// Parses an RFC 3339 time; Go's zero time `0001-01-01T00:00:00Z` and an empty string mean unset.
pub(crate) fn engine_time(text: &str) -> Result<Option<Timestamp>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let time: Timestamp = text
        .parse()
        .map_err(|e| format!("time {text:?} cannot be read: {e}"))?;
    let go_zero_time = Timestamp::from_second(-62_135_596_800).expect("in range");
    Ok((time > go_zero_time).then_some(time))
}

/// Older engines list `<none>:<none>` and `<none>@<none>` for an image without references.
fn real_references(references: Vec<String>) -> Vec<String> {
    references
        .into_iter()
        .filter(|r| !r.starts_with("<none>"))
        .collect()
}

/// Container names come as `/name`.
fn container_names(names: Vec<String>) -> Vec<String> {
    names
        .into_iter()
        .map(|n| n.strip_prefix('/').map(str::to_string).unwrap_or(n))
        .collect()
}

/// `GET /version`.
#[derive(Deserialize)]
pub(crate) struct Version {
    #[serde(rename = "ApiVersion", default)]
    pub api_version: String,
}

#[derive(Deserialize)]
pub(crate) struct Info {
    #[serde(rename = "DockerRootDir")]
    root_dir: String,
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "ServerVersion", default)]
    server_version: String,
    #[serde(rename = "SystemTime", default)]
    system_time: String,
    #[serde(rename = "Swarm", default, deserialize_with = "nullable")]
    swarm: InfoSwarm,
    #[serde(rename = "RegistryConfig", default, deserialize_with = "nullable")]
    registry_config: InfoRegistryConfig,
}

#[derive(Deserialize, Default)]
struct InfoRegistryConfig {
    #[serde(rename = "IndexConfigs", default, deserialize_with = "nullable")]
    index_configs: BTreeMap<String, InfoIndexConfig>,
}

#[derive(Deserialize, Default)]
struct InfoIndexConfig {
    #[serde(rename = "Secure", default = "yes")]
    secure: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, Default)]
struct InfoSwarm {
    #[serde(rename = "NodeID", default, deserialize_with = "nullable")]
    node_id: String,
    #[serde(rename = "LocalNodeState", default, deserialize_with = "nullable")]
    local_node_state: String,
    #[serde(rename = "ControlAvailable", default, deserialize_with = "nullable")]
    control_available: bool,
    #[serde(rename = "Cluster", default, deserialize_with = "nullable")]
    cluster: InfoCluster,
}

#[derive(Deserialize, Default)]
struct InfoCluster {
    #[serde(rename = "ID", default, deserialize_with = "nullable")]
    id: String,
}

impl From<Info> for EngineInfo {
    fn from(info: Info) -> EngineInfo {
        EngineInfo {
            root_dir: PathBuf::from(info.root_dir),
            hostname: info.name,
            node_id: Some(info.swarm.node_id).filter(|id| !id.is_empty()),
            local_node_state: info.swarm.local_node_state,
            is_manager: info.swarm.control_available,
            server_version: info.server_version,
            insecure_registries: info
                .registry_config
                .index_configs
                .into_iter()
                .filter(|(_, index)| !index.secure)
                .map(|(name, _)| name)
                .collect(),
            system_time: engine_time(&info.system_time).ok().flatten(),
            cluster_id: Some(info.swarm.cluster.id).filter(|id| !id.is_empty()),
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct Df {
    #[serde(rename = "LayersSize", default)]
    layers_size: i64,
    #[serde(rename = "Images", default, deserialize_with = "nullable")]
    images: Vec<DfImageWire>,
    #[serde(rename = "Containers", default, deserialize_with = "nullable")]
    containers: Vec<DfContainerWire>,
    #[serde(rename = "Volumes", default, deserialize_with = "nullable")]
    volumes: Vec<DfVolumeWire>,
    #[serde(rename = "BuildCache", default, deserialize_with = "nullable")]
    build_cache: Vec<DfBuildCacheWire>,
}

/// An image as `/system/df` and `/images/json` list it (the same fields in both).
#[derive(Deserialize)]
pub(crate) struct DfImageWire {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "RepoTags", default, deserialize_with = "nullable")]
    repo_tags: Vec<String>,
    #[serde(rename = "RepoDigests", default, deserialize_with = "nullable")]
    repo_digests: Vec<String>,
    #[serde(rename = "Created")]
    created: i64,
    #[serde(rename = "Size")]
    size: i64,
    #[serde(rename = "SharedSize", default)]
    shared_size: i64,
    #[serde(rename = "Labels", default, deserialize_with = "nullable")]
    labels: BTreeMap<String, String>,
    #[serde(rename = "Containers", default = "minus_one")]
    containers: i64,
}

fn minus_one() -> i64 {
    -1
}

#[derive(Deserialize)]
struct DfContainerWire {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "ImageID", default)]
    image_id: String,
    #[serde(rename = "State", default)]
    state: String,
    #[serde(rename = "Created")]
    created: i64,
    #[serde(rename = "Labels", default, deserialize_with = "nullable")]
    labels: BTreeMap<String, String>,
    #[serde(rename = "SizeRw", default)]
    size_rw: i64,
    #[serde(rename = "Names", default, deserialize_with = "nullable")]
    names: Vec<String>,
    #[serde(rename = "Mounts", default, deserialize_with = "nullable")]
    mounts: Vec<DfMountWire>,
}

#[derive(Deserialize)]
struct DfMountWire {
    #[serde(rename = "Type", default)]
    kind: String,
    #[serde(rename = "Name", default)]
    name: String,
}

#[derive(Deserialize)]
pub(crate) struct DfVolumeWire {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Driver", default)]
    driver: String,
    #[serde(rename = "Mountpoint", default)]
    mountpoint: String,
    #[serde(rename = "Labels", default, deserialize_with = "nullable")]
    labels: BTreeMap<String, String>,
    #[serde(rename = "UsageData", default)]
    usage: Option<VolumeUsage>,
}

impl From<DfVolumeWire> for DfVolume {
    fn from(v: DfVolumeWire) -> DfVolume {
        DfVolume {
            name: v.name,
            driver: v.driver,
            mountpoint: v.mountpoint,
            labels: v.labels,
            size: v.usage.as_ref().and_then(|u| u64::try_from(u.size).ok()),
            ref_count: v.usage.as_ref().map_or(-1, |u| u.ref_count),
        }
    }
}

/// `GET /volumes`.
#[derive(Deserialize)]
pub(crate) struct VolumeList {
    #[serde(rename = "Volumes", default, deserialize_with = "nullable")]
    pub(crate) volumes: Vec<DfVolumeWire>,
}

#[derive(Deserialize)]
struct VolumeUsage {
    #[serde(rename = "Size", default = "minus_one")]
    size: i64,
    #[serde(rename = "RefCount", default = "minus_one")]
    ref_count: i64,
}

#[derive(Deserialize)]
struct DfBuildCacheWire {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "Size", default)]
    size: i64,
    #[serde(rename = "InUse", default)]
    in_use: bool,
    #[serde(rename = "Shared", default)]
    shared: bool,
    #[serde(rename = "CreatedAt", default, deserialize_with = "nullable")]
    created_at: String,
    #[serde(rename = "LastUsedAt", default, deserialize_with = "nullable")]
    last_used_at: String,
}

impl TryFrom<DfImageWire> for DfImage {
    type Error = String;

    fn try_from(i: DfImageWire) -> Result<DfImage, String> {
        Ok(DfImage {
            created: unix_seconds(i.created).map_err(|e| format!("image {}: {e}", i.id))?,
            id: i.id,
            repo_tags: real_references(i.repo_tags),
            repo_digests: real_references(i.repo_digests),
            size: size(i.size),
            shared_size: size(i.shared_size),
            labels: i.labels,
            containers: i.containers,
        })
    }
}

impl TryFrom<Df> for SystemDf {
    type Error = String;

    fn try_from(df: Df) -> Result<SystemDf, String> {
        let images = df
            .images
            .into_iter()
            .map(DfImage::try_from)
            .collect::<Result<_, String>>()?;
        let containers = df
            .containers
            .into_iter()
            .map(|c| {
                Ok(DfContainer {
                    created: unix_seconds(c.created)
                        .map_err(|e| format!("container {}: {e}", c.id))?,
                    id: c.id,
                    image_id: c.image_id,
                    state: c.state,
                    labels: c.labels,
                    size_rw: size(c.size_rw),
                    names: container_names(c.names),
                    volumes: c
                        .mounts
                        .into_iter()
                        .filter(|m| m.kind == "volume" && !m.name.is_empty())
                        .map(|m| m.name)
                        .collect(),
                })
            })
            .collect::<Result<_, String>>()?;
        let volumes = df.volumes.into_iter().map(DfVolume::from).collect();
        let build_cache = df
            .build_cache
            .into_iter()
            .map(|b| {
                Ok(DfBuildCache {
                    created: engine_time(&b.created_at)?,
                    last_used: engine_time(&b.last_used_at)?,
                    id: b.id,
                    size: size(b.size),
                    in_use: b.in_use,
                    shared: b.shared,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(SystemDf {
            layers_size: size(df.layers_size),
            images,
            containers,
            volumes,
            build_cache,
        })
    }
}

#[derive(Deserialize)]
pub(crate) struct ContainerListItem {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "ImageID", default)]
    image_id: String,
    #[serde(rename = "State", default)]
    state: String,
    #[serde(rename = "Created")]
    created: i64,
    #[serde(rename = "Labels", default, deserialize_with = "nullable")]
    labels: BTreeMap<String, String>,
    #[serde(rename = "Names", default, deserialize_with = "nullable")]
    names: Vec<String>,
}

impl TryFrom<ContainerListItem> for ContainerSummary {
    type Error = String;

    fn try_from(c: ContainerListItem) -> Result<ContainerSummary, String> {
        Ok(ContainerSummary {
            created: unix_seconds(c.created).map_err(|e| format!("container {}: {e}", c.id))?,
            id: c.id,
            image_id: c.image_id,
            state: c.state,
            labels: c.labels,
            names: container_names(c.names),
        })
    }
}

#[derive(Deserialize)]
pub(crate) struct ContainerInspect {
    #[serde(rename = "State")]
    state: ContainerInspectState,
}

#[derive(Deserialize)]
struct ContainerInspectState {
    #[serde(rename = "StartedAt", default)]
    started_at: String,
    #[serde(rename = "FinishedAt", default)]
    finished_at: String,
    #[serde(rename = "OOMKilled", default)]
    oom_killed: bool,
}

impl ContainerInspect {
    /// `State.OOMKilled`.
    pub(crate) fn oom_killed(&self) -> bool {
        self.state.oom_killed
    }
}

impl TryFrom<ContainerInspect> for ContainerTimes {
    type Error = String;

    fn try_from(c: ContainerInspect) -> Result<ContainerTimes, String> {
        Ok(ContainerTimes {
            started_at: engine_time(&c.state.started_at)?,
            finished_at: engine_time(&c.state.finished_at)?,
        })
    }
}

/// The answer to `POST /build/prune`.
#[derive(Deserialize)]
pub(crate) struct BuildPrune {
    #[serde(rename = "SpaceReclaimed", default)]
    space_reclaimed: i64,
}

impl BuildPrune {
    pub(crate) fn space_reclaimed(&self) -> u64 {
        size(self.space_reclaimed)
    }
}

#[derive(Deserialize)]
pub(crate) struct ContainerMountsInspect {
    #[serde(rename = "Config", default, deserialize_with = "nullable")]
    config: ContainerConfigEnv,
    #[serde(rename = "Mounts", default, deserialize_with = "nullable")]
    mounts: Vec<MountWire>,
}

#[derive(Deserialize, Default)]
struct ContainerConfigEnv {
    #[serde(rename = "Env", default, deserialize_with = "nullable")]
    env: Vec<String>,
}

#[derive(Deserialize)]
struct MountWire {
    #[serde(rename = "Source", default)]
    source: String,
    #[serde(rename = "Destination", default)]
    destination: String,
}

impl From<ContainerMountsInspect> for ContainerMounts {
    fn from(c: ContainerMountsInspect) -> ContainerMounts {
        ContainerMounts {
            env: c.config.env,
            mounts: c
                .mounts
                .into_iter()
                .map(|m| ContainerMount {
                    source: PathBuf::from(m.source),
                    destination: PathBuf::from(m.destination),
                })
                .collect(),
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct ImageInspect {
    #[serde(rename = "Id", default)]
    pub(crate) id: String,
    #[serde(rename = "RepoTags", default, deserialize_with = "nullable")]
    repo_tags: Vec<String>,
    #[serde(rename = "RepoDigests", default, deserialize_with = "nullable")]
    repo_digests: Vec<String>,
    #[serde(rename = "Created", default)]
    created: String,
    #[serde(rename = "Metadata", default, deserialize_with = "nullable")]
    metadata: ImageMetadata,
    #[serde(rename = "RootFS", default, deserialize_with = "nullable")]
    pub(crate) root_fs: ImageRootFs,
}

#[derive(Deserialize, Default)]
pub(crate) struct ImageRootFs {
    /// Diff IDs, base first.
    #[serde(rename = "Layers", default, deserialize_with = "nullable")]
    pub(crate) layers: Vec<String>,
}

/// One entry of `GET /images/{id}/history` (newest first).
#[derive(Deserialize)]
pub(crate) struct HistoryEntry {
    #[serde(rename = "Size", default)]
    size: i64,
}

/// Each layer's size from an image's history: the engine gives a layer-creating step the
/// size of its layer and an empty-layer step (`ENV`, `LABEL`, …) 0. A step whose layer is
/// really empty also says 0, so when some zero entries are layers and some are not, which
/// layer gets which size cannot be told: `None` then.
pub(crate) fn layer_sizes_from_history(
    history: &[HistoryEntry],
    layers: usize,
) -> Option<Vec<u64>> {
    let oldest_first: Vec<u64> = history.iter().rev().map(|h| size(h.size)).collect();
    let non_zero = oldest_first.iter().filter(|s| **s > 0).count();
    let zero = oldest_first.len() - non_zero;
    let zero_layers = layers.checked_sub(non_zero).filter(|n| *n <= zero)?;
    if zero_layers == 0 {
        return Some(oldest_first.into_iter().filter(|s| *s > 0).collect());
    }
    if zero_layers == zero {
        return Some(oldest_first);
    }
    // Zero-size layers only at the ends of the list, all of them on one side: still clear.
    let leading = oldest_first.iter().take_while(|s| **s == 0).count();
    let trailing = oldest_first.iter().rev().take_while(|s| **s == 0).count();
    if leading == zero || trailing == zero {
        let mut sizes: Vec<u64> = oldest_first.into_iter().filter(|s| *s > 0).collect();
        if leading == zero {
            sizes.splice(0..0, std::iter::repeat_n(0, zero_layers));
        } else {
            sizes.extend(std::iter::repeat_n(0, zero_layers));
        }
        return Some(sizes);
    }
    None
}

#[derive(Deserialize, Default)]
struct ImageMetadata {
    #[serde(rename = "LastTagTime", default, deserialize_with = "nullable")]
    last_tag_time: String,
}

impl ImageInspect {
    /// The image's `repo:tag` references, then its `repo@sha256:…` ones.
    pub(crate) fn references(&self) -> Vec<String> {
        let mut references = real_references(self.repo_tags.clone());
        references.extend(real_references(self.repo_digests.clone()));
        references
    }

    /// `LastTagTime` is set by `docker build`, `tag`, `commit` and `import`, but not by `pull` or
    /// `load`; then the build time is the best the engine knows.
    pub(crate) fn arrival(&self) -> Result<Timestamp, String> {
        if let Some(tagged) = engine_time(&self.metadata.last_tag_time)? {
            return Ok(tagged);
        }
        engine_time(&self.created)?.ok_or_else(|| "the image has no Created time".to_string())
    }
}

#[derive(Deserialize)]
pub(crate) struct Event {
    #[serde(rename = "Type", default)]
    kind: String,
    #[serde(rename = "Action", default)]
    action: String,
    #[serde(rename = "Actor", default)]
    actor: EventActor,
    #[serde(default)]
    time: i64,
    #[serde(rename = "timeNano", default)]
    time_nano: i64,
}

#[derive(Deserialize, Default)]
struct EventActor {
    #[serde(rename = "ID", default)]
    id: String,
    #[serde(rename = "Attributes", default, deserialize_with = "nullable")]
    attributes: BTreeMap<String, String>,
}

impl Event {
    /// `None` for the kinds of events swarmkeeper does not follow (networks, volumes, …).
    pub(crate) fn into_engine_event(self) -> Result<Option<EngineEvent>, String> {
        let kind = match self.kind.as_str() {
            "image" => EventKind::Image,
            "container" => EventKind::Container,
            "volume" => EventKind::Volume,
            _ => return Ok(None),
        };
        let time = if self.time_nano != 0 {
            Timestamp::from_nanosecond(i128::from(self.time_nano))
                .map_err(|e| format!("event time {} is out of range: {e}", self.time_nano))?
        } else {
            unix_seconds(self.time)?
        };
        let image = match kind {
            EventKind::Container => self.actor.attributes.get("image").cloned(),
            EventKind::Image | EventKind::Volume => None,
        };
        Ok(Some(EngineEvent {
            kind,
            action: self.action,
            actor_id: self.actor.id,
            image,
            attributes: self.actor.attributes,
            time,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_sizes_come_from_the_history_steps_that_made_layers() {
        let history = |sizes: &[i64]| -> Vec<HistoryEntry> {
            // The engine lists the newest step first.
            sizes
                .iter()
                .rev()
                .map(|&size| HistoryEntry { size })
                .collect()
        };
        // FROM scratch, COPY (5), ENV, LABEL, COPY (3).
        assert_eq!(
            layer_sizes_from_history(&history(&[5, 0, 0, 3]), 2),
            Some(vec![5, 3])
        );
        // Every step made a layer, one of them empty.
        assert_eq!(
            layer_sizes_from_history(&history(&[5, 0, 3]), 3),
            Some(vec![5, 0, 3])
        );
        // An empty layer and an empty-layer step on either side of a real one: unclear.
        assert_eq!(layer_sizes_from_history(&history(&[0, 5, 0, 3]), 3), None);
        // Zero entries all after the last layer with data: clear.
        assert_eq!(
            layer_sizes_from_history(&history(&[5, 3, 0, 0]), 3),
            Some(vec![5, 3, 0])
        );
        assert_eq!(layer_sizes_from_history(&history(&[5, 3]), 3), None);
    }

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn df_of_engine_1_41_is_read() {
        let json = r#"{
          "LayersSize": 2082256,
          "Images": [
            {"Containers": 1, "Created": 1795708008, "Id": "sha256:aaa",
             "Labels": null, "ParentId": "sha256:ppp", "RepoDigests": null,
             "RepoTags": ["app:1", "app:latest"], "SharedSize": 1982256, "Size": 2082256,
             "VirtualSize": 2082256},
            {"Containers": 0, "Created": 1795708000, "Id": "sha256:bbb",
             "Labels": {"swarmkeeper.gc.pin": "true"}, "RepoDigests": ["<none>@<none>"],
             "RepoTags": ["<none>:<none>"], "SharedSize": -1, "Size": -5}
          ],
          "Containers": [
            {"Id": "ccc", "Names": ["/web.1.xyz"], "Image": "app:1", "ImageID": "sha256:aaa",
             "Command": "/bin/busybox true", "Created": 1795708010, "Ports": [], "SizeRw": 12,
             "Labels": {"com.docker.swarm.service.name": "web"}, "State": "exited",
             "Status": "Exited (0) 1 second ago",
             "Mounts": [{"Type": "volume", "Name": "data", "Destination": "/data"},
                        {"Type": "bind", "Source": "/etc", "Destination": "/etc"}]},
            {"Id": "ddd", "Names": null, "ImageID": "sha256:aaa", "Created": 1795708011,
             "Labels": null, "State": "created"}
          ],
          "Volumes": [
            {"Name": "data", "Driver": "local", "Mountpoint": "/var/lib/docker/volumes/data/_data",
             "Labels": {"com.docker.stack.namespace": "db"},
             "UsageData": {"RefCount": 2, "Size": 4096}},
            {"Name": "remote", "Driver": "nfs", "UsageData": {"RefCount": -1, "Size": -1}},
            {"Name": "bare", "Driver": "local", "UsageData": null}
          ],
          "BuildCache": null,
          "BuilderSize": 0
        }"#;
        let df: Df = serde_json::from_str(json).unwrap();
        let df = SystemDf::try_from(df).unwrap();
        assert_eq!(df.layers_size, 2_082_256);

        let app = &df.images[0];
        assert_eq!(app.repo_tags, ["app:1", "app:latest"]);
        assert!(app.repo_digests.is_empty());
        assert!(app.labels.is_empty());
        assert_eq!(app.created, Timestamp::from_second(1_795_708_008).unwrap());
        assert_eq!(
            (app.size, app.shared_size, app.containers),
            (2_082_256, 1_982_256, 1)
        );

        let dangling = &df.images[1];
        assert!(dangling.repo_tags.is_empty());
        assert!(dangling.repo_digests.is_empty());
        assert_eq!((dangling.size, dangling.shared_size), (0, 0));
        assert_eq!(dangling.labels["swarmkeeper.gc.pin"], "true");

        let web = &df.containers[0];
        assert_eq!(web.names, ["web.1.xyz"]);
        assert_eq!((web.state.as_str(), web.size_rw), ("exited", 12));
        assert_eq!(web.labels["com.docker.swarm.service.name"], "web");
        let bare = &df.containers[1];
        assert_eq!(web.volumes, ["data"]);
        assert!(bare.names.is_empty() && bare.labels.is_empty() && bare.volumes.is_empty());
        assert_eq!(bare.size_rw, 0);

        let volumes: Vec<_> = df
            .volumes
            .iter()
            .map(|v| (v.name.as_str(), v.size, v.ref_count))
            .collect();
        assert_eq!(
            volumes,
            [
                ("data", Some(4096), 2),
                ("remote", None, -1),
                ("bare", None, -1)
            ]
        );
        let data = &df.volumes[0];
        assert_eq!(data.driver, "local");
        assert_eq!(data.mountpoint, "/var/lib/docker/volumes/data/_data");
        assert_eq!(data.labels["com.docker.stack.namespace"], "db");
        assert!(df.volumes[2].labels.is_empty());
        assert!(df.build_cache.is_empty());
    }

    #[test]
    fn df_with_everything_null_is_empty() {
        let df: Df = serde_json::from_str(
            r#"{"LayersSize":0,"Images":null,"Containers":null,"Volumes":null,"BuildCache":null}"#,
        )
        .unwrap();
        let df = SystemDf::try_from(df).unwrap();
        assert!(df.images.is_empty() && df.containers.is_empty() && df.volumes.is_empty());
    }

    #[test]
    fn build_cache_records_are_read() {
        let df: Df = serde_json::from_str(
            r#"{"BuildCache":[{"ID":"k1","Parent":"","Type":"regular","Size":300,
                "InUse":true,"Shared":false,"CreatedAt":"2026-11-26T12:00:00Z","UsageCount":2,
                "LastUsedAt":"2026-11-26T12:30:00Z"},
                {"ID":"k2","Size":10,"CreatedAt":"2026-11-26T12:00:00Z","LastUsedAt":null}]}"#,
        )
        .unwrap();
        let df = SystemDf::try_from(df).unwrap();
        assert_eq!(
            df.build_cache,
            [
                DfBuildCache {
                    id: "k1".into(),
                    size: 300,
                    in_use: true,
                    shared: false,
                    created: Some(ts("2026-11-26T12:00:00Z")),
                    last_used: Some(ts("2026-11-26T12:30:00Z")),
                },
                DfBuildCache {
                    id: "k2".into(),
                    size: 10,
                    in_use: false,
                    shared: false,
                    created: Some(ts("2026-11-26T12:00:00Z")),
                    last_used: None,
                }
            ]
        );
    }

    #[test]
    fn an_image_without_id_is_an_error_that_names_the_field() {
        let err = serde_json::from_str::<Df>(r#"{"Images":[{"Created":1,"Size":1}]}"#)
            .err()
            .unwrap();
        assert!(err.to_string().contains("`Id`"), "{err}");
    }

    #[test]
    fn info_inside_and_outside_a_swarm() {
        let json = r#"{"DockerRootDir":"/var/lib/docker","Name":"vm","ServerVersion":"20.10.24",
                       "Swarm":{"NodeID":"lkuqb6oz","LocalNodeState":"active",
                                "ControlAvailable":true}}"#;
        let info = EngineInfo::from(serde_json::from_str::<Info>(json).unwrap());
        assert_eq!(info.root_dir, PathBuf::from("/var/lib/docker"));
        assert_eq!(info.hostname, "vm");
        assert_eq!(info.node_id.as_deref(), Some("lkuqb6oz"));
        assert_eq!(info.server_version, "20.10.24");
        assert_eq!(info.local_node_state, "active");
        assert!(info.is_manager);

        let json = r#"{"DockerRootDir":"/d","Name":"vm","ServerVersion":"20.10.24",
                       "Swarm":{"NodeID":"","LocalNodeState":"inactive",
                                "ControlAvailable":false}}"#;
        let info = EngineInfo::from(serde_json::from_str::<Info>(json).unwrap());
        assert_eq!(info.node_id, None);
        assert_eq!(info.local_node_state, "inactive");
        assert!(!info.is_manager);

        // A worker; and an engine that says nothing about swarm at all.
        let json = r#"{"DockerRootDir":"/d","Name":"w1",
                       "Swarm":{"NodeID":"w1id","LocalNodeState":"active"}}"#;
        let info = EngineInfo::from(serde_json::from_str::<Info>(json).unwrap());
        assert_eq!(info.local_node_state, "active");
        assert!(!info.is_manager);
        let json = r#"{"DockerRootDir":"/d","Name":"vm","Swarm":null}"#;
        let info = EngineInfo::from(serde_json::from_str::<Info>(json).unwrap());
        assert_eq!((info.node_id, info.local_node_state.as_str()), (None, ""));
    }

    #[test]
    fn engine_times_with_nanoseconds_and_the_zero_time() {
        assert_eq!(
            engine_time("2026-11-26T15:46:48.283152396Z").unwrap(),
            Some(ts("2026-11-26T15:46:48.283152396Z"))
        );
        assert_eq!(engine_time("0001-01-01T00:00:00Z").unwrap(), None);
        assert_eq!(engine_time("").unwrap(), None);
        assert!(engine_time("yesterday").is_err());
    }

    #[test]
    fn container_times_of_a_created_and_an_exited_container() {
        let created: ContainerInspect = serde_json::from_str(
            r#"{"State":{"Status":"created","StartedAt":"0001-01-01T00:00:00Z",
                         "FinishedAt":"0001-01-01T00:00:00Z"}}"#,
        )
        .unwrap();
        assert!(!created.oom_killed());
        let times = ContainerTimes::try_from(created).unwrap();
        assert_eq!((times.started_at, times.finished_at), (None, None));

        let exited: ContainerInspect = serde_json::from_str(
            r#"{"State":{"Status":"exited","StartedAt":"2026-11-26T15:46:48.490559771Z",
                         "FinishedAt":"2026-11-26T15:46:48.509045434Z","OOMKilled":true}}"#,
        )
        .unwrap();
        assert!(exited.oom_killed());
        let times = ContainerTimes::try_from(exited).unwrap();
        assert_eq!(times.started_at, Some(ts("2026-11-26T15:46:48.490559771Z")));
        assert_eq!(
            times.finished_at,
            Some(ts("2026-11-26T15:46:48.509045434Z"))
        );
    }

    #[test]
    fn arrival_prefers_the_last_tag_time() {
        let tagged: ImageInspect = serde_json::from_str(
            r#"{"Created":"2026-11-26T15:46:48.260457944Z",
                "Metadata":{"LastTagTime":"2026-11-26T15:46:48.283152396Z"}}"#,
        )
        .unwrap();
        assert_eq!(
            tagged.arrival().unwrap(),
            ts("2026-11-26T15:46:48.283152396Z")
        );

        let pulled: ImageInspect = serde_json::from_str(
            r#"{"Created":"2024-01-02T03:04:05Z","Metadata":{"LastTagTime":"0001-01-01T00:00:00Z"}}"#,
        )
        .unwrap();
        assert_eq!(pulled.arrival().unwrap(), ts("2024-01-02T03:04:05Z"));

        let bare: ImageInspect =
            serde_json::from_str(r#"{"Created":"2024-01-02T03:04:05Z","Metadata":null}"#).unwrap();
        assert_eq!(bare.arrival().unwrap(), ts("2024-01-02T03:04:05Z"));

        let empty: ImageInspect = serde_json::from_str(r#"{"Metadata":{}}"#).unwrap();
        assert!(empty.arrival().is_err());
    }

    #[test]
    fn image_references_are_tags_then_digests_without_placeholders() {
        let image: ImageInspect = serde_json::from_str(
            r#"{"RepoTags":["app:1","app:2"],"RepoDigests":["app@sha256:ab"],"Created":""}"#,
        )
        .unwrap();
        assert_eq!(image.references(), ["app:1", "app:2", "app@sha256:ab"]);
        let dangling: ImageInspect = serde_json::from_str(
            r#"{"RepoTags":["<none>:<none>"],"RepoDigests":["<none>@<none>"]}"#,
        )
        .unwrap();
        assert!(dangling.references().is_empty());
        let bare: ImageInspect =
            serde_json::from_str(r#"{"RepoTags":null,"RepoDigests":null}"#).unwrap();
        assert!(bare.references().is_empty());
    }

    #[test]
    fn container_list_items_are_read() {
        let items: Vec<ContainerListItem> = serde_json::from_str(
            r#"[{"Id":"c1","Names":["/a"],"Image":"app:1","ImageID":"sha256:aaa","Created":1795708010,
                 "State":"running","Labels":{"k":"v"}},
                {"Id":"c2","Names":null,"ImageID":"sha256:bbb","Created":1795708011,
                 "State":"some-future-state","Labels":null}]"#,
        )
        .unwrap();
        let list: Vec<ContainerSummary> = items
            .into_iter()
            .map(ContainerSummary::try_from)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(list[0].names, ["a"]);
        assert_eq!(list[0].labels["k"], "v");
        assert_eq!(
            list[0].created,
            Timestamp::from_second(1_795_708_010).unwrap()
        );
        assert_eq!(list[1].state, "some-future-state");
        assert!(list[1].labels.is_empty());
    }

    #[test]
    fn events_keep_the_nanosecond_time_and_the_image_attribute() {
        let die: Event = serde_json::from_str(
            r#"{"status":"die","id":"b77e","from":"app:1","Type":"container","Action":"die",
                "Actor":{"ID":"b77e","Attributes":{"exitCode":"0","image":"app:1","name":"c1"}},
                "scope":"local","time":1795708008,"timeNano":1795708008509045434}"#,
        )
        .unwrap();
        let die = die.into_engine_event().unwrap().unwrap();
        assert_eq!(die.kind, EventKind::Container);
        assert_eq!(
            (die.action.as_str(), die.actor_id.as_str()),
            ("die", "b77e")
        );
        assert_eq!(die.image.as_deref(), Some("app:1"));
        assert_eq!(die.attributes["exitCode"], "0");
        assert_eq!(die.time, ts("2026-11-26T15:46:48.509045434Z"));

        let tag: Event = serde_json::from_str(
            r#"{"Type":"image","Action":"tag","Actor":{"ID":"sha256:4c9b","Attributes":{"name":"app:2"}},
                "time":1795708008}"#,
        )
        .unwrap();
        let tag = tag.into_engine_event().unwrap().unwrap();
        assert_eq!((tag.kind, tag.image), (EventKind::Image, None));
        assert_eq!(tag.time, Timestamp::from_second(1_795_708_008).unwrap());

        let network: Event = serde_json::from_str(
            r#"{"Type":"network","Action":"connect","Actor":{"ID":"n1","Attributes":null},"time":1}"#,
        )
        .unwrap();
        assert_eq!(network.into_engine_event().unwrap(), None);
    }
}
