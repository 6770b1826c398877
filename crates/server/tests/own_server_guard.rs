//! Every path that stops or moves swarmkeeper's own server asks first, as removing it does:
//! scaling it to 0 needs `confirm` naming it, an edit that changes where it may run (its
//! state lives in a volume of the node it runs on) needs `"confirm": true`, and the drain
//! preview's button confirms the drain it showed; "edit as compose" of the server (or its
//! stack) asks as the form's edit does. Against the host's single-node swarm.

mod support;

use serde_json::json;
use support::{service_version, Call, TestApp, TestService};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_the_own_server_to_zero_or_moving_it_needs_a_confirmation() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let server = TestService::create("skguard", &["--label", "swarmkeeper.server=true"]);
    let name = server.name.clone();

    let scale = |body| {
        Call::post(&format!("/api/services/{name}/scale"))
            .bearer(&op.token)
            .json(&body)
    };
    let refused = app
        .call(scale(json!({"replicas": 0})))
        .await
        .expect_json_error(409);
    assert!(
        refused.contains("this dashboard stops")
            && refused.contains(&format!("\"confirm\": \"{name}\"")),
        "{refused}"
    );
    app.call(scale(json!({"replicas": 0, "confirm": "nope"})))
        .await
        .expect_json_error(409);
    assert_eq!(server.replicas(), 1, "not scaled");
    // The page asks for the name in a field (tryout 11 finding 17: it asked a browser user
    // for JSON); a name mistyped there is said, and nothing is scaled.
    let page_scale = |confirm: Option<&str>| {
        let mut fields = vec![("replicas", "0")];
        fields.extend(confirm.map(|c| ("confirm", c)));
        Call::post(&format!("/services/{name}/scale"))
            .session(op)
            .form(&fields)
    };
    let asked = app.call(page_scale(None)).await;
    asked.expect(409);
    let page = asked.text();
    assert!(
        page.contains("this dashboard stops")
            && page.contains(r#"name="confirm""#)
            && !page.contains("confirm it by name"),
        "{page}"
    );
    let mistyped = app.call(page_scale(Some("nope"))).await;
    mistyped.expect(409);
    assert!(
        mistyped.text().contains("id=\"confirm-error\""),
        "{}",
        mistyped.text()
    );
    assert_eq!(server.replicas(), 1, "not scaled");
    // Up is no stop.
    app.call(scale(json!({"replicas": 2}))).await.expect(200);
    assert_eq!(server.replicas(), 2);

    // An edit that changes where it may run.
    let before = service_version(&name);
    let edit = |body| {
        Call::put(&format!("/api/services/{name}"))
            .bearer(&op.token)
            .json(&body)
    };
    let refused = app
        .call(edit(json!({"constraints": "node.role==manager"})))
        .await
        .expect_json_error(409);
    assert!(
        refused.contains("on another node it starts empty"),
        "{refused}"
    );
    assert_eq!(service_version(&name), before, "nothing applied");
    // The page's preview says so before its Apply.
    let preview = app
        .call(
            Call::post(&format!("/services/{name}/edit"))
                .session(op)
                .form(&[
                    ("name", name.as_str()),
                    ("image", support::IMAGE),
                    ("constraints", "node.role==manager"),
                ]),
        )
        .await;
    preview.expect(200);
    assert!(
        preview.text().contains("on another node it starts empty"),
        "{}",
        preview.text()
    );
    assert_eq!(service_version(&name), before, "a preview applies nothing");

    // Confirmed, it goes through; then scaled to 0 by name.
    app.call(edit(
        json!({"constraints": "node.role==manager", "confirm": true}),
    ))
    .await
    .expect(200);
    app.call(scale(json!({"replicas": 0, "confirm": name})))
        .await
        .expect(200);
    assert_eq!(server.replicas(), 0);
    // The page's confirmation, by name, goes through as the API's does.
    app.call(scale(json!({"replicas": 1}))).await.expect(200);
    assert_eq!(server.replicas(), 1);
    app.call(page_scale(Some(&name))).await.expect(303);
    assert_eq!(server.replicas(), 0);
}

