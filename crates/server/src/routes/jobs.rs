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
//! - A job no longer in memory (a restart, or ended more than ten minutes ago) is read from
//!   the ledger ([`crate::jobs::ledger`]): its title, its end, where its deploy is recorded;
//!   one the server was running when it stopped says it was lost with the restart (410).
//!
//! Any logged-in user may read a job (viewer too): its lines say what the service pages and
//! the history say (services, task states, revisions), never a secret's value. Anonymous
//! callers get nothing, so they hold no stream. A stream holds the job (bounded, see
//! [`crate::jobs`]) and ends with it, or when the server shuts down.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::Event;
use axum::response::Response;
use futures_util::stream::{self, StreamExt};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::logs::event_stream;
use crate::error::AppError;
use crate::jobs::{ledger, Job, JobEnd, Jobs, Link, Seen, FINISHED_KEPT};
use crate::page::url_encode;
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
    /// The job is no longer in memory: `restart` (it ran on the server before a restart: its
    /// lines went with it) or `expired` (it ended more than [`FINISHED_KEPT`] ago). Its
    /// title and end come from the ledger; without an end, it was lost with the restart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gone: Option<&'static str>,
    /// Where what it did is recorded: the stack's history, the services.
    pub about: Vec<Link>,
}

page!(JobView, "job.html", "services");

fn find(state: &AppState, id: &str) -> Result<Arc<Job>, AppError> {
    state.jobs.get(id).ok_or_else(|| {
        AppError::NotFound(format!(
            "no change {id} is being followed: it ended more than {} minutes ago, or the \
             server restarted since; reload its page, and the stack's history records what it did",
            FINISHED_KEPT.as_secs() / 60
        ))
    })
}

/// `GET /jobs/{id}`, `GET /api/jobs/{id}`: the job from memory; else from the ledger (410 for
/// one the server lost running, 200 for one that ended); else, for an id of an earlier run of
/// the server that the ledger no longer has, a page that says so (410); else 404.
pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Reply, AppError> {
    let Some(job) = state.jobs.get(&id) else {
        return gone(&state, &id);
    };
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
        gone: None,
        about: job.about.clone(),
    }))
}

/// A job no longer in memory, as the ledger recorded it.
fn gone(state: &AppState, id: &str) -> Result<Reply, AppError> {
    let earlier_run = state.jobs.of_earlier_run(id);
    let recorded = ledger::recorded(&state.auth(), id).map_err(AppError::internal)?;
    let (view, lost) = match recorded {
        Some(r) => {
            let lost = r.end.is_none();
            (
                JobView {
                    id: r.id,
                    title: r.title,
                    user: r.user,
                    started: r.started,
                    running: false,
                    dropped: 0,
                    lines: Vec::new(),
                    next: 0,
                    end: r.end,
                    gone: Some(if earlier_run || lost {
                        "restart"
                    } else {
                        "expired"
                    }),
                    about: r.about,
                },
                lost,
            )
        }
        None if earlier_run => (
            JobView {
                id: id.to_owned(),
                title: format!("Change {id}"),
                user: String::new(),
                started: Timestamp::UNIX_EPOCH,
                running: false,
                dropped: 0,
                lines: Vec::new(),
                next: 0,
                end: None,
                gone: Some("restart"),
                about: vec![Link {
                    text: "stacks and their deploy history".into(),
                    href: "/stacks".into(),
                }],
            },
            true,
        ),
        None => {
            return Err(find(state, id)
                .err()
                .unwrap_or(AppError::NotFound(id.into())))
        }
    };
    let status = if lost {
        StatusCode::GONE
    } else {
        StatusCode::OK
    };
    Ok(Reply::page(view).with_status(status))
}

/// A change started as a job, as the JSON API answers it (202, `Location` the `url`).
#[derive(Serialize)]
pub struct StartedJob {
    /// The job's id.
    pub job: String,
    /// Its JSON, `/api/jobs/{id}`: `end` is set once it is done.
    pub url: String,
    /// Its page, `/jobs/{id}`.
    pub page: String,
}

/// Starts a dashboard change as a job: `work` gets the job (to give it the deploy engine's
/// lines) and answers its end; the job is recorded in the ledger at its start and its end.
/// Answers the job's page, where the form's post goes on (303); as JSON, 202 with the job
/// ([`StartedJob`]) and its JSON's URL as `Location`.
pub(crate) fn follow<W, F>(
    state: &AppState,
    title: String,
    user: &str,
    about: Vec<Link>,
    work: W,
) -> Reply
where
    W: FnOnce(Arc<Job>) -> F,
    F: std::future::Future<Output = Result<JobEnd, AppError>> + Send + 'static,
{
    let job = start_followed(state, title, user, about, work);
    let id = url_encode(&job);
    let started = StartedJob {
        job,
        url: format!("/api/jobs/{id}"),
        page: format!("/jobs/{id}"),
    };
    let (url, page) = (started.url.clone(), started.page.clone());
    Reply::accepted(started, url, page)
}

/// [`follow`]'s start: the job's id, for a change whose JSON answer names its job.
pub(crate) fn start_followed<W, F>(
    state: &AppState,
    title: String,
    user: &str,
    about: Vec<Link>,
    work: W,
) -> String
where
    W: FnOnce(Arc<Job>) -> F,
    F: std::future::Future<Output = Result<JobEnd, AppError>> + Send + 'static,
{
    let job = state.jobs.start(title, user, about);
    if let Err(e) = ledger::started(&state.auth(), &job) {
        tracing::warn!(error = %e, job = %job.id, "cannot record a job in the ledger");
    }
    let work = work(job.clone());
    let recorder = state.clone();
    Jobs::spawn(job.clone(), work, move |job, end| {
        crate::jobs::record_end(&recorder, job, end);
    });
    job.id.clone()
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
