//! `/tasks/{id}`: one task, its container's exit code and error, its node, why it waits, its
//! slot's restarts, and (for those who may read logs) its last log lines.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Path, State};
use futures_util::StreamExt;
use jiff::Timestamp;
use serde::Serialize;
use swarmkeeper_auth::Action;
use swarmkeeper_engine::{
    is_logs_unreadable, EngineError, LogLine, LogOptions, Task, LOGS_UNREADABLE,
};
use swarmkeeper_report::UsageRange;
use swarmkeeper_rollout::without_grpc_wrapper;

use crate::access::Caller;
use crate::error::AppError;
use crate::page::url_encode;
use crate::respond::Reply;
use crate::routes::usage::{service_series, UsageCharts};
use crate::state::AppState;
use crate::views::tasks::{task_detail, TaskDetail, TaskFacts};

/// How many log lines the page shows, and how long reading them may take.
const LOG_LINES: u64 = 20;
const LOGS_WITHIN: Duration = Duration::from_secs(5);

#[derive(Serialize)]
pub struct TaskView {
    #[serde(flatten)]
    pub detail: TaskDetail,
    /// The task's last log lines; empty for a caller who may not read logs.
    pub logs: Vec<String>,
    /// Why there are no lines, when there are none.
    pub logs_note: Option<String>,
    /// The last hour's CPU and memory charts (`/api/tasks/{id}/usage` has the points).
    #[serde(skip)]
    pub usage: UsageCharts,
}

page!(TaskView, "task.html", "services");

/// `GET /tasks/{id}`, `GET /api/tasks/{id}`.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Reply, AppError> {
    let task = inspect(&state, &id).await?;
    let (service, siblings, nodes) = tokio::try_join!(
        service_name(&state, &task),
        state.engine.list_tasks(&task.service_id),
        state.engine.list_nodes()
    )?;
    let hostnames: HashMap<String, String> =
        nodes.into_iter().map(|n| (n.id, n.hostname)).collect();
    let (logs, logs_note) = if caller.may(Action::ViewLogs) {
        last_lines(&state, &task.id).await
    } else {
        (
            Vec::new(),
            Some("reading logs needs the operator role".to_owned()),
        )
    };
    let now = Timestamp::now();
    let facts = task_facts(&state, &task, &siblings, &service, now).await?;
    let detail = task_detail(&task, &service, &siblings, &hostnames, &facts);
    // A task not started has no logs: why it waits, not the engine's refusal to read them.
    let logs_note = match &detail.pending_reason {
        Some(why) if logs.is_empty() => Some(format!("no log lines yet: {why}")),
        _ => logs_note,
    };
    let usage = UsageCharts::draw(
        format!("/tasks/{}", url_encode(&task.id)),
        &service_series(&state, &service, Some(&task.id), UsageRange::Hour, now)?,
        UsageRange::Hour,
        now,
    );
    Ok(Reply::page(TaskView {
        detail,
        logs,
        logs_note,
        usage,
    }))
}

/// What the server knows of `task` (of service `service`) beyond Swarm's listing: whether
/// its container and those of its slot's other tasks (among `siblings`) were OOM-killed (see
/// [`oom_kill`]), the kills the agents counted in them whatever their main process did, its
/// memory limit, and its slot's ends the alert evaluations remember.
async fn task_facts(
    state: &AppState,
    task: &Task,
    siblings: &[Task],
    service: &str,
    now: Timestamp,
) -> Result<TaskFacts, AppError> {
    let mut slot_ooms = HashMap::new();
    for t in siblings
        .iter()
        .filter(|t| t.id != task.id && t.slot_key() == task.slot_key())
    {
        if let Some(limit) = oom_kill(state, t, service, now).await? {
            slot_ooms.insert(t.id.clone(), limit);
        }
    }
    let own = oom_kill(state, task, service, now).await?;
    // Every kill the agents counted in the slot's containers, the main process's or not.
    let since = siblings
        .iter()
        .filter(|t| t.slot_key() == task.slot_key())
        .filter_map(|t| t.created_at)
        .min()
        .unwrap_or(now);
    let oom_kills = state
        .store()
        .service_oom_kills(service, since)
        .map_err(AppError::internal)?;
    if let Some(limit) = own {
        slot_ooms.insert(task.id.clone(), limit);
    }
    Ok(TaskFacts {
        oom_killed: own.is_some(),
        memory_limit_bytes: own
            .flatten()
            .or(Some(task.limits().memory_bytes).filter(|b| *b > 0)),
        slot_ooms,
        oom_kills,
        slot_ends: state
            .alerting
            .slot_ends(&task.service_id, &task.slot_key())
            .await,
        restarts_within: state.alerting.rules().restart_loop.within,
        now,
    })
}

