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
    // A node the swarm does not know (removed, or never joined) still has its page, from its
    // report alone.
    let page = app
        .call(Call::get("/api/nodes/volnode1aaaaaaaaaaaaaaaaa").bearer(&app.viewer.token))
        .await;
    page.expect(200);
    assert_eq!(page.json()["hostname"], "node-1");
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

/// Removes a volume and the container of the test, whatever happened.
struct Cleanup(Vec<String>, Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.1 {
            let _ = support::try_docker(&["rm", "-f", c]);
        }
        for v in &self.0 {
            let _ = support::try_docker(&["volume", "rm", "-f", v]);
        }
    }
}

#[tokio::test]
async fn an_admin_removes_an_unused_volume_on_its_node_and_one_in_use_is_refused() {
    let app = TestApp::new().await;
    let image = support::test_image();
    let unused = support::unique("vol-unused");
    let used = support::unique("vol-used");
    let holder = support::unique("vol-holder");
    let _cleanup = Cleanup(vec![unused.clone(), used.clone()], vec![holder.clone()]);
    support::docker(&["volume", "create", &unused]);
    support::docker(&["volume", "create", &used]);
    // A container that is not running still holds its volume.
    support::docker(&[
        "create",
        "--name",
        &holder,
        "-v",
        &format!("{used}:/data"),
        image,
    ]);

    // The host's node reports both volumes, the used one as unused (as an agent would until
    // its next breakdown): the engine's own refusal must still hold.
    let node = support::node_id();
    let mut here = report(&node, "volhost");
    let reported = |name: &str, containers: Vec<String>| ReportedVolume {
        name: name.into(),
        driver: "local".into(),
        mountpoint: format!("/var/lib/docker/volumes/{name}/_data"),
        size_bytes: Some(0),
        containers,
        ..Default::default()
    };
    here.volumes = Some(vec![reported(&unused, vec![]), reported(&used, vec![])]);
    post(&app, &here).await;

    // Operators may not; viewers see no button; admins do.
    app.call(Call::delete(&format!("/api/volumes/{unused}")).bearer(&app.operator.token))
        .await
        .expect_json_error(403);
    let page = app.call(Call::get("/volumes").session(&app.viewer)).await;
    assert!(!page.text().contains("Remove</button>"));
    let page = app.call(Call::get("/volumes").session(&app.admin)).await;
    let confirm = format!("/volumes/{unused}/remove?node={node}");
    assert!(page.text().contains(&confirm), "{}", page.text());
    // The list carries no form per row: each unused volume links to its removal page.
    assert!(
        !page.text().contains("/remove\" class=\"inline\""),
        "{}",
        page.text()
    );
    assert_eq!(
        page.text().matches("<form").count(),
        1,
        "the log out form only"
    );
    let page = app.call(Call::get(&confirm).session(&app.admin)).await;
    assert!(
        page.text().contains(&format!(
            "Remove volume {unused} on <a href=\"/nodes/{node}\">volhost</a>?"
        )),
        "{}",
        page.text()
    );
    assert!(
        page.text().contains(&format!("action=\"{confirm}\"")),
        "{}",
        page.text()
    );
    // Not to an operator, and not for a volume in use.
    app.call(Call::get(&confirm).session(&app.operator))
        .await
        .expect(403);

    // In use by the engine's account: 409 naming the container; the volume stays.
    let refused = app
        .call(Call::delete(&format!("/api/volumes/{used}")).bearer(&app.admin.token))
        .await
        .expect_json_error(409);
    assert!(refused.contains("in use"), "{refused}");
    assert!(support::try_docker(&["volume", "inspect", &used]).is_ok());

    // In use by the report's account: refused before any engine call, naming the service.
    here.volumes = Some(vec![
        reported(&unused, vec![]),
        reported(&used, vec![format!("shop_db.1.{holder}")]),
    ]);
    post(&app, &here).await;
    let refused = app
        .call(Call::delete(&format!("/api/volumes/{used}")).bearer(&app.admin.token))
        .await
        .expect_json_error(409);
    assert!(refused.contains("services shop_db"), "{refused}");

    // The unused one goes, through the page's form, and leaves the list at once.
    let answer = app
        .call(
            Call::post(&format!("/volumes/{unused}/remove?node={node}"))
                .session(&app.admin)
                .form(&[]),
        )
        .await;
    answer.expect(303);
    assert!(support::try_docker(&["volume", "inspect", &unused]).is_err());
    let listed = app
        .call(Call::get("/api/volumes").bearer(&app.viewer.token))
        .await
        .json();
    assert!(
        !listed["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == unused.as_str()),
        "{listed}"
    );
    let audit = app.audit().await;
    assert!(
        audit.iter().any(|e| e["action"] == "remove-volumes"
            && e["target"] == unused.as_str()
            && e["detail"].as_str().unwrap().contains("removed")),
        "{audit:?}"
    );
    // Gone: 404.
    app.call(Call::delete(&format!("/api/volumes/{unused}")).bearer(&app.admin.token))
        .await
        .expect_json_error(404);
}
