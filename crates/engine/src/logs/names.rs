//! Which tasks' logs are shown and what each is called. Pure: the engine's task list in,
//! names and a choice out.

use std::collections::{HashMap, HashSet};

use crate::{Task, TaskState};

/// `web.1.<12 characters of the task id>@<node>`, like `docker service logs`; a global
/// service's task carries its node's id where a replicated one has its slot. `hostnames` maps
/// node ids to hostnames; a node it lacks is named by its id.
pub fn task_name(service: &str, task: &Task, hostnames: &HashMap<String, String>) -> String {
    let slot = match task.slot {
        Some(slot) => slot.to_string(),
        None => task.node_id.clone(),
    };
    let node = hostnames
        .get(&task.node_id)
        .map_or(task.node_id.as_str(), String::as_str);
    let mut name = format!("{service}.{slot}.{}", short_id(&task.id));
    if !node.is_empty() {
        name.push('@');
        name.push_str(node);
    }
    name
}

/// The twelve characters of a task id the docker CLI shows (as `swarmkeeper_units::short_id`
/// does; the engine crate depends on no crate of ours but `swarm`, see tests/architecture.rs).
fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// The tasks whose logs are shown unless every task is asked for: those Swarm means to run
/// (any desired state but `shutdown` and `remove`: `running`, or `complete` for a job), and in
/// a slot (a node, for a global service) that has none of those, its newest task, so that a
/// service whose tasks keep failing still shows the last one's words. The others are the
/// tasks Swarm replaced, whose containers may linger on their nodes: `docker service logs`
/// shows them all, one backlog each, which is what buried the current task's lines.
pub fn current_tasks(tasks: &[Task]) -> HashSet<&str> {
    fn meant(task: &Task) -> bool {
        !matches!(task.desired_state, TaskState::Shutdown | TaskState::Remove)
    }
    /// A replicated task's slot, a global task's node.
    fn slot(task: &Task) -> (&str, String) {
        let place = match task.slot {
            Some(slot) => slot.to_string(),
            None => task.node_id.clone(),
        };
        (task.service_id.as_str(), place)
    }
    let mut current: HashSet<&str> = HashSet::new();
    let mut served = HashSet::new();
    for task in tasks.iter().filter(|t| meant(t)) {
        current.insert(&task.id);
        served.insert(slot(task));
    }
    let mut newest: HashMap<(&str, String), &Task> = HashMap::new();
    for task in tasks {
        let key = slot(task);
        if served.contains(&key) {
            continue;
        }
        let entry = newest.entry(key).or_insert(task);
        if (task.created_at, task.timestamp) > (entry.created_at, entry.timestamp) {
            *entry = task;
        }
    }
    current.extend(newest.values().map(|t| t.id.as_str()));
    current
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

    fn task(id: &str, slot: Option<u64>, node: &str) -> Task {
        Task {
            id: id.into(),
            service_id: "svc".into(),
            slot,
            node_id: node.into(),
            desired_state: TaskState::Running,
            state: TaskState::Running,
            ..Task::default()
        }
    }

    fn old(mut task: Task, created: &str) -> Task {
        task.desired_state = TaskState::Shutdown;
        task.state = TaskState::Failed;
        task.created_at = Some(created.parse::<Timestamp>().unwrap());
        task
    }

    #[test]
    fn task_names_read_like_docker_service_logs() {
        let hosts = HashMap::from([("n1".to_owned(), "vm1".to_owned())]);
        let replicated = task("abcdefghijklmnopqrstuvwxy", Some(2), "n1");
        assert_eq!(
            task_name("web", &replicated, &hosts),
            "web.2.abcdefghijkl@vm1"
        );
        let global = task("0123456789abcdef", None, "n1");
        assert_eq!(
            task_name("agent", &global, &hosts),
            "agent.n1.0123456789ab@vm1"
        );
        let elsewhere = task("short", Some(1), "n9");
        assert_eq!(task_name("web", &elsewhere, &hosts), "web.1.short@n9");
    }

    #[test]
    fn current_tasks_are_those_swarm_runs_or_the_last_word_of_a_slot() {
        let tasks = [
            // Slot 1 was updated twice: only the running task is current.
            old(task("s1-old", Some(1), "n1"), "2026-01-01T00:00:00Z"),
            old(task("s1-older", Some(1), "n1"), "2025-12-31T00:00:00Z"),
            task("s1-now", Some(1), "n1"),
            // Slot 2 keeps failing: its newest task is shown, not the ones before.
            old(task("s2-a", Some(2), "n1"), "2026-01-01T00:00:00Z"),
            old(task("s2-b", Some(2), "n1"), "2026-01-01T00:01:00Z"),
            // A global task on n2, and a finished job task.
            task("g-n2", None, "n2"),
            Task {
                desired_state: TaskState::Complete,
                ..task("job", Some(3), "n1")
            },
        ];
        let mut current: Vec<&str> = current_tasks(&tasks).into_iter().collect();
        current.sort_unstable();
        assert_eq!(current, ["g-n2", "job", "s1-now", "s2-b"]);
    }
}
