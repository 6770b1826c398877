//! Where alerts go, as the server stores and edits them.

use reqwest::Url;
use serde::{Deserialize, Serialize};

use swarmkeeper_auth::Secret;

/// One configured channel: a name of the admin's choosing (errors and the history name it)
/// and where it delivers. JSON: `{"name": "ops", "type": "slack", "webhook_url": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    pub name: String,
    #[serde(flatten)]
    pub kind: ChannelKind,
}

/// The kinds of receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ChannelKind {
    /// POST of the product's JSON payload (`swarmkeeper_alerts::WebhookPayload`); what
    /// `--alert-webhook URL` configures. The URL may carry a token.
    Webhook {
        #[serde(serialize_with = "Secret::serialize_exposed")]
        url: Secret,
    },
    /// A Slack incoming webhook (`https://hooks.slack.com/services/…`).
    Slack {
        #[serde(serialize_with = "Secret::serialize_exposed")]
        webhook_url: Secret,
    },
    /// A Discord channel webhook (`https://discord.com/api/webhooks/ID/TOKEN`).
    Discord {
        #[serde(serialize_with = "Secret::serialize_exposed")]
        webhook_url: Secret,
    },
    /// An ntfy topic URL (`https://ntfy.sh/TOPIC`: whoever knows a topic can read it, so it is
    /// a secret too), with an access token for a protected topic.
    Ntfy {
        #[serde(serialize_with = "Secret::serialize_exposed")]
        topic_url: Secret,
        #[serde(default, serialize_with = "Secret::serialize_exposed_option")]
        token: Option<Secret>,
    },
    /// Mail over SMTP.
    Email(EmailChannel),
    /// Prometheus Alertmanager's API: `POST {url}/api/v2/alerts`.
    Alertmanager {
        /// The base URL, e.g. `http://alertmanager:9093`.
        url: String,
        /// Sent as `Authorization: Bearer` when set (an Alertmanager behind a proxy).
        #[serde(default, serialize_with = "Secret::serialize_exposed_option")]
        bearer_token: Option<Secret>,
    },
}

/// An SMTP relay and the mail's addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailChannel {
    pub host: String,
    /// 587 (submission with STARTTLS) unless set.
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    #[serde(default)]
    pub tls: SmtpTls,
    /// With `password`: authenticate (only over TLS).
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default, serialize_with = "Secret::serialize_exposed_option")]
    pub password: Option<Secret>,
    /// `Alerts <alerts@example.com>` or a bare address.
    pub from: String,
    pub to: Vec<String>,
    /// A PEM certificate to trust besides the public roots (a relay with a private CA or a
    /// self-signed certificate).
    #[serde(default)]
    pub ca_pem: Option<String>,
}

fn default_smtp_port() -> u16 {
    587
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS; refuses a relay that does not offer it.
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on the same host or network; no authentication then.
    None,
}

/// A channel that cannot work; `field` names the form field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("channel {channel}: {field} {reason}")]
pub struct ChannelError {
    pub channel: String,
    pub field: &'static str,
    pub reason: String,
}

impl ChannelKind {
    /// The kind's name in errors and logs: `webhook`, `slack`, …
    pub fn kind_name(&self) -> &'static str {
        match self {
            ChannelKind::Webhook { .. } => "webhook",
            ChannelKind::Slack { .. } => "slack",
            ChannelKind::Discord { .. } => "discord",
            ChannelKind::Ntfy { .. } => "ntfy",
            ChannelKind::Email(_) => "email",
            ChannelKind::Alertmanager { .. } => "alertmanager",
        }
    }
}

impl Channel {
    /// What may be shown and logged about the channel: its name, kind and host, never a path,
    /// token or password. `ops (slack, hooks.slack.com)`.
    pub fn describe(&self) -> String {
        let host = match &self.kind {
            ChannelKind::Webhook { url: s }
            | ChannelKind::Slack { webhook_url: s }
            | ChannelKind::Discord { webhook_url: s }
            | ChannelKind::Ntfy { topic_url: s, .. } => host_of(s.expose()),
            ChannelKind::Email(email) => format!("{}:{}", email.host, email.port),
            ChannelKind::Alertmanager { url, .. } => host_of(url),
        };
        format!("{} ({}, {host})", self.name, self.kind.kind_name())
    }

    /// Checks the URLs and addresses, so that a bad channel is refused when it is saved rather
    /// than when an alert fires: the first of [`Channel::problems`].
    pub fn validate(&self) -> Result<(), ChannelError> {
        match self.problems().into_iter().next() {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }

    /// Every problem of the channel's settings, one per field, in the form's order: a form
    /// marks them all in one answer.
    pub fn problems(&self) -> Vec<ChannelError> {
        let mut problems = Vec::new();
        let mut fail = |field, reason: String| {
            problems.push(ChannelError {
                channel: self.name.clone(),
                field,
                reason,
            })
        };
        if self.name.trim().is_empty() {
            fail("name", "must not be empty".into());
        }
        let url_ok = |text: &str| -> Result<(), String> {
            match Url::parse(text) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                    Ok(())
                }
                Ok(_) => Err("must be an http:// or https:// URL".into()),
                // The parser's message never repeats the URL.
                Err(e) => Err(format!("is not a URL ({e})")),
            }
        };
        let checked = match &self.kind {
            ChannelKind::Webhook { url } => ("url", url_ok(url.expose())),
            ChannelKind::Slack { webhook_url } | ChannelKind::Discord { webhook_url } => {
                ("webhook_url", url_ok(webhook_url.expose()))
            }
            ChannelKind::Ntfy { topic_url, .. } => ("topic_url", url_ok(topic_url.expose())),
            ChannelKind::Alertmanager { url, .. } => ("url", url_ok(url)),
            ChannelKind::Email(email) => {
                email.problems(&mut fail);
                return problems;
            }
        };
        if let (field, Err(reason)) = checked {
            fail(field, reason);
        }
        problems
    }
}

