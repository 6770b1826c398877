//! Carrying out GC: plan, remove, re-measure, and go on while the disk is still short of its
//! target (the low threshold, and the pull headroom). The kubelet counts shared layers as freed
//! and never looks again; here every space deletion is checked against a fresh statvfs, so no
//! image is deleted once the disk is already back at the target, and a plan that fell short is
//! followed by another round. Build cache old enough goes before any image.

use jiff::Timestamp;
use serde::Serialize;
use swarmkeeper_gc::{
    plan, space_need, usage_percent, DeletionReason, Filesystem, PlanMode, Policy, SpaceTrigger,
};
use swarmkeeper_store::GcRun;

use crate::{AgentError, Detail, Node};

/// Rounds after the first are only needed when shared layers made the plan pessimistic or
/// images appeared meanwhile; a few are enough.
const MAX_ROUNDS: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// The agent's first pass after it started or the engine came back.
    Startup,
    /// The periodic pass.
    Interval,
    /// An image was pulled or loaded.
    Pull,
    /// The previous pass fell short; looking again, with backoff.
    Retry,
    /// `swarmkeeper gc run`.
    Manual,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Startup => "startup",
            Trigger::Interval => "interval",
            Trigger::Pull => "pull",
            Trigger::Retry => "retry",
            Trigger::Manual => "manual",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeletedImage {
    pub id: String,
    /// A tag, else `repo@sha256:…`, else the id ([`swarmkeeper_gc::Image::name`]).
    pub name: String,
    pub repo_tags: Vec<String>,
    pub reason: DeletionReason,
    /// Unique bytes as planned.
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemovedContainer {
    pub id: String,
    pub service: Option<String>,
}

/// Something the plan asked for that the engine refused; the pass goes on without it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub id: String,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GcOutcome {
    pub trigger: Trigger,
    pub started_at: Timestamp,
    pub usage_percent_before: u8,
    pub usage_percent_after: u8,
    pub high_threshold_percent: u8,
    pub low_threshold_percent: u8,
    pub rounds: usize,
    pub removed_containers: Vec<RemovedContainer>,
    pub deleted: Vec<DeletedImage>,
    pub failures: Vec<Failure>,
    /// Measured by statvfs: available bytes after minus before.
    pub bytes_freed: u64,
    /// Bytes still to free to reach the target (the low threshold and the pull headroom),
    /// when space GC ran and fell short.
    pub shortfall_bytes: u64,
    /// Why space GC ran; `None` when it did not.
    pub space_trigger: Option<SpaceTrigger>,
    /// The room kept for the next pull during the pass (0: none).
    pub pull_headroom_bytes: u64,
    /// Available bytes after the pass, by statvfs.
    pub available_bytes_after: u64,
    /// Bytes the engine said it reclaimed from the build cache.
    pub build_cache_freed_bytes: u64,
}

impl GcOutcome {
    /// A pull pass at 91 % that brought the node to 79 % and did nothing else, for tests to
    /// change what they look at.
    #[cfg(test)]
    pub(crate) fn for_tests() -> GcOutcome {
        GcOutcome {
            trigger: Trigger::Pull,
            started_at: "2026-11-26T12:00:00Z".parse().expect("a timestamp"),
            usage_percent_before: 91,
            usage_percent_after: 79,
            high_threshold_percent: 85,
            low_threshold_percent: 80,
            rounds: 1,
            removed_containers: vec![],
            deleted: vec![],
            failures: vec![],
            bytes_freed: 0,
            shortfall_bytes: 0,
            space_trigger: None,
            pull_headroom_bytes: 0,
            available_bytes_after: 500,
            build_cache_freed_bytes: 0,
        }
    }

    pub fn fell_short(&self) -> bool {
        self.shortfall_bytes > 0
    }

    /// The pass ended with less available than the pull headroom: the next pull may not fit.
    pub fn short_of_headroom(&self) -> bool {
        self.available_bytes_after < self.pull_headroom_bytes
    }

    fn outcome(&self) -> &'static str {
        if self.fell_short() {
            "shortfall"
        } else if self.failures.is_empty() {
            "ok"
        } else {
            "partial"
        }
    }
}

