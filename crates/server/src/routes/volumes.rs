//! `/volumes`: where each volume lives and how big it is, from the agents' latest reports
//! (the server asks no engine for volumes: they are node-local, and only each node's agent
//! sees them), which Swarm tasks mount each now (the swarm's task list, on the manager), and
//! an admin's removal of one.
//!
//! A removal must happen on the volume's own node. On the node whose engine the server talks
//! to, the server asks that engine. On another node it runs `swarmkeeper volume rm NAME` as a
//! one-task Swarm job placed on that node, in the agent's image (the service labelled
//! `swarmkeeper.agent=true`, so the image is on every node already), with the node's engine
//! socket mounted: Swarm's own authenticated, encrypted control plane carries the order, so
//! no node opens a port for it and no new credential exists. The engine refuses a volume a
//! container uses, whatever the report said; GC never removes volumes.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use serde::Deserialize;
use swarmkeeper_auth::Action;
use swarmkeeper_engine::{node_job_spec, EngineError, Task, TaskState};

use crate::access::Caller;
use crate::error::AppError;
use crate::respond::Reply;
use crate::state::AppState;
use crate::views::own::AGENT_LABEL;
use crate::views::volumes::{
    removal_target, volumes_view, RemovalRefused, TaskMount, VolumeRow, VolumeTask, VolumesView,
};

page!(VolumesView, "volumes.html", "volumes");

/// One volume's removal page: what goes, and the one form that removes it. The list links
/// here instead of carrying a form per row, so it stays small at hundreds of volumes.
#[derive(serde::Serialize)]
pub struct VolumeRemovalView {
    #[serde(flatten)]
    pub volume: VolumeRow,
}

page!(VolumeRemovalView, "volume_remove.html", "volumes");

/// The label on a removal job, naming the volume.
const JOB_LABEL: &str = "swarmkeeper.volume-removal";
/// How long a removal job may take, image start included.
const JOB_WITHIN: Duration = Duration::from_secs(60);

async fn view(state: &AppState) -> Result<VolumesView, AppError> {
    let reports = state
        .store()
        .latest_node_reports()
        .map_err(AppError::internal)?;
    let reports: Vec<_> = reports.into_iter().map(|(report, _)| report).collect();
    let swarm = SwarmTasks::now(state, hostnames(&reports), Mounting::Wanted).await?;
    Ok(volumes_view(&reports, &swarm.mounts()))
}

/// Each reporting node's hostname by its key: a global service's task is named by it.
fn hostnames(reports: &[swarmkeeper_report::NodeReport]) -> HashMap<String, String> {
    reports
        .iter()
        .map(|r| (r.node_key(), r.hostname.clone()))
        .collect()
}

/// The hostnames of the nodes' latest reports, for a refusal that names tasks.
fn reported_hostnames(state: &AppState) -> HashMap<String, String> {
    match state.store().latest_node_reports() {
        Ok(reports) => hostnames(&reports.into_iter().map(|(r, _)| r).collect::<Vec<_>>()),
        Err(_) => HashMap::new(),
    }
}

/// The swarm's tasks now, with their services' names: what the engine says, not what an
/// agent last reported (a task that started since its node's report counts). One engine
/// request, the task list, and a second, the service list, only when a task mounts a volume:
/// the engine's task names its service by ID alone (`ServiceID`; API 1.41 copies no service
/// name into a task), so naming a volume's users needs the services. Hostnames come from the
/// agents' reports (a volume is listed only from its node's report), never from the engine.
struct SwarmTasks {
    tasks: Vec<Task>,
    services: HashMap<String, String>,
    hostnames: HashMap<String, String>,
}

/// Which tasks' volumes make the services worth asking for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mounting {
    /// Those Swarm wants to run: the page's "in use by a task".
    Wanted,
    /// Any, in any state: the engine's "in use" may name a stopped task's container.
    Any,
}

impl SwarmTasks {
    async fn now(
        state: &AppState,
        hostnames: HashMap<String, String>,
        mounting: Mounting,
    ) -> Result<SwarmTasks, AppError> {
        let tasks = state.engine.list_all_tasks().await?;
        let named = tasks
            .iter()
            .filter(|t| mounting == Mounting::Any || t.is_wanted())
            .any(|t| !t.volumes().is_empty());
        let services = match named {
            true => state.engine.list_services(None).await?,
            false => Vec::new(),
        };
        Ok(SwarmTasks {
            tasks,
            services: services.into_iter().map(|s| (s.id, s.name)).collect(),
            hostnames,
        })
    }

