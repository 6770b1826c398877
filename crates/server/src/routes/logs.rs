//! `/logs/{service}`: a service's logs, live. The page holds the controls; `static/logs.js`
//! follows the event stream and draws it.
//!
//! - `GET /logs/{service}`: the page (operator and admin: [`Action::ViewLogs`]).
//! - `GET /api/services/{service}/logs`: `text/event-stream` of the engine's log stream,
//!   merged across the service's tasks. Query: `tail` (lines per task, default 200, `all`),
//!   `since` (`10m` or an RFC 3339 time), `grep` (a regular expression the line's text must
//!   match, applied here on the server), `timestamps` (bool), `follow` (bool, default true).
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
//!   batch. Lines that arrive together (up to [`MAX_BATCH`]) go in one event, which is what
//!   lets one client take tens of thousands of lines a second. `task` is named like
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
//! Nothing is spawned: the engine's stream lives inside the response body, so a client that
//! goes away drops it, and with it the connection to the engine. The event stream ends when
//! the server shuts down; a download still running then is cut off, so it shows as failed.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use futures_util::stream::{self, BoxStream, ReadyChunks, Stream, StreamExt};
use jiff::Timestamp;
use swarmkeeper_auth::Action;
use swarmkeeper_engine::{is_logs_unreadable, Engine, EngineError, LogLine, LogOptions, Service};

use crate::access::Caller;
use crate::error::AppError;
use crate::page::{render, url_encode, Chrome};
use crate::state::AppState;
use crate::views::logs::{
    api_query, cached_note, download_filename, driver_verdict, is_unreadable_line, line_time,
    parse_query, unreadable_message, write_json, write_text, DriverVerdict, LineFilter, LogQuery,
    LogRequest, Shown, TaskNames,
};

/// Most lines in one event or one chunk of the download.
pub const MAX_BATCH: usize = 2048;

/// How often an idle stream sends a comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// How long after a failed task listing the engine is asked again.
const ASK_AGAIN: Duration = Duration::from_secs(2);

#[derive(Template)]
#[template(path = "logs.html")]
struct LogsPage<'a> {
    chrome: Chrome,
    service: &'a str,
    query: &'a LogQuery,
    timestamps: bool,
    /// The event stream's URL without a query: the script adds the form's.
    api: String,
    download: String,
    unreadable: Option<String>,
    note: Option<String>,
    error: Option<String>,
}

impl LogsPage<'_> {
    fn value<'b>(&self, field: &'b Option<String>) -> &'b str {
        field.as_deref().unwrap_or_default()
    }
}

pub async fn logs_page(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(query): Query<LogQuery>,
) -> Result<Html<String>, AppError> {
    caller.require(Action::ViewLogs)?;
    let service = inspect(&state, &name).await?;
    let (unreadable, note) = match driver_verdict(&service.spec) {
        DriverVerdict::Readable => (None, None),
        DriverVerdict::Unreadable(driver) => {
            (Some(unreadable_message(&service.name, Some(&driver))), None)
        }
        DriverVerdict::Cached(driver) => (None, Some(cached_note(&driver))),
    };
    let (timestamps, error) = match parse_query(&query, Timestamp::now()) {
        Ok(request) => (request.timestamps, None),
        Err(e) => (false, Some(e.to_string())),
    };
    let base = format!("/api/services/{}/logs", url_encode(&service.name));
    let download = match api_query(&query) {
        q if q.is_empty() => format!("{base}/download"),
        q => format!("{base}/download?{q}"),
    };
    render(&LogsPage {
        chrome: Chrome::new(&caller, "services"),
        service: &service.name,
        query: &query,
        timestamps,
        api: base,
        download,
        unreadable,
        note,
        error,
    })
}

