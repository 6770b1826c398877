//! Creating and editing a service in the dashboard's form, through the whole router against
//! the host's swarm: created through the API, a bad field refused naming it with nothing
//! applied, an edit previewed on the page (diff and lint), an edit that breaks the service
//! rolled back by the deploy engine and recorded as "edited in the dashboard by NAME", and a
//! viewer refused.

mod support;

use serde_json::{json, Value};
use support::{
    failed_edit, service_version, sleeping_form, test_image, try_docker, unique, Call, TestApp,
    TestService, SLEEP, TEST_LABEL,
};
use swarmkeeper_deploy::History;

fn args(service: &TestService) -> Value {
    service.spec()["TaskTemplate"]["ContainerSpec"]["Args"].clone()
}

#[tokio::test]
async fn a_service_is_created_refused_previewed_and_a_broken_edit_rolled_back() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let name = unique("svcform");
    let service = TestService { name: name.clone() };
    let image = test_image();
    let mut form = sleeping_form(&name);
    form["env"] = json!({"GREETING": "hello $USER"});
    form["log_options"] = json!(["max-size=1m"]);

    // A viewer can neither create nor edit, and sees no form.
    app.call(
        Call::post("/api/services")
            .bearer(&app.viewer.token)
            .json(&form),
    )
    .await
    .expect(403);
    app.call(Call::get("/services/new").session(&app.viewer))
        .await
        .expect(403);
    assert!(try_docker(&["service", "inspect", &name]).is_err());

    let created = app
        .call(Call::post("/api/services").bearer(&op.token).json(&form))
        .await;
    created.expect(201);
    let created = created.json();
    assert_eq!(created["action"], "created", "{created}");
    assert_eq!(created["succeeded"], true, "{created}");
    assert_eq!(args(&service), json!(SLEEP));
    assert_eq!(
        service.spec()["TaskTemplate"]["ContainerSpec"]["Env"],
        json!(["GREETING=hello $USER"])
    );
    service.wait_running(1);
    // The same name again is a conflict.
    app.call(Call::post("/api/services").bearer(&op.token).json(&form))
        .await
        .expect_json_error(409);

    // Bad input: refused naming the field, nothing applied.
    let before = service_version(&name);
    let mut bad = form.clone();
    bad["replicas"] = json!("three");
    let message = app
        .call(
            Call::put(&format!("/api/services/{name}"))
                .bearer(&op.token)
                .json(&bad),
        )
        .await
        .expect_json_error(400);
    assert!(message.contains("replicas"), "{message}");
    let page = app
        .call(
            Call::post(&format!("/services/{name}/edit"))
                .session(op)
                .form(&[("name", &name), ("image", image), ("limit_memory", "lots")]),
        )
        .await;
    page.expect(422);
    assert!(
        page.text().contains("data-field=\"limit_memory\""),
        "{}",
        page.text()
    );
    app.call(
        Call::put(&format!("/api/services/{name}"))
            .bearer(&app.viewer.token)
            .json(&form),
    )
    .await
    .expect(403);
    assert_eq!(service_version(&name), before, "nothing was applied");

    // The page's form shows the service; posting it shows the diff and lint first.
    let edit = app
        .call(Call::get(&format!("/services/{name}/edit")).session(op))
        .await;
    edit.expect(200);
    assert!(
        edit.text().contains("/bin/busybox sleep 3600"),
        "{}",
        edit.text()
    );
    let preview = app
        .call(
            Call::post(&format!("/services/{name}/edit"))
                .session(op)
                .form(&[
                    ("name", &name),
                    ("image", image),
                    ("command", "/bin/busybox sleep 7200"),
                ]),
        )
        .await;
    preview.expect(200);
    let text = preview.text();
    assert!(
        text.contains("id=\"changes\"") && text.contains("7200"),
        "{text}"
    );
    assert!(text.contains("id=\"findings\""), "{text}");
    assert_eq!(service_version(&name), before, "a preview applies nothing");

    // An edit whose tasks exit at once: followed, rolled back, recorded.
    let edited = failed_edit(&app, op, &form, "/bin/busybox sh -c 'exit 1'").await;
    assert_eq!(edited["succeeded"], false, "{edited}");
    assert_eq!(edited["outcome"], "rolled back", "{edited}");
    assert!(edited["changes"].to_string().contains("exit 1"), "{edited}");
    assert_eq!(args(&service), json!(SLEEP));
    let history = app.state.history().revisions(&name).await.unwrap();
    support::remove_history(&name);
    assert_eq!(history[0].outcome.to_string(), "rolled back");
    assert_eq!(
        history[0].by_sentence(),
        format!("edited in the dashboard by {}", op.name)
    );
    assert_eq!(
        history[1].by_sentence(),
        format!("created in the dashboard by {}", op.name)
    );
    service.wait_running(1);
}

