//! Disk pressure, carried out: after each agent report, [`disk_pressure`] decides from the
//! node's recent disk samples whether to pause the node, release it or leave it, and this
//! module makes the change through the engine (`docker node update`), with the reason as the
//! node's [`PRESSURE_LABEL`], and writes it to the audit log (the overview's events). A failed
//! change is logged and tried again at the next report: the report itself is already stored.

use std::collections::BTreeMap;

use jiff::Timestamp;
use swarmkeeper_engine::{NodeChange, SwarmNode};
use swarmkeeper_report::{
    disk_pressure, pressure_samples, Availability, NodeReport, NodeState, PressureAction,
    PRESSURE_LABEL,
};

use crate::state::AppState;

/// Who the audit log names for the changes made here.
pub const PRESSURE_ACTOR: &str = "swarmkeeper";

/// Audit actions, shown as `disk-pressure` events on the overview.
pub const PAUSE_ACTION: &str = "disk-pressure-pause";
pub const RELEASE_ACTION: &str = "disk-pressure-release";
pub const FORGET_ACTION: &str = "disk-pressure-forget";

/// Decides and applies disk pressure for the node `report` is about, received at
/// `received_at` and already stored. Engines outside the swarm (no node ID) are left alone.
pub async fn after_report(state: &AppState, report: &NodeReport, received_at: Timestamp) {
    if report.node_id.is_empty() {
        return;
    }
    let policy = state.config.disk_pressure;
    // The decision needs the samples of the release window and the one before it.
    let since = received_at
        .checked_sub(
            policy
                .release_after
                .checked_mul(2)
                .unwrap_or(jiff::SignedDuration::MAX),
        )
        .unwrap_or(Timestamp::MIN);
    let history = match state.store().disk_samples(&report.node_id, since) {
        Ok(history) => history,
        Err(e) => {
            tracing::warn!(error = %e, node = %report.node_id, "disk pressure: cannot read the disk history");
            return;
        }
    };
    let samples = pressure_samples(&history, report, received_at);
    let node = match state.engine.inspect_node(&report.node_id).await {
        Ok(node) => node,
        Err(e) => {
            // A server on a worker, or a node that left: nothing to steer.
            tracing::debug!(error = %e, node = %report.node_id, "disk pressure: cannot read the node");
            return;
        }
    };
    let current = NodeState {
        availability: Availability::parse(&node.availability),
        paused_by_swarmkeeper: node.labels.contains_key(PRESSURE_LABEL),
    };
    let action = disk_pressure(&samples, &policy, &current, received_at);
    if let Err(e) = apply(state, &node, &action).await {
        tracing::warn!(error = %e, node = %node.hostname, ?action, "disk pressure: the change failed; trying again at the next report");
    }
}

async fn apply(
    state: &AppState,
    node: &SwarmNode,
    action: &PressureAction,
) -> Result<(), Box<dyn std::error::Error>> {
    let (change, audit_action, detail) = match action {
        PressureAction::LeaveAlone => return Ok(()),
        PressureAction::Pause { reason } => (
            NodeChange {
                availability: Some("pause".into()),
                add_labels: BTreeMap::from([(PRESSURE_LABEL.to_owned(), reason.clone())]),
                ..NodeChange::default()
            },
            PAUSE_ACTION,
            format!("paused {}: {reason}", node.hostname),
        ),
        PressureAction::Release => (
            NodeChange {
                availability: Some("active".into()),
                remove_labels: vec![PRESSURE_LABEL.to_owned()],
                ..NodeChange::default()
            },
            RELEASE_ACTION,
            format!(
                "set {} active again: usage stayed below its high threshold",
                node.hostname
            ),
        ),
        PressureAction::Forget => (
            NodeChange {
                remove_labels: vec![PRESSURE_LABEL.to_owned()],
                ..NodeChange::default()
            },
            FORGET_ACTION,
            format!(
                "left {} to its operator, who set it {}",
                node.hostname, node.availability
            ),
        ),
    };
    state.engine.update_node(node, &change).await?;
    tracing::info!(node = %node.hostname, "{detail}");
    state.audit(PRESSURE_ACTOR, audit_action, &node.id, &detail)?;
    Ok(())
}
