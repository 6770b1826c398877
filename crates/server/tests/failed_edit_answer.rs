//! What `PUT /api/services/{name}` answers when the edit fails: the deploy engine rolls the
//! service back, and the answer says the service was not edited (as a failed create says
//! `not created`), never `edited`, with the outcome `rolled back`. It says why with the failing
//! task's last log lines, as a stack deploy does (tryout9 finding 14): the API answers
//! `failures: [{service, why, logs}]`, and the form's job puts the lines on its page
//! (`NAME log: …`) and the why in its end's notes.

mod support;

use serde_json::json;
use support::{
    failed_edit, followed_job, sleeping_form, test_image, unique, Call, TestApp, TestService,
    TEST_LABEL,
};

/// Prints a line the operator needs, then exits: every task of the edit fails.
const CRASH: &str = "/bin/busybox sh -c 'echo fatal: config missing; exit 3'";

#[tokio::test]
async fn a_failed_edit_answers_not_edited_with_the_failing_tasks_log_lines() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let name = unique("failedit");
    let service = TestService { name: name.clone() };
    let _history = support::TestStack { name: name.clone() };
    let form = sleeping_form(&name);
    let created = app
        .call(Call::post("/api/services").bearer(&op.token).json(&form))
        .await;
    created.expect(201);
    assert_eq!(created.json()["action"], "created");
    service.wait_running(1);

    // The API: 409, not edited, and the failure with its log line.
    let edited = failed_edit(&app, op, &form, CRASH).await;
    assert_eq!(edited["outcome"], "rolled back", "{edited}");
    assert_eq!(edited["succeeded"], false, "{edited}");
    assert_eq!(edited["action"], "not edited", "{edited}");
    assert_eq!(
        service.spec()["TaskTemplate"]["ContainerSpec"]["Args"],
        json!(["/bin/busybox", "sleep", "3600"])
    );
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
    let (job, end) = followed_job(&app, &posted).await;
    assert!(!end.succeeded, "{:?}", end.outcome);
    let lines = job.seen(0).lines;
    assert!(
        lines
            .iter()
            .any(|l| l == &format!("{name} log: fatal: config missing")),
        "{lines:?}"
    );
    assert!(
        end.notes
            .iter()
            .any(|n| n.starts_with(&format!("{name}: "))),
        "{:?}",
        end.notes
    );
}
