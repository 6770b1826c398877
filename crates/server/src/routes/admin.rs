//! Users (admin), the audit log (admin), and each user's own account: password and personal
//! API tokens.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, Json};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use swarmkeeper_auth::store::{self as auth_store, AuditRecord, StoreError, User};
use swarmkeeper_auth::{check_password_policy, Action, NewApiToken, Role};

use crate::access::Caller;
use crate::error::AppError;
use crate::limits::Asker;
use crate::page::{render, when, Chrome};
use crate::state::AppState;

/// A user as listed: never the password hash.
#[derive(Serialize)]
pub struct UserRow {
    pub id: i64,
    pub name: String,
    pub role: &'static str,
    pub created: Timestamp,
    pub disabled: bool,
}

impl From<User> for UserRow {
    fn from(user: User) -> UserRow {
        UserRow {
            id: user.id,
            name: user.name,
            role: user.role.as_str(),
            created: user.created,
            disabled: user.disabled,
        }
    }
}

#[derive(Serialize)]
pub struct UsersView {
    pub users: Vec<UserRow>,
}

fn store_error(e: StoreError) -> AppError {
    match e {
        StoreError::Sqlite(e) => AppError::internal(e),
        StoreError::UnknownUser(_) => AppError::NotFound(e.to_string()),
        StoreError::DuplicateUser(_) | StoreError::LastAdmin => AppError::Conflict(e.to_string()),
        StoreError::InvalidUsername(_) => AppError::BadInput(e.to_string()),
    }
}

fn users_view(state: &AppState) -> Result<UsersView, AppError> {
    let users = auth_store::list_users(&state.auth()).map_err(store_error)?;
    Ok(UsersView {
        users: users.into_iter().map(UserRow::from).collect(),
    })
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage<'a> {
    chrome: Chrome,
    view: &'a UsersView,
    roles: [Role; 3],
}

impl UsersPage<'_> {
    fn when(&self, at: &Timestamp) -> String {
        when(*at)
    }
}

pub async fn users_page(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Html<String>, AppError> {
    caller.require(Action::ManageUsers)?;
    render(&UsersPage {
        chrome: Chrome::new(&caller, "users"),
        view: &users_view(&state)?,
        roles: Role::ALL,
    })
}

pub async fn users_api(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<UsersView>, AppError> {
    caller.require(Action::ManageUsers)?;
    Ok(Json(users_view(&state)?))
}

#[derive(Deserialize)]
pub struct NewUser {
    pub username: String,
    pub role: String,
    pub password: String,
}

fn parse_role(role: &str) -> Result<Role, AppError> {
    role.parse()
        .map_err(|e: swarmkeeper_auth::UnknownRole| AppError::BadInput(format!("role: {e}")))
}

async fn create_user(state: &AppState, caller: &Caller, new: NewUser) -> Result<UserRow, AppError> {
    caller.require(Action::ManageUsers)?;
    let role = parse_role(&new.role)?;
    auth_store::validate_username(&new.username).map_err(store_error)?;
    check_password_policy(&new.password)
        .map_err(|e| AppError::BadInput(format!("password: {e}")))?;
    let hash = state
        .passwords
        .admit(Asker::Known)?
        .hash(new.password)
        .await?
        .map_err(|e| AppError::BadInput(format!("password: {e}")))?;
    let user = auth_store::create_user(&state.auth(), &new.username, role, &hash, Timestamp::now())
        .map_err(store_error)?;
    state.audit(
        &caller.user.name,
        "create-user",
        &user.name,
        &format!("role={role}"),
    )?;
    Ok(user.into())
}

pub async fn create_user_form(
    State(state): State<AppState>,
    caller: Caller,
    Form(new): Form<NewUser>,
) -> Result<Response, AppError> {
    create_user(&state, &caller, new).await?;
    Ok(Redirect::to("/users").into_response())
}

pub async fn create_user_api(
    State(state): State<AppState>,
    caller: Caller,
    Json(new): Json<NewUser>,
) -> Result<(StatusCode, Json<UserRow>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(create_user(&state, &caller, new).await?),
    ))
}

/// A change to a user: a role, or enabled/disabled. Either or both.
#[derive(Deserialize)]
pub struct UserChange {
    pub role: Option<String>,
    pub disabled: Option<bool>,
}

/// The form's checkbox arrives as text.
#[derive(Deserialize)]
pub struct UserChangeForm {
    pub role: Option<String>,
    pub disabled: Option<String>,
}