#[tokio::test]
async fn a_service_is_edited_as_compose_and_a_broken_text_changes_nothing() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let service = TestService::running(
        "ascompose",
        &[
            "--env",
            "A=1",
            "--update-monitor",
            "2s",
            "--restart-delay",
            "1s",
        ],
        SLEEP,
    );
    let name = service.name.clone();
    service.wait_running(1);
    app.call(Call::get(&format!("/services/{name}/compose")).session(&app.viewer))
        .await
        .expect(403);
    let page = app
        .call(Call::get(&format!("/services/{name}/compose")).session(op))
        .await;
    page.expect(200);
    let text = app.post_compose(&name, &app.viewer, "").await;
    text.expect(403);
    let compose = support::compose_text_of(&page.text());
    assert!(compose.contains("\"A=1\""), "{compose}");

    // A text that does not read: refused with its line, nothing applied.
    let before = service_version(&name);
    let broken_text = compose.replace(
        "mode: \"replicated\"",
        "mode: \"replicated\"\n      replicas: lots",
    );
    let message = app
        .post_compose(&name, op, &broken_text)
        .await
        .expect_json_error(400);
    assert!(message.contains(&format!("{name}.yml:")), "{message}");
    assert_eq!(service_version(&name), before);

    // A preview on the page changes nothing.
    let preview = app
        .call(
            Call::post(&format!("/services/{name}/compose"))
                .session(op)
                .form(&[("compose", &compose.replace("\"A=1\"", "\"A=2\""))]),
        )
        .await;
    preview.expect(200);
    assert!(preview.text().contains("A=2"), "{}", preview.text());
    assert_eq!(service_version(&name), before);

    let answer = app
        .post_compose(&name, op, &compose.replace("\"A=1\"", "\"A=2\""))
        .await;
    answer.expect(200);
    let edited = answer.json();
    assert_eq!(edited["action"], "edited as compose", "{edited}");
    assert_eq!(
        service.spec()["TaskTemplate"]["ContainerSpec"]["Env"],
        json!(["A=2"])
    );

    // A text whose tasks exit at once: rolled back, recorded.
    let failing = compose
        .replace("\"A=1\"", "\"A=2\"")
        .replace("/bin/busybox sleep 3600", "/bin/busybox false");
    assert_ne!(failing, compose.replace("\"A=1\"", "\"A=2\""));
    let answer = app.post_compose(&name, op, &failing).await;
    answer.expect(409);
    assert_eq!(answer.json()["outcome"], "rolled back", "{}", answer.json());
    assert_eq!(args(&service), json!(SLEEP));
    let history = app.state.history().revisions(&name).await.unwrap();
    support::remove_history(&name);
    assert_eq!(history[0].outcome.to_string(), "rolled back");
    assert_eq!(
        history[0].by_sentence(),
        format!("edited in the dashboard by {}", op.name)
    );
    assert_eq!(history[1].outcome.to_string(), "succeeded");
    service.wait_running(1);
}

