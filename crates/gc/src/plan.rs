//! The image GC planner: kubelet semantics (thresholds, min-age, max-age, LRU order), plus room
//! for the next pull, per-layer accounting, pins on any reference, build cache first, and a
//! per-service rollback reserve.

use std::time::Duration;

use jiff::Timestamp;
use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::accounting::Freed;
use crate::{
    plan_containers, pull_headroom, space_need, usage_percent, ContainerRemoval, Image, Policy,
    Snapshot, SpaceTrigger, AUTO_HEADROOM_VERSIONS,
};

/// Whether the high threshold has to be crossed before space is freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanMode {
    /// Free space only when usage is at or above the high threshold (the kubelet's trigger).
    Threshold,
    /// Free space down to the low threshold whatever the usage: used after a deletion round whose
    /// re-measured usage is still above the low threshold.
    Continue,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan<'a> {
    pub usage_percent: u8,
    pub high_threshold_percent: u8,
    pub low_threshold_percent: u8,
    /// The kubelet's `floor(capacity × (100 − low) / 100) − available` when space GC runs
    /// ([`crate::space_need`]); else 0.
    pub bytes_to_free: u64,
    /// In the order to delete.
    pub delete: Vec<Deletion<'a>>,
    /// What the build cache prune and the deletions give back, as accounted.
    pub planned_free_bytes: u64,
    pub shortfall_bytes: u64,
    pub keep: Vec<Keep<'a>>,
    /// Removed before the images, so the images they pinned can be collected.
    pub remove_containers: Vec<ContainerRemoval<'a>>,
    /// Bytes available on the filesystem now.
    pub available_bytes: u64,
    /// Room kept for the next pull; 0 when there is none.
    pub pull_headroom_bytes: u64,
    /// `pull_headroom_bytes − available_bytes` when space GC runs, else 0. The plan frees the
    /// larger of this and `bytes_to_free`; `shortfall_bytes` is what it falls short of that.
    pub headroom_bytes_to_free: u64,
    /// Why space is freed; `null` when it is not.
    pub space_trigger: Option<SpaceTrigger>,
    /// How freed bytes are counted: layer by layer, or a lower bound from sizes.
    pub accounting: Accounting,
    /// Build cache to prune before any image is deleted; `null` when none is planned.
    pub prune_build_cache: Option<BuildCachePrune>,
}

/// How a plan counts the bytes deletions free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Accounting {
    /// Every image listed its layers: a layer counts once, when the last image holding it
    /// goes.
    Layers,
    /// From sizes and shared sizes: a lower bound.
    Sizes,
}

/// `POST /build/prune` as a plan asks for it: records unused for `until` go, until the cache
/// is down to `keep_storage_bytes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildCachePrune {
    /// What the prune is planned to give back: the reclaimable cache, at most what is needed.
    pub bytes: u64,
    /// The engine's `keep-storage`: the cache's size less `bytes`.
    pub keep_storage_bytes: u64,
    /// The engine's `until` filter: the policy's build cache min-age.
    #[serde(with = "crate::policy::duration_text")]
    pub until: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deletion<'a> {
    pub id: &'a str,
    pub reason: DeletionReason,
    /// What deleting the image gives back after the deletions before it.
    pub bytes: u64,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub repo_tags: &'a [String],
    /// [`Image::name`]: a tag, else `repo@sha256:…`, else the id.
    pub name: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeletionReason {
    /// Unused for longer than `--max-age`.
    MaxAge,
    /// Needed to bring usage down to the low threshold.
    Space,
    /// A rollback image, taken only because the node would otherwise stay above the high
    /// threshold.
    SpaceReserve,
}

/// An image the plan keeps, and why. Serialises as `{"id", "reason", "name"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keep<'a> {
    pub id: &'a str,
    pub reason: KeepReason,
    /// The image, for its name: looked up when shown, not for every image planned.
    image: &'a Image,
}

