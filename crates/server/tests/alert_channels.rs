//! Every channel kind end to end through the server, with real receivers on this machine: an
//! admin adds a webhook, Slack, Discord, ntfy, email and Alertmanager channel with the JSON
//! API (as the Alerts page posts them), an agent report makes a real condition fire (a disk at
//! 92 % after a GC pass that fell short) and the next report resolves it; each receiver is
//! asked what it got. The HTTP receiver (tests/fixtures/http_receiver.py of the notify crate)
//! stands in for Slack's, Discord's and ntfy's endpoints and checks their shapes; email goes
//! to aiosmtpd with STARTTLS and AUTH, trusting a private CA given in the channel; the
//! Alertmanager channel to Debian's prometheus-alertmanager, whose API lists the alert while
//! it fires and not once it resolved. Prints the latency per channel: report received →
//! message received.

#[path = "../../notify/tests/support/mod.rs"]
mod receivers;
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use receivers::{Alertmanager, Receiver, TestCa};
use serde_json::{json, Value};
use support::*;
use swarmkeeper_report::{LastPass, NodeReport};

const WAIT: Duration = Duration::from_secs(10);

/// A report of `host` at `percent`, after a GC pass that fell short when `short` (high
/// threshold 85 %).
fn disk_report(host: &str, percent: u8, short: bool) -> NodeReport {
    let mut r = report("", host);
    r.disk.usage_percent = percent;
    r.high_threshold_percent = 85;
    r.last_pass = short.then(|| LastPass {
        started_at: jiff::Timestamp::now(),
        space_trigger: Some("high-threshold".into()),
        usage_percent_after: percent,
        shortfall_bytes: 7 << 30,
        short_of_low_threshold: true,
        short_of_headroom: false,
    });
    r
}

/// What the HTTP receiver got about `host` on each of `paths`, within [`WAIT`]: the request
/// and when it arrived. Requests about anything else (the shared engine's own services) are
/// skipped.
fn http_got(receiver: &Receiver, host: &str, paths: &[&str]) -> BTreeMap<String, (Instant, Value)> {
    let mut got = BTreeMap::new();
    let end = Instant::now() + WAIT;
    while got.len() < paths.len() {
        let left = end.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "only {:?} of {paths:?} got {host}",
            got.keys()
        );
        let (at, request) = receiver.next(left);
        let path = request["path"].as_str().unwrap().to_string();
        if request.to_string().contains(host) && paths.contains(&path.as_str()) {
            assert!(
                got.insert(path.clone(), (at, request)).is_none(),
                "{path} got {host} twice"
            );
        }
    }
    got
}

/// The next mail about `host`, within [`WAIT`].
fn mail_about(smtp: &Receiver, host: &str) -> (Instant, Value) {
    let end = Instant::now() + WAIT;
    loop {
        let (at, mail) = smtp.next(end.saturating_duration_since(Instant::now()));
        if mail["data"].as_str().unwrap().contains(host) {
            return (at, mail);
        }
    }
}

