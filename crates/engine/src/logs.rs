//! Service logs, and [`Logs`]: the one path by which `swarmkeeper logs` and the dashboard's
//! live logs read them.
//!
//! [`Engine::logs`] reads each task of one or more services on its own (`GET
//! /tasks/{id}/logs`): Engine 20.10's service-wide stream, not followed, stays open once it has
//! sent its lines, and sends only part of them when several tasks write (moby/moby#38640, seen
//! here too), while a task's stream ends and comes in the order the task wrote. By default only
//! the current tasks ([`names::current_tasks`]), each line named like `docker service logs`
//! names it, the tasks' lines merged by time ([`merge`]), a service whose log driver keeps
//! nothing readable reported once with the fix ([`verdict`]). The decisions are pure modules:
//! [`demux`] (bytes to lines, linear time), [`merge`] (time order), [`names`] (which tasks,
//! what they are called), [`verdict`] (log drivers); this file does the I/O.

pub mod demux;
pub mod merge;
pub mod names;
pub mod verdict;

use std::collections::{HashMap, HashSet, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{self, BoxStream};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::Method;
use jiff::Timestamp;

use crate::http::encode;
use crate::swarm::SWARM_REQUEST_TIMEOUT;
use crate::{Engine, EngineError, Service, Task};
use demux::Demux;
use merge::Merge;
pub use names::{current_tasks, task_name};
pub use verdict::{cached_note, is_unreadable_line, unreadable_message, DriverVerdict};

/// What the engine says when a service's log driver keeps nothing it can read back.
pub const LOGS_UNREADABLE: &str = "configured logging driver does not support reading";

/// The most lines [`Logs::next`] hands out at once.
pub const MAX_BATCH: usize = 2048;

/// What `/services/{id}/logs` should send.
#[derive(Clone, Debug, Default)]
pub struct LogOptions {
    pub follow: bool,
    /// Sent to the engine with nanoseconds.
    pub since: Option<Timestamp>,
    /// Lines per task from the end; `None` for all.
    pub tail: Option<u64>,
    pub timestamps: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// One line of a service's logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub stream: LogStream,
    /// Present when asked for with [`LogOptions::timestamps`]: the engine's RFC 3339 time.
    pub timestamp: Option<String>,
    /// `com.docker.swarm.task.id` from the line's details.
    pub task_id: Option<String>,
    /// The line without its newline.
    pub text: String,
}

/// The engine refused to read logs because of the service's log driver.
pub fn is_logs_unreadable(error: &EngineError) -> bool {
    matches!(error, EngineError::Api { message, .. } if message.contains(LOGS_UNREADABLE))
}

/// What [`Engine::logs`] reads.
#[derive(Clone, Debug, Default)]
pub struct LogsRequest {
    /// Keep reading new lines (and the tasks that start meanwhile) until the caller stops.
    pub follow: bool,
    /// Only lines from this time on.
    pub since: Option<Timestamp>,
    /// Lines per task from the end; `None` for all.
    pub tail: Option<u64>,
    /// Every task of the services that Swarm still lists, not only the current ones.
    pub all_tasks: bool,
}

/// A line as [`Logs`] gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedLine {
    /// The task's name, `web.1.<task id>@<node>`.
    pub task: Arc<str>,
    /// The engine's time of the line (always read, whether shown or not).
    pub time: Option<Timestamp>,
    /// The line; its `timestamp` is the engine's text of `time`, its `task_id` the task's.
    pub line: LogLine,
}

/// What [`Logs::next`] gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogItem {
    /// Lines, oldest first (see [`merge`] for how far that holds while following).
    Lines(Vec<NamedLine>),
    /// A service's logs cannot be read; `message` says why and how to fix it. The other
    /// services' lines go on.
    Unreadable { service: String, message: String },
}

/// How often a followed read looks for tasks that started since (a scale, an update, a
/// restart).
const NEW_TASKS_EVERY: Duration = Duration::from_secs(2);

