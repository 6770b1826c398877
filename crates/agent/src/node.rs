//! Observing a node: the engine's images and containers plus the agent's memory of them become
//! a GC snapshot.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use futures_util::{stream, StreamExt};
use jiff::Timestamp;
use swarmkeeper_engine::{layout, DfContainer, DfImage, Engine};
use swarmkeeper_gc::{
    BuildCacheRecord, Container, ContainerState, Image, Layer, Snapshot, LABEL_PIN,
    LABEL_SERVICE_NAME, SNAPSHOT_VERSION,
};
use swarmkeeper_store::Store;

use crate::{fs, AgentError};

/// Inspections of containers run this many at a time: enough to hide the socket's round trips,
/// few enough not to load the engine.
const INSPECT_CONCURRENCY: usize = 8;

/// What "first seen" means for an image the state database does not know yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstSighting {
    /// The image was there before swarmkeeper looked: take the engine's record of its arrival
    /// (when its config reached the image store; where the data root cannot be read, when it
    /// was last tagged, else built), so that a first run can collect old images at once
    /// without taking a fresh pull.
    EngineArrival,
    /// swarmkeeper has been watching, so the image has just arrived (the kubelet's "first
    /// detected"): it is protected by min-age from now on.
    Now,
}

/// One engine, its filesystem and the agent's memory of it.
pub struct Node {
    pub engine: Engine,
    pub store: Store,
    fs_path: PathBuf,
    /// The engine's data root, where the image store records when each image arrived.
    root_dir: PathBuf,
    pub first_sighting: FirstSighting,
    /// Finish times of terminal containers; they never change, so each is inspected once.
    finished: HashMap<String, Option<Timestamp>>,
    /// Image references (tags and digests) to image ids, from the last observation: container
    /// events name the image as the user wrote it.
    references: HashMap<String, String>,
    /// Each image's layers (`None`: they could not be read). An image id names its content,
    /// so each image's layers are read once. Digests are kept as bytes: 40 bytes a layer, so a
    /// node of a thousand images costs the agent half a megabyte.
    layers: HashMap<String, Option<Box<[CachedLayer]>>>,
    /// The pull headroom of the last pass's plan: whether the next pass needs the expensive
    /// observation is decided before it has a plan of its own.
    pub(crate) pull_headroom_bytes: u64,
}

/// How much an observation asks of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// `/system/df`, which also walks every container layer and volume, for the build cache
    /// records (and shared bytes where layers cannot be read), and each image's layers in the
    /// snapshot: for snapshots and for passes that must free space.
    Full,
    /// `/images/json` and `/containers/json` only; shared bytes from the images' layers, or 0
    /// where those cannot be read, and no layers in the snapshot: enough for bookkeeping,
    /// max-age and container GC, and to tell whether space must be freed.
    Light,
}

impl Node {
    pub fn new(engine: Engine, store: Store, fs_path: PathBuf, root_dir: PathBuf) -> Node {
        Node {
            engine,
            store,
            fs_path,
            root_dir,
            first_sighting: FirstSighting::EngineArrival,
            finished: HashMap::new(),
            references: HashMap::new(),
            layers: HashMap::new(),
            pull_headroom_bytes: 0,
        }
    }

    /// The engine's data root (`DockerRootDir`).
    pub fn root_dir(&self) -> &Path {
        &self.root_dir
    }

    pub fn fs_path(&self) -> &Path {
        &self.fs_path
    }

    pub fn measure(&self) -> Result<swarmkeeper_gc::Filesystem, AgentError> {
        fs::measure(&self.fs_path).map_err(|source| AgentError::Filesystem {
            path: self.fs_path.clone(),
            source,
        })
    }

