//! The only part of swarmkeeper that speaks to the Docker Engine API.
//!
//! [`Engine`] finds the engine like the docker CLI does and turns its answers into plain data
//! ([`SystemDf`], [`ContainerSummary`], [`EngineEvent`], …) with [`jiff::Timestamp`] times.
//! Every failure is an [`EngineError`] that names the engine and repeats what it said.
//!
//! Swarm's objects are read typed: services and tasks come as the `swarmkeeper-swarm` crate's
//! [`Service`] (raw spec to write back, [`ServiceView`] to read) and [`Task`], re-exported
//! here. Specs are written raw, read typed; the few edits swarmkeeper makes to a raw spec are
//! [`set_replicas`], [`force_update`] and [`inherit_replicas`].

mod edit;
mod error;
mod http;
pub mod layout;
pub mod logs;
mod model;
mod nodes;
mod registry_auth;
mod swarm;
mod wire;

use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use jiff::Timestamp;

pub use error::EngineError;
pub use model::{
    ContainerMount, ContainerMounts, ContainerSummary, ContainerTimes, DfBuildCache, DfContainer,
    DfImage, DfVolume, EngineEvent, EngineInfo, EventKind, SystemDf,
};

pub use logs::{is_logs_unreadable, LogLine, LogOptions, LogStream, LOGS_UNREADABLE};
pub use nodes::{NodeChange, SwarmNode};
pub use swarm::{
    is_out_of_sequence, node_job_spec, Changed, ConfigObject, Created, Network, ObjectSpec,
    ObjectSpecView, ServiceEvent, SwarmObject,
};

pub use edit::{
    force_update, inherit_replicas, overlay_compose, overlay_form_fields, set_image, set_label,
    set_replicas, swap_file_ref, swap_network, COMPOSE_ONLY_KEYS, COMPOSE_RENDERED_KEYS,
};
pub use registry_auth::{RegistryAuth, RegistryAuthFuture};
pub use swarmkeeper_swarm::{
    check_stack_name, exit_wording, file_users, processes_killed, task_outcome, ExitFacts,
    FailureAction, FileKind, FileRef, FileUsers, Healthcheck, ImageRef, LogDriver, MountView,
    PortConfig, PublishMode, ResourceAmounts, RestartCondition, RestartPolicy, Service,
    ServiceMode, ServiceView, SpecError, Task, TaskHolding, TaskState, UpdateConfig, UpdateOrder,
    UpdateState, UpdateStatus, STACK_NAMESPACE_LABEL,
};

use http::{encode, RawClient};

/// Where the docker CLI looks when `DOCKER_HOST` is not set.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Characters left as they are in an image reference or ID placed in a URL path.
const REFERENCE_CHARS: &[u8] = b":/@";

/// A handle on one Docker Engine. Cheap to clone; every request opens its own connection, so a
/// handle made while the engine is down works once it is up.
#[derive(Clone, Debug)]
pub struct Engine {
    raw: RawClient,
}

impl Engine {
    /// Like the docker CLI: `DOCKER_HOST` (`unix://PATH` or `tcp://HOST:PORT`), else
    /// [`DEFAULT_HOST`]. Does not connect yet.
    pub fn from_env() -> Result<Engine, EngineError> {
        match std::env::var_os("DOCKER_HOST") {
            Some(host) if !host.is_empty() => match host.into_string() {
                Ok(host) => Engine::connect(&host),
                Err(host) => Err(EngineError::InvalidHost {
                    host: host.to_string_lossy().into_owned(),
                    detail: "DOCKER_HOST is not valid UTF-8".to_string(),
                }),
            },
            _ => Engine::connect(DEFAULT_HOST),
        }
    }

    /// An engine at `unix:///PATH` or `tcp://HOST[:PORT]` (port 2375 when left out). Does not
    /// connect yet; fails only on an address of another form.
    pub fn connect(host: &str) -> Result<Engine, EngineError> {
        Ok(Engine {
            raw: RawClient::new(host)?,
        })
    }

    /// The engine's address as used in messages, e.g. `unix:///var/run/docker.sock`.
    pub fn host(&self) -> &str {
        self.raw.host()
    }

