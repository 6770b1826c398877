//! Every channel against a real receiver on this machine: a Python HTTP server for the webhook,
//! Slack, Discord and ntfy shapes, aiosmtpd with STARTTLS and AUTH for email, and Debian's
//! prometheus-alertmanager.

mod support;

use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde_json::json;
use support::{Alertmanager, Receiver, TestCa};
use swarmkeeper_alerts::{Message, RuleId, Status};
use swarmkeeper_notify::{
    Channel, ChannelKind, EmailChannel, Notifier, Problem, RetryPolicy, Secret, SmtpTls,
};

const WAIT: Duration = Duration::from_secs(10);

fn notifier() -> Notifier {
    Notifier::new(
        RetryPolicy {
            timeout: Duration::from_secs(2),
            attempts: 3,
            first_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(200),
        },
        None,
    )
    .unwrap()
}

fn message(status: Status) -> Message {
    Message {
        status,
        rule: RuleId::NodeDown,
        subject: "worker-1".into(),
        summary: "node worker-1 is down".into(),
        started_at: "2026-11-26T12:00:00Z".parse().unwrap(),
        ended_at: (status == Status::Resolved).then(Timestamp::now),
    }
}

fn channel(name: &str, kind: ChannelKind) -> Channel {
    let channel = Channel {
        name: name.into(),
        kind,
    };
    channel.validate().unwrap();
    channel
}

