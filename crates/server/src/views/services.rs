//! The services list and a service's detail, as plain data built from what the engine says.
//! Pure: the handlers fetch, these functions decide what the page shows, and the same value is
//! the JSON twin.

use std::collections::HashMap;

use jiff::Timestamp;
use serde::Serialize;
use swarmkeeper_engine::{processes_killed, ImageRef, Service, Task, UpdateConfig, UpdateState};
use swarmkeeper_rollout::preflight::NodeFacts;
use swarmkeeper_rollout::{converged, observe, tally};
use swarmkeeper_units::format_duration;

/// One line of the services page.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServiceRow {
    pub id: String,
    pub name: String,
    pub stack: Option<String>,
    /// `replicated`, `global`, `replicated-job` or `global-job`.
    pub mode: &'static str,
    /// Tasks of the current spec that run (for a job: that have completed).
    pub running: u64,
    /// Tasks of an older spec that still serve while an update replaces them
    /// (`swarmkeeper_rollout::Tally::old_serving`): shown beside `running`, which alone reads
    /// as an outage during a `start-first` update (tryout 14 finding 16).
    pub old_serving: u64,
    /// Replicas asked for; for a global service, the tasks Swarm means to run; for a job, its
    /// completions.
    pub desired: u64,
    /// The image without its digest.
    pub image: String,
    /// The digest Swarm pinned (`sha256:…`), when the image came from a registry.
    pub digest: Option<String>,
    /// `UpdateStatus.State`: `updating`, `paused`, `completed`, `rollback_started`, …
    pub update_state: Option<String>,
    pub update_message: String,
    /// Why the tasks Swarm wants wait, e.g. "pending: no suitable node (insufficient
    /// resources on 2 nodes)" (`ObservedService::pending_reasons`); empty when none waits.
    pub pending: Vec<String>,
    /// Swarm has nothing left to do: `swarmkeeper_rollout::converged`, the definition
    /// `swarmkeeper deploy` follows a service by.
    pub converged: bool,
    /// The last update was rolled back (by Swarm or by hand).
    pub rolled_back: bool,
}

/// One service's line, from the service, its tasks (any order, old ones included) and the
/// swarm's nodes (a task Swarm kept through a placement-only change runs the current spec when
/// its node meets the new constraints: `swarmkeeper_rollout::task_is_current`).
pub fn service_row(service: &Service, tasks: &[&Task], nodes: &[NodeFacts]) -> ServiceRow {
    let view = &service.view;
    let observed = observe(service, tasks, nodes, None);
    let counted = tally(&observed);
    let ImageRef { name, digest } = view.image.clone();
    let update_state = service.update_state();
    ServiceRow {
        id: service.id.clone(),
        name: service.name.clone(),
        stack: service.stack().map(str::to_owned),
        mode: view.mode.as_str(),
        running: counted.running,
        old_serving: counted.old_serving,
        desired: counted.desired,
        image: name,
        digest,
        rolled_back: update_state == Some(&UpdateState::RollbackCompleted),
        update_state: update_state.map(ToString::to_string),
        update_message: update_message(
            update_state.map(ToString::to_string).as_deref(),
            service.update_status.as_ref().map(|s| s.message.as_str()),
        ),
        pending: observed.pending_reasons(),
        converged: converged(&observed),
    }
}

/// Swarm's `UpdateStatus.Message`, unless it only repeats the state shown beside it (Swarm
/// says `rollback completed` in state `rollback_completed`).
fn update_message(state: Option<&str>, message: Option<&str>) -> String {
    let message = message.unwrap_or_default().trim();
    match state {
        Some(state) if crate::page::words(state).eq_ignore_ascii_case(message) => String::new(),
        _ => message.to_owned(),
    }
}

/// Every service's line, sorted by stack then name, from one listing of services, one of
/// tasks and one of nodes (never a request per service: the page must stay fast at hundreds
/// of services).
pub fn service_rows(services: &[Service], tasks: &[Task], nodes: &[NodeFacts]) -> Vec<ServiceRow> {
    let mut by_service: HashMap<&str, Vec<&Task>> = HashMap::new();
    for task in tasks {
        by_service
            .entry(task.service_id.as_str())
            .or_default()
            .push(task);
    }
    let mut rows: Vec<ServiceRow> = services
        .iter()
        .map(|s| {
            let tasks = by_service.get(s.id.as_str()).map_or(&[][..], Vec::as_slice);
            service_row(s, tasks, nodes)
        })
        .collect();
    rows.sort_by(|a, b| (&a.stack, &a.name).cmp(&(&b.stack, &b.name)));
    rows
}

