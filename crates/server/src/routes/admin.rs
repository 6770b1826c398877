//! Users (admin), the audit log (admin), and each user's own account: password and personal
//! API tokens.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use swarmkeeper_auth::store::{self as auth_store, AuditRecord, StoreError, User};
use swarmkeeper_auth::{check_password_policy, Action, NewApiToken, Role};

use crate::access::Caller;
use crate::error::AppError;
use crate::limits::Asker;
use crate::respond::{refused_fields, Input, Reply};
use crate::state::AppState;
use crate::views::{message_of, FieldError, Retype};

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
    /// The add-user form as posted when it was refused, and why (never the password).
    #[serde(skip)]
    pub form: UserForm,
    /// A change to one user (by id) that was refused, and why.
    #[serde(skip)]
    pub row_error: Option<(i64, FieldError)>,
}

impl UsersView {
    /// Why the change to user `id` was refused, if it was.
    pub fn row_error_of(&self, id: &i64) -> Option<&str> {
        let (refused, error) = self.row_error.as_ref()?;
        (refused == id).then_some(error.message.as_str())
    }
}

/// The add-user form's fields as posted, for showing it again: never the password, which
/// comes back empty with "enter again" when it was filled in.
#[derive(Default)]
pub struct UserForm {
    pub username: String,
    pub role: String,
    pub retype: Retype,
    /// Every field refused, each once (tryout 13 finding 5: one answer marks them all).
    pub errors: Vec<FieldError>,
}

impl UserForm {
    /// The message for `field`, if it was refused.
    pub fn error_of(&self, field: &str) -> Option<&str> {
        message_of(&self.errors, field)
    }
}

/// The message of `error` if it is about `field`.
fn error_of<'a>(error: &'a Option<FieldError>, field: &str) -> Option<&'a str> {
    message_of(error.as_slice(), field)
}

/// A refused form: the page `view` builds, shown again with the message next to the field
/// (422, or 409 for a name taken); its JSON twin gets the error naming the field.
async fn refuse<P: crate::respond::Page>(
    uri: &Uri,
    error: &FieldError,
    status: StatusCode,
    view: impl FnOnce() -> Result<P, AppError>,
) -> Result<Reply, AppError> {
    refused_fields(uri.path(), std::slice::from_ref(error), status, async {
        view()
    })
    .await
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

fn users_view(state: &AppState, form: UserForm) -> Result<UsersView, AppError> {
    let users = auth_store::list_users(&state.auth()).map_err(store_error)?;
    Ok(UsersView {
        users: users.into_iter().map(UserRow::from).collect(),
        roles: Role::ALL,
        form,
        row_error: None,
    })
}

/// `GET /users`, `GET /api/users`.
pub async fn users(State(state): State<AppState>) -> Result<Reply, AppError> {
    Ok(Reply::page(users_view(&state, UserForm::default())?))
}

#[derive(Deserialize)]
pub struct NewUser {
    pub username: String,
    pub role: String,
    pub password: String,
}

fn parse_role(role: &str) -> Result<Role, FieldError> {
    role.parse()
        .map_err(|e: swarmkeeper_auth::UnknownRole| FieldError::new("role", e.to_string()))
}

/// `POST /users` (the form), `POST /api/users` (JSON, 201 with the user). Bad input names its
/// field (the form comes back with the message next to it and nothing created).
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Input(new): Input<NewUser>,
) -> Result<Reply, AppError> {
    let refuse_with = |errors: Vec<FieldError>, status: StatusCode| {
        let fields = errors.clone();
        let form = UserForm {
            username: new.username.clone(),
            role: new.role.clone(),
            retype: Retype::of(&[("password", &new.password)]),
            errors,
        };
        let state = &state;
        async move {
            refused_fields(uri.path(), &fields, status, async {
                users_view(state, form)
            })
            .await
        }
    };
    // Every field checked, so one answer names all that are wrong.
    let username = auth_store::validate_username(&new.username)
        .map_err(|e| FieldError::new("username", e.to_string()));
    let role = parse_role(&new.role);
    let password = check_password_policy(&new.password)
        .map_err(|e| FieldError::new("password", e.to_string()));
    let role = match (username, role, password) {
        (Ok(()), Ok(role), Ok(())) => role,
        (username, role, password) => {
            let errors = [username.err(), role.err(), password.err()]
                .into_iter()
                .flatten()
                .collect();
            return refuse_with(errors, StatusCode::UNPROCESSABLE_ENTITY).await;
        }
    };
    let hash = match state
        .passwords
        .admit(Asker::Known)?
        .hash(new.password.clone())
        .await?
    {
        Ok(hash) => hash,
        Err(e) => {
            let error = FieldError::new("password", e.to_string());
            return refuse_with(vec![error], StatusCode::UNPROCESSABLE_ENTITY).await;
        }
    };
    let created =
        auth_store::create_user(&state.auth(), &new.username, role, &hash, Timestamp::now());
    let user = match created {
        Ok(user) => user,
        Err(e @ StoreError::DuplicateUser(_)) => {
            let error = FieldError::new("username", e.to_string());
            return refuse_with(vec![error], StatusCode::CONFLICT).await;
        }
        Err(e) => return Err(store_error(e)),
    };
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

/// A user change made: the user before and after, and the audit detail.
type Applied = (User, User, Vec<String>);

/// Applies a role and/or an enabled/disabled change to user `id`; `Err(FieldError)` (nothing changed by it) when it would leave no
/// enabled admin.
fn apply_user_change(
    state: &AppState,
    id: i64,
    role: Option<Role>,
    disabled: Option<bool>,
) -> Result<Result<Applied, FieldError>, AppError> {
    let conn = state.auth();
    let user = auth_store::user_by_id(&conn, id)
        .map_err(store_error)?
        .ok_or_else(|| AppError::NotFound(format!("no user with id {id}")))?;
    let last_admin = |field: &'static str| {
        move |e: StoreError| match e {
            StoreError::LastAdmin => Ok(FieldError::new(field, e.to_string())),
            e => Err(store_error(e)),
        }
    };
    let mut detail = Vec::new();
    if let Some(role) = role {
        if let Err(e) = auth_store::set_user_role(&conn, id, role) {
            return last_admin("role")(e).map(Err);
        }
        detail.push(format!("role={role}"));
    }
    if let Some(disabled) = disabled {
        // Disabling also ends the user's sessions.
        if let Err(e) = auth_store::set_user_disabled(&conn, id, disabled) {
            return last_admin("disabled")(e).map(Err);
        }
        detail.push(format!("disabled={disabled}"));
    }
    let updated = auth_store::user_by_id(&conn, id)
        .map_err(store_error)?
        .ok_or_else(|| AppError::NotFound(format!("no user with id {id}")))?;
    Ok(Ok((user, updated, detail)))
}