    /// Checks that the engine answers (`GET /_ping`).
    pub async fn ping(&self) -> Result<(), EngineError> {
        let body = self.raw.get_bytes("/_ping").await?;
        if body.trim_ascii() == b"OK" {
            Ok(())
        } else {
            Err(self.raw.decode_error(
                "/_ping",
                format!("expected OK, got {:?}", String::from_utf8_lossy(&body)),
            ))
        }
    }

    /// `GET /info`: data root, hostname, version, and the node's place in a swarm (node ID,
    /// whether it is active and a manager).
    pub async fn info(&self) -> Result<EngineInfo, EngineError> {
        let info: wire::Info = self.raw.get_json("/info").await?;
        Ok(info.into())
    }

    /// `GET /version`'s `ApiVersion` as (major, minor), e.g. (1, 41) for Engine 20.10: the
    /// newest API the engine speaks, so which spec fields it keeps.
    pub async fn api_version(&self) -> Result<(u32, u32), EngineError> {
        let version: wire::Version = self.raw.get_json("/version").await?;
        version
            .api_version
            .split_once('.')
            .and_then(|(major, minor)| Some((major.parse().ok()?, minor.parse().ok()?)))
            .ok_or_else(|| {
                self.raw.decode_error(
                    "/version",
                    format!("ApiVersion {:?} is not MAJOR.MINOR", version.api_version),
                )
            })
    }

    /// `GET /system/df`: sizes of images (with the bytes each shares with others), containers'
    /// writable layers, volumes and build cache. Slow on a busy node: the engine measures every
    /// writable layer and walks every local volume (90 ms for one volume of 50,000 files on
    /// tmpfs, far more on a cold disk).
    pub async fn system_df(&self) -> Result<SystemDf, EngineError> {
        let path = "/system/df";
        let df: wire::Df = self.raw.get_json(path).await?;
        SystemDf::try_from(df).map_err(|e| self.raw.decode_error(path, e))
    }

    /// The volumes (`GET /volumes`): cheap, unlike [`Engine::system_df`], but without sizes
    /// (`size` is `None`, `ref_count` -1).
    pub async fn list_volumes(&self) -> Result<Vec<DfVolume>, EngineError> {
        let list: wire::VolumeList = self.raw.get_json("/volumes").await?;
        Ok(list.volumes.into_iter().map(DfVolume::from).collect())
    }

    /// Top-level images (`GET /images/json`): cheap, unlike [`Engine::system_df`], but on API
    /// 1.41 without shared sizes (`shared_size` is 0).
    pub async fn list_images(&self) -> Result<Vec<DfImage>, EngineError> {
        let path = "/images/json";
        let items: Vec<wire::DfImageWire> = self.raw.get_json(path).await?;
        items
            .into_iter()
            .map(DfImage::try_from)
            .collect::<Result<_, _>>()
            .map_err(|e| self.raw.decode_error(path, e))
    }

    /// Every container, whatever its state (`GET /containers/json?all=1`).
    pub async fn list_containers(&self) -> Result<Vec<ContainerSummary>, EngineError> {
        let path = "/containers/json?all=1";
        let items: Vec<wire::ContainerListItem> = self.raw.get_json(path).await?;
        items
            .into_iter()
            .map(ContainerSummary::try_from)
            .collect::<Result<_, _>>()
            .map_err(|e| self.raw.decode_error(path, e))
    }

    /// When a container last started and, once it is in a terminal state, when it finished
    /// (`State.StartedAt` and `State.FinishedAt` of `GET /containers/{id}/json`); the engine's
    /// zero time becomes `None`.
    pub async fn container_times(&self, id: &str) -> Result<ContainerTimes, EngineError> {
        let path = format!("/containers/{}/json", encode(id, b""));
        let inspect: wire::ContainerInspect = self.raw.get_json(&path).await?;
        ContainerTimes::try_from(inspect).map_err(|e| self.raw.decode_error(&path, e))
    }

    /// Whether the kernel's OOM killer killed a process of the container while it last ran
    /// (`State.OOMKilled` of `GET /containers/{id}/json`). Only the engine of the container's
    /// node knows it, and only until the container is removed.
    pub async fn container_oom_killed(&self, id: &str) -> Result<bool, EngineError> {
        let path = format!("/containers/{}/json", encode(id, b""));
        let inspect: wire::ContainerInspect = self.raw.get_json(&path).await?;
        Ok(inspect.oom_killed())
    }