/// The logs of one or more services, read as [`Engine::logs`] describes. Nothing is spawned:
/// dropping it closes the connections to the engine.
pub struct Logs {
    engine: Engine,
    request: LogsRequest,
    services: Vec<ServiceSource>,
    tasks: Vec<TaskSource>,
    /// Every open task's lines.
    lines: TaskStreams,
    open: usize,
    hostnames: HashMap<String, String>,
    /// Tasks of the services left out (not current).
    hidden: HashSet<String>,
    /// Lines by the index of their task in `tasks`.
    merge: Merge<usize, NamedLine>,
    queued: VecDeque<LogItem>,
    failure: Option<EngineError>,
    /// An error came, or every service was removed: nothing more will.
    ended: bool,
    /// Following: when to look for new tasks.
    look_again: Option<Instant>,
    /// Wakes the read for the merge's deadline or the next look, whichever comes first.
    timer: Pin<Box<tokio::time::Sleep>>,
    timer_at: Option<Instant>,
}

/// A line of the task at this index of `Logs::tasks`; `None` when its stream ends.
type TaskLine = (usize, Option<Result<LogLine, EngineError>>);

/// The open tasks' streams, read together: whatever lines are ready, at most [`MAX_BATCH`],
/// without an allocation per line (as `select_all` makes).
#[derive(Default)]
struct TaskStreams {
    /// By task index; `None` once ended.
    streams: Vec<Option<BoxStream<'static, Result<LogLine, EngineError>>>>,
    /// Where the next read starts, so that one busy task does not starve the others.
    next: usize,
}

impl TaskStreams {
    fn push(&mut self, index: usize, lines: BoxStream<'static, Result<LogLine, EngineError>>) {
        if self.streams.len() <= index {
            self.streams.resize_with(index + 1, || None);
        }
        self.streams[index] = Some(lines);
    }

    /// The lines ready now, and the ends of streams; waits while there are none.
    async fn ready(&mut self) -> Vec<TaskLine> {
        std::future::poll_fn(|cx| {
            let mut out = Vec::new();
            let count = self.streams.len();
            for step in 0..count {
                let index = (self.next + step) % count;
                let Some(lines) = self.streams[index].as_mut() else {
                    continue;
                };
                while out.len() < MAX_BATCH {
                    match lines.poll_next_unpin(cx) {
                        std::task::Poll::Ready(Some(line)) => out.push((index, Some(line))),
                        std::task::Poll::Ready(None) => {
                            out.push((index, None));
                            self.streams[index] = None;
                            break;
                        }
                        std::task::Poll::Pending => break,
                    }
                }
                if out.len() >= MAX_BATCH {
                    self.next = (index + 1) % count;
                    break;
                }
            }
            if out.is_empty() {
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(out)
            }
        })
        .await
    }
}

struct ServiceSource {
    id: String,
    name: String,
    /// Said once: its logs cannot be read.
    unreadable: bool,
    /// Removed while followed.
    gone: bool,
}

struct TaskSource {
    id: String,
    name: Arc<str>,
    service: usize,
    /// A line came: a refusal after that is an error like any other.
    started: bool,
}

