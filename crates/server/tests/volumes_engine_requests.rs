//! The volumes page asks the engine once for the swarm's tasks, and for the services only when
//! a task mounts a volume (a task names its service by ID alone); never for the nodes, whose
//! hostnames the agents' reports carry. The "in use by a task" fact stays. The engine is the
//! host's, reached through a proxy on a socket of the test's own that counts the requests.

mod support;

use std::sync::{Arc, Mutex};

use support::{report, Call, TempDir, TestApp, TestService};
use swarmkeeper_report::ReportedVolume;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

/// The request lines (`GET /v1.41/tasks HTTP/1.1`) the proxy passed on, in order.
type Seen = Arc<Mutex<Vec<String>>>;

/// Passes every connection on `listener` to the engine's socket `engine`, noting the request
/// lines the clients send.
async fn proxy(listener: UnixListener, engine: String, seen: Seen) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        let engine = engine.clone();
        let seen = seen.clone();
        tokio::spawn(async move {
            let upstream = UnixStream::connect(&engine).await.unwrap();
            let (mut client_read, mut client_write) = client.into_split();
            let (mut up_read, mut up_write) = upstream.into_split();
            let requests = async move {
                let mut line = Vec::new();
                let mut buf = [0u8; 8192];
                loop {
                    let n = match client_read.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    for &b in &buf[..n] {
                        line.push(b);
                        if line.ends_with(b"\r\n") {
                            let text = String::from_utf8_lossy(&line);
                            if text.trim_end().ends_with("HTTP/1.1") && text.contains(" /") {
                                seen.lock().unwrap().push(text.trim_end().to_owned());
                            }
                            line.clear();
                        }
                    }
                    if up_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = up_write.shutdown().await;
            };
            let answers = async move {
                let _ = tokio::io::copy(&mut up_read, &mut client_write).await;
                let _ = client_write.shutdown().await;
            };
            tokio::join!(requests, answers);
        });
    }
}

/// How many of `seen` ask for the list at `path` (`/tasks`), whatever the API version and
/// filters.
fn asked(seen: &[String], path: &str) -> usize {
    seen.iter()
        .filter_map(|line| line.split(' ').nth(1))
        .map(|target| target.split('?').next().unwrap_or(target))
        .filter(|target| {
            let target = target.trim_start_matches('/');
            let target = match target.split_once('/') {
                Some((version, rest)) if version.starts_with('v') => rest,
                _ => target,
            };
            format!("/{target}") == path
        })
        .count()
}

/// Puts `DOCKER_HOST` back as it was when dropped.
struct RestoreHost(Option<String>);

impl Drop for RestoreHost {
    fn drop(&mut self) {
        match &self.0 {
            Some(host) => std::env::set_var("DOCKER_HOST", host),
            None => std::env::remove_var("DOCKER_HOST"),
        }
    }
}

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

    let dir = TempDir::new("engine-proxy");
    let socket = dir.path().join("docker.sock");
    let host = std::env::var("DOCKER_HOST").ok();
    let engine = host
        .as_deref()
        .and_then(|h| h.strip_prefix("unix://").map(str::to_owned))
        .unwrap_or_else(|| "/var/run/docker.sock".to_owned());
    let seen = Seen::default();
    tokio::spawn(proxy(
        UnixListener::bind(&socket).unwrap(),
        engine,
        seen.clone(),
    ));
    // The app's engine is found like the docker CLI finds it: this test binary's one test.
    // Dropped before the service, passed or not: cleaning up goes straight to the engine.
    let _restore = RestoreHost(host.clone());
    std::env::set_var("DOCKER_HOST", format!("unix://{}", socket.display()));
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

    seen.lock().unwrap().clear();
    let page = app
        .call(Call::get("/api/volumes").bearer(&app.viewer.token))
        .await;
    page.expect(200);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(asked(&seen, "/tasks"), 1, "{seen:?}");
    assert_eq!(asked(&seen, "/services"), 1, "{seen:?}");
    assert_eq!(asked(&seen, "/nodes"), 0, "{seen:?}");

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

    drop(_restore);
    drop(service);
    support::wait_for(
        &format!("volume {volume} removed"),
        std::time::Duration::from_secs(60),
        || support::try_docker(&["volume", "rm", "-f", &volume]).is_ok(),
    );
}
