//! A task's page: what it is doing, why it waits or failed, how its container ended, its
//! slot's earlier tasks (each a restart: Swarm replaces a task rather than restarting its
//! container) and how many restarts the server counted. Pure.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;
use swarmkeeper_engine::{task_outcome, ExitFacts};
use swarmkeeper_engine::{Task, TaskState};
use swarmkeeper_rollout::waiting_reason;
use swarmkeeper_units::format_duration;

use super::services::{task_rows, with_oom_kills, TaskRow};

/// What the task page shows, its log lines aside.
#[derive(Serialize)]
pub struct TaskDetail {
    #[serde(flatten)]
    pub row: TaskRow,
    pub service: String,
    pub slot: Option<u64>,
    /// Why Swarm has not started it yet, worded as the overview words it
    /// (`swarmkeeper_rollout::waiting_reason`: `pending: no suitable node (…)`); `None` once it
    /// runs or ended.
    pub pending_reason: Option<String>,
    /// Tasks of its slot (on a global service, of its node) that ended on their own within
    /// `restarts_within`: each one a restart. Counted from what the server's evaluations saw
    /// (`swarmkeeper_alerts::RestartLedger`) and Swarm's listing together, so it is not capped
    /// by the 4 ended tasks Swarm keeps per slot.
    pub restarts: usize,
    /// The window `restarts` covers (the restart-loop rule's), as Go prints durations:
    /// `10m0s`.
    pub restarts_within: String,
    /// Its slot's tasks Swarm still lists, newest first, itself included.
    pub history: Vec<SlotTask>,
    /// How its container ended, in words, when it did (see [`exit_wording`]).
    pub exit: Option<String>,
    /// Swarm's error without what `exit` already says (`task: non-zero exit (1)` is only
    /// the exit code again); empty when nothing is left.
    pub error_summary: String,
    /// Whether Swarm's message says anything: once the container ended, `started` is only
    /// the last step it reached, not news.
    pub show_message: bool,
}

/// A row of the slot table.
#[derive(Serialize)]
pub struct SlotTask {
    #[serde(flatten)]
    pub row: TaskRow,
    /// The Error column: an OOM kill worded as the exit line is (`exit 137 (killed: out of
    /// memory, limit 16 MiB)`, see [`task_outcome`]), else [`TaskRow::error_text`]. Pages
    /// only: the JSON has `exit_code` and `error`.
    #[serde(skip)]
    pub outcome: String,
}

/// What the server knows of a task beyond Swarm's listing.
#[derive(Clone, Debug, Default)]
pub struct TaskFacts {
    /// The kernel's OOM killer killed in its container: its engine's `State.OOMKilled`, or
    /// the kills the agent counted in it.
    pub oom_killed: bool,
    /// Its memory limit in bytes: as the agent measured it, else its spec's; `None` without.
    pub memory_limit_bytes: Option<u64>,
    /// Its slot's tasks (itself included) the OOM killer killed in, by task id, with the
    /// memory limit as [`TaskFacts::memory_limit_bytes`].
    pub slot_ooms: HashMap<String, Option<u64>>,
    /// The OOM kills the agents counted in its slot's tasks' containers (itself included),
    /// with the memory limit they reported, by task id (`Store::service_oom_kills`): whatever
    /// the main process did, so a child killed while it went on is said too.
    pub oom_kills: HashMap<String, (u64, Option<u64>)>,
    /// Its slot's ends the alert evaluations saw (task id, when).
    pub slot_ends: Vec<(String, Timestamp)>,
    /// How far back restarts are counted (the restart-loop rule's window).
    pub restarts_within: Duration,
    pub now: Timestamp,
}

