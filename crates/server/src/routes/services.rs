//! `/services`: the list, a service's page, and the operator's actions on it (scale,
//! redeploy, roll back to Swarm's previous spec).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use swarmkeeper_auth::Action;
use swarmkeeper_engine::{Service, Task};
use swarmkeeper_lint::{lint_running, RunningFinding};
use swarmkeeper_report::UsageRange;

use swarmkeeper_auth::hook::{self, HookScope};

use crate::access::Caller;
use crate::autodeploy::{ServiceAutoDeploy, TagDigest};
use crate::error::AppError;
use crate::page::url_encode;
use crate::respond::{Format, Input, Reply};
use crate::routes::stacks::WaitQuery;
use crate::routes::usage::{service_series, UsageCharts};
use crate::state::AppState;
use crate::views::own::{check_removal, check_scale, own_part, removal_warning, scale_warning};
use crate::views::services::{
    rollout_config, service_row, service_rows, task_rows, with_oom_kills, RolloutConfig,
    ServiceRow, TaskRow,
};
use swarmkeeper_deploy::node_facts;
use swarmkeeper_rollout::preflight::NodeFacts;
use swarmkeeper_rollout::{observe, requested_rollback, ServiceState};

/// The services page's data.
#[derive(Serialize)]
pub struct ServicesView {
    pub services: Vec<ServiceRow>,
}

pub async fn load_services(state: &AppState) -> Result<Vec<ServiceRow>, AppError> {
    let (services, tasks, nodes) = tokio::try_join!(
        state.engine.list_services(None),
        state.engine.list_all_tasks(),
        state.engine.list_nodes()
    )?;
    let nodes: Vec<NodeFacts> = nodes.iter().map(node_facts).collect();
    Ok(service_rows(&services, &tasks, &nodes))
}

page!(ServicesView, "services.html", "services");

/// `GET /services`, `GET /api/services`.
pub async fn list(State(state): State<AppState>) -> Result<Reply, AppError> {
    Ok(Reply::page(ServicesView {
        services: load_services(&state).await?,
    }))
}

/// A recorded deploy that touched the service.
#[derive(Serialize)]
pub struct ServiceDeploy {
    pub revision: u64,
    pub kind: String,
    /// Who and what in one phrase, as [`DeployRow::by`](super::stacks::DeployRow::by).
    pub by: String,
    pub who: String,
    pub what: Option<String>,
    pub started_at: Timestamp,
    pub stack_outcome: String,
    /// What happened to this service in that deploy.
    pub outcome: String,
}

impl ServiceDeploy {
    /// Who made the revision and what they did, in one phrase ("by alice").
    pub fn changed_by(&self) -> String {
        crate::page::changed_by(&self.who, self.what.as_deref())
    }
}

/// A service's page data.
#[derive(Serialize)]
pub struct ServiceView {
    #[serde(flatten)]
    pub row: ServiceRow,
    pub tasks: Vec<TaskRow>,
    pub update_config: RolloutConfig,
    pub rollback_config: RolloutConfig,
    pub findings: Vec<RunningFinding>,
    /// The log driver, `default` when the daemon's applies.
    pub log_driver: String,
    /// Swarm keeps the spec before the last update: `rollback` can return to it.
    pub can_roll_back: bool,
    pub deploys: Vec<ServiceDeploy>,
    /// The running digest against the registry's for the image's tag (every service).
    pub image_digest: TagDigest,
    pub autodeploy: ServiceAutoDeploy,
    /// Auto-deploy's rollouts and failed checks, newest first.
    pub autodeploy_events: Vec<AutoDeployEventRow>,
    /// When the service's hook token was made, by whom; never the token.
    pub hook_token: Option<HookTokenInfoRow>,
    /// What removing the service does to swarmkeeper itself, when it is the server or the
    /// agent (`views::own`): its removal must then be confirmed by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removal_warning: Option<String>,
    /// The last hour's CPU and memory charts, replicas summed (`/api/services/{name}/usage`
    /// has the points).
    #[serde(skip)]
    pub usage: UsageCharts,
}

/// An auto-deploy event as the service page lists it.
#[derive(Serialize)]
pub struct AutoDeployEventRow {
    pub at: Timestamp,
    /// `check` or `rollout`.
    pub kind: String,
    pub digest: Option<String>,
    pub outcome: String,
    pub message: String,
}

#[derive(Serialize)]
pub struct HookTokenInfoRow {
    pub created_by: String,
    pub created: Timestamp,
}

