//! `/volumes`: agents report each node's volumes, the server shows where each lives, how big
//! it is and which no container uses.

mod support;

use serde_json::{json, Value};
use support::{report, Call, TestApp, REPORT_SECRET};
use swarmkeeper_report::ReportedVolume;

async fn post(app: &TestApp, report: &swarmkeeper_report::NodeReport) {
    app.call(
        Call::post("/api/agent/report")
            .bearer(REPORT_SECRET)
            .body("application/json", serde_json::to_vec(report).unwrap()),
    )
    .await
    .expect(204);
}

#[tokio::test]
async fn the_page_says_on_which_node_a_volume_lives_and_how_big_it_is() {
    let app = TestApp::new().await;
    post(&app, &report("volnode1aaaaaaaaaaaaaaaaa", "node-1")).await;
    let mut second = report("volnode2aaaaaaaaaaaaaaaaa", "node-2");
    second.volumes = Some(vec![ReportedVolume {
        name: "shop_db".into(),
        driver: "local".into(),
        mountpoint: "/srv/docker/volumes/shop_db/_data".into(),
        size_bytes: Some(5),
        ..Default::default()
    }]);
    post(&app, &second).await;
    let mut old_agent = report("volnode3aaaaaaaaaaaaaaaaa", "node-3");
    old_agent.volumes = None;
    post(&app, &old_agent).await;

    let answer = app
        .call(Call::get("/api/volumes").bearer(&app.viewer.token))
        .await;
    answer.expect(200);
    let body = answer.json();
    let rows: Vec<(String, String, Value, bool)> = body["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_owned(),
                v["node"].as_str().unwrap().to_owned(),
                v["size_bytes"].clone(),
                v["unused"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("scratch".into(), "node-1".into(), json!(1 << 20), true),
            ("shop_db".into(), "node-1".into(), json!(3u64 << 30), false),
            ("shop_db".into(), "node-2".into(), json!(5), true),
        ],
        "{body}"
    );
    let db = &body["volumes"][1];
    assert_eq!(db["stack"], "shop");
    assert_eq!(db["node_key"], "volnode1aaaaaaaaaaaaaaaaa");
    assert_eq!(
        db["containers"],
        json!(["shop_db.1.k2x9a1b2c3d4e5f6g7h8i9j0k"])
    );
    assert_eq!(body["nodes_without_volumes"], json!(["node-3"]));
    assert_eq!(body["unused_bytes"], (1 << 20) + 5);

    // A newer report replaces what the node had.
    second.volumes = Some(vec![]);
    post(&app, &second).await;
    let body = app
        .call(Call::get("/api/volumes").bearer(&app.viewer.token))
        .await
        .json();
    assert_eq!(body["volumes"].as_array().unwrap().len(), 2, "{body}");

    // The page, for a viewer; nobody without a login.
    let page = app.call(Call::get("/volumes").session(&app.viewer)).await;
    page.expect(200);
    let html = page.text();
    assert!(
        html.contains("shop_db") && html.contains("3.0 GiB"),
        "{html}"
    );
    assert!(html.contains("unused"), "{html}");
    app.call(Call::get("/api/volumes")).await.expect(401);
}
