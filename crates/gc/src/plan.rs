//! The image GC planner: kubelet semantics (thresholds, min-age, max-age, LRU order), plus unique
//! byte accounting, pins, and a per-service rollback reserve.

use std::time::Duration;

use jiff::Timestamp;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use crate::{
    bytes_to_free, plan_containers, usage_percent, ContainerRemoval, Image, Policy, Snapshot,
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
    pub bytes_to_free: u64,
    /// In the order to delete.
    pub delete: Vec<Deletion<'a>>,
    pub planned_free_bytes: u64,
    pub shortfall_bytes: u64,
    pub keep: Vec<Keep<'a>>,
    /// Removed before the images, so the images they pinned can be collected.
    pub remove_containers: Vec<ContainerRemoval<'a>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deletion<'a> {
    pub id: &'a str,
    pub reason: DeletionReason,
    /// Unique bytes: what deleting the image gives back.
    pub bytes: u64,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub repo_tags: &'a [String],
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Keep<'a> {
    pub id: &'a str,
    pub reason: KeepReason,
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
pub fn plan<'a>(snapshot: &'a Snapshot, policy: &Policy, mode: PlanMode) -> Plan<'a> {
    let now = snapshot.taken_at;
    let fs = &snapshot.filesystem;
    let usage = usage_percent(fs.capacity_bytes, fs.available_bytes);
    let space_needed = mode == PlanMode::Continue || usage >= policy.high_threshold_percent;
    let bytes_needed = if space_needed {
        bytes_to_free(
            fs.capacity_bytes,
            fs.available_bytes,
            policy.low_threshold_percent,
        )
    } else {
        0
    };

    let remove_containers = plan_containers(&snapshot.containers, policy, now);
    let removed: FxHashSet<&str> = remove_containers.iter().map(|r| r.id).collect();
    let in_use: FxHashSet<&str> = snapshot
        .containers
        .iter()
        .filter(|c| !removed.contains(c.id.as_str()))
        .map(|c| c.image_id.as_str())
        .collect();
    let reserve_depth = reserve_depths(snapshot, policy.rollback_reserve);

    let mut keep = Vec::with_capacity(snapshot.images.len());
    let mut ordinary: Vec<(LruKey, &Image)> = Vec::with_capacity(snapshot.images.len());
    let mut reserve: Vec<(usize, LruKey, &Image)> = Vec::new();
    for image in &snapshot.images {
        let held = if in_use.contains(image.id.as_str()) {
            Some(KeepReason::InUse)
        } else if image.pinned || policy.pins_any(&image.repo_tags) {
            Some(KeepReason::Pinned)
        } else if age(now, image.first_seen) < policy.min_age {
            Some(KeepReason::TooYoung)
        } else {
            None
        };
        match (held, reserve_depth.get(image.id.as_str())) {
            (Some(reason), _) => keep.push(Keep {
                id: &image.id,
                reason,
            }),
            (None, Some(&depth)) => reserve.push((depth, lru_key(image), image)),
            (None, None) => ordinary.push((lru_key(image), image)),
        }
    }
    ordinary.sort_unstable_by_key(|(key, _)| *key);
    // The oldest versions of a service go first; the current one last.
    reserve.sort_unstable_by(|(da, a, _), (db, b, _)| db.cmp(da).then_with(|| a.cmp(b)));

    let mut delete = Vec::new();
    let mut freed: u64 = 0;
    let mut take = |image: &'a Image, reason: DeletionReason, freed: &mut u64| {
        *freed = freed.saturating_add(image.unique_bytes());
        delete.push(Deletion {
            id: &image.id,
            reason,
            bytes: image.unique_bytes(),
            repo_tags: &image.repo_tags,
        });
    };

    let mut remaining = Vec::with_capacity(ordinary.len());
    for (_, image) in ordinary {
        if !policy.max_age.is_zero() && age(now, image.last_activity()) > policy.max_age {
            take(image, DeletionReason::MaxAge, &mut freed);
        } else {
            remaining.push(image);
        }
    }
    let mut not_needed = Vec::new();
    for image in remaining {
        if freed < bytes_needed {
            take(image, DeletionReason::Space, &mut freed);
        } else {
            not_needed.push(image);
        }
    }
    let above_high = |freed: u64| {
        usage_percent(fs.capacity_bytes, fs.available_bytes.saturating_add(freed))
            >= policy.high_threshold_percent
    };
    let mut reserve_kept = Vec::new();
    for (_, _, image) in reserve {
        if freed < bytes_needed && above_high(freed) {
            take(image, DeletionReason::SpaceReserve, &mut freed);
        } else {
            reserve_kept.push(image);
        }
    }
    keep.extend(not_needed.into_iter().map(|i| Keep {
        id: &i.id,
        reason: KeepReason::NotNeeded,
    }));
    keep.extend(reserve_kept.into_iter().map(|i| Keep {
        id: &i.id,
        reason: KeepReason::RollbackReserve,
    }));

    Plan {
        usage_percent: usage,
        high_threshold_percent: policy.high_threshold_percent,
        low_threshold_percent: policy.low_threshold_percent,
        bytes_to_free: bytes_needed,
        delete,
        planned_free_bytes: freed,
        shortfall_bytes: bytes_needed.saturating_sub(freed),
        keep,
        remove_containers,
    }
}

type LruKey<'a> = (bool, Option<Timestamp>, Timestamp, &'a str);

/// Least recently used first; never-used images before used ones; then by first seen and id so
/// that equal images always come out in the same order.
fn lru_key(image: &Image) -> LruKey<'_> {
    (
        image.last_used.is_some(),
        image.last_used,
        image.first_seen,
        image.id.as_str(),
    )
}

/// For each image in a service's newest `n` versions, its depth (0 = current). An image in
/// several services' reserves takes its shallowest depth.
fn reserve_depths(snapshot: &Snapshot, n: usize) -> FxHashMap<&str, usize> {
    let mut depths: FxHashMap<&str, usize> = FxHashMap::default();
    for history in snapshot.service_image_history.values() {
        for (depth, id) in history.iter().take(n).enumerate() {
            depths
                .entry(id.as_str())
                .and_modify(|d| *d = (*d).min(depth))
                .or_insert(depth);
        }
    }
    depths
}

/// Time from `then` to `now`; a timestamp in the future has age zero.
fn age(now: Timestamp, then: Timestamp) -> Duration {
    if now <= then {
        return Duration::ZERO;
    }
    now.duration_since(then).unsigned_abs()
}