#[tokio::test]
async fn a_stack_is_edited_as_compose_in_one_revision_keeping_its_networks() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let stack = support::TestStack::new("stackcompose");
    let dir = support::TempDir::new("stackcompose");
    let file = dir.path().join("stack.yml");
    std::fs::write(
        &file,
        format!(
            "services:\n  web:\n    image: {}\n    command: [/bin/busybox, sleep, \"3600\"]\n    \
             environment: [A=1]\n    labels: [\"{TEST_LABEL}\"]\n",
            test_image()
        ),
    )
    .unwrap();
    support::docker(&[
        "stack",
        "deploy",
        "--detach=true",
        "-c",
        file.to_str().unwrap(),
        &stack.name,
    ]);
    let web = TestService {
        name: format!("{}_web", stack.name),
    };
    web.wait_running(1);
    let networks = web.spec()["TaskTemplate"]["Networks"].clone();
    let compose = app
        .call(Call::get(&format!("/stacks/{}/compose", stack.name)).session(op))
        .await;
    compose.expect(200);
    assert!(compose.text().contains("web"), "{}", compose.text());
    let text = support::compose_text_of(&compose.text());
    let answer = app
        .call(
            Call::post(&format!("/api/stacks/{}/compose", stack.name))
                .bearer(&op.token)
                .json(&json!({"compose": text.replace("\"A=1\"", "\"A=3\"")})),
        )
        .await;
    answer.expect(200);
    assert_eq!(
        web.spec()["TaskTemplate"]["ContainerSpec"]["Env"],
        json!(["A=3"])
    );
    assert_eq!(web.spec()["TaskTemplate"]["Networks"], networks);
    assert_eq!(
        web.spec()["Labels"]["com.docker.stack.namespace"],
        stack.name.as_str()
    );
    let history = app.state.history().revisions(&stack.name).await.unwrap();
    assert_eq!(
        history[0].by_sentence(),
        format!("edited in the dashboard by {}", op.name)
    );
}

#[tokio::test]
async fn a_partial_put_keeps_every_field_it_leaves_out() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let service = TestService::running(
        "partialput",
        &[
            "--replicas",
            "2",
            "--env",
            "A=1",
            "--label",
            "team=shop",
            "--limit-memory",
            "32M",
            "--update-failure-action",
            "rollback",
            "--update-monitor",
            "2s",
            // Written out, so no safe default fills them in: the operator's, kept.
            "--rollback-failure-action",
            "continue",
            "--log-driver",
            "json-file",
        ],
        SLEEP,
    );
    let name = service.name.clone();
    service.wait_running(2);
    let before = service.spec();

    // No name (the path's), only the command.
    let answer = app
        .call(
            Call::put(&format!("/api/services/{name}"))
                .bearer(&op.token)
                .json(&json!({"command": "/bin/busybox sleep 7200"})),
        )
        .await;
    // The service's page lists the edit, though the service is in no stack.
    let page = app
        .call(Call::get(&format!("/api/services/{name}")).bearer(&op.token))
        .await;
    support::remove_history(&name);
    answer.expect(200);
    page.expect(200);
    let deploys = page.json()["deploys"].clone();
    assert_eq!(
        deploys[0]["by"],
        format!("edited in the dashboard by {}", op.name),
        "{deploys}"
    );
    let edited = answer.json();
    let changes = edited["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "only the command changed: {edited}");
    assert!(changes[0].as_str().unwrap().contains("7200"), "{edited}");
    let after = service.spec();
    assert_eq!(args(&service), json!(["/bin/busybox", "sleep", "7200"]));
    for path in [
        "/TaskTemplate/ContainerSpec/Env",
        "/Labels",
        "/TaskTemplate/Resources/Limits",
        "/UpdateConfig/FailureAction",
        "/RollbackConfig",
        "/TaskTemplate/LogDriver",
        "/Mode/Replicated/Replicas",
    ] {
        assert_eq!(after.pointer(path), before.pointer(path), "{path}: {after}");
    }
}

