//! One mechanism for pages and their JSON twins. A handler serves a page `/x` and its twin
//! `/api/x` alike: it reads its input with [`Input`] (a form for a page, JSON for the API) and
//! returns one [`Reply`]; the route table's responder ([`render`]) turns the reply into the
//! page, rendered by askama with the [`Chrome`] around it, or into JSON. Which of the two
//! depends on the path alone ([`Format::of`]), as it does for errors.
//!
//! A view becomes a page with `page!`: `page!(ServicesView, "services.html",
//! "services")` renders `templates/services.html`, which sees the view as `view` and the header
//! as `chrome`, under the navigation entry `services`.

use std::any::Any;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::Serialize;
use swarmkeeper_auth::Action;

use crate::access::Caller;
use crate::error::AppError;
pub use crate::error::Format;
use crate::page::{filters, Chrome};
use crate::views::FieldError;

/// A view that is shown as a page: implemented by `page!`.
pub trait Page: Serialize + Send + Sync + 'static {
    /// The navigation entry the page belongs under.
    const SECTION: &'static str;

    /// The page's HTML; `values` carry the page's instant for the `ago` filter.
    fn render(&self, chrome: &Chrome, values: &dyn askama::Values) -> askama::Result<String>;
}

/// Makes a view a page: `page!(View, "template.html", "section")`. The template sees the view
/// as `view`, the header as `chrome`, and the [`filters`](crate::page::filters).
macro_rules! page {
    ($view:ty, $template:literal, $section:literal) => {
        const _: () = {
            // For the templates that format numbers or times.
            #[allow(unused_imports)]
            use $crate::page::filters;

            #[derive(askama::Template)]
            #[template(path = $template)]
            struct PageTemplate<'a> {
                chrome: &'a $crate::page::Chrome,
                view: &'a $view,
            }

            impl $crate::respond::Page for $view {
                const SECTION: &'static str = $section;

                fn render(
                    &self,
                    chrome: &$crate::page::Chrome,
                    values: &dyn askama::Values,
                ) -> askama::Result<String> {
                    askama::Template::render_with_values(
                        &PageTemplate { chrome, view: self },
                        values,
                    )
                }
            }
        };
    };
}

/// What a handler answers, for both formats.
#[derive(Clone)]
pub struct Reply {
    /// The JSON answer's status.
    status: StatusCode,
    /// `None`: no body (204).
    json: Option<Arc<dyn AsJson>>,
    page: Shown,
    page_status: StatusCode,
    /// The JSON answer's `Location`: where what was started can be followed (202).
    location: Option<String>,
}

#[derive(Clone)]
enum Shown {
    Page(Arc<dyn AsPage>),
    /// See Other: a change done from a form goes back to a page.
    Redirect(String),
}

impl Reply {
    /// 200: the view as JSON, or its page.
    pub fn page(view: impl Page) -> Reply {
        let view = Arc::new(view);
        Reply {
            status: StatusCode::OK,
            json: Some(view.clone()),
            page: Shown::Page(view),
            page_status: StatusCode::OK,
            location: None,
        }
    }

    /// A change made: `view` as JSON with `status` (200, 201); a form goes on to `then`.
    pub fn changed(
        status: StatusCode,
        view: impl Serialize + Send + Sync + 'static,
        then: impl Into<String>,
    ) -> Reply {
        Reply {
            status,
            json: Some(Arc::new(view)),
            page: Shown::Redirect(then.into()),
            page_status: StatusCode::SEE_OTHER,
            location: None,
        }
    }

    /// A change started, not done: `view` as JSON with 202 and `Location: location`, where
    /// it is followed to its end; a form goes on to `then`.
    pub fn accepted(
        view: impl Serialize + Send + Sync + 'static,
        location: impl Into<String>,
        then: impl Into<String>,
    ) -> Reply {
        Reply {
            location: Some(location.into()),
            ..Reply::changed(StatusCode::ACCEPTED, view, then)
        }
    }

    /// A change with nothing to tell: 204; a form goes on to `then`.
    pub fn done(then: impl Into<String>) -> Reply {
        Reply {
            status: StatusCode::NO_CONTENT,
            json: None,
            page: Shown::Redirect(then.into()),
            page_status: StatusCode::SEE_OTHER,
            location: None,
        }
    }

