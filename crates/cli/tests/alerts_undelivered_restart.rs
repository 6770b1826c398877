//! An alert message no channel got survives a restart of `swarmkeeper server` (issue #15): the
//! real server process, the real engine, a webhook receiver that is down when the alert fires
//! and up once the server is back.
//!
//! Before: the retries of an undelivered message lived only in the server's memory; the
//! alert's state (stored) said it fired, so after a restart nothing sent it again and the
//! receiver never heard of a firing alert. Now the waiting messages are stored whenever they
//! change and sent again from the start: the receiver gets the firing message once, and the
//! message's one history row says it was delivered after its failed attempts.

// test lane: waiting (a service that cannot be placed, a restart, little CPU).

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

const RULE: &str = "service-not-converged";

#[test]
fn an_undelivered_firing_message_is_sent_after_a_restart() {
    let mut setup = AlertSetup::start("undelivered");
    // The receiver's address, with nothing listening there yet: connection refused.
    let port = closed_port();
    let hook = format!("http://127.0.0.1:{port}/hook");
    setup.restart_server(
        server::Server::stop,
        Duration::ZERO,
        &[("SWARMKEEPER_ALERT_WEBHOOK", &hook)],
    );
    let token = setup.server.token(&setup.server.login(), "undelivered");
    setup.set_rules(&token, r#"{"service_not_converged": {"for": "1s"}}"#);
    setup.create_unplaceable_service();
    let service = setup.service.clone();

    // Fired, and its one row says the channel did not get it.
    let history = |server: &server::Server, token: &str| -> Vec<Value> {
        let (status, body) = server.get("/api/alerts/history", token);
        assert_eq!(status, 200, "{body}");
        let view: Value = serde_json::from_str(&body).unwrap();
        view["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["rule"] == RULE && r["subject"] == service.as_str())
            .cloned()
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let row = loop {
        let rows = history(&setup.server, &token);
        if let Some(row) = rows.first() {
            break row.clone();
        }
        assert!(Instant::now() < deadline, "no {RULE} message within 60 s");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(row["status"], "firing", "{row}");
    let delivery = row["delivery"].as_str().unwrap();
    assert!(
        delivery.starts_with("sent to 0 of 1 channel(s)")
            && delivery.contains("undelivered, retrying with back-off"),
        "{delivery}"
    );

    // The server stops (as a `docker service update` stops it); the receiver comes up while
    // it is down; the server starts again on the same state.
    let mut receiver = None;
    setup.restart_server(
        |running| {
            running.stop();
            let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
            receiver = Some(webhook_receiver_on(listener));
        },
        Duration::ZERO,
        &[("SWARMKEEPER_ALERT_WEBHOOK", &hook)],
    );
    let messages = receiver.unwrap();
    let started = Instant::now();
    let (_, body) = next_alert(&messages, RULE, &service, Duration::from_secs(30))
        .expect("the undelivered firing message was not sent after the restart");
    println!(
        "sent {:.1} s after the restart",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(body["status"], "firing", "{body}");
    assert!(
        next_alert(&messages, RULE, &service, Duration::from_secs(10)).is_none(),
        "sent once"
    );
    let token = setup.server.token(&setup.server.login(), "after-restart");
    let rows = history(&setup.server, &token);
    assert_eq!(rows.len(), 1, "one row for the one message: {rows:#?}");
    let delivery = rows[0]["delivery"].as_str().unwrap();
    assert!(
        delivery.contains("; channel alert-webhook-1: delivered at "),
        "{delivery}"
    );
}