fn change_user(
    state: &AppState,
    caller: &Caller,
    id: i64,
    change: UserChange,
) -> Result<UserRow, AppError> {
    caller.require(Action::ManageUsers)?;
    let conn = state.auth();
    let user = auth_store::user_by_id(&conn, id)
        .map_err(store_error)?
        .ok_or_else(|| AppError::NotFound(format!("no user with id {id}")))?;
    let mut detail = Vec::new();
    if let Some(role) = &change.role {
        let role = parse_role(role)?;
        auth_store::set_user_role(&conn, id, role).map_err(store_error)?;
        detail.push(format!("role={role}"));
    }
    if let Some(disabled) = change.disabled {
        // Disabling also ends the user's sessions.
        auth_store::set_user_disabled(&conn, id, disabled).map_err(store_error)?;
        detail.push(format!("disabled={disabled}"));
    }
    let updated = auth_store::user_by_id(&conn, id)
        .map_err(store_error)?
        .ok_or_else(|| AppError::NotFound(format!("no user with id {id}")))?;
    drop(conn);
    state.audit(
        &caller.user.name,
        "change-user",
        &user.name,
        &detail.join(" "),
    )?;
    Ok(updated.into())
}

pub async fn change_user_form(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Form(form): Form<UserChangeForm>,
) -> Result<Response, AppError> {
    let change = UserChange {
        role: form.role.filter(|r| !r.is_empty()),
        disabled: form.disabled.map(|d| d == "true"),
    };
    change_user(&state, &caller, id, change)?;
    Ok(Redirect::to("/users").into_response())
}

pub async fn change_user_api(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Json(change): Json<UserChange>,
) -> Result<Json<UserRow>, AppError> {
    Ok(Json(change_user(&state, &caller, id, change)?))
}

#[derive(Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: Timestamp,
    pub who: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

impl From<AuditRecord> for AuditRow {
    fn from(record: AuditRecord) -> AuditRow {
        AuditRow {
            id: record.id,
            at: record.entry.at,
            who: record.entry.who,
            action: record.entry.action,
            target: record.entry.target,
            detail: record.entry.detail,
        }
    }
}

#[derive(Serialize)]
pub struct AuditView {
    pub entries: Vec<AuditRow>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next_before: Option<i64>,
}

#[derive(Deserialize)]
pub struct AuditQuery {
    pub before: Option<i64>,
}

const AUDIT_PAGE: usize = 100;

fn audit_view(state: &AppState, before: Option<i64>) -> Result<AuditView, AppError> {
    let records = auth_store::audit_page(&state.auth(), AUDIT_PAGE, before).map_err(store_error)?;
    let next_before = (records.len() == AUDIT_PAGE)
        .then(|| records.last().map(|r| r.id))
        .flatten();
    Ok(AuditView {
        entries: records.into_iter().map(AuditRow::from).collect(),
        next_before,
    })
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage<'a> {
    chrome: Chrome,
    view: &'a AuditView,
}

impl AuditPage<'_> {
    fn when(&self, at: &Timestamp) -> String {
        when(*at)
    }
}

pub async fn audit_page(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<AuditQuery>,
) -> Result<Html<String>, AppError> {
    caller.require(Action::ViewAudit)?;
    render(&AuditPage {
        chrome: Chrome::new(&caller, "audit"),
        view: &audit_view(&state, query.before)?,
    })
}

pub async fn audit_api(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<AuditQuery>,
) -> Result<Json<AuditView>, AppError> {
    caller.require(Action::ViewAudit)?;
    Ok(Json(audit_view(&state, query.before)?))
}

/// A personal token as listed: never its hash.
#[derive(Serialize)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub created: Timestamp,
    pub expires: Option<Timestamp>,
    pub last_used: Option<Timestamp>,
    pub revoked: bool,
}

#[derive(Serialize)]
pub struct TokensView {
    pub tokens: Vec<TokenRow>,
}

fn tokens_view(state: &AppState, caller: &Caller) -> Result<TokensView, AppError> {
    let tokens = auth_store::list_api_tokens(&state.auth(), caller.user.id).map_err(store_error)?;
    Ok(TokensView {
        tokens: tokens
            .into_iter()
            .map(|t| TokenRow {
                id: t.id,
                name: t.name,
                created: t.created,
                expires: t.expires,
                last_used: t.last_used,
                revoked: t.revoked,
            })
            .collect(),
    })
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    chrome: Chrome,
    view: &'a TokensView,
    /// A token just created: shown this once.
    new_token: &'a str,
    message: &'a str,
}

impl AccountPage<'_> {
    fn when(&self, at: &Timestamp) -> String {
        when(*at)
    }

    fn maybe(&self, at: &Option<Timestamp>) -> String {
        at.map_or_else(|| "never".to_owned(), when)
    }
}

fn account_page_with(
    state: &AppState,
    caller: &Caller,
    new_token: &str,
    message: &str,
) -> Result<Html<String>, AppError> {
    render(&AccountPage {
        chrome: Chrome::new(caller, "account"),
        view: &tokens_view(state, caller)?,
        new_token,
        message,
    })
}

