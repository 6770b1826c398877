//! Sending: one HTTP client for every HTTP channel (reqwest with rustls, the public roots
//! compiled in so a `FROM scratch` image verifies too), lettre for SMTP, a timeout on each
//! attempt and retries with exponential backoff for what may pass.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_json::Value;
use swarmkeeper_alerts::Message;

use crate::channel::{Channel, ChannelKind, EmailChannel, SmtpTls};
use crate::render;

/// How hard to try one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Each attempt's limit, connecting included (10 s).
    pub timeout: Duration,
    /// Attempts in all, the first included (3).
    pub attempts: u32,
    /// The wait before the second attempt (1 s); it doubles each time, up to `max_backoff`
    /// (30 s). A receiver's `Retry-After` in seconds is followed, up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            timeout: Duration::from_secs(10),
            attempts: 3,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let doubled = self
            .first_backoff
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        retry_after.unwrap_or(doubled).min(self.max_backoff)
    }
}

/// A message delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub attempts: u32,
    pub elapsed: Duration,
    /// What the receiver answered the attempt that delivered it: `HTTP 200 OK: ok` (the
    /// status, then the start of the body when there is one) or the SMTP server's reply
    /// (`250 2.0.0 Ok: queued as 4F2B1`). At most [`ANSWER_CHARS`] characters of what the
    /// receiver said, control characters escaped, the channel's URL and tokens replaced by
    /// `***`.
    pub answer: String,
}

/// How much of a receiver's answer is kept, in characters.
pub const ANSWER_CHARS: usize = 200;
/// How much of a response body is read to find its start: a receiver that answers
/// megabytes costs no more than this.
const BODY_READ: usize = 4096;

/// Why the last attempt failed. No variant holds a URL, token or password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The receiver answered an error status; `body` is the start of what it said.
    #[error("the receiver answered {status}: {body}")]
    Rejected {
        status: u16,
        body: String,
        retry_after: Option<Duration>,
    },
    /// No answer: refused, unknown host, TLS failure.
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("no answer within {}s", .0.as_secs_f64())]
    TimedOut(Duration),
    /// The SMTP relay's reply (code and text) or the SMTP client's error.
    #[error("SMTP: {text}")]
    Smtp { permanent: bool, text: String },
    /// The channel's settings cannot be used as they are.
    #[error("{0}")]
    Config(String),
}

impl Problem {
    /// Whether trying again may help: timeouts, unreachable receivers, 408, 429 and 5xx
    /// answers, transient SMTP replies (4xx). Not: other answers, permanent SMTP replies
    /// (a wrong password), settings.
    pub fn retryable(&self) -> bool {
        match self {
            Problem::Rejected { status, .. } => matches!(status, 408 | 429 | 500..=599),
            Problem::Unreachable(_) | Problem::TimedOut(_) => true,
            Problem::Smtp { permanent, .. } => !permanent,
            Problem::Config(_) => false,
        }
    }
}

/// A message that did not reach a channel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("channel {channel}: {problem} (after {attempts} attempt(s))")]
pub struct NotifyError {
    /// [`Channel::describe`]: name, kind and host.
    pub channel: String,
    pub attempts: u32,
    pub problem: Problem,
}

/// The HTTP client could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("alert delivery: {0}")]
pub struct SetupError(String);

/// Delivers messages; one per process, shared (it holds the HTTP connection pool).
#[derive(Clone)]
pub struct Notifier {
    http: reqwest::Client,
    policy: RetryPolicy,
}

