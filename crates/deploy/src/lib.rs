//! Stack deploys through the Engine API, all or nothing.
//!
//! [`deploy`] turns a compose [`StackSpec`] into engine objects the way `docker stack deploy`
//! does (same names, same `com.docker.stack.namespace` labels), adds the safe defaults of
//! [`swarmkeeper_rollout::apply_safe_defaults`], pins images to registry digests when it can,
//! leaves untouched every service whose spec would not change, follows every changed service
//! until it converges, and when one fails puts every service it changed back as it was. Every
//! run is a revision in the [`Store`]; [`rollback`] re-applies an older one the same way.
//!
//! The decisions are in the pure `rollout` crate; this is the shell that observes the engine
//! and carries them out. Progress goes to a callback, so the CLI and the web server can show it
//! their own way.

mod digest;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use jiff::Timestamp;
use serde_json::Value;
use swarmkeeper_compose::StackSpec;
use swarmkeeper_engine::{
    is_logs_unreadable, is_out_of_sequence, Engine, EngineError, LogOptions, Service, Task,
};
use swarmkeeper_rollout::{
    apply_safe_defaults, assess, first_difference, inherit_replicas, spec_matches, stack_rollback,
    task_is_current, verdict, Change, Follow, ObservedService, ObservedTask, RollbackAction,
    ServiceState, UpdateState, Verdict, DEFAULT_MAX_FAILED_TASKS,
};
use swarmkeeper_store::{FileDigest, ServiceRevision, Store, StoreError};

pub use digest::{base64, sha256_hex};

/// How a deploy behaves.
#[derive(Clone, Debug)]
pub struct Options {
    /// Give up on a service that has not converged after this long, and roll back.
    pub timeout: Duration,
    /// Add swarmkeeper's safe defaults where the file says nothing.
    pub safe_defaults: bool,
    /// Ask the registry for each image's digest and pin it.
    pub resolve_digests: bool,
    /// How often to look at the services besides the event stream.
    pub poll: Duration,
    pub max_failed_tasks: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            timeout: Duration::from_secs(600),
            safe_defaults: true,
            resolve_digests: true,
            poll: Duration::from_millis(200),
            max_failed_tasks: DEFAULT_MAX_FAILED_TASKS,
        }
    }
}

