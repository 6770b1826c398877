//! Auto-deploy's hooks and a service's auto-deploy actions.
//!
//! - `POST /api/hooks/registry`: a distribution registry's push notifications (its
//!   `notifications.endpoints` with `headers: {Authorization: [Bearer TOKEN]}`); every service
//!   following a tag the envelope names is checked now.
//! - `POST /api/hooks/services/{name}`: a CI job's "I pushed", with the service's own token.
//!
//! A hook only brings a registry check forward: nothing is deployed on a hook's word, so a
//! leaked hook token can make the server ask the registry sooner, nothing more. Tokens are
//! checked before anything else is said (a wrong one is 401, whether or not the service
//! exists).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use swarmkeeper_auth::hook::{self, HookScope, NewHookToken};
use swarmkeeper_auth::{bearer_token, Action};
use swarmkeeper_autodeploy::{pushed_tags, LABEL_ENABLED, LABEL_INTERVAL};
use swarmkeeper_engine::set_label;
use swarmkeeper_reference::Digest;

use crate::access::Caller;
use crate::error::AppError;
use crate::respond::{Input, Reply};
use crate::routes::services::inspect;
use crate::state::AppState;

/// What a hook answers (202): the services whose check it brought forward.
#[derive(Serialize)]
pub struct HookAnswer {
    pub checking: Vec<String>,
}

fn presented(headers: &HeaderMap) -> Result<&str, AppError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .ok_or(AppError::Unauthenticated)
}

fn require_token(state: &AppState, scope: &HookScope, headers: &HeaderMap) -> Result<(), AppError> {
    let token = presented(headers)?;
    let valid = hook::check_hook_token(&state.auth(), scope, token).map_err(AppError::internal)?;
    if valid {
        Ok(())
    } else {
        Err(AppError::Unauthenticated)
    }
}

/// `POST /api/hooks/registry`.
pub async fn registry(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    require_token(&state, &HookScope::Registry, &headers)?;
    let tags = pushed_tags(&body).map_err(|e| AppError::BadInput(format!("body: {e}")))?;
    let checking = state.autodeploy.pushed(&tags);
    tracing::info!(
        pushes = tags.len(),
        services = checking.len(),
        "registry hook: checking the services that follow the pushed tags"
    );
    Ok((StatusCode::ACCEPTED, Json(HookAnswer { checking })).into_response())
}

/// `POST /api/hooks/services/{name}`.
pub async fn service(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    require_token(&state, &HookScope::Service(name.clone()), &headers)?;
    match state.autodeploy.check_now(&name) {
        Some(_) => Ok((
            StatusCode::ACCEPTED,
            Json(HookAnswer {
                checking: vec![name],
            }),
        )
            .into_response()),
        None => Err(AppError::Conflict(format!(
            "{name} is not followed by auto-deploy: label it {LABEL_ENABLED}=true"
        ))),
    }
}

/// A hook token just made: the only time it is shown.
#[derive(Serialize)]
pub struct CreatedHookToken {
    pub token: String,
    /// Where to send it, as `Authorization: Bearer TOKEN`.
    pub hook: String,
}

/// The page a form that made a hook token goes on to: the page it came from, asked with
/// `?hook_token=KEY` ([`shown_hook_token`]), once.
#[derive(Serialize)]
pub struct HookTokenView {
    #[serde(flatten)]
    pub created: CreatedHookToken,
    /// Where the form came from.
    pub back: String,
}

page!(HookTokenView, "hook_token.html", "services");

/// A new token for `scope` (the old one stops working), shown once.
pub fn new_hook_token(
    state: &AppState,
    caller: &Caller,
    uri: &Uri,
    scope: HookScope,
    action: Action,
    hook_path: String,
    back: String,
) -> Result<Reply, AppError> {
    let issued = NewHookToken::generate();
    hook::set_hook_token(
        &state.auth(),
        &scope,
        &issued,
        &caller.user.name,
        Timestamp::now(),
    )
    .map_err(AppError::internal)?;
    state.audit(
        &caller.user.name,
        action.as_str(),
        &hook_path,
        "new hook token",
    )?;
    let created = || CreatedHookToken {
        token: issued.token.clone(),
        hook: hook_path.clone(),
    };
    // POST → 303 → GET: a reload of the token's page never makes a second token (which would
    // stop the one just shown from working).
    let view = HookTokenView {
        created: created(),
        back: back.clone(),
    };
    let then = state
        .outcomes
        .redirect(uri.path(), caller.user.id, view, &back, "hook_token");
    Ok(Reply::changed(StatusCode::CREATED, created(), then))
}

/// The hook token `key` just made by `caller`, as its page, when the page `uri` is asked
/// with `?hook_token=KEY` in a browser; taken, so a reload shows the plain page.
pub fn shown_hook_token(state: &AppState, caller: &Caller, uri: &Uri) -> Option<Reply> {
    let view = state
        .outcomes
        .take_asked::<HookTokenView>(uri, caller.user.id, "hook_token")?;
    Some(Reply::page(view))
}

