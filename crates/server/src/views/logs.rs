//! A service's logs as the logs page and its stream show them: the query (`tail`, `since`,
//! `grep`, `timestamps`, `follow`), each line's task name (`web.1.<task id>@<node>`, like
//! `docker service logs`), which lines are kept, how a line is written (one JSON object for the
//! event stream, one text line for the download), and what to say when a log driver keeps
//! nothing the engine can read back. Pure: the handlers in `routes/logs.rs` do the I/O.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use swarmkeeper_engine::{LogLine, LogStream, Task, LOGS_UNREADABLE};

/// Lines per task when the query names no `tail`.
pub const DEFAULT_TAIL: u64 = 200;

/// The longest `grep` pattern accepted.
const MAX_PATTERN: usize = 1000;

/// Compiled size a `grep` pattern may reach (the regex crate matches in linear time; this
/// bounds its memory).
const MAX_REGEX_BYTES: usize = 1 << 20;

/// The query of the page and of both API routes, as typed. Every field is text so that a wrong
/// value is named in the answer rather than refused by the extractor.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct LogQuery {
    #[serde(default)]
    pub tail: Option<String>,
    #[serde(default)]
    pub since: Option<String>,
    #[serde(default)]
    pub grep: Option<String>,
    #[serde(default)]
    pub timestamps: Option<String>,
    #[serde(default)]
    pub follow: Option<String>,
}

/// A query that made sense.
#[derive(Clone, Debug)]
pub struct LogRequest {
    /// Lines per task from the end; `None` for all of them.
    pub tail: Option<u64>,
    pub since: Option<Timestamp>,
    pub grep: Option<Regex>,
    pub timestamps: bool,
    pub follow: bool,
}

/// A query field that made no sense: the answer names the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct QueryError {
    pub field: &'static str,
    pub message: String,
}

fn bad(field: &'static str, message: impl Into<String>) -> QueryError {
    QueryError {
        field,
        message: message.into(),
    }
}

/// Reads the query; `now` turns `since=10m` into a time.
pub fn parse_query(query: &LogQuery, now: Timestamp) -> Result<LogRequest, QueryError> {
    Ok(LogRequest {
        tail: parse_tail(query.tail.as_deref())?,
        since: parse_since(query.since.as_deref(), now)?,
        grep: parse_grep(query.grep.as_deref())?,
        timestamps: parse_flag("timestamps", query.timestamps.as_deref(), false)?,
        follow: parse_flag("follow", query.follow.as_deref(), true)?,
    })
}

/// `200` when empty, `all` for everything, else a count of lines per task.
pub fn parse_tail(text: Option<&str>) -> Result<Option<u64>, QueryError> {
    match text.map(str::trim) {
        None | Some("") => Ok(Some(DEFAULT_TAIL)),
        Some(all) if all.eq_ignore_ascii_case("all") => Ok(None),
        Some(n) => n
            .parse::<u64>()
            .map(Some)
            .map_err(|_| bad("tail", format!("{n:?} is not a number of lines (or `all`)"))),
    }
}

/// A time (`2026-01-01T00:00:00Z`) or how long ago (`10m`, `1h30m`), like the CLI's `--since`.
pub fn parse_since(text: Option<&str>, now: Timestamp) -> Result<Option<Timestamp>, QueryError> {
    let text = match text.map(str::trim) {
        None | Some("") => return Ok(None),
        Some(text) => text,
    };
    if let Ok(time) = text.parse::<Timestamp>() {
        return Ok(Some(time));
    }
    let ago = swarmkeeper_gc::parse_duration(text).map_err(|e| {
        bad(
            "since",
            format!("{text:?} is neither a time such as 2026-01-01T00:00:00Z nor {e}"),
        )
    })?;
    let ago = SignedDuration::try_from(ago).map_err(|e| bad("since", e.to_string()))?;
    now.checked_sub(ago)
        .map(Some)
        .map_err(|e| bad("since", format!("{text}: {e}")))
}

/// A regular expression (Rust's `regex` syntax) a line's text must match.
pub fn parse_grep(text: Option<&str>) -> Result<Option<Regex>, QueryError> {
    let pattern = match text {
        None | Some("") => return Ok(None),
        Some(pattern) => pattern,
    };
    if pattern.len() > MAX_PATTERN {
        return Err(bad(
            "grep",
            format!("the pattern may be at most {MAX_PATTERN} bytes"),
        ));
    }
    RegexBuilder::new(pattern)
        .size_limit(MAX_REGEX_BYTES)
        .build()
        .map(Some)
        .map_err(|e| bad("grep", e.to_string()))
}

