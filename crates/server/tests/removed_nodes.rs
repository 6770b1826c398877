//! A node Swarm no longer lists (tryout 7, entry 12): out of the node list and the overview,
//! under "Removed nodes" with its last report, until an admin forgets it (audited). The
//! removed node is a report whose Swarm node ID the host's swarm does not have.

mod support;

use serde_json::Value;
use support::{unique, Call, TestApp, REPORT_SECRET};

fn report(node: &str, hostname: &str) -> Value {
    serde_json::json!({
        "node_id": node,
        "hostname": hostname,
        "engine_version": "20.10.24+dfsg1",
        "reported_at": jiff::Timestamp::now(),
        "agent_version": "0.1.0",
        "interval_seconds": 30,
        "disk": {
            "filesystem": {"path": "/var/lib/docker", "capacity_bytes": 1000, "available_bytes": 140},
            "usage_percent": 86, "used_bytes": 860, "image_count": 0,
            "images_unique_bytes": 0, "images_shared_bytes": 0, "container_count": 0,
            "containers_bytes": 0, "logs_bytes": null, "volume_count": 0, "volumes_bytes": 0,
            "build_cache_bytes": 0, "other_bytes": 860
        },
        "high_threshold_percent": 85,
        "low_threshold_percent": 80,
        "images": [],
        "gc_runs": []
    })
}

#[tokio::test]
async fn a_removed_node_leaves_the_lists_until_an_admin_forgets_it() {
    let app = TestApp::new().await;
    let gone = unique("qfgone");
    let hostname = unique("removed-worker");
    app.call(Call::post("/api/agent/report").bearer(REPORT_SECRET).body(
        "application/json",
        serde_json::to_vec(&report(&gone, &hostname)).unwrap(),
    ))
    .await
    .expect(204);

    let nodes = app
        .call(Call::get("/api/nodes").bearer(&app.viewer.token))
        .await;
    nodes.expect(200);
    let nodes = nodes.json();
    let listed = |key: &str| {
        nodes[key]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["id"] == gone.as_str())
    };
    assert!(!listed("nodes"), "{nodes}");
    assert!(listed("removed"), "{nodes}");
    let overview = app.call(Call::get("/").session(&app.viewer)).await;
    overview.expect(200);
    assert!(!overview.text().contains(&hostname), "{}", overview.text());
    let page = app.call(Call::get("/nodes").session(&app.admin)).await;
    page.expect(200);
    let page = page.text();
    let removed = page
        .split("id=\"removed-nodes\"")
        .nth(1)
        .unwrap_or_else(|| panic!("{page}"));
    assert!(removed.contains(&hostname), "{page}");
    assert!(removed.contains("/forget"), "{page}");
    // Its page stays reachable.
    app.call(Call::get(&format!("/nodes/{gone}")).session(&app.viewer))
        .await
        .expect(200);

    // Forgetting is for admins, and only for removed nodes.
    app.call(Call::post(&format!("/nodes/{gone}/forget")).session(&app.operator))
        .await
        .expect(403);
    let swarm_node = support::node_id();
    app.call(Call::post(&format!("/nodes/{swarm_node}/forget")).session(&app.admin))
        .await
        .expect(409);
    app.call(Call::post(&format!("/nodes/{gone}/forget")).session(&app.admin))
        .await
        .expect(303);
    let nodes = app
        .call(Call::get("/api/nodes").bearer(&app.viewer.token))
        .await
        .json();
    assert!(
        !nodes["removed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["id"] == gone.as_str()),
        "{nodes}"
    );
    app.call(Call::get(&format!("/nodes/{gone}")).session(&app.viewer))
        .await
        .expect(404);
    let audit = app.audit().await;
    assert!(
        audit
            .iter()
            .any(|e| e["action"] == "forget-node" && e["target"] == gone.as_str()),
        "{audit:?}"
    );
}
