//! `/`: the overview.

use std::collections::HashMap;

use axum::extract::State;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use swarmkeeper_auth::store as auth_store;
use swarmkeeper_lint::lint_running;
use swarmkeeper_report::{latest_by_service, top_consumers, TopConsumers, UsageRange};

use crate::error::AppError;
use crate::respond::Reply;
use crate::routes::nodes::node_rows_from;
use crate::state::AppState;
use crate::views::nodes::{AgentState, NodeRow};
use crate::views::overview::{
    events, largest_unbounded_logs, warning_groups, ChangeRecord, Event, GcRecord, NodeAlertRecord,
    UnboundedLogRow, WarningGroup, NODE_RULES,
};
use crate::views::services::{service_rows, ServiceRow};

#[derive(Serialize)]
pub struct OverviewView {
    pub nodes: Vec<NodeRow>,
    pub services_total: usize,
    /// Services not converged or rolled back.
    pub attention: Vec<ServiceRow>,
    pub events: Vec<Event>,
    pub warnings: Vec<WarningGroup>,
    /// The largest container logs without a size limit, of all nodes.
    pub unbounded_logs: Vec<UnboundedLogRow>,
    /// The services using the most CPU and memory now, and those with a replica at or above
    /// [`NEAR_MEMORY_LIMIT_PERCENT`] of its memory limit.
    pub usage: TopConsumers,
    /// Alert channels whose settings cannot be opened (`NAME: why`): alerts do not reach
    /// them.
    pub unusable_channels: Vec<String>,
}

/// Services listed as top consumers, each by CPU and by memory.
const TOP_CONSUMERS: usize = 5;
/// A replica this close to its memory limit puts its service on the overview.
const NEAR_MEMORY_LIMIT_PERCENT: f64 = 90.0;
/// The task samples the overview's usage is read from: a report comes every 30 s by
/// default, with a sample every 10 s, so each running task has two or more in it.
const RECENT_USAGE: SignedDuration = SignedDuration::from_secs(45);

/// Unbounded logs listed on the overview.
const UNBOUNDED_LOGS: usize = 10;

const EVENTS: usize = 25;
/// Audit entries read to find the latest changes among logins and the like.
const AUDIT_SCAN: usize = 500;
/// GC passes read to find those that did something among the idle ones (an agent reports
/// one every interval).
const GC_SCAN: usize = 500;
/// Node alert messages read: the repeats of a firing message are one event.
const ALERT_SCAN: usize = 500;

/// Three engine requests at once (services, tasks, nodes), then a handful of store queries,
/// whatever the number of services and nodes.
async fn overview(state: &AppState) -> Result<OverviewView, AppError> {
    let (services, tasks, swarm_nodes) = tokio::try_join!(
        state.engine.list_services(None),
        state.engine.list_all_tasks(),
        state.engine.list_nodes(),
    )?;
    let facts: Vec<swarmkeeper_rollout::preflight::NodeFacts> = swarm_nodes
        .iter()
        .map(swarmkeeper_deploy::node_facts)
        .collect();
    let rows = service_rows(&services, &tasks, &facts);
    let warnings = warning_groups(
        services
            .iter()
            .map(|s| (s.name.as_str(), lint_running(&s.view))),
    );
    let now = Timestamp::now();
    let store = state.store();
    let reports = store.latest_node_reports().map_err(AppError::internal)?;
    // A node Swarm no longer lists is on the nodes page's "Removed nodes" only.
    let mut nodes = node_rows_from(&store, &swarm_nodes, &reports, now)?;
    nodes.retain(|row| !row.removed);
    let unbounded_logs = largest_unbounded_logs(&reports, UNBOUNDED_LOGS);
    let node_keys: Vec<String> = reports.iter().map(|(r, _)| r.node_key()).collect();
    let recent = store
        .recent_task_usage(&node_keys, now - RECENT_USAGE)
        .map_err(AppError::internal)?;
    let usage = top_consumers(
        &latest_by_service(&recent, UsageRange::Hour.step_seconds()),
        TOP_CONSUMERS,
        NEAR_MEMORY_LIMIT_PERCENT,
    );
    drop(store);
    let events = latest_events(state, &nodes, now, EVENTS)?;
    Ok(OverviewView {
        services_total: rows.len(),
        attention: rows
            .into_iter()
            .filter(|r| !r.converged || r.rolled_back)
            .collect(),
        events,
        warnings,
        nodes,
        unbounded_logs,
        usage,
        unusable_channels: state.alerting.unusable_channels(),
    })
}

