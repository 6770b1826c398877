//! Delivering alert messages (`swarmkeeper_alerts::Message`) to where people look: the
//! product's generic JSON webhook, Slack, Discord, ntfy, email over SMTP, and Prometheus
//! Alertmanager's API.
//!
//! [`Channel`] is a channel's settings as the server stores them; [`render`] builds each
//! channel's body (pure); [`Notifier`] sends, with a timeout per attempt and retries with
//! backoff, and fails with a [`NotifyError`] that names the channel and repeats what the
//! receiver said. Secrets ([`Secret`]: webhook URLs, tokens, SMTP passwords) never appear in
//! `Debug`, errors or logs.

mod channel;
mod deliver;
pub mod render;

pub use channel::{url_host, Channel, ChannelError, ChannelKind, EmailChannel, SmtpTls};
pub use deliver::{Delivery, Notifier, NotifyError, Problem, RetryPolicy, SetupError};
pub use swarmkeeper_auth::Secret;