    /// Looks at the engine now, records what it learnt in the state database, and returns the
    /// snapshot the planner needs.
    pub async fn observe(&mut self, detail: Detail) -> Result<Snapshot, AgentError> {
        let (images, containers, build_cache) = match detail {
            Detail::Full => {
                // `/system/df` takes the engine a while (it measures every container's
                // writable layer) and lists the images itself. Meanwhile the layers of the
                // images in the image store are read from the data root; no second request
                // goes to the engine, which would compete with `/system/df` for its CPU.
                let engine = self.engine.clone();
                let (df, _) = tokio::join!(engine.system_df(), self.read_stored_layers(None));
                let df = df?;
                let build_cache = df
                    .build_cache
                    .into_iter()
                    .map(|b| BuildCacheRecord {
                        id: b.id,
                        size_bytes: b.size,
                        in_use: b.in_use,
                        shared: b.shared,
                        created: b.created.or(b.last_used).unwrap_or(Timestamp::UNIX_EPOCH),
                        last_used: b.last_used,
                    })
                    .collect();
                (df.images, df.containers, Some(build_cache))
            }
            Detail::Light => {
                let images = self.engine.list_images().await?;
                let containers = self
                    .engine
                    .list_containers()
                    .await?
                    .into_iter()
                    .map(|c| DfContainer {
                        id: c.id,
                        image_id: c.image_id,
                        state: c.state,
                        created: c.created,
                        labels: c.labels,
                        size_rw: 0,
                        names: c.names,
                        volumes: Vec::new(),
                    })
                    .collect();
                (images, containers, None)
            }
        };
        // The layers the image store did not give (an image that arrived meanwhile, a data
        // root not readable here) are asked for; images no longer listed are forgotten.
        self.learn_layers(&images).await;
        let now = Timestamp::now();
        let filesystem = self.measure()?;

        let known = self.store.images()?;
        let unknown: Vec<_> = images
            .iter()
            .filter(|i| !known.contains_key(&i.id))
            .collect();
        let sightings: Vec<(&str, Timestamp)> = match self.first_sighting {
            FirstSighting::Now => unknown.iter().map(|i| (i.id.as_str(), now)).collect(),
            FirstSighting::EngineArrival => {
                let engine = &self.engine;
                let root_dir = &self.root_dir;
                stream::iter(&unknown)
                    .map(|i| async move {
                        // The image store's record is a file's mtime: no request to the engine,
                        // which matters on a first run over thousands of images.
                        let arrival = match layout::image_stored_at(root_dir, &i.id) {
                            Some(stored) => stored,
                            None => engine.image_arrival(&i.id).await.unwrap_or(i.created),
                        };
                        (i.id.as_str(), arrival.min(now))
                    })
                    .buffer_unordered(INSPECT_CONCURRENCY)
                    .collect()
                    .await
            }
        };

        self.learn_finish_times(&containers).await?;
        let uses: Vec<(&str, Timestamp)> = containers
            .iter()
            .map(|c| (c.image_id.as_str(), self.last_activity(c, now)))
            .collect();
        let runs: Vec<(&str, &str, Timestamp)> = containers
            .iter()
            .filter_map(|c| {
                let service = c.labels.get(LABEL_SERVICE_NAME)?;
                Some((service.as_str(), c.image_id.as_str(), c.created))
            })
            .collect();
        // Images removed by someone else leave no trace behind.
        let present: std::collections::HashSet<&str> =
            images.iter().map(|i| i.id.as_str()).collect();
        let gone: Vec<&str> = known
            .keys()
            .map(String::as_str)
            .filter(|id| !present.contains(id))
            .collect();
        self.store.forget_images(gone)?;
        self.store.record_first_seen(sightings)?;
        self.store.record_used(uses)?;
        self.store.record_service_images(runs)?;
        // The listings move into the snapshot rather than being copied, and the records read
        // before are let go first: on a node of a thousand images this pass is the agent's peak.
        drop(known);

        self.references = images
            .iter()
            .flat_map(|i| {
                i.repo_tags
                    .iter()
                    .chain(&i.repo_digests)
                    .map(move |r| (r.clone(), i.id.clone()))
            })
            .collect();
        let records = self.store.images()?;
        let mut snapshot_images: Vec<Image> = images
            .into_iter()
            .map(|i| {
                let record = records.get(&i.id);
                let pinned = i.labels.get(LABEL_PIN).map(String::as_str) == Some("true");
                let layers = match detail {
                    Detail::Full => self
                        .layers
                        .get(&i.id)
                        .and_then(|l| l.as_deref())
                        .map(|layers| layers.iter().map(CachedLayer::layer).collect()),
                    Detail::Light => None,
                };
                Image {
                    first_seen: record.map_or(now, |r| r.first_seen),
                    last_used: record.and_then(|r| r.last_used),
                    id: i.id,
                    repo_tags: i.repo_tags,
                    repo_digests: i.repo_digests,
                    size_bytes: i.size,
                    shared_bytes: i.shared_size,
                    pinned,
                    layers,
                }
            })
            .collect();
        drop(records);
        // The engine's own rule, from the layers: exact on a light observation too.
        self.share_bytes(&mut snapshot_images);
        let snapshot_containers = containers
            .into_iter()
            .map(|c| Container {
                state: parse_state(&c.state),
                created: c.created,
                finished_at: self.finished.get(&c.id).copied().flatten(),
                id: c.id,
                image_id: c.image_id,
                labels: c.labels,
            })
            .collect();

        Ok(Snapshot {
            version: SNAPSHOT_VERSION,
            taken_at: now,
            filesystem,
            images: snapshot_images,
            containers: snapshot_containers,
            service_image_history: self.store.service_histories()?,
            build_cache,
        })
    }