/// Runs one GC pass on the node and records it in the state database.
pub async fn collect(
    node: &mut Node,
    policy: &Policy,
    trigger: Trigger,
) -> Result<GcOutcome, AgentError> {
    let started_at = Timestamp::now();
    let before = node.measure()?;
    let mut outcome = GcOutcome {
        trigger,
        started_at,
        usage_percent_before: usage_percent(before.capacity_bytes, before.available_bytes),
        usage_percent_after: 0,
        high_threshold_percent: policy.high_threshold_percent(),
        low_threshold_percent: policy.low_threshold_percent(),
        rounds: 0,
        removed_containers: Vec::new(),
        deleted: Vec::new(),
        failures: Vec::new(),
        bytes_freed: 0,
        shortfall_bytes: 0,
        space_trigger: None,
        pull_headroom_bytes: node.pull_headroom_bytes,
        available_bytes_after: 0,
        build_cache_freed_bytes: 0,
    };
    // A retry finishes the job its pass started: down to the target, even if the disk has
    // meanwhile dropped below the high threshold (a pull's temporary files went away).
    let mut mode = match trigger {
        Trigger::Retry => PlanMode::Continue,
        _ => PlanMode::Threshold,
    };
    while outcome.rounds < MAX_ROUNDS {
        outcome.rounds += 1;
        // The build cache records (and, where layers cannot be read, shared sizes) matter only
        // when space must be freed; asking for them walks every container layer and volume.
        let fs = node.measure()?;
        let detail = if short_of_target(&fs, policy, node.pull_headroom_bytes, mode) {
            Detail::Full
        } else {
            Detail::Light
        };
        let mut snapshot = node.observe(detail).await?;
        if detail == Detail::Light && plan(&snapshot, policy, mode).space_trigger.is_some() {
            snapshot = node.observe(Detail::Full).await?;
        }
        let plan = plan(&snapshot, policy, mode);
        node.pull_headroom_bytes = plan.pull_headroom_bytes;
        outcome.pull_headroom_bytes = plan.pull_headroom_bytes;
        outcome.space_trigger = outcome.space_trigger.or(plan.space_trigger);
        let mut progress = false;

        for removal in &plan.remove_containers {
            match node.engine.remove_container(removal.id).await {
                Ok(()) => {
                    tracing::info!(container = removal.id, service = removal.service, reason = ?removal.reason, "removed container");
                    outcome.removed_containers.push(RemovedContainer {
                        id: removal.id.to_string(),
                        service: removal.service.map(str::to_string),
                    });
                    progress = true;
                }
                Err(e) if e.is_conflict() => refused(&mut outcome, removal.id, e),
                Err(e) => return Err(e.into()),
            }
        }

        if let Some(prune) = &plan.prune_build_cache {
            if !target_reached(node, policy)? {
                match node
                    .engine
                    .prune_build_cache(prune.keep_storage_bytes, prune.until)
                    .await
                {
                    Ok(reclaimed) => {
                        tracing::info!(
                            bytes = reclaimed,
                            keep_storage = prune.keep_storage_bytes,
                            until = ?prune.until,
                            "pruned build cache"
                        );
                        outcome.build_cache_freed_bytes += reclaimed;
                        progress |= reclaimed > 0;
                    }
                    // The engine may have no BuildKit, or refuse while a build runs: the
                    // images can still go.
                    Err(e @ swarmkeeper_engine::EngineError::Api { .. }) => {
                        refused(&mut outcome, "build-cache", e)
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }

        // An image built or loaded on this engine is the parent of the images built on it,
        // and the engine refuses to delete it while they exist; once it is untagged, deleting
        // the last child removes it too. So it is tried again after the others.
        let mut deferred = Vec::new();
        let mut queue: std::collections::VecDeque<_> =
            plan.delete.iter().map(|d| (d, true)).collect();
        while let Some((deletion, first_try)) = queue.pop_front() {
            // A deferred parent is untagged already: the engine may have removed it with its
            // last child, which then counts as its deletion.
            if first_try
                && deletion.reason != DeletionReason::MaxAge
                && target_reached(node, policy)?
            {
                queue.retain(|(_, first_try)| !first_try);
                continue;
            }
            match node.engine.remove_image(deletion.id).await {
                Ok(()) => {
                    tracing::info!(
                        image = deletion.id,
                        name = deletion.name,
                        reason = deletion.reason.as_str(),
                        bytes = deletion.bytes,
                        "deleted image"
                    );
                    node.store.forget_images([deletion.id])?;
                    outcome.deleted.push(DeletedImage {
                        id: deletion.id.to_string(),
                        name: deletion.name.to_string(),
                        repo_tags: deletion.repo_tags.to_vec(),
                        reason: deletion.reason,
                        bytes: deletion.bytes,
                    });
                    progress = true;
                }
                Err(e) if has_children(&e) => {
                    if first_try {
                        deferred.push(deletion.id);
                        queue.push_back((deletion, false));
                    } else {
                        // A child stays: the untagged parent goes when it does.
                        tracing::debug!(image = deletion.id, "parent of an image that stays");
                    }
                }
                // A container started using the image since the snapshot: that is the engine
                // keeping us honest, not a fault.
                Err(e) if e.is_conflict() => refused(&mut outcome, deletion.id, e),
                Err(e) => return Err(e.into()),
            }
        }
        if !deferred.is_empty() {
            tracing::debug!(images = ?deferred, "deleted after the images built on them");
        }

        if outcome.space_trigger.is_none() || !progress || target_reached(node, policy)? {
            break;
        }
        mode = PlanMode::Continue;
    }

    let after = node.measure()?;
    outcome.usage_percent_after = usage_percent(after.capacity_bytes, after.available_bytes);
    outcome.available_bytes_after = after.available_bytes;
    outcome.bytes_freed = after.available_bytes.saturating_sub(before.available_bytes);
    if outcome.space_trigger.is_some() {
        outcome.shortfall_bytes = target_bytes(&after, policy, outcome.pull_headroom_bytes);
    }
    node.store.record_gc_run(&GcRun {
        started_at,
        trigger: trigger.as_str().to_string(),
        usage_before: outcome.usage_percent_before,
        usage_after: outcome.usage_percent_after,
        images_deleted: outcome.deleted.len() as u64,
        bytes_freed: outcome.bytes_freed,
        containers_removed: outcome.removed_containers.len() as u64,
        outcome: outcome.outcome().to_string(),
        build_cache_freed_bytes: outcome.build_cache_freed_bytes,
    })?;
    Ok(outcome)
}

/// The engine's refusal to delete an image that other images are built on (moby's
/// "image has dependent child images").
fn has_children(error: &swarmkeeper_engine::EngineError) -> bool {
    error.is_conflict() && error.to_string().contains("dependent child images")
}

fn refused(outcome: &mut GcOutcome, id: &str, error: swarmkeeper_engine::EngineError) {
    tracing::warn!(id, %error, "the engine refused a GC step; skipping it");
    outcome.failures.push(Failure {
        id: id.to_string(),
        error: error.to_string(),
    });
}

/// True once the measured disk is at its target: at or below the low threshold, with the
/// pull headroom available.
fn target_reached(node: &Node, policy: &Policy) -> Result<bool, AgentError> {
    let fs = node.measure()?;
    Ok(target_bytes(&fs, policy, node.pull_headroom_bytes) == 0)
}

/// Bytes still to free to reach the target.
fn target_bytes(fs: &Filesystem, policy: &Policy, headroom: u64) -> u64 {
    space_need(
        fs,
        policy.high_threshold_percent(),
        policy.low_threshold_percent(),
        headroom,
        true,
    )
    .bytes_to_free()
}

/// Whether a round in `mode` frees space on `fs`, with the headroom last planned.
fn short_of_target(fs: &Filesystem, policy: &Policy, headroom: u64, mode: PlanMode) -> bool {
    space_need(
        fs,
        policy.high_threshold_percent(),
        policy.low_threshold_percent(),
        headroom,
        mode == PlanMode::Continue,
    )
    .bytes_to_free()
        > 0
}