pub async fn logs_api(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(query): Query<LogQuery>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    caller.require(Action::ViewLogs)?;
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
    let feed = open(&state.engine, &service, &request, true, resume).await?;
    // Ends when the server stops, so that a browser left open does not hold up a shutdown.
    let events = feed
        .into_stream()
        .take_until(state.shutdown.started())
        .map(|item| Ok::<_, Infallible>(event(item)));
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    // A reverse proxy such as nginx would otherwise hold the events back to fill its buffer.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

pub async fn logs_download(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(query): Query<LogQuery>,
) -> Result<Response, AppError> {
    caller.require(Action::ViewLogs)?;
    let mut request =
        parse_query(&query, Timestamp::now()).map_err(|e| AppError::BadInput(e.to_string()))?;
    request.follow = false;
    let service = inspect(&state, &name).await?;
    let mut feed = open(&state.engine, &service, &request, request.timestamps, None).await?;
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

async fn inspect(state: &AppState, name: &str) -> Result<Service, AppError> {
    state.engine.inspect_service(name).await.map_err(|e| {
        if e.is_not_found() {
            AppError::NotFound(format!("no service named {name}"))
        } else {
            e.into()
        }
    })
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

/// A service's log stream with names and the filter applied, batched.
struct Feed {
    engine: Engine,
    service_id: String,
    service_name: Arc<str>,
    source: Option<ReadyChunks<BoxStream<'static, Result<LogLine, EngineError>>>>,
    names: TaskNames,
    filter: LineFilter,
    timestamps: bool,
    /// A line came: a refusal after that is an error like any other.
    started: bool,
    newest: Option<Timestamp>,
    /// Said after the lines of the batch that preceded it.
    queued: Option<Item>,
    /// The engine did not answer the last task listing: not before then.
    ask_again_at: Option<tokio::time::Instant>,
}

/// Opens the engine's stream. `engine_timestamps` asks the engine for each line's time even
/// when it is not shown (the event stream needs it for its ids); `resume` drops the lines the
/// client already has.
async fn open(
    engine: &Engine,
    service: &Service,
    request: &LogRequest,
    engine_timestamps: bool,
    resume: Option<Timestamp>,
) -> Result<Feed, AppError> {
    let mut feed = Feed {
        engine: engine.clone(),
        service_id: service.id.clone(),
        service_name: service.name.as_str().into(),
        source: None,
        names: TaskNames::new(&service.name),
        filter: LineFilter {
            grep: request.grep.clone(),
            after: resume,
        },
        timestamps: request.timestamps,
        started: false,
        newest: resume,
        queued: None,
        ask_again_at: None,
    };
    if let DriverVerdict::Unreadable(driver) = driver_verdict(&service.spec) {
        // The engine answers an empty stream for these: only the driver's name tells.
        feed.queued = Some(Item::Unreadable(unreadable_message(
            &service.name,
            Some(&driver),
        )));
        return Ok(feed);
    }
    let options = LogOptions {
        follow: request.follow,
        since: request.since,
        tail: request.tail,
        timestamps: engine_timestamps || request.timestamps,
    };
    let (source, _) = tokio::join!(engine.service_logs(&service.id, &options), feed.refresh());
    match source {
        Ok(source) => feed.source = Some(source.ready_chunks(MAX_BATCH)),
        Err(e) if is_logs_unreadable(&e) => {
            feed.queued = Some(Item::Unreadable(unreadable_message(&service.name, None)));
        }
        Err(e) => return Err(e.into()),
    }
    Ok(feed)
}

impl Feed {
    fn into_stream(self) -> impl Stream<Item = Item> + Send + 'static {
        stream::unfold(self, |mut feed| async move {
            feed.next().await.map(|item| (item, feed))
        })
    }

    async fn next(&mut self) -> Option<Item> {
        if let Some(item) = self.queued.take() {
            self.source = None;
            return Some(item);
        }
        loop {
            let source = self.source.as_mut()?;
            let Some(chunk) = source.next().await else {
                self.source = None;
                return Some(Item::End);
            };
            let mut lines = Vec::with_capacity(chunk.len());
            for result in chunk {
                let line = match result {
                    Ok(line) => line,
                    Err(e) => {
                        let item = if !self.started && is_logs_unreadable(&e) {
                            Item::Unreadable(unreadable_message(&self.service_name, None))
                        } else {
                            Item::Failed(e)
                        };
                        return Some(self.finish(lines, item));
                    }
                };
                if !self.started && is_unreadable_line(&line) {
                    let item = Item::Unreadable(unreadable_message(&self.service_name, None));
                    return Some(self.finish(lines, item));
                }
                self.started = true;
                if !self.filter.keeps(&line) {
                    self.note_time(&line);
                    continue;
                }
                let task = self.task(&line).await;
                lines.push((line, task));
            }
            if !lines.is_empty() {
                return Some(self.show(lines));
            }
        }
    }

    fn show(&mut self, lines: Vec<(LogLine, Arc<str>)>) -> Item {
        let mut shown = Vec::with_capacity(lines.len());
        for (line, task) in lines {
            self.note_time(&line);
            shown.push(Shown::new(line, task, self.timestamps));
        }
        Item::Lines {
            lines: shown,
            newest: self.newest,
        }
    }

    fn note_time(&mut self, line: &LogLine) {
        if let Some(time) = line_time(line) {
            if self.newest.is_none_or(|newest| time > newest) {
                self.newest = Some(time);
            }
        }
    }

    /// Ends the feed with `item`, after the lines already read.
    fn finish(&mut self, lines: Vec<(LogLine, Arc<str>)>, item: Item) -> Item {
        self.source = None;
        if lines.is_empty() {
            return item;
        }
        self.queued = Some(item);
        self.show(lines)
    }

    async fn task(&mut self, line: &LogLine) -> Arc<str> {
        let Some(id) = line.task_id.as_deref() else {
            return self.service_name.clone();
        };
        if let Some(name) = self.names.get(id) {
            return name;
        }
        let may_ask = self
            .ask_again_at
            .is_none_or(|at| tokio::time::Instant::now() >= at);
        let answered = may_ask && self.refresh().await;
        match self.names.get(id) {
            Some(name) => name,
            None if answered => self.names.fallback(id),
            None => self.names.provisional(id),
        }
    }

    /// Learns the service's task names; whether the engine answered. When it did not, names
    /// stay as they were (the unknown ones show their task id) and it is asked again, at the
    /// earliest after [`ASK_AGAIN`].
    async fn refresh(&mut self) -> bool {
        let (tasks, nodes) = tokio::join!(
            self.engine.list_tasks(&self.service_id),
            self.engine.list_nodes()
        );
        let hostnames: HashMap<String, String> = match nodes {
            Ok(nodes) => nodes.into_iter().map(|n| (n.id, n.hostname)).collect(),
            Err(e) => {
                tracing::debug!(error = %e, "logs: no node names");
                HashMap::new()
            }
        };
        match tasks {
            Ok(tasks) => {
                self.names.refresh(&tasks, &hostnames);
                self.ask_again_at = None;
                true
            }
            Err(e) => {
                tracing::warn!(service = %self.service_name, error = %e, "logs: cannot list tasks");
                self.ask_again_at = Some(tokio::time::Instant::now() + ASK_AGAIN);
                false
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
