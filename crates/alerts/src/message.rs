//! What goes to a channel: a firing or resolved alert, and the generic webhook's JSON.

use jiff::{RoundMode, Timestamp, TimestampRound, Unit};
use serde::{Deserialize, Serialize};

use crate::rules::RuleId;

/// Whether a message says an alert started (or still holds) or is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Firing,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// One alert message, the same for every channel; each channel renders it its own way.
/// Serialised only in the server's store (an undelivered message kept across a restart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub status: Status,
    pub rule: RuleId,
    pub subject: String,
    pub summary: String,
    /// When the alert's condition was first seen holding.
    pub started_at: Timestamp,
    /// For a resolved message, when the condition was seen no longer holding.
    pub ended_at: Option<Timestamp>,
}

/// The generic webhook's body, fixed in the product brief:
/// `{"status": "firing"|"resolved", "rule": "...", "subject": "...", "summary": "...",
/// "started_at": "...Z"}`, `started_at` in RFC 3339 UTC to the second.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookPayload<'a> {
    pub status: &'static str,
    pub rule: &'static str,
    pub subject: &'a str,
    pub summary: &'a str,
    pub started_at: String,
}

impl Message {
    /// The message a "send test" button sends: firing, rule `test`, subject `swarmkeeper`.
    pub fn test(now: Timestamp) -> Message {
        Message {
            status: Status::Firing,
            rule: RuleId::Test,
            subject: "swarmkeeper".into(),
            summary: "a test message from swarmkeeper: this channel works".into(),
            started_at: now,
            ended_at: None,
        }
    }

    pub fn webhook_payload(&self) -> WebhookPayload<'_> {
        WebhookPayload {
            status: self.status.as_str(),
            rule: self.rule.as_str(),
            subject: &self.subject,
            summary: &self.summary,
            started_at: rfc3339_seconds(self.started_at),
        }
    }

    /// One line for chat channels and mail subjects: `[FIRING] node-down w1: node w1 is down`.
    pub fn headline(&self) -> String {
        format!(
            "[{}] {} {}: {}",
            self.status.as_str().to_ascii_uppercase(),
            self.rule,
            self.subject,
            self.summary
        )
    }
}

/// `2026-11-26T12:00:00Z`: whole seconds, always `Z`, the fraction cut off (never rounded
/// up: a resolved alert's end rounded into the future is, to Alertmanager, an alert still
/// firing until then, and it keeps the older, later end).
pub fn rfc3339_seconds(at: Timestamp) -> String {
    let whole = TimestampRound::new()
        .smallest(Unit::Second)
        .mode(RoundMode::Trunc);
    at.round(whole).unwrap_or(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_cut_to_the_second_never_rounded_up() {
        let at: Timestamp = "2026-11-26T12:00:00.9Z".parse().unwrap();
        assert_eq!(rfc3339_seconds(at), "2026-11-26T12:00:00Z");
    }

    #[test]
    fn the_webhook_payload_is_the_product_contract() {
        let message = Message {
            status: Status::Resolved,
            rule: RuleId::NodeDown,
            subject: "w1".into(),
            summary: "node w1 is down".into(),
            started_at: "2026-11-26T12:00:00.6Z".parse().unwrap(),
            ended_at: Some("2026-11-26T12:05:00Z".parse().unwrap()),
        };
        assert_eq!(
            serde_json::to_value(message.webhook_payload()).unwrap(),
            serde_json::json!({
                "status": "resolved",
                "rule": "node-down",
                "subject": "w1",
                "summary": "node w1 is down",
                "started_at": "2026-11-26T12:00:00Z"
            })
        );
        assert_eq!(
            message.headline(),
            "[RESOLVED] node-down w1: node w1 is down"
        );
    }
}
