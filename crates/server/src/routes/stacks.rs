//! `/stacks`: stacks (from the services' `com.docker.stack.namespace` label, like
//! `docker stack ls`), a stack's services and deploy history, a deploy from a pasted or
//! uploaded stack file (lint first), and a roll back to a recorded revision. Deploys and
//! rollbacks run `swarmkeeper_deploy`, the same code as `swarmkeeper deploy`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::Json;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use swarmkeeper_auth::Action;
use swarmkeeper_compose::{Environment, SourceFile, Stack, StackSpec};
use swarmkeeper_deploy::{
    stack_objects, DeployError, DeployOutcome, DeployRecord, History, Outcome, Request,
    Stack as DeployStack, StackObjects,
};
use swarmkeeper_engine::EngineError;
use swarmkeeper_lint::{Finding, Severity};
use swarmkeeper_rollout::cured_findings;
use swarmkeeper_store::FileDigest;

use super::jobs::follow;
use super::objects::history_link;
use crate::access::Caller;
use crate::deploys::{run_deploy, run_deploy_followed, swarm_carries_on};
use crate::error::AppError;
use crate::jobs::{Job, JobEnd, Link};
use crate::page::url_encode;
use crate::respond::{optional_number, Format, Input, Reply};
use crate::routes::services::{load_services, RemovalQuery};
use crate::state::AppState;
use crate::views::own::{check_removal, own_part, removal_warning, OwnPart};
use crate::views::services::ServiceRow;
use crate::views::stack_diff::{stack_diff, StackDiff};
use crate::views::volumes::stack_volumes;

#[derive(Serialize)]
pub struct StackRow {
    pub name: String,
    pub services: usize,
    pub not_converged: usize,
    pub rolled_back: usize,
    /// The newest recorded deploy of the stack, when swarmkeeper deployed it.
    pub last_deploy: Option<DeployRow>,
}

#[derive(Clone, Serialize)]
pub struct DeployRow {
    pub revision: u64,
    pub kind: String,
    /// Who and what in one phrase (`alice`, `edited in the dashboard by alice`), as the
    /// history said it before it kept them apart.
    pub by: String,
    /// Who made the revision: a user, `ci`, `auto-deploy`.
    pub who: String,
    /// What they did, for a change other than a deploy or rollback of files (`edited in the
    /// dashboard`); null otherwise.
    pub what: Option<String>,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub outcome: String,
    pub summary: String,
    /// Services the deploy created or changed.
    pub changed: Vec<String>,
    /// The stack runs this revision now (the newest succeeded one, when the services still
    /// have its specs): rolling back to it would change nothing. Shown on the stack's page
    /// only; absent when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub current: bool,
    /// A rollback may re-apply this revision now (it succeeded and the stack does not run it:
    /// `swarmkeeper_deploy::unfit_target`, the rule the API and the CLI refuse others by): the
    /// stack page offers "Roll back to this" on it. Shown on the stack's page only; absent
    /// when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub can_roll_back_to: bool,
}

impl DeployRow {
    /// Who made the revision and what they did, as the stacks list says it ("by alice",
    /// "edited in the dashboard by alice").
    pub fn changed_by(&self) -> String {
        crate::page::changed_by(&self.who, self.what.as_deref())
    }

    /// The stack page's Summary: what a dashboard change did, then the recorded summary.
    pub fn summary_line(&self) -> String {
        swarmkeeper_store::what_and_summary(self.what.as_deref(), &self.summary)
    }
}

#[derive(Serialize)]
pub struct StacksView {
    pub stacks: Vec<StackRow>,
}

/// The stack's revisions in the swarm's deploy history, newest first: the same history the
/// CLI, CI and other servers read and append.
pub(super) async fn history(state: &AppState, stack: &str) -> Result<Vec<DeployRecord>, AppError> {
    state
        .history()
        .revisions(stack)
        .await
        .map_err(history_error)
}

fn history_error(e: DeployError) -> AppError {
    match e {
        DeployError::Engine(e) => e.into(),
        other => AppError::internal(other),
    }
}

fn deploy_rows(records: Vec<DeployRecord>) -> Vec<DeployRow> {
    records
        .into_iter()
        .map(|r| DeployRow {
            revision: r.revision,
            kind: r.kind.to_string(),
            by: r.by_sentence(),
            who: r.by,
            what: r.action,
            started_at: r.started_at,
            finished_at: r.finished_at,
            outcome: r.outcome.to_string(),
            summary: r.summary,
            changed: r
                .services
                .iter()
                .filter(|s| s.before != s.after)
                .map(|s| s.service.clone())
                .collect(),
            current: false,
            can_roll_back_to: false,
        })
        .collect()
}

