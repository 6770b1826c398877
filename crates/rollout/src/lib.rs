//! Rollout decisions, with no I/O: how one service's update is going ([`assess`]), whether the
//! whole deploy has succeeded, failed or must wait ([`verdict`]), what to do to every other
//! service when one fails ([`stack_rollback`]), the safe defaults swarmkeeper adds to a spec
//! ([`apply_safe_defaults`]), and whether a spec differs from the engine's at all
//! ([`spec_matches`]), so that a deploy that changes nothing touches nothing.
//!
//! The shell (the deploy crate) observes the engine, hands the observation over as plain data
//! and carries the decisions out.

use std::time::Duration;

use serde_json::Value;
use swarmkeeper_compose::spec::{Driver, ServiceSpec, UpdateConfig};
use swarmkeeper_compose::Duration as SpecDuration;

/// Failed attempts of a service without an update in progress (a new service) before it counts
/// as failed: Swarm itself restarts such tasks forever.
pub const DEFAULT_MAX_FAILED_TASKS: usize = 3;

/// The update state of a service (`UpdateStatus.State`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpdateState {
    Updating,
    Paused,
    Completed,
    RollbackStarted,
    RollbackPaused,
    RollbackCompleted,
    Other(String),
}

impl UpdateState {
    pub fn parse(state: &str) -> UpdateState {
        match state {
            "updating" => UpdateState::Updating,
            "paused" => UpdateState::Paused,
            "completed" => UpdateState::Completed,
            "rollback_started" => UpdateState::RollbackStarted,
            "rollback_paused" => UpdateState::RollbackPaused,
            "rollback_completed" => UpdateState::RollbackCompleted,
            other => UpdateState::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            UpdateState::Updating => "updating",
            UpdateState::Paused => "paused",
            UpdateState::Completed => "completed",
            UpdateState::RollbackStarted => "rollback_started",
            UpdateState::RollbackPaused => "rollback_paused",
            UpdateState::RollbackCompleted => "rollback_completed",
            UpdateState::Other(other) => other,
        }
    }
}

/// One task as the engine reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedTask {
    pub id: String,
    pub slot: Option<u64>,
    pub desired_state: String,
    pub state: String,
    /// `Status.Err`.
    pub err: String,
    pub message: String,
    /// The task runs the service's current spec (see [`task_is_current`]). [`ObservedService`]
    /// lists tasks newest first.
    pub current: bool,
}

/// A service as observed while following a deploy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedService {
    /// `None`: no update status, or the one that was there before this deploy's change.
    pub update: Option<UpdateState>,
    pub update_message: String,
    /// Replicas wanted; `None` for a global service (then every node's task counts).
    pub desired_replicas: Option<u64>,
    pub tasks: Vec<ObservedTask>,
}

/// How following one service is going.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Follow {
    /// Time since the change was applied.
    pub elapsed: Duration,
    pub timeout: Duration,
    /// Failed attempts that fail a service Swarm's updater is not watching.
    pub max_failed_tasks: usize,
}