impl<'a> Keep<'a> {
    /// [`Image::name`].
    pub fn name(&self) -> &'a str {
        self.image.name()
    }
}

impl Serialize for Keep<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut keep = s.serialize_struct("Keep", 3)?;
        keep.serialize_field("id", self.id)?;
        keep.serialize_field("reason", &self.reason)?;
        keep.serialize_field("name", self.name())?;
        keep.end()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeepReason {
    InUse,
    Pinned,
    TooYoung,
    RollbackReserve,
    NotNeeded,
}

impl DeletionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DeletionReason::MaxAge => "max-age",
            DeletionReason::Space => "space",
            DeletionReason::SpaceReserve => "space-reserve",
        }
    }
}

impl KeepReason {
    pub fn as_str(self) -> &'static str {
        match self {
            KeepReason::InUse => "in-use",
            KeepReason::Pinned => "pinned",
            KeepReason::TooYoung => "too-young",
            KeepReason::RollbackReserve => "rollback-reserve",
            KeepReason::NotNeeded => "not-needed",
        }
    }
}

/// Plans one GC pass over a snapshot. Pure and deterministic: the same snapshot and policy give
/// the same plan, with `snapshot.taken_at` as "now".
///
/// Order: dead containers (all finished task containers but the newest of each slot, whatever
/// their age once space is needed), then images past max-age, then build cache older than its
/// min-age, then unused images least recently used first (min-age old, or superseded: a
/// version a service has moved past beyond its rollback reserve), then the rollback reserve
/// while the node would otherwise stay above the high threshold. Deletions that in the end
/// free nothing (every layer still held by an image that stays) are left out.
pub fn plan<'a>(snapshot: &'a Snapshot, policy: &Policy, mode: PlanMode) -> Plan<'a> {
    plan_for(snapshot, policy, mode, Need::Policy)
}

/// The bytes GC may give back on the node when it needs space, however much: what a pass
/// would free if the disk stayed full until it had deleted everything the policy lets it
/// (dead task containers whatever their age, images past max-age, the build cache, unused
/// images older than min-age or superseded, then the rollback reserve), as the plan counts
/// freed bytes (layer by layer, or a lower bound from sizes). Pinned, in-use and too-young
/// images are not reclaimable; nor is anything that is not an image or the build cache.
///
/// The disk-full forecast counts these bytes as free (tryout finding 2): a disk that fills
/// with image pulls GC will collect at the high threshold is not filling up.
pub fn reclaimable_bytes(snapshot: &Snapshot, policy: &Policy) -> u64 {
    plan_for(snapshot, policy, PlanMode::Continue, Need::Everything).planned_free_bytes
}

/// How much a plan frees.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    /// What the thresholds and the pull headroom ask for.
    Policy,
    /// Everything the policy lets GC delete.
    Everything,
}

