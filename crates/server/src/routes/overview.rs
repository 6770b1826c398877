//! `/`: the overview.

use axum::extract::State;
use jiff::Timestamp;
use serde::Serialize;
use swarmkeeper_auth::store as auth_store;
use swarmkeeper_lint::lint_running;
use swarmkeeper_report::ReportingState;

use crate::error::AppError;
use crate::respond::Reply;
use crate::routes::nodes::load_nodes;
use crate::state::AppState;
use crate::views::nodes::NodeRow;
use crate::views::overview::{
    events, largest_unbounded_logs, warning_groups, ChangeRecord, Event, GcRecord, UnboundedLogRow,
    WarningGroup,
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
}

/// Unbounded logs listed on the overview.
const UNBOUNDED_LOGS: usize = 10;

const EVENTS: usize = 25;
/// Audit entries read to find the latest changes among logins and the like.
const AUDIT_SCAN: usize = 500;

async fn overview(state: &AppState) -> Result<OverviewView, AppError> {
    let (services, tasks) = tokio::try_join!(
        state.engine.list_services(None),
        state.engine.list_all_tasks()
    )?;
    let nodes = load_nodes(state).await?;
    let rows = service_rows(&services, &tasks);
    let warnings = warning_groups(
        services
            .iter()
            .map(|s| (s.name.as_str(), lint_running(&s.view))),
    );
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
    let unbounded_logs = largest_unbounded_logs(
        &store.latest_node_reports().map_err(AppError::internal)?,
        UNBOUNDED_LOGS,
    );
    let mut runs = Vec::new();
    for node in &nodes {
        for run in store
            .node_gc_history(&node.id, EVENTS)
            .map_err(AppError::internal)?
        {
            runs.push((node, run));
        }
    }
    drop(store);
    let gc: Vec<GcRecord<'_>> = runs
        .iter()
        .map(|(node, run)| GcRecord {
            at: run.started_at,
            node_id: &node.id,
            hostname: &node.hostname,
            images_deleted: run.deleted.len(),
            bytes_freed: swarmkeeper_units::bytes(run.bytes_freed),
            outcome: &run.outcome,
        })
        .collect();
    let events = events(&changes, &gc, &nodes, Timestamp::now(), EVENTS);
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
    })
}

page!(OverviewView, "overview.html", "overview");

/// `GET /`, `GET /api/overview`.
pub async fn show(State(state): State<AppState>) -> Result<Reply, AppError> {
    Ok(Reply::page(overview(&state).await?))
}
