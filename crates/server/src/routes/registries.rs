//! `/registries` (admin): the private registries the server's deploys, service changes and
//! auto-deploy checks authenticate to; add, test, remove. A secret posted here is sealed
//! before it is stored and never shown again, in a page, the API, a log or the audit log
//! (which records who added, tested or removed which registry).

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use swarmkeeper_auth::hook::{self, HookScope};
use swarmkeeper_auth::{Action, SealingKey};
use swarmkeeper_registry::{Keychain, RegistryError};

use crate::access::Caller;
use crate::error::AppError;
use crate::registries::{source, NewRegistry, Refused, RegistryForm, RegistryRow, NO_KEY};
use crate::respond::{refused_fields, Input, Reply};
use crate::sealed;
use crate::state::AppState;
use crate::views::FieldError;

/// The Registries page's data.
#[derive(Serialize)]
pub struct RegistriesView {
    pub registries: Vec<RegistryRow>,
    /// Whether the server can seal secrets (it has a `--secret-key-file`).
    pub can_store_secrets: bool,
    /// What to do without a key; `None` (JSON `null`) when the server has one.
    pub no_key: Option<&'static str>,
    /// When the registry hook's token was made, and by whom; never the token.
    pub hook_token: Option<HookTokenRow>,
    /// The outcome of a test just run from the page.
    #[serde(skip)]
    pub tested: Option<Tested>,
    /// The add-registry form as it was posted when it was refused (never a secret); empty
    /// otherwise.
    #[serde(skip)]
    pub form: RegistryForm,
}

#[derive(Clone, Serialize)]
pub struct HookTokenRow {
    pub created_by: String,
    pub created: Timestamp,
}

/// A registry test's outcome.
#[derive(Clone, Serialize)]
pub struct Tested {
    pub host: String,
    pub ok: bool,
    pub message: String,
}

page!(RegistriesView, "registries.html", "registries");

fn view(state: &AppState) -> Result<RegistriesView, AppError> {
    let hook_token = hook::hook_token_info(&state.auth(), &HookScope::Registry)
        .map_err(AppError::internal)?
        .map(|info| HookTokenRow {
            created_by: info.created_by,
            created: info.created,
        });
    Ok(RegistriesView {
        registries: state.registries.rows().to_vec(),
        can_store_secrets: state.registries.key().is_some(),
        no_key: state.registries.key().is_none().then_some(NO_KEY),
        hook_token,
        tested: None,
        form: RegistryForm::default(),
    })
}

/// What `GET /registries` may be asked besides the page.
#[derive(Deserialize)]
pub struct RegistriesQuery {
    /// A registry test just run: its outcome, kept for its runner ([`crate::outcomes`]).
    pub tested: Option<u64>,
}

/// `GET /registries`, `GET /api/registries`; `?tested=KEY` after a registry test; after the
/// hook token form, `?hook_token=KEY` shows the new token once instead.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Query(query): Query<RegistriesQuery>,
) -> Result<Reply, AppError> {
    if let Some(shown) = super::hooks::shown_hook_token(&state, &caller, &uri) {
        return Ok(shown);
    }
    let mut page = view(&state)?;
    if let Some(key) = query.tested {
        page.tested = state.outcomes.get::<Tested>(caller.user.id, key);
    }
    Ok(Reply::page(page))
}

/// `POST /registries`, `POST /api/registries` (201 with the row, never the secret): the
/// registry is added as posted; `POST …/test` first to try it. A field to fix or a host
/// taken brings the form back (422, 409 for a host taken) with the message next to the field
/// and what was typed but the secrets; its JSON twin answers 400 or 409 naming the field.
pub async fn add(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Input(new): Input<NewRegistry>,
) -> Result<Reply, AppError> {
    let checked = new.seal(state.registries.key(), &caller.user.name, Timestamp::now());
    let (errors, status) = match checked {
        Ok(stored) if !is_taken(&state, &stored.host) => return add_checked(state, caller, stored),
        Ok(stored) => (
            // The words `sealed::add` would refuse it with, said before the form is lost.
            vec![FieldError::new(
                "host",
                format!(
                    "{} is taken here: remove the registry of that host first to change it",
                    stored.host
                ),
            )],
            StatusCode::CONFLICT,
        ),
        Err(Refused::Fields(errors)) => (errors, StatusCode::UNPROCESSABLE_ENTITY),
        Err(no_key @ Refused::NoKey) => return Err(no_key.into()),
    };
    refused_fields(uri.path(), &errors.clone(), status, async {
        Ok(RegistriesView {
            form: RegistryForm::of(&new, errors),
            ..view(&state)?
        })
    })
    .await
}

