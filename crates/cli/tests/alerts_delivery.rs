//! Alert delivery with one channel down (issue #15, tryout 12 findings 5 and 6), on the real
//! engine with a real `swarmkeeper server` process and two webhook channels: one a port
//! nothing listens on (connection refused), one a receiver on this machine.
//!
//! Before: the firing message that failed for one channel was not retried for it alone; a
//! message that reached no channel was decided again at every evaluation (a history row and
//! 3 attempts every ~4 s), and its alert, never marked sent, resolved without a `resolved`
//! row. Now: the working receiver gets the firing message once, the history holds one row for
//! it ("undelivered, retrying"), and when the condition ends a resolved row is recorded and the
//! working receiver gets "resolved"; the channel that never had the firing message gets no
//! resolution (Alertmanager's rule), and the firing row says its message was dropped.

// test lane: waiting (a service that cannot be placed, ~40 s of evaluations, little CPU).

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

const RULE: &str = "service-not-converged";

/// The history rows about `subject`, oldest first.
fn history_of(server: &server::Server, token: &str, subject: &str) -> Vec<Value> {
    let (status, body) = server.get("/api/alerts/history", token);
    assert_eq!(status, 200, "{body}");
    let view: Value = serde_json::from_str(&body).unwrap();
    let mut rows: Vec<Value> = view["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["rule"] == RULE && r["subject"] == subject)
        .cloned()
        .collect();
    rows.reverse();
    rows
}

#[test]
fn a_channel_down_gets_retries_the_working_one_gets_firing_once_and_resolved() {
    let mut setup = AlertSetup::start("deliver");
    let closed = closed_port();
    let both = format!("http://127.0.0.1:{closed}/hook?token=abc,{}", setup.webhook);
    setup.restart_server(
        server::Server::stop,
        Duration::ZERO,
        &[("SWARMKEEPER_ALERT_WEBHOOK", &both)],
    );
    let server = &setup.server;
    let token = server.token(&server.login(), "deliver");
    setup.set_rules(&token, r#"{"service_not_converged": {"for": "1s"}}"#);
    setup.create_unplaceable_service();
    let service = setup.service.clone();
    let (_, fired) = next_alert(&setup.messages, RULE, &service, Duration::from_secs(60))
        .expect("no firing message reached the working receiver within 60 s");
    assert_eq!(fired["status"], "firing", "{fired}");

    // ~20 s: evaluations every 3 s, the channel down tried at 3, 9 and 21 s after.
    let quiet = Instant::now();
    let again = next_alert(&setup.messages, RULE, &service, Duration::from_secs(20));
    assert!(
        again.is_none(),
        "the working receiver got the alert again {:.1} s later: {again:?}",
        quiet.elapsed().as_secs_f64()
    );
    let rows = history_of(server, &token, &service);
    assert_eq!(rows.len(), 1, "one row for the one message: {rows:#?}");
    let delivery = rows[0]["delivery"].as_str().unwrap();
    assert!(
        delivery.starts_with("sent to 1 of 2 channel(s); channel alert-webhook-1")
            && delivery.contains("undelivered, retrying with back-off"),
        "{delivery}"
    );
    assert!(
        !delivery.contains("token=abc"),
        "a secret shown: {delivery}"
    );

    // The condition ends: the service goes.
    docker(&setup.host, &["service", "rm", &service]);
    let (_, resolved) = next_alert(&setup.messages, RULE, &service, Duration::from_secs(30))
        .expect("no resolved message reached the working receiver within 30 s");
    assert_eq!(resolved["status"], "resolved", "{resolved}");
    // The history row is written once the message's delivery is done.
    let deadline = Instant::now() + Duration::from_secs(10);
    let rows = loop {
        let rows = history_of(server, &token, &service);
        if rows.len() >= 2 || Instant::now() > deadline {
            break rows;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let statuses: Vec<&str> = rows.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["firing", "resolved"], "{rows:#?}");
    // Two right outcomes for the dead channel, by when the resolution is decided: its firing
    // message waiting for its next attempt (it never had it: the resolution is not sent there,
    // the firing message is dropped), or an attempt of it under way (it may get through: the
    // resolution replaces it and is retried there in turn). Which one a loaded machine sees
    // is timing; CI once saw the second.
    let dropped = rows[1]["delivery"]
        == "sent to 1 of 1 channel(s); not sent to channel alert-webhook-1: its firing message \
            never reached it";
    if dropped {
        assert!(
            rows[0]["delivery"].as_str().unwrap().ends_with(
                "; channel alert-webhook-1: dropped, the alert resolved before this message \
                 reached it"
            ),
            "{rows:#?}"
        );
    } else {
        let delivery = rows[1]["delivery"].as_str().unwrap();
        assert!(
            delivery.starts_with("sent to 1 of 2 channel(s); channel alert-webhook-1")
                && delivery.ends_with("undelivered, retrying with back-off"),
            "{rows:#?}"
        );
    }
    assert!(
        rows.iter()
            .all(|r| !r["delivery"].as_str().unwrap().contains("token=abc")),
        "a secret shown: {rows:#?}"
    );
    assert!(
        next_alert(&setup.messages, RULE, &service, Duration::from_secs(5)).is_none(),
        "nothing after the resolution"
    );
}
