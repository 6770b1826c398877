//! Draining a worker from the dashboard's API on a lab swarm at its defaults (`lab/lab.sh up`:
//! a manager and two workers): the drain preview names the tasks that will move, the drain
//! moves them to the other nodes (Swarm does the moving), and setting the worker active again
//! is accepted and audited. Runs as root (CI does); skips otherwise.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::server::Server;
use support::{is_root, tempdir, wait_until, SwarmLab};

const REPLICAS: usize = 6;

/// `(task id, node id)` of the service's running tasks.
fn running(lab: &SwarmLab, service: &str) -> Vec<(String, String)> {
    lab.docker(
        "manager",
        &[
            "service",
            "ps",
            "-q",
            "--no-trunc",
            "--filter",
            "desired-state=running",
            "--format",
            "{{.ID}} {{.Node}} {{.CurrentState}}",
            service,
        ],
    )
    .lines()
    .filter(|l| l.contains("Running"))
    .filter_map(|l| {
        let mut parts = l.split_whitespace();
        Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
    })
    .collect()
}

fn post_json(server: &Server, token: &str, path: &str, body: &str) -> (u16, Value) {
    let (status, _, answer) = server.call(
        &format!("POST {path}"),
        &[
            format!("Authorization: Bearer {token}"),
            "Content-Type: application/json".into(),
        ],
        body,
    );
    (status, serde_json::from_str(&answer).unwrap_or(Value::Null))
}

#[test]
fn a_worker_drained_from_the_dashboard_api_hands_its_tasks_over_and_comes_back() {
    if !is_root() {
        eprintln!("skipped: lab/lab.sh needs root");
        return;
    }
    let lab = SwarmLab::up("dr", &[]);
    let image = lab.push_image("drain/web:1", 0);
    let service = format!("drain{}", std::process::id());
    lab.docker(
        "manager",
        &[
            "service",
            "create",
            "--detach",
            "--name",
            &service,
            "--replicas",
            &REPLICAS.to_string(),
            &image,
            "/bin/busybox",
            "sleep",
            "3600",
        ],
    );
    wait_until("every replica running", Duration::from_secs(90), || {
        running(&lab, &service).len() == REPLICAS
    });
    let worker = lab.hostname("worker1").to_owned();
    let worker_id = lab.docker("manager", &["node", "inspect", "-f", "{{.ID}}", &worker]);
    let on_worker: Vec<String> = running(&lab, &service)
        .into_iter()
        .filter(|(_, node)| *node == worker)
        .map(|(id, _)| id)
        .collect();
    assert!(
        !on_worker.is_empty(),
        "Swarm spread {REPLICAS} replicas over three nodes, none on {worker}"
    );

    let root = tempdir("lab-drain");
    let server = Server::start_with(&root, &[("DOCKER_HOST", lab.host("manager"))]);
    let session = server.login();
    let token = server.token(&session, "lab");

    // The preview names exactly the tasks running there.
    let (status, body) = server.get(&format!("/api/nodes/{worker_id}/drain"), &token);
    assert_eq!(status, 200, "{body}");
    let preview: Value = serde_json::from_str(&body).unwrap();
    let mut previewed: Vec<String> = preview["moving"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["service"] == service.as_str())
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    previewed.sort();
    let mut expected = on_worker.clone();
    expected.sort();
    assert_eq!(previewed, expected, "{preview}");

    // Drain: Swarm moves the tasks; every replica runs again, none on the worker.
    let drained_at = Instant::now();
    let (status, changed) = post_json(
        &server,
        &token,
        &format!("/api/nodes/{worker_id}/availability"),
        r#"{"availability": "drain"}"#,
    );
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["after"], "drain", "{changed}");
    wait_until(
        "the replicas to run on the other nodes",
        Duration::from_secs(90),
        || {
            let now = running(&lab, &service);
            now.len() == REPLICAS && now.iter().all(|(_, node)| *node != worker)
        },
    );
    eprintln!(
        "drained {worker}: {} task(s) moved, all {REPLICAS} running elsewhere after {:.1?}",
        on_worker.len(),
        drained_at.elapsed()
    );

    // Active again: accepted, recorded; Swarm does not move running tasks back on its own.
    let (status, changed) = post_json(
        &server,
        &token,
        &format!("/api/nodes/{worker_id}/availability"),
        r#"{"availability": "active"}"#,
    );
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        lab.docker(
            "manager",
            &["node", "inspect", "-f", "{{.Spec.Availability}}", &worker]
        ),
        "active"
    );
    // A new task may go there again: scale up and see one land on the worker.
    lab.docker(
        "manager",
        &[
            "service",
            "scale",
            "--detach",
            &format!("{service}={}", REPLICAS * 2),
        ],
    );
    wait_until(
        "a new replica on the re-activated worker",
        Duration::from_secs(90),
        || {
            running(&lab, &service)
                .iter()
                .any(|(_, node)| *node == worker)
        },
    );
    let (status, audit) = server.audit(&token);
    assert_eq!(status, 200);
    assert!(
        audit.contains("drain") && audit.contains("active"),
        "{audit}"
    );
    server.stop();
    lab.docker("manager", &["service", "rm", &service]);
}