    /// When the image arrived on this engine as far as the engine knows: `Metadata.LastTagTime`
    /// when set, else `Created`. The engine sets `LastTagTime` on `build`, `tag`, `commit` and
    /// `import` but not on `pull` or `load`, so for pulled or loaded images this is the build
    /// time; the `pull`/`load` event's time is the better answer when it was seen.
    pub async fn image_arrival(&self, id: &str) -> Result<Timestamp, EngineError> {
        let path = format!("/images/{}/json", encode(id, REFERENCE_CHARS));
        let inspect: wire::ImageInspect = self.raw.get_json(&path).await?;
        inspect
            .arrival()
            .map_err(|e| self.raw.decode_error(&path, e))
    }

    /// An image's layers through the API, for when the data root cannot be read
    /// ([`layout::image_layers`] is free of requests): the chain IDs from
    /// `GET /images/{id}/json` (`RootFS.Layers`) and each layer's size from
    /// `GET /images/{id}/history`. `None` when the history does not tell which step made which
    /// layer (an empty layer next to an empty-layer step).
    pub async fn image_layers(
        &self,
        id: &str,
    ) -> Result<Option<Vec<layout::StoredLayer>>, EngineError> {
        let id = encode(id, REFERENCE_CHARS);
        let inspect: wire::ImageInspect = self.raw.get_json(&format!("/images/{id}/json")).await?;
        let history: Vec<wire::HistoryEntry> =
            self.raw.get_json(&format!("/images/{id}/history")).await?;
        let diff_ids = inspect.root_fs.layers;
        let Some(sizes) = wire::layer_sizes_from_history(&history, diff_ids.len()) else {
            return Ok(None);
        };
        Ok(Some(
            layout::chain_ids(&diff_ids)
                .into_iter()
                .zip(sizes)
                .map(|(chain_id, size)| layout::StoredLayer { chain_id, size })
                .collect(),
        ))
    }

    /// The id of the image a reference (`name:tag`, `name@sha256:…`, `name:tag@sha256:…`)
    /// names on this engine now.
    pub async fn image_id(&self, reference: &str) -> Result<String, EngineError> {
        let path = format!("/images/{}/json", encode(reference, REFERENCE_CHARS));
        let inspect: wire::ImageInspect = self.raw.get_json(&path).await?;
        Ok(inspect.id)
    }

    /// Deletes an image without force, the way the kubelet's docker shim did: each reference the
    /// image has now (`DELETE /images/{tag}`, tags first, then `repo@sha256:…` digests), then
    /// the image by ID; not-found at any step counts as done, so deleting an image twice
    /// succeeds.
    ///
    /// The references come from the engine at the time of the call, not from the caller: a tag
    /// listed earlier may since have moved to a newer image (a pull of `app:latest`), and
    /// deleting it by name would delete that newer image.
    ///
    /// An image a container uses is refused with an error for which
    /// [`EngineError::is_conflict`] holds. The engine itself refuses only once the last tag is
    /// about to go, after stripping the others, which would leave a service that runs the image
    /// by one of those tags unable to start tasks here; so an image with several references is
    /// checked against the containers first ([`EngineError::ImageInUse`]).
    pub async fn remove_image(&self, id: &str) -> Result<(), EngineError> {
        let path = format!("/images/{}/json", encode(id, REFERENCE_CHARS));
        let image = match self.raw.get_json::<wire::ImageInspect>(&path).await {
            Ok(image) => image,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        };
        let references = image.references();
        if references.len() > 1 {
            let containers = self.list_containers().await?;
            if let Some(user) = containers.iter().find(|c| c.image_id == image.id) {
                return Err(EngineError::ImageInUse {
                    host: self.host().to_string(),
                    image: image.id,
                    container: user.id.clone(),
                });
            }
        }
        for reference in &references {
            self.delete_if_present(&format!("/images/{}", encode(reference, REFERENCE_CHARS)))
                .await?;
        }
        self.delete_if_present(&format!("/images/{}", encode(&image.id, REFERENCE_CHARS)))
            .await
    }