    /// A form's answer is this page rather than a redirect (something shown once, such as a
    /// new token).
    pub fn showing(mut self, page: impl Page) -> Reply {
        self.page = Shown::Page(Arc::new(page));
        self.page_status = StatusCode::OK;
        self
    }

    /// Another status for both formats, e.g. 422 for a form shown again with what is wrong (its
    /// JSON twin answers 400).
    pub fn with_status(mut self, status: StatusCode) -> Reply {
        self.status = status;
        self.page_status = status;
        self
    }
}

/// A refused form, in both formats: JSON gets the error (`message`, 409 or 400 as `status`
/// says), a form gets `page` (built only then, with the message next to its field) with
/// `status`.
pub async fn refused<P: Page>(
    path: &str,
    message: String,
    status: StatusCode,
    page: impl std::future::Future<Output = Result<P, AppError>>,
) -> Result<Reply, AppError> {
    match Format::of(path) {
        Format::Json if status == StatusCode::CONFLICT => Err(AppError::Conflict(message)),
        Format::Json => Err(AppError::BadInput(message)),
        Format::Html => Ok(Reply::page(page.await?).with_status(status)),
    }
}

/// [`refused`] for a form whose `errors` name its fields: JSON gets them as
/// [`AppError::Fields`] (400, or 409 when `status` is), a form gets `page` with `status`.
pub async fn refused_fields<P: Page>(
    path: &str,
    errors: &[FieldError],
    status: StatusCode,
    page: impl std::future::Future<Output = Result<P, AppError>>,
) -> Result<Reply, AppError> {
    match Format::of(path) {
        Format::Json => Err(AppError::Fields {
            status: match status {
                StatusCode::CONFLICT => StatusCode::CONFLICT,
                _ => StatusCode::BAD_REQUEST,
            },
            errors: errors.to_vec(),
        }),
        Format::Html => Ok(Reply::page(page.await?).with_status(status)),
    }
}

/// Object-safe halves of [`Serialize`] and [`Page`], so a reply can wait in a response's
/// extensions for the responder.
trait AsJson: Send + Sync {
    fn json(&self) -> serde_json::Result<Vec<u8>>;
}

impl<T: Serialize + Send + Sync> AsJson for T {
    fn json(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(self)
    }
}

trait AsPage: Send + Sync {
    fn section(&self) -> &'static str;
    fn html(&self, chrome: &Chrome, values: &dyn askama::Values) -> askama::Result<String>;
}

impl<P: Page> AsPage for P {
    fn section(&self) -> &'static str {
        P::SECTION
    }

    fn html(&self, chrome: &Chrome, values: &dyn askama::Values) -> askama::Result<String> {
        self.render(chrome, values)
    }
}

impl IntoResponse for Reply {
    /// Waits for [`render`]: a route without the responder answers 500 rather than nothing.
    fn into_response(self) -> Response {
        let mut response = (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error: a reply outside the route table",
        )
            .into_response();
        response.extensions_mut().insert(self);
        response
    }
}

impl Chrome {
    pub fn of(caller: &Caller, active: &'static str) -> Chrome {
        Chrome {
            user: caller.user.name.clone(),
            role: caller.role().as_str(),
            csrf: caller.csrf(),
            active,
            can_operate: caller.may(Action::Deploy),
            can_admin: caller.may(Action::ManageUsers),
            can_view_logs: caller.may(Action::ViewLogs),
        }
    }
}

/// The API refuses with 400 or 409 (PRODUCT.md's contract); a page shown again with what is
/// wrong says 422, which its JSON twin answers as 400.
fn json_status(status: StatusCode) -> StatusCode {
    match status {
        StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
        other => other,
    }
}

