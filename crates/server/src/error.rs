//! One error type for every handler. It answers JSON (`{"error": "...", "status": 403}`);
//! [`error_answers`] turns that into a page for browser routes, so a handler never needs to
//! know which twin it serves, and gives the same two shapes to the errors axum answers itself
//! (a body that is not JSON, a path parameter of the wrong type, an unknown route).

use askama::Template;
use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use swarmkeeper_auth::Action;
use swarmkeeper_engine::EngineError;

/// Whether a route answers a browser (a page) or a program (JSON): `/api/…` is JSON. Errors
/// and replies alike follow it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Html,
    Json,
}

impl Format {
    pub fn of(path: &str) -> Format {
        if path.starts_with("/api/") {
            Format::Json
        } else {
            Format::Html
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("log in first")]
    Unauthenticated,
    #[error("your role may not {}: {}", .0.described(), .0.who_may())]
    Forbidden(Action),
    #[error("missing or wrong CSRF token: reload the page and try again")]
    Csrf,
    /// A login or setup form posted from another site's page.
    #[error("this form must be sent from the server's own page: open it and try again")]
    CrossSite,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    Conflict(String),
    /// A form's fields refused (400, or 409 for a name taken), each with why: the JSON says
    /// them in `error` as one line and, for a client to place them, in `fields`.
    #[error("{}", crate::views::one_line(.errors))]
    Fields {
        status: StatusCode,
        errors: Vec<crate::views::FieldError>,
    },
    /// The login limiter's answer: this user from this source may try again at the time.
    #[error("too many login attempts: try again after {0}")]
    TooManyAttempts(jiff::Timestamp),
    /// Every password check the server runs at once is taken, and so is the queue.
    #[error("too many logins at once: try again in a moment")]
    Busy,
    #[error("{0}")]
    TooLarge(String),
    /// The request could not be read as the route takes it (a malformed body, a wrong content
    /// type, a path or query parameter of the wrong type): axum's status and words.
    #[error("{message}")]
    Rejected { status: StatusCode, message: String },
    /// The engine refused or could not be reached; the message repeats what it said.
    #[error("Docker Engine: {0}")]
    Engine(EngineError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn internal(e: impl std::fmt::Display) -> AppError {
        AppError::Internal(e.to_string())
    }

    /// Seconds a client should wait before trying again (`Retry-After`), for the answers that
    /// have one.
    pub fn retry_after(&self) -> Option<i64> {
        match self {
            AppError::TooManyAttempts(until) => {
                let millis = until.duration_since(jiff::Timestamp::now()).as_millis();
                Some(((millis + 999) / 1000).clamp(1, i128::from(i64::MAX)) as i64)
            }
            AppError::Busy => Some(1),
            _ => None,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Unauthenticated => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) | AppError::Csrf | AppError::CrossSite => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::BadInput(_) => StatusCode::BAD_REQUEST,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Fields { status, .. } => *status,
            AppError::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Rejected { status, .. } => *status,
            AppError::Engine(e) if e.is_not_found() => StatusCode::NOT_FOUND,
            AppError::Engine(_) => StatusCode::BAD_GATEWAY,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<EngineError> for AppError {
    /// A service that has no replica count is swarmkeeper's own refusal, not the engine's
    /// answer: a 409 in its words, without the engine's socket path (tryout 11 finding 13).
    fn from(e: EngineError) -> AppError {
        match e {
            EngineError::NotScalable {
                service,
                mode,
                reason,
                ..
            } => AppError::Conflict(format!("service {service} is {mode}: {reason}")),
            e => AppError::Engine(e),
        }
    }
}

/// Marks a response as an error for [`error_answers`].
#[derive(Clone)]
struct ErrorMessage(String);

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = self.retry_after();
        let message = self.to_string();
        if status.is_server_error() {
            tracing::warn!(%status, error = %message, "request failed");
        }
        let mut body = serde_json::json!({ "error": message, "status": status.as_u16() });
        if let AppError::Fields { errors, .. } = &self {
            body["fields"] = serde_json::json!(errors);
        }
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response.extensions_mut().insert(ErrorMessage(message));
        response
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    reason: &'a str,
    message: &'a str,
    login: bool,
}

/// The longest body of an error answer made elsewhere (axum's rejections are one line) that
/// is carried into the error's message.
const MAX_REJECTION_BYTES: usize = 4096;

/// Every error answer in one of two shapes: under `/api/` the JSON of [`AppError`]; elsewhere an
/// error page, or, for a browser that is not logged in, the login page and back. Errors that
/// did not come from an [`AppError`] and are not a page or JSON of their own (axum's answers:
/// a malformed body, a parameter of the wrong type, an unknown route) are put in the same
/// shapes, with their status and words.
pub async fn error_answers(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let is_get = request.method() == axum::http::Method::GET;
    let response = next.run(request).await;
    let status = response.status();
    if !status.is_client_error() && !status.is_server_error() {
        return response;
    }
    let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
    let api = Format::of(&path) == Format::Json;
    let message = match response.extensions().get::<ErrorMessage>() {
        Some(_) if api => return response,
        Some(ErrorMessage(message)) => message.clone(),
        // A page or JSON made on purpose, e.g. a form shown again with its error.
        None if is_answer(&response) => return response,
        None => {
            let (parts, body) = response.into_parts();
            let text = to_bytes(body, MAX_REJECTION_BYTES)
                .await
                .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
                .unwrap_or_default();
            let message = match text.is_empty() {
                true => status.canonical_reason().unwrap_or("error").to_owned(),
                false => text,
            };
            if !api {
                message
            } else {
                // Keep what axum said besides, e.g. `Allow` on a 405.
                let (mut json, body) = AppError::Rejected { status, message }
                    .into_response()
                    .into_parts();
                for (name, value) in &parts.headers {
                    if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                        json.headers.insert(name, value.clone());
                    }
                }
                return Response::from_parts(json, body);
            }
        }
    };
    let mut page = error_page(status, &message, &path, query, is_get);
    // A browser told to wait (a login limited, every password check busy) learns how long.
    if let Some(retry_after) = retry_after {
        page.headers_mut().insert(header::RETRY_AFTER, retry_after);
    }
    page
}

/// Whether an answer is a page or JSON (rather than axum's plain text or nothing).
fn is_answer(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html") || v.starts_with("application/json"))
}

/// The page for an error on a browser route; a GET that needs a login goes to the login page,
/// which comes back here.
fn error_page(
    status: StatusCode,
    message: &str,
    path: &str,
    query: Option<String>,
    is_get: bool,
) -> Response {
    if status == StatusCode::UNAUTHORIZED && is_get {
        let next = match query {
            Some(query) => format!("{path}?{query}"),
            None => path.to_owned(),
        };
        let target = format!("/login?next={}", crate::page::url_encode(&next));
        return axum::response::Redirect::to(&target).into_response();
    }
    let page = ErrorPage {
        status: status.as_u16(),
        reason: status.canonical_reason().unwrap_or("Error"),
        message,
        login: status == StatusCode::UNAUTHORIZED,
    };
    match page.render() {
        Ok(body) => (status, Html(body)).into_response(),
        Err(_) => (status, Body::from(message.to_owned())).into_response(),
    }
}
