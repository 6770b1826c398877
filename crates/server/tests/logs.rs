//! The logs routes against the real single-node swarm: uniquely named services that print
//! numbered lines, read through the app as a browser or a script would (bearer tokens), and
//! removed when the test ends, passed or not. The tests take turns (one lock): one of them
//! counts this process's open sockets to see the engine's stream closed.

mod support;

use std::time::{Duration, Instant};

use axum::http::{header, StatusCode};
use http_body_util::BodyExt;
use jiff::Timestamp;
use regex::Regex;
use serde_json::Value;
use support::{docker, Call, TestApp, TestService};

static TURNS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Prints `line N` ten times a second, and `oops N` on stderr every tenth line.
const NUMBERED: &str =
    "i=0; while true; do echo line $i; if [ $((i % 10)) -eq 0 ]; then echo oops $i >&2; fi; i=$((i+1)); sleep 0.1; done";

/// A service printing [`NUMBERED`] with the log driver `driver`.
fn numbered(what: &str, driver: &str) -> TestService {
    TestService::running(
        what,
        &["--log-driver", driver, "--stop-grace-period", "1s"],
        &["/bin/busybox", "sh", "-c", NUMBERED],
    )
}

/// A GET with the operator's (or another) API token, its body unread.
async fn get(
    app: &TestApp,
    token: &str,
    uri: &str,
    headers: &[(&str, &str)],
) -> axum::response::Response {
    let mut call = Call::get(uri).bearer(token);
    for (name, value) in headers {
        call = call.header(name, value);
    }
    app.open(call).await
}

async fn body_text(response: axum::response::Response) -> String {
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

/// One server-sent event.
#[derive(Debug, Default, Clone)]
struct Sse {
    event: String,
    id: Option<String>,
    data: Vec<String>,
}

impl Sse {
    /// The log lines of a `lines` event.
    fn lines(&self) -> Vec<Value> {
        assert_eq!(self.event, "lines");
        self.data
            .iter()
            .map(|d| serde_json::from_str(d).unwrap())
            .collect()
    }
}

/// Reads an event stream until `until` says stop (given what came so far), the stream ends, or
/// `limit` passes. Returns the events and whether the stream ended.
async fn read_events(
    response: axum::response::Response,
    limit: Duration,
    until: impl Fn(&[Sse]) -> bool,
) -> (Vec<Sse>, bool) {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut body = response.into_body();
    let deadline = tokio::time::Instant::now() + limit;
    let mut text = String::new();
    let mut events = Vec::new();
    let mut ended = false;
    while !until(&events) {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => break,
            Ok(None) => {
                ended = true;
                break;
            }
            Ok(Some(frame)) => frame.unwrap(),
        };
        if let Ok(data) = frame.into_data() {
            text.push_str(std::str::from_utf8(&data).unwrap());
        }
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let mut event = Sse::default();
            let mut comment = true;
            for line in block.lines() {
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "" => continue,
                    "event" => event.event = value.to_owned(),
                    "id" => event.id = Some(value.to_owned()),
                    "data" => event.data.push(value.to_owned()),
                    other => panic!("unexpected field {other:?} in {block:?}"),
                }
                comment = false;
            }
            if !comment {
                events.push(event);
            }
        }
    }
    (events, ended)
}

fn all_lines(events: &[Sse]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e.event == "lines")
        .flat_map(Sse::lines)
        .collect()
}

/// Open sockets of this process.
fn sockets() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count()
}

