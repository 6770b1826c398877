//! Changes the dashboard applies in the background, followed live. A form that changes the
//! cluster through the deploy engine (the service form, "edit as compose", a secret's or
//! config's rotation) starts a [`Job`] and answers at once with a redirect to its page,
//! `/jobs/{id}`; the deploy engine's progress lines go to the job as they happen, and the page
//! shows them (an event stream with JavaScript, a page that reloads itself without). A stack
//! deploy or rollback through the JSON API starts one too and answers 202 with it, unless the
//! caller asks to wait (`?wait=true`).
//!
//! Invariants:
//!
//! - A job runs on the server, not in the request: a browser that leaves changes nothing, the
//!   deploy goes on to its end and is recorded in the history and the audit log as it would
//!   be from the JSON API.
//! - Memory is bounded whatever the callers do: at most [`MAX_JOBS`] jobs are kept (the
//!   oldest finished one goes first, then the oldest), each keeps its last [`MAX_LINES`]
//!   lines of at most [`MAX_LINE_CHARS`] characters, and a finished job is forgotten
//!   [`FINISHED_KEPT`] after its end. Only those allowed to start one (operators) add jobs;
//!   reading one takes a logged-in user (routes table), so anonymous traffic holds nothing.
//! - A job's lines live in memory only; its title, starter, what it is about (the stack's
//!   history, the services) and its end are also written to the server's SQLite file (the
//!   [`ledger`], the newest [`LEDGER_KEPT`]), so a job's page outlives the job and the
//!   server: after a restart, a job that was running says it was lost with the restart (or
//!   interrupted by the shutdown, when the server could record that) and links to where its
//!   deploy is recorded, never a bare 404. A change that restarts the server itself (a
//!   re-key) records beforehand how its job ends if the next start can prove the change took
//!   effect ([`ledger::decided_at_restart`]); a job that saw its own success keeps it.
//! - On shutdown the server asks every deploy to stop at its next safe point (the deploy
//!   engine's `Stop`: the revision is recorded `interrupted`, Swarm goes on with what was
//!   applied) and waits a little for them; a job still running then is ended `interrupted`.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::error::AppError;

/// Jobs kept at most.
pub const MAX_JOBS: usize = 64;
/// Lines a job keeps at most: the newest; the count of the dropped ones is kept.
pub const MAX_LINES: usize = 2000;
/// A longer line is cut (at a character boundary) and marked with `…`.
pub const MAX_LINE_CHARS: usize = 1000;
/// How long a finished job stays readable.
pub const FINISHED_KEPT: Duration = Duration::from_secs(10 * 60);
/// No server ran before this (2020-01-01, in milliseconds): an id with an older epoch was made
/// up, not left by a restart.
const EARLIEST_EPOCH: u64 = 1_577_836_800_000;
/// Jobs the [`ledger`] keeps: the newest.
pub const LEDGER_KEPT: i64 = 1000;

/// The jobs of one server.
pub struct Jobs {
    jobs: Mutex<VecDeque<Arc<Job>>>,
    /// Ids are `{epoch}-{n}`: the server's start time in milliseconds keeps a link from
    /// before a restart from naming a new job.
    epoch: u64,
    next: AtomicU64,
}

impl Default for Jobs {
    fn default() -> Jobs {
        Jobs {
            jobs: Mutex::new(VecDeque::new()),
            epoch: Timestamp::now().as_millisecond().unsigned_abs(),
            next: AtomicU64::new(1),
        }
    }
}

impl Jobs {
    /// A new running job: `title` says what it does (`edit of service web`), `user` who
    /// started it, `about` where what it does is recorded (the stack's history, the service).
    pub fn start(&self, title: String, user: &str, about: Vec<Link>) -> Arc<Job> {
        self.start_at(title, user, about, Instant::now())
    }