#[tokio::test]
async fn the_drain_previews_button_confirms_the_drain_it_showed() {
    let app = TestApp::new().await;
    let nodes = app
        .call(Call::get("/api/nodes").bearer(&app.operator.token))
        .await
        .json();
    let id = nodes["nodes"][0]["id"].as_str().unwrap().to_owned();
    let page = app
        .call(Call::get(&format!("/nodes/{id}/drain")).session(&app.operator))
        .await
        .text();
    assert!(
        page.contains(r#"<input type="hidden" name="confirm" value="true">"#),
        "{page}"
    );
}

/// "Edit as compose" of the server's service, and of its stack, asks as the form's edit does:
/// a text that scales it to 0 or changes where it may run is refused (409 saying what stops)
/// and changes nothing; the page's preview says it before its Apply; `"confirm": true` applies
/// it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_the_own_server_as_compose_is_guarded_like_the_form() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let server = TestService::running(
        "objs11srv",
        &["--label", "swarmkeeper.server=true"],
        support::SLEEP,
    );
    let name = server.name.clone();
    let _history = support::HistoryOf(name.clone());
    server.wait_running(1);
    let page = app
        .call(Call::get(&format!("/services/{name}/compose")).session(op))
        .await;
    page.expect(200);
    let text = support::compose_text_of(&page.text());
    assert!(text.contains("replicas: 1"), "{text}");
    let to_zero = text.replace("replicas: 1", "replicas: 0");
    let moved = text.replace(
        "replicas: 1",
        "replicas: 1\n      placement:\n        constraints: [\"node.role==manager\"]",
    );
    let before = service_version(&name);
    let refused = app
        .post_compose(&name, op, &to_zero)
        .await
        .expect_json_error(409);
    assert!(
        refused.contains("this dashboard stops") && refused.contains("\"confirm\": true"),
        "{refused}"
    );
    let refused = app
        .post_compose(&name, op, &moved)
        .await
        .expect_json_error(409);
    assert!(
        refused.contains("on another node it starts empty"),
        "{refused}"
    );
    assert_eq!(service_version(&name), before, "nothing applied");
    // The page's preview says it before its Apply (which confirms).
    let preview = app
        .call(
            Call::post(&format!("/services/{name}/compose"))
                .session(op)
                .form(&[("compose", to_zero.as_str())]),
        )
        .await;
    preview.expect(200);
    assert!(
        preview.text().contains("this dashboard stops"),
        "{}",
        preview.text()
    );
    assert!(preview.text().contains(r#"name="confirm" value="yes""#));
    assert_eq!(service_version(&name), before, "a preview applies nothing");
    // Confirmed, it goes.
    let answer = app
        .call(
            Call::post(&format!("/api/services/{name}/compose"))
                .bearer(&op.token)
                .json(&json!({"compose": to_zero, "confirm": true})),
        )
        .await;
    answer.expect(200);
    assert_eq!(server.replicas(), 0);
}

/// The same through the stack's "edit as compose".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_the_own_servers_stack_as_compose_is_guarded_like_the_form() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let stack = support::TestStack::new("objs11stk");
    let dir = support::TempDir::new("objs11stk");
    let file = dir.path().join("stack.yml");
    std::fs::write(
        &file,
        format!(
            "services:\n  server:\n    image: {}\n    command: [/bin/busybox, sleep, \"3600\"]\n    \
             labels: [\"{}\"]\n    deploy:\n      labels: [\"swarmkeeper.server=true\"]\n",
            support::test_image(),
            support::TEST_LABEL
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
    let server = TestService {
        name: format!("{}_server", stack.name),
    };
    server.wait_running(1);
    let page = app
        .call(Call::get(&format!("/stacks/{}/compose", stack.name)).session(op))
        .await;
    page.expect(200);
    let text = support::compose_text_of(&page.text());
    let to_zero = text.replace("replicas: 1", "replicas: 0");
    assert_ne!(to_zero, text, "{text}");
    let before = service_version(&server.name);
    let post = |confirm: bool| {
        Call::post(&format!("/api/stacks/{}/compose", stack.name))
            .bearer(&op.token)
            .json(&json!({"compose": to_zero, "confirm": confirm}))
    };
    let refused = app.call(post(false)).await.expect_json_error(409);
    assert!(
        refused.contains(&server.name) && refused.contains("this dashboard stops"),
        "{refused}"
    );
    assert_eq!(service_version(&server.name), before, "nothing applied");
    app.call(post(true)).await.expect(200);
    assert_eq!(server.replicas(), 0);
}