impl EmailChannel {
    /// Each problem of the settings given to `fail`, once per field.
    fn problems(&self, fail: &mut impl FnMut(&'static str, String)) {
        if self.host.trim().is_empty() {
            fail("host", "must not be empty".into());
        }
        if let Err(e) = self.from.parse::<lettre::message::Mailbox>() {
            fail("from", format!("is not a mail address ({e})"));
        }
        if self.to.is_empty() {
            fail("to", "needs at least one address".into());
        }
        if let Some((to, e)) = self.to.iter().find_map(|to| {
            to.parse::<lettre::message::Mailbox>()
                .err()
                .map(|e| (to, e))
        }) {
            fail("to", format!("{to:?} is not a mail address ({e})"));
        }
        match (&self.username, &self.password) {
            (Some(_), None) | (None, Some(_)) => {
                fail("password", "and username go together".into())
            }
            (Some(_), Some(_)) if self.tls == SmtpTls::None => {
                fail("tls", "must be starttls or tls to send a password".into())
            }
            _ => {}
        }
        if let Some(pem) = &self.ca_pem {
            if lettre::transport::smtp::client::Certificate::from_pem(pem.as_bytes()).is_err() {
                fail("ca_pem", "is not a PEM certificate".into());
            }
        }
    }
}

fn host_of(url: &str) -> String {
    url_host(url).unwrap_or_else(|| "invalid URL".into())
}

/// The host a URL names, the one part of a channel's URL that may be shown (its path, query
/// and user part may carry a token); `None` when `url` is not an absolute URL with a host.
pub fn url_host(url: &str) -> Option<String> {
    Url::parse(url.trim())
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLACK: &str = "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX";

    fn slack() -> Channel {
        Channel {
            name: "ops".into(),
            kind: ChannelKind::Slack {
                webhook_url: Secret::new(SLACK),
            },
        }
    }

    fn email() -> EmailChannel {
        EmailChannel {
            host: "smtp.example.com".into(),
            port: 587,
            tls: SmtpTls::Starttls,
            username: Some("alerts".into()),
            password: Some(Secret::new("hunter2-password")),
            from: "Alerts <alerts@example.com>".into(),
            to: vec!["ops@example.com".into()],
            ca_pem: None,
        }
    }

    #[test]
    fn secrets_never_show_in_debug_or_describe() {
        let channels = [
            slack(),
            Channel {
                name: "mail".into(),
                kind: ChannelKind::Email(email()),
            },
            Channel {
                name: "phone".into(),
                kind: ChannelKind::Ntfy {
                    topic_url: Secret::new("https://ntfy.sh/secret-topic-name"),
                    token: Some(Secret::new("tk_secrettoken")),
                },
            },
        ];
        for channel in &channels {
            let shown = format!("{channel:?} {} {:#?}", channel.describe(), channel);
            for secret in ["XXXXSECRETXXXX", "hunter2", "secret-topic", "tk_secret"] {
                assert!(!shown.contains(secret), "{secret} in {shown}");
            }
        }
        assert_eq!(slack().describe(), "ops (slack, hooks.slack.com)");
    }

    #[test]
    fn channels_round_trip_through_json() {
        let json = serde_json::to_value(slack()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"name": "ops", "type": "slack", "webhook_url": SLACK})
        );
        assert_eq!(serde_json::from_value::<Channel>(json).unwrap(), slack());
        let mail: Channel = serde_json::from_str(
            r#"{"name": "m", "type": "email", "host": "smtp", "from": "a@b.c", "to": ["d@e.f"]}"#,
        )
        .unwrap();
        let ChannelKind::Email(mail) = mail.kind else {
            panic!()
        };
        assert_eq!((mail.port, mail.tls), (587, SmtpTls::Starttls));
    }

    #[test]
    fn bad_channels_name_their_field_without_the_secret() {
        let mut bad = slack();
        bad.kind = ChannelKind::Slack {
            webhook_url: Secret::new("hooks.slack.com/services/SECRET"),
        };
        let err = bad.validate().unwrap_err();
        assert_eq!(err.field, "webhook_url");
        assert!(!err.to_string().contains("SECRET"), "{err}");

        let mut mail = email();
        mail.to = vec!["not an address".into()];
        let err = Channel {
            name: "m".into(),
            kind: ChannelKind::Email(mail),
        }
        .validate()
        .unwrap_err();
        assert_eq!(err.field, "to");

        let mut plain = email();
        plain.tls = SmtpTls::None;
        let err = Channel {
            name: "m".into(),
            kind: ChannelKind::Email(plain),
        }
        .validate()
        .unwrap_err();
        assert_eq!(err.field, "tls");
        slack().validate().unwrap();

        // Tryout 13 finding 5: every problem at once, each field once.
        let mut worst = email();
        worst.host = " ".into();
        worst.to = vec!["a@example.com".into(), "nope".into(), "nope2".into()];
        worst.from = "not an address".into();
        worst.tls = SmtpTls::None;
        let fields: Vec<&str> = Channel {
            name: String::new(),
            kind: ChannelKind::Email(worst),
        }
        .problems()
        .iter()
        .map(|p| p.field)
        .collect();
        assert_eq!(fields, ["name", "host", "from", "to", "tls"]);
    }
}
