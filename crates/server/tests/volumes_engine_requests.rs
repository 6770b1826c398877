//! The volumes page asks the engine once for the swarm's tasks, and for the services only when
//! a task mounts a volume (a task names its service by ID alone); never for the nodes, whose
//! hostnames the agents' reports carry. The "in use by a task" fact stays. The engine is the
//! host's, reached through a proxy on a socket of the test's own that counts the requests.

mod support;

use support::engine_proxy::EngineProxy;
use support::{report, Call, TestApp, TestService};
use swarmkeeper_report::ReportedVolume;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_volumes_page_asks_the_engine_for_tasks_and_services_only() {
    // The service, made with the docker CLI on the host's engine before the proxy is set.
    let volume = support::unique("pagevol");
    let mount = format!("type=volume,source={volume},target=/data");
    let service = TestService::running(
        "volreq",
        &["--mount", &mount],
        &["/bin/busybox", "sleep", "600"],
    );
    service.wait_running(1);

    // The app's engine is found like the docker CLI finds it: this test binary's one test.
    // Dropped before the service, passed or not: cleaning up goes straight to the engine.
    let proxy = EngineProxy::start(None);
    let app = TestApp::new().await;

    let node = support::node_id();
    let mut here = report(&node, "volreqhost");
    here.volumes = Some(vec![ReportedVolume {
        name: volume.clone(),
        driver: "local".into(),
        mountpoint: format!("/var/lib/docker/volumes/{volume}/_data"),
        size_bytes: Some(0),
        // As an agent reported before the task started: only the swarm's task list knows.
        containers: Vec::new(),
        ..Default::default()
    }]);
    // Stored as the report route stores it, without the alert evaluation the route starts
    // after a report on a task of its own: that one asks the engine too.
    app.state
        .store()
        .record_node_report(&here, jiff::Timestamp::now())
        .unwrap();

    proxy.clear();
    let page = app
        .call(Call::get("/api/volumes").bearer(&app.viewer.token))
        .await;
    page.expect(200);
    let seen = proxy.lines();
    assert_eq!(proxy.asked("GET", "/tasks"), 1, "{seen:?}");
    assert_eq!(proxy.asked("GET", "/services"), 1, "{seen:?}");
    assert_eq!(proxy.asked("GET", "/nodes"), 0, "{seen:?}");

    let body = page.json();
    let row = body["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == volume.as_str())
        .unwrap_or_else(|| panic!("{body}"))
        .clone();
    assert_eq!(row["unused"], false, "{row}");
    let tasks = row["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1, "{row}");
    assert_eq!(tasks[0]["service"], service.name.as_str(), "{row}");
    assert_eq!(tasks[0]["task"], format!("{}.1", service.name), "{row}");

    drop(proxy);
    drop(service);
    support::wait_for(
        &format!("volume {volume} removed"),
        std::time::Duration::from_secs(60),
        || support::try_docker(&["volume", "rm", "-f", &volume]).is_ok(),
    );
}
