//! The alert rules an admin can adjust or switch off, with the defaults every user gets.
//!
//! [`AlertRules`] is stored and edited as JSON by the server: every field has a default, so
//! `{}` is the default set and `{"node_down": {"for": "5m"}}` changes one figure; an unknown
//! field is an error that names it.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which rule an alert comes from. Its text (`disk-gc-shortfall`, …) is the `rule` field of
/// every message and never changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleId {
    /// A node's disk is at or above the GC high threshold and its last GC pass fell short.
    DiskGcShortfall,
    /// A node's disk is predicted full within [`DiskFullForecast::within`].
    DiskFullForecast,
    /// Swarm reports the node down.
    NodeDown,
    /// The node's agent stopped reporting.
    AgentSilent,
    /// A service has not converged for [`ServiceNotConverged::for_duration`].
    ServiceNotConverged,
    /// A service's last update (a deploy, an auto-deploy or a plain update) was rolled back.
    RolledBack,
    /// A service's tasks keep being restarted.
    RestartLoop,
    /// The kernel's OOM killer killed a process of a task.
    OomKill,
    /// A task's memory stays near its limit.
    MemoryNearLimit,
    /// An alert channel added on the Alerts page whose settings the server cannot open (its
    /// key changed without a re-key): alerts do not reach it.
    AlertChannelUnusable,
    /// Only for the message a "send test" button sends; no rule evaluates to it.
    Test,
}

impl RuleId {
    /// The rules that watch the cluster, in the order the settings page lists them.
    pub const ALL: [RuleId; 10] = [
        RuleId::DiskGcShortfall,
        RuleId::DiskFullForecast,
        RuleId::NodeDown,
        RuleId::AgentSilent,
        RuleId::ServiceNotConverged,
        RuleId::RolledBack,
        RuleId::RestartLoop,
        RuleId::OomKill,
        RuleId::MemoryNearLimit,
        RuleId::AlertChannelUnusable,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            RuleId::DiskGcShortfall => "disk-gc-shortfall",
            RuleId::DiskFullForecast => "disk-full-forecast",
            RuleId::NodeDown => "node-down",
            RuleId::AgentSilent => "agent-silent",
            RuleId::ServiceNotConverged => "service-not-converged",
            RuleId::RolledBack => "rolled-back",
            RuleId::RestartLoop => "restart-loop",
            RuleId::OomKill => "oom-kill",
            RuleId::MemoryNearLimit => "memory-near-limit",
            RuleId::AlertChannelUnusable => "alert-channel-unusable",
            RuleId::Test => "test",
        }
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RuleId {
    type Err = String;

    fn from_str(text: &str) -> Result<RuleId, String> {
        RuleId::ALL
            .into_iter()
            .chain([RuleId::Test])
            .find(|rule| rule.as_str() == text)
            .ok_or_else(|| {
                let known: Vec<&str> = RuleId::ALL.iter().map(|r| r.as_str()).collect();
                format!("unknown rule {text:?} (known: {})", known.join(", "))
            })
    }
}

/// Every rule's settings and how often a still-firing alert is sent again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertRules {
    /// A firing alert is sent again after this long (4h, Alertmanager's default); `0` sends it
    /// once.
    #[serde(with = "duration_text")]
    pub repeat_interval: Duration,
    pub disk_gc_shortfall: DiskGcShortfall,
    pub disk_full_forecast: DiskFullForecast,
    pub node_down: NodeDown,
    pub agent_silent: AgentSilent,
    pub service_not_converged: ServiceNotConverged,
    pub rolled_back: RolledBack,
    pub restart_loop: RestartLoop,
    pub oom_kill: OomKill,
    pub memory_near_limit: MemoryNearLimit,
    pub alert_channel_unusable: AlertChannelUnusable,
}

