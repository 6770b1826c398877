//! A failed edit says why with the failing task's last log lines, as a stack deploy does
//! (tryout9 finding 14): `PUT /api/services/{name}` answers `failures: [{service, why, logs}]`,
//! and the form's job puts the lines on its page (`NAME log: …`) and the why in its end's notes.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{job_of, test_image, unique, Call, TestApp, TestService, TEST_LABEL};

/// Prints a line the operator needs, then exits: every task of the edit fails.
const CRASH: &str = "/bin/busybox sh -c 'echo fatal: config missing; exit 3'";

#[tokio::test]
async fn a_failed_edit_carries_the_failing_tasks_log_lines() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let name = unique("editlogs");
    let service = TestService { name: name.clone() };
    let _history = support::TestStack { name: name.clone() };
    let form = json!({
        "name": name,
        "image": test_image(),
        "command": "/bin/busybox sleep 3600",
        "replicas": 1,
        "labels": [TEST_LABEL],
        "update_monitor": "2s",
        "restart_delay": "1s",
        "log_driver": "local",
    });
    app.call(Call::post("/api/services").bearer(&op.token).json(&form))
        .await
        .expect(201);
    service.wait_running(1);

    // The API: 409, and the failure with its log line.
    let mut broken = form.clone();
    broken["command"] = json!(CRASH);
    let answer = app
        .call(
            Call::put(&format!("/api/services/{name}"))
                .bearer(&op.token)
                .json(&broken),
        )
        .await;
    answer.expect(409);
    let edited = answer.json();
    assert_eq!(edited["outcome"], "rolled back", "{edited}");
    let failure = &edited["failures"][0];
    assert_eq!(failure["service"], name.as_str(), "{edited}");
    assert!(
        failure["why"].as_str().unwrap().contains("exit"),
        "{edited}"
    );
    assert!(
        failure["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("fatal: config missing")),
        "{edited}"
    );
    service.wait_running(1);

    // The form: the job's lines carry the log line, its end the why.
    let posted = app
        .call(
            Call::post(&format!("/services/{name}/edit"))
                .session(op)
                .form(&[
                    ("name", name.as_str()),
                    ("image", test_image()),
                    ("command", CRASH),
                    ("replicas", "1"),
                    ("labels", TEST_LABEL),
                    ("update_monitor", "2s"),
                    ("restart_delay", "1s"),
                    ("log_driver", "local"),
                    ("confirm", "yes"),
                ]),
        )
        .await;
    let (_, job) = job_of(&app, &posted);
    let started = Instant::now();
    let seen = loop {
        let seen = job.seen(0);
        if seen.end.is_some() {
            break seen;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "the job ends within 3 minutes: {:?}",
            seen.lines
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let end = seen.end.unwrap();
    assert!(!end.succeeded, "{:?}", end.outcome);
    assert!(
        seen.lines
            .iter()
            .any(|l| l == &format!("{name} log: fatal: config missing")),
        "{:?}",
        seen.lines
    );
    assert!(
        end.notes
            .iter()
            .any(|n| n.starts_with(&format!("{name}: "))),
        "{:?}",
        end.notes
    );
}
