//! The task page of a task whose child process the kernel's OOM killer killed while the main
//! process goes on (issue 14): Swarm's task says nothing (it runs; no exit, no error), the
//! engine's `State.OOMKilled` is about the main process only, but the agent counted the kill
//! in the container's cgroup. The task page, its JSON and the service page's task rows say
//! "1 process killed: out of memory (limit 16 MiB)". A service limited to 16 MiB whose shell
//! starts a child that reads 64 MiB into one buffer, then sleeps; `swarmkeeper agent` reading
//! its cgroup every second and reporting every 2 s to the test's `swarmkeeper server`.

// test lane: waiting (the agent's next reports after a kill: ~10 s of waiting, little CPU).

mod support;

use std::time::{Duration, Instant};

use support::*;

#[test]
fn a_child_process_killed_for_memory_is_said_on_the_task_and_service_pages() {
    let setup = AlertSetup::start("oomchildpage");
    let _agent = setup.agent(&["--interval", "2s", "--stats-interval", "1s"]);
    setup.create_service(
        "16M",
        "/bin/busybox dd if=/dev/zero of=/dev/null bs=64M count=1; exec /bin/busybox sleep 3600",
    );
    let AlertSetup {
        host,
        service,
        server,
        cleanup: _cleanup,
        ..
    } = setup;
    let token = server.token(&server.login(), "oom-child-page");
    let said = "1 process killed: out of memory (limit 16 MiB)";
    let started = Instant::now();
    let deadline = started + Duration::from_secs(90);
    let (task, page) = loop {
        let task = docker(
            &host,
            &[
                "service",
                "ps",
                "--no-trunc",
                "--filter",
                "desired-state=running",
                "--format",
                "{{.ID}}",
                &service,
            ],
        );
        if !task.is_empty() {
            let (status, body) = server.get(&format!("/api/tasks/{task}"), &token);
            assert_eq!(status, 200, "{body}");
            let page: serde_json::Value = serde_json::from_str(&body).unwrap();
            // The kill can be read before Swarm has the task running (it was once seen while
            // the task was still `starting`): wait for both.
            if page["processes_killed"] == said && page["state"] == "running" {
                break (task, page);
            }
            assert!(
                Instant::now() < deadline,
                "the task page never said the kill of a running task within 90 s: {page}"
            );
        }
        assert!(Instant::now() < deadline, "no running task of {service}");
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!(
        "child OOM kill said on the task page {:.1} s after the service was created",
        started.elapsed().as_secs_f64()
    );
    // The main process goes on: Swarm's task runs, with no exit and no error to show.
    assert!(page["exit"].is_null(), "{page}");
    assert_eq!(page["error_summary"], "", "{page}");

    let (status, html) = server.get(&format!("/tasks/{task}"), &token);
    assert_eq!(status, 200);
    assert!(
        html.contains(&format!("<dd id=\"oom-kills\">{said}</dd>")),
        "{html}"
    );
    let (status, body) = server.get(&format!("/api/services/{service}"), &token);
    assert_eq!(status, 200, "{body}");
    let view: serde_json::Value = serde_json::from_str(&body).unwrap();
    let row = view["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == task.as_str())
        .unwrap_or_else(|| panic!("no row of {task}: {view}"))
        .clone();
    assert_eq!(row["processes_killed"], said, "{row}");
    let (status, html) = server.get(&format!("/services/{service}"), &token);
    assert_eq!(status, 200);
    assert!(
        html.contains(&format!("<span class=\"oom-kills\">{said}</span>")),
        "{html}"
    );
    server.stop();
}
