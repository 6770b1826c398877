//! A typed `swarmkeeper.disk-pressure` label is refused where it was typed, never dropped
//! silently (tryout9 finding 2): the labels form re-renders 422 naming the line, the API answers
//! 400, and the node's labels stay as they were. (That a save keeps the label swarmkeeper set is
//! `node_admin`'s test.)

mod support;

use serde_json::json;
use support::{node_id, node_labels, Call, TestApp};

#[tokio::test]
async fn a_typed_disk_pressure_label_is_refused_at_its_line() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let node = node_id();
    let before = node_labels(&node);
    let refused = "swarmkeeper.disk-pressure is set by swarmkeeper only (pause the node with \
                   Availability instead); nothing saved";

    let page = app
        .call(
            Call::post(&format!("/nodes/{node}/labels"))
                .session(op)
                .form(&[(
                    "labels",
                    "lab.node=worker2\nzone=b\nswarmkeeper.disk-pressure=manual\n",
                )]),
        )
        .await;
    page.expect(422);
    let html = page.text();
    assert!(html.contains(&format!("line 3: {refused}")), "{html}");
    // What was typed is shown again, to fix.
    assert!(html.contains("zone=b"), "{html}");
    assert_eq!(node_labels(&node), before);

    let message = app
        .call(
            Call::put(&format!("/api/nodes/{node}/labels"))
                .bearer(&op.token)
                .json(
                    &json!({"labels": {"lab.node": "worker2", "swarmkeeper.disk-pressure": "1"}}),
                ),
        )
        .await
        .expect_json_error(400);
    assert_eq!(message, format!("labels: {refused}"));
    assert_eq!(node_labels(&node), before);
}