/// What one service is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceState {
    InProgress {
        running: u64,
        desired: u64,
        /// The update state, when there is one.
        update: Option<String>,
        /// Why tasks wait: "no suitable node (…)", "port in use", …
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

const FAILED_TASK_STATES: &[&str] = &["failed", "rejected", "orphaned"];
const WAITING_TASK_STATES: &[&str] = &[
    "new",
    "allocated",
    "pending",
    "assigned",
    "accepted",
    "preparing",
    "ready",
    "starting",
];

/// A task's own failure in one line: `Err`, else `Message`.
fn task_reason(task: &ObservedTask) -> String {
    let text = if task.err.is_empty() {
        &task.message
    } else {
        &task.err
    };
    format!("task {} {}: {}", task.id_short(), task.state, text)
}

impl ObservedTask {
    fn id_short(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }
}

/// Where one service stands. Pure: the same observation gives the same answer.
pub fn assess(observed: &ObservedService, follow: &Follow) -> ServiceState {
    let live: Vec<&ObservedTask> = observed
        .tasks
        .iter()
        .filter(|t| t.desired_state == "running")
        .collect();
    let running = live
        .iter()
        .filter(|t| t.current && t.state == "running")
        .count() as u64;
    let desired = observed
        .desired_replicas
        .unwrap_or_else(|| live.len().max(1) as u64);
    let mut pending: Vec<String> = live
        .iter()
        .filter(|t| WAITING_TASK_STATES.contains(&t.state.as_str()))
        .filter_map(|t| {
            let reason = if t.err.is_empty() { &t.message } else { &t.err };
            // The engine often repeats the state in its message ("preparing: preparing").
            (!reason.is_empty()).then(|| {
                if reason.starts_with(t.state.as_str()) {
                    reason.clone()
                } else {
                    format!("{}: {reason}", t.state)
                }
            })
        })
        .collect();
    pending.sort();
    pending.dedup();
    let failed: Vec<&ObservedTask> = observed
        .tasks
        .iter()
        .filter(|t| t.current && FAILED_TASK_STATES.contains(&t.state.as_str()))
        .collect();
    // Once Swarm rolls back, the spec is the old one again and the failed tasks are no longer
    // current: take the newest failed task of any spec (tasks come newest first).
    let rolling_back = matches!(
        observed.update,
        Some(UpdateState::RollbackStarted | UpdateState::RollbackCompleted)
    );
    let failing = if rolling_back {
        observed
            .tasks
            .iter()
            .find(|t| FAILED_TASK_STATES.contains(&t.state.as_str()) && !t.err.is_empty())
    } else {
        failed.first().copied()
    }
    .map(task_reason);
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
    let updating = observed.update == Some(UpdateState::Updating);
    let settled = running >= desired && !live.iter().any(|t| !t.current);
    if !updating && settled && (desired > 0 || live.is_empty()) {
        return ServiceState::Converged;
    }
    // With no update in progress (a new service, or a change Swarm applies without its
    // updater), nothing but us watches the restarts.
    if !updating && failed.len() >= follow.max_failed_tasks.max(1) {
        return ServiceState::Failed { why: message() };
    }
    if follow.elapsed >= follow.timeout {
        let mut why = format!(
            "not converged after {}s: {running}/{desired} tasks running",
            follow.timeout.as_secs()
        );
        if !pending.is_empty() {
            why.push_str(&format!("; pending: {}", pending.join("; ")));
        }
        if let Some(failing) = &failing {
            why.push_str(&format!("; last failure: {failing}"));
        }
        return ServiceState::TimedOut { why };
    }
    ServiceState::InProgress {
        running,
        desired,
        update: observed.update.as_ref().map(|u| u.as_str().to_string()),
        pending,
        failing,
    }
}

/// Whether a task runs the service's current `TaskTemplate`: its spec is a copy of the template
/// made when it was created (the engine leaves `Runtime` out of the task's copy).
pub fn task_is_current(task_spec: &Value, template: &Value) -> bool {
    let (Some(task), Some(template)) = (task_spec.as_object(), template.as_object()) else {
        return task_spec == template;
    };
    task.keys()
        .chain(template.keys())
        .filter(|key| key.as_str() != "Runtime")
        .all(|key| {
            spec_matches(
                task.get(key).unwrap_or(&Value::Null),
                template.get(key).unwrap_or(&Value::Null),
            )
        })
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

/// One service this deploy changed.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub service: String,
    /// The spec before this deploy; `None` when the deploy created the service.
    pub before: Option<Value>,
    pub state: ServiceState,
}

/// What to do to one service when the deploy fails.
#[derive(Clone, Debug, PartialEq)]
pub enum RollbackAction {
    /// Put the spec it had before this deploy back.
    Restore { service: String, spec: Value },
    /// The deploy created it: remove it.
    Remove { service: String },
    /// Swarm is already rolling it back to the spec before this deploy (its `PreviousSpec`).
    LeaveToSwarm { service: String },
}

/// Every service the deploy changed goes back to the spec it had before, the failed ones
/// included; services Swarm already rolls back are left to it.
pub fn stack_rollback(changes: &[Change]) -> Vec<RollbackAction> {
    changes
        .iter()
        .map(|change| {
            let service = change.service.clone();
            match (&change.state, &change.before) {
                (ServiceState::RollingBack { .. } | ServiceState::RolledBack { .. }, Some(_)) => {
                    RollbackAction::LeaveToSwarm { service }
                }
                (_, Some(spec)) => RollbackAction::Restore {
                    service,
                    spec: spec.clone(),
                },
                (_, None) => RollbackAction::Remove { service },
            }
        })
        .collect()
}

/// One safe default swarmkeeper applied, to be printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub service: String,
    pub setting: &'static str,
    pub value: String,
    pub why: &'static str,
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} = {} ({})",
            self.service, self.setting, self.value, self.why
        )
    }
}