impl Default for AlertRules {
    fn default() -> AlertRules {
        AlertRules {
            repeat_interval: Duration::from_secs(4 * 3600),
            disk_gc_shortfall: DiskGcShortfall::default(),
            disk_full_forecast: DiskFullForecast::default(),
            node_down: NodeDown::default(),
            agent_silent: AgentSilent::default(),
            service_not_converged: ServiceNotConverged::default(),
            rolled_back: RolledBack::default(),
            restart_loop: RestartLoop::default(),
            oom_kill: OomKill::default(),
            memory_near_limit: MemoryNearLimit::default(),
            alert_channel_unusable: AlertChannelUnusable::default(),
        }
    }
}

/// Disk at or above the GC high threshold while GC falls short: the seed's first incident,
/// caught when GC alone cannot fix it. Fires at once by default: GC has already tried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiskGcShortfall {
    pub enabled: bool,
    /// How long the condition must hold before the alert fires (Prometheus' `for:`).
    #[serde(rename = "for", with = "duration_text")]
    pub for_duration: Duration,
    /// How long the alert stays firing after its condition stopped holding (Prometheus'
    /// `keep_firing_for`): a condition that comes back within it sends nothing new. `0`
    /// resolves at once.
    #[serde(with = "duration_text")]
    pub keep_firing_for: Duration,
}

impl Default for DiskGcShortfall {
    fn default() -> DiskGcShortfall {
        DiskGcShortfall {
            enabled: true,
            for_duration: Duration::ZERO,
            keep_firing_for: Duration::ZERO,
        }
    }
}

/// Disk predicted full from the trend of the recent samples (least-squares lines over
/// `window` and its newest halves, as Prometheus' `predict_linear`); the rule in full, and
/// why it differs from node_exporter's `NodeFilesystemSpaceFillingUp` (6 h trend, `for: 1h`),
/// is [`crate::forecast_full`]'s module documentation. In short: the evidence a trend needs
/// and the alert's hold are a quarter of the predicted time to full, at most `min_span` and
/// `for`, and a trend must grow by 1 % of the disk (its newest half by 0.5 %), so a fill of
/// minutes warns within a minute or two and a fill of days after the full 5 minutes, while a
/// flat disk's noise never fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiskFullForecast {
    pub enabled: bool,
    /// Fire when the disk would be full within this long (24h, the mixin's warning horizon):
    /// a disk filling over two or three days is told before it reaches the GC threshold.
    #[serde(with = "duration_text")]
    pub within: Duration,
    /// The longest trend: the samples of the last `window` (1h); its halves are fitted too.
    #[serde(with = "duration_text")]
    pub window: Duration,
    /// The fewest samples a trend is fitted to (3: a rise, and its newest half rising too).
    pub min_samples: usize,
    /// The span a trend's samples need at most (5m); a trend that predicts full sooner needs
    /// only a quarter of its time to full.
    #[serde(with = "duration_text")]
    pub min_span: Duration,
    /// How long the prediction must hold at most before the alert fires (5m); it fires after
    /// a quarter of the predicted time to full when that is shorter.
    #[serde(rename = "for", with = "duration_text")]
    pub for_duration: Duration,
    /// How long the alert stays firing after its condition stopped holding (Prometheus'
    /// `keep_firing_for`): a condition that comes back within it sends nothing new. `0`
    /// resolves at once.
    #[serde(with = "duration_text")]
    pub keep_firing_for: Duration,
}

impl Default for DiskFullForecast {
    fn default() -> DiskFullForecast {
        DiskFullForecast {
            enabled: true,
            within: Duration::from_secs(24 * 3600),
            window: Duration::from_secs(3600),
            min_samples: 3,
            min_span: Duration::from_secs(5 * 60),
            for_duration: Duration::from_secs(5 * 60),
            keep_firing_for: Duration::ZERO,
        }
    }
}

/// Swarm calls a node down (or disconnected) for `for` (1m): a node restarting for a kernel
/// update does not page, nor one an operator drained first (`crate::Membership::Drained`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeDown {
    pub enabled: bool,
    #[serde(rename = "for", with = "duration_text")]
    pub for_duration: Duration,
    /// How long the alert stays firing after its condition stopped holding (Prometheus'
    /// `keep_firing_for`): a condition that comes back within it sends nothing new. `0`
    /// resolves at once.
    #[serde(with = "duration_text")]
    pub keep_firing_for: Duration,
}