/// `task` of service `service`, among `siblings` (the service's tasks, old ones included).
pub fn task_detail(
    task: &Task,
    service: &str,
    siblings: &[Task],
    hostnames: &HashMap<String, String>,
    facts: &TaskFacts,
) -> TaskDetail {
    let same_slot: Vec<&Task> = siblings
        .iter()
        .filter(|t| match task.slot {
            Some(slot) => t.slot == Some(slot),
            None => t.slot.is_none() && t.node_id == task.node_id,
        })
        .collect();
    let within =
        jiff::SignedDuration::try_from(facts.restarts_within).unwrap_or(jiff::SignedDuration::MAX);
    let since = facts.now.checked_sub(within).unwrap_or(Timestamp::MIN);
    let restarts: BTreeSet<&str> = facts
        .slot_ends
        .iter()
        .filter(|(_, at)| *at >= since)
        .map(|(id, _)| id.as_str())
        .chain(
            same_slot
                .iter()
                .filter(|t| t.ended_on_its_own() && t.timestamp.is_some_and(|at| at >= since))
                .map(|t| t.id.as_str()),
        )
        .collect();
    let pending_reason = (task.desired_state == TaskState::Running && task.state.is_waiting())
        .then(|| waiting_reason(&task.state, &task.err, &task.message))
        .flatten();
    let spec_limits: HashMap<String, u64> = same_slot
        .iter()
        .chain([&task])
        .map(|t| (t.id.clone(), t.limits().memory_bytes))
        .filter(|(_, b)| *b > 0)
        .collect();
    let row = with_oom_kills(
        task_rows(service, &[task], hostnames),
        &facts.oom_kills,
        &spec_limits,
    )
    .pop()
    .expect("one task, one row");
    let exit = task.exit_code.map(|code| ExitFacts {
        code,
        stopped_by_swarm: task.stopped_by_swarm(),
        oom_killed: facts.oom_killed,
        memory_limit_bytes: facts.memory_limit_bytes,
    });
    let (exit, error_summary) = task_outcome(&row.error, exit.as_ref());
    let show_message = !row.message.is_empty() && (exit.is_none() || row.message != "started");
    TaskDetail {
        exit,
        error_summary,
        show_message,
        row,
        service: service.to_owned(),
        slot: task.slot,
        pending_reason,
        restarts: restarts.len(),
        restarts_within: format_duration(facts.restarts_within),
        history: with_oom_kills(
            task_rows(service, &same_slot, hostnames),
            &facts.oom_kills,
            &spec_limits,
        )
        .into_iter()
        .map(|row| slot_task(row, &same_slot, &facts.slot_ooms))
        .collect(),
    }
}

