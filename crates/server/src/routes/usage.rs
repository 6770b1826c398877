//! Resource usage charts: `/nodes/{id}/usage`, `/services/{name}/usage`, `/tasks/{id}/usage`
//! (`?range=1h|24h|30d`, 1h by default) and their JSON twins under `/api`, and the hour's
//! charts the node, service and task pages embed. The series come from `report::series`
//! (rates, sums over replicas, the range's resolution); one store query each, and a task's
//! page asks the engine only for its service's name.

use axum::extract::{Path, Query, State};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use swarmkeeper_report::{node_points, service_points, task_points, UsagePoint, UsageRange};

use crate::error::AppError;
use crate::respond::Reply;
use crate::state::AppState;
use crate::views::usage_chart::{usage_chart, Measure};

/// `?range=`.
#[derive(Deserialize)]
pub struct RangeQuery {
    range: Option<String>,
}

impl RangeQuery {
    fn range(&self) -> Result<UsageRange, AppError> {
        match self.range.as_deref() {
            None | Some("") => Ok(UsageRange::Hour),
            Some(text) => UsageRange::parse(text).ok_or_else(|| {
                AppError::BadInput(format!("range: \"{text}\" is not one of 1h, 24h, 30d"))
            }),
        }
    }
}

/// The two charts of a subject, drawn, and the path of its page (`/nodes/ID`) the longer
/// ranges' links start from.
#[derive(Clone, Default)]
pub struct UsageCharts {
    pub base: String,
    pub cpu: String,
    pub memory: String,
}

impl UsageCharts {
    pub fn draw(
        base: String,
        points: &[UsagePoint],
        range: UsageRange,
        now: Timestamp,
    ) -> UsageCharts {
        UsageCharts {
            base,
            cpu: usage_chart(points, Measure::Cpu, range, now),
            memory: usage_chart(points, Measure::Memory, range, now),
        }
    }
}

/// A usage page's data; its JSON twin is the points.
#[derive(Serialize)]
pub struct UsageView {
    /// `node`, `service` or `task`.
    pub kind: &'static str,
    /// The node's key, the service's name or the task's id, as in the path.
    pub subject: String,
    /// What the page is titled by: hostname, service name, `service.slot` or task id.
    pub title: String,
    pub range: UsageRange,
    /// Seconds per point ([`swarmkeeper_report::resolution`]).
    pub step_seconds: i64,
    /// Oldest first.
    pub points: Vec<UsagePoint>,
    #[serde(skip)]
    pub charts: UsageCharts,
    #[serde(skip)]
    pub ranges: [UsageRange; 3],
}

page!(UsageView, "usage.html", "nodes");

fn view(
    kind: &'static str,
    subject: String,
    title: String,
    range: UsageRange,
    points: Vec<UsagePoint>,
    now: Timestamp,
) -> Reply {
    Reply::page(UsageView {
        kind,
        subject,
        title,
        range,
        step_seconds: range.step_seconds(),
        charts: UsageCharts::draw(String::new(), &points, range, now),
        points,
        ranges: UsageRange::ALL,
    })
}

/// A node's points over `range`, by its report key.
pub fn node_series(
    state: &AppState,
    node_key: &str,
    range: UsageRange,
    now: Timestamp,
) -> Result<Vec<UsagePoint>, AppError> {
    let samples = state
        .store()
        .node_usage(node_key, now - range.window())
        .map_err(AppError::internal)?;
    Ok(node_points(&samples, range.step_seconds()))
}

/// A service's points over `range`, its replicas summed; with `task`, that task's alone.
pub fn service_series(
    state: &AppState,
    service: &str,
    task: Option<&str>,
    range: UsageRange,
    now: Timestamp,
) -> Result<Vec<UsagePoint>, AppError> {
    let step = range.step_seconds();
    let samples = state
        .store()
        .service_usage_per_step(service, now - range.window(), step)
        .map_err(AppError::internal)?;
    Ok(match task {
        None => service_points(&samples, step),
        Some(task) => {
            let samples: Vec<_> = samples
                .iter()
                .filter(|(_, t)| t.task == task)
                .map(|(at, t)| (*at, t))
                .collect();
            task_points(&samples, step)
        }
    })
}

/// `GET /nodes/{id}/usage`, `GET /api/nodes/{id}/usage`: by node id or hostname, from the
/// store (a node that left the swarm keeps its history); the engine is asked only about a
/// node no agent reported from.
pub async fn node(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<RangeQuery>,
) -> Result<Reply, AppError> {
    let range = query.range()?;
    let reports = state
        .store()
        .latest_node_reports()
        .map_err(AppError::internal)?;
    let found = reports
        .into_iter()
        .map(|(report, _)| report)
        .find(|r| r.node_key() == id || r.hostname == id);
    // A node whose agent never reported has an empty chart, one the swarm does not know 404.
    let (key, hostname) = match found {
        Some(report) => (report.node_key(), report.hostname),
        None => {
            let node = state.engine.inspect_node(&id).await.map_err(|e| {
                if e.is_not_found() {
                    AppError::NotFound(format!("no node {id}"))
                } else {
                    e.into()
                }
            })?;
            (node.id, node.hostname)
        }
    };
    let now = Timestamp::now();
    let points = node_series(&state, &key, range, now)?;
    Ok(view("node", id, hostname, range, points, now))
}

/// `GET /services/{name}/usage`, `GET /api/services/{name}/usage`: the replicas summed. A
/// removed service keeps its history until it is thinned away.
pub async fn service(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<RangeQuery>,
) -> Result<Reply, AppError> {
    let range = query.range()?;
    let now = Timestamp::now();
    let points = service_series(&state, &name, None, range, now)?;
    Ok(view("service", name.clone(), name, range, points, now))
}

/// `GET /tasks/{id}/usage`, `GET /api/tasks/{id}/usage`.
pub async fn task(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<RangeQuery>,
) -> Result<Reply, AppError> {
    let range = query.range()?;
    let task = super::tasks::inspect(&state, &id).await?;
    let service = super::tasks::service_name(&state, &task).await?;
    let now = Timestamp::now();
    let points = service_series(&state, &service, Some(&task.id), range, now)?;
    let title = match task.slot {
        Some(slot) => format!("{service}.{slot}"),
        None => task.id.clone(),
    };
    Ok(view("task", id, title, range, points, now))
}