impl Default for NodeDown {
    fn default() -> NodeDown {
        NodeDown {
            enabled: true,
            for_duration: Duration::from_secs(60),
            keep_firing_for: Duration::ZERO,
        }
    }
}

/// The node's agent stopped reporting (three missed intervals, at least 30 s:
/// `swarmkeeper_report::silent_after`). Raised only for a node still in the swarm and not
/// drained (`crate::Membership`): not for a node Swarm calls down (node-down says it already),
/// nor for a drained one (the drain stopped its agent), and never for a node removed from the
/// swarm (an alert it had resolves).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentSilent {
    pub enabled: bool,
    /// How long the alert stays firing after its condition stopped holding (Prometheus'
    /// `keep_firing_for`): a condition that comes back within it sends nothing new. `0`
    /// resolves at once.
    #[serde(with = "duration_text")]
    pub keep_firing_for: Duration,
}

impl Default for AgentSilent {
    fn default() -> AgentSilent {
        AgentSilent {
            enabled: true,
            keep_firing_for: Duration::ZERO,
        }
    }
}

/// A service not converged (its tasks not all running its current spec) for `for` (10m).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceNotConverged {
    pub enabled: bool,
    #[serde(rename = "for", with = "duration_text")]
    pub for_duration: Duration,
    /// How long the alert stays firing after its condition stopped holding (Prometheus'
    /// `keep_firing_for`): a condition that comes back within it sends nothing new. `0`
    /// resolves at once.
    #[serde(with = "duration_text")]
    pub keep_firing_for: Duration,
}

impl Default for ServiceNotConverged {
    fn default() -> ServiceNotConverged {
        ServiceNotConverged {
            enabled: true,
            for_duration: Duration::from_secs(10 * 60),
            keep_firing_for: Duration::ZERO,
        }
    }
}

/// A service whose last update was rolled back, by Swarm's `failure_action: rollback` or by
/// the deploy engine itself (its monitor timed out or saw a failure, and it put the service
/// back): fires at once, naming the revision and why when the deploy history has them, and
/// stays firing until a later update of the service starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RolledBack {
    pub enabled: bool,
    /// How long the alert stays firing after its condition stopped holding (Prometheus'
    /// `keep_firing_for`): a condition that comes back within it sends nothing new. `0`
    /// resolves at once.
    #[serde(with = "duration_text")]
    pub keep_firing_for: Duration,
}

impl Default for RolledBack {
    fn default() -> RolledBack {
        RolledBack {
            enabled: true,
            keep_firing_for: Duration::ZERO,
        }
    }
}

/// At least `restarts` task restarts of one service within `within` (5 in 10m).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RestartLoop {
    pub enabled: bool,
    pub restarts: usize,
    #[serde(with = "duration_text")]
    pub within: Duration,
    /// How long the alert stays firing after its condition stopped holding (Prometheus'
    /// `keep_firing_for`): a condition that comes back within it sends nothing new. `0`
    /// resolves at once.
    #[serde(with = "duration_text")]
    pub keep_firing_for: Duration,
}

impl Default for RestartLoop {
    fn default() -> RestartLoop {
        RestartLoop {
            enabled: true,
            restarts: 5,
            within: Duration::from_secs(10 * 60),
            keep_firing_for: Duration::ZERO,
        }
    }
}

/// An OOM kill in a task: an event, so the alert fires at once and keeps firing for
/// `keep_firing_for` (15m, Prometheus' term) after the task's last OOM kill, then resolves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OomKill {
    pub enabled: bool,
    #[serde(with = "duration_text")]
    pub keep_firing_for: Duration,
}

impl Default for OomKill {
    fn default() -> OomKill {
        OomKill {
            enabled: true,
            keep_firing_for: Duration::from_secs(15 * 60),
        }
    }
}