/// Swarm's own defaults for a healthcheck the file leaves partly unset.
const HEALTH_INTERVAL: SpecDuration = SpecDuration::from_secs(30);
const HEALTH_TIMEOUT: SpecDuration = SpecDuration::from_secs(30);
const HEALTH_RETRIES: u64 = 3;

/// Adds the safe defaults the file does not set itself, and says which:
/// - update `failure_action: rollback` and rollback `failure_action: pause`;
/// - `order: start-first` for a replicated service without host-mode ports;
/// - a `monitor` long enough for the healthcheck to fail (interval × retries + timeout);
/// - `local` logging with `max-size: 20m` when the file names no log driver.
///
/// Idempotent: applied twice, the second time changes nothing and reports nothing.
pub fn apply_safe_defaults(spec: &mut ServiceSpec) -> Vec<Note> {
    let mut notes = Vec::new();
    let service = spec.name.clone();
    let mut note = |setting: &'static str, value: String, why: &'static str| {
        notes.push(Note {
            service: service.clone(),
            setting,
            value,
            why,
        })
    };
    let host_ports = spec
        .endpoint_spec
        .ports
        .iter()
        .any(|p| p.publish_mode == "host");
    let start_first = spec.mode.replicated.is_some() && !host_ports;
    let monitor = spec
        .task_template
        .container_spec
        .healthcheck
        .as_ref()
        .filter(|h| h.test.first().map(String::as_str) != Some("NONE"))
        .map(|h| {
            let or = |d: SpecDuration, default| if d == SpecDuration::ZERO { default } else { d };
            let retries = if h.retries == 0 {
                HEALTH_RETRIES
            } else {
                h.retries
            };
            or(h.interval, HEALTH_INTERVAL)
                .saturating_mul(retries)
                .saturating_add(or(h.timeout, HEALTH_TIMEOUT))
        });

    for (config, key, action) in [
        (&mut spec.update_config, "update_config", "rollback"),
        (&mut spec.rollback_config, "rollback_config", "pause"),
    ] {
        let config = config.get_or_insert_with(|| UpdateConfig {
            parallelism: 1,
            delay: SpecDuration::ZERO,
            failure_action: String::new(),
            monitor: SpecDuration::ZERO,
            max_failure_ratio: 0.0,
            order: String::new(),
        });
        if config.failure_action.is_empty() {
            config.failure_action = action.to_string();
            note(
                if key == "update_config" {
                    "update_config.failure_action"
                } else {
                    "rollback_config.failure_action"
                },
                action.to_string(),
                if key == "update_config" {
                    "a failed update goes back to the running version instead of leaving the service down"
                } else {
                    "a rollback that fails too stops for a human"
                },
            );
        }
        if config.order.is_empty() && start_first {
            config.order = "start-first".to_string();
            note(
                if key == "update_config" {
                    "update_config.order"
                } else {
                    "rollback_config.order"
                },
                "start-first".to_string(),
                "the old task keeps serving until its replacement runs",
            );
        }
        if config.monitor == SpecDuration::ZERO {
            if let Some(monitor) = monitor {
                config.monitor = monitor;
                note(
                    if key == "update_config" {
                        "update_config.monitor"
                    } else {
                        "rollback_config.monitor"
                    },
                    format!("{}s", monitor.as_nanos() as f64 / 1e9),
                    "long enough for the healthcheck to fail (interval × retries + timeout)",
                );
            }
        }
    }
    if spec.task_template.log_driver.is_none() {
        spec.task_template.log_driver = Some(Driver {
            name: "local".to_string(),
            options: [("max-size".to_string(), "20m".to_string())].into(),
        });
        note(
            "logging",
            "local, max-size 20m".to_string(),
            "bounded on disk and readable with `swarmkeeper logs`",
        );
    }
    notes
}

