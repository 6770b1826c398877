//! The task page against the host's swarm: a task that keeps failing shows its exit code,
//! error, restarts and last log lines (to an operator; a viewer gets none), and a task no node
//! can take says why it waits (on its page and on the overview); a running task has no exit
//! code.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{wait_for, Call, TempDir, TestApp, TestService};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_shows_its_exit_code_restarts_logs_and_why_it_waits() {
    let app = TestApp::new().await;
    let (v, op) = (&app.viewer, &app.operator);
    let failing = TestService::running(
        "taskfail",
        &["--restart-delay", "1s", "--restart-max-attempts", "5"],
        &["/bin/busybox", "sh", "-c", "echo about to fail; exit 3"],
    );
    // Wait for the slot's third task: two restarts.
    wait_for(
        "three tasks of the failing service",
        Duration::from_secs(90),
        || {
            support::docker(&["service", "ps", "-q", &failing.name])
                .lines()
                .count()
                >= 3
        },
    );
    let newest_failed = shut_down_tasks(&failing.name);
    let id = newest_failed
        .lines()
        .next()
        .expect("a failed task")
        .to_owned();
    let answer = app
        .call(support::Call::get(&format!("/api/tasks/{id}")).bearer(&op.token))
        .await;
    answer.expect(200);
    let task: Value = answer.json();
    assert_eq!(task["exit_code"], 3, "{task}");
    assert!(
        task["error"].as_str().unwrap().contains("exit (3)"),
        "{task}"
    );
    assert_eq!(task["service"], failing.name.as_str());
    assert!(task["history"].as_array().unwrap().len() >= 3, "{task}");
    assert!(
        task["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "about to fail"),
        "{task}"
    );
    assert!(!task["node"].as_str().unwrap().is_empty());
    let as_viewer = app
        .call(support::Call::get(&format!("/api/tasks/{id}")).bearer(&v.token))
        .await
        .json();
    assert!(as_viewer["logs"].as_array().unwrap().is_empty());
    assert!(as_viewer["logs_note"]
        .as_str()
        .unwrap()
        .contains("operator"));
    let page = app
        .call(support::Call::get(&format!("/tasks/{id}")).session(v))
        .await;
    page.expect(200);
    let text = page.text();
    assert!(text.contains("Exit code"), "{text}");
    // Swarm's "task: non-zero exit (3)" is the exit code again: said once, in words.
    assert!(text.contains(r#"<dd id="exit">exit 3</dd>"#), "{text}");
    let facts = text.split("</dl>").next().unwrap();
    assert!(!facts.contains("non-zero exit (3)"), "{facts}");
    assert!(
        facts.contains(r#"<span class="state state-shutdown">"#),
        "{facts}"
    );
    assert_eq!(task["exit"], "exit 3", "{task}");

    // No node qualifies: the task waits and says why.
    let waiting = TestService::create(
        "taskwait",
        &["--constraint", "node.labels.skservertest-nowhere==yes"],
    );
    let mut pending = String::new();
    wait_for("a pending task", Duration::from_secs(30), || {
        pending = support::docker(&["service", "ps", "-q", "--no-trunc", &waiting.name]);
        !pending.trim().is_empty()
    });
    let id = pending.lines().next().unwrap();
    let mut reason = Value::Null;
    wait_for("a pending reason", Duration::from_secs(30), || {
        let task = futures_block(&app, id, &op.token);
        reason = task["pending_reason"].clone();
        // "pending task scheduling" first; the scheduler's verdict a moment later.
        reason
            .as_str()
            .is_some_and(|r| r.contains("no suitable node"))
    });
    // Worded as the overview words it (`rollout::waiting_reason`), state first.
    assert!(
        reason
            .as_str()
            .unwrap()
            .starts_with("pending: no suitable node"),
        "{reason}"
    );
    // Its logs: why it waits, not the engine's gRPC refusal to read them ("rpc error: code =
    // Unknown desc = … has not been scheduled"), and without the frame's header bytes.
    let task = futures_block(&app, id, &op.token);
    assert_eq!(task["logs"], serde_json::json!([]), "{task}");
    let note = task["logs_note"].as_str().unwrap_or_default();
    let reason = task["pending_reason"].as_str().unwrap_or_default();
    assert_eq!(note, format!("no log lines yet: {reason}"), "{task}");
    assert!(!note.contains("rpc error"), "{task}");
    assert!(
        note.chars()
            .all(|c| !c.is_control() && c != char::REPLACEMENT_CHARACTER),
        "{note:?}"
    );
    app.call(support::Call::get("/api/tasks/nosuchtask").bearer(&v.token))
        .await
        .expect_json_error(404);
}

/// The task's JSON, from a synchronous check.
fn futures_block(app: &TestApp, id: &str, token: &str) -> Value {
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(async {
            app.call(support::Call::get(&format!("/api/tasks/{id}")).bearer(token))
                .await
                .json()
        })
    })
}

/// Tryout 7, finding 5: a task the kernel's OOM killer killed reads the same in its slot
/// table as on its Exit code line (`exit 137 (killed: out of memory, limit 16 MiB)`), not
/// Swarm's bare `non-zero exit (137)`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oom_killed_task_reads_the_same_in_its_slot_table() {
    let app = TestApp::new().await;
    let hog = TestService::running(
        "taskoom",
        &["--limit-memory", "16M", "--restart-condition", "none"],
        &[
            "/bin/busybox",
            "dd",
            "if=/dev/zero",
            "of=/dev/null",
            "bs=64M",
            "count=1",
        ],
    );
    let mut id = String::new();
    wait_for("the task to fail", Duration::from_secs(60), || {
        id = shut_down_tasks(&hog.name);
        !id.trim().is_empty()
    });
    let id = id.lines().next().unwrap().to_owned();
    let mut text = String::new();
    wait_for("the exit code", Duration::from_secs(30), || {
        let page = futures_page(&app, &id);
        text = page;
        text.contains(r#"<dd id="exit">"#)
    });
    let oom = "exit 137 (killed: out of memory, limit 16 MiB)";
    assert!(
        text.contains(&format!(r#"<dd id="exit">{oom}</dd>"#)),
        "{text}"
    );
    let table = text.split("<tbody>").last().unwrap();
    assert!(table.contains(oom), "{table}");
    assert!(!table.contains("non-zero exit (137)"), "{table}");
}

/// The task's page, from a synchronous check.
fn futures_page(app: &TestApp, id: &str) -> String {
    let call = support::Call::get(&format!("/tasks/{id}")).session(&app.viewer);
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(async { app.call(call).await.text() })
    })
}

/// The ids of `service`'s tasks Swarm shut down, newest first, one a line.
fn shut_down_tasks(service: &str) -> String {
    support::docker(&[
        "service",
        "ps",
        "-q",
        "--no-trunc",
        "--filter",
        "desired-state=shutdown",
        service,
    ])
}

/// A running task has no exit code (the engine reports `ExitCode: 0` for a running
/// container), and its page's restarts are the JSON twin's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_task_shows_no_exit_code_and_its_restarts() {
    let app = TestApp::new().await;
    let op = &app.operator;
    // The first task fails, the second finds the marker it left and runs: one restart.
    let marks = TempDir::new("marks");
    let mount = format!("type=bind,source={},target=/m", marks.path().display());
    let service = TestService::running(
        "taskonce",
        &["--restart-delay", "1s", "--mount", &mount],
        &[
            "/bin/busybox",
            "sh",
            "-c",
            "if [ -e /m/once ]; then exec /bin/busybox sleep 3600; fi; touch /m/once; exit 1",
        ],
    );
    // The first task runs a moment too: wait for the second one to run.
    let mut id = String::new();
    support::wait_for(
        "the slot's second task running",
        Duration::from_secs(60),
        || {
            let all = support::docker(&["service", "ps", "-q", &service.name]);
            let running: Vec<String> = service
                .tasks("{{.ID}} {{.CurrentState}}")
                .into_iter()
                .filter(|t| t.contains(" Running"))
                .collect();
            match running.first() {
                Some(task) if all.lines().count() >= 2 => {
                    id = task.split(' ').next().unwrap_or_default().to_owned();
                    true
                }
                _ => false,
            }
        },
    );
    let task: Value = app
        .call(Call::get(&format!("/api/tasks/{id}")).bearer(&op.token))
        .await
        .json();
    assert_eq!(task["state"], "running", "{task}");
    assert_eq!(task["exit"], Value::Null, "{task}");
    assert_eq!(task["exit_code"], Value::Null, "{task}");
    assert_eq!(task["restarts"], 1, "{task}");
    let page = app
        .call(Call::get(&format!("/tasks/{id}")).session(op))
        .await;
    page.expect(200);
    let text = page.text();
    assert!(!text.contains("Exit code"), "{text}");
    assert!(
        text.contains(r#"<dd id="restarts">1 in the last"#),
        "{text}"
    );
}

/// A service whose task waits is on the overview with the scheduler's reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_says_why_a_service_waits() {
    let app = TestApp::new().await;
    let waiting = TestService::create(
        "waits",
        &["--constraint", "node.labels.skservertest-nowhere==yes"],
    );
    let mut row = Value::Null;
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        let overview = app
            .call(Call::get("/api/overview").bearer(&app.viewer.token))
            .await
            .json();
        row = overview["attention"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == waiting.name.as_str())
            .cloned()
            .unwrap_or(Value::Null);
        let said = row["pending"].as_array().is_some_and(|p| {
            p.iter()
                .any(|why| why.as_str().unwrap().contains("no suitable node"))
        });
        if said {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let why = row["pending"][0]
        .as_str()
        .unwrap_or_else(|| panic!("no pending reason: {row}"))
        .to_owned();
    assert!(why.starts_with("pending: no suitable node ("), "{row}");
    let page = app.call(Call::get("/").session(&app.viewer)).await.text();
    let attention = page.split(r#"id="attention""#).nth(1).unwrap_or_default();
    assert!(attention.contains(&why), "{attention}");
}