/// The newest `limit` events ([`events`]) of what the server keeps: the last [`AUDIT_SCAN`]
/// audit entries, [`GC_SCAN`] GC passes and [`ALERT_SCAN`] node alert messages.
fn latest_events(
    state: &AppState,
    nodes: &[NodeRow],
    now: Timestamp,
    limit: usize,
) -> Result<Vec<Event>, AppError> {
    let audit =
        auth_store::audit_page(&state.auth(), AUDIT_SCAN, None).map_err(AppError::internal)?;
    let changes: Vec<ChangeRecord<'_>> = audit
        .iter()
        .map(|r| ChangeRecord {
            at: r.entry.at,
            who: &r.entry.who,
            action: &r.entry.action,
            target: &r.entry.target,
            detail: &r.entry.detail,
        })
        .collect();
    let store = state.store();
    let runs = store
        .recent_reported_gc_runs(GC_SCAN)
        .map_err(AppError::internal)?;
    let alerts = store
        .alert_history_of(&NODE_RULES, ALERT_SCAN)
        .map_err(AppError::internal)?;
    drop(store);
    let node_alerts: Vec<NodeAlertRecord<'_>> = alerts
        .iter()
        .map(|a| NodeAlertRecord {
            rule: &a.rule,
            subject: &a.subject,
            status: &a.status,
            summary: &a.summary,
            started_at: a.started_at,
            ended_at: a.ended_at.unwrap_or(a.at),
        })
        .collect();
    let by_id: HashMap<&str, &NodeRow> = nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    let gc: Vec<GcRecord<'_>> = runs
        .iter()
        .filter_map(|(key, run)| {
            let node = by_id.get(key.as_str())?;
            Some(GcRecord {
                at: run.started_at,
                node_id: &node.id,
                hostname: &node.hostname,
                images_deleted: run.deleted.len(),
                containers_removed: run.containers_removed,
                build_cache_freed_bytes: run.build_cache_freed_bytes,
                bytes_freed: swarmkeeper_units::bytes(run.bytes_freed),
                outcome: &run.outcome,
            })
        })
        .collect();
    Ok(events(&changes, &gc, &node_alerts, nodes, now, limit))
}

page!(OverviewView, "overview.html", "overview");

/// `GET /`, `GET /api/overview`.
pub async fn show(State(state): State<AppState>) -> Result<Reply, AppError> {
    Ok(Reply::page(overview(&state).await?))
}

/// Every event the server still has, newest first (tryout 13: the overview's
/// [`EVENTS`] dropped half a working session, and the audit log is an admin's).
#[derive(Serialize)]
pub struct EventsView {
    pub events: Vec<Event>,
    /// How many audit entries, GC passes and node alert messages were read.
    pub scanned: usize,
}

page!(EventsView, "events.html", "overview");

/// `GET /events`, `GET /api/events`: the events of the overview, all that the last
/// [`AUDIT_SCAN`] audit entries, [`GC_SCAN`] GC passes and [`ALERT_SCAN`] node alert messages
/// hold. One engine request (the nodes).
pub async fn all(State(state): State<AppState>) -> Result<Reply, AppError> {
    let swarm_nodes = state.engine.list_nodes().await?;
    let now = Timestamp::now();
    let store = state.store();
    let reports = store.latest_node_reports().map_err(AppError::internal)?;
    let mut nodes = node_rows_from(&store, &swarm_nodes, &reports, now)?;
    drop(store);
    nodes.retain(|row| !row.removed);
    let limit = AUDIT_SCAN + GC_SCAN + ALERT_SCAN;
    let events = latest_events(&state, &nodes, now, limit)?;
    Ok(Reply::page(EventsView {
        events,
        scanned: limit,
    }))
}
