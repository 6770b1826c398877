//! A one-field edit of a service made without swarmkeeper (no log driver, the engine's own
//! update and rollback configs, a bind mount) changes that field only (tryout11 finding 4): the safe defaults are
//! said as suggestions and not applied, so a log shipper reading json-file logs keeps the
//! service and no `start-first` comes to a service writing to a mount. A create still gets
//! them (`form_defaults.rs`).

mod support;

use serde_json::json;
use support::{test_image, unique, Call, HistoryOf, TestApp, TestService, SLEEP};

#[tokio::test]
async fn a_one_field_edit_changes_only_that_field_and_suggests_the_safe_defaults() {
    let app = TestApp::new().await;
    let name = unique("nodefaults");
    // As `docker stack deploy` writes a service whose file sets no logging, update_config or
    // rollback_config: none of them in the spec.
    let spec = json!({
        "Name": name,
        "Labels": {"swarmkeeper.test": "server"},
        "Mode": {"Replicated": {"Replicas": 1}},
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": test_image(),
                "Args": SLEEP,
                "Mounts": [{"Type": "bind", "Source": "/tmp", "Target": "/data"}]
            }
        }
    });
    let service = TestService { name: name.clone() };
    let _history = HistoryOf(name.clone());
    app.state
        .engine
        .create_service(&spec, None)
        .await
        .expect("the engine creates it");
    service.wait_running(1);
    let before = service.spec();
    // The engine fills in its own update and rollback configs (`pause`, `stop-first`); the
    // log driver stays unset: the node's default (json-file) applies.
    assert!(
        before.pointer("/TaskTemplate/LogDriver").is_none(),
        "{before}"
    );

    let answer = app
        .call(
            Call::put(&format!("/api/services/{name}"))
                .bearer(&app.operator.token)
                .json(&json!({"env": "SAFE11=1"})),
        )
        .await;
    answer.expect(200);
    let edited = answer.json();
    let changes = edited["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "only the environment changed: {edited}");
    assert!(
        changes[0].as_str().unwrap().contains("SAFE11=1"),
        "{edited}"
    );
    let notes: Vec<&str> = edited["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    // Besides warnings (a digest the registry could not give), only suggestions.
    assert!(
        notes
            .iter()
            .all(|n| n.starts_with("suggested: ") || n.starts_with("warning: ")),
        "{notes:?}"
    );
    for suggested in [
        format!("suggested: {name}: logging = local, max-size 20m"),
        format!("suggested: {name}: update_config.order = stop-first (the service writes to a volume or bind mount"),
    ] {
        assert!(
            notes.iter().any(|n| n.starts_with(&suggested)),
            "{suggested}: {notes:?}"
        );
    }
    let after = service.spec();
    for path in [
        "/TaskTemplate/LogDriver",
        "/UpdateConfig",
        "/RollbackConfig",
        "/TaskTemplate/ContainerSpec/Mounts",
    ] {
        assert_eq!(after.pointer(path), before.pointer(path), "{path}: {after}");
    }
    assert_eq!(
        after["TaskTemplate"]["ContainerSpec"]["Env"],
        json!(["SAFE11=1"]),
        "{after}"
    );
}