/// The stack's rows, the revision it runs now marked (see [`DeployRow::current`]), and those
/// a rollback may re-apply ([`DeployRow::can_roll_back_to`]).
fn deploy_rows_with_current(
    records: Vec<DeployRecord>,
    services: Vec<swarmkeeper_engine::Service>,
) -> Vec<DeployRow> {
    let services: HashMap<String, swarmkeeper_engine::Service> =
        services.into_iter().map(|s| (s.name.clone(), s)).collect();
    let current = records
        .iter()
        .find(|r| r.outcome == DeployOutcome::Succeeded)
        .filter(|r| swarmkeeper_deploy::runs_now(r, &services))
        .map(|r| r.revision);
    let fit: Vec<bool> = records
        .iter()
        .map(|r| swarmkeeper_deploy::unfit_target(r, &services).is_none())
        .collect();
    let mut rows = deploy_rows(records);
    for (row, fit) in rows.iter_mut().zip(fit) {
        row.current = Some(row.revision) == current;
        row.can_roll_back_to = fit;
    }
    rows
}

/// The services, their tasks and the history's one listing are asked for at once; only the
/// running stacks' newest revisions are unpacked.
async fn stacks_view(state: &AppState) -> Result<StacksView, AppError> {
    let history = state.history();
    let listing = async { history.listing().await.map_err(history_error) };
    let (services, listing) = tokio::try_join!(load_services(state), listing)?;
    let mut by_stack: BTreeMap<String, Vec<&ServiceRow>> = BTreeMap::new();
    for service in &services {
        if let Some(stack) = &service.stack {
            by_stack.entry(stack.clone()).or_default().push(service);
        }
    }
    let running: std::collections::BTreeSet<&str> = by_stack.keys().map(String::as_str).collect();
    let mut newest = history
        .newest_revisions(&listing, &running)
        .await
        .map_err(history_error)?;
    let mut stacks = Vec::with_capacity(by_stack.len());
    for (name, services) in by_stack {
        let last_deploy = newest
            .remove(&name)
            .and_then(|record| deploy_rows(vec![record]).pop());
        stacks.push(StackRow {
            services: services.len(),
            not_converged: services.iter().filter(|s| !s.converged).count(),
            rolled_back: services.iter().filter(|s| s.rolled_back).count(),
            name,
            last_deploy,
        });
    }
    Ok(StacksView { stacks })
}

page!(StacksView, "stacks.html", "stacks");

/// `GET /stacks`, `GET /api/stacks`.
pub async fn list(State(state): State<AppState>) -> Result<Reply, AppError> {
    Ok(Reply::page(stacks_view(&state).await?))
}

#[derive(Serialize)]
pub struct StackView {
    pub name: String,
    pub services: Vec<ServiceRow>,
    /// Newest first. Empty to a viewer without `view-deploy-history`.
    pub deploys: Vec<DeployRow>,
    /// What removing the stack would take away, for a caller who may remove it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removes: Option<StackObjects>,
    /// What removing the stack does to swarmkeeper itself, when it holds the server or the
    /// agent (`views::own`): its removal must then be confirmed by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removal_warning: Option<String>,
    /// The stack's volumes, `NAME on NODE`, as the agents last reported them, for a caller who
    /// may remove it: a removal keeps them (`views::volumes::stack_volumes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_volumes: Option<Vec<String>>,
}

async fn stack_view(state: &AppState, caller: &Caller, name: &str) -> Result<StackView, AppError> {
    // The services, the history and what a removal would take are asked for at once.
    let deploys = async {
        if caller.may(Action::ViewDeployHistory) {
            let services = async { Ok(state.engine.list_services(Some(name)).await?) };
            let (records, services) = tokio::try_join!(history(state, name), services)?;
            Ok(deploy_rows_with_current(records, services))
        } else {
            Ok(Vec::new())
        }
    };
    let removes = async {
        if caller.may(Action::Remove) {
            let (objects, warning) =
                tokio::try_join!(stack_objects(&state.engine, name), own_parts(state, name))?;
            Ok::<_, AppError>(Some((objects, removal_warning(&warning))))
        } else {
            Ok(None)
        }
    };
    let (services, deploys, removes) = tokio::try_join!(load_services(state), deploys, removes)?;
    let (removes, removal_warning) = match removes {
        Some((objects, warning)) => (Some(objects), warning),
        None => (None, None),
    };
    let services: Vec<ServiceRow> = services
        .into_iter()
        .filter(|s| s.stack.as_deref() == Some(name))
        .collect();
    if services.is_empty() && deploys.is_empty() {
        return Err(AppError::NotFound(format!("no stack named {name}")));
    }
    let removes = removes.filter(|_| !services.is_empty());
    let kept_volumes = match removes {
        Some(_) => {
            let reports = state
                .store()
                .latest_node_reports()
                .map_err(AppError::internal)?;
            let reports: Vec<_> = reports.into_iter().map(|(report, _)| report).collect();
            Some(stack_volumes(&reports, name))
        }
        None => None,
    };
    Ok(StackView {
        name: name.to_owned(),
        services,
        deploys,
        removes,
        removal_warning,
        kept_volumes,
    })
}