    /// Reads the layers of images not seen before: from the image store under the data root
    /// (no request), else through the API (two requests per image), a few at a time. Forgets
    /// the layers of images no longer listed.
    async fn learn_layers(&mut self, images: &[DfImage]) {
        let present: std::collections::HashSet<&str> =
            images.iter().map(|i| i.id.as_str()).collect();
        self.layers.retain(|id, _| present.contains(id.as_str()));
        let unknown: Vec<String> = images
            .iter()
            .filter(|i| !self.layers.contains_key(&i.id))
            .map(|i| i.id.clone())
            .collect();
        if unknown.is_empty() {
            return;
        }
        let started = std::time::Instant::now();
        let count = unknown.len();
        let found = self.read_stored_layers(Some(unknown.clone())).await;
        let missing = unknown
            .into_iter()
            .filter(|id| !self.layers.contains_key(id));
        let engine = &self.engine;
        let asked: Vec<_> = stream::iter(missing)
            .map(|id| async move {
                // An error (the image went meanwhile, the engine hiccuped) is not remembered:
                // the next observation asks again.
                let layers = engine.image_layers(&id).await.ok()?;
                Some((id, CachedLayer::all(layers)))
            })
            .buffer_unordered(INSPECT_CONCURRENCY)
            .filter_map(std::future::ready)
            .collect()
            .await;
        tracing::debug!(
            images = count,
            from_the_image_store = found,
            from_the_api = asked.len(),
            took = ?started.elapsed(),
            "read the layers of new images"
        );
        self.remember_layers(asked);
    }