    /// The named volumes the tasks Swarm wants to run mount, each on its task's node.
    fn mounts(&self) -> Vec<TaskMount> {
        let mut mounts = Vec::new();
        for task in self
            .tasks
            .iter()
            .filter(|t| t.is_wanted() && !t.node_id.is_empty())
        {
            let Some(user) = self.name(task) else {
                continue;
            };
            for volume in task.volumes() {
                mounts.push(TaskMount {
                    node_id: task.node_id.clone(),
                    volume,
                    user: user.clone(),
                });
            }
        }
        mounts
    }

    /// The task as the volumes page names it: `service.1`, `service.HOSTNAME` for a global
    /// service's; `None` when its service is gone.
    fn name(&self, task: &Task) -> Option<VolumeTask> {
        let service = self.services.get(&task.service_id)?;
        let slot = match task.slot {
            Some(slot) => slot.to_string(),
            None => self
                .hostnames
                .get(&task.node_id)
                .unwrap_or(&task.node_id)
                .clone(),
        };
        Some(VolumeTask {
            task: format!("{service}.{slot}"),
            service: service.clone(),
            task_id: task.id.clone(),
        })
    }

    /// ` (task web.1 of service web)` for the containers the engine's words name (`volume
    /// is in use - [ID, …]`, ids maybe shortened) that are Swarm tasks' containers; empty
    /// when none is.
    fn owners(&self, said: &str) -> String {
        let ids: Vec<&str> = said
            .split(['[', ']', ',', ' '])
            .filter(|w| w.len() >= 12 && w.bytes().all(|b| b.is_ascii_hexdigit()))
            .collect();
        let named: Vec<String> = self
            .tasks
            .iter()
            .filter(|t| {
                t.container_id
                    .as_deref()
                    .is_some_and(|c| ids.iter().any(|id| c.starts_with(id)))
            })
            .filter_map(|t| self.name(t))
            .map(|t| format!("task {} of service {}", t.task, t.service))
            .collect();
        if named.is_empty() {
            String::new()
        } else {
            format!(" ({})", named.join(", "))
        }
    }
}

/// `GET /volumes`, `GET /api/volumes`: one store query, the task list, and the service list
/// only when a task mounts a volume ([`SwarmTasks`]).
pub async fn list(State(state): State<AppState>) -> Result<Reply, AppError> {
    Ok(Reply::page(view(&state).await?))
}

/// `GET /volumes/{name}/remove?node=NODE`: the confirmation page, for an admin. Refused as
/// a removal would be (in use, unknown, on several nodes and none named), before any form.
pub async fn confirm(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(on): Query<OnNode>,
) -> Result<Reply, AppError> {
    let view = view(&state).await?;
    let row = removal_target(&view, &name, on.node.as_deref()).map_err(removal_refused)?;
    Ok(Reply::page(VolumeRemovalView {
        volume: row.clone(),
    }))
}

fn removal_refused(refused: RemovalRefused) -> AppError {
    match refused {
        RemovalRefused::NotFound(why) => AppError::NotFound(why),
        RemovalRefused::Ambiguous(why) => AppError::BadInput(why),
        RemovalRefused::InUse(why) => AppError::Conflict(why),
    }
}

/// Which node's volume: a node ID (or `hostname:NAME` key) or a hostname.
#[derive(Deserialize)]
pub struct OnNode {
    #[serde(default)]
    pub node: Option<String>,
}

/// `POST /volumes/{name}/remove?node=NODE` (the page's button, after a confirmation naming
/// the node), `DELETE /api/volumes/{name}?node=NODE`: admin only. 409 while a container uses
/// it (naming the containers and their services), 400 when the name is on several nodes and
/// none is named, 404 when no node reported it.
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(on): Query<OnNode>,
) -> Result<Reply, AppError> {
    let view = view(&state).await?;
    let row = removal_target(&view, &name, on.node.as_deref()).map_err(removal_refused)?;
    let info = state.engine.info().await?;
    let local = info.node_id.as_deref() == Some(row.node_key.as_str())
        || row.node_key == format!("hostname:{}", info.hostname);
    let removed = if local {
        match state.engine.remove_volume(&name).await {
            Ok(()) => Ok(()),
            Err(e) => Err(refusal(&state, &name, &row.node, e).await),
        }
    } else {
        remove_on_node(&state, &name, &row.node_key, &row.node).await
    };
    let how = if local {
        "by the server's engine"
    } else {
        "by a job on the node"
    };
    if let Err(e) = removed {
        state.audit(
            &caller.user.name,
            Action::RemoveVolumes.as_str(),
            &name,
            &format!("on node {}: refused: {e}", row.node),
        )?;
        return Err(e);
    }
    state
        .store()
        .forget_reported_volume(&row.node_key, &name)
        .map_err(AppError::internal)?;
    state.audit(
        &caller.user.name,
        Action::RemoveVolumes.as_str(),
        &name,
        &format!("on node {}: removed {how}", row.node),
    )?;
    Ok(Reply::done("/volumes"))
}

