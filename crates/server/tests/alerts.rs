//! Alerts end to end: an agent report whose disk is above the high threshold while GC fell
//! short reaches a real HTTP receiver as the product's "firing" webhook payload, and the next
//! report below the threshold as "resolved", each within the 5 s.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;
use support::*;
use swarmkeeper_notify::Secret;
use swarmkeeper_report::{LastPass, NodeReport};
use tokio::sync::mpsc;

/// A webhook receiver on a port of its own: every JSON body posted to `/hook`, with when it
/// arrived.
async fn receiver() -> (SocketAddr, mpsc::UnboundedReceiver<(Instant, Value)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new()
        .route(
            "/hook",
            post(
                |State(tx): State<mpsc::UnboundedSender<(Instant, Value)>>,
                 Json(body): Json<Value>| async move {
                    let _ = tx.send((Instant::now(), body));
                },
            ),
        )
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, rx)
}

/// The next payload about `subject`, within 5 s (the alert latency); others (the
/// shared engine's own services and nodes) are skipped.
async fn next_about(
    rx: &mut mpsc::UnboundedReceiver<(Instant, Value)>,
    subject: &str,
) -> (Instant, Value) {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let (at, body) = rx.recv().await.expect("the receiver runs");
            if body["subject"] == subject {
                return (at, body);
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no alert about {subject} within 5 s"))
}

async fn post_report(app: &Router, report: &NodeReport) {
    let call = Call::post(swarmkeeper_report::REPORT_PATH)
        .bearer(REPORT_SECRET)
        .body("application/json", serde_json::to_vec(report).unwrap());
    send(app, call).await.expect(204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_gc_cannot_fix_fires_then_resolves_at_the_webhook() {
    let (addr, mut rx) = receiver().await;
    let dir = TempDir::new("alerts");
    let state = open_state_with_config(swarmkeeper_server::ServerConfig {
        alert_webhooks: vec![Secret::new(format!("http://{addr}/hook"))],
        ..config(dir.path(), Some(REPORT_SECRET))
    });
    let app = swarmkeeper_server::app(state);
    // An engine outside the swarm: its hostname is its key, so no other test's node meets it.
    let host = unique("alert-node");

    let mut full = report("", &host);
    full.disk.usage_percent = 92;
    full.high_threshold_percent = 85;
    full.last_pass = Some(LastPass {
        started_at: jiff::Timestamp::now(),
        space_trigger: Some("high-threshold".into()),
        usage_percent_after: 92,
        shortfall_bytes: 7 << 30,
        short_of_low_threshold: true,
        short_of_headroom: false,
    });
    let posted = Instant::now();
    post_report(&app, &full).await;
    let (at, firing) = next_about(&mut rx, &host).await;
    let firing_latency = at - posted;
    assert_eq!(firing["status"], "firing", "{firing}");
    assert_eq!(firing["rule"], "disk-gc-shortfall", "{firing}");
    let summary = firing["summary"].as_str().unwrap();
    assert!(
        summary.contains("92%") && summary.contains("85%"),
        "{summary}"
    );
    let started_at = firing["started_at"].as_str().unwrap();
    assert!(
        started_at.ends_with('Z') && started_at.parse::<jiff::Timestamp>().is_ok(),
        "{started_at}"
    );
    let mut keys: Vec<&str> = firing
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["rule", "started_at", "status", "subject", "summary"],
        "exactly the product's fields"
    );

    // The same condition again is not sent twice.
    post_report(&app, &full).await;

    let mut fine = report("", &host);
    fine.disk.usage_percent = 60;
    fine.last_pass = None;
    let posted = Instant::now();
    post_report(&app, &fine).await;
    let (at, resolved) = next_about(&mut rx, &host).await;
    let resolved_latency = at - posted;
    assert_eq!(
        resolved["status"], "resolved",
        "no duplicate firing first: {resolved}"
    );
    assert_eq!(resolved["rule"], "disk-gc-shortfall");
    assert_eq!(resolved["started_at"], started_at);
    println!(
        "alert latency, report received -> webhook received: firing {:.1} ms, resolved {:.1} ms",
        firing_latency.as_secs_f64() * 1e3,
        resolved_latency.as_secs_f64() * 1e3
    );
}
