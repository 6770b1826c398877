//! A change followed live (see [`crate::jobs`]):
//!
//! - `GET /jobs/{id}`, `GET /api/jobs/{id}`: the job, its lines so far and its end. The page
//!   reloads itself every two seconds while the job runs when scripts are off; with scripts,
//!   `static/job.js` follows the event stream instead and reloads once at the end.
//! - `GET /api/jobs/{id}/events`: `text/event-stream`. `lines`: the lines since the last
//!   event, one `data:` field each, `id` the index the next line will have (a reconnecting
//!   `EventSource` sends it back as `Last-Event-ID`; `?after=N` does the same for the first
//!   connection); `end`: the end as JSON (`{"succeeded", "outcome", "links"}`), then the
//!   stream ends. A comment every 15 s keeps proxies from closing it.
//!
//! Any logged-in user may read a job (viewer too): its lines say what the service pages and
//! the history say (services, task states, revisions), never a secret's value. Anonymous
//! callers get nothing, so they hold no stream. A stream holds the job (bounded, see
//! [`crate::jobs`]) and ends with it, or when the server shuts down.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::Event;
use axum::response::Response;
use futures_util::stream::{self, StreamExt};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::logs::event_stream;
use crate::error::AppError;
use crate::jobs::{Job, JobEnd, Seen};
use crate::respond::Reply;
use crate::state::AppState;

/// A job's page and its JSON.
#[derive(Serialize)]
pub struct JobView {
    pub id: String,
    pub title: String,
    /// Who started it.
    pub user: String,
    pub started: Timestamp,
    pub running: bool,
    /// Lines the job no longer holds.
    pub dropped: usize,
    pub lines: Vec<String>,
    /// The index the next line will have: where the event stream resumes.
    pub next: usize,
    pub end: Option<JobEnd>,
}

page!(JobView, "job.html", "services");

fn find(state: &AppState, id: &str) -> Result<Arc<Job>, AppError> {
    state.jobs.get(id).ok_or_else(|| {
        AppError::NotFound(format!(
            "no change {id} is being followed: it ended more than {} minutes ago, or the \
             server restarted since; the stack's history records what it did",
            crate::jobs::FINISHED_KEPT.as_secs() / 60
        ))
    })
}

/// `GET /jobs/{id}`, `GET /api/jobs/{id}`.
pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Reply, AppError> {
    let job = find(&state, &id)?;
    let Seen {
        lines,
        next,
        dropped,
        end,
        ..
    } = job.seen(0);
    Ok(Reply::page(JobView {
        id: job.id.clone(),
        title: job.title.clone(),
        user: job.user.clone(),
        started: job.started,
        running: end.is_none(),
        dropped,
        lines,
        next,
        end,
    }))
}

/// `?after=N`: the first line to send.
#[derive(Deserialize)]
pub struct EventsQuery {
    pub after: Option<usize>,
}

/// `GET /api/jobs/{id}/events`.
pub async fn events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let job = find(&state, &id)?;
    let from = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok())
        .or(query.after)
        .unwrap_or(0);
    let changed = job.subscribe();
    let follow = Follow {
        job,
        changed,
        from,
        ended: false,
    };
    let events = stream::unfold(follow, |mut follow| async move {
        follow
            .next()
            .await
            .map(|event| (Ok::<_, Infallible>(event), follow))
    })
    .take_until(state.shutdown.started());
    Ok(event_stream(events))
}

/// Where one reader of a job is.
struct Follow {
    job: Arc<Job>,
    changed: tokio::sync::watch::Receiver<u64>,
    from: usize,
    ended: bool,
}

impl Follow {
    /// The next event: new lines, else the end, else wait for a change.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if self.ended {
                return None;
            }
            self.changed.borrow_and_update();
            let seen = self.job.seen(self.from);
            if !seen.lines.is_empty() {
                self.from = seen.next;
                return Some(
                    Event::default()
                        .event("lines")
                        .id(seen.next.to_string())
                        .data(seen.lines.join("\n")),
                );
            }
            if let Some(end) = seen.end {
                self.ended = true;
                let data = serde_json::to_string(&end).unwrap_or_default();
                return Some(Event::default().event("end").data(data));
            }
            // The sender lives in the job this reader holds: it cannot close.
            self.changed.changed().await.ok()?;
        }
    }
}
