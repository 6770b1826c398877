//! `/services`: the list, a service's page, and the operator's actions on it (scale,
//! redeploy, roll back to Swarm's previous spec).

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, Json};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use swarmkeeper_auth::Action;
use swarmkeeper_engine::{Service, Task};
use swarmkeeper_lint::{lint_running, RunningFinding};

use crate::access::Caller;
use crate::error::AppError;
use crate::page::{self, render, url_encode, Chrome};
use crate::state::AppState;
use crate::views::services::{
    rollout_config, service_row, service_rows, task_rows, RolloutConfig, ServiceRow, TaskRow,
};

/// The services page's data.
#[derive(Serialize)]
pub struct ServicesView {
    pub services: Vec<ServiceRow>,
}

pub async fn load_services(state: &AppState) -> Result<Vec<ServiceRow>, AppError> {
    let (services, tasks) = tokio::try_join!(
        state.engine.list_services(None),
        state.engine.list_all_tasks()
    )?;
    Ok(service_rows(&services, &tasks))
}

#[derive(Template)]
#[template(path = "services.html")]
struct ServicesPage<'a> {
    chrome: Chrome,
    view: &'a ServicesView,
}

pub async fn services_page(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Html<String>, AppError> {
    caller.require(Action::ViewCluster)?;
    let view = ServicesView {
        services: load_services(&state).await?,
    };
    render(&ServicesPage {
        chrome: Chrome::new(&caller, "services"),
        view: &view,
    })
}

pub async fn services_api(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ServicesView>, AppError> {
    caller.require(Action::ViewCluster)?;
    Ok(Json(ServicesView {
        services: load_services(&state).await?,
    }))
}

/// A recorded deploy that touched the service.
#[derive(Serialize)]
pub struct ServiceDeploy {
    pub revision: u64,
    pub kind: String,
    pub by: String,
    pub started_at: Timestamp,
    pub stack_outcome: String,
    /// What happened to this service in that deploy.
    pub outcome: String,
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
}

async fn load_service(state: &AppState, name: &str) -> Result<ServiceView, AppError> {
    let service = inspect(state, name).await?;
    let (tasks, nodes) = tokio::try_join!(
        state.engine.list_tasks(&service.id),
        state.engine.list_nodes()
    )?;
    let hostnames: HashMap<String, String> = nodes
        .into_iter()
        .map(|node| (node.id, node.hostname))
        .collect();
    let task_refs: Vec<&Task> = tasks.iter().collect();
    let row = service_row(&service, &task_refs);
    let deploys = match &row.stack {
        Some(stack) => service_deploys(state, stack, &service.name)?,
        None => Vec::new(),
    };
    Ok(ServiceView {
        tasks: task_rows(&service.name, &task_refs, &hostnames),
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
        deploys,
        row,
    })
}

fn service_deploys(
    state: &AppState,
    stack: &str,
    service: &str,
) -> Result<Vec<ServiceDeploy>, AppError> {
    let history = state
        .store()
        .deploy_history(stack)
        .map_err(AppError::internal)?;
    Ok(history
        .into_iter()
        .filter_map(|record| {
            let entry = record.services.iter().find(|s| s.service == service)?;
            Some(ServiceDeploy {
                revision: record.revision,
                kind: record.kind.to_string(),
                by: record.by.clone(),
                started_at: record.started_at,
                stack_outcome: record.outcome.to_string(),
                outcome: entry.outcome.clone(),
            })
        })
        .collect())
}

async fn inspect(state: &AppState, name: &str) -> Result<Service, AppError> {
    state.engine.inspect_service(name).await.map_err(|e| {
        if e.is_not_found() {
            AppError::NotFound(format!("no service named {name}"))
        } else {
            e.into()
        }
    })
}

#[derive(Template)]
#[template(path = "service.html")]
struct ServicePage<'a> {
    chrome: Chrome,
    view: &'a ServiceView,
    can_view_logs: bool,
    now: Timestamp,
}

impl ServicePage<'_> {
    fn ago(&self, at: &Option<Timestamp>) -> String {
        at.map_or_else(String::new, |at| page::ago(at, self.now))
    }

    fn when(&self, at: &Timestamp) -> String {
        page::when(*at)
    }
}

