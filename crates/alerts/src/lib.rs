//! Alerts: which of the cluster's problems are worth a message, and when.
//!
//! The server observes the cluster ([`Observation`]: nodes, services, tasks and their
//! samples), [`conditions`] applies the [`AlertRules`] to it, and [`step`] turns the conditions
//! into ongoing alerts ([`AlertState`]) and the [`Message`]s to send: firing after the rule's
//! `for:`, once per (rule, subject), again after the repeat interval, muted by [`Silence`]s,
//! resolved when the condition goes. [`evaluate`] does both; [`evaluate_routed`] also says
//! which channel gets each message (a channel added while an alert fires gets it at once), and
//! [`Outbox`] when each is tried again after a failed delivery, per channel, with back-off.
//!
//! Everything here is pure: the server is the shell that observes, stores the state and the
//! rules, and hands the messages to `swarmkeeper-notify`.

mod delivery;
mod ended;
mod engine;
mod forecast;
mod message;
mod observe;
mod restarts;
mod restore;
mod route;
mod rules;

pub use delivery::{Attempt, Backoff, Outbox, Sending, Waiting};
pub use ended::why_ended;
pub use engine::{evaluate, step, Alert, AlertState, Silence, SilenceError};
pub use forecast::{forecast_full, Forecast};
pub use message::{rfc3339_seconds, Message, Status, WebhookPayload};
pub use observe::{
    conditions, requested_rollback, spec_since, ChannelObservation, Condition, Conditions,
    Membership, NodeDisk, NodeObservation, Observation, Readiness, Rollback, ServiceObservation,
    TaskObservation, UpdateOrigin, ROLLBACK_REQUEST_SKEW,
};
pub use restarts::{RestartLedger, TaskEnd};
pub use restore::ForRestore;
pub use route::{evaluate_routed, Routed};
pub use rules::{
    AgentSilent, AlertChannelUnusable, AlertRules, DiskFullForecast, DiskGcShortfall,
    MemoryNearLimit, NodeDown, OomKill, RestartLoop, RolledBack, RuleId, RulesError,
    ServiceNotConverged,
};
