//! Who uses a secret or config: the services whose spec names it, and the tasks that still
//! run with it mounted. Swarm refuses to remove an object only while a service's spec names
//! it (swarmkit's `RemoveSecret`/`RemoveConfig` look at services alone), but a task keeps the
//! spec it was made with: the old task of a service already moved to another version (on a
//! paused node, or still stopping within its `stop_grace_period`), or the task of a removed
//! service that has not stopped yet, still reads the object, and loses its source when it
//! goes. One rule, read by the dashboard's list, its object page and its removal.

use std::collections::HashMap;

use crate::service::Service;
use crate::state::TaskState;
use crate::task::Task;
use crate::view::FileRef;

/// Which of a container spec's lists a reference is in: a secret (`/run/secrets/…`) or a
/// config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    Secret,
    Config,
}

impl FileKind {
    /// `secret` or `config`, as the docker CLI and the API paths say it.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Secret => "secret",
            FileKind::Config => "config",
        }
    }

    /// The references of this kind a service's spec makes.
    pub fn refs(self, service: &Service) -> &[FileRef] {
        match self {
            FileKind::Secret => &service.view.secrets,
            FileKind::Config => &service.view.configs,
        }
    }
}

/// A task that still holds a secret or config its service's spec no longer names (or whose
/// service is gone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskHolding {
    pub task_id: String,
    /// Its service's name; `None` when the service is gone (removed while its task stops).
    pub service: Option<String>,
    pub service_id: String,
    /// Replicated services number their tasks; global ones have none.
    pub slot: Option<u64>,
    /// The node Swarm assigned it to; empty before it is assigned.
    pub node_id: String,
    /// `Status.State`: `running` while it stops within its grace period.
    pub state: TaskState,
    /// What Swarm wants of it: `shutdown` (replaced or stopping), `remove` (its service is
    /// gone), `running` (kept on a node that takes no new task).
    pub desired_state: TaskState,
    /// The file its container reads it as (`File.Name`).
    pub target: String,
}

/// Everything that uses one secret or config.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileUsers {
    /// The services whose spec names it, by name, with the file each reads it as
    /// (`File.Name`; empty for a config used only as a credential spec).
    pub services: Vec<(String, String)>,
    /// The tasks that may still run with it though their service's spec no longer names it:
    /// see [`may_hold_files`]. A task of a service that still names it is not repeated here.
    pub tasks: Vec<TaskHolding>,
}

impl FileUsers {
    /// Nothing uses it: a removal takes no file from anything.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty() && self.tasks.is_empty()
    }
}

/// Whether `task` may still read the secrets and configs of its own spec: it has not ended
/// (its container, if started, has not exited or been stopped) and either Swarm wants it
/// running or it is on a node already — a task that never reached a node and that Swarm no
/// longer wants never starts.
pub fn may_hold_files(task: &Task) -> bool {
    !task.state.has_ended() && (task.is_wanted() || !task.node_id.is_empty())
}