async fn load_service(state: &AppState, name: &str) -> Result<ServiceView, AppError> {
    let service = inspect(state, name).await?;
    let (tasks, nodes) = tokio::try_join!(
        state.engine.list_tasks(&service.id),
        state.engine.list_nodes()
    )?;
    let facts: Vec<NodeFacts> = nodes.iter().map(node_facts).collect();
    let hostnames: HashMap<String, String> = nodes
        .into_iter()
        .map(|node| (node.id, node.hostname))
        .collect();
    let task_refs: Vec<&Task> = tasks.iter().collect();
    let row = service_row(&service, &task_refs, &facts);
    // A service outside a stack has a history of its own (the form's edits go there).
    let history = swarmkeeper_deploy::history_stack(&service);
    let deploys = service_deploys(state, history, &service.name).await?;
    let image_digest = state.autodeploy.tag_digest(state, &service).await;
    let autodeploy_events = state
        .store()
        .autodeploy_events(&service.id)
        .map_err(AppError::internal)?
        .into_iter()
        .map(|e| AutoDeployEventRow {
            at: e.at,
            kind: e.kind,
            digest: e.digest,
            outcome: e.outcome,
            message: e.message,
        })
        .collect();
    let hook_token =
        hook::hook_token_info(&state.auth(), &HookScope::Service(service.name.clone()))
            .map_err(AppError::internal)?
            .map(|i| HookTokenInfoRow {
                created_by: i.created_by,
                created: i.created,
            });
    let now = Timestamp::now();
    // The kills the agents counted in the listed tasks' containers, since the oldest began.
    let since = tasks
        .iter()
        .filter_map(|t| t.created_at)
        .min()
        .unwrap_or(now);
    let oom_kills = state
        .store()
        .service_oom_kills(&service.name, since)
        .map_err(AppError::internal)?;
    let spec_limits: HashMap<String, u64> = tasks
        .iter()
        .map(|t| (t.id.clone(), t.limits().memory_bytes))
        .filter(|(_, b)| *b > 0)
        .collect();
    let usage = UsageCharts::draw(
        format!("/services/{}", url_encode(&service.name)),
        &service_series(state, &service.name, None, UsageRange::Hour, now)?,
        UsageRange::Hour,
        now,
    );
    Ok(ServiceView {
        usage,
        image_digest,
        autodeploy: state.autodeploy.service(&service),
        autodeploy_events,
        hook_token,
        tasks: with_oom_kills(
            task_rows(&service.name, &task_refs, &hostnames),
            &oom_kills,
            &spec_limits,
        ),
        update_config: rollout_config(&service.view.update_config),
        rollback_config: rollout_config(&service.view.rollback_config),
        findings: lint_running(&service.view),
        log_driver: service
            .view
            .log_driver
            .as_ref()
            .map_or("default", |d| d.name.as_str())
            .to_owned(),
        can_roll_back: service.previous_spec.is_some(),
        removal_warning: removal_warning(&Vec::from_iter(own_part(&service.view))),
        deploys,
        row,
    })
}

async fn service_deploys(
    state: &AppState,
    stack: &str,
    service: &str,
) -> Result<Vec<ServiceDeploy>, AppError> {
    let history = super::stacks::history(state, stack).await?;
    Ok(history
        .into_iter()
        .filter_map(|record| {
            let entry = record.services.iter().find(|s| s.service == service)?;
            Some(ServiceDeploy {
                revision: record.revision,
                kind: record.kind.to_string(),
                by: record.by_sentence(),
                who: record.by.clone(),
                what: record.action.clone(),
                started_at: record.started_at,
                stack_outcome: record.outcome.to_string(),
                outcome: entry.outcome.clone(),
            })
        })
        .collect())
}

/// A service by name or id; a missing one is 404 naming it.
pub(super) async fn inspect(state: &AppState, name: &str) -> Result<Service, AppError> {
    state.engine.inspect_service(name).await.map_err(|e| {
        if e.is_not_found() {
            AppError::NotFound(format!("no service named {name}"))
        } else {
            e.into()
        }
    })
}

page!(ServiceView, "service.html", "services");

/// `GET /services/{name}`, `GET /api/services/{name}`.
/// After the hook token form, `?hook_token=KEY` shows the new token once instead.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path(name): Path<String>,
) -> Result<Reply, AppError> {
    if let Some(shown) = super::hooks::shown_hook_token(&state, &caller, &uri) {
        return Ok(shown);
    }
    Ok(Reply::page(load_service(&state, &name).await?))
}

