//! A service's logs as the logs page and its stream show them: the query (`tail`, `since`,
//! `grep`, `timestamps`, `follow`, `all_tasks`), which lines are kept, and how a line is
//! written (one JSON object for the event stream, one text line for the download). Which
//! tasks, their names, their order and what a log driver allows are the engine's one log path
//! (`swarmkeeper_engine::logs`), shared with `swarmkeeper logs`. Pure: the handlers in
//! `routes/logs.rs` do the I/O.

use std::io::Write;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use swarmkeeper_engine::logs::NamedLine;
use swarmkeeper_engine::LogStream;

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
    #[serde(default)]
    pub all_tasks: Option<String>,
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
    /// Every task Swarm lists, not only the current ones.
    pub all_tasks: bool,
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
        all_tasks: parse_flag("all_tasks", query.all_tasks.as_deref(), false)?,
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
    let ago = swarmkeeper_units::parse_duration(text).map_err(|e| {
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
    pub fn new(named: NamedLine, timestamps: bool) -> Shown {
        let line = named.line;
        Shown {
            task: named.task,
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
    pub fn keeps(&self, line: &NamedLine) -> bool {
        if let Some(grep) = &self.grep {
            if !grep.is_match(&line.line.text) {
                return false;
            }
        }
        match self.after {
            Some(after) => line.time.is_none_or(|time| time > after),
            None => true,
        }
    }
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
        ("all_tasks", &query.all_tasks),
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
    use serde_json::{json, Value};
    use swarmkeeper_engine::LogLine;

    fn line(task: &str, time: Option<&str>, text: &str) -> NamedLine {
        NamedLine {
            task: task.into(),
            time: time.map(|t| t.parse().unwrap()),
            line: LogLine {
                stream: LogStream::Stdout,
                timestamp: time.map(str::to_owned),
                task_id: Some("t1".into()),
                text: text.into(),
            },
        }
    }

    fn now() -> Timestamp {
        "2026-01-02T00:00:00Z".parse().unwrap()
    }

    fn query(pairs: &str) -> LogQuery {
        serde_urlencoded::from_str(pairs).unwrap()
    }

    #[test]
    fn the_query_has_defaults() {
        let request = parse_query(&LogQuery::default(), now()).unwrap();
        assert_eq!(request.tail, Some(DEFAULT_TAIL));
        assert_eq!(request.since, None);
        assert!(request.grep.is_none());
        assert!(!request.timestamps);
        assert!(request.follow);
        assert!(!request.all_tasks);
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
        assert!(filter.keeps(&line("t", None, "line 15")));
        assert!(!filter.keeps(&line("t", None, "line 16")));
        // The task name is not part of what grep sees.
        assert!(!filter.keeps(&line("line 5", None, "other")));
        let resumed = LineFilter {
            grep: None,
            after: Some("2026-01-01T00:00:01.5Z".parse().unwrap()),
        };
        assert!(!resumed.keeps(&line("t", Some("2026-01-01T00:00:01.500000000Z"), "seen")));
        assert!(resumed.keeps(&line("t", Some("2026-01-01T00:00:01.500000001Z"), "new")));
        assert!(resumed.keeps(&line("t", None, "no time")));
    }

    #[test]
    fn lines_are_written_as_json_and_as_text() {
        let mut stderr = line(
            "web.1.t1@vm",
            Some("2026-01-01T00:00:00.000000001Z"),
            "a \"quoted\"\r line",
        );
        stderr.line.stream = LogStream::Stderr;
        let shown = Shown::new(stderr.clone(), true);
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
            line("web.1.t1@vm", Some("2026-01-01T00:00:00Z"), "hello"),
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
    fn download_names_are_safe() {
        assert_eq!(download_filename("shop_web"), "shop_web-logs.txt");
        assert_eq!(download_filename("a\"b/c"), "a_b_c-logs.txt");
    }

    #[test]
    fn the_api_query_keeps_what_was_given() {
        let q = query("tail=50&since=&grep=a%26b&timestamps=on&all_tasks=on");
        assert_eq!(
            api_query(&q),
            "tail=50&grep=a%26b&timestamps=on&all_tasks=on"
        );
        assert_eq!(api_query(&LogQuery::default()), "");
    }
}
