//! The Nodes page's "Forget" button has its JSON twin, `POST /api/nodes/{id}/forget`: an
//! admin's, as the button is; a viewer or an operator refused (403), a node nobody knows 404,
//! a node Swarm still lists 409, a removed node's reports gone with 204 and the act audited.

mod support;

use support::{report, unique, Call, TestApp, REPORT_SECRET};

#[tokio::test]
async fn a_removed_node_is_forgotten_through_the_api_by_an_admin_only() {
    let app = TestApp::new().await;
    let gone = unique("apigone");
    let hostname = unique("api-removed-worker");
    app.call(Call::post("/api/agent/report").bearer(REPORT_SECRET).body(
        "application/json",
        serde_json::to_vec(&report(&gone, &hostname)).unwrap(),
    ))
    .await
    .expect(204);
    let removed = || async {
        let nodes = app
            .call(Call::get("/api/nodes").bearer(&app.viewer.token))
            .await;
        nodes.expect(200);
        nodes.json()["removed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["id"] == gone.as_str())
    };
    assert!(removed().await, "the report makes a removed node");

    let forget = |id: &str| Call::post(&format!("/api/nodes/{id}/forget"));
    for refused in [&app.viewer, &app.operator] {
        app.call(forget(&gone).bearer(&refused.token))
            .await
            .expect_json_error(403);
    }
    assert!(removed().await, "a refused caller forgets nothing");
    app.call(forget(&unique("nosuchnode")).bearer(&app.admin.token))
        .await
        .expect_json_error(404);
    let message = app
        .call(forget(&support::node_id()).bearer(&app.admin.token))
        .await
        .expect_json_error(409);
    assert!(message.contains("not removed"), "{message}");

    let forgotten = app.call(forget(&gone).bearer(&app.admin.token)).await;
    forgotten.expect(204);
    assert!(!removed().await, "forgotten through the API");
    app.call(Call::get(&format!("/api/nodes/{gone}")).bearer(&app.viewer.token))
        .await
        .expect_json_error(404);
    // Forgotten already: nothing left to forget.
    app.call(forget(&gone).bearer(&app.admin.token))
        .await
        .expect_json_error(404);
    let audit = app.audit().await;
    assert!(
        audit
            .iter()
            .any(|e| e["action"] == "forget-node" && e["target"] == gone.as_str()),
        "{audit:?}"
    );
}
