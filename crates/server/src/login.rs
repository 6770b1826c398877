//! Logging in and out, and the first-start setup page that turns the setup token printed in the
//! server's log into the first admin.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use askama::Template;
use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::{AppendHeaders, Html, IntoResponse, Redirect, Response};
use axum::Form;
use jiff::Timestamp;
use serde::Deserialize;
use swarmkeeper_auth::store::{self as auth_store, AuditEntry};
use swarmkeeper_auth::{
    check_password_policy, clear_session_cookie, device_cookie, device_token_from_cookie_header,
    secure_cookie_kept, session_cookie, LoginDecision, LoginKey, Role,
};

use crate::access::session_token;
use crate::error::AppError;
use crate::limits::Asker;
use crate::page::render;
use crate::serve::OverTls;
use crate::state::AppState;

/// The client's address: the socket's peer, or what a trusted proxy forwarded (see
/// [`swarmkeeper_auth::TrustedProxies`]).
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<ClientAddr, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
        // A value that is not text counts as an entry that does not read.
        let values = |name: &str| {
            parts
                .headers
                .get_all(name)
                .iter()
                .map(|value| value.to_str().unwrap_or("\u{0}"))
                .collect::<Vec<_>>()
        };
        Ok(ClientAddr(state.config.trusted_proxies.client(
            peer,
            values("x-forwarded-for"),
            values("forwarded"),
        )))
    }
}

/// Whether a form post comes from one of this server's own pages. Browsers say so in
/// `Sec-Fetch-Site` (all current ones); older ones send `Origin`, compared with the host the
/// request was sent to. A request with neither is not from a browser, and a browser is what a
/// cross-site post would need.
fn from_own_page(headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or("\u{0}"));
    if let Some(site) = text("sec-fetch-site") {
        return matches!(site, "same-origin" | "none");
    }
    let Some(origin) = text(header::ORIGIN.as_str()) else {
        return true;
    };
    let authority = origin.split_once("://").map(|(_, rest)| rest);
    let host = text("x-forwarded-host").or(text(header::HOST.as_str()));
    matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h.trim()))
}

fn refuse_cross_site(headers: &HeaderMap) -> Result<(), AppError> {
    if from_own_page(headers) {
        Ok(())
    } else {
        Err(AppError::CrossSite)
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    next: &'a str,
    error: &'a str,
    setup: bool,
    /// The address the browser used, when it will drop the `Secure` session cookie: the
    /// page says why a login would seem to do nothing, and what to do.
    cookie_dropped_at: Option<String>,
}

/// The host a browser reached the server at over plain HTTP, from elsewhere than localhost:
/// it will not keep the session cookie there. `None` when it will (TLS, built in or at a
/// trusted proxy that says `X-Forwarded-Proto: https`, or localhost).
pub struct CookieDropped(pub Option<String>);

impl FromRequestParts<AppState> for CookieDropped {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<CookieDropped, Self::Rejection> {
        let text = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        };
        let from_trusted_proxy = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .is_some_and(|info| state.config.trusted_proxies.contains(info.0.ip()));
        let https = parts.extensions.get::<OverTls>().is_some()
            || (from_trusted_proxy && text("x-forwarded-proto").eq_ignore_ascii_case("https"));
        let host = if from_trusted_proxy && !text("x-forwarded-host").is_empty() {
            text("x-forwarded-host")
        } else {
            text(header::HOST.as_str())
        };
        Ok(CookieDropped(
            (!secure_cookie_kept(https, host)).then(|| host.to_owned()),
        ))
    }
}

#[derive(Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

/// Only a path on this server, else `/`. Browsers read `//evil.example` and `/\evil.example`
/// as another site, and drop tabs and newlines from a URL before reading it, so
/// `/\t/evil.example` is another site too: a path must start with one `/`, and hold no
/// backslash, whitespace or control character anywhere.
fn safe_next(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next[1..].starts_with('/')
        && !next
            .chars()
            .any(|c| c == '\\' || c.is_whitespace() || c.is_control());
    if local {
        next
    } else {
        "/"
    }
}