/// `POST /users/{id}` (the form), `PATCH /api/users/{id}` (JSON, the user as changed). A role
/// the server does not know (422) or a change that would leave no enabled admin (409) comes
/// back on the page, next to that user's row; the role is checked before anything changes.
pub async fn change_user(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path(id): Path<i64>,
    Input(change): Input<UserChange>,
) -> Result<Reply, AppError> {
    let refuse_row = |error: FieldError, status: StatusCode| {
        let state = &state;
        let uri = &uri;
        async move {
            refuse(uri, &error.clone(), status, || {
                Ok(UsersView {
                    row_error: Some((id, error)),
                    ..users_view(state, UserForm::default())?
                })
            })
            .await
        }
    };
    let role = match change.role.as_deref().map(parse_role).transpose() {
        Ok(role) => role,
        Err(error) => return refuse_row(error, StatusCode::UNPROCESSABLE_ENTITY).await,
    };
    // The connection is not held across an await: the refusal is built after it is let go.
    let applied = apply_user_change(&state, id, role, change.disabled)?;
    let (user, updated, detail) = match applied {
        Ok(applied) => applied,
        Err(error) => return refuse_row(error, StatusCode::CONFLICT).await,
    };
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

/// The caller's tokens; the account page also shows a token just created, once, and its forms
/// as posted when one was refused.
#[derive(Serialize)]
pub struct TokensView {
    pub tokens: Vec<TokenRow>,
    #[serde(skip)]
    pub new_token: Option<String>,
    #[serde(skip)]
    pub token_form: TokenForm,
    /// Why a password change was refused (the passwords are never shown again).
    #[serde(skip)]
    pub password_error: Option<FieldError>,
}

/// The new-token form's fields as posted, for showing it again.
#[derive(Default)]
pub struct TokenForm {
    pub name: String,
    pub expires_in_days: String,
    /// Every refused field, with why.
    pub errors: Vec<FieldError>,
}

impl TokenForm {
    /// The message for `field`, if it was refused.
    pub fn error_of(&self, field: &str) -> Option<&str> {
        message_of(&self.errors, field)
    }
}

impl TokensView {
    /// The password form's message for `field` (`current` or `new`), if it is the one refused.
    pub fn password_error_of(&self, field: &str) -> Option<&str> {
        error_of(&self.password_error, field)
    }
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
        token_form: TokenForm::default(),
        password_error: None,
    })
}

/// A token just made, waiting in [`crate::outcomes`] for the account page that shows it once.
struct ShownToken(String);

/// The query field that carries a [`ShownToken`]'s key to the account page.
const NEW_TOKEN_FIELD: &str = "new_token";

/// `GET /account` (the account page; `?new_token=KEY` right after the form made one, shown
/// once), `GET /api/tokens`.
pub async fn tokens(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
) -> Result<Reply, AppError> {
    let shown = state
        .outcomes
        .take_asked::<ShownToken>(&uri, caller.user.id, NEW_TOKEN_FIELD);
    Ok(Reply::page(TokensView {
        new_token: shown.map(|ShownToken(token)| token),
        ..tokens_view(&state, &caller)?
    }))
}