impl Engine {
    /// A service's logs, merged across its tasks (`GET /services/{id}/logs` with details, so
    /// that each line names its task), as the engine sends them. A log driver that keeps
    /// nothing readable is an error for which [`is_logs_unreadable`] holds, before any line or
    /// as the stream's first item. Engine 20.10 may leave such a stream open, not followed,
    /// once its tasks' lines are sent, and send only part of them: [`Engine::logs`] reads
    /// task by task instead.
    pub async fn service_logs(
        &self,
        service: &str,
        options: &LogOptions,
    ) -> Result<BoxStream<'static, Result<LogLine, EngineError>>, EngineError> {
        self.log_stream(&format!("/services/{}/logs", encode(service, b"")), options)
            .await
    }

    /// One task's logs (`GET /tasks/{id}/logs`), in the order the task wrote them.
    pub async fn task_logs(
        &self,
        task: &str,
        options: &LogOptions,
    ) -> Result<BoxStream<'static, Result<LogLine, EngineError>>, EngineError> {
        self.log_stream(&format!("/tasks/{}/logs", encode(task, b"")), options)
            .await
    }

    async fn log_stream(
        &self,
        base: &str,
        options: &LogOptions,
    ) -> Result<BoxStream<'static, Result<LogLine, EngineError>>, EngineError> {
        let mut path = format!("{base}?stdout=1&stderr=1&details=1");
        if options.follow {
            path.push_str("&follow=1");
        }
        if options.timestamps {
            path.push_str("&timestamps=1");
        }
        if let Some(since) = options.since {
            path.push_str(&format!(
                "&since={}.{:09}",
                since.as_second(),
                since.subsec_nanosecond()
            ));
        }
        match options.tail {
            Some(tail) => path.push_str(&format!("&tail={tail}")),
            None => path.push_str("&tail=all"),
        }
        let response = tokio::time::timeout(
            SWARM_REQUEST_TIMEOUT,
            self.raw.send(Method::GET, &path, None),
        )
        .await
        .map_err(|_| self.raw.unreachable(format!("no answer to {path}")))??;
        let state = LogState {
            engine: self.clone(),
            body: response.into_body(),
            demux: Demux::new(options.timestamps),
            pending: VecDeque::new(),
            done: false,
        };
        Ok(stream::unfold(state, |mut state| async move {
            state.next().await.map(|item| (item, state))
        })
        .boxed())
    }

    /// The logs of `services` (one, or a stack's), for `swarmkeeper logs` and the dashboard
    /// alike. Each task is read on its own (`GET /tasks/{id}/logs`): only the services' current
    /// tasks ([`current_tasks`]) unless [`LogsRequest::all_tasks`], `tail` lines of each,
    /// each line named after its task ([`task_name`]), the tasks' lines merged by the engine's
    /// time ([`merge`]); followed, tasks that start later join in. A service whose log driver
    /// keeps nothing readable comes as [`LogItem::Unreadable`]. Fails when the engine cannot
    /// list the tasks or refuses a stream for another reason.
    pub async fn logs(
        &self,
        services: &[Service],
        request: &LogsRequest,
    ) -> Result<Logs, EngineError> {
        let mut logs = Logs {
            engine: self.clone(),
            request: request.clone(),
            services: Vec::new(),
            tasks: Vec::new(),
            lines: TaskStreams::default(),
            open: 0,
            hostnames: HashMap::new(),
            hidden: HashSet::new(),
            merge: Merge::new([], Instant::now()),
            queued: VecDeque::new(),
            failure: None,
            ended: false,
            look_again: None,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            timer_at: None,
        };
        for service in services {
            // The engine answers an empty stream for these: only the driver's name tells.
            let verdict = DriverVerdict::of_service(service);
            if let DriverVerdict::Unreadable(driver) = &verdict {
                logs.queued.push_back(LogItem::Unreadable {
                    service: service.name.clone(),
                    message: unreadable_message(&service.name, Some(driver)),
                });
            }
            logs.services.push(ServiceSource {
                id: service.id.clone(),
                name: service.name.clone(),
                unreadable: matches!(verdict, DriverVerdict::Unreadable(_)),
                gone: false,
            });
        }
        let start = Instant::now();
        let opened = logs.open_new_tasks(request.tail).await?;
        logs.merge = Merge::new(opened, start);
        if request.follow {
            logs.look_again = Some(start + NEW_TASKS_EVERY);
        }
        Ok(logs)
    }
}

impl DriverVerdict {
    /// The verdict on a service's log driver (`Spec.TaskTemplate.LogDriver.Name`).
    pub fn of_service(service: &Service) -> DriverVerdict {
        DriverVerdict::of(service.view.log_driver.as_ref().map(|d| d.name.as_str()))
    }
}