pub async fn login_page(
    State(state): State<AppState>,
    CookieDropped(cookie_dropped_at): CookieDropped,
    Query(query): Query<NextQuery>,
) -> Result<Html<String>, AppError> {
    render(&LoginPage {
        next: safe_next(&query.next),
        error: "",
        setup: setup_pending(&state),
        cookie_dropped_at,
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

/// The audit log's name for whoever tried: the name when a user has it, else one name for
/// all unknown ones (the name tried goes in the detail), so that a stream of invented names
/// folds into one row per source.
fn tried_as(user: Option<&auth_store::User>) -> String {
    user.map_or_else(|| "(unknown user)".to_owned(), |user| user.name.clone())
}

pub async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    CookieDropped(cookie_dropped_at): CookieDropped,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    refuse_cross_site(&headers)?;
    let now = Timestamp::now();
    let name = form.username.to_ascii_lowercase();
    let well_formed = auth_store::validate_username(&name).is_ok();
    let presented_device = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(device_token_from_cookie_header);
    let (user, device) = if well_formed {
        let conn = state.auth();
        let user = auth_store::user_by_name(&conn, &name)
            .map_err(AppError::internal)?
            .filter(|user| !user.disabled);
        let device = match presented_device {
            Some(token) => auth_store::device_for_login(&conn, token, &name, now)
                .map_err(AppError::internal)?,
            None => None,
        };
        (user, device)
    } else {
        (None, None)
    };
    let key = match &device {
        Some(id) => LoginKey::device(&name, id),
        None => LoginKey::new(&name, client),
    };
    let source = match &device {
        Some(_) => format!("{client} (known browser)"),
        None => client.to_string(),
    };
    let detail = if user.is_some() {
        String::new()
    } else {
        format!("tried {:?}", auth_store::bounded(&form.username, 64))
    };
    let who = tried_as(user.as_ref());
    let failure = |action: &str| AuditEntry {
        at: now,
        who: who.clone(),
        action: action.to_owned(),
        target: source.clone(),
        detail: detail.clone(),
    };
    let next = safe_next(&form.next).to_owned();
    let wrong = |state: &AppState| -> Result<Response, AppError> {
        state.audit_folded(failure("login-failed"))?;
        let page = render(&LoginPage {
            next: &next,
            error: "Wrong user name or password.",
            setup: setup_pending(state),
            cookie_dropped_at: cookie_dropped_at.clone(),
        })?;
        Ok((axum::http::StatusCode::UNAUTHORIZED, page).into_response())
    };
    // A malformed name belongs to nobody, and anyone can tell one: no check, no limiter entry.
    if !well_formed {
        return wrong(&state);
    }
    // A place among the password checks first: a login refused for want of one is not
    // counted against anyone.
    let ticket = state.passwords.admit(match device {
        Some(_) => Asker::Known,
        None => Asker::Stranger(client),
    })?;
    let decision = state
        .limiter
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .attempt(&key, now);
    if let LoginDecision::Wait { until } = decision {
        state.audit_folded(failure("login-refused"))?;
        return Err(AppError::TooManyAttempts(until));
    }
    // An unknown user is checked against a dummy hash, so the answer takes as long either way.
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let ok = ticket.verify_login(form.password, stored).await?;
    let Some(user) = user.filter(|_| ok) else {
        return wrong(&state);
    };
    state
        .limiter
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .succeeded(&key, now);
    let (session, device_token) = {
        let conn = state.auth();
        let session =
            auth_store::create_session(&conn, user.id, now).map_err(AppError::internal)?;
        let device = auth_store::remember_device(&conn, user.id, presented_device, now)
            .map_err(AppError::internal)?;
        (session, device)
    };
    state.audit(&user.name, "login", &client.to_string(), "")?;
    let cookie = session_cookie(
        &session.token,
        state.config.session_policy.cookie_max_age(now, now),
    );
    Ok((
        AppendHeaders([
            (header::SET_COOKIE, cookie),
            (header::SET_COOKIE, device_cookie(&device_token)),
        ]),
        Redirect::to(&next),
    )
        .into_response())
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
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    Form(form): Form<SetupForm>,
) -> Result<Response, AppError> {
    refuse_cross_site(&headers)?;
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
    let hash = state
        .passwords
        .admit(Asker::Stranger(client))?
        .hash(form.password)
        .await?
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
    use axum::http::HeaderMap;

    use super::{from_own_page, safe_next};

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(safe_next("/services/web"), "/services/web");
        assert_eq!(
            safe_next("/logs/web?tail=10&grep=a%20b"),
            "/logs/web?tail=10&grep=a%20b"
        );
        for hostile in [
            "//evil.example/",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "\t//evil.example",
            "/ /evil.example",
            "/x\\..\\\\evil.example",
            "/\u{0}/evil.example",
            "/\u{7f}/evil.example",
            "/\u{a0}/evil.example",
            "https://evil.example/",
            "evil.example",
            "",
        ] {
            assert_eq!(safe_next(hostile), "/", "{hostile:?}");
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (name.parse().unwrap(), value.parse().unwrap()))
            .collect()
    }

    #[test]
    fn only_posts_from_the_servers_own_pages_log_in() {
        assert!(from_own_page(&headers(&[(
            "sec-fetch-site",
            "same-origin"
        )])));
        assert!(!from_own_page(&headers(&[(
            "sec-fetch-site",
            "cross-site"
        )])));
        assert!(!from_own_page(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(!from_own_page(&headers(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "http://dash.example"),
            ("host", "dash.example"),
        ])));
        let own = headers(&[
            ("origin", "https://dash.example:8443"),
            ("host", "dash.example:8443"),
        ]);
        assert!(from_own_page(&own));
        let other = headers(&[("origin", "https://evil.example"), ("host", "dash.example")]);
        assert!(!from_own_page(&other));
        assert!(!from_own_page(&headers(&[
            ("origin", "null"),
            ("host", "dash.example")
        ])));
        // curl, scripts: no browser, no ambient cookie to abuse.
        assert!(from_own_page(&HeaderMap::new()));
    }
}