fn plan_for<'a>(snapshot: &'a Snapshot, policy: &Policy, mode: PlanMode, amount: Need) -> Plan<'a> {
    let everything = amount == Need::Everything;
    let now = snapshot.taken_at;
    let fs = &snapshot.filesystem;
    let images = &snapshot.images;
    let mut marks = marks(snapshot, policy.rollback_reserve());

    // One pass over the images, each id hashed once. Whether an image is in use is known only
    // once the containers are planned, which waits for the headroom, which waits for this
    // pass; but only images a container names can be in use: those wait, the others are
    // sorted out now.
    let mut pins = policy.pin_matcher();
    let mut largest_recent = 0;
    let mut candidates = Candidates::with_capacity(images.len());
    let mut held = Vec::new();
    let mut waiting = Vec::new();
    for (index, image) in images.iter().enumerate() {
        let mark = marks.get(image.id.as_str()).copied().unwrap_or_default();
        if mark.recent {
            largest_recent = largest_recent.max(image.size_bytes);
        }
        let hold = if image.pinned || pins.pinned(&image.repo_tags, &image.repo_digests) {
            Some(KeepReason::Pinned)
        } else if age(now, image.first_seen) < policy.min_age() && !mark.superseded() {
            Some(KeepReason::TooYoung)
        } else {
            None
        };
        if mark.named_by_container {
            waiting.push((index, hold, mark.reserve_depth));
        } else {
            candidates.sort_out(images, index, hold, mark.reserve_depth, &mut held);
        }
    }

    let headroom = pull_headroom(policy, largest_recent, fs.capacity_bytes);
    let need = space_need(
        fs,
        policy.high_threshold_percent(),
        policy.low_threshold_percent(),
        headroom,
        mode == PlanMode::Continue,
    );
    let bytes_needed = if everything {
        u64::MAX
    } else {
        need.bytes_to_free()
    };

    let remove_containers =
        plan_containers(&snapshot.containers, policy, now, need.trigger.is_some());
    // `plan_containers` lists its removals in the containers' order, with their ids borrowed:
    // one walk along both tells which containers stay, without hashing their ids.
    let mut removals = remove_containers.iter().peekable();
    for c in &snapshot.containers {
        if removals
            .next_if(|r| std::ptr::eq(r.id, c.id.as_str()))
            .is_none()
        {
            if let Some(mark) = marks.get_mut(c.image_id.as_str()) {
                mark.in_use = true;
            }
        }
    }
    // Kept images in the snapshot's order: those sorted out above and those that waited.
    let mut held_after = Vec::new();
    for (index, hold, reserve_depth) in waiting {
        let in_use = marks[images[index].id.as_str()].in_use;
        let hold = if in_use {
            Some(KeepReason::InUse)
        } else {
            hold
        };
        candidates.sort_out(images, index, hold, reserve_depth, &mut held_after);
    }
    let mut keep = Vec::with_capacity(images.len());
    let mut after = held_after.into_iter().peekable();
    for (index, reason) in held {
        while let Some((i, r)) = after.next_if(|(i, _)| *i < index) {
            keep.push(kept(&images[i], r));
        }
        keep.push(kept(&images[index], reason));
    }
    keep.extend(after.map(|(i, r)| kept(&images[i], r)));
    let Candidates {
        mut ordinary,
        mut reserve,
    } = candidates;

    let by_lru = |a: &Lru, b: &Lru| {
        a.key
            .cmp(&b.key)
            .then_with(|| {
                images[a.index as usize]
                    .id
                    .cmp(&images[b.index as usize].id)
            })
            .then(a.index.cmp(&b.index))
    };
    ordinary.sort_unstable_by(by_lru);
    // The oldest versions of a service go first; the current one last.
    reserve.sort_unstable_by(|(da, a), (db, b)| db.cmp(da).then_with(|| by_lru(a, b)));

    let mut accounting = Freed::new(images);
    let mut delete: Vec<(usize, Deletion<'a>)> = Vec::new();
    let mut freed: u64 = 0;
    let mut take = |index: usize, reason: DeletionReason, freed: &mut u64| {
        let bytes = accounting.delete(images, index);
        *freed = freed.saturating_add(bytes);
        let image = &images[index];
        delete.push((
            index,
            Deletion {
                id: &image.id,
                reason,
                bytes,
                repo_tags: &image.repo_tags,
                name: image.name(),
            },
        ));
    };

    let mut remaining = Vec::with_capacity(ordinary.len());
    for lru in ordinary {
        let index = lru.index as usize;
        if !policy.max_age().is_zero() && age(now, lru.key.last_activity()) > policy.max_age() {
            take(index, DeletionReason::MaxAge, &mut freed);
        } else {
            remaining.push(index);
        }
    }
    let prune_build_cache = (bytes_needed > freed)
        .then(|| build_cache_prune(snapshot, policy, bytes_needed - freed))
        .flatten();
    if let Some(prune) = &prune_build_cache {
        freed = freed.saturating_add(prune.bytes);
    }
    let mut not_needed = Vec::new();
    for index in remaining {
        if freed < bytes_needed {
            take(index, DeletionReason::Space, &mut freed);
        } else {
            not_needed.push(index);
        }
    }
    let above_high = |freed: u64| {
        everything
            || usage_percent(fs.capacity_bytes, fs.available_bytes.saturating_add(freed))
                >= policy.high_threshold_percent()
    };
    let mut reserve_kept = Vec::new();
    for (_, Lru { index, .. }) in reserve {
        let index = index as usize;
        if freed < bytes_needed && above_high(freed) {
            take(index, DeletionReason::SpaceReserve, &mut freed);
        } else {
            reserve_kept.push(index);
        }
    }
    // A space deletion whose every layer an image that stays still holds gives nothing back
    // (it freed 0 bytes in its turn, so the others' counts stand).
    let (delete, useless): (Vec<_>, Vec<_>) = delete.into_iter().partition(|(index, d)| {
        d.reason == DeletionReason::MaxAge || accounting.frees_anything(*index)
    });
    for (index, _) in &useless {
        accounting.restore(*index);
    }
    for (index, d) in &useless {
        let reason = match d.reason {
            DeletionReason::SpaceReserve => KeepReason::RollbackReserve,
            _ => KeepReason::NotNeeded,
        };
        keep.push(kept(&images[*index], reason));
    }
    keep.extend(
        not_needed
            .into_iter()
            .map(|i| kept(&images[i], KeepReason::NotNeeded)),
    );
    keep.extend(
        reserve_kept
            .into_iter()
            .map(|i| kept(&images[i], KeepReason::RollbackReserve)),
    );

    Plan {
        usage_percent: need.usage_percent,
        high_threshold_percent: policy.high_threshold_percent(),
        low_threshold_percent: policy.low_threshold_percent(),
        bytes_to_free: need.threshold_bytes,
        delete: delete.into_iter().map(|(_, d)| d).collect(),
        planned_free_bytes: freed,
        shortfall_bytes: bytes_needed.saturating_sub(freed),
        keep,
        remove_containers,
        available_bytes: fs.available_bytes,
        pull_headroom_bytes: headroom,
        headroom_bytes_to_free: need.headroom_bytes,
        space_trigger: need.trigger,
        accounting: match accounting {
            Freed::Layers(_) => Accounting::Layers,
            Freed::Estimate { .. } => Accounting::Sizes,
        },
        prune_build_cache,
    }
}

