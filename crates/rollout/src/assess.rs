//! How one service stands: its tasks counted against what it wants ([`tally`]), whether
//! Swarm has nothing left to do ([`converged`]), and how an update is going ([`assess`]);
//! then the whole deploy's [`verdict`].

use std::time::Duration;

use jiff::Timestamp;
use swarmkeeper_swarm::{
    exit_wording, sigkill_unverified, task_outcome, ExitFacts, Service, ServiceMode, Task,
    TaskState, UpdateState, UpdateStatus,
};
use swarmkeeper_units::short_id;

use crate::diff::task_is_current;
use crate::preflight::NodeFacts;

/// Failed attempts of a service without an update in progress (a new service) before it counts
/// as failed: Swarm itself restarts such tasks forever.
pub const DEFAULT_MAX_FAILED_TASKS: usize = 3;

/// One task as the engine reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedTask {
    pub id: String,
    pub slot: Option<u64>,
    pub desired_state: TaskState,
    pub state: TaskState,
    /// `Status.Err`.
    pub err: String,
    pub message: String,
    /// When the task last changed state: for a running task, when it started running.
    pub timestamp: Option<Timestamp>,
    /// `CreatedAt`: when Swarm made the task.
    pub created_at: Option<Timestamp>,
    /// `Status.ContainerStatus.ExitCode`, once its container exited.
    pub exit_code: Option<i64>,
    /// The task runs the service's current spec (see [`task_is_current`]).
    pub current: bool,
    /// The kernel's OOM killer killed in its container, as the shell learned it (the
    /// container's engine's `State.OOMKilled`, the agent's count); `observe` cannot know.
    pub oom_killed: bool,
    /// Whether the OOM killer killed in its container could not be learned: the shell could
    /// not inspect the container (it ran on another node than the engine asked, or is gone)
    /// and no agent's count was at hand. A SIGKILL exit is then worded as possibly one
    /// ([`sigkill_unverified`]) rather than as Swarm's bare `non-zero exit (137)`.
    pub oom_unknown: bool,
    /// Its spec's memory limit in bytes, when it has one.
    pub memory_limit_bytes: Option<u64>,
}

/// A service and its tasks as the decisions read them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedService {
    /// `None`: no update status, or the one that was there before this deploy's change.
    pub update: Option<UpdateState>,
    pub update_message: String,
    /// When Swarm started the update (or rollback) `update` describes.
    pub update_started_at: Option<Timestamp>,
    pub mode: ServiceMode,
    /// Newest first.
    pub tasks: Vec<ObservedTask>,
}

/// A service and its tasks (in any order, old ones included) as plain data. `nodes`: the
/// swarm's nodes, listed once for the observation, whose placement facts decide whether a
/// task Swarm keeps through a placement-only change is current ([`task_is_current`]).
/// `baseline` is the update status before a change of ours: a status equal to it is old
/// news, not this change's.
pub fn observe(
    service: &Service,
    tasks: &[&Task],
    nodes: &[NodeFacts],
    baseline: Option<&UpdateStatus>,
) -> ObservedService {
    let fresh = service
        .update_status
        .as_ref()
        .filter(|u| baseline.is_none_or(|b| b.state != u.state || b.started_at != u.started_at));
    let template = service.task_template();
    let mut tasks: Vec<ObservedTask> = tasks
        .iter()
        .map(|t| ObservedTask {
            id: t.id.clone(),
            slot: t.slot,
            desired_state: t.desired_state.clone(),
            state: t.state.clone(),
            err: t.err.clone(),
            message: t.message.clone(),
            timestamp: t.timestamp,
            created_at: t.created_at,
            exit_code: t.exit_code,
            current: task_is_current(
                &t.spec,
                template,
                &service.view.constraints,
                nodes.iter().find(|n| n.id == t.node_id),
            ),
            oom_killed: false,
            oom_unknown: false,
            memory_limit_bytes: Some(t.limits().memory_bytes).filter(|b| *b > 0),
        })
        .collect();
    tasks.sort_by_key(|t| std::cmp::Reverse(t.timestamp));
    ObservedService {
        update: fresh.map(|u| u.state.clone()),
        update_message: fresh.map(|u| u.message.clone()).unwrap_or_default(),
        update_started_at: fresh.and_then(|u| u.started_at),
        mode: service.view.mode.clone(),
        tasks,
    }
}

impl ObservedService {
    /// The task whose failure a report names: the newest failed task of the current spec.
    /// Once Swarm rolls back, the spec is the old one again and the failed tasks are no
    /// longer current: then the newest failed task of any spec that says why (tasks come
    /// newest first).
    pub fn failing_task(&self) -> Option<&ObservedTask> {
        let rolling_back = matches!(
            self.update,
            Some(UpdateState::RollbackStarted | UpdateState::RollbackCompleted)
        );
        if rolling_back {
            self.tasks
                .iter()
                .find(|t| t.state.is_failed() && !t.err.is_empty())
        } else {
            self.tasks.iter().find(|t| t.current && t.state.is_failed())
        }
    }

    /// Why the tasks Swarm wants wait, each reason once, sorted: the scheduler's `Status.Err`
    /// (else the message) led by the task's state, e.g. "pending: no suitable node
    /// (insufficient resources on 2 nodes)". The deploy prints these while it follows; the
    /// dashboard shows them beside a service that has not converged.
    pub fn pending_reasons(&self) -> Vec<String> {
        let mut pending: Vec<String> = self
            .tasks
            .iter()
            .filter(|t| self.wanted(t) && t.state.is_waiting())
            .filter_map(|t| waiting_reason(&t.state, &t.err, &t.message))
            .collect();
        pending.sort();
        pending.dedup();
        pending
    }