/// Whether a registry added on the page has `host` already.
fn is_taken(state: &AppState, host: &str) -> bool {
    state
        .registries
        .rows()
        .iter()
        .any(|r| r.id.is_some() && r.host == host)
}

fn add_checked(
    state: AppState,
    caller: Caller,
    stored: swarmkeeper_store::StoredRegistry,
) -> Result<Reply, AppError> {
    let id = sealed::add::<sealed::Registry>(&state, &caller, &stored)?;
    let row = state
        .registries
        .row(id)
        .ok_or_else(|| AppError::internal("the registry just added is not listed"))?;
    Ok(Reply::changed(StatusCode::CREATED, row, "/registries"))
}

/// `POST /registries/{id}/remove`, `DELETE /api/registries/{id}`.
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Reply, AppError> {
    sealed::remove::<sealed::Registry>(&state, &caller, id)?;
    Ok(Reply::done("/registries"))
}

/// `POST /api/registries/test`: whether the registry accepts these credentials (`GET /v2/`
/// as `docker login` does), before anything is stored. 200 `{"ok": true}`; refused
/// credentials 400, an unreachable registry 502, each with what the registry said.
pub async fn test_new(
    State(state): State<AppState>,
    caller: Caller,
    Input(new): Input<NewRegistry>,
) -> Result<Reply, AppError> {
    // Sealed and opened again, so the test takes the very path a stored one does, with a key
    // of its own: a test needs none from the server.
    let key = SealingKey::ephemeral();
    let stored = new.seal(Some(&key), &caller.user.name, Timestamp::now())?;
    let source = source(&stored, Some(&key)).map_err(AppError::BadInput)?;
    let mut keychain = Keychain::new();
    keychain.add(&stored.host, source);
    let tested = try_login(&state, &keychain, &stored.host).await?;
    Ok(Reply::changed(StatusCode::OK, tested, "/registries"))
}

/// `POST /registries/{id}/test`, `POST /api/registries/{id}/test`: a stored registry tried
/// with the credentials every deploy takes.
pub async fn test(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path(id): Path<i64>,
) -> Result<Reply, AppError> {
    let row = state
        .registries
        .row(id)
        .ok_or_else(|| AppError::NotFound(format!("no registry with id {id}")))?;
    if let Some(problem) = &row.problem {
        return Err(AppError::Conflict(format!("{}: {problem}", row.host)));
    }
    let tested = try_login(&state, &state.registries.keychain(), &row.host).await?;
    state.audit(
        &caller.user.name,
        Action::ManageRegistries.as_str(),
        &row.host,
        if tested.ok {
            "tested: accepted"
        } else {
            "tested: refused"
        },
    )?;
    // The form goes on to the page, which shows the outcome (a reload runs no second test).
    let then = state.outcomes.redirect(
        uri.path(),
        caller.user.id,
        tested.clone(),
        "/registries",
        "tested",
    );
    Ok(Reply::changed(StatusCode::OK, tested, then))
}

/// `GET /v2/` with the keychain's credentials for `host`. Refused credentials are an answer
/// (`ok: false`); a registry that cannot be reached is an error (502).
async fn try_login(state: &AppState, keychain: &Keychain, host: &str) -> Result<Tested, AppError> {
    let client = state.registries.client(&state.engine).await?;
    let outcome = async {
        let auth = keychain.credentials_for(host).await?;
        client.check_login(host, auth.as_ref()).await
    }
    .await;
    match outcome {
        Ok(()) => Ok(Tested {
            host: host.to_string(),
            ok: true,
            message: "the registry accepts these credentials".to_string(),
        }),
        Err(e) if e.is_bad_input() => Err(AppError::BadInput(e.to_string())),
        Err(e) => Err(unreachable(e)),
    }
}

fn unreachable(e: RegistryError) -> AppError {
    AppError::Rejected {
        status: StatusCode::BAD_GATEWAY,
        message: e.to_string(),
    }
}
