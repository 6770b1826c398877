//! Tryout finding 15 on the real engine: a service edited through `PUT /api/services/{name}`
//! and then scaled shows both changes among the overview's events (the edit was missing: only
//! deploys, rollbacks, scales and redeploys were events).

// test lane: waiting (the edit goes through the deploy engine, which waits for the update)

mod support;

use serde_json::json;
use support::{Call, HistoryOf, TestApp, TestService};

#[tokio::test]
async fn an_edit_and_a_scale_are_events_of_the_overview() {
    let app = TestApp::new().await;
    let service = TestService::sleeping("events12");
    let name = service.name.clone();
    let _history = HistoryOf(name.clone());
    app.call(
        Call::put(&format!("/api/services/{name}"))
            .bearer(&app.operator.token)
            .json(&json!({"env": "EVENTS12=1"})),
    )
    .await
    .expect(200);
    app.call(
        Call::post(&format!("/api/services/{name}/scale"))
            .bearer(&app.operator.token)
            .json(&json!({"replicas": 2})),
    )
    .await
    .expect(200);

    let overview = app
        .call(Call::get("/api/overview").bearer(&app.viewer.token))
        .await
        .json();
    let link = format!("/services/{name}");
    let kinds: Vec<&str> = overview["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["link"] == link.as_str())
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    // Newest first.
    assert_eq!(kinds, ["scale", "edit-service"], "{overview}");
}
