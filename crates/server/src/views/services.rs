//! The services list and a service's detail, as plain data built from what the engine says.
//! Pure: the handlers fetch, these functions decide what the page shows, and the same value is
//! the JSON twin.

use std::collections::HashMap;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;
use swarmkeeper_engine::{Service, Task, STACK_NAMESPACE_LABEL};

/// One line of the services page.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServiceRow {
    pub id: String,
    pub name: String,
    pub stack: Option<String>,
    /// `replicated` or `global`.
    pub mode: &'static str,
    /// Tasks that should run and do.
    pub running: u64,
    /// Replicas asked for; for a global service, the tasks Swarm means to run.
    pub desired: u64,
    /// The image without its digest.
    pub image: String,
    /// The digest Swarm pinned (`sha256:…`), when the image came from a registry.
    pub digest: Option<String>,
    /// `UpdateStatus.State`: `updating`, `paused`, `completed`, `rollback_started`, …
    pub update_state: Option<String>,
    pub update_message: String,
    /// Every desired task runs and no update is in flight or stuck.
    pub converged: bool,
    /// The last update was rolled back (by Swarm or by hand).
    pub rolled_back: bool,
}

pub fn mode(spec: &Value) -> &'static str {
    if spec.pointer("/Mode/Global").is_some() {
        "global"
    } else {
        "replicated"
    }
}

/// `name:tag` and `sha256:…` from `name:tag@sha256:…`.
pub fn split_digest(image: &str) -> (String, Option<String>) {
    match image.split_once('@') {
        Some((name, digest)) => (name.to_owned(), Some(digest.to_owned())),
        None => (image.to_owned(), None),
    }
}

/// One service's line, from the service and its tasks (any order, old ones included).
pub fn service_row(service: &Service, tasks: &[&Task]) -> ServiceRow {
    let spec = &service.spec;
    let mode = mode(spec);
    let wanted: Vec<&&Task> = tasks
        .iter()
        .filter(|t| t.desired_state == "running")
        .collect();
    let running = wanted.iter().filter(|t| t.state == "running").count() as u64;
    let desired = match mode {
        "global" => wanted.len() as u64,
        _ => spec
            .pointer("/Mode/Replicated/Replicas")
            .and_then(Value::as_u64)
            .unwrap_or(1),
    };
    let image = spec
        .pointer("/TaskTemplate/ContainerSpec/Image")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (image, digest) = split_digest(image);
    let update_state = service.update_status.as_ref().map(|s| s.state.clone());
    let update_message = service
        .update_status
        .as_ref()
        .map(|s| s.message.clone())
        .unwrap_or_default();
    let settled = matches!(
        update_state.as_deref(),
        None | Some("completed" | "rollback_completed")
    );
    ServiceRow {
        id: service.id.clone(),
        name: service.name.clone(),
        stack: service.labels().remove(STACK_NAMESPACE_LABEL),
        mode,
        running,
        desired,
        image,
        digest,
        rolled_back: update_state.as_deref() == Some("rollback_completed"),
        update_state,
        update_message,
        converged: settled && running == desired,
    }
}

/// Every service's line, sorted by stack then name, from one listing of services and one of
/// tasks (never a request per service: the page must stay fast at hundreds of services).
pub fn service_rows(services: &[Service], tasks: &[Task]) -> Vec<ServiceRow> {
    let mut by_service: HashMap<&str, Vec<&Task>> = HashMap::new();
    for task in tasks {
        by_service
            .entry(task.service_id.as_str())
            .or_default()
            .push(task);
    }
    let mut rows: Vec<ServiceRow> = services
        .iter()
        .map(|s| service_row(s, by_service.get(s.id.as_str()).map_or(&[], Vec::as_slice)))
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
            desired_state: task.desired_state.clone(),
            state: task.state.clone(),
            message: task.message.clone(),
            error: task.err.clone(),
            exit_code: task.exit_code,
            since: task.timestamp,
            image: split_digest(
                task.spec
                    .pointer("/ContainerSpec/Image")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            )
            .0,
        })
        .collect();
    rows.sort_by(|a, b| {
        (a.name.as_str(), std::cmp::Reverse(a.since))
            .cmp(&(b.name.as_str(), std::cmp::Reverse(b.since)))
    });
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