#[tokio::test]
async fn logs_stream_merged_named_filtered_resumed_and_downloaded() {
    let _turn = TURNS.lock().await;
    let service = numbered("web", "local");
    let name = service.name.clone();
    service.wait_running(1);
    let app = TestApp::new().await;
    let op = app.operator.token.clone();
    let api = format!("/api/services/{name}/logs");
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Live, with timestamps: every line names its task like `docker service logs`.
    let response = get(&app, &op, &format!("{api}?tail=all&timestamps=1"), &[]).await;
    let (events, ended) = read_events(response, Duration::from_secs(3), |_| false).await;
    assert!(!ended, "a followed stream stays open");
    let lines = all_lines(&events);
    assert!(
        lines.len() >= 20,
        "{} lines in 3 s: {events:?}",
        lines.len()
    );
    let task = Regex::new(&format!(
        r"^{}\.1\.[a-z0-9]{{12}}@.+$",
        regex::escape(&name)
    ))
    .unwrap();
    for line in &lines {
        assert!(task.is_match(line["task"].as_str().unwrap()), "{line}");
        assert!(
            line["time"].as_str().unwrap().parse::<Timestamp>().is_ok(),
            "{line}"
        );
    }
    let texts: Vec<&str> = lines.iter().map(|l| l["text"].as_str().unwrap()).collect();
    let numbers: Vec<u64> = texts
        .iter()
        .filter_map(|t| t.strip_prefix("line ")?.parse().ok())
        .collect();
    assert_eq!(numbers[0], 0, "tail=all starts at the first line");
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "no line lost or repeated: {numbers:?}"
    );
    assert!(lines
        .iter()
        .any(|l| l["stream"] == "stderr" && l["text"].as_str().unwrap().starts_with("oops ")));
    assert!(lines
        .iter()
        .all(|l| (l["stream"] == "stderr") == l["text"].as_str().unwrap().starts_with("oops")));
    assert!(events
        .iter()
        .all(|e| e.id.as_deref().unwrap().parse::<Timestamp>().is_ok()));

    // Without timestamps the lines carry none; `tail` counts lines from the end.
    let response = get(&app, &op, &format!("{api}?tail=3&follow=false"), &[]).await;
    let (events, ended) = read_events(response, Duration::from_secs(10), |_| false).await;
    assert!(ended, "follow=false ends the stream");
    assert_eq!(events.last().unwrap().event, "end");
    let lines = all_lines(&events);
    assert_eq!(lines.len(), 3, "{events:?}");
    assert!(lines.iter().all(|l| l.get("time").is_none()));

    // The filter runs on the server.
    let response = get(
        &app,
        &op,
        &format!("{api}?tail=all&follow=0&grep=%5Eline%20%5B0-9%5D*7%24"),
        &[],
    )
    .await;
    let (events, ended) = read_events(response, Duration::from_secs(10), |_| false).await;
    assert!(ended);
    let lines = all_lines(&events);
    assert!(lines.len() >= 2, "{events:?}");
    assert!(lines.iter().all(|l| {
        let text = l["text"].as_str().unwrap();
        text.starts_with("line ") && text.ends_with('7')
    }));

    // A reconnecting EventSource resumes after the last line it had.
    let response = get(
        &app,
        &op,
        &format!("{api}?tail=all&follow=0&timestamps=1"),
        &[],
    )
    .await;
    let (events, _) = read_events(response, Duration::from_secs(10), |_| false).await;
    let before = all_lines(&events);
    let cut = &before[before.len() / 2];
    let after_time: Timestamp = cut["time"].as_str().unwrap().parse().unwrap();
    let response = get(
        &app,
        &op,
        &format!("{api}?tail=5&follow=0&timestamps=1"),
        &[("last-event-id", &after_time.to_string())],
    )
    .await;
    let (events, _) = read_events(response, Duration::from_secs(10), |_| false).await;
    let resumed = all_lines(&events);
    assert!(
        resumed.len() >= before.len() - before.len() / 2 - 1,
        "the tail is not applied when resuming"
    );
    assert!(resumed
        .iter()
        .all(|l| l["time"].as_str().unwrap().parse::<Timestamp>().unwrap() > after_time));
    // The first line after the cut in the engine's order whose time is later (stdout and
    // stderr lines written together may be out of time order).
    let next = before[before.len() / 2 + 1..]
        .iter()
        .find(|l| l["time"].as_str().unwrap().parse::<Timestamp>().unwrap() > after_time)
        .unwrap();
    assert_eq!(resumed[0]["text"], next["text"]);

    // The download: plain text, an attachment, the same lines.
    let response = get(
        &app,
        &op,
        &format!("{api}/download?tail=all&timestamps=1"),
        &[],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/plain; charset=utf-8"
    );
    assert_eq!(
        response.headers()[header::CONTENT_DISPOSITION],
        format!("attachment; filename=\"{name}-logs.txt\"").as_str()
    );
    let text = body_text(response).await;
    let mut messages = Vec::new();
    for line in text.lines() {
        let (time, rest) = line.split_once(' ').unwrap();
        assert!(time.parse::<Timestamp>().is_ok(), "{line}");
        let (task_name, message) = rest.split_once(" | ").unwrap();
        assert!(task.is_match(task_name), "{line}");
        messages.push(message);
    }
    // stdout and stderr are two pipes: `oops 0` may come before `line 0`.
    assert!(messages[..2].contains(&"line 0"), "{messages:?}");
    assert!(messages.len() >= before.len());

    // A new replica after scaling is named from a refreshed task list.
    let response = get(&app, &op, &format!("{api}?tail=0"), &[]).await;
    docker(&["service", "scale", "--detach", &format!("{name}=2")]);
    let second = Regex::new(&format!(
        r"^{}\.2\.[a-z0-9]{{12}}@.+$",
        regex::escape(&name)
    ))
    .unwrap();
    let from_second = |events: &[Sse]| {
        all_lines(events)
            .iter()
            .any(|l| second.is_match(l["task"].as_str().unwrap()))
    };
    let (events, _) = read_events(response, Duration::from_secs(60), from_second).await;
    if !from_second(&events) {
        let mut tasks: Vec<String> = all_lines(&events)
            .iter()
            .map(|l| l["task"].as_str().unwrap().to_owned())
            .collect();
        tasks.dedup();
        let ps = docker(&["service", "ps", "--no-trunc", &name]);
        panic!("no line named after the second replica; lines came from {tasks:?}; tasks:\n{ps}");
    }

    // A client that goes away closes the engine's stream with it. (The connections of the
    // streams above close on this runtime's thread: let them.)
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let baseline = sockets();
    let response = get(&app, &op, &format!("{api}?tail=0"), &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let frame = tokio::time::timeout(Duration::from_secs(10), body.frame()).await;
    assert!(matches!(frame, Ok(Some(Ok(_)))), "a line within 10 s");
    assert!(
        sockets() > baseline,
        "the stream holds a connection to the engine"
    );
    drop(body);
    let deadline = Instant::now() + Duration::from_secs(5);
    while sockets() > baseline && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        sockets(),
        baseline,
        "the engine connection closed with the client"
    );
}