/// What an action did, for the API.
#[derive(Serialize)]
pub struct ActionOutcome {
    pub service: String,
    pub action: &'static str,
    /// The engine's warnings, e.g. that an image's digest could not be pinned.
    pub warnings: Vec<String>,
    /// A rollback with `?wait=true`: how Swarm's rollback ended (`rolled back`, `paused`,
    /// `timed out`; `interrupted`: the server stopped first, Swarm carries it on); absent
    /// otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<&'static str>,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

#[derive(Deserialize)]
pub struct ScaleRequest {
    pub replicas: u64,
    /// The service's name, to scale swarmkeeper's own server to 0
    /// (`views::own::check_scale`).
    #[serde(default)]
    pub confirm: Option<String>,
}

/// The page that asks to confirm a scale [`scale_warning`] warns of, by typing the service's
/// name (as the API's `confirm` does).
#[derive(Serialize)]
pub struct ScaleConfirmView {
    pub service: String,
    pub replicas: u64,
    pub warning: String,
    /// A name typed that is not the service's, said next to the field.
    pub mistyped: Option<String>,
}

page!(ScaleConfirmView, "scale_confirm.html", "services");

/// `POST /services/{name}/scale` (a form), `POST /api/services/{name}/scale` (JSON). Scaling
/// swarmkeeper's own server to 0 is refused (409) without `confirm` naming it: the API says
/// how to send it, the page answers with a page that asks for the name.
pub async fn scale(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path(name): Path<String>,
    Input(request): Input<ScaleRequest>,
) -> Result<Reply, AppError> {
    let replicas = request.replicas;
    // The bound every path that sets replicas shares (compose files, the service form).
    swarmkeeper_compose::check_replicas(replicas)
        .map_err(|e| AppError::BadInput(format!("replicas: {e}")))?;
    let service = inspect(&state, &name).await?;
    let part = own_part(&service.view);
    let confirm = request.confirm.as_deref().filter(|c| !c.is_empty());
    if let Err(why) = check_scale(&service.name, part, replicas, confirm) {
        let warning = scale_warning(&service.name, part, replicas);
        return match (Format::of(uri.path()), warning) {
            (Format::Html, Some(warning)) => Ok(Reply::page(ScaleConfirmView {
                mistyped: confirm.map(str::to_owned),
                service: service.name,
                replicas,
                warning,
            })
            .with_status(StatusCode::CONFLICT)),
            _ => Err(AppError::Conflict(why)),
        };
    }
    let warnings = state.engine.scale_service(&service.id, replicas).await?;
    state.audit(
        &caller.user.name,
        Action::Scale.as_str(),
        &service.name,
        &format!("replicas={replicas}"),
    )?;
    Ok(changed(ActionOutcome {
        service: service.name,
        action: "scale",
        warnings,
        outcome: None,
        why: None,
    }))
}

/// `POST /services/{name}/redeploy`, `POST /api/services/{name}/redeploy`: every task
/// restarted, like `docker service update --force`.
pub async fn redeploy(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Reply, AppError> {
    let service = inspect(&state, &name).await?;
    let warnings = state.engine.force_update_service(&service.id).await?;
    state.audit(
        &caller.user.name,
        Action::Redeploy.as_str(),
        &service.name,
        "force update",
    )?;
    Ok(changed(ActionOutcome {
        service: service.name,
        action: "redeploy",
        warnings,
        outcome: None,
        why: None,
    }))
}

/// `POST /services/{name}/rollback`, `POST /api/services/{name}/rollback`: back to the spec
/// Swarm kept from before the last update. Swarm runs the rollback: the answer comes as soon
/// as Swarm took it, or with `?wait=true` (the API's) once it ended, 200 rolled back, 409
/// paused or past the deploy timeout, as the stacks' changes answer. A previous spec that
/// publishes a port another service has now is refused first (400, nothing asked of Swarm).
pub async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path(name): Path<String>,
    Query(query): Query<WaitQuery>,
) -> Result<Reply, AppError> {
    let service = inspect(&state, &name).await?;
    if service.previous_spec.is_none() {
        return Err(AppError::Conflict(format!(
            "service {} has no previous spec to roll back to (it was never updated, or Swarm already rolled it back)",
            service.name
        )));
    }
    refuse_taken_port(&state, &service).await?;
    let warnings = state.engine.rollback_service(&service).await?;
    state.audit(
        &caller.user.name,
        Action::Rollback.as_str(),
        &service.name,
        "to the previous spec",
    )?;
    let mut outcome = ActionOutcome {
        service: service.name.clone(),
        action: "rollback",
        warnings,
        outcome: None,
        why: None,
    };
    if !(query.wait && Format::of(uri.path()) == Format::Json) {
        return Ok(changed(outcome));
    }
    let ended = swarm_rollback_end(&state, &service).await?;
    outcome.outcome = Some(match &ended {
        ServiceState::Converged => "rolled back",
        // The server is stopping: Swarm carries the rollback on.
        ServiceState::InProgress { .. } => "interrupted",
        other => other.label(),
    });
    outcome.why = ended.why().map(str::to_owned);
    let status = if ended == ServiceState::Converged {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    Ok(changed(outcome).with_status(status))
}

/// A previous spec that publishes a port another service took since would make Swarm's
/// rollback fail half-way with the engine's error: refused before Swarm is asked (400, as the
/// stacks' rollback preflight refuses), naming the port and the service that has it.
async fn refuse_taken_port(state: &AppState, service: &Service) -> Result<(), AppError> {
    let Some(previous) = &service.previous_spec else {
        return Ok(());
    };
    let view = swarmkeeper_engine::ServiceView::read(previous).map_err(|e| {
        AppError::BadInput(format!(
            "service {}: its previous spec cannot be read: {e}",
            service.name
        ))
    })?;
    let clash = swarmkeeper_deploy::port_in_use(&state.engine, &[(&service.name, &view)]).await?;
    match clash {
        Some(clash) => Err(AppError::BadInput(format!(
            "service {} cannot be rolled back: its previous spec publishes {}",
            service.name, clash.why
        ))),
        None => Ok(()),
    }
}

/// Follows the rollback Swarm was just asked for on `before` (the service as it was) until
/// [`requested_rollback`] says it ended, at most the deploy timeout.
async fn swarm_rollback_end(state: &AppState, before: &Service) -> Result<ServiceState, AppError> {
    let timeout = state.deploy_options().timeout;
    let started = std::time::Instant::now();
    loop {
        let (service, tasks, nodes) = tokio::try_join!(
            state.engine.inspect_service(&before.id),
            state.engine.list_tasks(&before.id),
            state.engine.list_nodes()
        )?;
        let tasks: Vec<&Task> = tasks.iter().collect();
        let nodes: Vec<NodeFacts> = nodes.iter().map(node_facts).collect();
        let observed = observe(&service, &tasks, &nodes, before.update_status.as_ref());
        let ended = requested_rollback(&observed, started.elapsed(), timeout);
        if ended.is_final() {
            return Ok(ended);
        }
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
            () = state.shutdown.started() => return Ok(ended),
        }
    }
}

/// What a removal took away.
#[derive(Serialize)]
pub struct RemovedService {
    pub service: String,
    /// The stack the service belonged to: its next deploy creates the service again.
    pub stack: Option<String>,
}

/// `POST /services/{name}/remove` (a form, after the page's confirmation),
/// `DELETE /api/services/{name}`: like `docker service rm`; its tasks stop. swarmkeeper's own
/// server or agent goes only with `?confirm=NAME` (409 saying what stops without it). A form
/// goes on to the services page.
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(query): Query<RemovalQuery>,
) -> Result<Reply, AppError> {
    let service = inspect(&state, &name).await?;
    let parts = Vec::from_iter(own_part(&service.view));
    check_removal(&service.name, &parts, query.confirm.as_deref()).map_err(AppError::Conflict)?;
    state.engine.remove_service(&service.id).await?;
    state.audit(
        &caller.user.name,
        Action::Remove.as_str(),
        &service.name,
        "service",
    )?;
    let stack = service.view.stack().map(str::to_owned);
    Ok(Reply::changed(
        StatusCode::OK,
        RemovedService {
            service: service.name,
            stack,
        },
        "/services",
    ))
}

/// A removal's query: `confirm=NAME` removes swarmkeeper's own server or agent (or a stack
/// holding them), which is refused without it (`views::own::check_removal`).
#[derive(Deserialize, Default)]
pub struct RemovalQuery {
    pub confirm: Option<String>,
}

/// The outcome as JSON; a form goes back to the service's page.
fn changed(done: ActionOutcome) -> Reply {
    let then = format!("/services/{}", url_encode(&done.service));
    Reply::changed(StatusCode::OK, done, then)
}