/// The parts of swarmkeeper the stack's services run (`views::own`).
async fn own_parts(state: &AppState, stack: &str) -> Result<Vec<OwnPart>, EngineError> {
    let services = state.engine.list_services(Some(stack)).await?;
    Ok(services.iter().filter_map(|s| own_part(&s.view)).collect())
}

/// `POST /stacks/{name}/remove` (a form, after the page's confirmation naming what goes),
/// `DELETE /api/stacks/{name}`: like `docker stack rm`, the stack's services, secrets,
/// configs and networks. Its deploy history is kept. A stack holding swarmkeeper's own
/// server or agent goes only with `?confirm=NAME` (409 saying what stops without it). A form
/// goes on to the stacks page.
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(query): Query<RemovalQuery>,
) -> Result<Reply, AppError> {
    check_stack_name(&name)?;
    let parts = own_parts(&state, &name).await?;
    check_removal(&name, &parts, query.confirm.as_deref()).map_err(AppError::Conflict)?;
    let removed = match swarmkeeper_deploy::remove_stack(&state.engine, &name).await {
        Ok(removed) => removed,
        Err(e) => {
            // Some objects may be gone already, as with `docker stack rm`: say so in the log.
            let detail = format!("stack: stopped by the engine: {e}");
            state.audit(&caller.user.name, Action::Remove.as_str(), &name, &detail)?;
            return Err(e.into());
        }
    };
    if removed.is_empty() {
        return Err(AppError::NotFound(format!("no stack named {name}")));
    }
    state.audit(
        &caller.user.name,
        Action::Remove.as_str(),
        &name,
        &removal_detail(&removed),
    )?;
    Ok(Reply::changed(
        StatusCode::OK,
        RemovedStack {
            stack: name,
            removed,
        },
        "/stacks",
    ))
}

/// What a stack removal took away.
#[derive(Serialize)]
pub struct RemovedStack {
    pub stack: String,
    pub removed: StackObjects,
}

/// `stack: services a, b; secrets c; networks d` for the audit log.
fn removal_detail(removed: &StackObjects) -> String {
    let mut parts = vec!["stack".to_owned()];
    for (kind, names) in [
        ("services", &removed.services),
        ("secrets", &removed.secrets),
        ("configs", &removed.configs),
        ("networks", &removed.networks),
    ] {
        if !names.is_empty() {
            parts.push(format!("{kind} {}", names.join(", ")));
        }
    }
    parts.join("; ")
}

page!(StackView, "stack.html", "stacks");

/// `GET /stacks/{name}`, `GET /api/stacks/{name}`.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Reply, AppError> {
    Ok(Reply::page(stack_view(&state, &caller, &name).await?))
}

/// A stack file as posted: its text and the variables `${VAR}` may use. The server's own
/// environment is never used: it holds the server's secrets.
#[derive(Deserialize, Default)]
pub struct DeployRequest {
    pub compose: String,
    #[serde(default)]
    pub variables: HashMap<String, String>,
    /// Deploy even when lint finds errors.
    #[serde(default)]
    pub ignore_lint_errors: bool,
}

/// What a check or a deploy found in the file.
#[derive(Default, Serialize)]
pub struct LintView {
    pub findings: Vec<Finding>,
    pub errors: usize,
    /// For each finding, whether the safe defaults the deploy adds cure it (a review only).
    #[serde(skip)]
    pub fixed_by_defaults: Vec<bool>,
}

impl LintView {
    /// Whether the safe defaults cure the finding at `index`.
    pub fn is_fixed_by_defaults(&self, index: &usize) -> bool {
        self.fixed_by_defaults.get(*index).copied().unwrap_or(false)
    }

    /// Marks the findings the safe defaults cure on the services of `spec`.
    fn mark_fixed_by_defaults(&mut self, spec: &StackSpec) {
        self.fixed_by_defaults = cured_findings(&self.findings, &spec.services);
    }
}

#[derive(Serialize)]
pub struct DeployView {
    pub stack: String,
    pub revision: Option<u64>,
    /// `succeeded`, `unchanged`, `failed` or `rolled back`.
    pub outcome: String,
    pub succeeded: bool,
    pub services: Vec<DeployedService>,
    pub failures: Vec<DeployFailure>,
    /// What the deploy reported while it ran, in order.
    pub progress: Vec<String>,
    pub lint: LintView,
    /// Set when the server's shutdown stopped the run: what it applied and what it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<String>,
}

#[derive(Serialize)]
pub struct DeployedService {
    pub service: String,
    pub action: String,
    pub state: Option<String>,
}

#[derive(Serialize)]
pub struct DeployFailure {
    pub service: String,
    pub why: String,
    pub logs: Vec<String>,
    pub logs_note: Option<String>,
}

