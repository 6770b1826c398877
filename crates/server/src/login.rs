//! Logging in and out, and the first-start setup page that turns the setup token printed in the
//! server's log into the first admin.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use askama::Template;
use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use jiff::Timestamp;
use serde::Deserialize;
use swarmkeeper_auth::store::{self as auth_store};
use swarmkeeper_auth::{
    check_password_policy, clear_session_cookie, hash_password, session_cookie, verify_login,
    LoginDecision, LoginKey, Role,
};

use crate::access::session_token;
use crate::error::AppError;
use crate::page::render;
use crate::state::AppState;

/// The client's address as the socket saw it. Forwarding headers are not trusted: anyone can
/// write them, and the limiter also counts per user name.
pub struct ClientAddr(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<ClientAddr, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip()),
        ))
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    next: &'a str,
    error: &'a str,
    setup: bool,
}

#[derive(Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

/// Only a path on this server: `//evil.example` or `https://…` would make the login page an
/// open redirect.
fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") {
        next
    } else {
        "/"
    }
}

pub async fn login_page(
    State(state): State<AppState>,
    Query(query): Query<NextQuery>,
) -> Result<Html<String>, AppError> {
    render(&LoginPage {
        next: safe_next(&query.next),
        error: "",
        setup: setup_pending(&state),
    })
}

fn setup_pending(state: &AppState) -> bool {
    state
        .setup
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .is_some_and(|setup| !setup.is_used())
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    next: String,
}

pub async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    let now = Timestamp::now();
    let key = LoginKey::new(&form.username, client);
    let decision = state
        .limiter
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .check(&key, now);
    if let LoginDecision::LockedOut { until } = decision {
        state.audit(
            &form.username,
            "login-refused",
            &client.to_string(),
            "rate limited",
        )?;
        return Err(AppError::TooManyAttempts(until.to_string()));
    }
    let user = auth_store::user_by_name(&state.auth(), &form.username.to_ascii_lowercase())
        .map_err(AppError::internal)?
        .filter(|user| !user.disabled);
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let password = form.password;
    // argon2 takes tens of milliseconds on purpose: off the async threads. An unknown user
    // is verified against a dummy hash so the answer takes as long either way.
    let ok = tokio::task::spawn_blocking(move || verify_login(&password, stored.as_deref()))
        .await
        .map_err(AppError::internal)?;
    let next = safe_next(&form.next).to_owned();
    let Some(user) = user.filter(|_| ok) else {
        state
            .limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record_failure(&key, now);
        state.audit(&form.username, "login-failed", &client.to_string(), "")?;
        let page = render(&LoginPage {
            next: &next,
            error: "Wrong user name or password.",
            setup: setup_pending(&state),
        })?;
        return Ok((axum::http::StatusCode::UNAUTHORIZED, page).into_response());
    };
    state
        .limiter
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .record_success(&key);
    let session =
        auth_store::create_session(&state.auth(), user.id, now).map_err(AppError::internal)?;
    state.audit(&user.name, "login", &client.to_string(), "")?;
    let cookie = session_cookie(
        &session.token,
        state.config.session_policy.cookie_max_age(now, now),
    );
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response())
}

/// Ends the session. Behind [`crate::access::authenticate`], so it needs the CSRF token: a
/// cross-site request cannot log anyone out.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if let Some(token) = session_token(&headers) {
        auth_store::end_session(&state.auth(), token).map_err(AppError::internal)?;
    }
    Ok((
        [(header::SET_COOKIE, clear_session_cookie())],
        Redirect::to("/login"),
    )
        .into_response())
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage<'a> {
    error: &'a str,
}

pub async fn setup_page(State(state): State<AppState>) -> Result<Response, AppError> {
    if !setup_pending(&state) {
        return Ok(Redirect::to("/login").into_response());
    }
    Ok(render(&SetupPage { error: "" })?.into_response())
}

#[derive(Deserialize)]
pub struct SetupForm {
    token: String,
    username: String,
    password: String,
}

pub async fn setup(
    State(state): State<AppState>,
    Form(form): Form<SetupForm>,
) -> Result<Response, AppError> {
    let refuse = |error: String| -> Result<Response, AppError> {
        let page = render(&SetupPage { error: &error })?;
        Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
    };
    if !setup_pending(&state) {
        return Ok(Redirect::to("/login").into_response());
    }
    if let Err(e) = auth_store::validate_username(&form.username) {
        return refuse(e.to_string());
    }
    if let Err(e) = check_password_policy(&form.password) {
        return refuse(e.to_string());
    }
    let redeemed = state
        .setup
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_mut()
        .is_some_and(|setup| setup.redeem(form.token.trim()));
    if !redeemed {
        return refuse("That is not the setup token printed in the server's log.".to_owned());
    }
    let password = form.password;
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(AppError::internal)?
        .map_err(|e| AppError::BadInput(e.to_string()))?;
    auth_store::create_user(
        &state.auth(),
        &form.username,
        Role::Admin,
        &hash,
        Timestamp::now(),
    )
    .map_err(|e| AppError::BadInput(e.to_string()))?;
    state.audit(
        "setup",
        "create-user",
        &form.username,
        "first admin, from the setup token",
    )?;
    Ok(Redirect::to("/login").into_response())
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(safe_next("/services/web"), "/services/web");
        assert_eq!(safe_next("//evil.example/"), "/");
        assert_eq!(safe_next("/\\evil.example"), "/");
        assert_eq!(safe_next("https://evil.example/"), "/");
        assert_eq!(safe_next(""), "/");
    }
}