    /// Prunes BuildKit's build cache (`POST /build/prune`): every record unused for `until`
    /// and not in use, until the cache is down to `keep_storage` bytes. Returns the bytes the
    /// engine says it reclaimed.
    pub async fn prune_build_cache(
        &self,
        keep_storage: u64,
        until: std::time::Duration,
    ) -> Result<u64, EngineError> {
        let filters = format!(r#"{{"until":["{}s"]}}"#, until.as_secs());
        let path = format!(
            "/build/prune?all=1&keep-storage={keep_storage}&filters={}",
            encode(&filters, b"")
        );
        let answer: wire::BuildPrune = self.raw.post_json(&path, &serde_json::json!({})).await?;
        Ok(answer.space_reclaimed())
    }

    /// Running containers that carry `label` (`KEY` or `KEY=VALUE`).
    pub async fn running_containers_labelled(
        &self,
        label: &str,
    ) -> Result<Vec<ContainerSummary>, EngineError> {
        let filters = serde_json::json!({"label": [label], "status": ["running"]}).to_string();
        let path = format!("/containers/json?filters={}", encode(&filters, b""));
        let items: Vec<wire::ContainerListItem> = self.raw.get_json(&path).await?;
        items
            .into_iter()
            .map(ContainerSummary::try_from)
            .collect::<Result<_, _>>()
            .map_err(|e| self.raw.decode_error(&path, e))
    }

    /// A container's environment and mounts (`Config.Env`, `Mounts` of
    /// `GET /containers/{id}/json`).
    pub async fn container_mounts(&self, id: &str) -> Result<ContainerMounts, EngineError> {
        let path = format!("/containers/{}/json", encode(id, b""));
        let inspect: wire::ContainerMountsInspect = self.raw.get_json(&path).await?;
        Ok(inspect.into())
    }

    /// Removes a container that is not running, keeping its volumes (no force); not-found counts
    /// as done. A running container is refused with a conflict.
    pub async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        self.delete_if_present(&format!("/containers/{}", encode(id, b"")))
            .await
    }

    /// `DELETE /volumes/{name}` (no force): a volume a container uses, in any state, is
    /// refused with a conflict whose message names the containers (`volume is in use -
    /// [ID, …]`); one that does not exist is not found.
    pub async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        self.raw
            .delete(&format!("/volumes/{}", encode(name, b"")))
            .await
    }

    async fn delete_if_present(&self, path: &str) -> Result<(), EngineError> {
        match self.raw.delete(path).await {
            Err(e) if e.is_not_found() => Ok(()),
            result => result,
        }
    }

    /// The engine's image and container events (`GET /events`), from `since` when given (the
    /// engine replays the recent ones it still holds, so a caller that reconnects with the time
    /// of the last event it saw misses nothing in between), else from now on. An event that
    /// cannot be read is yielded as an error and the stream goes on; the stream ends, or yields
    /// an [`EngineError::Unreachable`] and ends, when the engine goes away.
    pub fn events(
        &self,
        since: Option<Timestamp>,
    ) -> BoxStream<'static, Result<EngineEvent, EngineError>> {
        let path = events_path(r#"{"type":["container","image","volume"]}"#, since);
        let raw = self.raw.clone();
        self.raw
            .get_lines(path)
            .filter_map(move |line| {
                let decoded = line.and_then(|line| {
                    serde_json::from_slice::<wire::Event>(&line)
                        .map_err(|e| e.to_string())
                        .and_then(wire::Event::into_engine_event)
                        .map_err(|e| raw.decode_error("/events", e))
                });
                std::future::ready(decoded.transpose())
            })
            .boxed()
    }
}

/// `GET /events` for the given filters, from `since` (to the nanosecond) when given.
pub(crate) fn events_path(filters: &str, since: Option<Timestamp>) -> String {
    let mut path = format!("/events?filters={}", encode(filters, b""));
    if let Some(since) = since {
        path.push_str(&format!(
            "&since={}.{:09}",
            since.as_second(),
            since.subsec_nanosecond()
        ));
    }
    path
}