impl From<&swarmkeeper_deploy::FailureReport> for DeployFailure {
    fn from(f: &swarmkeeper_deploy::FailureReport) -> Self {
        DeployFailure {
            service: f.service.clone(),
            why: f.why.clone(),
            logs: f.logs.clone(),
            logs_note: f.logs_note.clone(),
        }
    }
}

impl DeployFailure {
    /// Puts each failing service's last log lines on a followed change's job page
    /// (`web log: …`), and answers the job's notes: `web: why it failed`.
    pub(super) fn to_job(failures: &[DeployFailure], job: &Job) -> Vec<String> {
        for failure in failures {
            for line in failure.logs.iter().chain(&failure.logs_note) {
                job.line(&format!("{} log: {line}", failure.service));
            }
        }
        failures
            .iter()
            .map(|f| format!("{}: {}", f.service, f.why))
            .collect()
    }
}

const FILE_NAME: &str = "stack.yml";

/// The file name the errors name: the dashboard has one file, called what the operator sees.
fn load(request: &DeployRequest) -> Result<Stack, AppError> {
    let sources = [SourceFile {
        name: FILE_NAME,
        text: &request.compose,
    }];
    // `env_file:` would read the server's own disk: a stack from the dashboard passes its
    // variables in the request instead.
    let read_file = |path: &str| -> std::io::Result<String> {
        Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("a stack deployed from the dashboard cannot read {path} from the server"),
        ))
    };
    let environment = Environment {
        variables: &request.variables,
        working_dir: std::path::Path::new("/"),
        read_file: &read_file,
    };
    swarmkeeper_compose::load(&sources, &environment).map_err(|e| AppError::BadInput(e.to_string()))
}

fn lint_stack(stack: &Stack) -> LintView {
    let findings = swarmkeeper_lint::lint(stack);
    LintView {
        errors: findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count(),
        findings,
        fixed_by_defaults: Vec::new(),
    }
}

/// Stack names Swarm accepts ([`swarmkeeper_engine::check_stack_name`]), which are also safe
/// in URLs and labels.
fn check_stack_name(name: &str) -> Result<(), AppError> {
    swarmkeeper_engine::check_stack_name(name)
        .map_err(|e| AppError::BadInput(format!("stack: {e}")))
}

/// A deploy's or a preview's error as the API answers it.
fn deploy_error(error: DeployError) -> AppError {
    match error {
        DeployError::Engine(e) => e.into(),
        DeployError::Store(e) => AppError::internal(e),
        DeployError::Input(message) => AppError::BadInput(message),
        DeployError::Refused(message) => AppError::Conflict(message),
        busy @ DeployError::Busy { .. } => AppError::Conflict(busy.to_string()),
    }
}

fn deploy_view(
    stack: &str,
    result: Result<Outcome, DeployError>,
    progress: Vec<String>,
    lint: LintView,
) -> Result<DeployView, AppError> {
    let outcome = result.map_err(deploy_error)?;
    Ok(DeployView {
        stack: stack.to_owned(),
        revision: outcome.revision,
        outcome: outcome.label().to_string(),
        succeeded: outcome.succeeded,
        services: outcome
            .services
            .iter()
            .map(|s| DeployedService {
                service: s.service.clone(),
                action: s.action.to_string(),
                state: s.state.as_ref().map(|st| st.label().to_owned()),
            })
            .collect(),
        failures: outcome.failures.iter().map(DeployFailure::from).collect(),
        progress,
        lint,
        interrupted: outcome.interrupted.as_ref().map(|i| i.summary()),
    })
}

/// How a refusal on lint errors names the override: the JSON field, or the form's checkbox
/// by its label.
#[derive(Clone, Copy)]
enum Override {
    Field,
    Checkbox,
}

impl Override {
    fn how(self) -> &'static str {
        match self {
            Override::Field => "deploy with ignore_lint_errors",
            Override::Checkbox => "tick \"Deploy even if lint finds errors\"",
        }
    }
}

/// The specs to deploy, after lint: refused on lint errors (unless overridden; the refusal
/// names the first error-level finding, never a warning before it, and `how` to override),
/// on anything `stack_spec` rejects, and on secrets or configs with `file:`, whose content
/// would be read from the server's own disk (its secrets among them).
fn prepare(
    stack: &str,
    request: &DeployRequest,
    how: Override,
) -> Result<(StackSpec, LintView), AppError> {
    check_stack_name(stack)?;
    let loaded = load(request)?;
    let lint = lint_stack(&loaded);
    if let (Some(first), false) = (
        lint.findings.iter().find(|f| f.severity == Severity::Error),
        request.ignore_lint_errors,
    ) {
        return Err(AppError::BadInput(format!(
            "lint found {} error(s), the first at {}:{}:{}: {} {}; fix them or {}",
            lint.errors,
            first.file,
            first.line,
            first.column,
            first.rule,
            first.message,
            how.how()
        )));
    }
    let spec = swarmkeeper_compose::stack_spec(stack, &loaded).map_err(|e| {
        AppError::BadInput(format!(
            "{FILE_NAME}:{}:{}: {}",
            e.at.line, e.at.column, e.message
        ))
    })?;
    if let Some(object) = spec
        .secrets
        .iter()
        .chain(&spec.configs)
        .find(|o| !o.file.is_empty())
    {
        return Err(AppError::BadInput(format!(
            "{}: a stack deployed from the dashboard cannot read {} from the server; create it first and mark it `external: true`, or deploy with `swarmkeeper deploy`",
            object.name, object.file
        )));
    }
    Ok((spec, lint))
}