/// The responder: a handler's [`Reply`] as a page for `caller` or as JSON. Any other answer
/// (an error, a stream, a file) passes as it is.
pub fn render(mut response: Response, caller: &Caller, format: Format) -> Response {
    let Some(reply) = response.extensions_mut().remove::<Reply>() else {
        return response;
    };
    let answer = match format {
        Format::Json => match &reply.json {
            Some(view) => view
                .json()
                .map(|body| {
                    let mut answer = (
                        json_status(reply.status),
                        [(header::CONTENT_TYPE, "application/json")],
                        body,
                    )
                        .into_response();
                    if let Some(value) = reply
                        .location
                        .as_deref()
                        .and_then(|l| header::HeaderValue::from_str(l).ok())
                    {
                        answer.headers_mut().insert(header::LOCATION, value);
                    }
                    answer
                })
                .map_err(AppError::internal),
            None => Ok(json_status(reply.status).into_response()),
        },
        Format::Html => match &reply.page {
            Shown::Redirect(to) => Ok(Redirect::to(to).into_response()),
            Shown::Page(page) => {
                let chrome = Chrome::of(caller, page.section());
                let now = Timestamp::now();
                let values: (&str, &dyn Any) = (filters::NOW, &now);
                page.html(&chrome, &values)
                    .map(|body| (reply.page_status, Html(body)).into_response())
                    .map_err(AppError::internal)
            }
        },
    };
    answer.unwrap_or_else(IntoResponse::into_response)
}

/// A handler's input: the urlencoded form of a page, the JSON body of an `/api` route. A body
/// that cannot be read is refused naming the field: 400 (415 for another content type).
pub struct Input<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Input<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Input<T>, AppError> {
        let format = Format::of(request.uri().path());
        let wanted = match format {
            Format::Json => "application/json",
            Format::Html => "application/x-www-form-urlencoded",
        };
        if !has_content_type(request.headers(), wanted) {
            return Err(AppError::Rejected {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                message: format!("expected a body with `Content-Type: {wanted}`"),
            });
        }
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|e| AppError::TooLarge(e.body_text()))?;
        let parsed = match format {
            Format::Json => {
                let mut json = serde_json::Deserializer::from_slice(&body);
                read_json(&mut json).and_then(|value| {
                    json.end()
                        .map(|()| value)
                        .map_err(|e| (json_error_status(&e), e.to_string()))
                })
            }
            Format::Html => {
                let form = serde_urlencoded::Deserializer::new(form_urlencoded::parse(&body));
                serde_path_to_error::deserialize(form).map_err(|e| {
                    (
                        StatusCode::UNPROCESSABLE_ENTITY,
                        field_error(e.path(), e.inner()),
                    )
                })
            }
        };
        parsed.map(Input).map_err(input_error)
    }
}

/// A JSON body already read as a value (one laid over the current values, or one whose
/// struct takes its fields through `#[serde(flatten)]`, which hides unknown keys), read as
/// [`Input`] reads a body: a key no field of `T` takes is refused by name (400).
pub fn from_json_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, AppError> {
    read_json(value).map_err(input_error)
}

/// `T` from JSON; a key no field takes is a typo or a field of another version: refused by
/// name rather than dropped (`subnett` would have let the engine pick a subnet).
fn read_json<'de, T, D>(json: D) -> Result<T, (StatusCode, String)>
where
    T: DeserializeOwned,
    D: serde::Deserializer<'de, Error = serde_json::Error>,
{
    let mut unknown = Vec::new();
    let mut note = |path: serde_ignored::Path| unknown.push(path.to_string());
    let read = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(json, &mut note));
    let value = read.map_err(|e| {
        (
            json_error_status(e.inner()),
            field_error(e.path(), e.inner()),
        )
    })?;
    match unknown.first() {
        None => Ok(value),
        Some(key) => Err((
            StatusCode::BAD_REQUEST,
            format!("{key}: unknown field (see /api/openapi.json)"),
        )),
    }
}

/// 422 for a body that is JSON but not the right shape, 400 for one that is not JSON.
fn json_error_status(e: &serde_json::Error) -> StatusCode {
    match e.is_data() {
        true => StatusCode::UNPROCESSABLE_ENTITY,
        false => StatusCode::BAD_REQUEST,
    }
}

fn input_error((status, message): (StatusCode, String)) -> AppError {
    match status {
        StatusCode::UNPROCESSABLE_ENTITY => AppError::BadInput(message),
        status => AppError::Rejected { status, message },
    }
}

fn field_error(path: &serde_path_to_error::Path, error: &impl std::fmt::Display) -> String {
    let error = error.to_string();
    let error = number_wording(&error).unwrap_or(error);
    match path.to_string().as_str() {
        "." => error,
        field => format!("{field}: {error}"),
    }
}

