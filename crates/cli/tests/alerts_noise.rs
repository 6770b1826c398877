//! Alert noise a new user's tryout found (issue #15), on the real engine with a real
//! `swarmkeeper server` process and a webhook receiver on this machine:
//!
//! - finding 1: a restart of the server resolved a firing `restart-loop` alert 3 s after the
//!   start (its first listing shows at most 4 ended tasks of a slot, the rule wants 5), then
//!   fired it again as a new alert;
//! - finding 12: an operator's own rollback (`POST /api/services/{name}/rollback`, the service
//!   page's "Roll back") paged `rolled-back`, while a failed update Swarm rolled back must.

// test lane: waiting (a crash loop across a server restart: ~75 s of Swarm restart
// delays, little CPU).

mod support;

use std::time::{Duration, Instant};

use support::*;

fn timestamp(value: &serde_json::Value) -> jiff::Timestamp {
    value.as_str().expect("a time").parse().expect("RFC 3339")
}

#[test]
fn a_restart_loop_stays_firing_across_a_server_restart_and_is_not_sent_again() {
    let mut setup = AlertSetup::start("loopre");
    // Exits at once: Swarm starts a new task after its default 5 s restart delay.
    setup.create_service("64M", "exit 1");
    let created = Instant::now();
    let fired = next_alert(
        &setup.messages,
        "restart-loop",
        &setup.service,
        Duration::from_secs(120),
    )
    .expect("no restart-loop alert within 120 s")
    .1;
    assert_eq!(fired["status"], "firing", "{fired}");
    let started_at = timestamp(&fired["started_at"]);
    eprintln!(
        "restart-loop fired {:.1} s after the service was created: {}",
        created.elapsed().as_secs_f64(),
        fired["summary"]
    );

    // A graceful restart, as `docker service update --force swarmkeeper_server` does it, down
    // for two of the loop's restarts.
    setup.restart_server(server::Server::stop, Duration::from_secs(12), &[]);
    let (server, service) = (&setup.server, &setup.service);
    let token = server.token(&server.login(), "after-restart");
    // Before: resolved 3 s after the start, fired again as new some seconds later.
    let sent = next_alert(
        &setup.messages,
        "restart-loop",
        service,
        Duration::from_secs(40),
    );
    assert!(
        sent.is_none(),
        "a restart sent {sent:?} about a loop that went on"
    );
    let alert = ongoing_alert(server, &token, "restart-loop", service)
        .expect("the restart forgot the firing restart-loop alert");
    assert!(!alert["firing_since"].is_null(), "{alert}");
    assert_eq!(
        timestamp(&alert["active_since"]).as_second(),
        started_at.as_second(),
        "the same alert, not a new one: {alert}"
    );
    let (status, body) = server.get("/api/alerts/history", &token);
    assert_eq!(status, 200, "{body}");
    let history: serde_json::Value = serde_json::from_str(&body).unwrap();
    let about: Vec<&serde_json::Value> = history["history"]
        .as_array()
        .expect("the history")
        .iter()
        .filter(|m| m["rule"] == "restart-loop" && m["subject"] == service.as_str())
        .collect();
    assert_eq!(
        about.len(),
        1,
        "one firing message, nothing else: {about:?}"
    );
    eprintln!(
        "restart-loop across a server restart (down 12 s, watched 40 s after): still firing \
         since {started_at}, nothing sent"
    );
    setup.server.stop();
}

#[test]
fn an_operators_rollback_sends_nothing_and_a_failed_update_still_pages() {
    let setup = AlertSetup::start("opback");
    setup.create_service("64M", "exec /bin/busybox sleep 3600");
    let update = |args: &[&str]| {
        let mut all = vec!["service", "update", "--quiet"];
        all.extend_from_slice(args);
        all.push(&setup.service);
        docker(&setup.host, &all);
    };
    let state = || {
        docker(
            &setup.host,
            &[
                "service",
                "inspect",
                "--format",
                "{{.UpdateStatus.State}}",
                &setup.service,
            ],
        )
    };
    let wait_for = |wanted: &str| {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let now = state();
            if now == wanted {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} is {now}, not {wanted}",
                setup.service
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    };
    // A good update, then the operator takes it back from the dashboard's API.
    update(&["--detach=false", "--env-add", "V=2"]);
    let token = setup.server.token(&setup.server.login(), "rollback");
    let (status, _, body) = setup.server.call(
        &format!("POST /api/services/{}/rollback", setup.service),
        &[
            format!("Authorization: Bearer {token}"),
            "Content-Type: application/json".into(),
        ],
        "{}",
    );
    assert_eq!(status, 200, "{body}");
    wait_for("rollback_completed");
    let sent = next_alert(
        &setup.messages,
        "rolled-back",
        &setup.service,
        Duration::from_secs(12),
    );
    assert!(
        sent.is_none(),
        "the operator's own rollback paged: {sent:?}"
    );
    assert!(ongoing_alert(&setup.server, &token, "rolled-back", &setup.service).is_none());

    // A failed update Swarm rolls back itself still pages; it starts well after the
    // operator's rollback (`ROLLBACK_REQUEST_SKEW`).
    std::thread::sleep(Duration::from_secs(5));
    update(&[
        "--detach",
        "--update-failure-action",
        "rollback",
        "--update-monitor",
        "5s",
        "--args",
        "/bin/busybox sh -c 'exit 1'",
    ]);
    let updated = Instant::now();
    let alert = next_alert(
        &setup.messages,
        "rolled-back",
        &setup.service,
        Duration::from_secs(120),
    )
    .expect("a failed update that Swarm rolled back sent no rolled-back alert")
    .1;
    assert_eq!(alert["status"], "firing", "{alert}");
    assert_eq!(state(), "rollback_completed");
    eprintln!(
        "operator's rollback: nothing sent; failed update rolled back by Swarm: paged {:.1} s \
         after the update: {}",
        updated.elapsed().as_secs_f64(),
        alert["summary"]
    );
    setup.server.stop();
}