#[tokio::test]
async fn an_unchanged_compose_text_applies_nothing() {
    let app = TestApp::new().await;
    let op = &app.operator;
    // Made by the form, not the docker CLI (which writes every default out).
    let name = unique("unchanged");
    let _service = TestService { name: name.clone() };
    app.call(Call::post("/api/services").bearer(&op.token).json(&json!({
        "name": name,
        "image": test_image(),
        "command": "/bin/busybox sleep 3600",
        "labels": [TEST_LABEL],
    })))
    .await
    .expect(201);
    let compose = app.service_compose(&name, op).await;
    let before = service_version(&name);
    let answer = app
        .call(
            Call::post(&format!("/api/services/{name}/compose"))
                .bearer(&op.token)
                .json(&json!({ "compose": compose })),
        )
        .await;
    support::remove_history(&name);
    answer.expect(200);
    let edited = answer.json();
    assert_eq!(edited["changes"], json!([]), "{edited}");
    assert_eq!(
        service_version(&name),
        before,
        "nothing was applied: {edited}"
    );
}

/// Finding 26: a service created in the dashboard whose task exits 1 a second after it
/// started is not "created / succeeded": the create fails (409) naming the task that exited
/// within the monitor window, and the service it made is removed again (all or nothing, as a
/// failed deploy's).
#[tokio::test]
async fn a_create_whose_task_exits_within_the_monitor_window_fails_and_is_removed() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let name = unique("exit1");
    let _service = TestService { name: name.clone() };
    let answer = app
        .call(Call::post("/api/services").bearer(&op.token).json(&json!({
            "name": name,
            "image": test_image(),
            "command": "/bin/busybox sh -c \"sleep 1; exit 1\"",
            "restart_condition": "none",
            "labels": [TEST_LABEL],
        })))
        .await;
    answer.expect(409);
    let body = answer.json();
    assert_eq!(body["succeeded"], false, "{body}");
    assert_eq!(body["outcome"], "rolled back", "{body}");
    assert_eq!(body["action"], "not created", "{body}");
    assert!(
        body.to_string().contains("exited 1") && body.to_string().contains("monitor window"),
        "{body}"
    );
    assert!(
        try_docker(&["service", "inspect", &name]).is_err(),
        "{body}"
    );
}

/// Tryout 7, finding 2: the service bodies refuse a key no field takes (`replicass`,
/// `imagee`) by name, as every other API body does, with nothing created or applied; and an
/// edit that changes nothing answers "no change" without recording a revision.
#[tokio::test]
async fn a_service_body_with_an_unknown_field_is_refused_and_a_no_op_edit_records_nothing() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let name = unique("typo");
    let _service = TestService { name: name.clone() };
    let message = app
        .call(Call::post("/api/services").bearer(&op.token).json(&json!({
            "name": name,
            "image": test_image(),
            "replicass": 3,
        })))
        .await
        .expect_json_error(400);
    assert_eq!(
        message, "replicass: unknown field (see /api/openapi.json)",
        "{message}"
    );
    assert!(try_docker(&["service", "inspect", &name]).is_err());

    // `confirm` is the page's field: the API takes it and applies at once.
    app.call(Call::post("/api/services").bearer(&op.token).json(&json!({
        "name": name,
        "image": test_image(),
        "command": "/bin/busybox sleep 3600",
        "labels": [TEST_LABEL],
        "confirm": "yes",
    })))
    .await
    .expect(201);
    let before = service_version(&name);
    let message = app
        .call(
            Call::put(&format!("/api/services/{name}"))
                .bearer(&op.token)
                .json(&json!({"imagee": test_image()})),
        )
        .await
        .expect_json_error(400);
    assert_eq!(
        message, "imagee: unknown field (see /api/openapi.json)",
        "{message}"
    );
    let unchanged = app
        .call(
            Call::put(&format!("/api/services/{name}"))
                .bearer(&op.token)
                .json(&json!({"command": "/bin/busybox sleep 3600"})),
        )
        .await;
    let history = app.state.history().revisions(&name).await.unwrap();
    support::remove_history(&name);
    unchanged.expect(200);
    let unchanged = unchanged.json();
    assert_eq!(unchanged["action"], "no change", "{unchanged}");
    assert_eq!(unchanged["changes"], json!([]), "{unchanged}");
    assert_eq!(unchanged["revision"], Value::Null, "{unchanged}");
    assert_eq!(service_version(&name), before, "nothing was applied");
    assert_eq!(history.len(), 1, "only the create is recorded");
}