impl Notifier {
    /// A notifier trusting the public roots (Mozilla's, compiled in) and, for HTTP channels,
    /// the certificates in `extra_ca_pem` (a private CA of an Alertmanager or webhook).
    pub fn new(policy: RetryPolicy, extra_ca_pem: Option<&str>) -> Result<Notifier, SetupError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
        if let Some(pem) = extra_ca_pem {
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| SetupError(format!("extra CA certificate: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| SetupError(format!("extra CA certificate: {e}")))?;
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| SetupError(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout)
            .user_agent(concat!("swarmkeeper/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SetupError(error_text(&e.without_url())))?;
        Ok(Notifier { http, policy })
    }

    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// Delivers `message` to `channel`, retrying as the policy says.
    pub async fn send(
        &self,
        channel: &Channel,
        message: &Message,
    ) -> Result<Delivery, NotifyError> {
        let start = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = tokio::time::timeout(self.policy.timeout, self.attempt(channel, message))
                .await
                .unwrap_or(Err(Problem::TimedOut(self.policy.timeout)));
            let problem = match outcome {
                Ok(answer) => {
                    tracing::debug!(channel = %channel.describe(), attempt, rule = %message.rule,
                        subject = %message.subject, "alert delivered");
                    return Ok(Delivery {
                        attempts: attempt,
                        elapsed: start.elapsed(),
                        answer,
                    });
                }
                Err(problem) => problem,
            };
            if attempt >= self.policy.attempts || !problem.retryable() {
                let error = NotifyError {
                    channel: channel.describe(),
                    attempts: attempt,
                    problem,
                };
                tracing::warn!("{error}");
                return Err(error);
            }
            let retry_after = match &problem {
                Problem::Rejected { retry_after, .. } => *retry_after,
                _ => None,
            };
            tracing::info!(channel = %channel.describe(), attempt, %problem, "alert delivery failed; retrying");
            tokio::time::sleep(self.policy.backoff(attempt, retry_after)).await;
        }
    }

    /// [`Notifier::send`] to every channel at once; the results in the channels' order.
    pub async fn send_to_all(
        &self,
        channels: &[Channel],
        message: &Message,
    ) -> Vec<Result<Delivery, NotifyError>> {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, channel) in channels.iter().enumerate() {
            let (notifier, channel, message) = (self.clone(), channel.clone(), message.clone());
            tasks.spawn(async move { (i, notifier.send(&channel, &message).await) });
        }
        let mut results: Vec<Option<Result<Delivery, NotifyError>>> = vec![None; channels.len()];
        while let Some(joined) = tasks.join_next().await {
            let (i, result) = joined.expect("a delivery task does not panic");
            results[i] = Some(result);
        }
        results
            .into_iter()
            .map(|r| r.expect("every channel ran"))
            .collect()
    }

    /// One attempt; the receiver's answer (see [`Delivery::answer`]).
    async fn attempt(&self, channel: &Channel, message: &Message) -> Result<String, Problem> {
        match &channel.kind {
            ChannelKind::Webhook { url } => {
                self.post_json(url.expose(), None, &render::webhook(message))
                    .await
            }
            ChannelKind::Slack { webhook_url } => {
                self.post_json(webhook_url.expose(), None, &render::slack(message))
                    .await
            }
            ChannelKind::Discord { webhook_url } => {
                self.post_json(webhook_url.expose(), None, &render::discord(message))
                    .await
            }
            ChannelKind::Ntfy { topic_url, token } => {
                let (body, headers) = render::ntfy(message);
                let mut request = self.http.post(topic_url.expose()).body(body);
                for (name, value) in headers {
                    request = request.header(name, value);
                }
                if let Some(token) = token {
                    request = request.header(AUTHORIZATION, bearer(token.expose())?);
                }
                let token = token.as_ref().map(|t| t.expose()).unwrap_or_default();
                self.finish(request, &[topic_url.expose(), token]).await
            }
            ChannelKind::Alertmanager { url, bearer_token } => {
                let endpoint = format!("{}/api/v2/alerts", url.trim_end_matches('/'));
                let body = render::alertmanager(message, Timestamp::now());
                self.post_json(&endpoint, bearer_token.as_ref().map(|t| t.expose()), &body)
                    .await
            }
            ChannelKind::Email(email) => send_mail(email, message, self.policy.timeout).await,
        }
    }

    async fn post_json(
        &self,
        url: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Result<String, Problem> {
        let mut request = self
            .http
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(body).expect("JSON serialises"));
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, bearer(token)?);
        }
        self.finish(request, &[url, token.unwrap_or_default()])
            .await
    }

    /// Sends the request; a 2xx answer is delivered, and its status and the start of its
    /// body are the answer. `secrets` (the URL, a token) are scrubbed from any text that
    /// comes back.
    async fn finish(
        &self,
        request: reqwest::RequestBuilder,
        secrets: &[&str],
    ) -> Result<String, Problem> {
        let mut response = request.send().await.map_err(|e| {
            let e = e.without_url();
            if e.is_timeout() {
                Problem::TimedOut(self.policy.timeout)
            } else if e.is_builder() {
                Problem::Config(scrub_all(&error_text(&e), secrets))
            } else {
                Problem::Unreachable(scrub_all(&error_text(&e), secrets))
            }
        })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut body = Vec::new();
        while body.len() < BODY_READ {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                _ => break,
            }
        }
        body.truncate(BODY_READ);
        let text = answer_text(&String::from_utf8_lossy(&body), secrets);
        if status.is_success() {
            let reason = status.canonical_reason().unwrap_or_default();
            let head = format!("HTTP {} {reason}", status.as_u16());
            return Ok(if text.is_empty() {
                head.trim_end().to_string()
            } else {
                format!("{}: {text}", head.trim_end())
            });
        }
        let text = if text.is_empty() {
            status
                .canonical_reason()
                .unwrap_or("no reason given")
                .to_string()
        } else {
            text
        };
        Err(Problem::Rejected {
            status: status.as_u16(),
            body: text,
            retry_after,
        })
    }
}