/// What the deploy reports while it runs.
#[derive(Clone, Debug)]
pub enum Progress<'a> {
    /// A safe default applied, or another remark.
    Note(&'a str),
    Warning(&'a str),
    /// What was done to a service: `create`, `update`, `unchanged`, `restore`, `remove`.
    Action {
        service: &'a str,
        action: &'a str,
    },
    /// A changed service's state, each time it changes.
    State {
        service: &'a str,
        state: &'a ServiceState,
    },
    /// A service failed; every changed service is being put back.
    StackRollback {
        reason: &'a str,
    },
}

/// Who and what a deploy records.
#[derive(Clone, Debug)]
pub struct Request {
    pub stack: String,
    pub by: String,
    pub files: Vec<FileDigest>,
}

/// What happened to one service.
#[derive(Clone, Debug)]
pub struct ServiceOutcome {
    pub service: String,
    /// `create`, `update`, `unchanged`.
    pub action: String,
    pub state: Option<ServiceState>,
}

/// Why a service failed, with its failing task's last log lines when they can be read.
#[derive(Clone, Debug)]
pub struct FailureReport {
    pub service: String,
    pub why: String,
    pub logs: Vec<String>,
    /// Set when the logs could not be read, with what to do about it.
    pub logs_note: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Outcome {
    /// The revision recorded, when there is a store.
    pub revision: Option<u64>,
    pub succeeded: bool,
    pub services: Vec<ServiceOutcome>,
    pub failures: Vec<FailureReport>,
    /// From the engine's report of the failure (the failed task's timestamp, else the moment
    /// swarmkeeper saw the state) to the first rollback request.
    pub rollback_reaction: Option<Duration>,
    /// Services put back after a failure and how they ended.
    pub rolled_back: Vec<(String, String)>,
}

impl Outcome {
    /// The one-line outcome stored in the history.
    pub fn label(&self) -> &'static str {
        if self.succeeded {
            if self.services.iter().all(|s| s.action == "unchanged") {
                "unchanged"
            } else {
                "succeeded"
            }
        } else if self.rolled_back.is_empty() {
            "failed"
        } else {
            "rolled back"
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stack or revision asked for cannot be deployed (a file, an unknown revision).
    #[error("{0}")]
    Input(String),
}

/// One service to bring to a spec.
struct Target {
    name: String,
    desired: Value,
}

/// One service this run changes.
struct Applied {
    name: String,
    action: &'static str,
    before: Option<Value>,
    after: Value,
    id: String,
    applied_at: Instant,
    /// The update status before the change, so that a stale one is not taken for news.
    baseline: Option<(String, Option<Timestamp>)>,
    state: ServiceState,
    failure_at: Option<Timestamp>,
}

/// Deploys `spec` as stack `request.stack`.
pub async fn deploy(
    engine: &Engine,
    store: Option<&Store>,
    request: &Request,
    mut spec: StackSpec,
    options: &Options,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Outcome, DeployError> {
    // Secrets and configs first: a changed file is refused before anything is created. Then
    // networks: service specs name them, and the engine stores their ids.
    let secrets = ensure_file_objects(engine, &spec.secrets, Kind::Secret, progress).await?;
    let configs = ensure_file_objects(engine, &spec.configs, Kind::Config, progress).await?;
    let mut networks: HashMap<String, String> = engine
        .list_networks(None)
        .await?
        .into_iter()
        .map(|n| (n.name, n.id))
        .collect();
    for name in &spec.external_networks {
        if !networks.contains_key(name) {
            return Err(DeployError::Input(format!(
                "network {name} is declared external but does not exist"
            )));
        }
    }
    for network in &spec.networks {
        if networks.contains_key(&network.name) {
            continue;
        }
        let body = serde_json::to_value(network).expect("a network spec serialises");
        let created = engine.create_network(&body).await?;
        progress(Progress::Action {
            service: &network.name,
            action: "create network",
        });
        networks.insert(network.name.clone(), created.id);
    }

    let mut digests: HashMap<String, Option<String>> = HashMap::new();
    let mut targets = Vec::new();
    for service in spec.services.values_mut() {
        if options.safe_defaults {
            for note in apply_safe_defaults(service) {
                progress(Progress::Note(&format!("safe default: {note}")));
            }
        }
        for secret in &mut service.task_template.container_spec.secrets {
            secret.secret_id = lookup(&secrets, &secret.secret_name, "secret")?;
        }
        for config in &mut service.task_template.container_spec.configs {
            config.config_id = lookup(&configs, &config.config_name, "config")?;
        }
        service.task_template.container_spec.link_credential_spec();
        if options.resolve_digests {
            let image = service.task_template.container_spec.image.clone();
            if !digests.contains_key(&image) {
                let pinned = pin(engine, &image, progress).await;
                digests.insert(image.clone(), pinned);
            }
            if let Some(Some(pinned)) = digests.get(&image) {
                service.task_template.container_spec.image = pinned.clone();
            }
        }
        let mut desired = serde_json::to_value(&*service).expect("a service spec serialises");
        if let Some(list) = desired
            .pointer_mut("/TaskTemplate/Networks")
            .and_then(Value::as_array_mut)
        {
            for attachment in list {
                let target = attachment["Target"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if let Some(id) = networks.get(&target) {
                    attachment["Target"] = Value::String(id.clone());
                }
            }
        }
        targets.push(Target {
            name: service.name.clone(),
            desired,
        });
    }
    run(engine, store, request, "deploy", targets, options, progress).await
}

/// Re-applies revision `to` of a stack (default: the last succeeded revision before the
/// newest succeeded one) with the same following and stack-wide safety as a deploy.
pub async fn rollback(
    engine: &Engine,
    store: &Store,
    request: &Request,
    to: Option<u64>,
    options: &Options,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Outcome, DeployError> {
    let stack = request.stack.as_str();
    let history = store.deploy_history(stack)?;
    let good = |r: &&swarmkeeper_store::DeployRecord| r.outcome == "succeeded";
    let record = match to {
        Some(revision) => history
            .iter()
            .find(|r| r.revision == revision)
            .ok_or_else(|| {
                DeployError::Input(format!("stack {stack} has no revision {revision}"))
            })?,
        None => history.iter().filter(good).nth(1).ok_or_else(|| {
            DeployError::Input(format!(
                "stack {stack} has no earlier succeeded revision to roll back to; see `swarmkeeper history {stack}`"
            ))
        })?,
    };
    // A revision's specs are those it deployed; services it left unchanged carry theirs too.
    let mut targets = Vec::new();
    for service in &record.services {
        let Some(after) = &service.after else {
            continue;
        };
        let desired: Value = serde_json::from_str(after).map_err(|e| {
            DeployError::Input(format!(
                "revision {} of {stack}: the spec of {} cannot be read: {e}",
                record.revision, service.service
            ))
        })?;
        targets.push(Target {
            name: service.service.clone(),
            desired,
        });
    }
    progress(Progress::Note(&format!(
        "re-applying revision {} of {stack} ({}, {} by {})",
        record.revision, record.outcome, record.started_at, record.by
    )));
    // Removing a service is not undone by a later rollback: say so and leave it to the
    // operator rather than delete what the revision does not mention.
    for service in engine.list_services(Some(stack)).await? {
        if !targets.iter().any(|t| t.name == service.name) {
            progress(Progress::Warning(&format!(
                "{} is not part of revision {}: it stays as it is (`docker service rm {}` \
                 removes it)",
                service.name, record.revision, service.name
            )));
        }
    }
    run(
        engine,
        Some(store),
        request,
        "rollback",
        targets,
        options,
        progress,
    )
    .await
}

async fn run(
    engine: &Engine,
    store: Option<&Store>,
    request: &Request,
    kind: &str,
    targets: Vec<Target>,
    options: &Options,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Outcome, DeployError> {
    let stack = request.stack.as_str();
    let current: HashMap<String, Service> = engine
        .list_services(Some(stack))
        .await?
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    let revision = match store {
        Some(store) => {
            Some(store.begin_deploy(stack, &request.by, kind, &request.files, Timestamp::now())?)
        }
        None => None,
    };
    let mut unchanged = Vec::new();
    let mut applied: Vec<Applied> = Vec::new();
    let mut apply_error = None;
    for mut target in targets {
        if let Some(service) = current.get(&target.name) {
            inherit_replicas(&mut target.desired, &service.spec);
        }
        let result = match current.get(&target.name) {
            Some(service) if spec_matches(&target.desired, &service.spec) => {
                progress(Progress::Action {
                    service: &target.name,
                    action: "unchanged",
                });
                unchanged.push((target.name, target.desired));
                continue;
            }
            Some(service) => {
                let what = first_difference(&target.desired, &service.spec).unwrap_or_default();
                progress(Progress::Note(&format!("{}: changes {what}", target.name)));
                update_to(engine, service.clone(), &target.desired, progress)
                    .await
                    .map(|(before, service)| Applied {
                        name: target.name.clone(),
                        action: "update",
                        before: Some(before),
                        after: target.desired.clone(),
                        id: service.id.clone(),
                        applied_at: Instant::now(),
                        baseline: service
                            .update_status
                            .as_ref()
                            .map(|u| (u.state.clone(), u.started_at)),
                        state: in_progress(),
                        failure_at: None,
                    })
            }
            None => engine.create_service(&target.desired).await.map(|created| {
                for warning in &created.warnings {
                    progress(Progress::Warning(&format!("{}: {warning}", target.name)));
                }
                Applied {
                    name: target.name.clone(),
                    action: "create",
                    before: None,
                    after: target.desired.clone(),
                    id: created.id,
                    applied_at: Instant::now(),
                    baseline: None,
                    state: in_progress(),
                    failure_at: None,
                }
            }),
        };
        match result {
            Ok(change) => {
                progress(Progress::Action {
                    service: &change.name,
                    action: change.action,
                });
                applied.push(change);
            }
            Err(error) => {
                apply_error = Some((target.name, error));
                break;
            }
        }
    }

    let mut outcome = Outcome {
        revision,
        succeeded: false,
        services: Vec::new(),
        failures: Vec::new(),
        rollback_reaction: None,
        rolled_back: Vec::new(),
    };
    let failed = match apply_error {
        Some((name, error)) => {
            let why = format!("the engine refused the change: {error}");
            let state = ServiceState::Failed { why: why.clone() };
            outcome.failures.push(FailureReport {
                service: name.clone(),
                why,
                logs: Vec::new(),
                logs_note: None,
            });
            if applied.is_empty() {
                // Nothing was changed: nothing to put back.
                finish(
                    store, stack, revision, &outcome, &applied, &unchanged, "failed",
                )?;
                return Err(DeployError::Engine(error));
            }
            progress(Progress::State {
                service: &name,
                state: &state,
            });
            true
        }
        None => follow(engine, &mut applied, options, progress).await? == Verdict::Failed,
    };
    if failed {
        let requested_at = Timestamp::now();
        let reasons: Vec<String> = applied
            .iter()
            .filter(|a| a.state.is_failure())
            .map(|a| format!("{}: {}", a.name, a.state.why().unwrap_or_default()))
            .chain(
                outcome
                    .failures
                    .iter()
                    .map(|f| format!("{}: {}", f.service, f.why)),
            )
            .collect();
        let reason = reasons.join("; ");
        progress(Progress::StackRollback { reason: &reason });
        let changes: Vec<Change> = applied
            .iter()
            .map(|a| Change {
                service: a.name.clone(),
                before: a.before.clone(),
                state: a.state.clone(),
            })
            .collect();
        let actions = stack_rollback(&changes);
        // The failure that triggered the rollback: the engine's time of the failed task, when
        // known, else when it was seen.
        outcome.rollback_reaction = applied
            .iter()
            .filter_map(|a| a.failure_at)
            .max()
            .and_then(|at| (requested_at - at).try_into().ok())
            .or(Some(Duration::ZERO));
        for change in applied.iter().filter(|a| a.state.is_failure()) {
            outcome.failures.push(failure_report(engine, change).await);
        }
        outcome.rolled_back = put_back(engine, &applied, actions, options, progress).await?;
    } else {
        outcome.succeeded = true;
    }
    outcome.services = applied
        .iter()
        .map(|a| ServiceOutcome {
            service: a.name.clone(),
            action: a.action.to_string(),
            state: Some(a.state.clone()),
        })
        .chain(unchanged.iter().map(|(name, _)| ServiceOutcome {
            service: name.clone(),
            action: "unchanged".to_string(),
            state: None,
        }))
        .collect();
    let label = outcome.label();
    finish(
        store, stack, revision, &outcome, &applied, &unchanged, label,
    )?;
    Ok(outcome)
}

fn in_progress() -> ServiceState {
    ServiceState::InProgress {
        running: 0,
        desired: 0,
        update: None,
        pending: Vec::new(),
        failing: None,
    }
}

fn finish(
    store: Option<&Store>,
    stack: &str,
    revision: Option<u64>,
    outcome: &Outcome,
    applied: &[Applied],
    unchanged: &[(String, Value)],
    label: &str,
) -> Result<(), DeployError> {
    let (Some(store), Some(revision)) = (store, revision) else {
        return Ok(());
    };
    let mut services: Vec<ServiceRevision> = applied
        .iter()
        .map(|a| ServiceRevision {
            service: a.name.clone(),
            before: a.before.as_ref().map(Value::to_string),
            after: Some(a.after.to_string()),
            outcome: a.state.label().to_string(),
        })
        .collect();
    services.extend(unchanged.iter().map(|(name, spec)| ServiceRevision {
        service: name.clone(),
        before: Some(spec.to_string()),
        after: Some(spec.to_string()),
        outcome: "unchanged".to_string(),
    }));
    let summary = outcome
        .failures
        .iter()
        .map(|f| format!("{}: {}", f.service, f.why))
        .collect::<Vec<_>>()
        .join("; ");
    store.finish_deploy(
        stack,
        revision,
        label,
        &summary,
        &services,
        Timestamp::now(),
    )?;
    Ok(())
}

/// Updates a service to `desired`, retrying "update out of sequence" with a fresh inspect.
/// Returns the spec it had before (the one actually replaced) and the service as inspected.
async fn update_to(
    engine: &Engine,
    mut service: Service,
    desired: &Value,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<(Value, Service), EngineError> {
    let first_seen = service.spec.clone();
    for attempt in 0.. {
        match engine
            .update_service(&service.id, service.version, desired)
            .await
        {
            Ok(warnings) => {
                for warning in &warnings {
                    progress(Progress::Warning(&format!("{}: {warning}", service.name)));
                }
                return Ok((service.spec.clone(), service));
            }
            Err(e) if is_out_of_sequence(&e) && attempt < 5 => {
                service = engine.inspect_service(&service.id).await?;
                if !spec_matches(&first_seen, &service.spec) {
                    progress(Progress::Warning(&format!(
                        "{}: changed by someone else while this deploy ran (now version {}); \
                         that change is what this deploy replaces, and what a rollback restores",
                        service.name, service.version
                    )));
                }
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!("the loop returns")
}

/// Follows every applied service until the verdict is not `Wait`.
async fn follow(
    engine: &Engine,
    applied: &mut [Applied],
    options: &Options,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Verdict, EngineError> {
    let mut events = engine.service_events(None);
    loop {
        let looks = futures_util::future::join_all(
            applied
                .iter()
                .filter(|a| !a.state.is_final())
                .map(|a| observe(engine, a, options)),
        )
        .await;
        let mut looks = looks.into_iter();
        for change in applied.iter_mut().filter(|a| !a.state.is_final()) {
            let (state, failure_at) = looks.next().expect("one look per service")?;
            if state != change.state {
                progress(Progress::State {
                    service: &change.name,
                    state: &state,
                });
                if state.is_failure() {
                    change.failure_at = Some(failure_at.unwrap_or_else(Timestamp::now));
                }
                change.state = state;
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
        }
    }
}

/// One look at a service: its state and, when a new task failed, the engine's time of that.
async fn observe(
    engine: &Engine,
    change: &Applied,
    options: &Options,
) -> Result<(ServiceState, Option<Timestamp>), EngineError> {
    let service = match engine.inspect_service(&change.id).await {
        Ok(service) => service,
        Err(e) if e.is_not_found() => {
            return Ok((
                ServiceState::Failed {
                    why: "the service was removed while the deploy followed it".to_string(),
                },
                None,
            ))
        }
        Err(e) => return Err(e),
    };
    let tasks = engine.list_tasks(&change.id).await?;
    let (observed, failure_at) = observation(&service, &tasks, change.baseline.as_ref());
    let follow = Follow {
        elapsed: change.applied_at.elapsed(),
        timeout: options.timeout,
        max_failed_tasks: options.max_failed_tasks,
    };
    Ok((assess(&observed, &follow), failure_at))
}

fn observation(
    service: &Service,
    tasks: &[Task],
    baseline: Option<&(String, Option<Timestamp>)>,
) -> (ObservedService, Option<Timestamp>) {
    let template = service
        .spec
        .get("TaskTemplate")
        .cloned()
        .unwrap_or(Value::Null);
    let fresh = service.update_status.as_ref().filter(|u| {
        baseline.is_none_or(|(state, started)| *state != u.state || *started != u.started_at)
    });
    let desired_replicas = service.spec.pointer("/Mode/Replicated").map(|replicated| {
        replicated
            .get("Replicas")
            .and_then(Value::as_u64)
            .unwrap_or(1)
    });
    let mut tasks: Vec<&Task> = tasks.iter().collect();
    tasks.sort_by_key(|t| std::cmp::Reverse(t.timestamp));
    let observed_tasks: Vec<ObservedTask> = tasks
        .iter()
        .map(|t| ObservedTask {
            id: t.id.clone(),
            slot: t.slot,
            desired_state: t.desired_state.clone(),
            state: t.state.clone(),
            err: t.err.clone(),
            message: t.message.clone(),
            current: task_is_current(&t.spec, &template),
        })
        .collect();
    let failure_at = tasks
        .iter()
        .zip(&observed_tasks)
        .filter(|(_, o)| o.current && matches!(o.state.as_str(), "failed" | "rejected"))
        .filter_map(|(t, _)| t.timestamp)
        .max();
    let failure_at = match fresh.map(|u| UpdateState::parse(&u.state)) {
        // Swarm decided: its status changed when it started the rollback or paused.
        Some(UpdateState::RollbackStarted | UpdateState::Paused | UpdateState::RollbackPaused) => {
            fresh.and_then(|u| u.started_at).max(failure_at)
        }
        _ => failure_at,
    };
    (
        ObservedService {
            update: fresh.map(|u| UpdateState::parse(&u.state)),
            update_message: fresh.map(|u| u.message.clone()).unwrap_or_default(),
            desired_replicas,
            tasks: observed_tasks,
        },
        failure_at,
    )
}

/// Carries out the stack rollback and follows it; returns each service and how it ended.
async fn put_back(
    engine: &Engine,
    applied: &[Applied],
    actions: Vec<RollbackAction>,
    options: &Options,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Vec<(String, String)>, EngineError> {
    let mut following: Vec<Applied> = Vec::new();
    let mut ended = Vec::new();
    for action in actions {
        match action {
            RollbackAction::Remove { service } => {
                let change = applied.iter().find(|a| a.name == service).expect("known");
                engine.remove_service(&change.id).await?;
                progress(Progress::Action {
                    service: &service,
                    action: "remove",
                });
                ended.push((service, "removed".to_string()));
            }
            RollbackAction::Restore { service, spec } => {
                let change = applied.iter().find(|a| a.name == service).expect("known");
                let current = engine.inspect_service(&change.id).await?;
                let baseline = current
                    .update_status
                    .as_ref()
                    .map(|u| (u.state.clone(), u.started_at));
                let (_, current) = update_to(engine, current, &spec, progress).await?;
                progress(Progress::Action {
                    service: &service,
                    action: "restore",
                });
                following.push(Applied {
                    name: service,
                    action: "restore",
                    before: None,
                    after: spec,
                    id: current.id,
                    applied_at: Instant::now(),
                    baseline,
                    state: in_progress(),
                    failure_at: None,
                });
            }
            RollbackAction::LeaveToSwarm { service } => {
                let change = applied.iter().find(|a| a.name == service).expect("known");
                if matches!(change.state, ServiceState::RolledBack { .. }) {
                    ended.push((service, "rolled back by Swarm".to_string()));
                    continue;
                }
                // Follow Swarm's own rollback until it completes.
                let current = engine.inspect_service(&change.id).await?;
                following.push(Applied {
                    name: service,
                    action: "swarm rollback",
                    before: None,
                    after: current.spec.clone(),
                    id: current.id,
                    applied_at: Instant::now(),
                    baseline: None,
                    state: in_progress(),
                    failure_at: None,
                });
            }
        }
    }
    if !following.is_empty() {
        follow_rollback(engine, &mut following, options, progress).await?;
    }
    ended.extend(following.into_iter().map(|f| {
        let end = match &f.state {
            ServiceState::Converged | ServiceState::RolledBack { .. } => "restored".to_string(),
            other => format!("{}: {}", other.label(), other.why().unwrap_or_default()),
        };
        (f.name, end)
    }));
    Ok(ended)
}

/// Follows services being put back: each until it converges or fails on its own.
async fn follow_rollback(
    engine: &Engine,
    following: &mut [Applied],
    options: &Options,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<(), EngineError> {
    loop {
        for change in following.iter_mut().filter(|a| !a.state.is_final()) {
            let (state, _) = observe(engine, change, options).await?;
            // Swarm's own rollback shows as rolling back until it completes.
            let state = match state {
                ServiceState::RollingBack { .. } => in_progress(),
                other => other,
            };
            if state != change.state {
                progress(Progress::State {
                    service: &change.name,
                    state: &state,
                });
                change.state = state;
            }
        }
        if following.iter().all(|a| a.state.is_final()) {
            return Ok(());
        }
        tokio::time::sleep(options.poll).await;
    }
}

/// The failing task's error and its last log lines.
async fn failure_report(engine: &Engine, change: &Applied) -> FailureReport {
    let why = change.state.why().unwrap_or_default().to_string();
    let mut report = FailureReport {
        service: change.name.clone(),
        why,
        logs: Vec::new(),
        logs_note: None,
    };
    let options = LogOptions {
        follow: false,
        since: None,
        tail: Some(10),
        timestamps: false,
    };
    let logs = tokio::time::timeout(Duration::from_secs(5), async {
        let mut stream = engine.service_logs(&change.id, &options).await?;
        let mut lines = Vec::new();
        while let Some(line) = stream.next().await {
            lines.push(line?.text);
        }
        Ok::<_, EngineError>(lines)
    })
    .await;
    match logs {
        Ok(Ok(lines)) => {
            let skip = lines.len().saturating_sub(10);
            report.logs = lines.into_iter().skip(skip).collect();
        }
        Ok(Err(e)) if is_logs_unreadable(&e) => report.logs_note = Some(
            "its log driver keeps nothing readable; use `logging: {driver: local}` to read logs"
                .to_string(),
        ),
        Ok(Err(e)) => report.logs_note = Some(format!("logs could not be read: {e}")),
        Err(_) => report.logs_note = Some("logs did not come within 5s".to_string()),
    }
    report
}

/// `image:tag@sha256:…` from the registry, as the docker CLI pins it; `None` (with a warning)
/// when the registry cannot say.
async fn pin(
    engine: &Engine,
    image: &str,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Option<String> {
    if image.contains('@') {
        return Some(image.to_string());
    }
    match engine.distribution_digest(image).await {
        Ok(digest) => {
            let last = image.rsplit('/').next().unwrap_or(image);
            let tagged = if last.contains(':') {
                image.to_string()
            } else {
                format!("{image}:latest")
            };
            Some(format!("{tagged}@{digest}"))
        }
        Err(e) => {
            let why = match &e {
                EngineError::Api { message, .. } => message.clone(),
                other => other.to_string(),
            };
            progress(Progress::Warning(&format!(
                "image {image}: its digest could not be resolved ({why}); nodes may run different images under this tag"
            )));
            None
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Secret,
    Config,
}

/// Label on the secrets and configs swarmkeeper creates: the SHA-256 of their content, so that a
/// changed file is noticed (Swarm cannot change a secret's or config's data in place).
pub const LABEL_DATA_SHA256: &str = "swarmkeeper.data-sha256";

/// Creates the stack's secrets or configs that do not exist yet; returns every one's id by
/// name (external ones included). A file whose content differs from the object of the same name
/// stops the deploy before anything is created: deploying would silently keep the old content.
async fn ensure_file_objects(
    engine: &Engine,
    wanted: &[swarmkeeper_compose::spec::FileObjectCreate],
    kind: Kind,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<BTreeMap<String, String>, DeployError> {
    let existing = match kind {
        Kind::Secret => engine.list_secrets(None).await?,
        Kind::Config => engine.list_configs(None).await?,
    };
    let word = match kind {
        Kind::Secret => "secret",
        Kind::Config => "config",
    };
    let mut to_create = Vec::new();
    for object in wanted {
        let data = if object.file.is_empty() {
            None
        } else {
            Some(std::fs::read(&object.file).map_err(|e| {
                DeployError::Input(format!("{word} {}: {}: {e}", object.name, object.file))
            })?)
        };
        let digest = data.as_deref().map(sha256_hex);
        match existing.iter().find(|o| o.name == object.name) {
            Some(current) => match (current.labels.get(LABEL_DATA_SHA256), &digest) {
                (Some(have), Some(want)) if have != want => {
                    return Err(DeployError::Input(format!(
                        "{word} {} exists with other content than {}, and Swarm cannot change \
                         a {word} in place: give the changed {word} a new name in the file \
                         (for example `name: {}_v2`)",
                        object.name, object.file, object.name
                    )));
                }
                (None, Some(_)) => progress(Progress::Warning(&format!(
                    "{word} {} was not created by swarmkeeper: whether {} still matches it \
                     cannot be checked",
                    object.name, object.file
                ))),
                _ => {}
            },
            None => to_create.push((object, data, digest)),
        }
    }
    let mut ids: BTreeMap<String, String> = existing.into_iter().map(|o| (o.name, o.id)).collect();
    for (object, data, digest) in to_create {
        let mut body = serde_json::to_value(object).expect("a file object serialises");
        if let (Some(data), Some(digest)) = (data, digest) {
            body["Data"] = Value::String(base64(&data));
            body["Labels"][LABEL_DATA_SHA256] = Value::String(digest);
        }
        let created = match kind {
            Kind::Secret => engine.create_secret(&body).await?,
            Kind::Config => engine.create_config(&body).await?,
        };
        progress(Progress::Action {
            service: &object.name,
            action: match kind {
                Kind::Secret => "create secret",
                Kind::Config => "create config",
            },
        });
        ids.insert(object.name.clone(), created.id);
    }
    Ok(ids)
}

fn lookup(ids: &BTreeMap<String, String>, name: &str, word: &str) -> Result<String, DeployError> {
    ids.get(name)
        .cloned()
        .ok_or_else(|| DeployError::Input(format!("{word} {name} does not exist")))
}