    /// Swarm still means the task to run (a service's) or to run to completion (a job's).
    fn wanted(&self, task: &ObservedTask) -> bool {
        let wanted = if self.mode.is_job() {
            TaskState::Complete
        } else {
            TaskState::Running
        };
        task.desired_state == wanted
    }

    /// When the engine reported a failure of this change: the newest failed task of the
    /// current spec, or the moment Swarm started rolling back or paused, whichever is later.
    pub fn failure_reported_at(&self) -> Option<Timestamp> {
        let failed_at = self
            .tasks
            .iter()
            .filter(|t| t.current && matches!(t.state, TaskState::Failed | TaskState::Rejected))
            .filter_map(|t| t.timestamp)
            .max();
        match self.update {
            // Swarm decided: its status changed when it started the rollback or paused.
            Some(
                UpdateState::RollbackStarted | UpdateState::Paused | UpdateState::RollbackPaused,
            ) => self.update_started_at.max(failed_at),
            _ => failed_at,
        }
    }
}

/// A service's tasks counted against what it wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tally {
    /// Tasks of the current spec that run, or for a job have completed.
    pub running: u64,
    /// Replicas asked for; for a global service, the tasks Swarm means to run (at least one:
    /// right after a create it has made none yet); for a job, its completions.
    pub desired: u64,
    /// Tasks of an older spec Swarm still means to run.
    pub stale: u64,
    /// Tasks Swarm means to run, of any spec.
    pub wanted: u64,
    /// Tasks of an older spec that run and Swarm means to keep for now: with `start-first`
    /// they serve until their replacements run, so `running` alone would read as an outage.
    pub old_serving: u64,
}

impl Tally {
    /// Every desired task runs the current spec and none of an older one is left.
    pub fn is_complete(&self) -> bool {
        self.running >= self.desired && self.stale == 0 && (self.desired > 0 || self.wanted == 0)
    }
}

/// Counts a service's tasks: only those Swarm still wants count, and only those of the
/// current spec count as running.
pub fn tally(observed: &ObservedService) -> Tally {
    let wanted: Vec<&ObservedTask> = observed
        .tasks
        .iter()
        .filter(|t| observed.wanted(t))
        .collect();
    let done = if observed.mode.is_job() {
        TaskState::Complete
    } else {
        TaskState::Running
    };
    let running = wanted
        .iter()
        .filter(|t| t.current && t.state == done)
        .count() as u64;
    let current = wanted.iter().filter(|t| t.current).count() as u64;
    let desired = match observed.mode {
        ServiceMode::Replicated { replicas } => replicas,
        ServiceMode::ReplicatedJob {
            total_completions, ..
        } => total_completions,
        ServiceMode::Global | ServiceMode::GlobalJob => current.max(1),
    };
    Tally {
        running,
        desired,
        stale: wanted.len() as u64 - current,
        wanted: wanted.len() as u64,
        old_serving: old_serving(observed),
    }
}

/// [`Tally::old_serving`].
fn old_serving(observed: &ObservedService) -> u64 {
    observed
        .tasks
        .iter()
        .filter(|t| observed.wanted(t) && !t.current && t.state == TaskState::Running)
        .count() as u64
}

/// Swarm has nothing left to do for the service: no update in flight or stopped half-way,
/// every task it wants runs the current spec (for a job: has completed), none of an older
/// spec is left. The one definition of "converged": the deploy follows a service until it
/// holds, the dashboard shows it.
pub fn converged(observed: &ObservedService) -> bool {
    observed.update.as_ref().is_none_or(UpdateState::is_settled) && tally(observed).is_complete()
}

/// How following one service is going.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Follow {
    /// Time since the change was applied.
    pub elapsed: Duration,
    pub timeout: Duration,
    /// Failed attempts that fail a service Swarm's updater is not watching.
    pub max_failed_tasks: usize,
    /// For a service this change created, which Swarm's updater does not watch (it has no
    /// update status): the window its tasks must run through. `None`: an update, which
    /// Swarm's updater watches through the service's own `UpdateConfig.Monitor`.
    pub monitor: Option<Monitor>,
}

/// The monitor window of a created service, as Swarm's updater applies it to an update: a
/// task that goes past RUNNING within `window` after it started running (with a healthcheck,
/// RUNNING means healthy) fails the change, and the service converges only once every task
/// it wants has run that long. Source: swarmkit's updater (`UpdateConfig.Monitor`).
///
/// The manager's times are only ever compared with each other, never with the clock of the
/// machine that deploys: when a task started running is read as a time after the change
/// (its status timestamp less the service's `CreatedAt`), and how much time has passed
/// since the change is a duration measured on the deploying machine's monotonic clock. A
/// deploying machine whose clock is minutes off the manager's therefore neither ends the
/// window early (a task that crashes after 1 s taken for a success) nor late.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Monitor {
    /// The service's `UpdateConfig.Monitor` (Swarm's default 5 s).
    pub window: Duration,
    /// When the manager made the change, by its clock: the service's `CreatedAt` for a
    /// service the change created. `None` (an engine that does not say): the earliest
    /// `CreatedAt` of the service's tasks, made just after it.
    pub changed_at: Option<Timestamp>,
    /// How long ago the engine answered the change, measured where the deploy runs (a
    /// monotonic duration, not a time): the engine answered after it made the change, so this
    /// is never more than the manager's own time since `changed_at`, and the window never
    /// ends early.
    pub since_change: Duration,
}

