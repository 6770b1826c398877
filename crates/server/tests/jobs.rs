//! A dashboard change followed live: the form's post answers 303 to the job's page at once,
//! the deploy engine's lines reach the job's event stream while the deploy runs, the job
//! ends with the outcome and links to the history, and the history and audit log record
//! the edit as the JSON API's would. Any logged-in user may read a job; anonymous callers
//! may not, and an unknown job is 404.

mod support;

use std::time::Duration;

use axum::http::{header, StatusCode};
use http_body_util::BodyExt;
use support::{remove_history, Call, TestApp, TestService};
use swarmkeeper_deploy::History;

/// A stack's deploy history, removed when dropped.
struct HistoryOf(String);

impl Drop for HistoryOf {
    fn drop(&mut self) {
        remove_history(&self.0);
    }
}

#[tokio::test]
async fn a_form_edit_runs_as_a_job_followed_live_and_readable_by_viewers_only_logged_in() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let service = TestService::running(
        "jobedit",
        &[
            "--update-monitor",
            "10s",
            "--restart-delay",
            "1s",
            "--stop-grace-period",
            "1s",
        ],
        &["/bin/busybox", "sleep", "3600"],
    );
    let name = service.name.clone();
    // The edit's revision in the swarm goes whatever happens.
    let _history = HistoryOf(name.clone());
    service.wait_running(1);

    // The form's apply: a 303 to the job's page, while the deploy still runs.
    let posted = app
        .call(
            Call::post(&format!("/services/{name}/edit"))
                .session(op)
                .form(&[
                    ("name", &name),
                    // Fails after a few seconds: the lines before it come while the job runs.
                    ("command", "/bin/busybox sh -c 'sleep 4; exit 1'"),
                    ("update_failure_action", "rollback"),
                    ("confirm", "yes"),
                ]),
        )
        .await;
    posted.expect(303);
    let page = posted.location().to_owned();
    let id = page
        .strip_prefix("/jobs/")
        .unwrap_or_else(|| panic!("not a job's page: {page}"))
        .to_owned();
    let job = app.state.jobs.get(&id).expect("the job is kept");
    assert_eq!(job.user, op.name);

    // Readers: anonymous callers get nothing, a viewer reads it.
    app.call(Call::get(&format!("/api/jobs/{id}")))
        .await
        .expect(401);
    let anonymous = app.open(Call::get(&format!("/api/jobs/{id}/events"))).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let read = app
        .call(Call::get(&format!("/api/jobs/{id}")).bearer(&app.viewer.token))
        .await;
    read.expect(200);
    assert_eq!(read.json()["running"], true, "{}", read.json());
    app.call(Call::get("/api/jobs/0-0").bearer(&app.viewer.token))
        .await
        .expect(404);

    // The event stream: lines while the job runs, then its end, then the stream closes.
    let stream = app
        .open(Call::get(&format!("/api/jobs/{id}/events")).bearer(&app.viewer.token))
        .await;
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(stream.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = stream.into_body();
    let mut text = String::new();
    let mut lines_while_running = false;
    let read_all = async {
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame.unwrap().into_data() else {
                continue;
            };
            let chunk = String::from_utf8(data.to_vec()).unwrap();
            if chunk.contains(&format!("data: {name}: ")) && job.seen(0).end.is_none() {
                lines_while_running = true;
            }
            text.push_str(&chunk);
        }
    };
    tokio::time::timeout(Duration::from_secs(180), read_all)
        .await
        .expect("the job ends within 3 minutes");
    assert!(
        lines_while_running,
        "no deploy line came before the end:\n{text}"
    );
    let end = text
        .split("event: end\ndata: ")
        .nth(1)
        .unwrap_or_else(|| panic!("no end event:\n{text}"));
    let end: serde_json::Value = serde_json::from_str(end.lines().next().unwrap()).unwrap();
    assert_eq!(end["outcome"], "rolled back", "{end}");
    assert_eq!(end["succeeded"], false, "{end}");
    assert_eq!(end["links"][0]["href"], format!("/stacks/{name}"), "{end}");

    // A reconnecting reader gets only what came after its last id, then the end.
    let after = app
        .call(
            Call::get(&format!("/api/jobs/{id}/events"))
                .bearer(&app.viewer.token)
                .header("last-event-id", "1"),
        )
        .await;
    after.expect(200);
    let resumed = after.text();
    // Every line but the first, and the end's one data line.
    let data = resumed.lines().filter(|l| l.starts_with("data: ")).count();
    assert_eq!(data, job.seen(0).next, "{resumed}");
    assert!(resumed.contains("event: end"), "{resumed}");

    // The page at its end, and what was recorded.
    let shown = app.call(Call::get(&page).session(&app.viewer)).await;
    shown.expect(200);
    let html = shown.text();
    assert!(
        html.contains("id=\"outcome\"") && html.contains("rolled back"),
        "{html}"
    );
    assert!(
        !html.contains("http-equiv=\"refresh\""),
        "a finished job reloads: {html}"
    );
    let history = app.state.history().revisions(&name).await.unwrap();
    assert_eq!(history[0].outcome.to_string(), "rolled back");
    assert_eq!(
        history[0].by,
        format!("edited in the dashboard by {}", op.name)
    );
    let audit = app.audit().await;
    assert!(
        audit
            .iter()
            .any(|e| e["action"] == "edit-service" && e["target"] == name.as_str()),
        "{audit:?}"
    );
    assert_eq!(
        service.spec()["TaskTemplate"]["ContainerSpec"]["Args"],
        serde_json::json!(["/bin/busybox", "sleep", "3600"])
    );
}