/// A task's memory at or above `percent` (90) of its limit for `for` (5m). Tasks without a
/// limit never match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryNearLimit {
    pub enabled: bool,
    pub percent: u8,
    #[serde(rename = "for", with = "duration_text")]
    pub for_duration: Duration,
    /// How long the alert stays firing after its condition stopped holding (Prometheus'
    /// `keep_firing_for`): a condition that comes back within it sends nothing new. `0`
    /// resolves at once.
    #[serde(with = "duration_text")]
    pub keep_firing_for: Duration,
}

impl Default for MemoryNearLimit {
    fn default() -> MemoryNearLimit {
        MemoryNearLimit {
            enabled: true,
            percent: 90,
            for_duration: Duration::from_secs(5 * 60),
            keep_firing_for: Duration::ZERO,
        }
    }
}

/// A stored alert channel the server cannot use: its settings were sealed with another key
/// (the key changed without a re-key) or do not read. The banner of the Alerts page and the
/// overview says so to whoever looks; this rule tells the channels that work (and the
/// `--alert-webhook`s) at once, one alert per channel, resolved when the channel is removed or
/// added again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertChannelUnusable {
    pub enabled: bool,
    /// How long the channel must stay unusable before the alert fires (0: the key changed at a
    /// start, nothing will change it back by itself).
    #[serde(rename = "for", with = "duration_text")]
    pub for_duration: Duration,
    /// How long the alert stays firing after its condition stopped holding (Prometheus'
    /// `keep_firing_for`): a condition that comes back within it sends nothing new. `0`
    /// resolves at once.
    #[serde(with = "duration_text")]
    pub keep_firing_for: Duration,
}

impl Default for AlertChannelUnusable {
    fn default() -> AlertChannelUnusable {
        AlertChannelUnusable {
            enabled: true,
            for_duration: Duration::ZERO,
            keep_firing_for: Duration::ZERO,
        }
    }
}

