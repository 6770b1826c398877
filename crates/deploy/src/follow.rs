//! Following changed services until each converges or fails: the engine's service events wake
//! the loop, a poll covers task changes, and `rollout` says what each look means.

use std::time::Duration;

use futures_util::StreamExt;
use jiff::Timestamp;
use swarmkeeper_engine::{
    is_logs_unreadable, Engine, EngineError, LogOptions, Service, Task, TaskState,
};
use swarmkeeper_rollout::preflight::NodeFacts;
use swarmkeeper_rollout::{
    assess, observe, verdict, Follow, Monitor, ObservedTask, ServiceState, Verdict,
};

use crate::apply::Applied;
use crate::preflight::facts;
use crate::{Action, FailureReport, Options, Progress};

/// Follows every applied service until the verdict is not `Wait`; `Wait` when stopped
/// ([`Options::stop`]) before that.
pub(crate) async fn follow(
    engine: &Engine,
    applied: &mut [Applied],
    options: &Options,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Verdict, EngineError> {
    let mut events = engine.service_events(None);
    loop {
        let nodes = nodes(engine).await?;
        let looks = futures_util::future::join_all(
            applied
                .iter()
                .filter(|a| !a.state.is_final())
                .map(|a| look(engine, a, &nodes, options)),
        )
        .await;
        let mut looks = looks.into_iter();
        for change in applied.iter_mut().filter(|a| !a.state.is_final()) {
            let look = looks.next().expect("one look per service")?;
            change.failing_task = look.failing_task;
            change.changed_at = change.changed_at.or(look.changed_at);
            if look.state != change.state {
                progress(Progress::State {
                    service: &change.name,
                    state: &look.state,
                });
                if look.state.is_failure() {
                    change.failure_at = look.failure_at.or(look.latest);
                }
                change.state = look.state;
            }
        }
        let verdict = verdict(applied.iter().map(|a| &a.state));
        if verdict != Verdict::Wait {
            return Ok(verdict);
        }
        // An event about a service wakes us early; the timer covers task changes.
        tokio::select! {
            _ = events.next() => {}
            _ = tokio::time::sleep(options.poll) => {}
            _ = options.stop.wait() => return Ok(Verdict::Wait),
        }
    }
}

/// The swarm's nodes as placement constraints read them, listed once per round of looks:
/// whether a task Swarm kept through a placement-only change is current depends on its node
/// ([`swarmkeeper_rollout::task_is_current`]).
pub(crate) async fn nodes(engine: &Engine) -> Result<Vec<NodeFacts>, EngineError> {
    Ok(engine.list_nodes().await?.iter().map(facts).collect())
}

/// A container's exit code when SIGKILL (9) ended it, as the OOM killer does.
const SIGKILL_EXIT: i64 = 128 + 9;

/// What one look at a service found.
pub(crate) struct Look {
    pub state: ServiceState,
    /// When the engine reported the failure the state is about, by the manager's clock.
    pub failure_at: Option<Timestamp>,
    /// The task whose failure the state reports.
    pub failing_task: Option<String>,
    /// The manager's time of the change, when the look had to learn it
    /// ([`Applied::changed_at`]).
    pub changed_at: Option<Timestamp>,
    /// The newest time the manager gave in this look (the service's `UpdatedAt`, its tasks'
    /// status times): when a failure is seen that the engine gave no time for, it happened
    /// by then, by the manager's clock; this machine's clock is never compared with it.
    pub latest: Option<Timestamp>,
}

/// A task that failed before the change was made (an earlier, rolled back attempt at the same
/// spec) and that Swarm no longer means to run says nothing about this change. Both times are
/// the manager's (`changed_at`: [`Applied::changed_at`]), so a client whose clock is off
/// judges the same; with `changed_at` unknown no task is taken for an earlier attempt's.
pub(crate) fn earlier_attempt(task: &Task, changed_at: Option<Timestamp>) -> bool {
    let earlier = matches!(
        (task.created_at, changed_at),
        (Some(created), Some(changed)) if created < changed
    );
    earlier && task.desired_state != TaskState::Running && task.state.is_failed()
}

/// The newest time the manager gave: the service's `UpdatedAt` and its tasks' status times.
fn latest_manager_time(updated_at: Option<Timestamp>, tasks: &[Task]) -> Option<Timestamp> {
    tasks
        .iter()
        .filter_map(|t| t.timestamp)
        .chain(updated_at)
        .max()
}

/// The manager's time of a change just made to `service`: its `CreatedAt` when created, else
/// its `UpdatedAt` (the change touched it last, until Swarm's updater moves on).
pub(crate) fn change_time(service: &Service, action: Action) -> Option<Timestamp> {
    match action {
        Action::Create => service.created_at,
        _ => service.updated_at,
    }
}

/// One look at a service: its state, when it failed when the engine reported that, and the
/// task whose failure it reports. `nodes`: the swarm's, from [`nodes`].
pub(crate) async fn look(
    engine: &Engine,
    change: &Applied,
    nodes: &[NodeFacts],
    options: &Options,
) -> Result<Look, EngineError> {
    let service = match engine.inspect_service(&change.id).await {
        Ok(service) => service,
        Err(e) if e.is_not_found() => {
            return Ok(Look {
                state: ServiceState::Failed {
                    why: "the service was removed while the deploy followed it".to_string(),
                },
                failure_at: None,
                failing_task: None,
                changed_at: None,
                latest: None,
            })
        }
        Err(e) => return Err(e),
    };
    let tasks = engine.list_tasks(&change.id).await?;
    // Read right after the change ([`crate::apply::apply_all`]); else the first look's.
    let changed_at = change
        .changed_at
        .or_else(|| change_time(&service, change.action));
    let current: Vec<&Task> = tasks
        .iter()
        .filter(|t| !earlier_attempt(t, changed_at))
        .collect();
    let mut observed = observe(&service, &current, nodes, change.baseline.as_ref());
    let container_of = |id: &str| {
        tasks
            .iter()
            .find(|t| t.id == id)
            .and_then(|t| t.container_id.as_deref())
    };
    let created_of = |id: &str| tasks.iter().find(|t| t.id == id).and_then(|t| t.created_at);
    // A SIGKILL may be the kernel's OOM killer: the container's engine says (when it is the
    // one this deploy talks to, and the container is still there), else the agents' counts.
    for failed in observed
        .tasks
        .iter_mut()
        .filter(|t| t.state.is_failed() && t.exit_code == Some(SIGKILL_EXIT))
    {
        let inspected = match container_of(&failed.id) {
            Some(container) => engine.container_oom_killed(container).await.ok(),
            None => None,
        };
        match inspected {
            Some(killed) => failed.oom_killed = killed,
            None => {
                let since = created_of(&failed.id).unwrap_or(Timestamp::UNIX_EPOCH);
                agents_say(options, &service.name, failed, since);
            }
        }
    }
    let follow = Follow {
        elapsed: change.applied_at.elapsed(),
        timeout: options.timeout,
        max_failed_tasks: options.max_failed_tasks,
        // A created service has no update for Swarm's updater to watch: its first tasks get
        // the same monitor window here (a job's tasks are meant to end), read from the
        // manager's times and this machine's monotonic clock, never the two compared.
        monitor: (change.action == Action::Create && !observed.mode.is_job()).then(|| Monitor {
            window: service.view.update_config.monitor,
            changed_at: service.created_at,
            since_change: change.applied_at.elapsed(),
        }),
    };
    let mut state = assess(&observed, &follow);
    if state.is_failure() {
        let killed = observed
            .failing_task()
            .filter(|t| t.exit_code == Some(SIGKILL_EXIT) && !t.oom_killed)
            .map(|t| (t.id.clone(), t.oom_unknown));
        if let Some((task, unknown)) = killed {
            let arrived = if unknown {
                let since = created_of(&task).unwrap_or(Timestamp::UNIX_EPOCH);
                agents_count_arrives(options, &service.name, &task, since).await
            } else {
                match container_of(&task) {
                    Some(container) if oom_kill_arrives(engine, container).await => Some(None),
                    _ => None,
                }
            };
            if let Some(limit) = arrived {
                if let Some(t) = observed.tasks.iter_mut().find(|t| t.id == task) {
                    t.oom_killed = true;
                    t.oom_unknown = false;
                    t.memory_limit_bytes = limit.or(t.memory_limit_bytes);
                }
                state = assess(&observed, &follow);
            }
        }
    }
    Ok(Look {
        state,
        failure_at: observed.failure_reported_at(),
        failing_task: observed.failing_task().map(|t| t.id.clone()),
        changed_at,
        latest: latest_manager_time(service.updated_at, &tasks),
    })
}

/// What the agents counted for the SIGKILLed `task` of `service` whose container this
/// deploy's engine cannot inspect (another node's, or gone): a kill counted from `since` on
/// marks it OOM-killed, with the limit the agent reported; none counted, or no agents'
/// reports at hand (the CLI), leaves it unknown, to be worded as possibly one.
fn agents_say(options: &Options, service: &str, task: &mut ObservedTask, since: Timestamp) {
    match options
        .agent_oom_kills
        .as_ref()
        .and_then(|kills| kills.counted(service, &task.id, since))
    {
        Some(limit) => {
            task.oom_killed = true;
            task.memory_limit_bytes = limit.or(task.memory_limit_bytes);
        }
        None => task.oom_unknown = true,
    }
}

/// How long a SIGKILLed task's container is watched for the engine's `OOMKilled` before its
/// failure is worded as a plain SIGKILL, and how often it is read meanwhile. containerd sends
/// the task's exit and the cgroup's OOM event separately (cgroup v2 reads `memory.events`
/// on its own watch), so dockerd may list the exit some hundred milliseconds before it marks
/// the kill an OOM kill. Only a SIGKILL not (yet) marked waits, so a rollback after one
/// starts at most this much later.
const OOM_MARK_WITHIN: Duration = Duration::from_secs(1);
const OOM_MARK_POLL: Duration = Duration::from_millis(100);

/// How long a SIGKILLed task's failure waits for the agents' count when its container's
/// engine cannot be asked, and how often their reports are read meanwhile. An agent reports
/// at once when its engine says a task's container was OOM-killed (`agent::run`), which
/// reaches the server a few seconds after the exit Swarm lists; only a deploy that has the
/// agents' reports (the server's) and a SIGKILL it could not check waits.
const AGENT_COUNT_WITHIN: Duration = Duration::from_secs(10);
const AGENT_COUNT_POLL: Duration = Duration::from_millis(500);

/// Whether the agents count an OOM kill in `task` (of `service`) from `since` on within
/// [`AGENT_COUNT_WITHIN`], and the limit they reported; at once `None` without their reports.
async fn agents_count_arrives(
    options: &Options,
    service: &str,
    task: &str,
    since: Timestamp,
) -> Option<Option<u64>> {
    let kills = options.agent_oom_kills.as_ref()?;
    let deadline = tokio::time::Instant::now() + AGENT_COUNT_WITHIN;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(AGENT_COUNT_POLL).await;
        if let Some(limit) = kills.counted(service, task, since) {
            return Some(limit);
        }
    }
    None
}