/// Whether the engine's spec `current` already is `desired`: every field of `desired` equals
/// the engine's, and every field only one side has is empty or a value the engine fills in
/// by itself (`Isolation: default`, `Runtime: container`, `Mode: vip`, …). Numbers compare by
/// value, lists in order.
pub fn spec_matches(desired: &Value, current: &Value) -> bool {
    match (desired, current) {
        (Value::Object(d), Value::Object(c)) => {
            d.iter().all(|(key, dv)| match c.get(key) {
                Some(cv) => spec_matches(dv, cv),
                None => is_default(key, dv),
            }) && c
                .iter()
                .all(|(key, cv)| d.contains_key(key) || is_default(key, cv))
        }
        (Value::Array(d), Value::Array(c)) => {
            d.len() == c.len() && d.iter().zip(c).all(|(d, c)| spec_matches(d, c))
        }
        (Value::Number(d), Value::Number(c)) => d.as_f64() == c.as_f64(),
        (Value::Null, other) | (other, Value::Null) => is_default("", other),
        (d, c) => d == c,
    }
}

/// Where `desired` and `current` first differ, as a path like `TaskTemplate.ContainerSpec.Env`;
/// `None` when [`spec_matches`] holds.
pub fn first_difference(desired: &Value, current: &Value) -> Option<String> {
    match (desired, current) {
        (Value::Object(d), Value::Object(c)) => {
            for key in d.keys().chain(c.keys()) {
                let (dv, cv) = (d.get(key), c.get(key));
                let differs = match (dv, cv) {
                    (Some(dv), Some(cv)) => {
                        if let Some(inner) = first_difference(dv, cv) {
                            return Some(if inner.is_empty() {
                                key.clone()
                            } else {
                                format!("{key}.{inner}")
                            });
                        }
                        false
                    }
                    (Some(v), None) | (None, Some(v)) => !is_default(key, v),
                    (None, None) => false,
                };
                if differs {
                    return Some(key.clone());
                }
            }
            None
        }
        _ => (!spec_matches(desired, current)).then(String::new),
    }
}

/// A file that does not say how many replicas a service runs leaves the current count alone,
/// as `docker stack deploy` does: a service scaled by hand keeps its scale across deploys.
pub fn inherit_replicas(desired: &mut Value, current: &Value) {
    let Some(replicated) = desired.pointer_mut("/Mode/Replicated") else {
        return;
    };
    let unset = replicated.get("Replicas").is_none_or(Value::is_null);
    if let (true, Some(count), Some(map)) = (
        unset,
        current.pointer("/Mode/Replicated/Replicas").cloned(),
        replicated.as_object_mut(),
    ) {
        map.insert("Replicas".to_string(), count);
    }
}

