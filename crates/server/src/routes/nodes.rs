//! `/nodes`: every node with its agent's disk report, a node's detail (labels, resources,
//! tasks, disk breakdown, images and why each is kept, GC history, a 24-hour disk chart), and
//! the endpoint agents post their reports to.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use swarmkeeper_auth::bearer_token;
use swarmkeeper_engine::{SwarmNode, Task, TaskState};
use swarmkeeper_gc::DiskReport;
use swarmkeeper_report::{
    validate_report, DataRoot, LastPass, NodeReport, ReportedImage, ReportedRun, UnboundedLog,
    UsageRange, MAX_REPORT_BYTES,
};

use crate::error::AppError;
use crate::page::url_encode;
use crate::respond::Reply;
use crate::routes::usage::{node_series, UsageCharts};
use crate::state::AppState;
use crate::views::chart::disk_chart;
use crate::views::node_admin::{agent_off_note, agent_on_node};
use crate::views::nodes::AgentState;
use crate::views::nodes::{
    node_rows, start_of_day, taken_over_after_pressure, NodeHistory, NodeRow,
};

#[derive(Serialize)]
pub struct NodesView {
    /// Swarm's nodes, and engines outside a swarm that report.
    pub nodes: Vec<NodeRow>,
    /// Nodes Swarm no longer lists whose reports the server still holds, until an admin
    /// forgets them ([`forget`]).
    pub removed: Vec<NodeRow>,
}

/// The node rows, from Swarm's node list and the stored reports.
pub async fn load_nodes(state: &AppState) -> Result<Vec<NodeRow>, AppError> {
    let nodes = state.engine.list_nodes().await?;
    let store = state.store();
    let reports = store.latest_node_reports().map_err(AppError::internal)?;
    node_rows_from(&store, &nodes, &reports, Timestamp::now())
}

/// The node rows from Swarm's node list and reports read already (the overview reads them
/// once for several parts): two store queries in all, whatever the number of nodes.
pub fn node_rows_from(
    store: &swarmkeeper_store::Store,
    nodes: &[SwarmNode],
    reports: &[(NodeReport, Timestamp)],
    now: Timestamp,
) -> Result<Vec<NodeRow>, AppError> {
    let today = start_of_day(now);
    let mut last_gc = store.last_gc_runs().map_err(AppError::internal)?;
    let mut freed_today = store
        .bytes_freed_by_node_since(today)
        .map_err(AppError::internal)?;
    let history: HashMap<String, NodeHistory> = reports
        .iter()
        .map(|(report, _)| {
            let key = report.node_key();
            let history = NodeHistory {
                last_gc: last_gc.remove(&key),
                freed_today_bytes: freed_today.remove(&key).unwrap_or(0),
            };
            (key, history)
        })
        .collect();
    Ok(node_rows(nodes, reports, &history, now))
}

page!(NodesView, "nodes.html", "nodes");

/// `GET /nodes`, `GET /api/nodes`.
pub async fn list(State(state): State<AppState>) -> Result<Reply, AppError> {
    let (removed, nodes) = load_nodes(&state)
        .await?
        .into_iter()
        .partition(|row| row.removed);
    Ok(Reply::page(NodesView { nodes, removed }))
}

/// `POST /nodes/{id}/forget`, `POST /api/nodes/{id}/forget` (admins; 204): deletes the
/// stored reports, disk and usage samples and GC history of a node Swarm no longer lists, and
/// audits it. A node Swarm lists is refused (409): its agent would report again at once; a
/// node neither Swarm nor a report knows is 404.
pub async fn forget(
    State(state): State<AppState>,
    caller: crate::access::Caller,
    Path(id): Path<String>,
) -> Result<Reply, AppError> {
    let row = load_nodes(&state)
        .await?
        .into_iter()
        .find(|row| row.id == id)
        .ok_or_else(|| AppError::NotFound(format!("no node {id}")))?;
    if !row.removed {
        return Err(AppError::Conflict(format!(
            "node {} is not removed from the swarm: only a removed node's reports are forgotten",
            row.hostname
        )));
    }
    state
        .store()
        .forget_node(&row.id)
        .map_err(AppError::internal)?;
    state.audit(
        &caller.user.name,
        "forget-node",
        &row.id,
        &format!("forgot the reports of removed node {}", row.hostname),
    )?;
    Ok(Reply::done("/nodes"))
}

/// A task on a node's page.
#[derive(Serialize)]
pub struct NodeTask {
    pub id: String,
    pub service: String,
    pub slot: Option<u64>,
    pub state: String,
    pub desired_state: String,
    pub image: String,
    pub error: String,
}

