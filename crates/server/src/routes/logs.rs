//! `/logs/{service}`: a service's logs, live. The page holds the controls; `static/logs.js`
//! follows the event stream and draws it.
//!
//! - `GET /logs/{service}`: the page (operator and admin: [`Action::ViewLogs`]).
//! - `GET /api/services/{service}/logs`: `text/event-stream` of the engine's log stream,
//!   read through the engine's one log path (`swarmkeeper_engine::logs`, which `swarmkeeper
//!   logs` uses too): the service's current tasks, merged by time. Query: `tail` (lines per
//!   task, default 200, `all`), `since` (`10m` or an RFC 3339 time), `grep` (a regular
//!   expression the line's text must match, applied here on the server), `timestamps` (bool),
//!   `follow` (bool, default true), `all_tasks` (bool: the tasks Swarm replaced too).
//! - `GET /api/services/{service}/logs/download`: the same lines, not followed, as a
//!   `text/plain` attachment, streamed as the engine sends them.
//!
//! ## The event stream
//!
//! ```text
//! event: lines
//! id: 2026-01-01T00:00:00.123456789Z
//! data: {"task":"web.1.k3v9t2l0x8aa@node1","stream":"stdout","text":"GET / 200"}
//! data: {"task":"web.2.p0q1r2s3t4u5@node2","stream":"stderr","time":"2026-01-01T00:00:00.123456789Z","text":"oops"}
//!
//! ```
//!
//! - `lines`: one JSON object per `data:` field, one field per log line; the browser joins
//!   the fields with `\n`, so `JSON.parse("[" + data.replaceAll("\n", ",") + "]")` reads a
//!   batch. Lines that arrive together (up to `swarmkeeper_engine::logs::MAX_BATCH`) go in
//!   one event, which is what lets one client take tens of thousands of lines a second. `task` is named like
//!   `docker service logs` does; `time` is there when `timestamps` is on. The `id` is the
//!   engine time of the newest line sent so far: a reconnecting `EventSource` sends it back
//!   as `Last-Event-ID`, and the stream resumes after it instead of repeating the tail.
//! - `unreadable`: the service's log driver keeps nothing the engine can read back; the data
//!   says so and names the fix. The stream then ends.
//! - `failed`: the engine's stream broke (the data is the error); the stream ends and the
//!   client may reconnect.
//! - `end`: no more lines (`follow=false`, or the engine closed the stream, e.g. the service
//!   was removed).
//! - a comment (`:`) every 15 s keeps proxies from closing an idle stream; it is also when a
//!   vanished client of an idle stream is noticed at the latest.
//!
//! Nothing is spawned: the engine's streams live inside the response body, so a client that
//! goes away drops them, and with them the connections to the engine. The event stream ends
//! when the server shuts down; a download still running then is cut off, so it shows as
//! failed.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt};
use jiff::Timestamp;
use serde::Serialize;
use swarmkeeper_engine::logs::{
    cached_note, unreadable_message, DriverVerdict, LogItem, Logs, LogsRequest,
};
use swarmkeeper_engine::{EngineError, Service};

use crate::error::AppError;
use crate::page::url_encode;
use crate::respond::Reply;
use crate::routes::services::inspect;
use crate::state::AppState;
use crate::views::logs::{
    api_query, download_filename, parse_query, write_json, write_text, LineFilter, LogQuery,
    LogRequest, Shown,
};

/// How often an idle stream sends a comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The logs page: the controls, and where the script reads from.
#[derive(Serialize)]
pub struct LogsView {
    pub service: String,
    pub query: LogQuery,
    pub timestamps: bool,
    pub all_tasks: bool,
    /// The event stream's URL without a query: the script adds the form's.
    pub api: String,
    pub download: String,
    pub unreadable: Option<String>,
    pub note: Option<String>,
    pub error: Option<String>,
}

page!(LogsView, "logs.html", "services");

/// `GET /logs/{service}`.
pub async fn page(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<LogQuery>,
) -> Result<Reply, AppError> {
    let service = inspect(&state, &name).await?;
    let (unreadable, note) = match DriverVerdict::of_service(&service) {
        DriverVerdict::Readable => (None, None),
        DriverVerdict::Unreadable(driver) => {
            (Some(unreadable_message(&service.name, Some(&driver))), None)
        }
        DriverVerdict::Cached(driver) => (None, Some(cached_note(&driver))),
    };
    let (timestamps, all_tasks, error) = match parse_query(&query, Timestamp::now()) {
        Ok(request) => (request.timestamps, request.all_tasks, None),
        Err(e) => (false, false, Some(e.to_string())),
    };
    let api = format!("/api/services/{}/logs", url_encode(&service.name));
    let download = match api_query(&query) {
        q if q.is_empty() => format!("{api}/download"),
        q => format!("{api}/download?{q}"),
    };
    Ok(Reply::page(LogsView {
        service: service.name,
        query,
        timestamps,
        all_tasks,
        api,
        download,
        unreadable,
        note,
        error,
    }))
}