impl Monitor {
    /// A task of the current spec that ended within the window: failed, rejected or orphaned,
    /// or (a service's, not a job's) completed — Swarm counts a task that goes past RUNNING.
    fn ended<'a>(&self, observed: &'a ObservedService) -> Option<&'a ObservedTask> {
        observed.tasks.iter().find(|t| {
            t.current
                && (t.state.is_failed()
                    || (!observed.mode.is_job() && t.state == TaskState::Complete))
        })
    }

    /// Every task the service wants has run the current spec for the whole window: the
    /// time after the change at which it started running (manager's times), plus the window,
    /// has passed since the change.
    fn held(&self, observed: &ObservedService) -> bool {
        let changed_at = self
            .changed_at
            .or_else(|| observed.tasks.iter().filter_map(|t| t.created_at).min());
        let Some(changed_at) = changed_at else {
            return false;
        };
        observed
            .tasks
            .iter()
            .filter(|t| observed.wanted(t) && t.current)
            .all(|t| {
                t.timestamp.is_some_and(|running_since| {
                    let after_change = Duration::try_from(running_since.duration_since(changed_at))
                        .unwrap_or_default();
                    self.since_change >= after_change.saturating_add(self.window)
                })
            })
    }
}

/// Why a task waits in one line, the one wording of the overview, the service and task pages
/// and the deploy's progress: the scheduler's `Status.Err` (else the message) led by the
/// task's `state`, "pending: no suitable node (insufficient resources on 2 nodes)", without
/// the gRPC wrapper a node's answer may come in (`rpc error: code = Unknown desc = …`);
/// `None` when the engine says nothing.
pub fn waiting_reason(state: &TaskState, err: &str, message: &str) -> Option<String> {
    let reason = if err.is_empty() { message } else { err };
    let reason = without_grpc_wrapper(reason);
    // The engine often repeats the state in its message ("preparing: preparing").
    (!reason.is_empty()).then(|| {
        if reason.starts_with(state.as_str()) {
            reason.to_owned()
        } else {
            format!("{state}: {reason}")
        }
    })
}

/// `text` without the gRPC status a manager or node wraps its errors in
/// (`rpc error: code = Unknown desc = no such image`): what is left is what it said.
pub fn without_grpc_wrapper(text: &str) -> &str {
    const LEAD: &str = "rpc error: code = ";
    match text.trim().strip_prefix(LEAD) {
        Some(rest) => rest
            .split_once(" desc = ")
            .map_or(rest, |(_, said)| said)
            .trim(),
        None => text.trim(),
    }
}

/// Why a task ended within the monitor window, in one line: "task 1 (3f2a9c1b4d5e) exited 1
/// 1.2 s after it was created, within the 5 s monitor window: task: non-zero exit (1)".
fn ended_reason(task: &ObservedTask, window: Duration) -> String {
    let name = match task.slot {
        Some(slot) => format!("task {slot} ({})", short_id(&task.id)),
        None => format!("task {}", short_id(&task.id)),
    };
    let how = match task.exit_code {
        Some(code) if task.state == TaskState::Failed || task.state == TaskState::Complete => {
            format!("exited {code}")
        }
        _ => format!("{}", task.state),
    };
    let after = match (task.created_at, task.timestamp) {
        (Some(created), Some(ended)) => format!(
            " {:.1} s after it was created,",
            ended.duration_since(created).as_secs_f64().max(0.0)
        ),
        _ => String::new(),
    };
    let text = task_text(task);
    format!(
        "{name} {how}{after} within the {} s monitor window: {text}",
        window.as_secs_f64()
    )
}

/// What one service is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceState {
    InProgress {
        /// Tasks of the new spec that run.
        running: u64,
        desired: u64,
        /// Tasks of an older spec that still run: with `start-first` they serve until their
        /// replacements run.
        old_serving: u64,
        /// The update state, when there is one.
        update: Option<UpdateState>,
        /// Why tasks wait, each led by its task's state: "pending: no suitable node (…)", …
        pending: Vec<String>,
        /// The latest failure of a task of the new spec.
        failing: Option<String>,
    },
    Converged,
    /// Swarm is rolling the service back by itself.
    RollingBack {
        why: String,
    },
    RolledBack {
        why: String,
    },
    Paused {
        why: String,
    },
    Failed {
        why: String,
    },
    TimedOut {
        why: String,
    },
}

impl ServiceState {
    /// A service just changed: nothing seen yet.
    pub fn started() -> ServiceState {
        ServiceState::InProgress {
            running: 0,
            desired: 0,
            old_serving: 0,
            update: None,
            pending: Vec::new(),
            failing: None,
        }
    }

    /// Nothing more will happen without someone acting.
    pub fn is_final(&self) -> bool {
        !matches!(self, ServiceState::InProgress { .. })
    }

    /// The service's update failed: the deploy must roll back.
    pub fn is_failure(&self) -> bool {
        !matches!(
            self,
            ServiceState::InProgress { .. } | ServiceState::Converged
        )
    }

    /// A short word for tables and plain progress lines.
    pub fn label(&self) -> &'static str {
        match self {
            ServiceState::InProgress { .. } => "updating",
            ServiceState::Converged => "converged",
            ServiceState::RollingBack { .. } => "rolling back",
            ServiceState::RolledBack { .. } => "rolled back",
            ServiceState::Paused { .. } => "paused",
            ServiceState::Failed { .. } => "failed",
            ServiceState::TimedOut { .. } => "timed out",
        }
    }

    /// The state in a line, as progress shows it: an update's counts (`1/2 running`, `0/2
    /// new, 2 old serving` with start-first, where "0/2 running" would read as an outage), its
    /// update state, why tasks wait and the latest failure; otherwise the label and why.
    pub fn describe(&self) -> String {
        match self {
            ServiceState::InProgress {
                running,
                desired,
                old_serving,
                update,
                pending,
                failing,
            } => {
                let mut text = if *old_serving > 0 {
                    format!("{running}/{desired} new, {old_serving} old serving")
                } else {
                    format!("{running}/{desired} running")
                };
                if let Some(update) = update {
                    text.push_str(&format!(", {update}"));
                }
                if !pending.is_empty() {
                    text.push_str(&format!(", {}", pending.join("; ")));
                }
                if let Some(failing) = failing {
                    text.push_str(&format!(", failing: {failing}"));
                }
                text
            }
            other => match other.why() {
                Some(why) => format!("{}: {why}", other.label()),
                None => other.label().to_string(),
            },
        }
    }

    /// Why it failed, when it did.
    pub fn why(&self) -> Option<&str> {
        match self {
            ServiceState::RollingBack { why }
            | ServiceState::RolledBack { why }
            | ServiceState::Paused { why }
            | ServiceState::Failed { why }
            | ServiceState::TimedOut { why } => Some(why),
            _ => None,
        }
    }
}