/// Whether the kernel's OOM killer killed in `task`'s container (the kills the agent counted
/// in it, else its engine's `State.OOMKilled` when the container is on the server's node and
/// still there), with its memory limit: the one counted, else its spec's.
async fn oom_kill(
    state: &AppState,
    task: &Task,
    service: &str,
    now: Timestamp,
) -> Result<Option<Option<u64>>, AppError> {
    if task.exit_code.is_none() {
        return Ok(None);
    }
    let since = task
        .created_at
        .unwrap_or(now - jiff::SignedDuration::from_hours(24 * 30));
    let counted = state
        .store()
        .task_oom_kills(service, &task.id, since)
        .map_err(AppError::internal)?;
    let spec_limit = Some(task.limits().memory_bytes).filter(|b| *b > 0);
    if let Some((_, limit)) = counted {
        return Ok(Some(limit.or(spec_limit)));
    }
    let engine_says = match &task.container_id {
        Some(container) => state.engine.container_oom_killed(container).await.ok(),
        None => None,
    };
    Ok((engine_says == Some(true)).then_some(spec_limit))
}

/// The task, or 404 naming it.
pub(crate) async fn inspect(state: &AppState, id: &str) -> Result<Task, AppError> {
    state.engine.inspect_task(id).await.map_err(|e| {
        if e.is_not_found() {
            AppError::NotFound(format!("no task {id}"))
        } else {
            e.into()
        }
    })
}

/// The name of the task's service; its id when the service is gone (its tasks linger a
/// while).
pub(crate) async fn service_name(state: &AppState, task: &Task) -> Result<String, EngineError> {
    match state.engine.inspect_service(&task.service_id).await {
        Ok(service) => Ok(service.name),
        Err(e) if e.is_not_found() => Ok(task.service_id.clone()),
        Err(e) => Err(e),
    }
}

pub(crate) async fn last_lines(state: &AppState, task: &str) -> (Vec<String>, Option<String>) {
    let options = LogOptions {
        follow: false,
        since: None,
        tail: Some(LOG_LINES),
        timestamps: false,
    };
    let read = tokio::time::timeout(LOGS_WITHIN, async {
        let mut stream = state.engine.task_logs(task, &options).await?;
        let mut lines = Vec::new();
        while let Some(line) = stream.next().await {
            lines.push(line?);
        }
        Ok::<_, EngineError>(lines)
    })
    .await;
    const UNREADABLE: &str = "its log driver keeps nothing readable";
    match read {
        Ok(Ok(lines)) => match engine_refusal(&lines) {
            Some(why) if why.contains(LOGS_UNREADABLE) => (Vec::new(), Some(UNREADABLE.to_owned())),
            Some(why) => (
                Vec::new(),
                Some(format!(
                    "the engine has no logs: {}",
                    without_grpc_wrapper(why)
                )),
            ),
            None if lines.is_empty() => (Vec::new(), Some("no log lines".to_owned())),
            None => (lines.into_iter().map(|l| l.text).collect(), None),
        },
        Ok(Err(e)) if is_logs_unreadable(&e) => (Vec::new(), Some(UNREADABLE.to_owned())),
        Ok(Err(e)) => (Vec::new(), Some(format!("logs could not be read: {e}"))),
        Err(_) => (
            Vec::new(),
            Some(format!(
                "logs did not come within {}s",
                LOGS_WITHIN.as_secs()
            )),
        ),
    }
}

/// The engine's own answer inside the log stream instead of the task's lines — a line of no
/// task, `Error grabbing logs: …` (a task not scheduled yet, a driver that keeps nothing) —
/// without its lead.
fn engine_refusal(lines: &[LogLine]) -> Option<&str> {
    const LEAD: &str = "Error grabbing logs:";
    lines
        .iter()
        .find(|l| l.task_id.is_none() && l.text.starts_with(LEAD))
        .map(|l| l.text[LEAD.len()..].trim())
}