/// Polls Alertmanager (every 20 ms) until `listed` says yes about its alerts of the
/// disk-gc-shortfall rule; when it first did.
fn alertmanager_until(am: &Alertmanager, listed: impl Fn(&[Value]) -> bool) -> Instant {
    let end = Instant::now() + WAIT;
    loop {
        if listed(&am.alerts("disk-gc-shortfall")) {
            return Instant::now();
        }
        assert!(
            Instant::now() < end,
            "alertmanager: {:?}",
            am.alerts("disk-gc-shortfall")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Each channel kind's latency from `posted`: the four HTTP kinds by their receiver's paths,
/// then email and Alertmanager (polled after the mail came: an upper bound).
fn latencies(
    posted: Instant,
    paths: &[&str; 4],
    got: &BTreeMap<String, (Instant, Value)>,
    mail_at: Instant,
    am_at: Instant,
) -> Vec<(&'static str, Duration)> {
    paths
        .iter()
        .zip(["webhook", "slack", "discord", "ntfy"])
        .map(|(path, kind)| (kind, got[*path].0 - posted))
        .chain([
            ("email", mail_at - posted),
            ("alertmanager", am_at - posted),
        ])
        .collect()
}

fn body(request: &Value) -> Value {
    serde_json::from_str(request["body"].as_str().unwrap()).unwrap()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_channel_kind_added_from_the_api_gets_a_real_alert_firing_then_resolved() {
    let http = Receiver::http();
    let ca = TestCa::new();
    let smtp = Receiver::smtp(&ca, "alerts", "pw-s3cr3t");
    let am = Alertmanager::start();
    let app = sealing_app().await;
    let admin = &app.admin.token;

    let channels = [
        json!({"name": "hook", "type": "webhook", "url": http.url("/hook/hook-s3cr3t")}),
        json!({"name": "slack", "type": "slack", "url": http.url("/services/T0/B0/slack-s3cr3t")}),
        json!({"name": "discord", "type": "discord",
               "url": http.url("/api/webhooks/1/discord-s3cr3t")}),
        json!({"name": "phone", "type": "ntfy", "url": http.url("/swarm-alerts"),
               "token": "tk_ntfy-s3cr3t"}),
        json!({"name": "mail", "type": "email", "host": "127.0.0.1", "port": smtp.port,
               "tls": "starttls", "username": "alerts", "password": "pw-s3cr3t",
               "from": "swarmkeeper <alerts@example.test>",
               "to": "ops@example.test, oncall@example.test", "ca_pem": ca.ca_pem()}),
        json!({"name": "am", "type": "alertmanager", "url": am.url(),
               "token": "am-bearer-s3cr3t"}),
    ];
    for channel in &channels {
        let added = app
            .call(
                Call::post("/api/alerts/channels")
                    .bearer(admin)
                    .json(channel),
            )
            .await;
        added.expect(201);
        assert!(!added.text().contains("s3cr3t"), "{}", added.text());
    }
    let listed = app.call(Call::get("/api/alerts").bearer(admin)).await;
    assert_eq!(listed.json()["channels"].as_array().unwrap().len(), 6);
    assert!(!listed.text().contains("s3cr3t"));

    let host = unique("channel-node");
    let paths = [
        "/hook/hook-s3cr3t",
        "/services/T0/B0/slack-s3cr3t",
        "/api/webhooks/1/discord-s3cr3t",
        "/swarm-alerts",
    ];

    // Firing.
    let posted = Instant::now();
    post_report(&app.router, &disk_report(&host, 92, true)).await;
    let got = http_got(&http, &host, &paths);
    let (mail_at, mail) = mail_about(&smtp, &host);
    let am_at = alertmanager_until(&am, |alerts| {
        alerts
            .iter()
            .any(|a| a["labels"]["subject"] == host.as_str() && a["status"]["state"] == "active")
    });

    let hook = body(&got[paths[0]].1);
    assert_eq!(hook["status"], "firing");
    assert_eq!(hook["rule"], "disk-gc-shortfall");
    assert_eq!(hook["subject"], host.as_str());
    let started_at = hook["started_at"].as_str().unwrap().to_string();
    let slack = body(&got[paths[1]].1)["text"].as_str().unwrap().to_string();
    assert!(
        slack.starts_with(&format!(
            ":rotating_light: *FIRING* `disk-gc-shortfall` {host}: "
        )),
        "{slack}"
    );
    let discord = body(&got[paths[2]].1);
    assert!(
        discord["content"].as_str().unwrap().contains(&host),
        "{discord}"
    );
    assert_eq!(discord["allowed_mentions"], json!({"parse": []}));
    let ntfy = &got[paths[3]].1;
    assert_eq!(
        ntfy["headers"]["title"],
        format!("FIRING disk-gc-shortfall {host}")
    );
    assert_eq!(ntfy["headers"]["priority"], "high");
    assert_eq!(ntfy["headers"]["authorization"], "Bearer tk_ntfy-s3cr3t");
    assert_eq!(mail["tls"], true, "STARTTLS before AUTH and MAIL");
    assert_eq!(mail["user"], "alerts");
    assert_eq!(
        mail["rcpt_tos"],
        json!(["ops@example.test", "oncall@example.test"])
    );
    let data = mail["data"].as_str().unwrap();
    assert!(
        data.contains("Subject: [FIRING] disk-gc-shortfall")
            && data.contains("status:  firing")
            && data.contains(&format!("subject: {host}")),
        "{data}"
    );
    let fired = latencies(posted, &paths, &got, mail_at, am_at);

    // Resolved. After the server's least gap between two evaluations, so the figure is the
    // delivery's, not the wait for the next evaluation.
    tokio::time::sleep(swarmkeeper_server::alerting::MIN_EVALUATION_GAP).await;
    let posted = Instant::now();
    post_report(&app.router, &disk_report(&host, 60, false)).await;
    let got = http_got(&http, &host, &paths);
    let (mail_at, mail) = mail_about(&smtp, &host);
    let am_at = alertmanager_until(&am, |alerts| {
        !alerts
            .iter()
            .any(|a| a["labels"]["subject"] == host.as_str())
    });
    let hook = body(&got[paths[0]].1);
    assert_eq!(hook["status"], "resolved", "no second firing first: {hook}");
    assert_eq!(hook["started_at"], started_at.as_str());
    assert!(body(&got[paths[1]].1)["text"]
        .as_str()
        .unwrap()
        .starts_with(":white_check_mark: *RESOLVED*"));
    assert!(body(&got[paths[2]].1)["content"]
        .as_str()
        .unwrap()
        .starts_with(&format!("[RESOLVED] disk-gc-shortfall {host}")));
    assert_eq!(
        got[paths[3]].1["headers"]["title"],
        format!("RESOLVED disk-gc-shortfall {host}")
    );
    let data = mail["data"].as_str().unwrap();
    assert!(
        data.contains("Subject: [RESOLVED] disk-gc-shortfall")
            && data.contains("status:  resolved"),
        "{data}"
    );
    let resolved = latencies(posted, &paths, &got, mail_at, am_at);

    // The history names each delivery; nothing the channels hold is in it.
    let mut history = Value::Null;
    for _ in 0..50 {
        history = app
            .call(Call::get("/api/alerts/history").bearer(admin))
            .await
            .json();
        let about = history["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["subject"] == host.as_str())
            .count();
        if about == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows: Vec<&Value> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["subject"] == host.as_str())
        .collect();
    assert_eq!(rows.len(), 2, "{history}");
    for row in rows {
        assert_eq!(row["delivery"], "sent to 6 of 6 channel(s)", "{row}");
    }
    assert!(!history.to_string().contains("s3cr3t"));

    for ((kind, firing), (_, resolved)) in fired.iter().zip(&resolved) {
        println!(
            "through the server, report received -> {kind} received: firing {}, resolved {}",
            ms(*firing),
            ms(*resolved)
        );
    }
}

/// The first request the HTTP receiver got on `path` that mentions `about`, within [`WAIT`];
/// requests about anything else (the shared engine's own alerts) are skipped.
fn http_next(receiver: &Receiver, path: &str, about: &str) -> Value {
    let end = Instant::now() + WAIT;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "{path} got nothing about {about}");
        let (_, request) = receiver.next(left);
        if request["path"] == path && request.to_string().contains(about) {
            return request;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_added_while_an_alert_fires_gets_it_and_its_test_shows_the_answer() {
    let http = Receiver::http();
    let app = sealing_app().await;
    let admin = &app.admin.token;
    let host = unique("late-channel-node");

    // The alert fires while no channel is there.
    post_report(&app.router, &disk_report(&host, 92, true)).await;
    let mut fired = false;
    for _ in 0..100 {
        let alerts = app
            .call(Call::get("/api/alerts").bearer(admin))
            .await
            .json();
        fired = alerts.to_string().contains(&host);
        if fired {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(fired, "the alert about {host} fired");

    // A webhook channel is added; its receiver answers 200 with a body.
    let path = "/status/200/late-s3cr3t";
    let added = app
        .call(
            Call::post("/api/alerts/channels")
                .bearer(admin)
                .json(&json!({"name": "late", "type": "webhook", "url": http.url(path)})),
        )
        .await;
    added.expect(201);
    let id = added.json()["id"].as_i64().unwrap();

    // Send test: what the receiver answered, never the channel's secret URL.
    let tested = app
        .call(
            Call::post(&format!("/api/alerts/channels/{id}/test"))
                .bearer(admin)
                .json(&json!({})),
        )
        .await;
    tested.expect(200);
    let outcome = tested.json();
    assert_eq!(outcome["ok"], true, "{outcome}");
    assert_eq!(
        outcome["answer"], "HTTP 200 OK: receiver says 200",
        "{outcome}"
    );
    assert!(
        outcome["message"]
            .as_str()
            .unwrap()
            .contains("the receiver answered HTTP 200 OK: receiver says 200"),
        "{outcome}"
    );
    assert!(!tested.text().contains("s3cr3t"), "{}", tested.text());
    http_next(&http, path, "a test message from swarmkeeper");

    // The alert that fired before the channel existed reaches it at the next evaluation,
    // not after the repeat interval (4 h).
    let caught_up = body(&http_next(&http, path, &host));
    assert_eq!(caught_up["status"], "firing", "{caught_up}");
    assert_eq!(caught_up["rule"], "disk-gc-shortfall");

    // Its resolution follows, once.
    tokio::time::sleep(swarmkeeper_server::alerting::MIN_EVALUATION_GAP).await;
    post_report(&app.router, &disk_report(&host, 60, false)).await;
    let resolved = body(&http_next(&http, path, &host));
    assert_eq!(
        resolved["status"], "resolved",
        "no second firing: {resolved}"
    );
    let more: Vec<Value> = http
        .drain(Duration::from_secs(4))
        .into_iter()
        .filter(|r| r.to_string().contains(&host))
        .collect();
    assert!(more.is_empty(), "nothing more about {host}: {more:?}");
}

/// Issue 15: after the server's key changed without a re-key, a channel sealed with the old
/// key cannot be opened; the alert-channel-unusable rule tells the channels that work (an
/// `--alert-webhook` and a channel added under the new key) at once, never the broken one,
/// and resolves, saying why, when the broken channel is removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_the_server_cannot_open_is_told_to_the_channels_that_work() {
    let http = Receiver::http();
    let app = sealing_app().await;
    let admin = &app.admin.token;
    let old = unique("old-key-hook");
    app.call(
        Call::post("/api/alerts/channels")
            .bearer(admin)
            .json(&json!({"name": old, "type": "webhook", "url": http.url("/old/old-s3cr3t")})),
    )
    .await
    .expect(201);

    // The server starts again on another key, with an --alert-webhook.
    app.state.shutdown.begin();
    let other =
        swarmkeeper_auth::SealingKey::from_secret(b"another key: thirty-two bytes or more, surely")
            .unwrap();
    let state = open_state_with_config(swarmkeeper_server::ServerConfig {
        secret_key: Some(other),
        alert_webhooks: vec![swarmkeeper_notify::Secret::new(
            http.url("/flag/flag-s3cr3t"),
        )],
        ..config(app.dir.path(), Some(REPORT_SECRET))
    });
    let router = swarmkeeper_server::app(state.clone());
    let new = unique("new-key-hook");
    send(
        &router,
        Call::post("/api/alerts/channels")
            .bearer(admin)
            .json(&json!({"name": new, "type": "webhook", "url": http.url("/new/new-s3cr3t")})),
    )
    .await
    .expect(201);
    let started = Instant::now();
    swarmkeeper_server::alerting::spawn(state.clone());

    let paths = ["/flag/flag-s3cr3t", "/new/new-s3cr3t"];
    let fired = http_got(&http, &old, &paths);
    for path in paths {
        let hook = body(&fired[path].1);
        assert_eq!(hook["status"], "firing", "{hook}");
        assert_eq!(hook["rule"], "alert-channel-unusable", "{hook}");
        assert_eq!(hook["subject"], old.as_str(), "{hook}");
        let summary = hook["summary"].as_str().unwrap();
        assert!(
            summary.starts_with(&format!("alert channel {old} gets no alerts: ")),
            "{summary}"
        );
    }
    let latency = fired.values().map(|(at, _)| *at - started).max().unwrap();

    // Removed: resolved, saying so, to the same channels.
    let page = send(&router, Call::get("/api/alerts").bearer(admin))
        .await
        .json();
    let id = page["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == old.as_str())
        .unwrap_or_else(|| panic!("{page}"))["id"]
        .as_i64()
        .unwrap();
    assert!(page["channels"].to_string().contains("cannot be opened"));
    send(
        &router,
        Call::delete(&format!("/api/alerts/channels/{id}")).bearer(admin),
    )
    .await
    .expect(204);
    let resolved = http_got(&http, &old, &paths);
    for path in paths {
        let hook = body(&resolved[path].1);
        assert_eq!(hook["status"], "resolved", "{hook}");
        assert_eq!(
            hook["summary"],
            format!("alert channel {old} was removed"),
            "{hook}"
        );
    }
    let more: Vec<Value> = http
        .drain(Duration::from_secs(4))
        .into_iter()
        .filter(|r| r.to_string().contains(&old) || r["path"] == "/old/old-s3cr3t")
        .collect();
    assert!(
        more.is_empty(),
        "nothing more, nothing to the broken channel: {more:?}"
    );
    state.shutdown.begin();
    println!(
        "server started on another key -> alert-channel-unusable received: {}",
        ms(latency)
    );
}