pub async fn service_page(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Html<String>, AppError> {
    caller.require(Action::ViewCluster)?;
    let view = load_service(&state, &name).await?;
    render(&ServicePage {
        chrome: Chrome::new(&caller, "services"),
        view: &view,
        can_view_logs: caller.may(Action::ViewLogs),
        now: Timestamp::now(),
    })
}

pub async fn service_api(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<ServiceView>, AppError> {
    caller.require(Action::ViewCluster)?;
    Ok(Json(load_service(&state, &name).await?))
}

/// What an action did, for the API.
#[derive(Serialize)]
pub struct ActionOutcome {
    pub service: String,
    pub action: &'static str,
    /// The engine's warnings, e.g. that an image's digest could not be pinned.
    pub warnings: Vec<String>,
}

#[derive(Deserialize)]
pub struct ScaleRequest {
    pub replicas: u64,
}

/// Most replicas one request may ask for: a typo of an extra zero should not schedule a
/// thousand tasks.
const MAX_REPLICAS: u64 = 500;

async fn scale(
    state: &AppState,
    caller: &Caller,
    name: &str,
    replicas: u64,
) -> Result<ActionOutcome, AppError> {
    caller.require(Action::Scale)?;
    if replicas > MAX_REPLICAS {
        return Err(AppError::BadInput(format!(
            "replicas: {replicas} is more than {MAX_REPLICAS}; scale in steps or with the docker CLI"
        )));
    }
    let service = inspect(state, name).await?;
    let warnings = state.engine.scale_service(&service.id, replicas).await?;
    state.audit(
        &caller.user.name,
        Action::Scale.as_str(),
        &service.name,
        &format!("replicas={replicas}"),
    )?;
    Ok(ActionOutcome {
        service: service.name,
        action: "scale",
        warnings,
    })
}

async fn redeploy(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> Result<ActionOutcome, AppError> {
    caller.require(Action::Redeploy)?;
    let service = inspect(state, name).await?;
    let warnings = state.engine.force_update_service(&service.id).await?;
    state.audit(
        &caller.user.name,
        Action::Redeploy.as_str(),
        &service.name,
        "force update",
    )?;
    Ok(ActionOutcome {
        service: service.name,
        action: "redeploy",
        warnings,
    })
}

async fn roll_back(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> Result<ActionOutcome, AppError> {
    caller.require(Action::Rollback)?;
    let service = inspect(state, name).await?;
    if service.previous_spec.is_none() {
        return Err(AppError::Conflict(format!(
            "service {} has no previous spec to roll back to (it was never updated, or Swarm already rolled it back)",
            service.name
        )));
    }
    let warnings = state.engine.rollback_service(&service).await?;
    state.audit(
        &caller.user.name,
        Action::Rollback.as_str(),
        &service.name,
        "to the previous spec",
    )?;
    Ok(ActionOutcome {
        service: service.name,
        action: "rollback",
        warnings,
    })
}

fn back_to(name: &str) -> Response {
    Redirect::to(&format!("/services/{}", url_encode(name))).into_response()
}

pub async fn scale_form(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Form(form): Form<ScaleRequest>,
) -> Result<Response, AppError> {
    let done = scale(&state, &caller, &name, form.replicas).await?;
    Ok(back_to(&done.service))
}

pub async fn scale_api(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(request): Json<ScaleRequest>,
) -> Result<Json<ActionOutcome>, AppError> {
    Ok(Json(scale(&state, &caller, &name, request.replicas).await?))
}

pub async fn redeploy_form(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let done = redeploy(&state, &caller, &name).await?;
    Ok(back_to(&done.service))
}

pub async fn redeploy_api(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<ActionOutcome>, AppError> {
    Ok(Json(redeploy(&state, &caller, &name).await?))
}

pub async fn rollback_form(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let done = roll_back(&state, &caller, &name).await?;
    Ok(back_to(&done.service))
}

pub async fn rollback_api(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<ActionOutcome>, AppError> {
    Ok(Json(roll_back(&state, &caller, &name).await?))
}
