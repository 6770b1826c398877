//! "Memory above 90 % of the limit for M minutes" on the real engine, to a real webhook
//! receiver: a service limited to 64 MiB whose task holds 60 MiB in its `/dev/shm` (shared
//! memory is charged to the container and cannot be reclaimed: about 94 % of the limit,
//! never OOM-killed), `swarmkeeper agent` reading its cgroup (stats every 10 s, the default)
//! and `swarmkeeper server --alert-webhook`, each a process of its own.
//!
//! The rule's `for` is shortened from 5m to 20s through `PUT /api/alerts/rules`, as an admin
//! would on the Alerts page, and the agent reports every 5 s instead of 30 s: the test is
//! about the rule and its delivery, and stays under a minute and a half. The alert must not
//! arrive before the task has held the memory for 20 s, and must resolve once the task frees
//! it. Prints condition true (the 60 MiB written, seen from inside the container) → firing
//! message received, and memory freed → resolved message received.

mod support;

use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant, SystemTime};

use support::*;

const FOR: Duration = Duration::from_secs(20);
const HELD: u64 = 60 << 20;

/// The next message about `subject` from `rule` with `status`, within `within`.
fn wait_for(
    messages: &Receiver<(SystemTime, serde_json::Value)>,
    rule: &str,
    subject: &str,
    status: &str,
    within: Duration,
) -> (SystemTime, serde_json::Value) {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (at, body) = messages.recv_timeout(left).unwrap_or_else(|_| {
            panic!("no {status} {rule} message about {subject} within {within:?}")
        });
        if body["rule"] == rule && body["subject"] == subject && body["status"] == status {
            return (at, body);
        }
    }
}

#[test]
fn a_task_near_its_memory_limit_alerts_after_the_rules_duration_and_resolves() {
    let setup = AlertSetup::start("mem");
    let server = &setup.server;
    // The admin shortens the rule's duration; every other rule keeps its default.
    let session = server.login();
    let token = server.token(&session, "memory-rule");
    let (status, _, body) = server.call(
        "PUT /api/alerts/rules",
        &[
            format!("Authorization: Bearer {token}"),
            "Content-Type: application/json".into(),
        ],
        r#"{"memory_near_limit": {"for": "20s"}}"#,
    );
    assert_eq!(status, 200, "{body}");
    let (_, rules) = server.get("/api/alerts/rules", &token);
    let rules: serde_json::Value = serde_json::from_str(&rules).unwrap();
    assert_eq!(rules["memory_near_limit"]["for"], "20s", "{rules}");
    assert_eq!(rules["memory_near_limit"]["percent"], 90, "{rules}");

    // Reports every 5 s instead of 30 s, to keep the test short.
    let _agent = setup.agent(&["--interval", "5s"]);
    setup.create_service(
        "64M",
        "/bin/busybox dd if=/dev/zero of=/dev/shm/held bs=1M count=60 2>/dev/null; \
         exec /bin/busybox sleep 3600",
    );
    let AlertSetup {
        host,
        service,
        server,
        messages,
        cleanup: _cleanup,
        ..
    } = setup;
    // Condition true: the task's container holds the 60 MiB.
    let mut container = String::new();
    let tasks = || {
        std::process::Command::new("docker")
            .env("DOCKER_HOST", &host)
            .args([
                "service",
                "ps",
                "--no-trunc",
                "--format",
                "{{.CurrentState}} {{.Error}}",
            ])
            .arg(&service)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if container.is_empty() {
            container = docker(
                &host,
                &[
                    "ps",
                    "-q",
                    "--filter",
                    &format!("label=com.docker.swarm.service.name={service}"),
                ],
            );
        }
        let held = !container.is_empty()
            && std::process::Command::new("docker")
                .env("DOCKER_HOST", &host)
                .args(["exec", &container, "/bin/busybox", "stat", "-c", "%s"])
                .arg("/dev/shm/held")
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == HELD.to_string());
        if held {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the task does not hold 60 MiB after 60 s; its tasks: {}",
            tasks()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let held_at = SystemTime::now();
    let slot = format!("{service}.1");
    let (fired_at, alert) = wait_for(
        &messages,
        "memory-near-limit",
        &slot,
        "firing",
        Duration::from_secs(60),
    );
    let summary = alert["summary"].as_str().unwrap().to_string();
    let fired_after = fired_at.duration_since(held_at).unwrap_or_default();
    eprintln!(
        "memory held at ~94 % of the limit -> memory-near-limit alert received after {:.1} s \
         (for: 20s, agent reports every 5 s, stats every 10 s): {summary}",
        fired_after.as_secs_f64()
    );
    assert!(summary.contains("of its memory limit"), "{summary}");
    // Seen from inside, the 60 MiB are complete a little after the usage passed 90 %: a
    // second or two of slack.
    assert!(
        fired_after + Duration::from_secs(2) >= FOR,
        "the alert came {fired_after:?} after the memory was held, before the rule's 20 s"
    );
    // No OOM kill: the task held its memory below the limit.
    assert_eq!(
        docker(
            &host,
            &["inspect", "-f", "{{.State.OOMKilled}}", &container]
        ),
        "false"
    );

    docker(
        &host,
        &["exec", &container, "/bin/busybox", "rm", "/dev/shm/held"],
    );
    let freed_at = SystemTime::now();
    let (resolved_at, resolved) = wait_for(
        &messages,
        "memory-near-limit",
        &slot,
        "resolved",
        Duration::from_secs(60),
    );
    eprintln!(
        "memory freed -> resolved message received after {:.1} s: {}",
        resolved_at
            .duration_since(freed_at)
            .unwrap_or_default()
            .as_secs_f64(),
        resolved["summary"]
    );
    server.stop();
}