/// Every secret (or config) in use, by id, with its users: `services` whose spec names it,
/// and `tasks` ([`may_hold_files`]) whose own spec names it while their service's does not.
/// One pass over the services and the tasks, whatever the number of objects; an object no
/// one uses is not a key.
pub fn file_users(
    kind: FileKind,
    services: &[Service],
    tasks: &[Task],
) -> HashMap<String, FileUsers> {
    let mut users: HashMap<String, FileUsers> = HashMap::new();
    let by_id: HashMap<&str, &Service> = services.iter().map(|s| (s.id.as_str(), s)).collect();
    for service in services {
        for reference in kind.refs(service) {
            users
                .entry(reference.id.clone())
                .or_default()
                .services
                .push((service.name.clone(), reference.target.clone()));
        }
    }
    for task in tasks.iter().filter(|t| may_hold_files(t)) {
        let service = by_id.get(task.service_id.as_str());
        for reference in task.files(kind) {
            let named_by_service =
                service.is_some_and(|s| kind.refs(s).iter().any(|r| r.id == reference.id));
            if named_by_service {
                continue;
            }
            users
                .entry(reference.id)
                .or_default()
                .tasks
                .push(TaskHolding {
                    task_id: task.id.clone(),
                    service: service.map(|s| s.name.clone()),
                    service_id: task.service_id.clone(),
                    slot: task.slot,
                    node_id: task.node_id.clone(),
                    state: task.state.clone(),
                    desired_state: task.desired_state.clone(),
                    target: reference.target,
                });
        }
    }
    for found in users.values_mut() {
        found.services.sort();
        found.tasks.sort_by(|a, b| {
            (&a.service, a.slot, &a.task_id).cmp(&(&b.service, b.slot, &b.task_id))
        });
    }
    users
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn service(id: &str, name: &str, secrets: Value) -> Service {
        let spec = json!({"Name": name, "TaskTemplate": {"ContainerSpec": {"Image": "app",
                          "Secrets": secrets}}});
        Service::new(id.into(), 1, spec, None, None).unwrap()
    }

    fn task(id: &str, service: &str, state: TaskState, desired: TaskState, node: &str) -> Task {
        Task {
            id: id.into(),
            service_id: service.into(),
            slot: Some(1),
            node_id: node.into(),
            state,
            desired_state: desired,
            spec: json!({"ContainerSpec": {"Secrets": [
                {"SecretID": "old", "SecretName": "pw", "File": {"Name": "pw"}}
            ]}}),
            ..Task::default()
        }
    }

    fn on(id: &str, target: &str) -> Value {
        json!([{"SecretID": id, "SecretName": id, "File": {"Name": target}}])
    }

    #[test]
    fn a_task_still_running_with_an_object_its_service_moved_off_uses_it() {
        use TaskState::*;
        let services = [service("s1", "web", on("new", "pw"))];
        let tasks = [
            // The old task, stopping within its grace period.
            task("t-old", "s1", Running, Shutdown, "n1"),
            // Older ones, stopped.
            task("t-gone", "s1", Shutdown, Shutdown, "n1"),
            task("t-failed", "s1", Failed, Shutdown, "n1"),
        ];
        let users = file_users(FileKind::Secret, &services, &tasks);
        assert_eq!(users["new"].services, [("web".to_owned(), "pw".to_owned())]);
        assert!(users["new"].tasks.is_empty());
        let old = &users["old"];
        assert!(old.services.is_empty());
        assert_eq!(old.tasks.len(), 1, "{old:?}");
        assert_eq!(old.tasks[0].task_id, "t-old");
        assert_eq!(old.tasks[0].service.as_deref(), Some("web"));
        assert_eq!(old.tasks[0].node_id, "n1");
        assert_eq!(old.tasks[0].target, "pw");
        // Once it stopped, nothing uses the old version.
        let stopped = [task("t-old", "s1", Shutdown, Shutdown, "n1")];
        assert!(!file_users(FileKind::Secret, &services, &stopped).contains_key("old"));
        // Configs are another list.
        assert!(file_users(FileKind::Config, &services, &tasks).is_empty());
    }

    #[test]
    fn a_removed_services_stopping_task_and_a_kept_one_on_a_paused_node_use_it() {
        use TaskState::*;
        let services = [service("s1", "web", on("new", "pw"))];
        let tasks = [
            task("t-orphan", "gone", Running, Remove, "n2"),
            // Kept running where Swarm starts nothing new.
            task("t-paused", "s1", Running, Running, "n3"),
            // Never reached a node and no longer wanted: never starts.
            task("t-unplaced", "s1", Pending, Shutdown, ""),
            // Wanted, not placed yet: it will start with it.
            task("t-waiting", "s1", Pending, Running, ""),
        ];
        let users = file_users(FileKind::Secret, &services, &tasks);
        let held: Vec<(&str, Option<&str>)> = users["old"]
            .tasks
            .iter()
            .map(|t| (t.task_id.as_str(), t.service.as_deref()))
            .collect();
        assert_eq!(
            held,
            [
                ("t-orphan", None),
                ("t-paused", Some("web")),
                ("t-waiting", Some("web"))
            ]
        );
    }

    #[test]
    fn a_task_whose_service_still_names_the_object_is_not_repeated() {
        use TaskState::*;
        let services = [service("s1", "web", on("old", "pw"))];
        let tasks = [task("t1", "s1", Running, Running, "n1")];
        let users = file_users(FileKind::Secret, &services, &tasks);
        assert_eq!(users["old"].services.len(), 1);
        assert!(users["old"].tasks.is_empty());
        assert!(!users["old"].is_empty());
        assert!(FileUsers::default().is_empty());
    }
}