fn is_default(key: &str, value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        // A replicated service without `Replicas` runs one.
        Value::Number(n) => n.as_f64() == Some(0.0) || (key == "Replicas" && n.as_u64() == Some(1)),
        Value::String(s) => {
            s.is_empty()
                || matches!(
                    (key, s.as_str()),
                    ("Isolation", "default")
                        | ("Runtime", "container")
                        | ("Mode", "vip")
                        | ("Condition", "any")
                )
        }
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.iter().all(|(k, v)| is_default(k, v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_unset_replica_count_keeps_the_current_scale() {
        let current = json!({"Mode": {"Replicated": {"Replicas": 5}}});
        let mut desired = json!({"Mode": {"Replicated": {}}});
        inherit_replicas(&mut desired, &current);
        assert_eq!(desired, current);
        let mut explicit = json!({"Mode": {"Replicated": {"Replicas": 2}}});
        inherit_replicas(&mut explicit, &current);
        assert_eq!(explicit["Mode"]["Replicated"]["Replicas"], 2);
        let mut global = json!({"Mode": {"Global": {}}});
        inherit_replicas(&mut global, &current);
        assert_eq!(global, json!({"Mode": {"Global": {}}}));
    }

    fn task(id: &str, desired: &str, state: &str, current: bool) -> ObservedTask {
        ObservedTask {
            id: id.to_string(),
            slot: Some(1),
            desired_state: desired.to_string(),
            state: state.to_string(),
            err: String::new(),
            message: String::new(),
            current,
        }
    }

    fn follow(elapsed: u64) -> Follow {
        Follow {
            elapsed: Duration::from_secs(elapsed),
            timeout: Duration::from_secs(60),
            max_failed_tasks: DEFAULT_MAX_FAILED_TASKS,
        }
    }

    fn observed(update: Option<&str>, tasks: Vec<ObservedTask>) -> ObservedService {
        ObservedService {
            update: update.map(UpdateState::parse),
            update_message: String::new(),
            desired_replicas: Some(1),
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
    fn stack_rollback_restores_removes_or_leaves_to_swarm() {
        let changes = vec![
            Change {
                service: "a".into(),
                before: Some(json!({"Name": "a"})),
                state: ServiceState::RollingBack { why: "x".into() },
            },
            Change {
                service: "b".into(),
                before: Some(json!({"Name": "b"})),
                state: ServiceState::Converged,
            },
            Change {
                service: "c".into(),
                before: None,
                state: ServiceState::Converged,
            },
            Change {
                service: "d".into(),
                before: Some(json!({"Name": "d"})),
                state: ServiceState::TimedOut { why: "t".into() },
            },
        ];
        assert_eq!(
            stack_rollback(&changes),
            vec![
                RollbackAction::LeaveToSwarm {
                    service: "a".into()
                },
                RollbackAction::Restore {
                    service: "b".into(),
                    spec: json!({"Name": "b"})
                },
                RollbackAction::Remove {
                    service: "c".into()
                },
                RollbackAction::Restore {
                    service: "d".into(),
                    spec: json!({"Name": "d"})
                },
            ]
        );
    }

    #[test]
    fn the_engine_s_own_fields_do_not_make_a_difference() {
        let desired = json!({
            "Name": "s_web",
            "TaskTemplate": {"ContainerSpec": {"Image": "a:1", "Labels": {"x": "y"}}, "Resources": {}, "Placement": {}},
            "Mode": {"Replicated": {"Replicas": 1}},
            "EndpointSpec": {}
        });
        let current = json!({
            "Name": "s_web",
            "TaskTemplate": {"ContainerSpec": {"Image": "a:1", "Labels": {"x": "y"},
                "Privileges": {"CredentialSpec": null, "SELinuxContext": null}, "Isolation": "default"},
                "Resources": {}, "Placement": {}, "ForceUpdate": 0, "Runtime": "container"},
            "Mode": {"Replicated": {"Replicas": 1}},
            "EndpointSpec": {"Mode": "vip"}
        });
        assert!(spec_matches(&desired, &current));
        let mut changed = current.clone();
        changed["TaskTemplate"]["ContainerSpec"]["Image"] = json!("a:2");
        assert!(!spec_matches(&desired, &changed));
        let mut more = current.clone();
        more["TaskTemplate"]["ContainerSpec"]["Env"] = json!(["A=1"]);
        assert!(
            !spec_matches(&desired, &more),
            "a field removed from the file is a change"
        );
        assert_eq!(first_difference(&desired, &current), None);
        assert_eq!(
            first_difference(&desired, &changed).as_deref(),
            Some("TaskTemplate.ContainerSpec.Image")
        );
        assert_eq!(
            first_difference(&desired, &more).as_deref(),
            Some("TaskTemplate.ContainerSpec.Env")
        );
    }

    #[test]
    fn task_currency_ignores_the_runtime() {
        let template =
            json!({"ContainerSpec": {"Image": "a"}, "ForceUpdate": 0, "Runtime": "container"});
        assert!(task_is_current(
            &json!({"ContainerSpec": {"Image": "a"}, "ForceUpdate": 0}),
            &template
        ));
        assert!(!task_is_current(
            &json!({"ContainerSpec": {"Image": "b"}, "ForceUpdate": 0}),
            &template
        ));
        assert!(!task_is_current(
            &json!({"ContainerSpec": {"Image": "a"}, "ForceUpdate": 1}),
            &template
        ));
    }
}