#[tokio::test]
async fn a_driver_that_keeps_nothing_is_explained_with_the_fix() {
    let _turn = TURNS.lock().await;
    let service = numbered("quiet", "none");
    let name = service.name.clone();
    service.wait_running(1);
    let app = TestApp::new().await;
    let op = app.operator.token.clone();

    let response = get(&app, &op, &format!("/api/services/{name}/logs"), &[]).await;
    let (events, ended) = read_events(response, Duration::from_secs(10), |_| false).await;
    assert!(ended, "the stream closes after saying why");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].event, "unreadable");
    let message = events[0].data.join("\n");
    assert!(
        message.contains(&name) && message.contains("`none`"),
        "{message}"
    );
    assert!(message.contains("logging: {driver: local"), "{message}");

    let page = get(&app, &op, &format!("/logs/{name}"), &[]).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = body_text(page).await;
    assert!(
        html.contains("cannot be read") && html.contains("driver: local"),
        "{html}"
    );
    assert!(html.contains(r#"data-start="no""#), "{html}");

    let download = get(
        &app,
        &op,
        &format!("/api/services/{name}/logs/download"),
        &[],
    )
    .await;
    assert_eq!(download.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn the_page_carries_the_controls_and_escapes_what_was_typed() {
    let _turn = TURNS.lock().await;
    let service = numbered("page", "json-file");
    let name = service.name.clone();
    let app = TestApp::new().await;
    let op = app.operator.token.clone();

    let page = get(
        &app,
        &op,
        &format!("/logs/{name}?tail=50&grep=%22%3E%3Cscript%3Ealert(1)%3C/script%3E&timestamps=on"),
        &[],
    )
    .await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = body_text(page).await;
    assert!(
        html.contains(&format!(r#"data-api="/api/services/{name}/logs""#)),
        "{html}"
    );
    assert!(html.contains(r#"<script src="/static/logs.js" defer></script>"#));
    assert!(
        html.contains(r#"value="50""#) && html.contains("checked"),
        "{html}"
    );
    assert!(!html.contains("<script>alert"), "typed text is escaped");
    assert!(
        html.contains(&format!("/api/services/{name}/logs/download?tail=50")),
        "{html}"
    );
    assert!(
        html.contains("grep=%22%3E%3Cscript%3E"),
        "the download link carries the filter: {html}"
    );
    assert!(html.contains(r#"data-start="yes""#));

    // A query that makes no sense is named: 400 for the API, a message on the page.
    let bad = get(
        &app,
        &op,
        &format!("/api/services/{name}/logs?grep=(unclosed"),
        &[],
    )
    .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let body: Value = serde_json::from_str(&body_text(bad).await).unwrap();
    assert!(
        body["error"].as_str().unwrap().starts_with("grep: "),
        "{body}"
    );
    let bad = get(
        &app,
        &op,
        &format!("/api/services/{name}/logs/download?since=yesterday"),
        &[],
    )
    .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let page = get(&app, &op, &format!("/logs/{name}?tail=lots"), &[]).await;
    let html = body_text(page).await;
    assert!(
        html.contains("tail: ") && html.contains(r#"data-start="no""#),
        "{html}"
    );

    let missing = get(
        &app,
        &op,
        &format!("/api/services/{}/logs", support::unique("nothere")),
        &[],
    )
    .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn viewers_may_not_read_logs() {
    let _turn = TURNS.lock().await;
    let app = TestApp::new().await;
    for uri in [
        "/api/services/any/logs",
        "/api/services/any/logs/download",
        "/logs/any",
    ] {
        let response = get(&app, &app.viewer.token, uri, &[]).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{uri}");
    }
    let anonymous = app.open(Call::get("/api/services/any/logs")).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}
