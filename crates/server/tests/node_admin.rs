//! Changing a node through the whole router against the host's single-node swarm, without
//! disturbing it: the drain preview (read only), labels added and put back, availability set
//! to what it is, the last manager's demotion refused with the engine's words, and removal of
//! a node that is up refused; labels that would stop the dashboard need a confirmation.
//! Multi-node drains are for the lab (`lab/lab.sh`).

mod support;

use serde_json::{json, Value};
use support::{docker, node_id, node_labels, unique, Call, TestApp, TestService, SLEEP};

/// Both tests change the host node's labels and compare them before and after: one at a time.
static NODE_LABELS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn a_node_is_previewed_relabelled_and_guarded() {
    let _turn = NODE_LABELS.lock().await;
    let app = TestApp::new().await;
    let (v, op) = (&app.viewer, &app.operator);
    let node = node_id();
    let service = TestService::running("drainpv", &["--stop-grace-period", "1s"], SLEEP);
    service.wait_running(1);

    // The preview names the service's task; on this single-node swarm no other node
    // qualifies, so it stops rather than moves, and says why. A viewer may look.
    let preview = app
        .call(support::Call::get(&format!("/api/nodes/{node}/drain")).bearer(&v.token))
        .await;
    preview.expect(200);
    let preview = preview.json();
    let stopping = preview["stopping"].as_array().unwrap();
    let task = stopping
        .iter()
        .find(|t| t["service"] == service.name.as_str())
        .unwrap_or_else(|| panic!("{preview}"));
    assert!(
        task["fate"]
            .as_str()
            .unwrap()
            .starts_with("stops: would stay pending: no other node is ready and active"),
        "{preview}"
    );
    assert!(preview["moving"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["service"] != service.name.as_str()));
    let page = app
        .call(support::Call::get(&format!("/nodes/{node}/drain")).session(v))
        .await;
    page.expect(200);
    assert!(page.text().contains(&service.name));
    assert!(
        !page.text().contains("name=\"availability\""),
        "no button for a viewer"
    );

    // A viewer changes nothing.
    app.call(
        support::Call::post(&format!("/api/nodes/{node}/availability"))
            .bearer(&v.token)
            .json(&json!({"availability": "drain"})),
    )
    .await
    .expect_json_error(403);

    // Bad input names the field; nothing changes.
    let message = app
        .call(
            support::Call::post(&format!("/api/nodes/{node}/availability"))
                .bearer(&op.token)
                .json(&json!({"availability": "off"})),
        )
        .await
        .expect_json_error(400);
    assert_eq!(
        message,
        "availability: \"off\" is not one of active, pause, drain"
    );
    let before = node_labels(&node);
    let page = app
        .call(
            support::Call::post(&format!("/nodes/{node}/labels"))
                .session(op)
                .form(&[("labels", "zone=a\nbad key=1")]),
        )
        .await;
    page.expect(422);
    assert!(page.text().contains("line 2: the key"), "{}", page.text());
    assert_eq!(node_labels(&node), before);

    // Labels: one added through the API, then the old ones put back through the form.
    let key = unique("sk.test");
    let mut labels = before.as_object().cloned().unwrap_or_default();
    labels.insert(key.clone(), Value::from("1"));
    let answer = app
        .call(
            support::Call::put(&format!("/api/nodes/{node}/labels"))
                .bearer(&op.token)
                .json(&json!({"labels": labels})),
        )
        .await;
    answer.expect(200);
    assert_eq!(answer.json()["changed"], "labels");
    assert_eq!(node_labels(&node)[&key], "1");
    let lines = support::labels_text(&before);
    app.call(
        support::Call::post(&format!("/nodes/{node}/labels"))
            .session(op)
            .form(&[("labels", &lines)]),
    )
    .await
    .expect(303);
    assert!(
        node_labels(&node).get(&key).is_none(),
        "the label is gone again"
    );

    // Availability set to what it is: accepted and audited.
    let answer = app
        .call(
            support::Call::post(&format!("/api/nodes/{node}/availability"))
                .bearer(&op.token)
                .json(&json!({"availability": "active"})),
        )
        .await;
    answer.expect(200);
    assert_eq!(answer.json()["before"], "active");

    // The only manager cannot be demoted: the engine's refusal comes back.
    let refused = app
        .call(
            support::Call::post(&format!("/api/nodes/{node}/role"))
                .bearer(&op.token)
                .json(&json!({"role": "worker"})),
        )
        .await;
    assert!(refused.status.as_u16() >= 400, "{}", refused.text());
    assert!(refused.text().contains("manager"), "{}", refused.text());
    assert_eq!(
        docker(&["node", "inspect", "--format", "{{.Spec.Role}}", &node]),
        "manager"
    );

    // A node that is up is not removed.
    let message = app
        .call(support::Call::delete(&format!("/api/nodes/{node}")).bearer(&op.token))
        .await
        .expect_json_error(409);
    assert!(message.contains("demote it first"), "{message}");

    let audit = app.audit().await;
    let changes = audit
        .iter()
        .filter(|e| e["action"] == "manage-nodes")
        .count();
    assert_eq!(changes, 3, "labels twice and availability once: {audit:?}");

    // Swarmkeeper's disk-pressure mark survives a label save (tryout 7, entry 17): the form
    // shows it apart, not in the lines, and neither the form nor the API drops it. Only the
    // label is set here (the shared node stays active), and taken off again at the end.
    struct Unmark<'a>(&'a str);
    impl Drop for Unmark<'_> {
        fn drop(&mut self) {
            let _ = support::try_docker(&[
                "node",
                "update",
                "--label-rm",
                "swarmkeeper.disk-pressure",
                self.0,
            ]);
        }
    }
    let why = "disk 96% at or over 95% and GC could not free enough";
    docker(&[
        "node",
        "update",
        "--label-add",
        &format!("swarmkeeper.disk-pressure={why}"),
        &node,
    ]);
    let _unmark = Unmark(&node);
    let form = app
        .call(support::Call::get(&format!("/nodes/{node}/labels")).session(op))
        .await;
    form.expect(200);
    let form = form.text();
    assert!(form.contains("id=\"labels-kept\""), "{form}");
    let lines = form
        .split("<textarea")
        .nth(1)
        .and_then(|t| t.split("</textarea>").next())
        .unwrap();
    assert!(!lines.contains("disk-pressure"), "{lines}");
    let mut edited = before.as_object().cloned().unwrap_or_default();
    edited.insert(key.clone(), Value::from("2"));
    let lines: String = edited
        .iter()
        .map(|(k, v)| format!("{k}={}\n", v.as_str().unwrap()))
        .collect();
    app.call(
        support::Call::post(&format!("/nodes/{node}/labels"))
            .session(op)
            .form(&[("labels", &lines)]),
    )
    .await
    .expect(303);
    let labels = node_labels(&node);
    assert_eq!(labels[&key], "2");
    assert_eq!(labels["swarmkeeper.disk-pressure"], why, "{labels}");
    app.call(
        support::Call::put(&format!("/api/nodes/{node}/labels"))
            .bearer(&op.token)
            .json(&json!({"labels": before})),
    )
    .await
    .expect(200);
    let labels = node_labels(&node);
    assert!(labels.get(&key).is_none(), "{labels}");
    assert_eq!(labels["swarmkeeper.disk-pressure"], why, "{labels}");
    let page = app
        .call(support::Call::get(&format!("/nodes/{node}")).session(op))
        .await;
    page.expect(200);
    assert!(
        page.text()
            .contains(&format!("paused by swarmkeeper for disk pressure: {why}")),
        "{}",
        page.text()
    );
}

