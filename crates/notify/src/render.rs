//! Each channel's body for a message: pure, so the exact shapes are tested without a
//! receiver.

use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};
use swarmkeeper_alerts::{rfc3339_seconds, Message, Status};

/// How long Alertmanager keeps a firing alert it is not sent again: the sender must repeat
/// firing alerts more often than this (Prometheus sends every minute with four minutes, the
/// same ratio), or Alertmanager resolves them by itself.
pub const ALERTMANAGER_ENDS_AFTER: SignedDuration = SignedDuration::from_mins(4);

/// The generic webhook: the product's payload, exactly.
pub fn webhook(message: &Message) -> Value {
    serde_json::to_value(message.webhook_payload()).expect("the payload serialises")
}

/// A Slack incoming webhook's body: mrkdwn text, with `&`, `<` and `>` escaped as Slack asks
/// so that a summary cannot forge a link or a mention.
pub fn slack(message: &Message) -> Value {
    let icon = match message.status {
        Status::Firing => ":rotating_light:",
        Status::Resolved => ":white_check_mark:",
    };
    let text = format!(
        "{icon} *{}* `{}` {}: {}\nsince {}",
        message.status.as_str().to_ascii_uppercase(),
        message.rule,
        slack_escape(&message.subject),
        slack_escape(&message.summary),
        rfc3339_seconds(message.started_at)
    );
    json!({ "text": text })
}

fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Discord's webhook body: at most 2,000 characters of content, and no mentions parsed (a
/// summary with `@everyone` pings no one).
pub fn discord(message: &Message) -> Value {
    let mut content = format!(
        "{}\nsince {}",
        message.headline(),
        rfc3339_seconds(message.started_at)
    );
    if let Some((cut, _)) = content.char_indices().nth(2000 - 1) {
        content.truncate(cut);
        content.push('…');
    }
    json!({ "content": content, "allowed_mentions": { "parse": [] } })
}