pub async fn account_page(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Html<String>, AppError> {
    caller.require(Action::ManageOwnTokens)?;
    account_page_with(&state, &caller, "", "")
}

pub async fn tokens_api(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<TokensView>, AppError> {
    caller.require(Action::ManageOwnTokens)?;
    Ok(Json(tokens_view(&state, &caller)?))
}

#[derive(Deserialize)]
pub struct NewToken {
    pub name: String,
    /// Days until it stops working; none or 0 for no expiry.
    pub expires_in_days: Option<u32>,
}

#[derive(Deserialize)]
pub struct NewTokenForm {
    pub name: String,
    #[serde(default)]
    pub expires_in_days: String,
}

/// The answer to a token creation: the only time the token is shown.
#[derive(Serialize)]
pub struct CreatedToken {
    pub id: String,
    pub token: String,
    pub expires: Option<Timestamp>,
}

const MAX_TOKEN_NAME: usize = 100;

fn create_token(
    state: &AppState,
    caller: &Caller,
    new: NewToken,
) -> Result<CreatedToken, AppError> {
    caller.require(Action::ManageOwnTokens)?;
    let name = new.name.trim();
    if name.is_empty() || name.len() > MAX_TOKEN_NAME {
        return Err(AppError::BadInput(format!(
            "name: give the token a name of 1 to {MAX_TOKEN_NAME} bytes"
        )));
    }
    let now = Timestamp::now();
    let expires = match new.expires_in_days {
        None | Some(0) => None,
        Some(days) => Some(
            now.checked_add(SignedDuration::from_hours(24 * i64::from(days)))
                .map_err(|e| AppError::BadInput(format!("expires_in_days: {e}")))?,
        ),
    };
    let issued = NewApiToken::generate();
    auth_store::insert_api_token(&state.auth(), caller.user.id, name, &issued, expires, now)
        .map_err(store_error)?;
    state.audit(&caller.user.name, "create-token", &issued.id, name)?;
    Ok(CreatedToken {
        id: issued.id,
        token: issued.token,
        expires,
    })
}

pub async fn create_token_form(
    State(state): State<AppState>,
    caller: Caller,
    Form(form): Form<NewTokenForm>,
) -> Result<Html<String>, AppError> {
    let days = match form.expires_in_days.trim() {
        "" => None,
        text => Some(text.parse().map_err(|_| {
            AppError::BadInput(format!("expires_in_days: {text:?} is not a number of days"))
        })?),
    };
    let created = create_token(
        &state,
        &caller,
        NewToken {
            name: form.name,
            expires_in_days: days,
        },
    )?;
    account_page_with(&state, &caller, &created.token, "")
}

pub async fn create_token_api(
    State(state): State<AppState>,
    caller: Caller,
    Json(new): Json<NewToken>,
) -> Result<(StatusCode, Json<CreatedToken>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(create_token(&state, &caller, new)?),
    ))
}

fn revoke_token(state: &AppState, caller: &Caller, id: &str) -> Result<(), AppError> {
    caller.require(Action::ManageOwnTokens)?;
    let revoked =
        auth_store::revoke_api_token(&state.auth(), caller.user.id, id).map_err(store_error)?;
    if !revoked {
        return Err(AppError::NotFound(format!("you have no active token {id}")));
    }
    state.audit(&caller.user.name, "revoke-token", id, "")
}

pub async fn revoke_token_form(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    revoke_token(&state, &caller, &id)?;
    Ok(Redirect::to("/account").into_response())
}

pub async fn revoke_token_api(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    revoke_token(&state, &caller, &id)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct PasswordChange {
    pub current: String,
    pub new: String,
}

async fn change_password(
    state: &AppState,
    caller: &Caller,
    change: PasswordChange,
) -> Result<(), AppError> {
    caller.require(Action::ChangeOwnPassword)?;
    check_password_policy(&change.new)
        .map_err(|e| AppError::BadInput(format!("new password: {e}")))?;
    let hash = state
        .passwords
        .admit(Asker::Known)?
        .change_password(
            change.current,
            caller.user.password_hash.clone(),
            change.new,
        )
        .await?
        .ok_or_else(|| AppError::BadInput("current password: wrong password".to_owned()))?
        .map_err(|e| AppError::BadInput(format!("new password: {e}")))?;
    auth_store::set_password_hash(&state.auth(), caller.user.id, &hash).map_err(store_error)?;
    state.audit(
        &caller.user.name,
        Action::ChangeOwnPassword.as_str(),
        &caller.user.name,
        "",
    )
}

pub async fn change_password_form(
    State(state): State<AppState>,
    caller: Caller,
    Form(change): Form<PasswordChange>,
) -> Result<Response, AppError> {
    change_password(&state, &caller, change).await?;
    // Changing the password ends every session, this one included.
    Ok(Redirect::to("/login").into_response())
}

pub async fn change_password_api(
    State(state): State<AppState>,
    caller: Caller,
    Json(change): Json<PasswordChange>,
) -> Result<StatusCode, AppError> {
    change_password(&state, &caller, change).await?;
    Ok(StatusCode::NO_CONTENT)
}