/// The deploy of a prepared file, its lines also given to `follower`.
async fn deploy_prepared(
    state: &AppState,
    user: &str,
    stack: &str,
    compose: &str,
    (spec, lint): (StackSpec, LintView),
    follower: Option<Arc<Job>>,
) -> Result<DeployView, AppError> {
    let deploy_request = engine_request(state, user, stack, compose);
    let options = state.deploy_options();
    state.audit(user, Action::Deploy.as_str(), stack, "started")?;
    let engine = state.engine.clone();
    let (result, progress) = run_deploy_followed(state, follower, move |history, progress| {
        Box::pin(async move {
            swarmkeeper_deploy::deploy(
                &engine,
                history,
                &deploy_request,
                DeployStack::new(spec),
                &options,
                progress,
            )
            .await
        })
    })
    .await?;
    let view = deploy_view(stack, result, progress, lint)?;
    state.audit(
        user,
        Action::Deploy.as_str(),
        stack,
        &format!(
            "{} (revision {})",
            view.outcome,
            view.revision.map_or("-".into(), |r| r.to_string())
        ),
    )?;
    Ok(view)
}

/// Where a stack's deploy or rollback is recorded: its history.
fn stack_about(stack: &str) -> Vec<Link> {
    vec![history_link(stack, None)]
}

impl DeployView {
    /// A deploy's or rollback's outcome as the API answers it once it ended: 200 when it
    /// succeeded, 409 when it failed; a form goes on to the stack's page.
    fn finished(self) -> Reply {
        let status = if self.succeeded {
            StatusCode::OK
        } else {
            StatusCode::CONFLICT
        };
        let page = format!("/stacks/{}", url_encode(&self.stack));
        Reply::changed(status, self, page)
    }

    /// How a followed deploy or rollback ends on its job's page: the outcome, the revision and
    /// the services, why each failed (its last log lines go to the job's lines), and for an
    /// interrupted run what Swarm does now.
    async fn job_end(&self, state: &AppState, job: &Job) -> JobEnd {
        let mut notes = DeployFailure::to_job(&self.failures, job);
        let mut links = vec![history_link(&self.stack, self.revision)];
        links.extend(self.services.iter().map(|s| Link {
            text: s.service.clone(),
            href: format!("/services/{}", url_encode(&s.service)),
        }));
        if let Some(summary) = &self.interrupted {
            notes.push(summary.clone());
            let applied: Vec<String> = self
                .services
                .iter()
                .filter(|s| s.action != "unchanged")
                .map(|s| s.service.clone())
                .collect();
            notes.extend(swarm_carries_on(state, &applied).await);
        }
        JobEnd {
            succeeded: self.succeeded,
            outcome: self.outcome.clone(),
            links,
            notes,
        }
    }
}

/// What confirms the deploy of exactly what a diff was made from: the SHA-256 of the stack's
/// name, the file, the variables (sorted) and whether lint errors are ignored.
fn confirm_token(stack: &str, request: &DeployRequest) -> String {
    let mut variables: Vec<_> = request.variables.iter().collect();
    variables.sort();
    let mut text = format!(
        "{stack}\0{}\0{}\0",
        request.compose, request.ignore_lint_errors
    );
    for (key, value) in variables {
        text.push_str(&format!("{key}={value}\0"));
    }
    swarmkeeper_deploy::sha256_hex(text.as_bytes())
}

/// The request to the deploy engine for a file posted by `user`.
fn engine_request(state: &AppState, user: &str, stack: &str, compose: &str) -> Request {
    Request {
        stack: stack.to_owned(),
        by: user.to_owned(),
        action: None,
        files: vec![FileDigest {
            path: FILE_NAME.to_owned(),
            sha256: swarmkeeper_deploy::sha256_hex(compose.as_bytes()),
            text: Some(compose.to_owned()),
        }],
        registry_auth: Some(state.registries.registry_auth()),
    }
}

