//! Users (admin), the audit log (admin), and each user's own account: password and personal
//! API tokens.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use swarmkeeper_auth::store::{self as auth_store, AuditRecord, StoreError, User};
use swarmkeeper_auth::{check_password_policy, Action, NewApiToken, Role};

use crate::access::Caller;
use crate::error::AppError;
use crate::limits::Asker;
use crate::respond::{optional_number, Input, Reply};
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
    /// The roles a user may be given, for the page's forms.
    #[serde(skip)]
    pub roles: [Role; 3],
}

page!(UsersView, "users.html", "users");

fn store_error(e: StoreError) -> AppError {
    match e {
        StoreError::Sqlite(e) => AppError::internal(e),
        StoreError::UnknownUser(_) => AppError::NotFound(e.to_string()),
        StoreError::DuplicateUser(_) | StoreError::LastAdmin => AppError::Conflict(e.to_string()),
        StoreError::InvalidUsername(_) => AppError::BadInput(e.to_string()),
    }
}

/// `GET /users`, `GET /api/users`.
pub async fn users(State(state): State<AppState>) -> Result<Reply, AppError> {
    let users = auth_store::list_users(&state.auth()).map_err(store_error)?;
    Ok(Reply::page(UsersView {
        users: users.into_iter().map(UserRow::from).collect(),
        roles: Role::ALL,
    }))
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

/// `POST /users` (the form), `POST /api/users` (JSON, 201 with the user).
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    Input(new): Input<NewUser>,
) -> Result<Reply, AppError> {
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
    Ok(Reply::changed(
        StatusCode::CREATED,
        UserRow::from(user),
        "/users",
    ))
}

/// A change to a user: a role, or enabled/disabled. Either or both. The page's forms send
/// `disabled` as the text `true` or `false`.
#[derive(Deserialize)]
pub struct UserChange {
    pub role: Option<String>,
    pub disabled: Option<bool>,
}

/// `POST /users/{id}` (the form), `PATCH /api/users/{id}` (JSON, the user as changed).
pub async fn change_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Input(change): Input<UserChange>,
) -> Result<Reply, AppError> {
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
    Ok(Reply::changed(
        StatusCode::OK,
        UserRow::from(updated),
        "/users",
    ))
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

page!(AuditView, "audit.html", "audit");

/// `GET /audit`, `GET /api/audit`: a page of entries, newest first.
pub async fn audit(
    State(state): State<AppState>,
    Query(query): Query<AuditQuery>,
) -> Result<Reply, AppError> {
    let records =
        auth_store::audit_page(&state.auth(), AUDIT_PAGE, query.before).map_err(store_error)?;
    let next_before = (records.len() == AUDIT_PAGE)
        .then(|| records.last().map(|r| r.id))
        .flatten();
    Ok(Reply::page(AuditView {
        entries: records.into_iter().map(AuditRow::from).collect(),
        next_before,
    }))
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

/// The caller's tokens; the account page also shows a token just created, once.
#[derive(Serialize)]
pub struct TokensView {
    pub tokens: Vec<TokenRow>,
    #[serde(skip)]
    pub new_token: Option<String>,
}

page!(TokensView, "account.html", "account");

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
        new_token: None,
    })
}

/// `GET /account` (the account page), `GET /api/tokens`.
pub async fn tokens(State(state): State<AppState>, caller: Caller) -> Result<Reply, AppError> {
    Ok(Reply::page(tokens_view(&state, &caller)?))
}

#[derive(Deserialize)]
pub struct NewToken {
    pub name: String,
    /// Days until it stops working; none, 0 or an empty field for no expiry.
    #[serde(default, deserialize_with = "optional_number")]
    pub expires_in_days: Option<u32>,
}

/// The answer to a token creation: the only time the token is shown.
#[derive(Serialize)]
pub struct CreatedToken {
    pub id: String,
    pub token: String,
    pub expires: Option<Timestamp>,
}

const MAX_TOKEN_NAME: usize = 100;

/// `POST /account/tokens` (the form: the account page shows the token, once),
/// `POST /api/tokens` (JSON, 201 with the token).
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    Input(new): Input<NewToken>,
) -> Result<Reply, AppError> {
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
    let account = TokensView {
        new_token: Some(issued.token.clone()),
        ..tokens_view(&state, &caller)?
    };
    let created = CreatedToken {
        id: issued.id,
        token: issued.token,
        expires,
    };
    Ok(Reply::changed(StatusCode::CREATED, created, "/account").showing(account))
}

/// `POST /account/tokens/{id}/revoke` (the form), `DELETE /api/tokens/{id}` (204).
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Reply, AppError> {
    let revoked =
        auth_store::revoke_api_token(&state.auth(), caller.user.id, &id).map_err(store_error)?;
    if !revoked {
        return Err(AppError::NotFound(format!("you have no active token {id}")));
    }
    state.audit(&caller.user.name, "revoke-token", &id, "")?;
    Ok(Reply::done("/account"))
}

#[derive(Deserialize)]
pub struct PasswordChange {
    pub current: String,
    pub new: String,
}

/// `POST /account/password` (the form; then the login page, since a new password ends every
/// session), `POST /api/account/password` (204).
pub async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    Input(change): Input<PasswordChange>,
) -> Result<Reply, AppError> {
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
    )?;
    Ok(Reply::done("/login"))
}