/// Alert rules that cannot work: the JSON does not parse, or a figure is out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    /// The text is not valid rules JSON; `line` and `column` count from 1.
    #[error("alert rules, line {line} column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    /// `field` is a dotted path such as `memory_near_limit.percent`.
    #[error("alert rules: {field} {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl AlertRules {
    /// Parses and validates rules as the server stores them (JSON; missing fields take their
    /// defaults).
    pub fn from_json(text: &str) -> Result<AlertRules, RulesError> {
        let rules: AlertRules = serde_json::from_str(text).map_err(|e| RulesError::Syntax {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        rules.validate()?;
        Ok(rules)
    }

    /// Checks every figure is in range.
    pub fn validate(&self) -> Result<(), RulesError> {
        let invalid = |field, reason: &str| {
            Err(RulesError::Invalid {
                field,
                reason: reason.to_string(),
            })
        };
        let forecast = &self.disk_full_forecast;
        if forecast.within.is_zero() {
            return invalid("disk_full_forecast.within", "must be longer than 0");
        }
        if forecast.window < Duration::from_secs(60) {
            return invalid("disk_full_forecast.window", "must be at least 1m");
        }
        if forecast.min_span > forecast.window {
            return invalid(
                "disk_full_forecast.min_span",
                "must not be longer than the window",
            );
        }
        if forecast.min_samples < 3 {
            return invalid(
                "disk_full_forecast.min_samples",
                "must be at least 3 (a rise, and its newest half rising too)",
            );
        }
        if self.restart_loop.restarts == 0 {
            return invalid("restart_loop.restarts", "must be at least 1");
        }
        if self.restart_loop.within.is_zero() {
            return invalid("restart_loop.within", "must be longer than 0");
        }
        if !(1..=100).contains(&self.memory_near_limit.percent) {
            return invalid("memory_near_limit.percent", "must be between 1 and 100");
        }
        Ok(())
    }

    /// Whether `rule` is switched on (the test rule always is).
    pub fn enabled(&self, rule: RuleId) -> bool {
        match rule {
            RuleId::DiskGcShortfall => self.disk_gc_shortfall.enabled,
            RuleId::DiskFullForecast => self.disk_full_forecast.enabled,
            RuleId::NodeDown => self.node_down.enabled,
            RuleId::AgentSilent => self.agent_silent.enabled,
            RuleId::ServiceNotConverged => self.service_not_converged.enabled,
            RuleId::RolledBack => self.rolled_back.enabled,
            RuleId::RestartLoop => self.restart_loop.enabled,
            RuleId::OomKill => self.oom_kill.enabled,
            RuleId::MemoryNearLimit => self.memory_near_limit.enabled,
            RuleId::AlertChannelUnusable => self.alert_channel_unusable.enabled,
            RuleId::Test => true,
        }
    }

    /// How long `rule`'s condition must hold before its alert fires (Prometheus' `for:`);
    /// zero for rules that fire at once.
    pub fn for_duration(&self, rule: RuleId) -> Duration {
        match rule {
            RuleId::DiskGcShortfall => self.disk_gc_shortfall.for_duration,
            RuleId::DiskFullForecast => self.disk_full_forecast.for_duration,
            RuleId::NodeDown => self.node_down.for_duration,
            RuleId::ServiceNotConverged => self.service_not_converged.for_duration,
            RuleId::MemoryNearLimit => self.memory_near_limit.for_duration,
            RuleId::AlertChannelUnusable => self.alert_channel_unusable.for_duration,
            RuleId::AgentSilent
            | RuleId::RolledBack
            | RuleId::RestartLoop
            | RuleId::OomKill
            | RuleId::Test => Duration::ZERO,
        }
    }

    /// How long `rule`'s alert stays firing after its condition stopped holding (Prometheus'
    /// `keep_firing_for`, 2.42), as `crate::step` applies it. Zero for oom-kill: its
    /// condition is already "a kill within its `keep_firing_for`" (an event has no duration
    /// to hold), so the engine adds nothing to it; and for the test message.
    pub fn keep_firing_for(&self, rule: RuleId) -> Duration {
        match rule {
            RuleId::DiskGcShortfall => self.disk_gc_shortfall.keep_firing_for,
            RuleId::DiskFullForecast => self.disk_full_forecast.keep_firing_for,
            RuleId::NodeDown => self.node_down.keep_firing_for,
            RuleId::AgentSilent => self.agent_silent.keep_firing_for,
            RuleId::ServiceNotConverged => self.service_not_converged.keep_firing_for,
            RuleId::RolledBack => self.rolled_back.keep_firing_for,
            RuleId::RestartLoop => self.restart_loop.keep_firing_for,
            RuleId::MemoryNearLimit => self.memory_near_limit.keep_firing_for,
            RuleId::AlertChannelUnusable => self.alert_channel_unusable.keep_firing_for,
            RuleId::OomKill | RuleId::Test => Duration::ZERO,
        }
    }
}

/// Durations as the product writes them everywhere (`90s`, `5m`, `4h`, `0`): read with
/// `swarmkeeper_gc::parse_duration` (the one grammar, `swarmkeeper_units`'), written in
/// hours, minutes and seconds without the zero parts (`24h`, `1h30m`; humantime would write
/// `1day`, which that grammar does not read), below a second with humantime.
pub(crate) mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        if value.subsec_nanos() != 0 || value.is_zero() {
            return serializer.collect_str(&humantime::format_duration(*value));
        }
        let seconds = value.as_secs();
        let mut text = String::new();
        for (amount, unit) in [
            (seconds / 3600, "h"),
            (seconds / 60 % 60, "m"),
            (seconds % 60, "s"),
        ] {
            if amount > 0 {
                text.push_str(&format!("{amount}{unit}"));
            }
        }
        serializer.collect_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        swarmkeeper_gc::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_json_is_the_default_set() {
        assert_eq!(AlertRules::from_json("{}").unwrap(), AlertRules::default());
    }

    #[test]
    fn a_partial_rule_keeps_its_other_defaults() {
        let rules = AlertRules::from_json(r#"{"node_down": {"for": "5m"}}"#).unwrap();
        assert!(rules.node_down.enabled);
        assert_eq!(rules.node_down.for_duration, Duration::from_secs(300));
        assert_eq!(rules.memory_near_limit, MemoryNearLimit::default());
    }

    #[test]
    fn rules_round_trip_through_json_with_readable_durations() {
        let json = serde_json::to_value(AlertRules::default()).unwrap();
        assert_eq!(json["repeat_interval"], "4h");
        assert_eq!(json["service_not_converged"]["for"], "10m");
        assert_eq!(json["disk_gc_shortfall"]["for"], "0s");
        assert_eq!(json["disk_full_forecast"]["within"], "24h");
        assert_eq!(json["alert_channel_unusable"]["enabled"], true);
        assert_eq!(json["alert_channel_unusable"]["for"], "0s");
        assert_eq!(json["node_down"]["keep_firing_for"], "0s");
        assert_eq!(json["oom_kill"]["keep_firing_for"], "15m");
        let back: AlertRules = serde_json::from_value(json).unwrap();
        assert_eq!(back, AlertRules::default());
    }

    #[test]
    fn an_unknown_field_is_named_with_its_position() {
        let err = AlertRules::from_json("{\n  \"node_down\": {\"fro\": \"5m\"}\n}").unwrap_err();
        let RulesError::Syntax { line, message, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(*line, 2);
        assert!(message.contains("unknown field `fro`"), "{message}");
    }

    #[test]
    fn keep_firing_for_is_read_per_rule_in_the_units_grammar() {
        let rules = AlertRules::from_json(
            r#"{"memory_near_limit": {"keep_firing_for": "1h30m"},
                "alert_channel_unusable": {"enabled": false}}"#,
        )
        .unwrap();
        assert_eq!(
            rules.keep_firing_for(RuleId::MemoryNearLimit),
            Duration::from_secs(5400)
        );
        assert_eq!(rules.keep_firing_for(RuleId::NodeDown), Duration::ZERO);
        // oom-kill's keep is its condition's window, not added again by the engine.
        assert_eq!(rules.keep_firing_for(RuleId::OomKill), Duration::ZERO);
        assert!(!rules.enabled(RuleId::AlertChannelUnusable));
        let err =
            AlertRules::from_json(r#"{"node_down": {"keep_firing_for": "5 min"}}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "alert rules, line 1 column 42: invalid duration \"5 min\": unknown unit \" min\", \
             expected ns, us, ms, s, m or h at line 1 column 42"
        );
    }

    #[test]
    fn a_bad_duration_says_what_is_expected() {
        let err = AlertRules::from_json(r#"{"repeat_interval": "soon"}"#).unwrap_err();
        assert!(
            err.to_string()
                .contains("expected a number and a unit, like 90s, 2m or 1h30m"),
            "{err}"
        );
    }

    #[test]
    fn out_of_range_figures_name_their_field() {
        for (json, field) in [
            (
                r#"{"memory_near_limit": {"percent": 0}}"#,
                "memory_near_limit.percent",
            ),
            (
                r#"{"memory_near_limit": {"percent": 101}}"#,
                "memory_near_limit.percent",
            ),
            (
                r#"{"restart_loop": {"restarts": 0}}"#,
                "restart_loop.restarts",
            ),
            (
                r#"{"disk_full_forecast": {"min_samples": 1}}"#,
                "disk_full_forecast.min_samples",
            ),
            (
                r#"{"disk_full_forecast": {"window": "30s"}}"#,
                "disk_full_forecast.window",
            ),
        ] {
            match AlertRules::from_json(json) {
                Err(RulesError::Invalid { field: f, .. }) => assert_eq!(f, field, "{json}"),
                other => panic!("{json}: {other:?}"),
            }
        }
    }

    #[test]
    fn rule_ids_read_back_from_their_text() {
        for rule in RuleId::ALL.into_iter().chain([RuleId::Test]) {
            assert_eq!(rule.as_str().parse::<RuleId>().unwrap(), rule);
            assert_eq!(
                serde_json::to_value(rule).unwrap(),
                serde_json::Value::from(rule.as_str())
            );
        }
        assert!("disk".parse::<RuleId>().unwrap_err().contains("node-down"));
    }
}