/// What a deploy of the file would do, changing nothing: the deploy engine's own preparation
/// (lint, preflight, digests, safe defaults, the specs) compared with the engine's, as
/// `swarmkeeper diff` does.
async fn preview_stack(
    state: &AppState,
    caller: &Caller,
    stack: &str,
    request: &DeployRequest,
    how: Override,
) -> Result<(StackDiff, LintView), AppError> {
    let (spec, mut lint) = prepare(stack, request, how)?;
    let deploy_request = engine_request(state, &caller.user.name, stack, &request.compose);
    let options = state.deploy_options();
    if options.safe_defaults {
        lint.mark_fixed_by_defaults(&spec);
    }
    let engine = state.engine.clone();
    let (result, notes) = run_deploy(state, move |_, progress| {
        Box::pin(async move {
            swarmkeeper_deploy::preview(
                &engine,
                &deploy_request,
                DeployStack::new(spec),
                &options,
                progress,
            )
            .await
        })
    })
    .await?;
    let preview = result.map_err(deploy_error)?;
    Ok((
        stack_diff(stack, &preview, notes, confirm_token(stack, request)),
        lint,
    ))
}

/// `POST /api/stacks/{name}/diff`: what `POST /api/stacks/{name}/deploy` of the same body
/// would do to each service, network, secret and config, changing nothing.
pub async fn diff(
    State(state): State<AppState>,
    caller: Caller,
    Path(stack): Path<String>,
    Input(request): Input<DeployRequest>,
) -> Result<Json<StackDiff>, AppError> {
    Ok(Json(
        preview_stack(&state, &caller, &stack, &request, Override::Field)
            .await?
            .0,
    ))
}

/// A rollback, from the API or the stack page's form (where no revision is an empty field).
#[derive(Deserialize)]
pub struct RollbackRequest {
    /// A recorded revision; by default the last succeeded one before the newest.
    #[serde(default, deserialize_with = "optional_number")]
    pub to: Option<u64>,
}

async fn roll_back(
    state: &AppState,
    user: &str,
    stack: &str,
    to: Option<u64>,
    follower: Option<Arc<Job>>,
) -> Result<DeployView, AppError> {
    check_stack_name(stack)?;
    let request = Request {
        stack: stack.to_owned(),
        by: user.to_owned(),
        action: None,
        files: Vec::new(),
        registry_auth: Some(state.registries.registry_auth()),
    };
    let options = state.deploy_options();
    let target = rollback_target(to);
    state.audit(
        user,
        Action::Rollback.as_str(),
        stack,
        &format!("to {target}: started"),
    )?;
    let engine = state.engine.clone();
    let (result, progress) = run_deploy_followed(state, follower, move |history, progress| {
        Box::pin(async move {
            swarmkeeper_deploy::rollback(&engine, history, &request, to, &options, progress).await
        })
    })
    .await?;
    let view = deploy_view(stack, result, progress, LintView::default())?;
    state.audit(
        user,
        Action::Rollback.as_str(),
        stack,
        &format!("to {target}: {}", view.outcome),
    )?;
    Ok(view)
}

/// `revision 3`, or `the previous good revision`.
fn rollback_target(to: Option<u64>) -> String {
    to.map_or_else(
        || "the previous good revision".to_owned(),
        |r| format!("revision {r}"),
    )
}

/// The deploy form's fields. Variables come as `KEY=VALUE` lines.
#[derive(Deserialize)]
pub struct DeployForm {
    pub stack: String,
    pub compose: String,
    #[serde(default)]
    pub variables: String,
    /// `check` (lint only), `preview` (the diff) or `deploy`. A deploy without the `confirm`
    /// of a diff of the same file shows that diff instead: the page deploys only what the
    /// operator saw.
    pub action: String,
    #[serde(default)]
    pub ignore_lint_errors: Option<String>,
    #[serde(default)]
    pub confirm: String,
}

fn parse_variables(text: &str) -> Result<HashMap<String, String>, AppError> {
    let mut variables = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once('=').ok_or_else(|| {
            AppError::BadInput(format!(
                "variables, line {}: expected KEY=VALUE, found {line:?}",
                index + 1
            ))
        })?;
        variables.insert(key.trim().to_owned(), value.to_owned());
    }
    Ok(variables)
}

/// The deploy page: the form, and after a check or a deploy what it found.
#[derive(Default, Serialize)]
pub struct DeployFormView {
    pub stack: String,
    pub compose: String,
    pub variables: String,
    pub lint: Option<LintView>,
    pub error: String,
    /// What the deploy would do, shown before it is confirmed.
    pub diff: Option<StackDiff>,
    pub ignore_lint_errors: bool,
}

page!(DeployFormView, "deploy.html", "stacks");

#[derive(Deserialize)]
pub struct DeployQuery {
    #[serde(default)]
    pub stack: String,
}

/// `GET /stacks/deploy`: the form, for the stack named in the query if any.
pub async fn deploy_form(Query(query): Query<DeployQuery>) -> Reply {
    Reply::page(DeployFormView {
        stack: query.stack,
        ..DeployFormView::default()
    })
}