/// `1`, `true`, `on`, `yes` or `0`, `false`, `off`, `no`; `default` when absent or empty.
pub fn parse_flag(
    field: &'static str,
    text: Option<&str>,
    default: bool,
) -> Result<bool, QueryError> {
    match text.map(|t| t.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") => Ok(default),
        Some("1" | "true" | "on" | "yes") => Ok(true),
        Some("0" | "false" | "off" | "no") => Ok(false),
        Some(other) => Err(bad(field, format!("{other:?} is not true or false"))),
    }
}

/// `web.1.<12 characters of the task id>@<node>` like `docker service logs`; a global
/// service's task carries the node id where a replicated one has its slot.
pub fn task_name(service: &str, task: &Task, hostnames: &HashMap<String, String>) -> String {
    let slot = match task.slot {
        Some(slot) => slot.to_string(),
        None => task.node_id.clone(),
    };
    let node = hostnames
        .get(&task.node_id)
        .map_or(task.node_id.as_str(), String::as_str);
    let mut name = format!("{service}.{slot}.{}", short_id(&task.id));
    if !node.is_empty() {
        name.push('@');
        name.push_str(node);
    }
    name
}

fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Task id → task name, for one service. A line from a task it does not know (a new replica
/// after a scale, a task restarted since the stream began) calls for a [`TaskNames::refresh`]
/// from the engine's task list; one the list does not know either gets
/// [`TaskNames::fallback`], so each unknown id costs at most one refresh that the engine
/// answered.
#[derive(Clone, Debug, Default)]
pub struct TaskNames {
    service: String,
    names: HashMap<String, Arc<str>>,
}

impl TaskNames {
    pub fn new(service: &str) -> TaskNames {
        TaskNames {
            service: service.to_owned(),
            names: HashMap::new(),
        }
    }

    pub fn get(&self, task_id: &str) -> Option<Arc<str>> {
        self.names.get(task_id).cloned()
    }

    /// Adds every task of the engine's list (old ones included).
    pub fn refresh(&mut self, tasks: &[Task], hostnames: &HashMap<String, String>) {
        for task in tasks {
            self.names.insert(
                task.id.clone(),
                task_name(&self.service, task, hostnames).into(),
            );
        }
    }

    /// The name of a task the engine's list did not know: `service.<task id>`; remembered.
    pub fn fallback(&mut self, task_id: &str) -> Arc<str> {
        let name = self.provisional(task_id);
        self.names.entry(task_id.to_owned()).or_insert(name).clone()
    }

    /// `service.<task id>` for now, not remembered: the engine could not be asked, and will
    /// be again.
    pub fn provisional(&self, task_id: &str) -> Arc<str> {
        format!("{}.{}", self.service, short_id(task_id)).into()
    }
}

/// One line as shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shown {
    pub task: Arc<str>,
    pub stderr: bool,
    /// The engine's time of the line (RFC 3339, nanoseconds), when asked for.
    pub time: Option<String>,
    pub text: String,
}

impl Shown {
    pub fn new(line: LogLine, task: Arc<str>, timestamps: bool) -> Shown {
        Shown {
            task,
            stderr: line.stream == LogStream::Stderr,
            time: if timestamps { line.timestamp } else { None },
            text: line.text,
        }
    }
}

/// Which lines pass: those whose text matches `grep`, and, when the stream resumes after a
/// reconnection, only those newer than the last one the client got.
#[derive(Clone, Debug, Default)]
pub struct LineFilter {
    pub grep: Option<Regex>,
    pub after: Option<Timestamp>,
}

impl LineFilter {
    pub fn keeps(&self, line: &LogLine) -> bool {
        if let Some(grep) = &self.grep {
            if !grep.is_match(&line.text) {
                return false;
            }
        }
        match self.after {
            Some(after) => line_time(line).is_none_or(|time| time > after),
            None => true,
        }
    }
}

/// A line's engine timestamp, when it has one that parses.
pub fn line_time(line: &LogLine) -> Option<Timestamp> {
    line.timestamp.as_deref()?.parse().ok()
}