#[derive(Serialize)]
pub struct NodeView {
    #[serde(flatten)]
    pub row: NodeRow,
    /// What Swarm says; absent for a reporting engine outside the swarm.
    pub swarm: Option<SwarmFacts>,
    pub tasks: Vec<NodeTask>,
    /// The agent's latest disk breakdown. Renamed in JSON: the flattened row has a `disk`
    /// (and an `images`) of its own, and an object must not name a key twice.
    #[serde(rename = "disk_report")]
    pub disk: Option<DiskReport>,
    pub disk_breakdown_at: Option<Timestamp>,
    /// The breakdown is older than [`BREAKDOWN_STALE`]: the agent refreshes it every 10
    /// minutes, so its engine has not answered `/system/df` since (or the agent is older).
    pub disk_breakdown_stale: bool,
    #[serde(rename = "reported_images")]
    pub images: Vec<ReportedImage>,
    pub gc_runs: Vec<ReportedRun>,
    pub reported_at: Option<Timestamp>,
    /// The filesystem the disk figures are of; `None` from an older agent.
    pub data_root: Option<DataRoot>,
    /// The room GC keeps for the next pull, in bytes (0: none), and the agent's setting.
    pub pull_headroom_bytes: u64,
    pub pull_headroom: String,
    pub last_pass: Option<LastPass>,
    /// Containers whose `json-file` logs have no size limit, largest first.
    pub unbounded_logs: Vec<UnboundedLog>,
    /// Disk usage samples of the last 24 hours: `[unix ms, used bytes, capacity bytes]`.
    pub disk_history: Vec<(i64, u64, u64)>,
    /// Paused by swarmkeeper for disk pressure, then taken over by an operator
    /// ([`taken_over_after_pressure`]): swarmkeeper will not set it active again.
    pub taken_over: bool,
    /// Paused while swarmkeeper's agent does not run there: what stays off and what to do
    /// (`views::node_admin::agent_off_note`); the page shows "agent not running".
    pub agent_off: Option<String>,
    /// The swarm's only manager: the page offers no demote (the engine refuses it).
    #[serde(skip)]
    pub only_manager: bool,
    /// The disk chart, an SVG the page shows.
    #[serde(skip)]
    chart: String,
    /// The last hour's CPU and memory charts (`/api/nodes/{id}/usage` has the points).
    #[serde(skip)]
    usage: UsageCharts,
    /// What a change just made to the node leaves to know, or why it was refused (a role
    /// change's, `node_admin::set_role`); the page shows it on top.
    #[serde(skip)]
    pub notice: Option<String>,
}

#[derive(Serialize)]
pub struct SwarmFacts {
    pub addr: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub engine_labels: std::collections::BTreeMap<String, String>,
    pub nano_cpus: u64,
    pub memory_bytes: u64,
    pub os: String,
    pub architecture: String,
    pub status_message: String,
    pub manager_reachability: Option<String>,
}

impl From<&SwarmNode> for SwarmFacts {
    fn from(node: &SwarmNode) -> SwarmFacts {
        SwarmFacts {
            addr: node.addr.clone(),
            labels: node.labels.clone(),
            engine_labels: node.engine_labels.clone(),
            nano_cpus: node.nano_cpus,
            memory_bytes: node.memory_bytes,
            os: node.os.clone(),
            architecture: node.architecture.clone(),
            status_message: node.status_message.clone(),
            manager_reachability: node.manager_reachability.clone(),
        }
    }
}

const GC_HISTORY_ROWS: usize = 50;
const CHART_WINDOW: SignedDuration = SignedDuration::from_hours(24);
/// Three of the agent's 10-minute breakdown refreshes missed.
const BREAKDOWN_STALE: SignedDuration = SignedDuration::from_mins(30);