    fn start_at(&self, title: String, user: &str, about: Vec<Link>, now: Instant) -> Arc<Job> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let job = Arc::new(Job {
            id: format!("{}-{n}", self.epoch),
            title,
            user: user.to_owned(),
            about,
            started: Timestamp::now(),
            state: Mutex::new(State::default()),
            changed: watch::Sender::new(0),
        });
        let mut jobs = self.lock(now);
        if jobs.len() >= MAX_JOBS {
            let oldest_finished = jobs.iter().position(|j| j.state().end.is_some());
            jobs.remove(oldest_finished.unwrap_or(0));
        }
        jobs.push_back(job.clone());
        job
    }

    /// The job with this id, unless it was forgotten.
    pub fn get(&self, id: &str) -> Option<Arc<Job>> {
        self.get_at(id, Instant::now())
    }

    fn get_at(&self, id: &str, now: Instant) -> Option<Arc<Job>> {
        self.lock(now).iter().find(|j| j.id == id).cloned()
    }

    /// Whether `id` names a job of an earlier run of the server (ids begin with the start
    /// time of the server that made them).
    pub fn of_earlier_run(&self, id: &str) -> bool {
        id.split_once('-')
            .and_then(|(epoch, _)| epoch.parse::<u64>().ok())
            .is_some_and(|epoch| (EARLIEST_EPOCH..self.epoch).contains(&epoch))
    }

    /// The jobs still running.
    pub fn running(&self) -> Vec<Arc<Job>> {
        self.lock(Instant::now())
            .iter()
            .filter(|j| j.state().end.is_none())
            .cloned()
            .collect()
    }

    /// The list, with the finished jobs past [`FINISHED_KEPT`] dropped.
    fn lock(&self, now: Instant) -> MutexGuard<'_, VecDeque<Arc<Job>>> {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        jobs.retain(|job| {
            job.state()
                .finished
                .is_none_or(|at| now.saturating_duration_since(at) < FINISHED_KEPT)
        });
        jobs
    }

    /// Runs `work` as `job` on the server's runtime, detached from the request: the job ends
    /// with what `work` answers, or failed with its error (or with a panic's, so a page never
    /// waits for a job that cannot end); `ended` is then told the end the job kept (an end
    /// given earlier, at shutdown, wins).
    pub fn spawn<F, E>(job: Arc<Job>, work: F, ended: E)
    where
        F: Future<Output = Result<JobEnd, AppError>> + Send + 'static,
        E: FnOnce(&Job, &JobEnd) + Send + 'static,
    {
        tokio::spawn(async move {
            let end = match tokio::spawn(work).await {
                Ok(Ok(end)) => end,
                Ok(Err(e)) => JobEnd::failed(format!("failed: {e}")),
                Err(e) => JobEnd::failed(format!("failed: internal error ({e})")),
            };
            job.finish(end);
            if let Some(end) = job.seen(usize::MAX).end {
                ended(&job, &end);
            }
        });
    }
}

/// One change being applied, and its lines.
pub struct Job {
    pub id: String,
    pub title: String,
    pub user: String,
    pub started: Timestamp,
    /// Where what the job does is recorded: the stack's history, the services.
    pub about: Vec<Link>,
    state: Mutex<State>,
    /// Bumped on every new line and at the end; the event streams wait on it.
    changed: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    /// Lines dropped from the front (the index of `lines[0]`).
    dropped: usize,
    lines: VecDeque<String>,
    end: Option<JobEnd>,
    finished: Option<Instant>,
}

/// How a job ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobEnd {
    pub succeeded: bool,
    /// The deploy engine's word (`succeeded`, `rolled back`, `interrupted`, …) or the error.
    pub outcome: String,
    /// Where to look next: the revision in the history, the service, the object.
    pub links: Vec<Link>,
    /// What else to know, a sentence each: why a service failed, what Swarm does with a
    /// rollout an interrupted deploy no longer follows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl JobEnd {
    pub fn failed(outcome: String) -> JobEnd {
        JobEnd {
            succeeded: false,
            outcome,
            links: Vec::new(),
            notes: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub text: String,
    pub href: String,
}

/// What a reader sees of a job from line `from` on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Seen {
    /// The index of `lines[0]` (lines before it were dropped or asked not to be sent).
    pub first: usize,
    pub lines: Vec<String>,
    /// The index the next line will have.
    pub next: usize,
    /// Lines the job no longer holds (older than its last [`MAX_LINES`]).
    pub dropped: usize,
    pub end: Option<JobEnd>,
}

impl Job {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a line (one line: line breaks become spaces; cut at [`MAX_LINE_CHARS`]). A line
    /// after the end is ignored.
    pub fn line(&self, line: &str) {
        let mut text: String = line
            .chars()
            .take(MAX_LINE_CHARS)
            .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
            .collect();
        if line.chars().nth(MAX_LINE_CHARS).is_some() {
            text.push('…');
        }
        {
            let mut state = self.state();
            if state.end.is_some() {
                return;
            }
            state.lines.push_back(text);
            if state.lines.len() > MAX_LINES {
                state.lines.pop_front();
                state.dropped += 1;
            }
        }
        self.changed.send_modify(|n| *n += 1);
    }