/// The line as one JSON object, `{"task":…,"stream":"stdout"|"stderr","time":…,"text":…}`
/// (`time` only when asked for), appended to `out`. JSON escapes every CR and LF, so the
/// object is one line of an event's data.
pub fn write_json(out: &mut Vec<u8>, line: &Shown) {
    #[derive(Serialize)]
    struct Wire<'a> {
        task: &'a str,
        stream: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        time: Option<&'a str>,
        text: &'a str,
    }
    let wire = Wire {
        task: &line.task,
        stream: if line.stderr { "stderr" } else { "stdout" },
        time: line.time.as_deref(),
        text: &line.text,
    };
    // Writing to a Vec cannot fail, nor can serialising strings.
    let _ = serde_json::to_writer(&mut *out, &wire);
}

/// `[TIME ]TASK | TEXT\n`, as `swarmkeeper logs` prints it; appended to `out`.
pub fn write_text(out: &mut Vec<u8>, line: &Shown) {
    if let Some(time) = &line.time {
        out.extend_from_slice(time.as_bytes());
        out.push(b' ');
    }
    let _ = write!(out, "{} | ", line.task);
    out.extend_from_slice(line.text.as_bytes());
    out.push(b'\n');
}

/// What a service's log driver means for reading its logs back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DriverVerdict {
    /// `local`, `json-file`, `journald`, or none named (the daemon's default: the engine will
    /// say if that cannot be read).
    Readable,
    /// The engine keeps nothing: `none`.
    Unreadable(String),
    /// Another driver (`syslog`, `gelf`, `fluentd`, …): readable only through the engine's
    /// local cache ("dual logging", on by default since Engine 20.10 unless a node's daemon
    /// sets `cache-disabled`).
    Cached(String),
}

/// Drivers the engine reads back itself.
const READABLE_DRIVERS: &[&str] = &["local", "json-file", "journald"];

pub fn driver_verdict(spec: &Value) -> DriverVerdict {
    match spec
        .pointer("/TaskTemplate/LogDriver/Name")
        .and_then(Value::as_str)
        .unwrap_or_default()
    {
        "" => DriverVerdict::Readable,
        "none" => DriverVerdict::Unreadable("none".to_owned()),
        name if READABLE_DRIVERS.contains(&name) => DriverVerdict::Readable,
        name => DriverVerdict::Cached(name.to_owned()),
    }
}

/// The fix, in the words of lint rule SK001.
const FIX: &str = "set `logging: {driver: local, options: {max-size: 10m}}` in the stack file and \
                   redeploy (swarmkeeper deploy does this by default)";

/// Why a service's logs cannot be shown and what to change; `driver` when its name is known.
pub fn unreadable_message(service: &str, driver: Option<&str>) -> String {
    let cause = match driver {
        Some(driver) => {
            format!("its log driver is `{driver}`, which keeps nothing the engine can read back")
        }
        None => format!("the engine says: {LOGS_UNREADABLE}"),
    };
    format!("The logs of {service} cannot be read: {cause}. Fix: {FIX}.")
}

/// The note for a driver read through the engine's cache.
pub fn cached_note(driver: &str) -> String {
    format!(
        "Log driver `{driver}`: the engine shows these lines from its local cache (dual logging), \
         which a node's daemon may disable with `cache-disabled`; if no line appears, {FIX}."
    )
}

/// Whether a line is the engine's own report that it cannot read the logs (an error frame
/// inside the stream, which carries no task id).
pub fn is_unreadable_line(line: &LogLine) -> bool {
    line.task_id.is_none() && line.text.contains(LOGS_UNREADABLE)
}

/// The download's file name: the service's name with anything but `[A-Za-z0-9._-]` replaced,
/// so that it is safe inside the quoted `Content-Disposition` parameter.
pub fn download_filename(service: &str) -> String {
    let safe: String = service
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}-logs.txt")
}

