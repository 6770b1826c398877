//! The nodes list and a node's page as agents' reports and the swarm make them, through the
//! whole router against the host's single-node swarm.

mod support;

use serde_json::Value;
use support::{report_json, unique, Call, TestApp, REPORT_SECRET};

/// A node Swarm no longer lists (tryout 7, entry 12): out of the node list and the overview,
/// under "Removed nodes" with its last report, until an admin forgets it (audited). The
/// removed node is a report whose Swarm node ID the host's swarm does not have.
#[tokio::test]
async fn a_removed_node_leaves_the_lists_until_an_admin_forgets_it() {
    let app = TestApp::new().await;
    let gone = unique("qfgone");
    let hostname = unique("removed-worker");
    app.call(
        Call::post("/api/agent/report")
            .bearer(REPORT_SECRET)
            .json(&report_json(&gone, &hostname)),
    )
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

/// The nodes list and the node page say the same "last GC pass": the pass the agent last
/// reported, also one that had nothing to free (no stored run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nodes_list_and_the_node_page_share_the_last_gc_pass() {
    let app = TestApp::new().await;
    let hostname = support::unique("gcpass");
    let mut report = support::report("", &hostname);
    report.gc_runs.clear();
    let pass_at = report.reported_at - jiff::SignedDuration::from_secs(40);
    report.last_pass = Some(swarmkeeper_report::LastPass {
        started_at: pass_at,
        space_trigger: None,
        usage_percent_after: 60,
        shortfall_bytes: 0,
        short_of_low_threshold: false,
        short_of_headroom: false,
    });
    app.post_report(&report).await;
    let key = format!("hostname:{hostname}");
    let row = app.node_row(&key).await;
    let node: Value = app
        .call(Call::get(&format!("/api/nodes/{key}")).bearer(&app.viewer.token))
        .await
        .json();
    let want = Value::String(pass_at.to_string());
    assert_eq!(row["last_gc"], want, "{row}");
    assert_eq!(node["last_pass"]["started_at"], want, "{node}");
    assert_eq!(node["last_gc"], want, "{node}");
    let list = app
        .call(Call::get("/nodes").session(&app.viewer))
        .await
        .text();
    let our_row = list
        .rsplit(hostname.as_str())
        .next()
        .and_then(|rest| rest.split("</tr>").next())
        .unwrap_or_else(|| panic!("{hostname} in {list}"));
    assert!(!our_row.contains("never"), "{our_row}");
    assert!(our_row.contains("ago"), "{our_row}");
}
