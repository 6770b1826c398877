//! `/volumes`: agents report each node's volumes, the server shows where each lives, how big
//! it is and which no container uses; a volume a running task mounts is in use whatever its
//! node last reported.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{report, Call, TestApp, TestService};
use swarmkeeper_report::ReportedVolume;

#[tokio::test]
async fn the_page_says_on_which_node_a_volume_lives_and_how_big_it_is() {
    let app = TestApp::new().await;
    app.post_report(&report("volnode1aaaaaaaaaaaaaaaaa", "node-1"))
        .await;
    let mut second = report("volnode2aaaaaaaaaaaaaaaaa", "node-2");
    second.volumes = Some(vec![ReportedVolume {
        name: "shop_db".into(),
        driver: "local".into(),
        mountpoint: "/srv/docker/volumes/shop_db/_data".into(),
        size_bytes: Some(5),
        ..Default::default()
    }]);
    app.post_report(&second).await;
    let mut old_agent = report("volnode3aaaaaaaaaaaaaaaaa", "node-3");
    old_agent.volumes = None;
    app.post_report(&old_agent).await;

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
    app.post_report(&second).await;
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
    app.post_report(&here).await;

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
    app.post_report(&here).await;
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

/// A volume a running task mounts is in use as soon as the task runs, whatever its node's
/// last report said, and its removal is refused naming the task, its service and its node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_a_task_mounts_is_in_use_and_its_refusal_names_the_task() {
    let app = TestApp::new().await;
    let volume = support::unique("busyvol");
    let mount = format!("type=volume,source={volume},target=/data");
    let service = TestService::create("volsvc", &["--mount", &mount]);
    service.wait_running(1);
    // The node reported the volume before the task started: no container on it.
    let node = support::node_id();
    let mut here = support::report(&node, "volhost");
    here.volumes = Some(vec![swarmkeeper_report::ReportedVolume {
        name: volume.clone(),
        driver: "local".into(),
        mountpoint: format!("/var/lib/docker/volumes/{volume}/_data"),
        size_bytes: None,
        ..Default::default()
    }]);
    app.post_report(&here).await;

    let listed: Value = app
        .call(Call::get("/api/volumes").bearer(&app.viewer.token))
        .await
        .json();
    let row = listed["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == volume.as_str())
        .unwrap_or_else(|| panic!("{volume} in {listed}"))
        .clone();
    assert_eq!(row["unused"], false, "{row}");
    assert_eq!(
        row["tasks"][0]["task"],
        format!("{}.1", service.name).as_str(),
        "{row}"
    );
    let page = app
        .call(Call::get("/volumes").session(&app.admin))
        .await
        .text();
    let line = page
        .split("<tr")
        .find(|row| row.contains(volume.as_str()))
        .unwrap_or_default();
    assert!(line.contains(&format!("{}.1", service.name)), "{line}");
    assert!(line.contains("not measured yet"), "{line}");
    assert!(!line.contains("Remove"), "{line}");

    let refused = app
        .call(Call::delete(&format!("/api/volumes/{volume}?node={node}")).bearer(&app.admin.token))
        .await
        .expect_json_error(409);
    assert!(
        refused.contains(&format!(
            "on node volhost is in use by task {0}.1 (service {0})",
            service.name
        )),
        "{refused}"
    );
    drop(service);
    wait_for_volume_free(&volume);
}

/// Removes the test's volume once the removed service's container has let go of it.
fn wait_for_volume_free(volume: &str) {
    let start = std::time::Instant::now();
    while support::try_docker(&["volume", "rm", volume]).is_err()
        && start.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(250));
    }
}