    /// Ends the job; a second end is ignored.
    pub fn finish(&self, end: JobEnd) {
        self.finish_at(end, Instant::now());
    }

    fn finish_at(&self, end: JobEnd, now: Instant) {
        {
            let mut state = self.state();
            if state.end.is_some() {
                return;
            }
            state.end = Some(end);
            state.finished = Some(now);
        }
        self.changed.send_modify(|n| *n += 1);
    }

    /// The lines from index `from` on (those still held), and the end if there is one.
    pub fn seen(&self, from: usize) -> Seen {
        let state = self.state();
        let next = state.dropped + state.lines.len();
        let first = from.clamp(state.dropped, next);
        Seen {
            first,
            lines: state
                .lines
                .iter()
                .skip(first - state.dropped)
                .cloned()
                .collect(),
            next,
            dropped: state.dropped,
            end: state.end.clone(),
        }
    }

    /// Woken on every change of the job.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

/// Writes a job's end to the ledger; a failure is logged (the history keeps the deploy).
pub(crate) fn record_end(state: &crate::state::AppState, job: &Job, end: &JobEnd) {
    if let Err(e) = ledger::ended(&state.auth(), &job.id, end) {
        tracing::warn!(error = %e, job = %job.id, "cannot record a job's end in the ledger");
    }
}

/// The jobs' record in the server's SQLite file (the auth tables' connection): what a job's
/// page shows once the job is no longer in memory. One row a job; the newest [`LEDGER_KEPT`].
pub mod ledger {
    use super::*;

    /// A job as the ledger keeps it.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Recorded {
        pub id: String,
        pub title: String,
        pub user: String,
        pub started: Timestamp,
        pub about: Vec<Link>,
        /// `None`: the job was running when the server that ran it stopped without ending it.
        pub end: Option<JobEnd>,
    }