/// `GET /api/services/{service}/logs`: the event stream.
pub async fn stream(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<LogQuery>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let mut request =
        parse_query(&query, Timestamp::now()).map_err(|e| AppError::BadInput(e.to_string()))?;
    // A reconnecting EventSource: everything after the newest line it had, not the tail again.
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<Timestamp>().ok());
    if let Some(after) = resume {
        request.since = Some(after);
        request.tail = None;
    }
    let service = inspect(&state, &name).await?;
    let feed = open(&state, &service, &request, resume).await?;
    // Ends when the server stops, so that a browser left open does not hold up a shutdown.
    let events = feed
        .into_stream()
        .take_until(state.shutdown.started())
        .map(|item| Ok::<_, Infallible>(event(item)));
    Ok(event_stream(events))
}

/// `events` as a `text/event-stream` answer, with a comment every [`KEEP_ALIVE`].
pub(super) fn event_stream<S>(events: S) -> Response
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    // A reverse proxy such as nginx would otherwise hold the events back to fill its buffer.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// `GET /api/services/{service}/logs/download`: the lines as a text file, not followed.
pub async fn download(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<LogQuery>,
) -> Result<Response, AppError> {
    let mut request =
        parse_query(&query, Timestamp::now()).map_err(|e| AppError::BadInput(e.to_string()))?;
    request.follow = false;
    let service = inspect(&state, &name).await?;
    let mut feed = open(&state, &service, &request, None).await?;
    // The first batch decides the status: a refusal is still an error answer, not a file.
    let first = match feed.next().await {
        Some(Item::Unreadable(message)) => return Err(AppError::Conflict(message)),
        Some(Item::Failed(e)) => return Err(e.into()),
        first => first,
    };
    let body = stream::iter(first)
        .chain(feed.into_stream())
        .filter_map(|item| async move {
            match item {
                Item::Lines { lines, .. } => {
                    let mut out = Vec::with_capacity(lines.len() * 100);
                    for line in &lines {
                        write_text(&mut out, line);
                    }
                    Some(Ok(Bytes::from(out)))
                }
                Item::End => None,
                // Cut the transfer short: the client sees a failed download, not a complete file.
                Item::Unreadable(message) => Some(Err(std::io::Error::other(message))),
                Item::Failed(e) => Some(Err(std::io::Error::other(e.to_string()))),
            }
        });
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"{}\"",
                    download_filename(&service.name)
                ),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// What the feed yields.
enum Item {
    /// Lines that passed the filter; `newest` is the engine time of the newest line read so
    /// far (filtered or not).
    Lines {
        lines: Vec<Shown>,
        newest: Option<Timestamp>,
    },
    Unreadable(String),
    Failed(EngineError),
    End,
}

/// A service's logs as the engine's log path gives them, with the filter applied.
struct Feed {
    logs: Option<Logs>,
    filter: LineFilter,
    timestamps: bool,
    newest: Option<Timestamp>,
}

/// Opens the service's logs; `resume` drops the lines the client already has.
async fn open(
    state: &AppState,
    service: &Service,
    request: &LogRequest,
    resume: Option<Timestamp>,
) -> Result<Feed, AppError> {
    let logs = state
        .engine
        .logs(
            std::slice::from_ref(service),
            &LogsRequest {
                follow: request.follow,
                since: request.since,
                tail: request.tail,
                all_tasks: request.all_tasks,
            },
        )
        .await?;
    Ok(Feed {
        logs: Some(logs),
        filter: LineFilter {
            grep: request.grep.clone(),
            after: resume,
        },
        timestamps: request.timestamps,
        newest: resume,
    })
}

impl Feed {
    fn into_stream(self) -> impl Stream<Item = Item> + Send + 'static {
        stream::unfold(self, |mut feed| async move {
            feed.next().await.map(|item| (item, feed))
        })
    }

    async fn next(&mut self) -> Option<Item> {
        loop {
            let item = match self.logs.as_mut()?.next().await {
                Some(Ok(LogItem::Lines(lines))) => lines,
                Some(Ok(LogItem::Unreadable { message, .. })) => {
                    self.logs = None;
                    return Some(Item::Unreadable(message));
                }
                Some(Err(e)) => {
                    self.logs = None;
                    return Some(Item::Failed(e));
                }
                None => {
                    self.logs = None;
                    return Some(Item::End);
                }
            };
            let mut shown = Vec::with_capacity(item.len());
            for line in item {
                if let Some(time) = line.time {
                    if self.newest.is_none_or(|newest| time > newest) {
                        self.newest = Some(time);
                    }
                }
                if self.filter.keeps(&line) {
                    shown.push(Shown::new(line, self.timestamps));
                }
            }
            if !shown.is_empty() {
                return Some(Item::Lines {
                    lines: shown,
                    newest: self.newest,
                });
            }
        }
    }
}

fn event(item: Item) -> Event {
    match item {
        Item::Lines { lines, newest } => {
            let mut data = Vec::with_capacity(lines.len() * 120);
            for (i, line) in lines.iter().enumerate() {
                if i > 0 {
                    data.push(b'\n');
                }
                write_json(&mut data, line);
            }
            let data = String::from_utf8(data)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            let event = Event::default().event("lines").data(data);
            match newest {
                Some(newest) => event.id(newest.to_string()),
                None => event,
            }
        }
        Item::Unreadable(message) => Event::default().event("unreadable").data(message),
        Item::Failed(e) => Event::default().event("failed").data(e.to_string()),
        Item::End => Event::default().event("end").data("end of the logs"),
    }
}