/// A task's own failure in one line: `Err`, else `Message`.
fn task_reason(task: &ObservedTask) -> String {
    format!(
        "task {} {}: {}",
        short_id(&task.id),
        task.state,
        task_text(task)
    )
}

/// What a task says of its end: `Err`, else `Message`; a container the OOM killer killed is
/// worded as the task page words it ([`exit_wording`]: `exit 137 (killed: out of memory,
/// limit 16 MiB)`), a SIGKILL whose cause could not be learned as possibly one
/// ([`sigkill_unverified`]), each with what else `Err` says.
fn task_text(task: &ObservedTask) -> String {
    let text = if task.err.is_empty() {
        &task.message
    } else {
        &task.err
    };
    let Some(code) = task
        .exit_code
        .filter(|&code| task.oom_killed || (task.oom_unknown && code == 128 + 9))
    else {
        return text.clone();
    };
    let facts = ExitFacts {
        code,
        stopped_by_swarm: false,
        oom_killed: task.oom_killed,
        memory_limit_bytes: task.memory_limit_bytes,
    };
    let (exit, rest) = task_outcome(text, Some(&facts));
    let exit = if task.oom_killed {
        exit.unwrap_or_else(|| exit_wording(&facts))
    } else {
        sigkill_unverified(code, task.memory_limit_bytes)
    };
    if rest.is_empty() {
        exit
    } else {
        format!("{exit}: {rest}")
    }
}

/// Where one service stands. Pure: the same observation gives the same answer.
pub fn assess(observed: &ObservedService, follow: &Follow) -> ServiceState {
    let Tally {
        running, desired, ..
    } = tally(observed);
    let pending = observed.pending_reasons();
    let failed: Vec<&ObservedTask> = observed
        .tasks
        .iter()
        .filter(|t| t.current && t.state.is_failed())
        .collect();
    let failing = observed.failing_task().map(task_reason);
    let old_serving = old_serving(observed);
    let message = || {
        let mut why = observed.update_message.clone();
        if let Some(failing) = &failing {
            if why.is_empty() {
                why = failing.clone();
            } else {
                why = format!("{why}; {failing}");
            }
        }
        if why.is_empty() {
            "no reason given by the engine".to_string()
        } else {
            why
        }
    };

    match &observed.update {
        Some(UpdateState::RollbackCompleted) => return ServiceState::RolledBack { why: message() },
        Some(UpdateState::RollbackStarted) => return ServiceState::RollingBack { why: message() },
        Some(UpdateState::Paused) | Some(UpdateState::RollbackPaused) => {
            return ServiceState::Paused { why: message() }
        }
        _ => {}
    }
    if let Some(monitor) = &follow.monitor {
        if let Some(task) = monitor.ended(observed) {
            return ServiceState::Failed {
                why: ended_reason(task, monitor.window),
            };
        }
    }
    if converged(observed) && follow.monitor.as_ref().is_none_or(|m| m.held(observed)) {
        return ServiceState::Converged;
    }
    // With no update in progress (a new service, or a change Swarm applies without its
    // updater), nothing but us watches the restarts.
    let updating = observed.update == Some(UpdateState::Updating);
    if !updating && failed.len() >= follow.max_failed_tasks.max(1) {
        return ServiceState::Failed { why: message() };
    }
    if follow.elapsed >= follow.timeout {
        let not_yet = format!(
            "not converged after {}s: {running}/{desired} tasks running",
            follow.timeout.as_secs()
        );
        return timed_out(not_yet, &pending, failing.as_deref());
    }
    ServiceState::InProgress {
        running,
        desired,
        old_serving,
        update: observed.update.clone(),
        pending,
        failing,
    }
}

/// The whole deploy, from its services' states.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Something is still moving.
    Wait,
    Succeeded,
    /// At least one service failed: roll the stack back now, without waiting for the others.
    Failed,
}

pub fn verdict<'a>(states: impl IntoIterator<Item = &'a ServiceState>) -> Verdict {
    let mut all_converged = true;
    for state in states {
        if state.is_failure() {
            return Verdict::Failed;
        }
        all_converged &= *state == ServiceState::Converged;
    }
    if all_converged {
        Verdict::Succeeded
    } else {
        Verdict::Wait
    }
}

/// A timeout's reason: what had not happened yet, why tasks wait, the last failure.
fn timed_out(not_yet: String, pending: &[String], failing: Option<&str>) -> ServiceState {
    let mut why = not_yet;
    if !pending.is_empty() {
        why.push_str(&format!("; {}", pending.join("; ")));
    }
    if let Some(failing) = failing {
        why.push_str(&format!("; last failure: {failing}"));
    }
    ServiceState::TimedOut { why }
}