/// `POST /stacks/deploy`: the form posted, to check (lint) or to deploy. The page comes back
/// with the findings, the outcome, or what is wrong (400).
pub async fn deploy_from_form(
    State(state): State<AppState>,
    caller: Caller,
    Input(form): Input<DeployForm>,
) -> Result<Reply, AppError> {
    let mut view = DeployFormView {
        stack: form.stack,
        compose: form.compose,
        variables: form.variables,
        ..DeployFormView::default()
    };
    let request = match parse_variables(&view.variables) {
        Ok(variables) => DeployRequest {
            compose: view.compose.clone(),
            variables,
            ignore_lint_errors: form.ignore_lint_errors.is_some(),
        },
        Err(e) => return Ok(refused(view, &e)),
    };
    let checked = load(&request).map(|stack| lint_stack(&stack));
    if form.action == "check" {
        return Ok(match checked {
            Ok(lint) => Reply::page(DeployFormView {
                lint: Some(lint),
                ..view
            }),
            Err(e) => refused(view, &e),
        });
    }
    view.ignore_lint_errors = request.ignore_lint_errors;
    let stack = view.stack.clone();
    if form.action != "deploy" || form.confirm != confirm_token(&stack, &request) {
        return match preview_stack(&state, &caller, &stack, &request, Override::Checkbox).await {
            Ok((diff, lint)) => Ok(Reply::page(DeployFormView {
                lint: Some(lint),
                diff: Some(diff),
                ..view
            })),
            Err(e @ (AppError::BadInput(_) | AppError::Engine(_) | AppError::Conflict(_))) => {
                view.lint = checked.ok();
                Ok(refused(view, &e))
            }
            Err(e) => Err(e),
        };
    }
    // Confirmed: the deploy goes on as a job, followed on its page; what the file gets wrong
    // is said on the form, before anything starts.
    let prepared = match prepare(&stack, &request, Override::Checkbox) {
        Ok(prepared) => prepared,
        Err(e) => {
            view.lint = checked.ok();
            return Ok(refused(view, &e));
        }
    };
    Ok(deploy_as_job(
        &state,
        caller.user.name.clone(),
        stack,
        request.compose,
        prepared,
    ))
}

/// The deploy of a prepared file as a job, followed on its page (see [`follow`]).
fn deploy_as_job(
    state: &AppState,
    user: String,
    stack: String,
    compose: String,
    prepared: (StackSpec, LintView),
) -> Reply {
    let follower = state.clone();
    follow(
        state,
        format!("Deploy of stack {stack}"),
        &user.clone(),
        stack_about(&stack),
        move |job| async move {
            let view = deploy_prepared(
                &follower,
                &user,
                &stack,
                &compose,
                prepared,
                Some(job.clone()),
            )
            .await?;
            Ok(view.job_end(&follower, &job).await)
        },
    )
}

/// The form again, saying what is wrong, with the error's status.
fn refused(view: DeployFormView, error: &AppError) -> Reply {
    Reply::page(DeployFormView {
        error: error.to_string(),
        ..view
    })
    .with_status(error.status())
}

/// `POST /api/stacks/{name}/deploy`: lint, deploy, follow, roll back on failure. What cannot
/// work (the file, lint errors, the preflight) is refused at once (400); otherwise it answers
/// its outcome, or with `?wait=false` goes on as a job (202, see [`WaitQuery`]).
pub async fn deploy(
    State(state): State<AppState>,
    caller: Caller,
    Path(stack): Path<String>,
    Query(query): Query<WaitQuery>,
    Input(request): Input<DeployRequest>,
) -> Result<Reply, AppError> {
    let (spec, lint) = prepare(&stack, &request, Override::Field)?;
    deploy_preflight(&state, &stack, &spec).await?;
    let user = caller.user.name.clone();
    if query.wait {
        let view =
            deploy_prepared(&state, &user, &stack, &request.compose, (spec, lint), None).await?;
        return Ok(view.finished());
    }
    Ok(deploy_as_job(
        &state,
        user,
        stack,
        request.compose,
        (spec, lint),
    ))
}

/// `?wait=false` on `POST /api/stacks/{name}/deploy` and `/rollback`. By default the answer
/// waits for the end, as every change of the API answers (`PRODUCT.md`: 200 or 201, a
/// refusal 400/409): 200 when the change succeeded (or changed nothing), 409 with the same
/// body when it failed (rolled back, interrupted): a failed change is never 200. With
/// `wait=false`, a change that passed its checks answers 202 at once with its job
/// ([`super::jobs::StartedJob`], `Location: /api/jobs/{id}`), whose `end` says how it
/// ended, so that no request is held for up to the deploy timeout.
#[derive(Deserialize)]
pub struct WaitQuery {
    #[serde(default = "wait_by_default")]
    pub wait: bool,
}