impl Logs {
    /// The next lines or report; `None` at the end (a read not followed). An error ends the
    /// read, after the lines that came before it.
    pub async fn next(&mut self) -> Option<Result<LogItem, EngineError>> {
        loop {
            if let Some(item) = self.queued.pop_front() {
                return Some(Ok(item));
            }
            let over = self.ended || (self.open == 0 && !self.request.follow);
            let ready = if over {
                self.merge.drain(MAX_BATCH)
            } else {
                self.merge.release(Instant::now(), MAX_BATCH)
            };
            if !ready.is_empty() {
                return Some(Ok(LogItem::Lines(ready)));
            }
            if over {
                return self.failure.take().map(Err);
            }
            let wake = [self.merge.deadline(), self.look_again]
                .into_iter()
                .flatten()
                .min();
            if let Some(at) = wake.filter(|&at| self.timer_at != Some(at)) {
                // One timer, moved: a new one per wait would cost a registration per line.
                self.timer.as_mut().reset(at.into());
                self.timer_at = Some(at);
            }
            let chunk = match (self.open > 0, wake.is_some()) {
                (true, true) => tokio::select! {
                    chunk = self.lines.ready() => Some(chunk),
                    () = self.timer.as_mut() => None,
                },
                (true, false) => Some(self.lines.ready().await),
                (false, true) => {
                    self.timer.as_mut().await;
                    None
                }
                // Not followed and nothing open is `over`; followed always looks again.
                (false, false) => None,
            };
            // `None`: time to let held lines out, or to look for new tasks.
            if let Some(chunk) = chunk {
                self.take(chunk);
            }
            if self.look_again.is_some_and(|at| Instant::now() >= at) {
                self.look_again = Some(Instant::now() + NEW_TASKS_EVERY);
                if let Err(e) = self.open_new_tasks(None).await {
                    // Lines of the tasks already open go on; the listing is tried again.
                    tracing::warn!(error = %e, "logs: cannot look for new tasks");
                }
            }
        }
    }

    /// The items as a stream.
    pub fn into_stream(self) -> impl futures_util::Stream<Item = Result<LogItem, EngineError>> {
        stream::unfold(self, |mut logs| async move {
            logs.next().await.map(|item| (item, logs))
        })
    }

    /// How many tasks of the services were left out so far (not current, and not asked for
    /// with [`LogsRequest::all_tasks`]).
    pub fn hidden_tasks(&self) -> usize {
        self.hidden.len()
    }

    fn take(&mut self, chunk: Vec<TaskLine>) {
        let now = Instant::now();
        for (index, line) in chunk {
            let task = &mut self.tasks[index];
            let mut line = match line {
                None => {
                    self.open -= 1;
                    self.merge.end(&index);
                    continue;
                }
                Some(Ok(line)) if !task.started && is_unreadable_line(&line) => {
                    let service = task.service;
                    self.unreadable(service);
                    continue;
                }
                Some(Ok(line)) => line,
                Some(Err(e)) if !task.started && is_logs_unreadable(&e) => {
                    let service = task.service;
                    self.unreadable(service);
                    continue;
                }
                Some(Err(e)) => {
                    // The lines read so far go out first; then the error ends the read.
                    self.failure = Some(e);
                    self.ended = true;
                    return;
                }
            };
            task.started = true;
            if line.task_id.is_none() {
                line.task_id = Some(task.id.clone());
            }
            let time = line.timestamp.as_deref().and_then(|t| t.parse().ok());
            let item = NamedLine {
                task: task.name.clone(),
                time,
                line,
            };
            self.merge.push(index, time, item, now);
        }
    }

    fn unreadable(&mut self, service: usize) {
        let source = &mut self.services[service];
        if !source.unreadable {
            source.unreadable = true;
            self.queued.push_back(LogItem::Unreadable {
                service: source.name.clone(),
                message: unreadable_message(&source.name, None),
            });
        }
    }