/// The node page's view of the node `id` (its id or hostname), without a notice.
pub(crate) async fn load_node(state: &AppState, id: &str) -> Result<NodeView, AppError> {
    let rows = load_nodes(state).await?;
    let managers = rows.iter().filter(|r| r.role == "manager").count();
    let row = rows
        .into_iter()
        .find(|row| row.id == id || row.hostname == id)
        .ok_or_else(|| AppError::NotFound(format!("no node {id}")))?;
    // A row made from a report alone (an engine outside the swarm, or a node removed from
    // it) has no role: the swarm knows nothing of it.
    let in_swarm = !row.role.is_empty();
    let (swarm, tasks, agent_off) = if in_swarm {
        let (node, tasks, services) = tokio::try_join!(
            state.engine.inspect_node(&row.id),
            state.engine.list_node_tasks(&row.id),
            state.engine.list_services(None),
        )?;
        let names: HashMap<&str, &str> = services
            .iter()
            .map(|s| (s.id.as_str(), s.name.as_str()))
            .collect();
        let agent = agent_on_node(&services, &tasks);
        (
            Some(SwarmFacts::from(&node)),
            node_tasks(&tasks, &names),
            agent_off_note(&row.hostname, &row.availability, agent),
        )
    } else {
        (None, Vec::new(), None)
    };
    let taken_over = in_swarm && row.disk_pressure.is_none() && row.availability != "active" && {
        use crate::pressure::{FORGET_ACTION, PAUSE_ACTION, RELEASE_ACTION};
        let last = swarmkeeper_auth::store::latest_audit_of(
            &state.auth(),
            &row.id,
            &[PAUSE_ACTION, RELEASE_ACTION, FORGET_ACTION],
        )
        .map_err(AppError::internal)?;
        taken_over_after_pressure(
            &row.availability,
            false,
            last.as_ref().map(|e| e.action.as_str()),
        )
    };
    let now = Timestamp::now();
    let store = state.store();
    let report = store.node_report(&row.id).map_err(AppError::internal)?;
    let samples = store
        .disk_samples(&row.id, now - CHART_WINDOW)
        .map_err(AppError::internal)?;
    let gc_runs = store
        .node_gc_history(&row.id, GC_HISTORY_ROWS)
        .map_err(AppError::internal)?;
    drop(store);
    let (high, low) = row.disk.as_ref().map_or((85, 80), |d| {
        (d.high_threshold_percent, d.low_threshold_percent)
    });
    let chart = disk_chart(&samples, now, CHART_WINDOW, high, low);
    let usage = UsageCharts::draw(
        format!("/nodes/{}", url_encode(&row.id)),
        &node_series(state, &row.id, UsageRange::Hour, now)?,
        UsageRange::Hour,
        now,
    );
    let report = report.map(|(report, _)| report);
    let (disk, disk_breakdown_at, images, reported_at) = match &report {
        Some(report) => (
            Some(report.disk.clone()),
            report.disk_breakdown_at,
            report.images.clone(),
            Some(report.reported_at),
        ),
        None => (None, None, Vec::new(), None),
    };
    let report = report.unwrap_or_default();
    let only_manager = managers == 1 && row.role == "manager";
    Ok(NodeView {
        row,
        swarm,
        tasks,
        disk,
        disk_breakdown_at,
        disk_breakdown_stale: disk_breakdown_at.is_some_and(|at| at < now - BREAKDOWN_STALE),
        images,
        gc_runs,
        reported_at,
        data_root: report.data_root,
        pull_headroom_bytes: report.pull_headroom_bytes,
        pull_headroom: report.pull_headroom,
        last_pass: report.last_pass,
        unbounded_logs: report.unbounded_logs,
        disk_history: samples
            .iter()
            .map(|s| (s.at.as_millisecond(), s.used_bytes, s.capacity_bytes))
            .collect(),
        taken_over,
        agent_off,
        only_manager,
        chart,
        usage,
        notice: None,
    })
}

fn node_tasks(tasks: &[Task], names: &HashMap<&str, &str>) -> Vec<NodeTask> {
    let mut rows: Vec<NodeTask> = tasks
        .iter()
        .filter(|t| t.desired_state == TaskState::Running || t.state == TaskState::Running)
        .map(|t| NodeTask {
            id: t.id.clone(),
            service: names
                .get(t.service_id.as_str())
                .map_or_else(|| t.service_id.clone(), |n| (*n).to_owned()),
            slot: t.slot,
            state: t.state.to_string(),
            desired_state: t.desired_state.to_string(),
            image: t.image().name,
            error: t.err.clone(),
        })
        .collect();
    rows.sort_by(|a, b| (&a.service, a.slot).cmp(&(&b.service, b.slot)));
    rows
}

page!(NodeView, "node.html", "nodes");

/// `GET /nodes/{id}`, `GET /api/nodes/{id}`: by node id or hostname.
pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Reply, AppError> {
    Ok(Reply::page(load_node(&state, &id).await?))
}

/// `POST /api/agent/report`: an agent's report, with the shared secret as a bearer token.
/// The secret is compared in constant time, before a byte of the body is read; without a
/// configured secret every report is refused, so a server cannot be fed by anyone by default.
/// Bodies are then read a few at a time ([`crate::limits::Limits::report_uploads`]), and the
/// report is checked ([`validate_report`]) before anything is stored. Then disk pressure is
/// decided for the node and carried out ([`crate::pressure::after_report`]), and alerts
/// evaluated on a task of their own ([`crate::alerting::after_report`]).
pub async fn agent_report(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, AppError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .ok_or(AppError::Unauthenticated)?;
    // The current secret, or a previous one during a rotation's grace (`AppState::report_secret`).
    let used = state
        .report_secret(presented)
        .ok_or(AppError::Unauthenticated)?;
    let too_large =
        || AppError::TooLarge(format!("a report may be at most {MAX_REPORT_BYTES} bytes"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_REPORT_BYTES as u64) {
        return Err(too_large());
    }
    let _turn = state
        .report_uploads
        .acquire()
        .await
        .map_err(AppError::internal)?;
    let body = axum::body::to_bytes(body, MAX_REPORT_BYTES)
        .await
        .map_err(|e| {
            let over = std::error::Error::source(&e)
                .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
            if over {
                too_large()
            } else {
                AppError::BadInput(format!("report: reading the body: {e}"))
            }
        })?;
    let report: NodeReport =
        serde_json::from_slice(&body).map_err(|e| AppError::BadInput(format!("report: {e}")))?;
    let now = Timestamp::now();
    validate_report(&report, now).map_err(|e| AppError::BadInput(format!("report: {e}")))?;
    state
        .store()
        .record_node_report(&report, now)
        .map_err(AppError::internal)?;
    state.note_report_secret(&report.node_key(), &report.hostname, presented, used)?;
    crate::alerting::after_report(&state, &report);
    crate::pressure::after_report(&state, &report, now).await;
    Ok(StatusCode::NO_CONTENT)
}
