//! Carrying out GC: plan, remove, re-measure, and go on while the disk is still above the low
//! threshold. The kubelet counts shared layers as freed and never looks again; here every space
//! deletion is checked against a fresh statvfs, so no image is deleted once the disk is already
//! back at the low threshold, and a plan that fell short is followed by another round.

use jiff::Timestamp;
use serde::Serialize;
use swarmkeeper_gc::{bytes_to_free, plan, usage_percent, DeletionReason, PlanMode, Policy};
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
    /// Bytes still to free to reach the low threshold, when space GC ran and fell short.
    pub shortfall_bytes: u64,
}

impl GcOutcome {
    pub fn fell_short(&self) -> bool {
        self.shortfall_bytes > 0
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
        high_threshold_percent: policy.high_threshold_percent,
        low_threshold_percent: policy.low_threshold_percent,
        rounds: 0,
        removed_containers: Vec::new(),
        deleted: Vec::new(),
        failures: Vec::new(),
        bytes_freed: 0,
        shortfall_bytes: 0,
    };
    // A retry finishes the job its pass started: down to the low threshold, even if the disk
    // has meanwhile dropped below the high one (a pull's temporary files went away).
    let mut mode = match trigger {
        Trigger::Retry => PlanMode::Continue,
        _ => PlanMode::Threshold,
    };
    let mut space_needed = false;
    while outcome.rounds < MAX_ROUNDS {
        outcome.rounds += 1;
        // Shared sizes matter only when space must be freed; asking for them walks every
        // container layer and volume on the node.
        let fs = node.measure()?;
        let detail = if mode == PlanMode::Continue
            || usage_percent(fs.capacity_bytes, fs.available_bytes) >= policy.high_threshold_percent
        {
            Detail::Full
        } else {
            Detail::Light
        };
        let snapshot = node.observe(detail).await?;
        let plan = plan(&snapshot, policy, mode);
        space_needed |= plan.bytes_to_free > 0;
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

        for deletion in &plan.delete {
            if deletion.reason != DeletionReason::MaxAge && target_reached(node, policy)? {
                break;
            }
            match node.engine.remove_image(deletion.id).await {
                Ok(()) => {
                    tracing::info!(
                        image = deletion.id,
                        tags = ?deletion.repo_tags,
                        reason = deletion.reason.as_str(),
                        bytes = deletion.bytes,
                        "deleted image"
                    );
                    node.store.forget_images([deletion.id])?;
                    outcome.deleted.push(DeletedImage {
                        id: deletion.id.to_string(),
                        repo_tags: deletion.repo_tags.to_vec(),
                        reason: deletion.reason,
                        bytes: deletion.bytes,
                    });
                    progress = true;
                }
                // A container started using the image since the snapshot: that is the engine
                // keeping us honest, not a fault.
                Err(e) if e.is_conflict() => refused(&mut outcome, deletion.id, e),
                Err(e) => return Err(e.into()),
            }
        }

        if !space_needed || !progress || target_reached(node, policy)? {
            break;
        }
        mode = PlanMode::Continue;
    }

    let after = node.measure()?;
    outcome.usage_percent_after = usage_percent(after.capacity_bytes, after.available_bytes);
    outcome.bytes_freed = after.available_bytes.saturating_sub(before.available_bytes);
    if space_needed {
        outcome.shortfall_bytes = bytes_to_free(
            after.capacity_bytes,
            after.available_bytes,
            policy.low_threshold_percent,
        );
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
    })?;
    Ok(outcome)
}

fn refused(outcome: &mut GcOutcome, id: &str, error: swarmkeeper_engine::EngineError) {
    tracing::warn!(id, %error, "the engine refused a GC step; skipping it");
    outcome.failures.push(Failure {
        id: id.to_string(),
        error: error.to_string(),
    });
}

/// True once the measured disk is at or below the low threshold.
fn target_reached(node: &Node, policy: &Policy) -> Result<bool, AgentError> {
    let fs = node.measure()?;
    Ok(bytes_to_free(
        fs.capacity_bytes,
        fs.available_bytes,
        policy.low_threshold_percent,
    ) == 0)
}