#[derive(Deserialize)]
pub struct NewToken {
    pub name: String,
    /// Days until it stops working; none, 0 or an empty field for no expiry. Read as the
    /// text given (a JSON number or a form's field) so that a bad value comes back to the
    /// form next to its field rather than as a bare error.
    #[serde(default, deserialize_with = "number_text")]
    pub expires_in_days: Option<String>,
}

/// A JSON number or string, or a form field's text, as its text; `null` as none.
fn number_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        Number(serde_json::Number),
        Text(String),
    }
    Ok(Option::<Given>::deserialize(d)?.map(|given| match given {
        Given::Number(n) => n.to_string(),
        Given::Text(t) => t,
    }))
}

/// `expires_in_days` as given: `None` for no expiry (absent, empty or 0).
fn expiry_days(given: Option<&str>) -> Result<Option<u32>, FieldError> {
    let text = given.unwrap_or_default().trim();
    match text.parse::<u32>() {
        _ if text.is_empty() => Ok(None),
        Ok(0) => Ok(None),
        Ok(days) => Ok(Some(days)),
        Err(_) => Err(FieldError::new(
            "expires_in_days",
            format!(
                "{text:?} is not a number of days: give 1 or more, or 0 or nothing for a token \
                 that never expires"
            ),
        )),
    }
}

/// The answer to a token creation: the only time the token is shown.
#[derive(Serialize)]
pub struct CreatedToken {
    pub id: String,
    pub token: String,
    pub expires: Option<Timestamp>,
}

const MAX_TOKEN_NAME: usize = 100;

/// `POST /account/tokens` (the form: POST → 303 → GET `/account?new_token=KEY`, whose first
/// GET shows the token; a reload shows neither it nor makes a second one),
/// `POST /api/tokens` (JSON, 201 with the token, nothing kept). Bad input names its field
/// (the form comes back with the message next to it and no token made).
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Input(new): Input<NewToken>,
) -> Result<Reply, AppError> {
    let name = new.name.trim();
    let now = Timestamp::now();
    let mut errors = Vec::new();
    if name.is_empty() || name.len() > MAX_TOKEN_NAME {
        errors.push(FieldError::new(
            "name",
            format!("give the token a name of 1 to {MAX_TOKEN_NAME} bytes"),
        ));
    }
    let expires = expiry_days(new.expires_in_days.as_deref()).and_then(|days| match days {
        None => Ok(None),
        Some(days) => now
            .checked_add(SignedDuration::from_hours(24 * i64::from(days)))
            .map(Some)
            .map_err(|_| {
                FieldError::new(
                    "expires_in_days",
                    format!("{days} days from now is past the last date this server can keep"),
                )
            }),
    });
    let expires = match expires {
        Ok(expires) if errors.is_empty() => expires,
        refused_expiry => {
            errors.extend(refused_expiry.err());
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return refused_fields(uri.path(), &errors.clone(), status, async {
                Ok(TokensView {
                    token_form: TokenForm {
                        name: new.name.clone(),
                        expires_in_days: new.expires_in_days.clone().unwrap_or_default(),
                        errors,
                    },
                    ..tokens_view(&state, &caller)?
                })
            })
            .await;
        }
    };
    let issued = NewApiToken::generate();
    auth_store::insert_api_token(&state.auth(), caller.user.id, name, &issued, expires, now)
        .map_err(store_error)?;
    state.audit(&caller.user.name, "create-token", &issued.id, name)?;
    let then = state.outcomes.redirect(
        uri.path(),
        caller.user.id,
        ShownToken(issued.token.clone()),
        "/account",
        NEW_TOKEN_FIELD,
    );
    let created = CreatedToken {
        id: issued.id,
        token: issued.token,
        expires,
    };
    Ok(Reply::changed(StatusCode::CREATED, created, then))
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
/// session), `POST /api/account/password` (204). A refusal names its field (the form comes back
/// with the message next to it, the password unchanged).
pub async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Input(change): Input<PasswordChange>,
) -> Result<Reply, AppError> {
    let hashed = match check_password_policy(&change.new) {
        Err(e) => Err(FieldError::new("new", e.to_string())),
        Ok(()) => state
            .passwords
            .admit(Asker::Known)?
            .change_password(
                change.current,
                caller.user.password_hash.clone(),
                change.new,
            )
            .await?
            .ok_or_else(|| FieldError::new("current", "the current password is wrong".to_owned()))
            .and_then(|hashed| hashed.map_err(|e| FieldError::new("new", e.to_string()))),
    };
    let hash = match hashed {
        Ok(hash) => hash,
        Err(error) => {
            return refuse(&uri, &error, StatusCode::UNPROCESSABLE_ENTITY, || {
                Ok(TokensView {
                    password_error: Some(error.clone()),
                    ..tokens_view(&state, &caller)?
                })
            })
            .await;
        }
    };
    auth_store::set_password_hash(&state.auth(), caller.user.id, &hash).map_err(store_error)?;
    state.audit(
        &caller.user.name,
        Action::ChangeOwnPassword.as_str(),
        &caller.user.name,
        "",
    )?;
    Ok(Reply::done("/login"))
}