    /// Lists the services' tasks and opens a stream for each task to show that has none yet
    /// (`tail` lines of it: the request's at first, all of a task that started since).
    /// Returns the indices of the tasks opened.
    async fn open_new_tasks(&mut self, tail: Option<u64>) -> Result<Vec<usize>, EngineError> {
        let read: Vec<usize> = (0..self.services.len())
            .filter(|&i| !self.services[i].unreadable && !self.services[i].gone)
            .collect();
        let listing = futures_util::future::join_all(
            read.iter()
                .map(|&i| self.engine.list_tasks(&self.services[i].id)),
        )
        .await;
        let mut tasks: Vec<Task> = Vec::new();
        for (&i, listed) in read.iter().zip(listing) {
            match listed {
                Ok(listed) => tasks.extend(listed),
                // Removed (while followed): its tasks' streams may stay open regardless.
                Err(e) if e.is_not_found() => self.services[i].gone = true,
                Err(e) => return Err(e),
            }
        }
        if self.services.iter().all(|s| s.gone || s.unreadable) {
            self.ended = true;
        }
        let current = current_tasks(&tasks);
        let known: HashSet<&str> = self.tasks.iter().map(|t| t.id.as_str()).collect();
        let mut new = Vec::new();
        for task in &tasks {
            // A task not yet on a node has written nothing; the next look finds it placed.
            if known.contains(task.id.as_str()) || task.node_id.is_empty() {
                continue;
            }
            if self.request.all_tasks || current.contains(task.id.as_str()) {
                self.hidden.remove(&task.id);
                new.push(task);
            } else {
                self.hidden.insert(task.id.clone());
            }
        }
        if new.is_empty() {
            return Ok(Vec::new());
        }
        if new.iter().any(|t| !self.hostnames.contains_key(&t.node_id)) {
            match self.engine.list_nodes().await {
                Ok(nodes) => self
                    .hostnames
                    .extend(nodes.into_iter().map(|n| (n.id, n.hostname))),
                Err(e) => tracing::debug!(error = %e, "logs: no node names"),
            }
        }
        let options = LogOptions {
            follow: self.request.follow,
            since: self.request.since,
            tail,
            // Always: the merge orders by it, and a resumed stream starts after it.
            timestamps: true,
        };
        let opened = futures_util::future::join_all(
            new.iter()
                .map(|task| self.engine.task_logs(&task.id, &options)),
        )
        .await;
        let mut opened_tasks = Vec::new();
        for (task, opened) in new.into_iter().zip(opened) {
            let service = self
                .services
                .iter()
                .position(|s| s.id == task.service_id)
                .unwrap_or_default();
            let lines = match opened {
                Ok(lines) => lines,
                Err(e) if is_logs_unreadable(&e) => {
                    self.unreadable(service);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let name: Arc<str> =
                task_name(&self.services[service].name, task, &self.hostnames).into();
            let index = self.tasks.len();
            self.tasks.push(TaskSource {
                id: task.id.clone(),
                name: name.clone(),
                service,
                started: false,
            });
            self.lines.push(index, lines);
            self.open += 1;
            opened_tasks.push(index);
        }
        Ok(opened_tasks)
    }
}

/// Reads the engine's answer as lines.
struct LogState {
    engine: Engine,
    body: Incoming,
    demux: Demux,
    pending: VecDeque<LogLine>,
    done: bool,
}

impl LogState {
    async fn next(&mut self) -> Option<Result<LogLine, EngineError>> {
        let mut lines = Vec::new();
        loop {
            if let Some(line) = self.pending.pop_front() {
                return Some(Ok(line));
            }
            if self.done {
                return None;
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.demux.push(&data, &mut lines);
                    }
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(self
                        .engine
                        .raw
                        .unreachable(format!("the log stream broke: {e}"))));
                }
                None => {
                    self.done = true;
                    self.demux.finish(&mut lines);
                }
            }
            self.pending.extend(lines.drain(..));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_logs_are_recognised() {
        let error = EngineError::Api {
            host: "unix:///x".into(),
            status: 500,
            message: LOGS_UNREADABLE.to_string(),
        };
        assert!(is_logs_unreadable(&error));
        assert!(!crate::is_out_of_sequence(&error));
    }
}