fn kept(image: &Image, reason: KeepReason) -> Keep<'_> {
    Keep {
        id: &image.id,
        reason,
        image,
    }
}

/// Build cache unused for the policy's build cache min-age, up to `wanted` bytes; `None` when
/// the snapshot has no build cache records or none can go. Records in use, or shared with an
/// image, give nothing back.
fn build_cache_prune(snapshot: &Snapshot, policy: &Policy, wanted: u64) -> Option<BuildCachePrune> {
    let records = snapshot.build_cache.as_ref()?;
    let now = snapshot.taken_at;
    let min_age = policy.build_cache_min_age();
    // BuildKit's `keep-storage` is of the cache's own bytes: records shared with an image do
    // not count (`docker system df`'s "Build cache usage").
    let total: u64 = records
        .iter()
        .filter(|r| !r.shared)
        .map(|r| r.size_bytes)
        .sum();
    let reclaimable: u64 = records
        .iter()
        .filter(|r| !r.in_use && !r.shared)
        .filter(|r| age(now, r.last_used.unwrap_or(r.created)) >= min_age)
        .map(|r| r.size_bytes)
        .sum();
    let bytes = reclaimable.min(wanted);
    (bytes > 0).then(|| BuildCachePrune {
        bytes,
        keep_storage_bytes: total - bytes,
        until: min_age,
    })
}

/// The images that may be deleted, as the first pass over the images sorts them out.
struct Candidates {
    /// In no service's rollback reserve.
    ordinary: Vec<Lru>,
    /// In a service's rollback reserve, with their depth there.
    reserve: Vec<(usize, Lru)>,
}