fn bearer(token: &str) -> Result<HeaderValue, Problem> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| Problem::Config("the token is not valid in an HTTP header".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

async fn send_mail(
    email: &EmailChannel,
    message: &Message,
    timeout: Duration,
) -> Result<String, Problem> {
    let config = |what: &str, e: &dyn std::fmt::Display| Problem::Config(format!("{what}: {e}"));
    let (subject, body) = render::email(message);
    let mut builder = lettre::Message::builder()
        .from(email.from.parse().map_err(|e| config("from", &e))?)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN);
    for to in &email.to {
        builder = builder.to(to.parse().map_err(|e| config("to", &e))?);
    }
    let mail = builder.body(body).map_err(|e| config("mail", &e))?;

    let tls = match email.tls {
        SmtpTls::None => Tls::None,
        SmtpTls::Starttls | SmtpTls::Tls => {
            let mut params = TlsParameters::builder(email.host.clone());
            if let Some(pem) = &email.ca_pem {
                params = params.add_root_certificate(
                    Certificate::from_pem(pem.as_bytes()).map_err(|e| config("ca_pem", &e))?,
                );
            }
            let params = params.build_rustls().map_err(|e| config("tls", &e))?;
            if email.tls == SmtpTls::Tls {
                Tls::Wrapper(params)
            } else {
                Tls::Required(params)
            }
        }
    };
    let mut transport =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(email.host.as_str())
            .port(email.port)
            .tls(tls)
            .timeout(Some(timeout));
    if let (Some(user), Some(password)) = (&email.username, &email.password) {
        transport = transport.credentials(Credentials::new(
            user.clone(),
            password.expose().to_string(),
        ));
    }
    let password = email
        .password
        .as_ref()
        .map(|p| p.expose())
        .unwrap_or_default();
    let response = transport
        .build()
        .send(mail)
        .await
        .map_err(|e| Problem::Smtp {
            permanent: e.is_permanent(),
            text: scrub(&error_text(&e), password),
        })?;
    let reply = format!(
        "{} {}",
        response.code(),
        response.message().collect::<Vec<_>>().join(" ")
    );
    Ok(answer_text(&reply, &[password]))
}

/// The start of what a receiver said, as [`Delivery::answer`] keeps it: `secrets` replaced
/// (before cutting, so no part of one survives), blanks at either end trimmed, at most
/// [`ANSWER_CHARS`] characters (a `…` tells more was said), control characters escaped
/// (`\n`, `\u{1b}`) so nothing a receiver sends can shape a log line or a page.
fn answer_text(raw: &str, secrets: &[&str]) -> String {
    let clean = scrub_all(raw, secrets);
    let clean = clean.trim();
    let mut out = String::new();
    for (i, c) in clean.chars().enumerate() {
        if i == ANSWER_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// An error and its causes, `: `-separated.
fn error_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `text` without any of `secrets` in it.
fn scrub_all(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .fold(text.to_string(), |text, secret| scrub(&text, secret))
}

/// `text` without `secret` in it.
fn scrub(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        text.to_string()
    } else {
        text.replace(secret, "***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_follows_retry_after() {
        let policy = RetryPolicy::default();
        let secs = |n, after| policy.backoff(n, after).as_secs();
        assert_eq!([secs(1, None), secs(2, None), secs(3, None)], [1, 2, 4]);
        assert_eq!(secs(10, None), 30);
        assert_eq!(secs(1, Some(Duration::from_secs(7))), 7);
        assert_eq!(secs(1, Some(Duration::from_secs(3600))), 30);
    }

    #[test]
    fn an_answer_is_bounded_escaped_and_never_holds_a_secret() {
        assert_eq!(answer_text("  ok\n", &[]), "ok");
        assert_eq!(
            answer_text("line one\nline\u{1b}[31mtwo", &[]),
            "line one\\nline\\u{1b}[31mtwo"
        );
        assert_eq!(
            answer_text(
                "got https://hooks.example/T0/s3cr3t and tk_abc",
                &["https://hooks.example/T0/s3cr3t", "tk_abc", ""]
            ),
            "got *** and ***"
        );
        let long = "é".repeat(500);
        let cut = answer_text(&long, &[]);
        assert_eq!(cut.chars().count(), ANSWER_CHARS + 1);
        assert!(cut.ends_with('…'));
        // A secret cut in half by the bound is still replaced whole.
        let text = format!("{}tk_secret", "x".repeat(ANSWER_CHARS - 3));
        assert!(!answer_text(&text, &["tk_secret"]).contains("tk_"));
    }

    #[test]
    fn what_is_retried() {
        let rejected = |status| Problem::Rejected {
            status,
            body: String::new(),
            retry_after: None,
        };
        assert!(rejected(503).retryable());
        assert!(rejected(429).retryable());
        assert!(!rejected(400).retryable());
        assert!(!rejected(404).retryable());
        assert!(Problem::TimedOut(Duration::from_secs(1)).retryable());
        assert!(!Problem::Smtp {
            permanent: true,
            text: String::new()
        }
        .retryable());
    }
}