/// Whether the engine marks `container` OOM-killed within [`OOM_MARK_WITHIN`].
async fn oom_kill_arrives(engine: &Engine, container: &str) -> bool {
    let deadline = tokio::time::Instant::now() + OOM_MARK_WITHIN;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(OOM_MARK_POLL).await;
        match engine.container_oom_killed(container).await {
            Ok(true) => return true,
            Ok(false) => {}
            // Gone, or another engine's: nothing more to learn here.
            Err(_) => return false,
        }
    }
    false
}

/// How many log lines a failure report shows, how many of the service's last lines are
/// searched for the failing task's, and how long reading them may take.
const REPORT_LINES: u64 = 10;
const REPORT_SEARCHED_LINES: u64 = 1000;
const REPORT_LOGS_WITHIN: Duration = Duration::from_secs(5);

/// The failing service's error and the last log lines of the task that failed (not those of
/// an older, healthy task of the service, which would say nothing about the failure).
pub(crate) async fn failure_report(engine: &Engine, change: &Applied) -> FailureReport {
    let mut report = FailureReport {
        service: change.name.clone(),
        why: change.state.why().unwrap_or_default().to_string(),
        logs: Vec::new(),
        logs_note: None,
    };
    let options = LogOptions {
        follow: false,
        since: None,
        tail: Some(REPORT_SEARCHED_LINES),
        timestamps: false,
    };
    let logs = tokio::time::timeout(REPORT_LOGS_WITHIN, async {
        let mut stream = engine.service_logs(&change.id, &options).await?;
        let mut lines = Vec::new();
        while let Some(line) = stream.next().await {
            let line = line?;
            let own = match (&change.failing_task, &line.task_id) {
                (Some(failing), Some(task)) => failing == task,
                _ => true,
            };
            if own {
                lines.push(line.text);
            }
        }
        Ok::<_, EngineError>(lines)
    })
    .await;
    match logs {
        Ok(Ok(lines)) if lines.is_empty() && change.failing_task.is_some() => {
            report.logs_note = Some("the failing task wrote no log lines".to_string());
        }
        Ok(Ok(lines)) => {
            let skip = lines.len().saturating_sub(REPORT_LINES as usize);
            report.logs = lines.into_iter().skip(skip).collect();
        }
        Ok(Err(e)) if is_logs_unreadable(&e) => report.logs_note = Some(
            "its log driver keeps nothing readable; use `logging: {driver: local}` to read logs"
                .to_string(),
        ),
        Ok(Err(e)) => report.logs_note = Some(format!("logs could not be read: {e}")),
        Err(_) => {
            report.logs_note = Some(format!(
                "logs did not come within {}s",
                REPORT_LOGS_WITHIN.as_secs()
            ))
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The manager's clock, years behind this machine's: nothing here may read the latter.
    fn manager(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_577_836_800 + seconds).unwrap()
    }

    fn task(id: &str, created: i64, state: TaskState, desired: TaskState) -> Task {
        Task {
            id: id.to_owned(),
            service_id: "s".to_owned(),
            slot: Some(1),
            node_id: "n".to_owned(),
            desired_state: desired,
            state,
            message: String::new(),
            err: String::new(),
            timestamp: Some(manager(created + 1)),
            exit_code: None,
            container_id: None,
            created_at: Some(manager(created)),
            spec: serde_json::Value::Null,
            networks: Vec::new(),
        }
    }

    #[test]
    fn a_sigkill_nobody_could_inspect_is_an_oom_kill_when_the_agents_counted_one() {
        let mut killed = task("k", 0, TaskState::Failed, TaskState::Shutdown);
        killed.exit_code = Some(SIGKILL_EXIT);
        killed.err = "task: non-zero exit (137)".to_owned();
        killed.spec = serde_json::json!({"Resources": {"Limits": {"MemoryBytes": 32 << 20}}});
        let spec = serde_json::json!({"Name": "shop_web", "TaskTemplate": {}});
        let service = Service::new("s".to_owned(), 1, spec, None, None).unwrap();
        let observed = || observe(&service, &[&killed], &[], None).tasks.remove(0);
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = asked.clone();
        let server = Options {
            agent_oom_kills: Some(crate::AgentOomKills::new(move |service, task, since| {
                seen.lock()
                    .unwrap()
                    .push(format!("{service} {task} {since}"));
                (task == "k").then_some(Some(16 << 20))
            })),
            ..Options::default()
        };
        // The server's reports counted the kill, with the limit the agent measured.
        let mut t = observed();
        agents_say(&server, "shop_web", &mut t, manager(0));
        assert!(t.oom_killed && !t.oom_unknown);
        assert_eq!(t.memory_limit_bytes, Some(16 << 20));
        assert_eq!(
            *asked.lock().unwrap(),
            [format!("shop_web k {}", manager(0))]
        );
        // The CLI has no reports: unknown, worded as possibly one, with the spec's limit.
        let mut t = observed();
        agents_say(&Options::default(), "shop_web", &mut t, manager(0));
        assert!(!t.oom_killed && t.oom_unknown);
        assert_eq!(t.memory_limit_bytes, Some(32 << 20));
        // Reports that counted nothing: unknown too (the node may run no agent).
        let mut other = observed();
        other.id = "other".to_owned();
        agents_say(&server, "shop_web", &mut other, manager(0));
        assert!(!other.oom_killed && other.oom_unknown);
    }

    #[test]
    fn an_earlier_attempt_is_told_by_the_managers_clock_alone() {
        let changed_at = Some(manager(0));
        let before = task("old", -30, TaskState::Failed, TaskState::Shutdown);
        let ours = task("new", 2, TaskState::Failed, TaskState::Shutdown);
        let retried = task("again", -30, TaskState::Failed, TaskState::Running);
        // This machine's clock is years ahead of the manager's: the task this change made
        // still counts (a local "now" as the cutoff would have dropped it), the earlier
        // attempt's does not.
        assert!(earlier_attempt(&before, changed_at));
        assert!(!earlier_attempt(&ours, changed_at));
        assert!(!earlier_attempt(&retried, changed_at), "still wanted");
        // The manager's clock ahead of this machine's (a cutoff from here would drop
        // nothing, and take the earlier attempt for this change's failure): the same.
        let far = Some(Timestamp::from_second(4_000_000_000).unwrap());
        let mut before_far = before.clone();
        before_far.created_at = Some(Timestamp::from_second(4_000_000_000 - 30).unwrap());
        assert!(earlier_attempt(&before_far, far));
        // Not known yet: nothing is taken for an earlier attempt's.
        assert!(!earlier_attempt(&before, None));
    }

    #[test]
    fn a_failure_without_the_engines_time_is_dated_by_the_manager() {
        let tasks = [
            task("a", 0, TaskState::Running, TaskState::Running),
            task("b", 40, TaskState::Failed, TaskState::Shutdown),
        ];
        assert_eq!(
            latest_manager_time(Some(manager(10)), &tasks),
            Some(manager(41))
        );
        assert_eq!(
            latest_manager_time(Some(manager(50)), &tasks),
            Some(manager(50))
        );
        assert_eq!(latest_manager_time(None, &[]), None);
    }
}
