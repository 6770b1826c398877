//! Tryout finding 15 on the real engine: a service edited through `PUT /api/services/{name}`
//! and then scaled shows both changes among the overview's events (the edit was missing: only
//! deploys, rollbacks, scales and redeploys were events). Pushed off the overview's 25, they
//! stay on the events page (`/events`, `/api/events`) for a viewer.

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
    // The kinds of the service's events, newest first.
    let kinds_of = |view: &serde_json::Value| -> Vec<String> {
        view["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["link"] == link.as_str())
            .map(|e| e["kind"].as_str().unwrap().to_owned())
            .collect()
    };
    let kinds = kinds_of(&overview);
    // Newest first.
    assert_eq!(kinds, ["scale", "edit-service"], "{overview}");

    // Tryout 13 finding 7: more changes than the overview's 25 stay readable by a viewer on
    // the events page, newest first.
    for replicas in 1..=26 {
        app.call(
            Call::post(&format!("/api/services/{name}/scale"))
                .bearer(&app.operator.token)
                .json(&json!({"replicas": replicas % 2})),
        )
        .await
        .expect(200);
    }
    let overview = app
        .call(Call::get("/api/overview").bearer(&app.viewer.token))
        .await
        .json();
    assert!(
        !kinds_of(&overview).contains(&"edit-service".to_owned()),
        "the edit is still among the overview's 25: {overview}"
    );
    let all = app
        .call(Call::get("/api/events").bearer(&app.viewer.token))
        .await
        .json();
    let kinds = kinds_of(&all);
    assert_eq!(kinds.len(), 28, "{all}");
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("edit-service"),
        "{all}"
    );
    let page = app.call(Call::get("/events").session(&app.viewer)).await;
    page.expect(200);
    assert!(page.text().contains("edit-service"), "{}", page.text());
}
