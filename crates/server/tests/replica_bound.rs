//! Tryout 8 finding 3 (issue #14): every path that sets a service's replicas refuses more
//! than `swarmkeeper_compose::MAX_REPLICAS` (500) as the scale route does, naming the field,
//! with nothing applied — the service form and `POST`/`PUT /api/services`, edit as compose
//! (file:line:col) and the scale route. Against the host's single-node swarm.

mod support;

use serde_json::json;
use support::{
    service_form, service_version, test_image, try_docker, unique, Call, TestApp, TestService,
};

const TOO_MANY: &str = "999999999999";
const SAYS: &str = "replicas: 999999999999 is more than 500; scale in steps or with the docker CLI";

#[tokio::test]
async fn more_than_500_replicas_are_refused_on_every_path_with_nothing_applied() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let image = test_image();

    // Create through the API: 400 naming the field, no service.
    let name = unique("replicabound");
    let refused = app
        .call(
            Call::post("/api/services")
                .bearer(&op.token)
                .json(&json!({"name": name, "image": image, "replicas": TOO_MANY})),
        )
        .await
        .expect_json_error(400);
    assert!(refused.contains(SAYS), "{refused}");
    assert!(try_docker(&["service", "inspect", &name]).is_err());
    // 500 itself is the bound, not past it: the preview of the form offers it.
    let service = TestService::sleeping("replicabound");
    let name = service.name.clone();
    let before = service_version(&name);
    let page = app
        .call(service_form(
            op,
            &name,
            &[("name", &name), ("image", image), ("replicas", "500")],
        ))
        .await;
    page.expect(200);

    // Edit on the page and through the API.
    let page = app
        .call(service_form(
            op,
            &name,
            &[("name", &name), ("image", image), ("replicas", TOO_MANY)],
        ))
        .await;
    page.expect(422);
    let text = page.text();
    assert!(text.contains("data-field=\"replicas\""), "{text}");
    assert!(text.contains("999999999999 is more than 500"), "{text}");
    let refused = app
        .call(
            Call::put(&format!("/api/services/{name}"))
                .bearer(&op.token)
                .json(&json!({"replicas": TOO_MANY})),
        )
        .await
        .expect_json_error(400);
    assert!(refused.contains(SAYS), "{refused}");

    // Edit as compose: the file's line and column.
    let compose = app.service_compose(&name, op).await;
    let line = compose
        .lines()
        .find(|l| l.trim_start().starts_with("replicas:"))
        .expect("a replicas line");
    let text = compose.replacen(line, &format!("      replicas: {TOO_MANY}"), 1);
    let refused = app
        .post_compose(&name, op, &text)
        .await
        .expect_json_error(400);
    assert!(refused.contains(&format!("{name}.yml:")), "{refused}");
    assert!(refused.contains(SAYS), "{refused}");

    // The scale route says the same.
    let refused = app
        .call(
            Call::post(&format!("/api/services/{name}/scale"))
                .bearer(&op.token)
                .json(&json!({"replicas": 999_999_999_999_u64})),
        )
        .await
        .expect_json_error(400);
    assert!(refused.contains(SAYS), "{refused}");

    assert_eq!(service_version(&name), before, "nothing was applied");
}

/// Tryout 14 finding 12: an edit of a service that publishes a host-mode port and updates
/// start-first, on nodes all holding that port, could never start its first new task; it
/// hung for the whole deploy timeout. Refused at once, naming the update order.
#[tokio::test]
async fn a_start_first_update_no_node_can_take_is_refused_at_once() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let port = format!("{}", 20_000 + std::process::id() % 20_000);
    let publish = format!("mode=host,target=80,published={port}");
    let service = TestService::create(
        "startfirststuck",
        &["--publish", &publish, "--update-order", "start-first"],
    );
    let name = service.name.clone();
    service.wait_running(1);
    let before = service_version(&name);
    let refused = app
        .call(
            Call::put(&format!("/api/services/{name}"))
                .bearer(&op.token)
                .json(&json!({"env": ["EDITED=1"]})),
        )
        .await
        .expect_json_error(400);
    assert!(
        refused.starts_with(
            "update_order: this service cannot be placed: with update_config.order start-first"
        ),
        "{refused}"
    );
    assert_eq!(service_version(&name), before, "nothing applied");
    // Stop-first frees the port before the new task starts: accepted.
    let edited = app
        .call(
            Call::put(&format!("/api/services/{name}"))
                .bearer(&op.token)
                .json(&json!({"env": ["EDITED=1"], "update_order": "stop-first"})),
        )
        .await;
    edited.expect(200);
}