    /// Creates the tables when missing.
    pub fn create(conn: &Connection) -> rusqlite::Result<()> {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS dashboard_jobs (
                 id TEXT PRIMARY KEY,
                 title TEXT NOT NULL,
                 user TEXT NOT NULL,
                 started TEXT NOT NULL,
                 about TEXT NOT NULL,
                 ending TEXT
             );
             CREATE TABLE IF NOT EXISTS dashboard_job_restarts (
                 id TEXT PRIMARY KEY,
                 proof BLOB NOT NULL,
                 ending TEXT NOT NULL
             )",
        )
    }

    /// Records that job `id` ends as `then` if a server that starts later can tell, from
    /// `proof`, that the change the job made took effect: a change that restarts this server
    /// (a re-key) is cut off by its own restart, so only the next start knows how it went.
    pub fn decided_at_restart(
        conn: &Connection,
        id: &str,
        proof: &[u8],
        then: &JobEnd,
    ) -> rusqlite::Result<()> {
        let then = serde_json::to_string(then).unwrap_or_default();
        conn.execute(
            "INSERT OR REPLACE INTO dashboard_job_restarts (id, proof, ending) VALUES (?1, ?2, ?3)",
            params![id, proof, then],
        )?;
        Ok(())
    }

    /// The jobs [`decided_at_restart`] recorded: id, proof, the end they take.
    pub fn restart_decisions(
        conn: &Connection,
    ) -> rusqlite::Result<Vec<(String, Vec<u8>, JobEnd)>> {
        let mut statement =
            conn.prepare("SELECT id, proof, ending FROM dashboard_job_restarts ORDER BY id")?;
        let rows = statement.query_map([], |row| {
            let ending: String = row.get(2)?;
            Ok((row.get(0)?, row.get(1)?, ending))
        })?;
        let mut decisions = Vec::new();
        for row in rows {
            let (id, proof, ending) = row?;
            if let Ok(end) = serde_json::from_str(&ending) {
                decisions.push((id, proof, end));
            }
        }
        Ok(decisions)
    }

    /// Ends job `id` as its decision says, unless it was recorded as succeeded already (its
    /// own end is then the better account), and forgets the decision.
    pub fn decide(conn: &Connection, id: &str, end: &JobEnd) -> rusqlite::Result<()> {
        let succeeded = recorded(conn, id)?
            .and_then(|r| r.end)
            .is_some_and(|end| end.succeeded);
        if !succeeded {
            ended(conn, id, end)?;
        }
        conn.execute(
            "DELETE FROM dashboard_job_restarts WHERE id = ?1",
            params![id],
        )?;
        Ok(())
    }

    /// Forgets every decision (the change they wait for was given up, or another replaces it).
    pub fn forget_restart_decisions(conn: &Connection) -> rusqlite::Result<()> {
        conn.execute("DELETE FROM dashboard_job_restarts", [])?;
        Ok(())
    }

    /// Records a job that started, and forgets the jobs past the newest [`LEDGER_KEPT`].
    pub fn started(conn: &Connection, job: &Job) -> rusqlite::Result<()> {
        let about = serde_json::to_string(&job.about).unwrap_or_else(|_| "[]".into());
        conn.execute(
            "INSERT OR REPLACE INTO dashboard_jobs (id, title, user, started, about, ending)
             VALUES (?1, ?2, ?3, ?4, ?5, NULL)",
            params![job.id, job.title, job.user, job.started.to_string(), about],
        )?;
        conn.execute(
            "DELETE FROM dashboard_jobs WHERE rowid <= (SELECT max(rowid) FROM dashboard_jobs) - ?1",
            params![LEDGER_KEPT],
        )?;
        Ok(())
    }

    /// Records how a job ended.
    pub fn ended(conn: &Connection, id: &str, end: &JobEnd) -> rusqlite::Result<()> {
        let end = serde_json::to_string(end).unwrap_or_default();
        conn.execute(
            "UPDATE dashboard_jobs SET ending = ?2 WHERE id = ?1",
            params![id, end],
        )?;
        Ok(())
    }

    /// The job with this id, if the ledger has it.
    pub fn recorded(conn: &Connection, id: &str) -> rusqlite::Result<Option<Recorded>> {
        conn.query_row(
            "SELECT title, user, started, about, ending FROM dashboard_jobs WHERE id = ?1",
            params![id],
            |row| {
                let started: String = row.get(2)?;
                let about: String = row.get(3)?;
                let end: Option<String> = row.get(4)?;
                Ok(Recorded {
                    id: id.to_owned(),
                    title: row.get(0)?,
                    user: row.get(1)?,
                    started: started.parse().unwrap_or_default(),
                    about: serde_json::from_str(&about).unwrap_or_default(),
                    end: end.and_then(|e| serde_json::from_str(&e).ok()),
                })
            },
        )
        .optional()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(outcome: &str) -> JobEnd {
        JobEnd {
            succeeded: true,
            outcome: outcome.to_owned(),
            links: Vec::new(),
            notes: Vec::new(),
        }
    }

    #[test]
    fn a_job_keeps_its_lines_in_order_and_ends_once() {
        let jobs = Jobs::default();
        let job = jobs.start("edit of service web".into(), "op", Vec::new());
        job.line("web: update");
        job.line("web: running 1/1\nsecond line");
        let seen = job.seen(0);
        assert_eq!(seen.lines, ["web: update", "web: running 1/1 second line"]);
        assert_eq!((seen.first, seen.next, seen.end.clone()), (0, 2, None));
        assert_eq!(job.seen(1).lines, ["web: running 1/1 second line"]);
        assert!(job.seen(7).lines.is_empty());
        job.finish(done("succeeded"));
        job.finish(done("rolled back"));
        job.line("late");
        let seen = job.seen(0);
        assert_eq!(seen.end.unwrap().outcome, "succeeded");
        assert_eq!(seen.next, 2);
        assert!(jobs.get(&job.id).is_some());
        assert!(jobs.get("0-1").is_none());
        assert!(!jobs.of_earlier_run("0-1"), "made up");
        assert!(!jobs.of_earlier_run(&job.id), "this run's");
        assert!(jobs.of_earlier_run("1700000000000-3"));
        assert!(!jobs.of_earlier_run("x-3"));
    }

    #[test]
    fn lines_are_bounded_in_count_and_length() {
        let jobs = Jobs::default();
        let job = jobs.start("t".into(), "op", Vec::new());
        job.line(&"x".repeat(MAX_LINE_CHARS + 10));
        assert_eq!(job.seen(0).lines[0].chars().count(), MAX_LINE_CHARS + 1);
        for i in 0..MAX_LINES + 5 {
            job.line(&i.to_string());
        }
        let seen = job.seen(0);
        assert_eq!(seen.lines.len(), MAX_LINES);
        assert_eq!(seen.dropped, 6);
        assert_eq!(seen.first, 6);
        assert_eq!(seen.lines[0], "5");
        assert_eq!(seen.next, MAX_LINES + 6);
    }

    #[test]
    fn jobs_are_bounded_and_finished_ones_expire() {
        let jobs = Jobs::default();
        let now = Instant::now();
        let first = jobs.start_at("first".into(), "op", Vec::new(), now);
        let second = jobs.start_at("second".into(), "op", Vec::new(), now);
        second.finish_at(done("succeeded"), now);
        for i in 0..MAX_JOBS - 1 {
            jobs.start_at(format!("job {i}"), "op", Vec::new(), now);
        }
        // Full: the finished one went first, the running one stays.
        assert!(jobs.get_at(&second.id, now).is_none());
        assert!(jobs.get_at(&first.id, now).is_some());
        jobs.start_at("one more".into(), "op", Vec::new(), now);
        assert!(jobs.get_at(&first.id, now).is_none(), "then the oldest");
        assert_eq!(jobs.lock(now).len(), MAX_JOBS);

        let jobs = Jobs::default();
        let job = jobs.start_at("t".into(), "op", Vec::new(), now);
        job.finish_at(done("succeeded"), now);
        assert!(jobs.get_at(&job.id, now + FINISHED_KEPT / 2).is_some());
        assert!(jobs.get_at(&job.id, now + FINISHED_KEPT).is_none());
    }

    #[tokio::test]
    async fn a_spawned_job_ends_with_its_work_or_its_error() {
        let jobs = Jobs::default();
        let ok = jobs.start("ok".into(), "op", Vec::new());
        let mut changed = ok.subscribe();
        let worker = ok.clone();
        Jobs::spawn(
            ok.clone(),
            async move {
                worker.line("working");
                Ok(done("succeeded"))
            },
            |_, _| {},
        );
        while ok.seen(0).end.is_none() {
            changed.changed().await.unwrap();
        }
        assert_eq!(ok.seen(0).lines, ["working"]);

        let failing = jobs.start("bad".into(), "op", Vec::new());
        let mut changed = failing.subscribe();
        Jobs::spawn(
            failing.clone(),
            async { Err(AppError::Conflict("engine said no".into())) },
            |_, _| {},
        );
        while failing.seen(0).end.is_none() {
            changed.changed().await.unwrap();
        }
        let end = failing.seen(0).end.unwrap();
        assert!(!end.succeeded);
        assert_eq!(end.outcome, "failed: engine said no");
    }

    #[test]
    fn the_ledger_keeps_a_job_past_memory_and_the_newest_only() {
        let conn = Connection::open_in_memory().unwrap();
        ledger::create(&conn).unwrap();
        ledger::create(&conn).unwrap();
        let jobs = Jobs::default();
        let about = vec![Link {
            text: "history of shop".into(),
            href: "/stacks/shop".into(),
        }];
        let job = jobs.start("Deploy of stack shop".into(), "op", about.clone());
        ledger::started(&conn, &job).unwrap();
        let running = ledger::recorded(&conn, &job.id).unwrap().unwrap();
        assert_eq!(running.title, "Deploy of stack shop");
        assert_eq!(running.about, about);
        assert_eq!(running.started, job.started);
        assert_eq!(running.end, None);
        let mut end = done("interrupted");
        end.notes.push("Swarm goes on".into());
        ledger::ended(&conn, &job.id, &end).unwrap();
        assert_eq!(
            ledger::recorded(&conn, &job.id).unwrap().unwrap().end,
            Some(end)
        );
        assert_eq!(ledger::recorded(&conn, "0-0").unwrap(), None);

        for i in 0..LEDGER_KEPT {
            let job = jobs.start(format!("job {i}"), "op", Vec::new());
            ledger::started(&conn, &job).unwrap();
        }
        assert_eq!(
            ledger::recorded(&conn, &job.id).unwrap(),
            None,
            "the oldest went"
        );
        let count: i64 = conn
            .query_row("SELECT count(*) FROM dashboard_jobs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, LEDGER_KEPT);
    }
}
