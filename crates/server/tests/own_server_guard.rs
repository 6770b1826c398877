//! Every path that stops or moves swarmkeeper's own server asks first, as removing it does:
//! scaling it to 0 needs `confirm` naming it, an edit that changes where it may run (its
//! state lives in a volume of the node it runs on) needs `"confirm": true`, and the drain
//! preview's button confirms the drain it showed. Against the host's single-node swarm.

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
