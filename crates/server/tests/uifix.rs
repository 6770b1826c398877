//! What a new user's tryout of the dashboard found wrong, each fixed and checked against the
//! host's swarm.

mod support;

use serde_json::Value;
use support::{Call, TempDir, TestApp, TestService};

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
    service.wait_running(1);
    let id = service.tasks("{{.ID}}").pop().expect("a running task");
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