/// The engine's refusal as the API says it: in use is a conflict (naming the Swarm tasks
/// behind the container ids the engine gives), gone is not found.
async fn refusal(state: &AppState, name: &str, node: &str, e: EngineError) -> AppError {
    let said = match &e {
        EngineError::Api { message, .. } => message.clone(),
        other => other.to_string(),
    };
    if e.is_conflict() {
        let named = match SwarmTasks::now(state, reported_hostnames(state), Mounting::Any).await {
            Ok(swarm) => swarm.owners(&said),
            Err(_) => String::new(),
        };
        AppError::Conflict(format!("volume {name} on node {node}: {said}{named}"))
    } else if e.is_not_found() {
        AppError::NotFound(format!("volume {name} on node {node}: {said}"))
    } else {
        e.into()
    }
}

/// Runs `swarmkeeper volume rm NAME` on node `node_id` as a one-task job in the agent's
/// image, waits for it, and removes the job.
async fn remove_on_node(
    state: &AppState,
    name: &str,
    node_id: &str,
    node: &str,
) -> Result<(), AppError> {
    if node_id.starts_with("hostname:") {
        return Err(AppError::BadInput(format!(
            "node {node} is not in this swarm: remove the volume there (`docker volume rm {name}`)"
        )));
    }
    let services = state.engine.list_services(None).await?;
    let agent = services
        .iter()
        .find(|s| s.view.labelled(AGENT_LABEL, "true"))
        .ok_or_else(|| {
            AppError::Conflict(format!(
                "volume {name} is on node {node}, and removing it there runs the agent's image: \
                 no service is labelled {AGENT_LABEL}=true (deploy/swarmkeeper.yml)"
            ))
        })?;
    let image = match &agent.view.image.digest {
        Some(digest) => format!("{}@{digest}", agent.view.image.name),
        None => agent.view.image.name.clone(),
    };
    let suffix: String = uuid_like();
    let job = format!("swarmkeeper-volume-rm-{suffix}");
    let labels = BTreeMap::from([(JOB_LABEL.to_owned(), name.to_owned())]);
    let spec = node_job_spec(&job, &image, &["volume", "rm", name], node_id, &labels);
    let created = state.engine.create_service(&spec, None).await?;
    let outcome = wait_for_job(state, &created.id).await;
    let lines = match &outcome {
        Ok(Some(task)) if task.exit_code != Some(0) => {
            super::tasks::last_lines(state, &task.id).await.0
        }
        _ => Vec::new(),
    };
    if let Err(e) = state.engine.remove_service(&created.id).await {
        tracing::warn!(error = %e, job, "could not remove the volume removal job");
    }
    let task = outcome?.ok_or_else(|| {
        AppError::Conflict(format!(
            "the removal job on node {node} did not end within {} s (is the agent's image {image} there?)",
            JOB_WITHIN.as_secs()
        ))
    })?;
    if task.exit_code == Some(0) {
        return Ok(());
    }
    let said = lines
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty())
        .cloned()
        .unwrap_or_else(|| format!("{} {}", task.err, task.message).trim().to_owned());
    if said.contains("in use") {
        let named = match SwarmTasks::now(state, reported_hostnames(state), Mounting::Any).await {
            Ok(swarm) => swarm.owners(&said),
            Err(_) => String::new(),
        };
        Err(AppError::Conflict(format!(
            "volume {name} on node {node}: {said}{named}"
        )))
    } else if said.contains("no such volume") || said.contains("404") {
        Err(AppError::NotFound(format!(
            "volume {name} on node {node}: {said}"
        )))
    } else {
        Err(AppError::BadInput(format!(
            "removing volume {name} on node {node} failed: {said}"
        )))
    }
}

/// The job's task once it ended; `None` when it did not within [`JOB_WITHIN`].
async fn wait_for_job(
    state: &AppState,
    service: &str,
) -> Result<Option<swarmkeeper_engine::Task>, AppError> {
    let start = std::time::Instant::now();
    while start.elapsed() < JOB_WITHIN {
        let tasks = state.engine.list_tasks(service).await?;
        if let Some(task) = tasks.into_iter().find(|t| {
            t.state.is_failed() || matches!(t.state, TaskState::Complete | TaskState::Shutdown)
        }) {
            return Ok(Some(task));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(None)
}

/// Eight hex digits from the clock and the process, enough to keep two removals apart.
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{:08x}", nanos ^ std::process::id())
}