/// The query string of the API routes for a request, from the page's form values.
pub fn api_query(query: &LogQuery) -> String {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    let fields = [
        ("tail", &query.tail),
        ("since", &query.since),
        ("grep", &query.grep),
        ("timestamps", &query.timestamps),
    ];
    for (key, value) in fields {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            pairs.push((key, value));
        }
    }
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task(id: &str, slot: Option<u64>, node: &str) -> Task {
        Task {
            id: id.into(),
            service_id: "svc".into(),
            slot,
            node_id: node.into(),
            desired_state: "running".into(),
            state: "running".into(),
            message: String::new(),
            err: String::new(),
            timestamp: None,
            exit_code: None,
            container_id: None,
            created_at: None,
            spec: json!({}),
        }
    }

    fn line(task: Option<&str>, time: Option<&str>, text: &str) -> LogLine {
        LogLine {
            stream: LogStream::Stdout,
            timestamp: time.map(str::to_owned),
            task_id: task.map(str::to_owned),
            text: text.into(),
        }
    }

    fn now() -> Timestamp {
        "2026-01-02T00:00:00Z".parse().unwrap()
    }

    fn query(pairs: &str) -> LogQuery {
        serde_urlencoded::from_str(pairs).unwrap()
    }

    #[test]
    fn task_names_read_like_docker_service_logs() {
        let hosts = HashMap::from([("n1".to_owned(), "vm1".to_owned())]);
        let replicated = task("abcdefghijklmnopqrstuvwxy", Some(2), "n1");
        assert_eq!(
            task_name("web", &replicated, &hosts),
            "web.2.abcdefghijkl@vm1"
        );
        let global = task("0123456789abcdef", None, "n1");
        assert_eq!(
            task_name("agent", &global, &hosts),
            "agent.n1.0123456789ab@vm1"
        );
        let elsewhere = task("short", Some(1), "n9");
        assert_eq!(task_name("web", &elsewhere, &hosts), "web.1.short@n9");
    }

    #[test]
    fn unknown_tasks_are_learnt_from_a_refresh_or_named_from_their_id() {
        let mut names = TaskNames::new("web");
        assert_eq!(names.get("t1"), None);
        names.refresh(&[task("t1", Some(1), "n1")], &HashMap::new());
        assert_eq!(names.get("t1").as_deref(), Some("web.1.t1@n1"));
        // A new replica after scaling appears with the next refresh.
        names.refresh(
            &[task("t1", Some(1), "n1"), task("t2", Some(2), "n1")],
            &HashMap::new(),
        );
        assert_eq!(names.get("t2").as_deref(), Some("web.2.t2@n1"));
        assert_eq!(&*names.provisional("yyyyyyyyyyyyyyyy"), "web.yyyyyyyyyyyy");
        assert!(
            names.get("yyyyyyyyyyyyyyyy").is_none(),
            "a provisional name is not kept"
        );
        assert_eq!(&*names.fallback("zzzzzzzzzzzzzzzz"), "web.zzzzzzzzzzzz");
        assert!(
            names.get("zzzzzzzzzzzzzzzz").is_some(),
            "a fallback is remembered"
        );
    }

    #[test]
    fn the_query_has_defaults() {
        let request = parse_query(&LogQuery::default(), now()).unwrap();
        assert_eq!(request.tail, Some(DEFAULT_TAIL));
        assert_eq!(request.since, None);
        assert!(request.grep.is_none());
        assert!(!request.timestamps);
        assert!(request.follow);
        let empty = parse_query(&query("tail=&since=&grep=&timestamps="), now()).unwrap();
        assert_eq!(empty.tail, Some(DEFAULT_TAIL));
    }

    #[test]
    fn tail_is_a_count_or_all() {
        assert_eq!(parse_tail(Some("15")).unwrap(), Some(15));
        assert_eq!(parse_tail(Some("ALL")).unwrap(), None);
        let e = parse_tail(Some("-3")).unwrap_err();
        assert_eq!(e.field, "tail");
        assert!(e.to_string().starts_with("tail: "), "{e}");
    }

    #[test]
    fn since_is_a_time_or_a_duration_ago() {
        assert_eq!(
            parse_since(Some("10m"), now()).unwrap(),
            Some("2026-01-01T23:50:00Z".parse().unwrap())
        );
        assert_eq!(
            parse_since(Some("2025-12-31T12:00:00Z"), now()).unwrap(),
            Some("2025-12-31T12:00:00Z".parse().unwrap())
        );
        let e = parse_since(Some("yesterday"), now()).unwrap_err();
        assert_eq!(e.field, "since");
        assert!(e.message.contains("90s"), "{e}");
    }

    #[test]
    fn grep_is_compiled_and_a_bad_one_is_named() {
        let request = parse_query(&query("grep=line%20%5B0-9%5D%2B%24"), now()).unwrap();
        assert!(request.grep.unwrap().is_match("line 42"));
        let e = parse_query(&query("grep=%28unclosed"), now()).unwrap_err();
        assert_eq!(e.field, "grep");
        let long = "a".repeat(MAX_PATTERN + 1);
        assert_eq!(parse_grep(Some(&long)).unwrap_err().field, "grep");
    }

    #[test]
    fn flags_take_the_usual_spellings() {
        assert!(parse_flag("timestamps", Some("on"), false).unwrap());
        assert!(parse_flag("timestamps", Some("1"), false).unwrap());
        assert!(!parse_flag("follow", Some("false"), true).unwrap());
        assert_eq!(
            parse_flag("follow", Some("maybe"), true).unwrap_err().field,
            "follow"
        );
    }

    #[test]
    fn the_filter_greps_the_text_and_skips_what_the_client_has() {
        let filter = LineFilter {
            grep: parse_grep(Some("^line [0-9]*5$")).unwrap(),
            after: None,
        };
        assert!(filter.keeps(&line(Some("t"), None, "line 15")));
        assert!(!filter.keeps(&line(Some("t"), None, "line 16")));
        // The task name is not part of what grep sees.
        assert!(!filter.keeps(&line(Some("line 5"), None, "other")));
        let resumed = LineFilter {
            grep: None,
            after: Some("2026-01-01T00:00:01.5Z".parse().unwrap()),
        };
        assert!(!resumed.keeps(&line(None, Some("2026-01-01T00:00:01.500000000Z"), "seen")));
        assert!(resumed.keeps(&line(None, Some("2026-01-01T00:00:01.500000001Z"), "new")));
        assert!(resumed.keeps(&line(None, None, "no time")));
    }

    #[test]
    fn lines_are_written_as_json_and_as_text() {
        let mut stderr = line(
            Some("t1"),
            Some("2026-01-01T00:00:00.000000001Z"),
            "a \"quoted\"\r line",
        );
        stderr.stream = LogStream::Stderr;
        let shown = Shown::new(stderr.clone(), "web.1.t1@vm".into(), true);
        let mut json = Vec::new();
        write_json(&mut json, &shown);
        let text = String::from_utf8(json).unwrap();
        assert!(!text.contains('\n') && !text.contains('\r'), "{text}");
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value,
            json!({"task": "web.1.t1@vm", "stream": "stderr", "time": "2026-01-01T00:00:00.000000001Z", "text": "a \"quoted\"\r line"})
        );
        let untimed = Shown::new(
            line(Some("t1"), Some("2026-01-01T00:00:00Z"), "hello"),
            "web.1.t1@vm".into(),
            false,
        );
        let mut json = Vec::new();
        write_json(&mut json, &untimed);
        assert_eq!(
            String::from_utf8(json).unwrap(),
            r#"{"task":"web.1.t1@vm","stream":"stdout","text":"hello"}"#
        );
        let mut out = Vec::new();
        write_text(&mut out, &shown);
        write_text(&mut out, &untimed);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2026-01-01T00:00:00.000000001Z web.1.t1@vm | a \"quoted\"\r line\nweb.1.t1@vm | hello\n"
        );
    }

    #[test]
    fn drivers_that_keep_nothing_are_named_with_the_fix() {
        let spec = |driver: &str| json!({"TaskTemplate": {"LogDriver": {"Name": driver}}});
        assert_eq!(driver_verdict(&json!({})), DriverVerdict::Readable);
        assert_eq!(driver_verdict(&spec("local")), DriverVerdict::Readable);
        assert_eq!(driver_verdict(&spec("json-file")), DriverVerdict::Readable);
        assert_eq!(
            driver_verdict(&spec("none")),
            DriverVerdict::Unreadable("none".into())
        );
        assert_eq!(
            driver_verdict(&spec("syslog")),
            DriverVerdict::Cached("syslog".into())
        );
        let message = unreadable_message("shop_web", Some("none"));
        assert!(
            message.contains("shop_web") && message.contains("`none`"),
            "{message}"
        );
        assert!(message.contains("logging: {driver: local"), "{message}");
        assert!(unreadable_message("web", None).contains(LOGS_UNREADABLE));
        assert!(cached_note("syslog").contains("driver: local"));
    }

    #[test]
    fn the_engines_own_refusal_inside_the_stream_is_recognised() {
        let refusal = line(
            None,
            None,
            &format!("Error grabbing logs: {LOGS_UNREADABLE}"),
        );
        assert!(is_unreadable_line(&refusal));
        assert!(!is_unreadable_line(&line(
            Some("t1"),
            None,
            LOGS_UNREADABLE
        )));
    }

    #[test]
    fn download_names_are_safe() {
        assert_eq!(download_filename("shop_web"), "shop_web-logs.txt");
        assert_eq!(download_filename("a\"b/c"), "a_b_c-logs.txt");
    }

    #[test]
    fn the_api_query_keeps_what_was_given() {
        let q = query("tail=50&since=&grep=a%26b&timestamps=on");
        assert_eq!(api_query(&q), "tail=50&grep=a%26b&timestamps=on");
        assert_eq!(api_query(&LogQuery::default()), "");
    }
}