/// serde names a number field by its Rust type (`invalid value: integer `-1`, expected u64 at
/// line 1 column 15`); a user reads what the field takes instead. `None` for any other error.
fn number_wording(error: &str) -> Option<String> {
    let expected = error.split(", expected ").nth(1)?;
    let wanted = match expected.split(' ').next()? {
        "u8" => format!("a whole number from 0 to {}", u8::MAX),
        "u16" => format!("a whole number from 0 to {}", u16::MAX),
        "u32" => format!("a whole number from 0 to {}", u32::MAX),
        "u64" | "u128" | "usize" => NOT_NEGATIVE.to_owned(),
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        _ => return None,
    };
    Some(wanted)
}

/// `wanted` with any parameters; for JSON also `application/…+json`, as axum accepts.
fn has_content_type(headers: &HeaderMap, wanted: &str) -> bool {
    let Some(given) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
    else {
        return false;
    };
    given == wanted
        || (wanted == "application/json"
            && given.starts_with("application/")
            && given.ends_with("+json"))
}

/// What a field of a whole number that cannot be negative takes, in a user's words.
const NOT_NEGATIVE: &str = "a whole number, 0 or more";

/// For `#[serde(deserialize_with)]` on an `Option` of a whole number that comes as a JSON
/// number or `null`, or as a form field's text, where an empty field means none.
pub fn optional_number<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr + TryFrom<u64>,
{
    struct Number<T>(std::marker::PhantomData<T>);

    impl<'de, T: std::str::FromStr + TryFrom<u64>> serde::de::Visitor<'de> for Number<T> {
        type Value = Option<T>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a whole number")
        }

        fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Option<T>, E> {
            T::try_from(n)
                .map(Some)
                .map_err(|_| E::custom(format!("{n} is out of range")))
        }

        fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Option<T>, E> {
            let n = u64::try_from(n).map_err(|_| E::custom(format!("{n}: {NOT_NEGATIVE}")))?;
            self.visit_u64(n)
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Option<T>, E> {
            match text.trim() {
                "" => Ok(None),
                digits => digits.parse().map(Some).map_err(|_| {
                    E::custom(match digits.parse::<u64>() {
                        Ok(n) => format!("{n} is out of range"),
                        Err(_) => format!("{text:?}: {NOT_NEGATIVE}"),
                    })
                }),
            }
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }

        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
            d.deserialize_any(self)
        }
    }

    deserializer.deserialize_any(Number(std::marker::PhantomData))
}

#[cfg(test)]
mod tests {
    use super::number_wording;

    #[test]
    fn number_fields_are_worded_for_users_not_by_rust_type() {
        let wording = |e: &str| number_wording(e);
        assert_eq!(
            wording("invalid value: integer `-1`, expected u64 at line 1 column 15").as_deref(),
            Some("a whole number, 0 or more")
        );
        assert_eq!(
            wording("invalid type: string \"3\", expected u32 at line 1 column 9").as_deref(),
            Some("a whole number from 0 to 4294967295")
        );
        assert_eq!(
            wording("invalid type: floating point `1.5`, expected i64").as_deref(),
            Some("a whole number")
        );
        assert_eq!(
            wording("invalid type: integer `1`, expected a string at line 1 column 2"),
            None
        );
        assert_eq!(wording("missing field `name`"), None);
    }

    #[test]
    fn an_optional_number_is_refused_in_words() {
        #[derive(Debug, serde::Deserialize)]
        struct Form {
            #[serde(default, deserialize_with = "super::optional_number")]
            port: Option<u16>,
        }
        let form = |body: &str| serde_urlencoded::from_str::<Form>(body).map(|f| f.port);
        let json = |body: &str| serde_json::from_str::<Form>(body).map(|f| f.port);
        assert_eq!(form("port=").unwrap(), None);
        assert_eq!(form("port=25").unwrap(), Some(25));
        assert_eq!(json(r#"{"port":null}"#).unwrap(), None);
        for refused in ["port=-3", "port=abc", "port=1.5"] {
            let message = form(refused).unwrap_err().to_string();
            assert!(
                message.ends_with(": a whole number, 0 or more"),
                "{message}"
            );
        }
        assert_eq!(
            form("port=70000").unwrap_err().to_string(),
            "70000 is out of range"
        );
        let message = json(r#"{"port":-3}"#).unwrap_err().to_string();
        assert!(
            message.starts_with("-3: a whole number, 0 or more"),
            "{message}"
        );
    }
}
