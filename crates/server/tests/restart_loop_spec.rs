//! Tryout finding 5 on the real engine: the failed tasks of updates Swarm rolled back
//! (`rolled-back` tells of each) are not a restart loop of the spec the service runs again;
//! a loop of the spec it runs still pages `restart-loop`.

// test lane: waiting (five rolled-back updates and a crash loop: ~120 s of Swarm
// restart delays, little CPU).

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;
use swarmkeeper_notify::Secret;
use tokio::sync::mpsc;

type Received = mpsc::UnboundedReceiver<Value>;

/// The first `restart-loop` message about `service` (received since the start, or within
/// `limit`); `None` if none came.
async fn restart_loop(rx: &mut Received, service: &str, limit: Duration) -> Option<Value> {
    tokio::time::timeout(limit, async {
        loop {
            let body = rx.recv().await.expect("the receiver runs");
            if body["subject"] == service && body["rule"] == "restart-loop" {
                return body;
            }
        }
    })
    .await
    .ok()
}

/// `docker service update` of `service`, waiting for Swarm's outcome (a failed update that
/// Swarm rolled back makes the CLI fail: its answer is not checked).
async fn update(service: &str, args: &[&str]) {
    let mut all = vec![
        "service".to_string(),
        "update".into(),
        "--quiet".into(),
        "--detach=false".into(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    all.push(service.into());
    tokio::task::spawn_blocking(move || {
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let _ = try_docker(&all);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_updates_rolled_back_are_no_restart_loop_and_a_loop_of_the_running_spec_is() {
    let (addr, mut rx) = webhook_receiver().await;
    let dir = TempDir::new("restart-loop-spec");
    let state = open_state_with_config(swarmkeeper_server::ServerConfig {
        alert_webhooks: vec![Secret::new(format!("http://{addr}/hook"))],
        ..config(dir.path(), Some(REPORT_SECRET))
    });
    let app = swarmkeeper_server::app(state);
    // A report starts the evaluations (every 3 s from then on).
    post_report(&app, &report("", &unique("rlspec-node"))).await;
    let service = TestService::running("rlspec", &["--restart-delay", "1s"], SLEEP);
    service.wait_running(1);
    let name = service.name.as_str();
    // Five updates to a crashing command, each rolled back by Swarm at its first failure.
    let started = Instant::now();
    for n in 0..5 {
        let crash = format!("/bin/busybox sh -c 'exit {}'", n + 1);
        update(
            name,
            &[
                "--update-failure-action",
                "rollback",
                "--update-monitor",
                "3s",
                "--args",
                &crash,
            ],
        )
        .await;
        // Swarm rolls back at a failed task: each update made at least one task end.
        let rolled_back = name.to_owned();
        tokio::task::spawn_blocking(move || {
            wait_for(
                &format!("the rollback of crashing update {}", n + 1),
                Duration::from_secs(60),
                || {
                    docker(&[
                        "service",
                        "inspect",
                        "--format",
                        "{{.UpdateStatus.State}}",
                        &rolled_back,
                    ]) == "rollback_completed"
                },
            )
        })
        .await
        .unwrap();
    }
    let paged = restart_loop(&mut rx, name, Duration::from_secs(8)).await;
    assert!(
        paged.is_none(),
        "restart-loop for the rolled-back updates' failed tasks: {paged:?}"
    );
    eprintln!(
        "5 failed updates rolled back in {:.1} s (a failed task each at least): no restart-loop",
        started.elapsed().as_secs_f64()
    );
    // The control: the spec the service runs loops (no rollback this time).
    update(
        name,
        &[
            "--update-failure-action",
            "continue",
            "--args",
            "/bin/busybox sh -c 'sleep 1; exit 7'",
        ],
    )
    .await;
    let looped = Instant::now();
    let paged = restart_loop(&mut rx, name, Duration::from_secs(60))
        .await
        .expect("no restart-loop for a loop of the running spec within 60 s");
    assert_eq!(paged["status"], "firing", "{paged}");
    eprintln!(
        "a loop of the running spec paged {:.1} s after its update: {}",
        looped.elapsed().as_secs_f64(),
        paged["summary"]
    );
}
