//! A task's page: what it is doing, why it waits or failed, its slot's earlier tasks (each a
//! restart: Swarm replaces a task rather than restarting its container). Pure.

use std::collections::HashMap;

use serde::Serialize;
use swarmkeeper_engine::{Task, TaskState};

use super::services::{task_rows, TaskRow};

/// What the task page shows, its log lines aside.
#[derive(Serialize)]
pub struct TaskDetail {
    #[serde(flatten)]
    pub row: TaskRow,
    pub service: String,
    pub slot: Option<u64>,
    /// Why Swarm has not started it yet (`no suitable node (…)`, `pending task scheduling`);
    /// `None` once it runs or ended.
    pub pending_reason: Option<String>,
    /// Tasks its slot had before it (on a global service, its node): each one a restart.
    pub restarts: usize,
    /// Its slot's tasks, newest first, itself included.
    pub history: Vec<TaskRow>,
    /// How its container ended, in words, when it did: `exit 1`, `exit 137 (stopped by Swarm)`.
    pub exit: Option<String>,
    /// Swarm's error without what `exit` already says (`task: non-zero exit (1)` is only
    /// the exit code again); empty when nothing is left.
    pub error_summary: String,
}

/// The task page's exit line and error, each fact said once: the exit code in `exit` (a
/// SIGKILL or SIGTERM of a task Swarm stopped is how a normal stop ends, and says so), and
/// Swarm's `Status.Err` without its `non-zero exit (N)` when N is that code.
pub fn task_outcome(
    error: &str,
    exit_code: Option<i64>,
    desired_state: &str,
) -> (Option<String>, String) {
    let Some(code) = exit_code else {
        return (None, error.to_owned());
    };
    let stopped_on_purpose = desired_state != "running" && matches!(code, 137 | 143);
    let exit = if stopped_on_purpose {
        format!("exit {code} (stopped by Swarm)")
    } else {
        format!("exit {code}")
    };
    let said = format!("non-zero exit ({code})");
    let rest = error.replace(&said, "");
    let rest = rest
        .trim()
        .trim_start_matches("task:")
        .trim()
        .trim_end_matches(':')
        .trim();
    (Some(exit), rest.to_owned())
}

/// `task` of service `service`, among `siblings` (the service's tasks, old ones included).
pub fn task_detail(
    task: &Task,
    service: &str,
    siblings: &[Task],
    hostnames: &HashMap<String, String>,
) -> TaskDetail {
    let same_slot: Vec<&Task> = siblings
        .iter()
        .filter(|t| match task.slot {
            Some(slot) => t.slot == Some(slot),
            None => t.slot.is_none() && t.node_id == task.node_id,
        })
        .collect();
    let restarts = same_slot
        .iter()
        .filter(|t| t.id != task.id && t.created_at < task.created_at)
        .count();
    let pending_reason = (task.desired_state == TaskState::Running && task.state.is_waiting())
        .then(|| {
            [&task.err, &task.message]
                .into_iter()
                .find(|s| !s.is_empty())
                .cloned()
        })
        .flatten();
    let row = task_rows(service, &[task], hostnames)
        .pop()
        .expect("one task, one row");
    let (exit, error_summary) = task_outcome(&row.error, row.exit_code, &row.desired_state);
    TaskDetail {
        exit,
        error_summary,
        row,
        service: service.to_owned(),
        slot: task.slot,
        pending_reason,
        restarts,
        history: task_rows(service, &same_slot, hostnames),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

    fn task(id: &str, slot: Option<u64>, at: i64, state: &str) -> Task {
        Task {
            id: id.into(),
            service_id: "s".into(),
            slot,
            node_id: "n1".into(),
            desired_state: if state == "failed" {
                "shutdown".into()
            } else {
                "running".into()
            },
            state: state.into(),
            created_at: Some(Timestamp::from_second(at).unwrap()),
            timestamp: Some(Timestamp::from_second(at).unwrap()),
            ..Task::default()
        }
    }

    #[test]
    fn the_exit_code_is_said_once_and_a_normal_stop_says_so() {
        assert_eq!(
            task_outcome("task: non-zero exit (1)", Some(1), "shutdown"),
            (Some("exit 1".to_owned()), String::new())
        );
        assert_eq!(
            task_outcome("non-zero exit (1)", Some(1), "running"),
            (Some("exit 1".to_owned()), String::new())
        );
        assert_eq!(
            task_outcome("", Some(137), "shutdown"),
            (
                Some("exit 137 (stopped by Swarm)".to_owned()),
                String::new()
            )
        );
        assert_eq!(
            task_outcome("", Some(137), "running"),
            (Some("exit 137".to_owned()), String::new())
        );
        assert_eq!(
            task_outcome(
                "starting container failed: no such file",
                Some(127),
                "running"
            ),
            (
                Some("exit 127".to_owned()),
                "starting container failed: no such file".to_owned()
            )
        );
        assert_eq!(
            task_outcome("no suitable node", None, "running"),
            (None, "no suitable node".to_owned())
        );
    }

    #[test]
    fn earlier_tasks_of_the_slot_are_restarts_and_a_waiting_task_says_why() {
        let mut pending = task("t3", Some(1), 30, "pending");
        pending.err = "no suitable node (1 node not available for new tasks)".into();
        let tasks = [
            task("t1", Some(1), 10, "failed"),
            task("t2", Some(1), 20, "failed"),
            pending.clone(),
            task("other", Some(2), 5, "running"),
        ];
        let detail = task_detail(&pending, "web", &tasks, &HashMap::new());
        assert_eq!(detail.restarts, 2);
        assert_eq!(
            detail.pending_reason.as_deref(),
            Some("no suitable node (1 node not available for new tasks)")
        );
        let ids: Vec<&str> = detail.history.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["t3", "t2", "t1"]);
        assert_eq!(detail.row.name, "web.1");
        let first = task_detail(&tasks[0], "web", &tasks, &HashMap::new());
        assert_eq!(first.restarts, 0);
        assert_eq!(
            first.pending_reason, None,
            "a failed task waits for nothing"
        );
    }
}
