//! Who is calling: the route table ([`crate::routes`]) runs [`authenticate`] before every
//! route that is not public. It finds the caller from a session cookie or an
//! `Authorization: Bearer` API token, checks the CSRF token on anything but GET/HEAD/OPTIONS
//! made with a cookie, and hands the handler a [`Caller`]; the table then checks the route's
//! [`Action`] with [`Caller::require`]. Who may do what is `swarmkeeper_auth::allowed`.

use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::{header, HeaderMap};
use jiff::Timestamp;
use swarmkeeper_auth::store::{self as auth_store, User};
use swarmkeeper_auth::{
    allowed, bearer_token, csrf_token, needs_csrf, session_token_from_cookie_header, verify_csrf,
    Action, Credential, Role, CSRF_FORM_FIELD, CSRF_HEADER,
};

use crate::error::AppError;
use crate::state::AppState;

/// The largest form body the server reads: a pasted stack file fits many times over.
pub const MAX_FORM_BYTES: usize = 4 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct Caller {
    pub user: User,
    pub credential: Credential,
    /// The session's token, to derive the CSRF token pages embed.
    session_token: Option<String>,
}

impl Caller {
    /// Refuses with 403 unless the caller's role may take `action`.
    pub fn require(&self, action: Action) -> Result<(), AppError> {
        if allowed(self.user.role, action) {
            Ok(())
        } else {
            Err(AppError::Forbidden(action))
        }
    }

    pub fn may(&self, action: Action) -> bool {
        allowed(self.user.role, action)
    }

    pub fn role(&self) -> Role {
        self.user.role
    }

    /// The CSRF token for forms and `fetch` calls; empty for a bearer token, which needs none.
    pub fn csrf(&self) -> String {
        self.session_token
            .as_deref()
            .map(csrf_token)
            .unwrap_or_default()
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Caller, AppError> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or(AppError::Unauthenticated)
    }
}

/// The session token of a request's cookie, if any.
pub fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(session_token_from_cookie_header)
}

fn identify(state: &AppState, headers: &HeaderMap) -> Result<Caller, AppError> {
    let now = Timestamp::now();
    if let Some(authorization) = headers.get(header::AUTHORIZATION) {
        let presented = authorization
            .to_str()
            .ok()
            .and_then(bearer_token)
            .ok_or(AppError::Unauthenticated)?;
        let user = auth_store::authenticate_api_token(&state.auth(), presented, now)
            .map_err(AppError::internal)?
            .map_err(|_| AppError::Unauthenticated)?;
        return Ok(Caller {
            user,
            credential: Credential::BearerToken,
            session_token: None,
        });
    }
    let token = session_token(headers).ok_or(AppError::Unauthenticated)?;
    let session =
        auth_store::authenticate_session(&state.auth(), token, &state.config.session_policy, now)
            .map_err(AppError::internal)?
            .ok_or(AppError::Unauthenticated)?;
    Ok(Caller {
        user: session.user,
        credential: Credential::SessionCookie,
        session_token: Some(token.to_owned()),
    })
}

/// Finds the caller of a request to a route that is not public and checks its CSRF token;
/// the request goes on with the [`Caller`] among its extensions (an HTML form's body, read to
/// find the token, is handed on unchanged).
pub async fn authenticate(
    state: &AppState,
    request: Request,
) -> Result<(Request, Caller), AppError> {
    let caller = identify(state, request.headers())?;
    let (mut parts, body) = request.into_parts();
    let body = if needs_csrf(parts.method.as_str(), caller.credential) {
        let session = caller.session_token.as_deref().unwrap_or_default();
        let from_header = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        match from_header {
            Some(presented) if verify_csrf(session, &presented) => body,
            Some(_) => return Err(AppError::Csrf),
            None => {
                // A plain HTML form: the token is a field of the urlencoded body.
                let bytes = to_bytes(body, MAX_FORM_BYTES).await.map_err(|_| {
                    AppError::TooLarge(format!("a form may be at most {MAX_FORM_BYTES} bytes"))
                })?;
                let presented = form_field(&bytes, CSRF_FORM_FIELD).ok_or(AppError::Csrf)?;
                if !verify_csrf(session, &presented) {
                    return Err(AppError::Csrf);
                }
                Body::from(bytes)
            }
        }
    } else {
        body
    };
    parts.extensions.insert(caller.clone());
    Ok((Request::from_parts(parts, body), caller))
}

fn form_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}