fn wait_by_default() -> bool {
    true
}

/// The deploy engine's preflight of `spec` alone, changing nothing: a stack no node can run,
/// an external object missing or a port another service publishes is refused at once (400).
async fn deploy_preflight(state: &AppState, stack: &str, spec: &StackSpec) -> Result<(), AppError> {
    let (engine, stack, spec) = (state.engine.clone(), stack.to_owned(), spec.clone());
    let options = state.deploy_options();
    let (result, _) = run_deploy(state, move |_, _| {
        Box::pin(async move {
            swarmkeeper_deploy::deploy_preflight(&engine, &stack, &spec, &options).await
        })
    })
    .await?;
    result.map_err(deploy_error)
}

/// Whether rollback `to` of `stack` can work, changing nothing (the revision exists, every
/// service it has can be placed): refused at once (400) rather than failed in its job or
/// pending until the timeout.
async fn rollback_preflight(
    state: &AppState,
    stack: &str,
    to: Option<u64>,
) -> Result<(), AppError> {
    check_stack_name(stack)?;
    let (engine, stack) = (state.engine.clone(), stack.to_owned());
    let (result, _) = run_deploy(state, move |history, _| {
        Box::pin(async move {
            swarmkeeper_deploy::rollback_preflight(&engine, history, &stack, to).await
        })
    })
    .await?;
    result.map(drop).map_err(deploy_error)
}

/// `POST /api/lint`: what a deploy of this file would be warned about. Needs the deploy role,
/// since it is the first half of a deploy.
pub async fn lint(Input(request): Input<DeployRequest>) -> Result<Json<LintView>, AppError> {
    Ok(Json(lint_stack(&load(&request)?)))
}

/// `POST /stacks/{name}/rollback` (the stack page's form), `POST /api/stacks/{name}/rollback`:
/// the stack back to a recorded revision, by default the last good one before the newest.
/// A revision that does not exist or that no node can run is refused at once (400, nothing
/// changed, nothing recorded). Otherwise the form's rollback goes on as a job (303 to its
/// page); the API answers its outcome, or with `?wait=false` 202 with its job
/// ([`WaitQuery`]).
pub async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path(stack): Path<String>,
    Query(query): Query<WaitQuery>,
    Input(request): Input<RollbackRequest>,
) -> Result<Reply, AppError> {
    rollback_preflight(&state, &stack, request.to).await?;
    if query.wait && Format::of(uri.path()) == Format::Json {
        let view = roll_back(&state, &caller.user.name, &stack, request.to, None).await?;
        return Ok(view.finished());
    }
    let user = caller.user.name.clone();
    let follower = state.clone();
    let to = request.to;
    Ok(follow(
        &state,
        format!("Rollback of stack {stack} to {}", rollback_target(to)),
        &user.clone(),
        stack_about(&stack),
        move |job| async move {
            let view = roll_back(&follower, &user, &stack, to, Some(job.clone())).await?;
            Ok(view.job_end(&follower, &job).await)
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_names_follow_docker() {
        assert!(check_stack_name("shop").is_ok());
        assert!(check_stack_name("shop_v2-b1").is_ok());
        assert!(check_stack_name("shop.v2").is_err());
        assert!(check_stack_name("").is_err());
        assert!(check_stack_name("-shop").is_err());
        assert!(check_stack_name("shop/../x").is_err());
        assert!(check_stack_name(&"a".repeat(64)).is_err());
    }

    #[test]
    fn variables_are_key_value_lines() {
        let vars = parse_variables("# tags\nTAG=1.2\n\nURL=http://x/?a=b\n").unwrap();
        assert_eq!(vars["TAG"], "1.2");
        assert_eq!(vars["URL"], "http://x/?a=b");
        let err = parse_variables("TAG=1\noops").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn a_file_secret_is_refused_rather_than_read_from_the_server() {
        let request = DeployRequest {
            compose: "services:\n  web:\n    image: app:1\n    secrets: [db]\nsecrets:\n  db:\n    file: /run/secrets/swarmkeeper_admin_password\n".into(),
            ..DeployRequest::default()
        };
        let err = prepare("shop", &request, Override::Field)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("cannot read /run/secrets/swarmkeeper_admin_password"),
            "{err}"
        );
        let env_file = DeployRequest {
            compose: "services:\n  web:\n    image: app:1\n    env_file: /etc/shadow\n".into(),
            ..DeployRequest::default()
        };
        let err = prepare("shop", &env_file, Override::Field)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("cannot read /etc/shadow"), "{err}");
    }

    #[test]
    fn errors_name_the_file_line_and_column() {
        let request = DeployRequest {
            compose: "services:\n  web:\n    image: [1\n".into(),
            ..DeployRequest::default()
        };
        let err = load(&request).unwrap_err().to_string();
        assert!(err.starts_with("stack.yml:"), "{err}");
    }
}