impl Candidates {
    fn with_capacity(images: usize) -> Candidates {
        Candidates {
            ordinary: Vec::with_capacity(images),
            reserve: Vec::new(),
        }
    }

    /// Puts `images[index]` with the kept (when `hold` says so) or with the candidates.
    fn sort_out(
        &mut self,
        images: &[Image],
        index: usize,
        hold: Option<KeepReason>,
        reserve_depth: Option<usize>,
        kept: &mut Vec<(usize, KeepReason)>,
    ) {
        let image = &images[index];
        let lru = Lru {
            key: LruKey {
                last_used: image.last_used,
                first_seen: image.first_seen,
            },
            index: index as u32,
        };
        match (hold, reserve_depth) {
            (Some(reason), _) => kept.push((index, reason)),
            (None, Some(depth)) => self.reserve.push((depth, lru)),
            (None, None) => self.ordinary.push(lru),
        }
    }
}

/// An image to sort least recently used first; ties (same times) go by id, then by place in
/// the snapshot, so that equal images always come out in the same order.
struct Lru {
    key: LruKey,
    index: u32,
}

/// Never-used images (`None`) before used ones, then by first seen. The times are copied out
/// of the images so that sorting 100,000 of them reads one array.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct LruKey {
    last_used: Option<Timestamp>,
    first_seen: Timestamp,
}

impl LruKey {
    /// [`Image::last_activity`].
    fn last_activity(&self) -> Timestamp {
        self.last_used.unwrap_or(self.first_seen)
    }
}

/// What the services' histories and the containers say of an image.
#[derive(Debug, Clone, Copy, Default)]
struct Mark {
    /// Its depth in a service's newest `rollback_reserve` versions (0 = current), the
    /// shallowest when several services ran it; `None` beyond.
    reserve_depth: Option<usize>,
    /// Among a service's newest [`AUTO_HEADROOM_VERSIONS`]: a size the next pull may have.
    recent: bool,
    /// Past the rollback reserve of some service's history: a service that ran it has since
    /// run `rollback_reserve` newer images on this node.
    past_reserve: bool,
    /// A container of the snapshot runs it, or ran it.
    named_by_container: bool,
    /// A container that the plan does not remove runs it, or ran it.
    in_use: bool,
}

impl Mark {
    /// A version some service has moved past and no service keeps for a rollback: min-age
    /// does not protect it. Min-age (the kubelet's `imageMinimumGCAge`) exists for an image
    /// pulled for a task that has not started yet; a superseded version is no task's next
    /// image, and keeping it young let a burst of deploys fill a small node (tryout 8 #6).
    fn superseded(&self) -> bool {
        self.past_reserve && self.reserve_depth.is_none()
    }
}

/// The images the services' histories and the containers name, with their [`Mark`]; `in_use`
/// is set once the containers are planned.
fn marks(snapshot: &Snapshot, rollback_reserve: usize) -> FxHashMap<&str, Mark> {
    let mut marks: FxHashMap<&str, Mark> = FxHashMap::default();
    for history in snapshot.service_image_history.values() {
        for (depth, id) in history.iter().enumerate() {
            let mark = marks.entry(id.as_str()).or_default();
            if depth < rollback_reserve {
                mark.reserve_depth = Some(mark.reserve_depth.map_or(depth, |d| d.min(depth)));
            } else {
                mark.past_reserve = true;
            }
            mark.recent |= depth < AUTO_HEADROOM_VERSIONS;
        }
    }
    for c in &snapshot.containers {
        marks
            .entry(c.image_id.as_str())
            .or_default()
            .named_by_container = true;
    }
    marks
}

/// Time from `then` to `now`; a timestamp in the future has age zero.
fn age(now: Timestamp, then: Timestamp) -> Duration {
    if now <= then {
        return Duration::ZERO;
    }
    now.duration_since(then).unsigned_abs()
}