fn slot_task(row: TaskRow, tasks: &[&Task], ooms: &HashMap<String, Option<u64>>) -> SlotTask {
    let task = tasks.iter().find(|t| t.id == row.id);
    let exit = match (task, ooms.get(&row.id), row.exit_code) {
        (Some(task), Some(limit), Some(code)) => Some(ExitFacts {
            code,
            stopped_by_swarm: task.stopped_by_swarm(),
            oom_killed: true,
            memory_limit_bytes: *limit,
        }),
        _ => None,
    };
    let outcome = match exit {
        Some(exit) => match task_outcome(&row.error, Some(&exit)) {
            (Some(line), rest) if rest.is_empty() => line,
            (Some(line), rest) => format!("{line}: {rest}"),
            (None, rest) => rest,
        },
        None => row.error_text(),
    };
    SlotTask { row, outcome }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;
    use swarmkeeper_engine::exit_wording;

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

    fn exit(code: i64, stopped_by_swarm: bool, oom_killed: bool) -> ExitFacts {
        ExitFacts {
            code,
            stopped_by_swarm,
            oom_killed,
            memory_limit_bytes: Some(16 << 20),
        }
    }

    #[test]
    fn each_way_a_container_ends_is_worded_once() {
        let cases = [
            (exit(0, false, false), "exit 0"),
            (exit(1, false, false), "exit 1"),
            // Swarm asked it to stop (an update): the grace period ran out.
            (exit(137, true, false), "exit 137 (stopped by Swarm)"),
            (exit(143, true, false), "exit 143 (stopped by Swarm)"),
            (exit(0, true, false), "exit 0 (stopped by Swarm)"),
            // The OOM killer, whether or not Swarm then wanted the task gone.
            (
                exit(137, false, true),
                "exit 137 (killed: out of memory, limit 16 MiB)",
            ),
            (
                exit(137, true, true),
                "exit 137 (killed: out of memory, limit 16 MiB)",
            ),
            (
                ExitFacts {
                    memory_limit_bytes: None,
                    ..exit(137, false, true)
                },
                "exit 137 (killed: out of memory)",
            ),
            (
                ExitFacts {
                    memory_limit_bytes: Some(1536 << 20),
                    ..exit(137, false, true)
                },
                "exit 137 (killed: out of memory, limit 1536 MiB)",
            ),
            // A kill counted in the container does not explain an exit by itself.
            (exit(1, false, true), "exit 1"),
            // Signals nobody here sent.
            (
                exit(137, false, false),
                "exit 137 (SIGKILL, not from Swarm)",
            ),
            (
                exit(143, false, false),
                "exit 143 (SIGTERM, not from Swarm)",
            ),
            (exit(139, false, false), "exit 139 (SIGSEGV)"),
            (exit(255, false, false), "exit 255"),
        ];
        for (facts, words) in cases {
            assert_eq!(exit_wording(&facts), words, "{facts:?}");
        }
    }

    #[test]
    fn the_exit_code_is_said_once() {
        assert_eq!(
            task_outcome("task: non-zero exit (1)", Some(&exit(1, false, false))),
            (Some("exit 1".to_owned()), String::new())
        );
        assert_eq!(
            task_outcome("task: non-zero exit (137)", Some(&exit(137, false, true))),
            (
                Some("exit 137 (killed: out of memory, limit 16 MiB)".to_owned()),
                String::new()
            )
        );
        assert_eq!(
            task_outcome(
                "starting container failed: no such file",
                Some(&exit(127, false, false))
            ),
            (
                Some("exit 127".to_owned()),
                "starting container failed: no such file".to_owned()
            )
        );
        assert_eq!(
            task_outcome("no suitable node", None),
            (None, "no suitable node".to_owned())
        );
    }

    #[test]
    fn an_oom_killed_task_that_swarm_then_shut_down_is_not_stopped_by_swarm() {
        // What Swarm lists for a task whose main process the kernel killed: failed, then
        // desired shutdown as Swarm replaced it.
        let mut failed = task("t1", Some(1), 10, "failed");
        failed.exit_code = Some(137);
        failed.err = "task: non-zero exit (137)".into();
        failed.message = "started".into();
        let facts = TaskFacts {
            restarts_within: Duration::from_secs(600),
            now: Timestamp::from_second(20).unwrap(),
            ..TaskFacts::default()
        };
        let detail = task_detail(&failed, "web", &[failed.clone()], &HashMap::new(), &facts);
        assert_eq!(
            detail.exit.as_deref(),
            Some("exit 137 (SIGKILL, not from Swarm)")
        );
        assert_eq!(detail.error_summary, "");
        assert!(
            !detail.show_message,
            "\"started\" is not news once it ended"
        );
        assert_eq!(detail.history[0].outcome, "task: non-zero exit (137)");
        let oom = TaskFacts {
            oom_killed: true,
            memory_limit_bytes: Some(16 << 20),
            slot_ooms: HashMap::from([("t1".to_owned(), Some(16 << 20))]),
            ..facts.clone()
        };
        let detail = task_detail(&failed, "web", &[failed.clone()], &HashMap::new(), &oom);
        assert_eq!(
            detail.history[0].outcome, "exit 137 (killed: out of memory, limit 16 MiB)",
            "the slot table words it as the exit line does"
        );
        assert_eq!(
            detail.exit.as_deref(),
            Some("exit 137 (killed: out of memory, limit 16 MiB)")
        );
        let mut replaced = task("t2", Some(1), 10, "shutdown");
        replaced.desired_state = "shutdown".into();
        replaced.exit_code = Some(143);
        let detail = task_detail(&replaced, "web", &[], &HashMap::new(), &facts);
        assert_eq!(detail.exit.as_deref(), Some("exit 143 (stopped by Swarm)"));
    }

    #[test]
    fn a_child_killed_for_memory_is_said_while_the_main_process_goes_on() {
        let mut running = task("t2", Some(1), 20, "running");
        running.spec = serde_json::json!({"Resources": {"Limits": {"MemoryBytes": 16 << 20}}});
        let mut ended = task("t1", Some(1), 10, "complete");
        ended.desired_state = "shutdown".into();
        ended.exit_code = Some(0);
        let tasks = [ended.clone(), running.clone()];
        let facts = TaskFacts {
            restarts_within: Duration::from_secs(600),
            now: Timestamp::from_second(30).unwrap(),
            // The agent counted one kill in t2 (no limit reported: its spec's is said) and
            // two in t1, whose main process then exited 0.
            oom_kills: HashMap::from([
                ("t2".to_owned(), (1, None)),
                ("t1".to_owned(), (2, Some(32 << 20))),
            ]),
            ..TaskFacts::default()
        };
        let detail = task_detail(&running, "web", &tasks, &HashMap::new(), &facts);
        assert_eq!(detail.exit, None, "it still runs");
        assert_eq!(
            detail.row.processes_killed.as_deref(),
            Some("1 process killed: out of memory (limit 16 MiB)")
        );
        let json = serde_json::to_value(&detail).unwrap();
        assert_eq!(
            json["processes_killed"],
            "1 process killed: out of memory (limit 16 MiB)"
        );
        assert_eq!(
            json["history"][1]["processes_killed"],
            "2 processes killed: out of memory (limit 32 MiB)"
        );
        let detail = task_detail(&ended, "web", &tasks, &HashMap::new(), &facts);
        assert_eq!(detail.exit.as_deref(), Some("exit 0"));
        assert_eq!(
            detail.row.processes_killed.as_deref(),
            Some("2 processes killed: out of memory (limit 32 MiB)")
        );
        // Nothing counted: nothing said.
        let none = TaskFacts {
            oom_kills: HashMap::new(),
            ..facts
        };
        let detail = task_detail(&running, "web", &tasks, &HashMap::new(), &none);
        assert_eq!(detail.row.processes_killed, None);
        assert!(serde_json::to_value(&detail).unwrap()["processes_killed"].is_null());
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
        let facts = TaskFacts {
            restarts_within: Duration::from_secs(600),
            now: Timestamp::from_second(40).unwrap(),
            ..TaskFacts::default()
        };
        let detail = task_detail(&pending, "web", &tasks, &HashMap::new(), &facts);
        assert_eq!(detail.restarts, 2);
        assert_eq!(detail.restarts_within, "10m0s");
        // Worded as the overview words it (`rollout::waiting_reason`), state first.
        assert_eq!(
            detail.pending_reason.as_deref(),
            Some("pending: no suitable node (1 node not available for new tasks)")
        );
        let ids: Vec<&str> = detail.history.iter().map(|r| r.row.id.as_str()).collect();
        assert_eq!(ids, ["t3", "t2", "t1"]);
        assert_eq!(detail.row.name, "web.1");
        let first = task_detail(&tasks[0], "web", &tasks, &HashMap::new(), &facts);
        assert_eq!(
            first.restarts, 2,
            "the slot's restarts, whichever task is shown"
        );
        assert_eq!(
            first.pending_reason, None,
            "a failed task waits for nothing"
        );
    }

    #[test]
    fn restarts_count_what_the_server_saw_beyond_swarms_history() {
        // Swarm lists 4 ended tasks of the slot; the evaluations saw 10 ends, one of them
        // older than the window and one of another slot's.
        let mut listed: Vec<Task> = (7..=10)
            .map(|n| task(&format!("t{n}"), Some(1), n * 6, "failed"))
            .collect();
        let running = task("t11", Some(1), 66, "running");
        listed.push(running.clone());
        let mut slot_ends: Vec<(String, Timestamp)> = (1..=10)
            .map(|n| (format!("t{n}"), Timestamp::from_second(n * 6).unwrap()))
            .collect();
        slot_ends[0].1 = Timestamp::from_second(-1000).unwrap();
        let facts = TaskFacts {
            slot_ends,
            restarts_within: Duration::from_secs(600),
            now: Timestamp::from_second(70).unwrap(),
            ..TaskFacts::default()
        };
        let detail = task_detail(&running, "web", &listed, &HashMap::new(), &facts);
        assert_eq!(detail.restarts, 9);
        assert_eq!(detail.history.len(), 5);
        // Without the server's count (it just started) the listing still counts.
        let fresh = TaskFacts {
            slot_ends: Vec::new(),
            ..facts
        };
        let detail = task_detail(&running, "web", &listed, &HashMap::new(), &fresh);
        assert_eq!(detail.restarts, 4);
    }
}