/// Labels that take a running service's placement away from its node — the dashboard's own
/// server here — are not saved without a confirmation, and the form and the API say which
/// tasks stop and that the dashboard does. Nothing is written to the node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_that_would_stop_the_dashboard_need_a_confirmation() {
    let _turn = NODE_LABELS.lock().await;
    let app = TestApp::new().await;
    let op = &app.operator;
    let node = support::node_id();
    let label = support::NodeLabel::add(&node, &support::unique("state"), "true");
    let constraint = format!("node.labels.{}==true", label.key);
    let server = TestService::create(
        "placed",
        &[
            "--constraint",
            &constraint,
            "--label",
            "swarmkeeper.server=true",
        ],
    );
    server.wait_running(1);
    let mut without = node_labels(&node);
    without.as_object_mut().unwrap().remove(&label.key);

    let refused = app
        .call(
            Call::put(&format!("/api/nodes/{node}/labels"))
                .bearer(&op.token)
                .json(&serde_json::json!({ "labels": without })),
        )
        .await
        .expect_json_error(409);
    assert!(
        refused.contains(&format!("{}.1 stops: would stay pending", server.name)),
        "{refused}"
    );
    assert!(refused.contains("this stops the dashboard"), "{refused}");
    assert!(refused.contains("\"confirm\": true"), "{refused}");

    let text = support::labels_text(&without);
    let form = app
        .call(
            Call::post(&format!("/nodes/{node}/labels"))
                .session(op)
                .form(&[("labels", &text)]),
        )
        .await;
    form.expect(409);
    let page = form.text();
    assert!(page.contains(r#"id="stops-dashboard""#), "{page}");
    assert!(page.contains(&server.name), "{page}");
    assert!(page.contains(r#"name="confirm" value="true""#), "{page}");

    let still = node_labels(&node);
    assert!(still.get(&label.key).is_some(), "{still}");
}

/// The host's swarm has one manager: demoting it is refused as the engine would, with a
/// sentence rather than the engine's gRPC text as a 502, and its page offers no demote.
#[tokio::test]
async fn the_only_manager_is_not_demoted_and_its_page_offers_no_demote() {
    let app = TestApp::new().await;
    let nodes = app
        .call(Call::get("/api/nodes").bearer(&app.admin.token))
        .await
        .json();
    let id = nodes["nodes"][0]["id"].as_str().unwrap().to_owned();
    let refused = app
        .call(
            Call::post(&format!("/api/nodes/{id}/role"))
                .bearer(&app.admin.token)
                .json(&json!({"role": "worker"})),
        )
        .await
        .expect_json_error(409);
    assert!(refused.contains("is the swarm's only manager"), "{refused}");
    let page = app
        .call(Call::get(&format!("/nodes/{id}")).session(&app.admin))
        .await
        .text();
    assert!(!page.contains("Demote to worker"), "{page}");
}
