//! Alert latency: from `Notifier::send` to the receiver having the message, per channel,
//! against the real receivers of the tests (Python HTTP receiver, aiosmtpd with STARTTLS and
//! AUTH, Debian's prometheus-alertmanager). A receiver "has" a message when its line reaches
//! this process (HTTP, SMTP) or when Alertmanager's API lists the alert: upper bounds.
//!
//! `cargo bench -p swarmkeeper-notify --bench latency`

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use jiff::Timestamp;
use support::{Alertmanager, Receiver, TestCa};
use swarmkeeper_alerts::{Message, RuleId, Status};
use swarmkeeper_notify::{
    Channel, ChannelKind, EmailChannel, Notifier, RetryPolicy, Secret, SmtpTls,
};

const RUNS: usize = 50;

fn message(n: usize) -> Message {
    Message {
        status: Status::Firing,
        rule: RuleId::OomKill,
        subject: format!("web.{n}"),
        summary: format!("task web.{n} on node w1 was OOM-killed"),
        started_at: Timestamp::now(),
        ended_at: None,
    }
}

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    println!(
        "{what:<14} n={:<3} p50 {:>7.2} ms  p95 {:>7.2} ms  max {:>7.2} ms",
        times.len(),
        at(0.5).as_secs_f64() * 1e3,
        at(0.95).as_secs_f64() * 1e3,
        times.last().unwrap().as_secs_f64() * 1e3
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let notifier = Notifier::new(RetryPolicy::default(), None).unwrap();
    let http = Receiver::http();
    let kinds = [
        (
            "webhook",
            ChannelKind::Webhook {
                url: Secret::new(http.url("/hook")),
            },
        ),
        (
            "slack",
            ChannelKind::Slack {
                webhook_url: Secret::new(http.url("/slack")),
            },
        ),
        (
            "discord",
            ChannelKind::Discord {
                webhook_url: Secret::new(http.url("/discord")),
            },
        ),
        (
            "ntfy",
            ChannelKind::Ntfy {
                topic_url: Secret::new(http.url("/topic")),
                token: None,
            },
        ),
    ];
    for (name, kind) in kinds {
        let channel = Channel {
            name: name.into(),
            kind,
        };
        let times = (0..RUNS)
            .map(|n| {
                let start = Instant::now();
                runtime
                    .block_on(notifier.send(&channel, &message(n)))
                    .unwrap();
                let (at, _) = http.next(Duration::from_secs(10));
                at - start
            })
            .collect();
        report(name, times);
    }

    let ca = TestCa::new();
    let smtp = Receiver::smtp(&ca, "alerts", "pw");
    let mail = Channel {
        name: "email".into(),
        kind: ChannelKind::Email(EmailChannel {
            host: "127.0.0.1".into(),
            port: smtp.port,
            tls: SmtpTls::Starttls,
            username: Some("alerts".into()),
            password: Some(Secret::new("pw")),
            from: "alerts@example.test".into(),
            to: vec!["ops@example.test".into()],
            ca_pem: Some(ca.ca_pem()),
        }),
    };
    let times = (0..RUNS)
        .map(|n| {
            let start = Instant::now();
            runtime.block_on(notifier.send(&mail, &message(n))).unwrap();
            let (at, _) = smtp.next(Duration::from_secs(10));
            at - start
        })
        .collect();
    report("email", times);

    let am = Alertmanager::start();
    let channel = Channel {
        name: "alertmanager".into(),
        kind: ChannelKind::Alertmanager {
            url: am.url(),
            bearer_token: None,
        },
    };
    let times = (0..RUNS)
        .map(|n| {
            let m = message(n);
            let start = Instant::now();
            runtime.block_on(notifier.send(&channel, &m)).unwrap();
            while !am
                .alerts("oom-kill")
                .iter()
                .any(|a| a["labels"]["subject"] == m.subject.as_str())
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            start.elapsed()
        })
        .collect();
    report("alertmanager", times);
}