/// ntfy's publish: the body is the message, the rest goes in headers (`Title`, `Priority`,
/// `Tags`). Header values must be visible ASCII, so anything else in the title becomes `?`.
pub fn ntfy(message: &Message) -> (String, Vec<(&'static str, String)>) {
    let title: String = format!(
        "{} {} {}",
        message.status.as_str().to_ascii_uppercase(),
        message.rule,
        message.subject
    )
    .chars()
    .map(|c| {
        if c.is_ascii_graphic() || c == ' ' {
            c
        } else {
            '?'
        }
    })
    .collect();
    let (priority, tags) = match message.status {
        Status::Firing => ("high", "rotating_light"),
        Status::Resolved => ("default", "white_check_mark"),
    };
    let body = format!(
        "{}\nsince {}",
        message.summary,
        rfc3339_seconds(message.started_at)
    );
    (
        body,
        vec![
            ("Title", title),
            ("Priority", priority.into()),
            ("Tags", tags.into()),
        ],
    )
}

/// Alertmanager's `POST /api/v2/alerts` body: one alert labelled `alertname` (the rule),
/// `subject` and `source="swarmkeeper"`, the summary as an annotation, `startsAt`, and
/// `endsAt`: when it resolved, or for a firing alert `now` plus
/// [`ALERTMANAGER_ENDS_AFTER`].
pub fn alertmanager(message: &Message, now: Timestamp) -> Value {
    let ends_at = match (message.status, message.ended_at) {
        (Status::Resolved, Some(ended)) => ended,
        (Status::Resolved, None) => now,
        (Status::Firing, _) => now + ALERTMANAGER_ENDS_AFTER,
    };
    json!([{
        "labels": {
            "alertname": message.rule.as_str(),
            "subject": message.subject,
            "source": "swarmkeeper",
        },
        "annotations": { "summary": message.summary },
        "startsAt": rfc3339_seconds(message.started_at),
        "endsAt": rfc3339_seconds(ends_at),
    }])
}

/// The mail's subject and plain-text body.
pub fn email(message: &Message) -> (String, String) {
    let mut subject = message.headline();
    if let Some((cut, _)) = subject.char_indices().nth(200) {
        subject.truncate(cut);
        subject.push('…');
    }
    let mut body = format!(
        "{}\n\nstatus:  {}\nrule:    {}\nsubject: {}\nstarted: {}\n",
        message.summary,
        message.status.as_str(),
        message.rule,
        message.subject,
        rfc3339_seconds(message.started_at)
    );
    if let Some(ended) = message.ended_at {
        body.push_str(&format!("ended:   {}\n", rfc3339_seconds(ended)));
    }
    body.push_str("\n-- \nswarmkeeper\n");
    (subject, body)
}

#[cfg(test)]
mod tests {
    use swarmkeeper_alerts::RuleId;

    use super::*;

    fn message(status: Status) -> Message {
        Message {
            status,
            rule: RuleId::OomKill,
            subject: "web.1".into(),
            summary: "task web.1 on node w1 was OOM-killed (1 in the last 15m) <@everyone>".into(),
            started_at: "2026-11-26T12:00:00Z".parse().unwrap(),
            ended_at: (status == Status::Resolved).then(|| "2026-11-26T12:20:00Z".parse().unwrap()),
        }
    }

    #[test]
    fn webhook_is_the_product_payload() {
        assert_eq!(
            webhook(&message(Status::Firing)),
            json!({
                "status": "firing",
                "rule": "oom-kill",
                "subject": "web.1",
                "summary": "task web.1 on node w1 was OOM-killed (1 in the last 15m) <@everyone>",
                "started_at": "2026-11-26T12:00:00Z"
            })
        );
    }

    #[test]
    fn slack_escapes_its_control_characters() {
        let text = slack(&message(Status::Firing))["text"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            text,
            ":rotating_light: *FIRING* `oom-kill` web.1: task web.1 on node w1 was OOM-killed \
             (1 in the last 15m) &lt;@everyone&gt;\nsince 2026-11-26T12:00:00Z"
        );
    }

    #[test]
    fn discord_mentions_nobody_and_stays_short() {
        let mut long = message(Status::Resolved);
        long.summary = "é".repeat(3000);
        let body = discord(&long);
        assert_eq!(body["allowed_mentions"], json!({"parse": []}));
        assert_eq!(body["content"].as_str().unwrap().chars().count(), 2000);
    }

    #[test]
    fn ntfy_headers_are_ascii() {
        let mut m = message(Status::Firing);
        m.subject = "wéb.1".into();
        let (body, headers) = ntfy(&m);
        assert!(body.starts_with("task web.1"));
        assert_eq!(headers[0], ("Title", "FIRING oom-kill w?b.1".to_string()));
        assert_eq!(headers[1], ("Priority", "high".to_string()));
    }

    #[test]
    fn alertmanager_gets_ends_at_for_both_states() {
        let now: Timestamp = "2026-11-26T12:10:00Z".parse().unwrap();
        let firing = alertmanager(&message(Status::Firing), now);
        assert_eq!(firing[0]["endsAt"], "2026-11-26T12:14:00Z");
        assert_eq!(firing[0]["labels"]["alertname"], "oom-kill");
        let resolved = alertmanager(&message(Status::Resolved), now);
        assert_eq!(resolved[0]["endsAt"], "2026-11-26T12:20:00Z");
        assert_eq!(resolved[0]["startsAt"], "2026-11-26T12:00:00Z");
    }

    #[test]
    fn email_has_a_headline_subject_and_the_figures() {
        let (subject, body) = email(&message(Status::Resolved));
        assert!(subject.starts_with("[RESOLVED] oom-kill web.1: task web.1"));
        assert!(body.contains("ended:   2026-11-26T12:20:00Z\n"), "{body}");
    }
}