/// How Swarm's own rollback of one service, asked by an operator (`docker service rollback`,
/// the dashboard's "Roll back"), is going, after `elapsed` of at most `timeout`. Unlike a
/// deploy's update, where `rollback_completed` is the update's failure, here it is what was
/// asked: [`ServiceState::Converged`] once Swarm says `rollback_completed` and every task the
/// service wants runs the spec it went back to. Swarm pausing (`rollback_paused`, under
/// `rollback_config.failure_action: pause`) is [`ServiceState::Paused`]; past `timeout`,
/// [`ServiceState::TimedOut`]. `observed` must be read with the update status from before the
/// request as its baseline ([`observe`]), so that an older `rollback_completed` is not taken
/// for this one's. Source: swarmkit's controlapi marks a requested rollback
/// `rollback_started` at once and its updater ends it `rollback_completed` or
/// `rollback_paused`.
pub fn requested_rollback(
    observed: &ObservedService,
    elapsed: Duration,
    timeout: Duration,
) -> ServiceState {
    let Tally {
        running, desired, ..
    } = tally(observed);
    let pending = observed.pending_reasons();
    let failing = observed.failing_task().map(task_reason);
    let why = || {
        let mut why = observed.update_message.clone();
        if let Some(failing) = &failing {
            why = if why.is_empty() {
                failing.clone()
            } else {
                format!("{why}; {failing}")
            };
        }
        why
    };
    match &observed.update {
        Some(UpdateState::RollbackCompleted) if tally(observed).is_complete() => {
            return ServiceState::Converged
        }
        Some(UpdateState::RollbackPaused | UpdateState::Paused) => {
            return ServiceState::Paused { why: why() }
        }
        _ => {}
    }
    if elapsed >= timeout {
        let not_yet = format!(
            "not rolled back after {}s: {running}/{desired} tasks running",
            timeout.as_secs()
        );
        return timed_out(not_yet, &pending, failing.as_deref());
    }
    ServiceState::InProgress {
        running,
        desired,
        old_serving: 0,
        update: observed.update.clone(),
        pending,
        failing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_requested_rollback_succeeds_once_swarm_completed_it_and_its_tasks_run() {
        let minute = Duration::from_secs(60);
        let running = || {
            vec![
                task("back", "running", "running", true),
                task("newer", "shutdown", "shutdown", false),
            ]
        };
        let done = observed(Some("rollback_completed"), running());
        assert_eq!(
            requested_rollback(&done, Duration::from_secs(3), minute),
            ServiceState::Converged
        );
        // Not yet started (the status before the request is the baseline), or started with
        // its task not running yet: wait.
        for o in [
            observed(None, running()),
            observed(
                Some("rollback_completed"),
                vec![task("back", "running", "starting", true)],
            ),
            observed(Some("rollback_started"), running()),
        ] {
            let state = requested_rollback(&o, Duration::from_secs(3), minute);
            assert!(!state.is_final(), "{o:?}: {state:?}");
        }
        let mut paused = observed(
            Some("rollback_paused"),
            vec![task("back", "running", "failed", true)],
        );
        paused.update_message =
            "update paused due to failure or early termination of task x".into();
        let state = requested_rollback(&paused, Duration::from_secs(3), minute);
        assert!(
            matches!(&state, ServiceState::Paused { why } if why.starts_with("update paused")),
            "{state:?}"
        );
        let stuck = observed(Some("rollback_started"), running());
        let state = requested_rollback(&stuck, minute, minute);
        assert!(
            matches!(&state, ServiceState::TimedOut { why } if why.starts_with("not rolled back after 60s")),
            "{state:?}"
        );
    }

    fn task(id: &str, desired: &str, state: &str, current: bool) -> ObservedTask {
        ObservedTask {
            id: id.to_string(),
            slot: Some(1),
            desired_state: desired.into(),
            state: state.into(),
            err: String::new(),
            message: String::new(),
            timestamp: None,
            created_at: None,
            exit_code: None,
            current,
            oom_killed: false,
            oom_unknown: false,
            memory_limit_bytes: None,
        }
    }

    fn follow(elapsed: u64) -> Follow {
        Follow {
            elapsed: Duration::from_secs(elapsed),
            timeout: Duration::from_secs(60),
            max_failed_tasks: DEFAULT_MAX_FAILED_TASKS,
            monitor: None,
        }
    }

    fn observed(update: Option<&str>, tasks: Vec<ObservedTask>) -> ObservedService {
        ObservedService {
            update: update.map(UpdateState::parse),
            update_message: String::new(),
            update_started_at: None,
            mode: ServiceMode::Replicated { replicas: 1 },
            tasks,
        }
    }

    #[test]
    fn a_completed_update_with_its_task_running_converges() {
        let o = observed(
            Some("completed"),
            vec![
                task("new", "running", "running", true),
                task("old", "shutdown", "shutdown", false),
            ],
        );
        assert_eq!(assess(&o, &follow(3)), ServiceState::Converged);
        assert!(converged(&o));
    }

    #[test]
    fn old_tasks_still_running_mean_in_progress_even_without_an_update_status() {
        // Right after the update is posted the engine clears the status; the old task runs on.
        let o = observed(None, vec![task("old", "running", "running", false)]);
        assert!(matches!(
            assess(&o, &follow(0)),
            ServiceState::InProgress {
                running: 0,
                desired: 1,
                ..
            }
        ));
        assert!(!converged(&o));
    }

    #[test]
    fn with_start_first_the_old_tasks_are_said_to_serve() {
        let o = observed(
            Some("updating"),
            vec![
                task("new1", "running", "starting", true),
                task("new2", "running", "starting", true),
                task("old1", "running", "running", false),
                task("old2", "running", "running", false),
            ],
        );
        match assess(&o, &follow(0)) {
            ServiceState::InProgress {
                running,
                old_serving,
                ..
            } => assert_eq!((running, old_serving), (0, 2)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn swarm_states_map_to_outcomes() {
        let mut o = observed(Some("rollback_started"), vec![]);
        o.update_message = "update paused due to failure or early termination of task x".into();
        assert!(matches!(
            assess(&o, &follow(1)),
            ServiceState::RollingBack { .. }
        ));
        o.update = Some(UpdateState::RollbackCompleted);
        let state = assess(&o, &follow(1));
        assert!(matches!(state, ServiceState::RolledBack { .. }));
        assert!(state.why().unwrap().contains("early termination"));
        o.update = Some(UpdateState::Paused);
        assert!(matches!(
            assess(&o, &follow(1)),
            ServiceState::Paused { .. }
        ));
        o.update = Some(UpdateState::RollbackPaused);
        assert!(matches!(
            assess(&o, &follow(1)),
            ServiceState::Paused { .. }
        ));
    }

    #[test]
    fn a_stuck_pending_task_times_out_with_its_reason() {
        let mut t = task("p", "running", "pending", true);
        t.err = "no suitable node (scheduling constraints not satisfied on 1 node)".into();
        let o = observed(Some("updating"), vec![t]);
        match assess(&o, &follow(10)) {
            ServiceState::InProgress { pending, .. } => {
                assert_eq!(pending, vec!["pending: no suitable node (scheduling constraints not satisfied on 1 node)"])
            }
            other => panic!("{other:?}"),
        }
        match assess(&o, &follow(60)) {
            ServiceState::TimedOut { why } => assert!(why.contains("no suitable node"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_new_service_that_keeps_failing_fails() {
        let mut tasks: Vec<ObservedTask> = (0..3)
            .map(|i| {
                let mut t = task(&format!("t{i}"), "shutdown", "failed", true);
                t.err = "task: non-zero exit (1)".into();
                t
            })
            .collect();
        tasks.push(task("t3", "running", "starting", true));
        let o = observed(None, tasks);
        match assess(&o, &follow(5)) {
            ServiceState::Failed { why } => assert!(why.contains("non-zero exit (1)"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_verdict_fails_at_the_first_failure() {
        let converged = ServiceState::Converged;
        let moving = assess(&observed(Some("updating"), vec![]), &follow(1));
        let failed = ServiceState::Paused { why: "x".into() };
        assert_eq!(verdict([&converged, &converged]), Verdict::Succeeded);
        assert_eq!(verdict([&converged, &moving]), Verdict::Wait);
        assert_eq!(verdict([&moving, &failed]), Verdict::Failed);
        assert_eq!(verdict([]), Verdict::Succeeded);
    }

    #[test]
    fn a_job_converges_when_its_completions_are_done() {
        let mut o = observed(
            None,
            vec![
                task("a", "complete", "complete", true),
                task("b", "complete", "running", true),
            ],
        );
        o.mode = ServiceMode::ReplicatedJob {
            max_concurrent: 1,
            total_completions: 2,
        };
        assert_eq!(
            tally(&o),
            Tally {
                running: 1,
                desired: 2,
                stale: 0,
                wanted: 2,
                old_serving: 0
            }
        );
        assert!(!converged(&o));
        o.tasks[1].state = TaskState::Complete;
        assert!(converged(&o));
        assert_eq!(assess(&o, &follow(1)), ServiceState::Converged);
    }

    #[test]
    fn a_global_service_waits_for_its_first_task() {
        let mut o = observed(None, vec![]);
        o.mode = ServiceMode::Global;
        assert_eq!(tally(&o).desired, 1);
        assert!(!converged(&o));
        o.tasks = vec![
            task("a", "running", "running", true),
            task("b", "running", "running", true),
        ];
        assert_eq!((tally(&o).running, tally(&o).desired), (2, 2));
        assert!(converged(&o));
    }

    #[test]
    fn an_update_in_flight_or_unknown_is_not_converged() {
        let running = vec![task("a", "running", "running", true)];
        assert!(converged(&observed(None, running.clone())));
        assert!(converged(&observed(
            Some("rollback_completed"),
            running.clone()
        )));
        assert!(!converged(&observed(Some("updating"), running.clone())));
        assert!(!converged(&observed(Some("paused"), running.clone())));
        assert!(!converged(&observed(Some("hibernating"), running)));
    }

    #[test]
    fn an_observation_reads_the_service_and_leaves_out_old_news() {
        let spec = json!({
            "Name": "web",
            "Mode": {"Replicated": {"Replicas": 2}},
            "TaskTemplate": {"ContainerSpec": {"Image": "app:2"}, "ForceUpdate": 0, "Runtime": "container"}
        });
        let status = |state: &str, second: i64| UpdateStatus {
            state: state.into(),
            started_at: Some(Timestamp::from_second(second).unwrap()),
            completed_at: None,
            message: "m".into(),
        };
        let service =
            Service::new("s".into(), 3, spec, None, Some(status("completed", 100))).unwrap();
        let engine_task = |id: &str, image: &str, second: i64| Task {
            id: id.into(),
            desired_state: TaskState::Running,
            state: TaskState::Running,
            timestamp: Some(Timestamp::from_second(second).unwrap()),
            spec: json!({"ContainerSpec": {"Image": image}, "ForceUpdate": 0}),
            ..Task::default()
        };
        let old = engine_task("old", "app:1", 10);
        let new = engine_task("new", "app:2", 20);
        let o = observe(
            &service,
            &[&old, &new],
            &[],
            Some(&status("completed", 100)),
        );
        assert_eq!(
            o.update, None,
            "the status from before the change is old news"
        );
        assert_eq!(o.mode, ServiceMode::Replicated { replicas: 2 });
        let order: Vec<(&str, bool)> = o.tasks.iter().map(|t| (t.id.as_str(), t.current)).collect();
        assert_eq!(order, [("new", true), ("old", false)]);
        let o = observe(&service, &[&old, &new], &[], Some(&status("updating", 90)));
        assert_eq!(o.update, Some(UpdateState::Completed));
        assert_eq!(o.update_message, "m");
        let t = tally(&o);
        assert_eq!((t.running, t.desired, t.stale), (1, 2, 1));
    }

    #[test]
    fn a_placement_only_change_swarm_keeps_the_task_through_converges() {
        // Tryout 11 finding 3: the service's constraints changed, its task's node meets them,
        // Swarm keeps the task (no update status): 1/1 running, converged.
        let spec = json!({
            "Name": "web",
            "Mode": {"Replicated": {"Replicas": 1}},
            "TaskTemplate": {"ContainerSpec": {"Image": "app:1"}, "ForceUpdate": 0,
                "Placement": {"Constraints": ["node.labels.nosuch != x"]}, "Runtime": "container"}
        });
        let service = Service::new("s".into(), 4, spec, None, None).unwrap();
        let kept = Task {
            id: "kept".into(),
            node_id: "n1".into(),
            desired_state: TaskState::Running,
            state: TaskState::Running,
            spec: json!({"ContainerSpec": {"Image": "app:1"}, "ForceUpdate": 0}),
            ..Task::default()
        };
        let node = NodeFacts {
            id: "n1".into(),
            ..NodeFacts::default()
        };
        let o = observe(&service, &[&kept], std::slice::from_ref(&node), None);
        assert_eq!((tally(&o).running, tally(&o).desired), (1, 1));
        assert!(converged(&o));
        // A node the swarm no longer lists keeps nothing.
        let o = observe(&service, &[&kept], &[], None);
        assert_eq!((tally(&o).running, tally(&o).stale), (0, 1));
        assert!(!converged(&o));
    }

    #[test]
    fn a_failure_is_dated_by_the_engine() {
        let at = |s: i64| Some(Timestamp::from_second(s).unwrap());
        let mut failed = task("f", "shutdown", "rejected", true);
        failed.timestamp = at(50);
        let mut o = observed(Some("updating"), vec![failed]);
        assert_eq!(o.failure_reported_at(), at(50));
        o.update = Some(UpdateState::RollbackStarted);
        o.update_started_at = at(60);
        assert_eq!(o.failure_reported_at(), at(60));
        o.tasks.clear();
        o.update = Some(UpdateState::Updating);
        assert_eq!(o.failure_reported_at(), None);
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    /// A created service (made at `at(0)` by the manager's clock) looked at `now` seconds
    /// after the engine answered the create.
    fn created(now: i64) -> Follow {
        Follow {
            monitor: Some(Monitor {
                window: Duration::from_secs(5),
                changed_at: Some(at(0)),
                since_change: Duration::from_secs(now as u64),
            }),
            ..follow(now as u64)
        }
    }

    #[test]
    fn a_created_service_converges_only_after_its_task_ran_the_monitor_window() {
        let mut t = task("new", "running", "running", true);
        t.timestamp = Some(at(0));
        let o = observed(None, vec![t]);
        assert!(matches!(
            assess(&o, &created(1)),
            ServiceState::InProgress { running: 1, .. }
        ));
        assert_eq!(assess(&o, &created(5)), ServiceState::Converged);
        // Without a monitor window (an update Swarm's updater watches) it converges at once.
        assert_eq!(assess(&o, &follow(1)), ServiceState::Converged);
    }

    #[test]
    fn a_created_service_whose_task_exits_within_the_window_fails_naming_the_task() {
        // Finding 26: `sh -c "sleep 1; exit 1"` with restart condition none.
        let mut t = task("3f2a9c1b4d5e6f7a8b9c", "shutdown", "failed", true);
        t.created_at = Some(at(0));
        t.timestamp = Some(at(1));
        t.exit_code = Some(1);
        t.err = "task: non-zero exit (1)".to_string();
        let o = observed(None, vec![t]);
        let state = assess(&o, &created(2));
        assert_eq!(
            state.why(),
            Some(
                "task 1 (3f2a9c1b4d5e) exited 1 1.0 s after it was created, within the 5 s \
                 monitor window: task: non-zero exit (1)"
            )
        );
        assert!(matches!(state, ServiceState::Failed { .. }));
        assert_eq!(verdict([&state]), Verdict::Failed);
        // Without the window one failure is not yet enough (Swarm restarts such tasks).
        assert!(!assess(&o, &follow(2)).is_final());
    }

    #[test]
    fn a_task_the_oom_killer_killed_is_worded_as_the_task_page_words_it() {
        let mut t = task("3f2a9c1b4d5e6f7a8b9c", "shutdown", "failed", true);
        t.created_at = Some(at(0));
        t.timestamp = Some(at(1));
        t.exit_code = Some(137);
        t.err = "task: non-zero exit (137)".to_string();
        t.memory_limit_bytes = Some(16 << 20);
        // Until the shell learns the kill, the engine's words.
        let o = observed(None, vec![t.clone()]);
        let why = assess(&o, &created(2)).why().unwrap().to_owned();
        assert!(why.ends_with("window: task: non-zero exit (137)"), "{why}");
        t.oom_killed = true;
        let o = observed(None, vec![t.clone()]);
        let why = assess(&o, &created(2)).why().unwrap().to_owned();
        assert!(
            why.ends_with("window: exit 137 (killed: out of memory, limit 16 MiB)"),
            "{why}"
        );
        // What else the engine said is kept.
        t.err = "task: non-zero exit (137): container gone".to_string();
        t.memory_limit_bytes = None;
        assert_eq!(
            task_text(&t),
            "exit 137 (killed: out of memory): container gone"
        );
    }

    #[test]
    fn a_sigkill_on_a_node_nobody_could_ask_is_worded_as_a_possible_oom_kill() {
        let mut t = task("3f2a9c1b4d5e6f7a8b9c", "shutdown", "failed", true);
        t.exit_code = Some(137);
        t.err = "task: non-zero exit (137)".to_string();
        t.memory_limit_bytes = Some(16 << 20);
        t.oom_unknown = true;
        assert_eq!(
            task_text(&t),
            "exit 137 (SIGKILL: often an OOM kill at the 16 MiB memory limit; its container is \
             on a node this deploy's engine cannot inspect: that node's swarmkeeper agent counts \
             OOM kills, and the dashboard's task page says whether this was one)"
        );
        // Another exit is the engine's words: only a SIGKILL may be an OOM kill.
        t.exit_code = Some(1);
        t.err = "task: non-zero exit (1)".to_string();
        assert_eq!(task_text(&t), "task: non-zero exit (1)");
        // A kill the shell learned wins.
        t.exit_code = Some(137);
        t.err = "task: non-zero exit (137)".to_string();
        t.oom_killed = true;
        assert_eq!(
            task_text(&t),
            "exit 137 (killed: out of memory, limit 16 MiB)"
        );
    }

    #[test]
    fn a_waiting_task_is_worded_once_without_the_grpc_wrapper() {
        let pending = TaskState::Pending;
        assert_eq!(
            waiting_reason(
                &pending,
                "no suitable node (1 node)",
                "pending task scheduling"
            )
            .as_deref(),
            Some("pending: no suitable node (1 node)")
        );
        assert_eq!(
            waiting_reason(&TaskState::Preparing, "", "preparing").as_deref(),
            Some("preparing")
        );
        assert_eq!(
            waiting_reason(
                &TaskState::Preparing,
                "rpc error: code = Unknown desc = no such image: app:1",
                ""
            )
            .as_deref(),
            Some("preparing: no such image: app:1")
        );
        assert_eq!(waiting_reason(&pending, "", ""), None);
        assert_eq!(without_grpc_wrapper("plain words"), "plain words");
    }

    #[test]
    fn a_created_service_whose_task_completes_or_is_rejected_fails() {
        for state in ["complete", "rejected"] {
            let o = observed(None, vec![task("a", "shutdown", state, true)]);
            assert!(matches!(
                assess(&o, &created(3)),
                ServiceState::Failed { .. }
            ));
        }
        // A job's task is meant to complete.
        let mut o = observed(None, vec![task("a", "complete", "complete", true)]);
        o.mode = ServiceMode::ReplicatedJob {
            max_concurrent: 1,
            total_completions: 1,
        };
        assert!(!assess(&o, &created(3)).is_failure());
    }

    #[test]
    fn the_window_starts_when_the_task_ran_by_the_managers_clock() {
        // The task started running 2 s after the service was made: the window ends 7 s
        // after the create, not 5 s.
        let mut t = task("new", "running", "running", true);
        t.timestamp = Some(at(2));
        let o = observed(None, vec![t]);
        assert!(!assess(&o, &created(6)).is_final());
        assert_eq!(assess(&o, &created(7)), ServiceState::Converged);
        // Without the service's CreatedAt, its first task's CreatedAt stands in.
        let mut t = task("new", "running", "running", true);
        (t.created_at, t.timestamp) = (Some(at(1)), Some(at(2)));
        let o = observed(None, vec![t]);
        let look = |secs| Follow {
            monitor: Some(Monitor {
                window: Duration::from_secs(5),
                changed_at: None,
                since_change: Duration::from_secs(secs),
            }),
            ..follow(secs)
        };
        assert!(!assess(&o, &look(5)).is_final());
        assert_eq!(assess(&o, &look(6)), ServiceState::Converged);
    }

    #[test]
    fn a_skewed_clock_between_the_deploying_machine_and_the_manager_does_not_shift_the_window() {
        // Finding 26 on machines whose clocks disagree: the manager made the service and ran
        // its task 0.5 s later, by a clock an hour (or a year) away from the deploying
        // machine's. Only the manager's times are compared with each other, and the time
        // since the create is this machine's monotonic duration: 1 s after the create the
        // window still runs, whatever the skew, and it ends at 5.5 s.
        for skew in [-31_536_000, -3600, -10, 0, 10, 3600, 31_536_000] {
            let manager = |secs: f64| {
                Timestamp::from_second(1_700_000_000 + skew).unwrap()
                    + jiff::SignedDuration::from_secs_f64(secs)
            };
            let mut t = task("new", "running", "running", true);
            (t.created_at, t.timestamp) = (Some(manager(0.1)), Some(manager(0.5)));
            let o = observed(None, vec![t]);
            let look = |millis: u64| Follow {
                monitor: Some(Monitor {
                    window: Duration::from_secs(5),
                    changed_at: Some(manager(0.0)),
                    since_change: Duration::from_millis(millis),
                }),
                ..follow(millis / 1000)
            };
            for millis in [1000, 5000, 5499] {
                assert!(
                    matches!(assess(&o, &look(millis)), ServiceState::InProgress { .. }),
                    "skew {skew} s, {millis} ms after the create"
                );
            }
            assert_eq!(
                assess(&o, &look(5500)),
                ServiceState::Converged,
                "skew {skew}"
            );
            // The task crashes at 1 s: the deploy fails, whatever the skew.
            let mut crashed = task("new", "shutdown", "failed", true);
            (crashed.created_at, crashed.timestamp) = (Some(manager(0.1)), Some(manager(1.1)));
            crashed.exit_code = Some(1);
            let o = observed(None, vec![crashed]);
            assert!(assess(&o, &look(1500)).is_failure(), "skew {skew}");
        }
    }

    #[test]
    fn a_task_with_no_timestamp_has_not_run_the_window() {
        let o = observed(None, vec![task("a", "running", "running", true)]);
        assert!(!assess(&o, &created(30)).is_final());
        assert!(matches!(
            assess(&o, &created(60)),
            ServiceState::TimedOut { .. }
        ));
    }
}