pub fn rollout_config(spec: &Value, key: &str) -> RolloutConfig {
    let config = spec.get(key);
    let text = |field: &str, default: &str| {
        config
            .and_then(|c| c.get(field))
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_owned()
    };
    let nanos = |field: &str, default: &str| {
        config
            .and_then(|c| c.get(field))
            .and_then(Value::as_i64)
            .map_or_else(|| default.to_owned(), seconds)
    };
    RolloutConfig {
        parallelism: config
            .and_then(|c| c.get("Parallelism"))
            .and_then(Value::as_u64)
            .unwrap_or(1),
        delay: nanos("Delay", "0s"),
        failure_action: text("FailureAction", "pause"),
        monitor: nanos("Monitor", "5s"),
        max_failure_ratio: config
            .and_then(|c| c.get("MaxFailureRatio"))
            .and_then(Value::as_f64)
            .map_or_else(|| "0".to_owned(), |r| r.to_string()),
        order: text("Order", "stop-first"),
        defaulted: config.is_none(),
    }
}

fn seconds(nanos: i64) -> String {
    let ms = nanos / 1_000_000;
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use swarmkeeper_engine::UpdateStatus;

    fn service(id: &str, name: &str, spec: Value, state: Option<&str>) -> Service {
        Service {
            id: id.into(),
            version: 1,
            name: name.into(),
            spec,
            previous_spec: None,
            update_status: state.map(|s| UpdateStatus {
                state: s.into(),
                started_at: None,
                completed_at: None,
                message: String::new(),
            }),
        }
    }

    fn task(service: &str, slot: Option<u64>, desired: &str, state: &str) -> Task {
        Task {
            id: format!("{service}-{slot:?}-{state}"),
            service_id: service.into(),
            slot,
            node_id: "n1".into(),
            desired_state: desired.into(),
            state: state.into(),
            message: String::new(),
            err: String::new(),
            timestamp: None,
            exit_code: None,
            container_id: None,
            created_at: None,
            spec: json!({"ContainerSpec": {"Image": "app:1@sha256:abc"}}),
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
        let row = service_rows(&[s], &tasks).remove(0);
        assert_eq!((row.running, row.desired), (2, 3));
        assert!(!row.converged);
        assert_eq!(row.stack.as_deref(), Some("shop"));
        assert_eq!(row.image, "app:1");
        assert_eq!(row.digest.as_deref(), Some("sha256:abc"));
    }

    #[test]
    fn a_paused_update_is_not_converged_even_with_every_replica_up() {
        let s = service("s1", "web", replicated(1), Some("paused"));
        let tasks = [task("s1", Some(1), "running", "running")];
        let row = service_rows(&[s], &tasks).remove(0);
        assert!(!row.converged && !row.rolled_back);
    }

    #[test]
    fn a_rolled_back_service_is_flagged_and_may_be_converged() {
        let s = service("s1", "web", replicated(1), Some("rollback_completed"));
        let tasks = [task("s1", Some(1), "running", "running")];
        let row = service_rows(&[s], &tasks).remove(0);
        assert!(row.converged && row.rolled_back);
    }

    #[test]
    fn a_global_service_wants_one_task_per_scheduled_node() {
        let spec = json!({"Mode": {"Global": {}}, "TaskTemplate": {"ContainerSpec": {"Image": "agent:1"}}});
        let s = service("g", "agent", spec, None);
        let tasks = [
            task("g", None, "running", "running"),
            task("g", None, "running", "running"),
        ];
        let row = service_rows(&[s], &tasks).remove(0);
        assert_eq!((row.mode, row.running, row.desired), ("global", 2, 2));
        assert!(row.converged);
        assert_eq!(row.digest, None);
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
        let names: Vec<String> = service_rows(&services, &[])
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["lone", "shop_api", "shop_web"]);
    }

    #[test]
    fn rollout_config_fills_in_swarms_defaults() {
        let spec = json!({"UpdateConfig": {"Parallelism": 2, "FailureAction": "rollback", "Monitor": 30_000_000_000i64, "Delay": 500_000_000}});
        let update = rollout_config(&spec, "UpdateConfig");
        assert_eq!(update.parallelism, 2);
        assert_eq!(update.failure_action, "rollback");
        assert_eq!(update.monitor, "30s");
        assert_eq!(update.delay, "500ms");
        assert_eq!(update.order, "stop-first");
        assert!(!update.defaulted);
        let rollback = rollout_config(&spec, "RollbackConfig");
        assert!(rollback.defaulted);
        assert_eq!(rollback.failure_action, "pause");
    }
}