#[tokio::test(flavor = "multi_thread")]
async fn http_channels_deliver_their_shapes_to_a_real_receiver() {
    let receiver = Receiver::http();
    let notifier = notifier();
    let firing = message(Status::Firing);

    let webhook = channel(
        "hook",
        ChannelKind::Webhook {
            url: Secret::new(receiver.url("/hook/token-s3cr3t")),
        },
    );
    let sent = Instant::now();
    let delivery = notifier.send(&webhook, &firing).await.unwrap();
    let (at, got) = receiver.next(WAIT);
    eprintln!("webhook: received {:?} after send()", at - sent);
    assert_eq!(delivery.attempts, 1);
    assert_eq!(delivery.answer, "HTTP 204 No Content");
    assert_eq!(got["path"], "/hook/token-s3cr3t");
    assert_eq!(got["headers"]["content-type"], "application/json");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(got["body"].as_str().unwrap()).unwrap(),
        json!({
            "status": "firing",
            "rule": "node-down",
            "subject": "worker-1",
            "summary": "node worker-1 is down",
            "started_at": "2026-11-26T12:00:00Z"
        })
    );

    let slack = channel(
        "slack",
        ChannelKind::Slack {
            webhook_url: Secret::new(receiver.url("/services/T0/B0/XXXX")),
        },
    );
    notifier.send(&slack, &firing).await.unwrap();
    let (_, got) = receiver.next(WAIT);
    let body: serde_json::Value = serde_json::from_str(got["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        body["text"],
        ":rotating_light: *FIRING* `node-down` worker-1: node worker-1 is down\n\
         since 2026-11-26T12:00:00Z"
    );

    let discord = channel(
        "discord",
        ChannelKind::Discord {
            webhook_url: Secret::new(receiver.url("/api/webhooks/1/tok")),
        },
    );
    notifier
        .send(&discord, &message(Status::Resolved))
        .await
        .unwrap();
    let (_, got) = receiver.next(WAIT);
    let body: serde_json::Value = serde_json::from_str(got["body"].as_str().unwrap()).unwrap();
    assert!(body["content"]
        .as_str()
        .unwrap()
        .starts_with("[RESOLVED] node-down worker-1: node worker-1 is down"));
    assert_eq!(body["allowed_mentions"], json!({"parse": []}));

    let ntfy = channel(
        "phone",
        ChannelKind::Ntfy {
            topic_url: Secret::new(receiver.url("/swarm-alerts")),
            token: Some(Secret::new("tk_abc")),
        },
    );
    notifier.send(&ntfy, &firing).await.unwrap();
    let (_, got) = receiver.next(WAIT);
    assert_eq!(got["path"], "/swarm-alerts");
    assert_eq!(got["headers"]["title"], "FIRING node-down worker-1");
    assert_eq!(got["headers"]["priority"], "high");
    assert_eq!(got["headers"]["authorization"], "Bearer tk_abc");
    assert!(got["body"]
        .as_str()
        .unwrap()
        .starts_with("node worker-1 is down\nsince 2026-11-26T12:00:00Z"));

    // What a receiver answered with a body: its status and the body's start; the channel's
    // URL is never part of it, even when the receiver repeats it.
    let answering = channel(
        "answering",
        ChannelKind::Webhook {
            url: Secret::new(receiver.url("/status/200/tok-XYZ")),
        },
    );
    let delivery = notifier.send(&answering, &firing).await.unwrap();
    receiver.next(WAIT);
    assert_eq!(delivery.answer, "HTTP 200 OK: receiver says 200");

    // All four at once.
    let results = notifier
        .send_to_all(&[webhook, slack, discord, ntfy], &firing)
        .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(receiver.drain(Duration::from_millis(500)).len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejection_names_the_channel_and_what_the_receiver_said_and_is_not_retried() {
    let receiver = Receiver::http();
    let hook = channel(
        "ops-hook",
        ChannelKind::Webhook {
            url: Secret::new(receiver.url("/status/400/token-s3cr3t")),
        },
    );
    let err = notifier()
        .send(&hook, &message(Status::Firing))
        .await
        .unwrap_err();
    assert_eq!(err.attempts, 1);
    assert!(matches!(err.problem, Problem::Rejected { status: 400, .. }));
    let text = err.to_string();
    assert_eq!(
        text,
        "channel ops-hook (webhook, 127.0.0.1): the receiver answered 400: receiver says 400 \
         (after 1 attempt(s))"
    );
    assert!(!format!("{err:?}").contains("s3cr3t"));
    assert_eq!(receiver.drain(Duration::from_millis(300)).len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flaky_receiver_is_retried_until_it_takes_the_message() {
    let receiver = Receiver::http();
    let hook = channel(
        "hook",
        ChannelKind::Webhook {
            url: Secret::new(receiver.url("/flaky/2/x")),
        },
    );
    let delivery = notifier()
        .send(&hook, &message(Status::Firing))
        .await
        .unwrap();
    assert_eq!(delivery.attempts, 3);
    let statuses: Vec<i64> = receiver
        .drain(Duration::from_millis(300))
        .iter()
        .map(|r| r["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, [503, 503, 204]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_receiver_fails_after_every_attempt_without_its_secret() {
    // A port nobody listens on.
    let port = support::free_port();
    let hook = channel(
        "hook",
        ChannelKind::Slack {
            webhook_url: Secret::new(format!("http://127.0.0.1:{port}/services/T/B/s3cr3t")),
        },
    );
    let err = notifier()
        .send(&hook, &message(Status::Firing))
        .await
        .unwrap_err();
    assert_eq!(err.attempts, 3);
    assert!(matches!(err.problem, Problem::Unreachable(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with("channel hook (slack, 127.0.0.1): unreachable: "),
        "{text}"
    );
    assert!(!text.contains("s3cr3t") && !format!("{err:?}").contains("s3cr3t"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_slower_than_the_timeout_times_out() {
    let receiver = Receiver::http();
    let hook = channel(
        "hook",
        ChannelKind::Webhook {
            url: Secret::new(receiver.url("/sleep/3/x")),
        },
    );
    let notifier = Notifier::new(
        RetryPolicy {
            timeout: Duration::from_millis(500),
            attempts: 1,
            ..RetryPolicy::default()
        },
        None,
    )
    .unwrap();
    let start = Instant::now();
    let err = notifier
        .send(&hook, &message(Status::Firing))
        .await
        .unwrap_err();
    assert_eq!(err.problem, Problem::TimedOut(Duration::from_millis(500)));
    assert!(start.elapsed() < Duration::from_secs(2));
}

fn mail_channel(port: u16, password: &str, ca_pem: Option<String>) -> Channel {
    channel(
        "mail",
        ChannelKind::Email(EmailChannel {
            host: "127.0.0.1".into(),
            port,
            tls: SmtpTls::Starttls,
            username: Some("alerts".into()),
            password: Some(Secret::new(password)),
            from: "swarmkeeper <alerts@example.test>".into(),
            to: vec!["ops@example.test".into(), "oncall@example.test".into()],
            ca_pem,
        }),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn email_goes_over_starttls_with_authentication() {
    let tls = TestCa::new();
    let server = Receiver::smtp(&tls, "alerts", "pw-s3cr3t");
    let notifier = notifier();

    let sent = Instant::now();
    let mail = mail_channel(server.port, "pw-s3cr3t", Some(tls.ca_pem()));
    let delivery = notifier
        .send(&mail, &message(Status::Firing))
        .await
        .unwrap();
    // aiosmtpd's reply to the message's DATA.
    assert!(
        delivery.answer.starts_with("250 "),
        "the SMTP server's reply: {}",
        delivery.answer
    );
    let (at, got) = server.next(WAIT);
    eprintln!("email: received {:?} after send()", at - sent);
    assert_eq!(got["tls"], true);
    assert_eq!(got["user"], "alerts");
    assert_eq!(got["mail_from"], "alerts@example.test");
    assert_eq!(
        got["rcpt_tos"],
        json!(["ops@example.test", "oncall@example.test"])
    );
    let data = got["data"].as_str().unwrap();
    assert!(
        data.contains("Subject: [FIRING] node-down worker-1: node worker-1 is down"),
        "{data}"
    );
    assert!(data.contains("started: 2026-11-26T12:00:00Z"), "{data}");

    // A wrong password is the relay's permanent "no": named, not retried, not repeated.
    let err = notifier
        .send(
            &mail_channel(server.port, "wrong-s3cr3t", Some(tls.ca_pem())),
            &message(Status::Firing),
        )
        .await
        .unwrap_err();
    assert_eq!(err.attempts, 1, "{err}");
    assert!(
        matches!(&err.problem, Problem::Smtp { permanent: true, text } if text.contains("535")),
        "{err}"
    );
    assert!(!err.to_string().contains("wrong-s3cr3t"));

    // Without the CA as a trust root, the relay's certificate is refused.
    let err = notifier
        .send(
            &mail_channel(server.port, "pw-s3cr3t", None),
            &message(Status::Firing),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    assert!(server.drain(Duration::from_millis(300)).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn alertmanager_receives_an_alert_and_its_resolution() {
    let am = Alertmanager::start();
    let channel = channel(
        "am",
        ChannelKind::Alertmanager {
            url: am.url(),
            bearer_token: None,
        },
    );
    let notifier = notifier();
    let mut firing = message(Status::Firing);
    firing.started_at = Timestamp::now();

    notifier.send(&channel, &firing).await.unwrap();
    let alerts = am.alerts("node-down");
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["labels"]["subject"], "worker-1");
    assert_eq!(alerts[0]["labels"]["source"], "swarmkeeper");
    assert_eq!(alerts[0]["annotations"]["summary"], "node worker-1 is down");
    assert_eq!(alerts[0]["status"]["state"], "active");

    let mut resolved = firing.clone();
    resolved.status = Status::Resolved;
    resolved.ended_at = Some(Timestamp::now());
    notifier.send(&channel, &resolved).await.unwrap();
    let start = Instant::now();
    while !am.alerts("node-down").is_empty() {
        assert!(
            start.elapsed() < WAIT,
            "still listed: {:?}",
            am.alerts("node-down")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