/// One task on a service's page.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskRow {
    pub id: String,
    /// `web.2` for a replicated task, `web.<node id>` for a global one, like `docker service ps`.
    pub name: String,
    pub node_id: String,
    pub node: String,
    pub desired_state: String,
    pub state: String,
    pub message: String,
    pub error: String,
    pub exit_code: Option<i64>,
    pub since: Option<Timestamp>,
    pub image: String,
    /// Processes of its container the kernel's OOM killer killed that its exit does not say
    /// (a child killed while the main process went on): `1 process killed: out of memory
    /// (limit 16 MiB)` (`swarmkeeper_engine::processes_killed`, from the agent's count; see
    /// [`with_oom_kills`]). Absent when none were counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processes_killed: Option<String>,
}

impl TaskRow {
    /// The error column: see [`task_error`].
    pub fn error_text(&self) -> String {
        task_error(&self.error, self.exit_code, &self.desired_state)
    }
}

/// What a task's error reads as: Swarm's `Status.Err` with the container's exit code added
/// when it says something the text does not — never twice (`non-zero exit (1)` already
/// names it), and not for a task Swarm stopped on purpose (desired state not `running`), whose
/// 137 (SIGKILL) or 143 (SIGTERM) is how a normal stop ends.
pub fn task_error(error: &str, exit_code: Option<i64>, desired_state: &str) -> String {
    let stopped_on_purpose = desired_state != "running" && matches!(exit_code, Some(137 | 143));
    match exit_code {
        Some(code) if code != 0 && !stopped_on_purpose && !error.contains(&format!("({code})")) => {
            if error.is_empty() {
                format!("exit {code}")
            } else {
                format!("{error} (exit {code})")
            }
        }
        _ => error.to_owned(),
    }
}

/// A service's tasks, newest first within each slot, like `docker service ps`.
pub fn task_rows(
    service: &str,
    tasks: &[&Task],
    hostnames: &HashMap<String, String>,
) -> Vec<TaskRow> {
    let mut rows: Vec<TaskRow> = tasks
        .iter()
        .map(|task| TaskRow {
            id: task.id.clone(),
            name: match task.slot {
                Some(slot) => format!("{service}.{slot}"),
                None => format!("{service}.{}", task.node_id),
            },
            node: hostnames
                .get(&task.node_id)
                .cloned()
                .unwrap_or_else(|| task.node_id.clone()),
            node_id: task.node_id.clone(),
            desired_state: task.desired_state.to_string(),
            state: task.state.to_string(),
            message: task.message.clone(),
            error: task.err.clone(),
            exit_code: task.exit_code,
            since: task.timestamp,
            image: task.image().name,
            processes_killed: None,
        })
        .collect();
    rows.sort_by(|a, b| {
        (a.name.as_str(), std::cmp::Reverse(a.since))
            .cmp(&(b.name.as_str(), std::cmp::Reverse(b.since)))
    });
    rows
}

/// `rows` with [`TaskRow::processes_killed`] said from `kills`: the OOM kills the agents
/// counted in each task's container with its memory limit, by task id
/// (`Store::service_oom_kills`); `spec_limits` each task's spec's memory limit, by task id,
/// for a kill counted without one.
pub fn with_oom_kills(
    mut rows: Vec<TaskRow>,
    kills: &HashMap<String, (u64, Option<u64>)>,
    spec_limits: &HashMap<String, u64>,
) -> Vec<TaskRow> {
    for row in &mut rows {
        if let Some((count, limit)) = kills.get(&row.id) {
            let limit = limit.or_else(|| spec_limits.get(&row.id).copied());
            row.processes_killed = processes_killed(*count, limit, row.exit_code);
        }
    }
    rows
}

/// An update or rollback config as the page lists it: Swarm's defaults filled in where the
/// spec says nothing, so an operator sees what will happen, not what was written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RolloutConfig {
    pub parallelism: u64,
    pub delay: String,
    pub failure_action: String,
    pub monitor: String,
    pub max_failure_ratio: String,
    pub order: String,
    /// The spec leaves this config out entirely.
    pub defaulted: bool,
}