    /// Reads from the image store under the data root the layers of `ids` (`None`: of every
    /// image the store holds) that are not remembered yet, and remembers those found; returns
    /// how many. No request to the engine.
    async fn read_stored_layers(&mut self, ids: Option<Vec<String>>) -> usize {
        let root_dir = self.root_dir.clone();
        // Reading the files blocks: off the runtime's thread, which may be waiting for the
        // engine meanwhile.
        let Ok(Some((mut store, listed))) = tokio::task::spawn_blocking(move || {
            let store = layout::ImageStore::open(&root_dir)?;
            let ids = ids.unwrap_or_else(|| store.image_ids());
            Some((store, ids))
        })
        .await
        else {
            return 0;
        };
        let wanted: Vec<String> = listed
            .into_iter()
            .filter(|id| !self.layers.contains_key(id))
            .collect();
        let found = tokio::task::spawn_blocking(move || {
            wanted
                .into_iter()
                .filter_map(|id| {
                    // Each image's layers shrink to what the agent keeps as they are read:
                    // the chain IDs as text, 10,000 of them on a node of a thousand images,
                    // would otherwise be held all at once.
                    let layers = store.layers(&id)?;
                    Some((id, CachedLayer::all(Some(layers))))
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        let count = found.len();
        self.remember_layers(found);
        count
    }

    /// Keeps each image's layers, `None` where they could not be read.
    fn remember_layers(
        &mut self,
        read: impl IntoIterator<Item = (String, Option<Box<[CachedLayer]>>)>,
    ) {
        self.layers.extend(read);
    }

    /// The image id a container event's `image` attribute refers to, as far as the last
    /// observation knows it. Swarm creates task containers from `name:tag@sha256:…`, which the
    /// engine lists as the digest reference `name@sha256:…`.
    pub fn resolve_image<'a>(&'a self, reference: &'a str) -> Option<&'a str> {
        if reference.starts_with("sha256:") {
            return Some(reference);
        }
        let lookup = |r: &str| self.references.get(r).map(String::as_str);
        lookup(reference).or_else(|| {
            let (name_tag, digest) = reference.split_once('@')?;
            let name = match name_tag.rsplit_once(':') {
                Some((name, tag)) if !tag.contains('/') => name,
                _ => name_tag,
            };
            lookup(&format!("{name}@{digest}")).or_else(|| lookup(name_tag))
        })
    }

    async fn learn_finish_times(&mut self, containers: &[DfContainer]) -> Result<(), AgentError> {
        let live: std::collections::HashSet<&str> =
            containers.iter().map(|c| c.id.as_str()).collect();
        self.finished.retain(|id, _| live.contains(id.as_str()));
        let engine = &self.engine;
        let mut wanted: Vec<&str> = containers
            .iter()
            .filter(|c| parse_state(&c.state).is_terminal() && !self.finished.contains_key(&c.id))
            .map(|c| c.id.as_str())
            .collect();
        // The engine's record under its data root answers without a request (a snapshot in a
        // fresh process would otherwise inspect every stopped container); a finish time not
        // written there yet (the container stopped a moment ago) is asked for.
        wanted.retain(|id| {
            match layout::container_times(&self.root_dir, id).and_then(|t| t.finished_at) {
                Some(finished) => {
                    self.finished.insert(id.to_string(), Some(finished));
                    false
                }
                None => true,
            }
        });
        let found: Vec<_> = stream::iter(wanted)
            .map(|id| async move { (id, engine.container_times(id).await) })
            .buffer_unordered(INSPECT_CONCURRENCY)
            .collect()
            .await;
        for (id, times) in found {
            match times {
                Ok(times) => {
                    self.finished.insert(id.to_string(), times.finished_at);
                }
                // Removed since the listing: it no longer pins anything.
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Sets each image's shared bytes from the layers, as `/system/df` computes them: the bytes
    /// of its layers another image also holds. Left as they are unless every image's layers
    /// are known.
    fn share_bytes(&self, images: &mut [Image]) {
        let Some(all) = images
            .iter()
            .map(|i| self.layers.get(&i.id).and_then(|l| l.as_deref()))
            .collect::<Option<Vec<&[CachedLayer]>>>()
        else {
            return;
        };
        let mut holders: HashMap<[u8; 32], u32> = HashMap::new();
        for layers in &all {
            for layer in *layers {
                *holders.entry(layer.digest).or_default() += 1;
            }
        }
        for (image, layers) in images.iter_mut().zip(all) {
            image.shared_bytes = layers
                .iter()
                .filter(|l| holders[&l.digest] > 1)
                .map(|l| l.size)
                .sum();
        }
    }

    /// When a container last used its image: now while it runs, else when it stopped.
    fn last_activity(&self, c: &DfContainer, now: Timestamp) -> Timestamp {
        match parse_state(&c.state) {
            ContainerState::Exited | ContainerState::Dead => self
                .finished
                .get(&c.id)
                .copied()
                .flatten()
                .unwrap_or(c.created),
            ContainerState::Created => c.created,
            _ => now,
        }
    }
}

/// An unknown state counts as running: it must keep its image.
fn parse_state(state: &str) -> ContainerState {
    match state {
        "created" => ContainerState::Created,
        "paused" => ContainerState::Paused,
        "restarting" => ContainerState::Restarting,
        "removing" => ContainerState::Removing,
        "exited" => ContainerState::Exited,
        "dead" => ContainerState::Dead,
        _ => ContainerState::Running,
    }
}

/// A layer as the agent remembers it between passes.
#[derive(Debug, Clone, Copy)]
struct CachedLayer {
    /// The chain ID's 32 bytes.
    digest: [u8; 32],
    size: u64,
}

impl CachedLayer {
    /// `None` for a chain ID that is not `sha256:` and 64 hex digits.
    fn new(layer: &layout::StoredLayer) -> Option<CachedLayer> {
        let hex = layer.chain_id.strip_prefix("sha256:")?;
        if hex.len() != 64 || !hex.is_ascii() {
            return None;
        }
        let mut digest = [0u8; 32];
        for (byte, pair) in digest.iter_mut().zip(hex.as_bytes().chunks(2)) {
            *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
        }
        Some(CachedLayer {
            digest,
            size: layer.size,
        })
    }

    /// An image's layers as the agent keeps them; `None` when they could not be read or a
    /// chain ID is not a SHA-256 digest.
    fn all(layers: Option<Vec<layout::StoredLayer>>) -> Option<Box<[CachedLayer]>> {
        layers?.iter().map(CachedLayer::new).collect()
    }

    fn layer(&self) -> Layer {
        Layer::new(layout::sha256_text(&self.digest), self.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_layers_keep_the_chain_id() {
        let chain_id = format!("sha256:{}", "0123456789abcdef".repeat(4));
        let stored = layout::StoredLayer {
            chain_id: chain_id.clone(),
            size: 42,
        };
        let layer = CachedLayer::new(&stored).unwrap().layer();
        assert_eq!(
            (layer.digest(), layer.size_bytes()),
            (chain_id.as_str(), 42)
        );
        let odd = layout::StoredLayer {
            chain_id: "sha256:xyz".into(),
            size: 1,
        };
        assert!(CachedLayer::new(&odd).is_none());
    }
}