/// `POST /services/{name}/hook-token`, `POST /api/services/{name}/hook-token`.
pub async fn service_hook_token(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path(name): Path<String>,
) -> Result<Reply, AppError> {
    let service = inspect(&state, &name).await?;
    new_hook_token(
        &state,
        &caller,
        &uri,
        HookScope::Service(service.name.clone()),
        Action::ManageAutoDeploy,
        format!("/api/hooks/services/{}", service.name),
        format!("/services/{}", service.name),
    )
}

/// `POST /registries/hook-token`, `POST /api/registries/hook-token`.
pub async fn registry_hook_token(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
) -> Result<Reply, AppError> {
    new_hook_token(
        &state,
        &caller,
        &uri,
        HookScope::Registry,
        Action::ManageRegistries,
        "/api/hooks/registry".to_string(),
        "/registries".to_string(),
    )
}

/// Auto-deploy on or off for a service, and its poll interval.
#[derive(Deserialize)]
pub struct AutoDeployChange {
    /// `true`/`false` (JSON), `on`/`off` or `true`/`false` (a form).
    #[serde(deserialize_with = "on_off")]
    pub enabled: bool,
    /// A duration (`30s`, `5m`); empty or absent keeps the label as it is.
    #[serde(default)]
    pub interval: Option<String>,
}

fn on_off<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Bool(bool),
        Text(String),
    }
    match Either::deserialize(d)? {
        Either::Bool(b) => Ok(b),
        Either::Text(t) => match t.as_str() {
            "true" | "on" => Ok(true),
            "false" | "off" => Ok(false),
            other => Err(serde::de::Error::custom(format!(
                "{other:?} is not on, off, true or false"
            ))),
        },
    }
}

#[derive(Serialize)]
pub struct AutoDeployChanged {
    pub service: String,
    pub enabled: bool,
}

/// `POST /services/{name}/autodeploy`, `POST /api/services/{name}/autodeploy`: sets or
/// removes the `swarmkeeper.autodeploy` label (a label change replaces no task).
pub async fn set_autodeploy(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Input(change): Input<AutoDeployChange>,
) -> Result<Reply, AppError> {
    let interval = change
        .interval
        .as_deref()
        .map(str::trim)
        .filter(|i| !i.is_empty());
    if let Some(interval) = interval {
        let labels = [
            (LABEL_ENABLED.to_string(), "true".to_string()),
            (LABEL_INTERVAL.to_string(), interval.to_string()),
        ]
        .into_iter()
        .collect();
        swarmkeeper_autodeploy::settings(&labels)
            .map_err(|e| AppError::BadInput(format!("interval: {e}")))?;
    }
    let service = inspect(&state, &name).await?;
    let enabled = change.enabled;
    state
        .engine
        .change_service(service, None, |current| {
            let mut spec = current.spec.clone();
            set_label(&mut spec, LABEL_ENABLED, enabled.then_some("true"));
            if let Some(interval) = interval {
                set_label(&mut spec, LABEL_INTERVAL, Some(interval));
            }
            Ok(spec)
        })
        .await?;
    state.audit(
        &caller.user.name,
        Action::ManageAutoDeploy.as_str(),
        &name,
        &match (enabled, interval) {
            (true, Some(i)) => format!("auto-deploy on, every {i}"),
            (true, None) => "auto-deploy on".to_string(),
            (false, _) => "auto-deploy off".to_string(),
        },
    )?;
    state.autodeploy.relist();
    Ok(Reply::changed(
        StatusCode::OK,
        AutoDeployChanged {
            service: name.clone(),
            enabled,
        },
        format!("/services/{name}"),
    ))
}

/// `POST /services/{name}/autodeploy/check`, `POST /api/services/{name}/autodeploy/check`:
/// the service's tag checked now (202 with the service).
pub async fn check_now(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Reply, AppError> {
    match state.autodeploy.check_now(&name) {
        Some(_) => Ok(Reply::changed(
            StatusCode::ACCEPTED,
            HookAnswer {
                checking: vec![name.clone()],
            },
            format!("/services/{name}"),
        )),
        None => Err(AppError::Conflict(format!(
            "{name} is not followed by auto-deploy: turn it on first"
        ))),
    }
}

#[derive(Deserialize)]
pub struct ForgetFailure {
    pub digest: String,
}

/// `POST /services/{name}/autodeploy/forget`, `POST /api/services/{name}/autodeploy/forget`:
/// a digest remembered as failed may be tried again.
pub async fn forget_failure(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Input(forget): Input<ForgetFailure>,
) -> Result<Reply, AppError> {
    let digest = Digest::parse(forget.digest.trim())
        .map_err(|e| AppError::BadInput(format!("digest: {e}")))?;
    let service = inspect(&state, &name).await?;
    if !state
        .autodeploy
        .forget_failure(&state, &service.id, &digest)
    {
        return Err(AppError::NotFound(format!(
            "{digest} is not remembered as failed for {name}"
        )));
    }
    state.audit(
        &caller.user.name,
        Action::ManageAutoDeploy.as_str(),
        &name,
        &format!("forgot that {digest} failed"),
    )?;
    Ok(Reply::done(format!("/services/{name}")))
}