pub fn rollout_config(config: &UpdateConfig) -> RolloutConfig {
    RolloutConfig {
        parallelism: config.parallelism,
        delay: format_duration(config.delay),
        failure_action: config.failure_action.to_string(),
        monitor: format_duration(config.monitor),
        max_failure_ratio: config.max_failure_ratio.to_string(),
        order: config.order.to_string(),
        defaulted: !config.written,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_task_error_names_its_exit_code_once_and_not_for_a_normal_stop() {
        use super::task_error;
        assert_eq!(
            task_error("non-zero exit (1)", Some(1), "shutdown"),
            "non-zero exit (1)"
        );
        assert_eq!(task_error("", Some(137), "shutdown"), "");
        assert_eq!(task_error("", Some(143), "remove"), "");
        assert_eq!(task_error("", Some(137), "running"), "exit 137");
        assert_eq!(
            task_error("task: non-zero exit (2)", Some(3), "running"),
            "task: non-zero exit (2) (exit 3)"
        );
        assert_eq!(
            task_error("starting container failed", Some(0), "running"),
            "starting container failed"
        );
        assert_eq!(
            task_error("no suitable node", None, "running"),
            "no suitable node"
        );
    }

    use super::*;
    use serde_json::{json, Value};
    use swarmkeeper_engine::UpdateStatus;

    fn service(id: &str, name: &str, mut spec: Value, state: Option<&str>) -> Service {
        spec["Name"] = name.into();
        Service::new(
            id.into(),
            1,
            spec,
            None,
            state.map(|s| UpdateStatus {
                state: s.into(),
                started_at: None,
                completed_at: None,
                message: String::new(),
            }),
        )
        .unwrap()
    }

    fn task(service: &str, slot: Option<u64>, desired: &str, state: &str) -> Task {
        Task {
            id: format!("{service}-{slot:?}-{state}"),
            service_id: service.into(),
            slot,
            node_id: "n1".into(),
            desired_state: desired.into(),
            state: state.into(),
            spec: json!({"ContainerSpec": {"Image": "app:1@sha256:abc"}}),
            ..Task::default()
        }
    }

    fn replicated(n: u64) -> Value {
        json!({
            "Mode": {"Replicated": {"Replicas": n}},
            "Labels": {"com.docker.stack.namespace": "shop"},
            "TaskTemplate": {"ContainerSpec": {"Image": "app:1@sha256:abc"}}
        })
    }

    #[test]
    fn replicas_count_only_tasks_meant_to_run() {
        let s = service("s1", "shop_web", replicated(3), Some("completed"));
        let tasks = [
            task("s1", Some(1), "running", "running"),
            task("s1", Some(2), "running", "running"),
            task("s1", Some(3), "running", "preparing"),
            task("s1", Some(1), "shutdown", "shutdown"),
        ];
        let row = service_rows(&[s], &tasks, &[]).remove(0);
        assert_eq!((row.running, row.desired), (2, 3));
        assert!(!row.converged);
        assert_eq!(row.stack.as_deref(), Some("shop"));
        assert_eq!(row.image, "app:1");
        assert_eq!(row.digest.as_deref(), Some("sha256:abc"));
    }

    #[test]
    fn a_task_swarm_kept_through_a_placement_only_edit_counts_as_running() {
        // Tryout 11 finding 3: the page said 0/1 while Swarm kept the task.
        let mut spec = replicated(1);
        spec["TaskTemplate"]["Placement"] = json!({"Constraints": ["node.labels.nosuch != x"]});
        let s = service("s1", "web", spec, None);
        let tasks = [task("s1", Some(1), "running", "running")];
        let node = NodeFacts {
            id: "n1".into(),
            ..NodeFacts::default()
        };
        let row = service_rows(std::slice::from_ref(&s), &tasks, &[node]).remove(0);
        assert_eq!((row.running, row.desired), (1, 1));
        assert!(row.converged);
        let other = NodeFacts {
            id: "n2".into(),
            ..NodeFacts::default()
        };
        let row = service_rows(&[s], &tasks, &[other]).remove(0);
        assert_eq!((row.running, row.converged), (0, false));
    }

    #[test]
    fn tasks_of_the_old_spec_that_still_serve_are_counted_apart() {
        // Tryout 14 finding 16: a start-first update that cannot place its new tasks read 0/2
        // while both old tasks served.
        let s = service("s1", "api", replicated(2), Some("updating"));
        let old = |slot| Task {
            spec: json!({"ContainerSpec": {"Image": "app:0@sha256:old"}}),
            ..task("s1", Some(slot), "running", "running")
        };
        let new = |slot| Task {
            id: format!("new-{slot}"),
            ..task("s1", Some(slot), "running", "pending")
        };
        let tasks = [old(1), old(2), new(1), new(2)];
        let row = service_rows(&[s], &tasks, &[]).remove(0);
        assert_eq!((row.running, row.old_serving, row.desired), (0, 2, 2));
    }

    #[test]
    fn a_paused_update_is_not_converged_even_with_every_replica_up() {
        let s = service("s1", "web", replicated(1), Some("paused"));
        let tasks = [task("s1", Some(1), "running", "running")];
        let row = service_rows(&[s], &tasks, &[]).remove(0);
        assert!(!row.converged && !row.rolled_back);
    }

    #[test]
    fn a_rolled_back_service_is_flagged_and_may_be_converged() {
        let s = service("s1", "web", replicated(1), Some("rollback_completed"));
        let tasks = [task("s1", Some(1), "running", "running")];
        let row = service_rows(&[s], &tasks, &[]).remove(0);
        assert!(row.converged && row.rolled_back);
    }

    #[test]
    fn a_global_service_wants_one_task_per_scheduled_node() {
        let spec = json!({"Mode": {"Global": {}}, "TaskTemplate": {"ContainerSpec": {"Image": "agent:1"}}});
        let s = service("g", "agent", spec, None);
        let tasks = [
            task("g", None, "running", "running"),
            task("g", None, "running", "running"),
        ]
        .map(|mut t| {
            t.spec = json!({"ContainerSpec": {"Image": "agent:1"}});
            t
        });
        let row = service_rows(&[s], &tasks, &[]).remove(0);
        assert_eq!((row.mode, row.running, row.desired), ("global", 2, 2));
        assert!(row.converged);
        assert_eq!(row.digest, None);
    }

    #[test]
    fn a_replicated_job_is_shown_as_a_job_and_counts_its_completions() {
        let spec = json!({
            "Mode": {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 3}},
            "TaskTemplate": {"ContainerSpec": {"Image": "app:1@sha256:abc"}}
        });
        let s = service("j", "migrate", spec, None);
        let mut tasks = [
            task("j", Some(1), "complete", "complete"),
            task("j", Some(2), "complete", "complete"),
            task("j", Some(3), "complete", "running"),
        ];
        let row = service_rows(std::slice::from_ref(&s), &tasks, &[]).remove(0);
        assert_eq!(row.mode, "replicated-job");
        assert_eq!((row.running, row.desired), (2, 3));
        assert!(!row.converged);
        tasks[2].state = "complete".into();
        let row = service_rows(&[s], &tasks, &[]).remove(0);
        assert!(row.converged, "every completion is done");
        let global_job = service(
            "gj",
            "sweep",
            json!({"Mode": {"GlobalJob": {}}, "TaskTemplate": {"ContainerSpec": {"Image": "app:1@sha256:abc"}}}),
            None,
        );
        assert_eq!(
            service_rows(&[global_job], &[], &[]).remove(0).mode,
            "global-job"
        );
    }

    #[test]
    fn a_task_of_an_older_spec_keeps_a_service_from_converging() {
        // Mid start-first update: the new task runs, the old one has not been stopped yet.
        let s = service("s1", "web", replicated(1), None);
        let mut old = task("s1", Some(1), "running", "running");
        old.id = "old".into();
        old.spec = json!({"ContainerSpec": {"Image": "app:0@sha256:old"}});
        let new = task("s1", Some(1), "running", "running");
        let row = service_rows(&[s], &[old, new], &[]).remove(0);
        assert_eq!((row.running, row.desired), (1, 1));
        assert!(!row.converged);
    }

    #[test]
    fn an_update_message_that_repeats_the_state_is_not_shown_twice() {
        let said = |state, message| update_message(state, Some(message));
        assert_eq!(said(Some("rollback_completed"), "rollback completed"), "");
        assert_eq!(
            said(Some("completed"), "update completed"),
            "update completed"
        );
        assert_eq!(
            said(Some("paused"), "update paused due to failure"),
            "update paused due to failure"
        );
        assert_eq!(update_message(None, None), "");
    }

    #[test]
    fn rows_are_sorted_by_stack_then_name() {
        let mut lone = replicated(1);
        lone["Labels"] = json!({});
        let services = [
            service("a", "shop_web", replicated(1), None),
            service("b", "lone", lone, None),
            service("c", "shop_api", replicated(1), None),
        ];
        let names: Vec<String> = service_rows(&services, &[], &[])
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["lone", "shop_api", "shop_web"]);
    }

    #[test]
    fn rollout_config_fills_in_swarms_defaults() {
        let spec = json!({"UpdateConfig": {"Parallelism": 2, "FailureAction": "rollback", "Monitor": 30_000_000_000i64, "Delay": 500_000_000}});
        let view = swarmkeeper_engine::ServiceView::read(&spec).unwrap();
        let update = rollout_config(&view.update_config);
        assert_eq!(update.parallelism, 2);
        assert_eq!(update.failure_action, "rollback");
        assert_eq!(update.monitor, "30s");
        assert_eq!(update.delay, "500ms");
        assert_eq!(update.order, "stop-first");
        assert!(!update.defaulted);
        let rollback = rollout_config(&view.rollback_config);
        assert!(rollback.defaulted);
        assert_eq!(rollback.failure_action, "pause");
    }
}
