//! From conditions to alerts and messages: pending and firing (Prometheus' `for:`),
//! de-duplication, the repeat interval, silences and resolution.
//!
//! Invariants (tested in `tests/properties.rs`):
//! - at most one alert per (rule, subject), and at most one message per (rule, subject) per
//!   step;
//! - a firing message for an ongoing alert goes out when it starts firing, then again only
//!   after the repeat interval;
//! - a resolved message goes out only for an alert whose firing message went out;
//! - silences decide which messages go out, never the alerts' state.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::ended::why_ended;
use crate::message::{Message, Status};
use crate::observe::{conditions, signed, Conditions, Observation};
use crate::rules::{AlertRules, RuleId};

/// One ongoing alert: a condition that holds (pending) or has held long enough (firing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub rule: RuleId,
    pub subject: String,
    /// The latest summary of the condition.
    pub summary: String,
    /// When the condition was first seen holding (Prometheus' `activeAt`); messages carry it
    /// as `started_at`.
    pub active_since: Timestamp,
    /// When the condition had held for the rule's `for`; `None` while pending.
    pub firing_since: Option<Timestamp>,
    /// When a firing message last went out (was decided: how its delivery went does not change
    /// it, `crate::Outbox` retries a failed one); `None` if none did (pending, or silenced
    /// since it fired).
    pub last_notified: Option<Timestamp>,
    /// The channels (by name) its firing message went to (see `crate::route`); `None` in a
    /// state written before channels were told apart: every channel counts as told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub told: Option<BTreeSet<String>>,
    /// When its condition stopped holding while it fired: it keeps firing until its rule's
    /// `keep_firing_for` has passed since (Prometheus' `KeepFiringSince`); `None` while the
    /// condition holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleared_since: Option<Timestamp>,
}

impl Alert {
    pub fn is_firing(&self) -> bool {
        self.firing_since.is_some()
    }

    pub(crate) fn message(&self, status: Status, now: Timestamp) -> Message {
        Message {
            status,
            rule: self.rule,
            subject: self.subject.clone(),
            summary: self.summary.clone(),
            started_at: self.active_since,
            ended_at: (status == Status::Resolved).then_some(now),
        }
    }
}

/// Every ongoing alert, one per (rule, subject). The server stores it between evaluations
/// (JSON: a list of [`Alert`]s) so that a restart neither repeats nor forgets an alert.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<Alert>", into = "Vec<Alert>")]
pub struct AlertState {
    pub(crate) alerts: BTreeMap<(RuleId, String), Alert>,
}

impl From<Vec<Alert>> for AlertState {
    fn from(alerts: Vec<Alert>) -> AlertState {
        AlertState {
            alerts: alerts
                .into_iter()
                .map(|a| ((a.rule, a.subject.clone()), a))
                .collect(),
        }
    }
}

impl From<AlertState> for Vec<Alert> {
    fn from(state: AlertState) -> Vec<Alert> {
        state.alerts.into_values().collect()
    }
}

impl AlertState {
    /// The ongoing alerts, pending and firing, by rule then subject.
    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.values()
    }

    pub fn get(&self, rule: RuleId, subject: &str) -> Option<&Alert> {
        self.alerts.get(&(rule, subject.to_string()))
    }

    /// A firing message for every alert that is firing, has been sent, and is not silenced
    /// now: what a receiver that forgets alerts unless reminded (Alertmanager resolves an
    /// alert it has not heard of for a few minutes) must be sent again every minute or so.
    pub fn firing_messages(&self, silences: &[Silence], now: Timestamp) -> Vec<Message> {
        self.alerts
            .values()
            .filter(|a| a.is_firing() && a.last_notified.is_some())
            .filter(|a| !silenced(silences, a.rule, &a.subject, now))
            .map(|a| a.message(Status::Firing, now))
            .collect()
    }
}

/// Mutes the messages of matching alerts from `starts_at` until `ends_at`; the alerts
/// themselves go on (their state, start time and history do not change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// Match only this rule; `None`: every rule.
    pub rule: Option<RuleId>,
    /// Match only this subject, exactly; `None`: every subject.
    pub subject: Option<String>,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    /// Who made it and why, for the alert history page.
    pub created_by: String,
    pub comment: String,
}

/// A silence that could never do what it says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SilenceError {
    #[error("a silence must name a rule, a subject or both (it would mute every alert)")]
    MatchesEverything,
    #[error("a silence must end after it starts ({starts_at} is not before {ends_at})")]
    EndsBeforeStart {
        starts_at: Timestamp,
        ends_at: Timestamp,
    },
}

impl Silence {
    /// Checks the silence names something to match and ends after it starts.
    pub fn validate(&self) -> Result<(), SilenceError> {
        if self.rule.is_none() && self.subject.is_none() {
            return Err(SilenceError::MatchesEverything);
        }
        if self.ends_at <= self.starts_at {
            return Err(SilenceError::EndsBeforeStart {
                starts_at: self.starts_at,
                ends_at: self.ends_at,
            });
        }
        Ok(())
    }

    /// Whether the silence names anything that exists now: a silence of a rule alone
    /// matches whatever that rule fires for next; one naming a subject needs an `ongoing`
    /// alert (rule, subject) it matches, or that subject among `known` (the swarm's node
    /// hostnames, service names and task slots, as alerts name them). A silence that
    /// matches nothing is allowed (the subject may come back), but its maker should be told:
    /// a typo mutes nothing.
    pub fn matches_something(&self, ongoing: &[(RuleId, &str)], known: &[String]) -> bool {
        let Some(subject) = &self.subject else {
            return true;
        };
        ongoing
            .iter()
            .any(|(rule, s)| self.rule.is_none_or(|r| r == *rule) && s == subject)
            || known.iter().any(|k| k == subject)
    }

    /// Whether the silence mutes `rule` about `subject` at `now` (from `starts_at` included to
    /// `ends_at` excluded).
    pub fn matches(&self, rule: RuleId, subject: &str, now: Timestamp) -> bool {
        self.starts_at <= now
            && now < self.ends_at
            && self.rule.is_none_or(|r| r == rule)
            && self.subject.as_deref().is_none_or(|s| s == subject)
    }
}

pub(crate) fn silenced(silences: &[Silence], rule: RuleId, subject: &str, now: Timestamp) -> bool {
    silences.iter().any(|s| s.matches(rule, subject, now))
}

/// Conditions then [`step`]: one evaluation of the rules over `observation`. A resolved
/// message says why its alert ended ([`why_ended`] over the same observation), not what the
/// last firing one said.
pub fn evaluate(
    state: &mut AlertState,
    rules: &AlertRules,
    observation: &Observation,
    silences: &[Silence],
    now: Timestamp,
) -> Vec<Message> {
    let mut messages = step(
        state,
        &conditions(rules, observation, now),
        rules,
        silences,
        now,
    );
    for message in &mut messages {
        if message.status == Status::Resolved {
            message.summary = why_ended(rules, observation, message.rule, &message.subject, now);
        }
    }
    messages
}

/// Advances `state` to `now` given the conditions that hold, and returns the messages to
/// send, resolved ones first, each kind by rule then subject:
///
/// - a condition without an alert starts one, pending since `now`; an alert fires once its
///   condition has held for the rule's `for` (at once when that is zero), or for the
///   condition's own `hold` when that is shorter (the disk forecast's, judged by the latest
///   condition);
/// - a firing alert is sent when it starts firing, and again every `repeat_interval` (never
///   again when that is zero), unless a silence matches it now; a silenced alert is sent as
///   soon as no silence matches it (its first firing message, or the repeat that is due);
/// - an alert whose condition no longer holds goes; a resolved message goes out for it if a
///   firing one did (even while silenced: the receivers already know of it). A pending alert
///   goes quietly. A firing alert whose rule has a `keep_firing_for` stays firing (and
///   repeats) until that long after the first step that saw its condition gone, and the
///   condition coming back within it sends nothing new (Prometheus' `keep_firing_for`): a
///   flapping condition sends one firing and one resolved message;
/// - an alert whose condition is unknown (its pair in `unknown`, or its rule in
///   `unknown_rules`) stays as it is (and keeps its `for` clock running);
/// - an alert whose pair is `held` stays exactly as it is: it neither fires nor repeats
///   nor resolves, and a held pair starts no alert;
/// - the `Test` rule is never in `conditions`; a duplicate condition counts once (the first
///   summary wins).
///
/// `now` should not go backwards between calls; if it does, no duration counts as elapsed.
pub fn step(
    state: &mut AlertState,
    conditions: &Conditions,
    rules: &AlertRules,
    silences: &[Silence],
    now: Timestamp,
) -> Vec<Message> {
    let mut holding: BTreeMap<(RuleId, String), (&str, Option<Duration>)> = BTreeMap::new();
    for c in &conditions.active {
        holding
            .entry((c.rule, c.subject.clone()))
            .or_insert((&c.summary, c.hold));
    }
    let mut resolved = Vec::new();
    state.alerts.retain(|key, alert| {
        let known = holding.contains_key(key)
            || conditions.unknown.contains(key)
            || conditions.unknown_rules.contains(&key.0)
            || conditions.held.contains(key);
        if holding.contains_key(key) {
            alert.cleared_since = None;
        }
        let keep = known || kept_firing(alert, rules, now);
        if !keep && alert.last_notified.is_some() {
            resolved.push(alert.message(Status::Resolved, now));
        }
        keep
    });
    for (key, (summary, _)) in &holding {
        let alert = state.alerts.entry(key.clone()).or_insert_with(|| Alert {
            rule: key.0,
            subject: key.1.clone(),
            summary: String::new(),
            active_since: now,
            firing_since: None,
            last_notified: None,
            told: Some(BTreeSet::new()),
            cleared_since: None,
        });
        alert.summary = summary.to_string();
    }
    let mut firing = Vec::new();
    for (key, alert) in state.alerts.iter_mut() {
        if conditions.held.contains(key) {
            continue;
        }
        let for_duration = rules.for_duration(alert.rule);
        let hold = match holding.get(key) {
            Some((_, Some(hold))) => for_duration.min(*hold),
            _ => for_duration,
        };
        if alert.firing_since.is_none() && now.duration_since(alert.active_since) >= signed(hold) {
            alert.firing_since = Some(now);
        }
        if !alert.is_firing() || silenced(silences, alert.rule, &alert.subject, now) {
            continue;
        }
        let due = match alert.last_notified {
            None => true,
            Some(last) => {
                !rules.repeat_interval.is_zero()
                    && now.duration_since(last) >= signed(rules.repeat_interval)
            }
        };
        if due {
            alert.last_notified = Some(now);
            firing.push(alert.message(Status::Firing, now));
        }
    }
    resolved.extend(firing);
    resolved
}

/// Whether a firing alert whose condition no longer holds stays firing at `now`: its rule
/// (switched on) keeps it for `keep_firing_for` from the first evaluation that saw the
/// condition gone. A pending alert is not kept (Prometheus keeps only firing ones).
fn kept_firing(alert: &mut Alert, rules: &AlertRules, now: Timestamp) -> bool {
    let keep = rules.keep_firing_for(alert.rule);
    if !alert.is_firing() || keep.is_zero() || !rules.enabled(alert.rule) {
        return false;
    }
    let since = *alert.cleared_since.get_or_insert(now);
    now.duration_since(since) < signed(keep)
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;
    use crate::observe::Condition;

    fn t(minutes: i64) -> Timestamp {
        "2026-11-26T12:00:00Z".parse::<Timestamp>().unwrap() + SignedDuration::from_mins(minutes)
    }

    fn holding(list: &[(RuleId, &str)]) -> Conditions {
        Conditions {
            active: list
                .iter()
                .map(|(rule, subject)| Condition {
                    rule: *rule,
                    subject: subject.to_string(),
                    summary: format!("{rule} on {subject}"),
                    hold: None,
                })
                .collect(),
            unknown: vec![],
            unknown_rules: vec![],
            ..Conditions::default()
        }
    }

    fn sent(messages: &[Message]) -> Vec<(Status, RuleId, &str)> {
        messages
            .iter()
            .map(|m| (m.status, m.rule, m.subject.as_str()))
            .collect()
    }

    const DOWN: RuleId = RuleId::NodeDown;

    #[test]
    fn an_alert_fires_after_its_for_duration_and_resolves_once() {
        let rules = AlertRules::default();
        let mut state = AlertState::default();
        let down = holding(&[(DOWN, "w1")]);
        assert!(step(&mut state, &down, &rules, &[], t(0)).is_empty());
        assert!(!state.get(DOWN, "w1").unwrap().is_firing());
        let firing = step(&mut state, &down, &rules, &[], t(1));
        assert_eq!(sent(&firing), [(Status::Firing, DOWN, "w1")]);
        assert_eq!(firing[0].started_at, t(0));
        assert!(
            step(&mut state, &down, &rules, &[], t(2)).is_empty(),
            "no duplicate"
        );
        let resolved = step(&mut state, &holding(&[]), &rules, &[], t(3));
        assert_eq!(sent(&resolved), [(Status::Resolved, DOWN, "w1")]);
        assert_eq!(resolved[0].ended_at, Some(t(3)));
        assert!(step(&mut state, &holding(&[]), &rules, &[], t(4)).is_empty());
    }

    /// Prometheus' `keep_firing_for`: a node that comes back and goes down again within it is
    /// one alert, firing once; it resolves once it stays up that long.
    #[test]
    fn a_firing_alert_is_kept_through_a_flap_and_resolves_after_keep_firing_for() {
        let mut rules = AlertRules::default();
        rules.node_down.keep_firing_for = Duration::from_secs(5 * 60);
        let mut state = AlertState::default();
        let down = holding(&[(DOWN, "w1")]);
        let up = holding(&[]);
        step(&mut state, &down, &rules, &[], t(0));
        assert_eq!(step(&mut state, &down, &rules, &[], t(1)).len(), 1);
        assert!(step(&mut state, &up, &rules, &[], t(2)).is_empty(), "kept");
        assert!(state.get(DOWN, "w1").unwrap().is_firing());
        assert!(
            step(&mut state, &down, &rules, &[], t(4)).is_empty(),
            "no new firing"
        );
        assert_eq!(state.get(DOWN, "w1").unwrap().active_since, t(0));
        // Up again from minute 5: the keep counts from there, not from minute 2.
        assert!(step(&mut state, &up, &rules, &[], t(5)).is_empty());
        assert!(step(&mut state, &up, &rules, &[], t(9)).is_empty());
        let resolved = step(&mut state, &up, &rules, &[], t(10));
        assert_eq!(sent(&resolved), [(Status::Resolved, DOWN, "w1")]);
        assert_eq!(resolved[0].started_at, t(0));
        // A pending alert is not kept, and a rule switched off resolves at once.
        step(&mut state, &down, &rules, &[], t(20));
        step(
            &mut state,
            &up,
            &rules,
            &[],
            t(20) + SignedDuration::from_secs(30),
        );
        assert!(state.get(DOWN, "w1").is_none());
        step(&mut state, &down, &rules, &[], t(30));
        step(&mut state, &down, &rules, &[], t(31));
        rules.node_down.enabled = false;
        assert_eq!(step(&mut state, &up, &rules, &[], t(32)).len(), 1);
    }

    #[test]
    fn a_pending_alert_that_clears_sends_nothing_and_starts_over() {
        let rules = AlertRules::default();
        let mut state = AlertState::default();
        let down = holding(&[(DOWN, "w1")]);
        step(&mut state, &down, &rules, &[], t(0));
        assert!(step(
            &mut state,
            &holding(&[]),
            &rules,
            &[],
            t(0) + SignedDuration::from_secs(30)
        )
        .is_empty());
        step(&mut state, &down, &rules, &[], t(1));
        assert_eq!(state.get(DOWN, "w1").unwrap().active_since, t(1));
        assert!(step(
            &mut state,
            &down,
            &rules,
            &[],
            t(1) + SignedDuration::from_secs(59)
        )
        .is_empty());
    }

    #[test]
    fn a_firing_alert_repeats_after_the_repeat_interval() {
        let rules = AlertRules {
            repeat_interval: Duration::from_secs(3600),
            ..AlertRules::default()
        };
        let mut state = AlertState::default();
        let rolled = holding(&[(RuleId::RolledBack, "web")]);
        assert_eq!(step(&mut state, &rolled, &rules, &[], t(0)).len(), 1);
        assert!(step(&mut state, &rolled, &rules, &[], t(59)).is_empty());
        let again = step(&mut state, &rolled, &rules, &[], t(60));
        assert_eq!(sent(&again), [(Status::Firing, RuleId::RolledBack, "web")]);
        assert_eq!(again[0].started_at, t(0), "a repeat keeps the start time");
        let once = AlertRules {
            repeat_interval: Duration::ZERO,
            ..AlertRules::default()
        };
        assert!(step(&mut state, &rolled, &once, &[], t(600)).is_empty());
    }

    #[test]
    fn a_silence_mutes_firing_until_it_ends_but_the_alert_goes_on() {
        let rules = AlertRules::default();
        let mut state = AlertState::default();
        let silence = Silence {
            rule: None,
            subject: Some("web".into()),
            starts_at: t(0),
            ends_at: t(30),
            created_by: "admin".into(),
            comment: "maintenance".into(),
        };
        silence.validate().unwrap();
        let rolled = holding(&[(RuleId::RolledBack, "web")]);
        let silences = [silence];
        assert!(step(&mut state, &rolled, &rules, &silences, t(0)).is_empty());
        let alert = state.get(RuleId::RolledBack, "web").unwrap();
        assert_eq!(alert.firing_since, Some(t(0)));
        assert!(step(&mut state, &rolled, &rules, &silences, t(29)).is_empty());
        let after = step(&mut state, &rolled, &rules, &silences, t(30));
        assert_eq!(sent(&after), [(Status::Firing, RuleId::RolledBack, "web")]);
        assert_eq!(after[0].started_at, t(0));
    }

    #[test]
    fn an_alert_resolved_while_silenced_sends_resolved_only_if_it_was_sent() {
        let rules = AlertRules::default();
        let silence = |start| Silence {
            rule: Some(RuleId::RolledBack),
            subject: None,
            starts_at: t(start),
            ends_at: t(100),
            created_by: "admin".into(),
            comment: String::new(),
        };
        let rolled = holding(&[(RuleId::RolledBack, "web")]);
        // Sent before the silence: the receivers hear it is over.
        let mut state = AlertState::default();
        step(&mut state, &rolled, &rules, &[silence(1)], t(0));
        let resolved = step(&mut state, &holding(&[]), &rules, &[silence(1)], t(2));
        assert_eq!(
            sent(&resolved),
            [(Status::Resolved, RuleId::RolledBack, "web")]
        );
        // Silenced all along: nothing at all.
        let mut state = AlertState::default();
        step(&mut state, &rolled, &rules, &[silence(0)], t(0));
        assert!(step(&mut state, &holding(&[]), &rules, &[silence(0)], t(2)).is_empty());
    }

    #[test]
    fn an_unknown_condition_keeps_its_alert() {
        let rules = AlertRules::default();
        let mut state = AlertState::default();
        let key = (RuleId::DiskGcShortfall, "w1".to_string());
        step(&mut state, &holding(&[(key.0, "w1")]), &rules, &[], t(0));
        let unknown = Conditions {
            active: vec![],
            unknown: vec![key.clone()],
            unknown_rules: vec![],
            ..Conditions::default()
        };
        assert!(step(&mut state, &unknown, &rules, &[], t(5)).is_empty());
        assert!(state.get(key.0, "w1").unwrap().is_firing());
        assert_eq!(step(&mut state, &holding(&[]), &rules, &[], t(6)).len(), 1);
    }

    #[test]
    fn an_unknown_rule_keeps_its_alerts_and_starts_none() {
        let rules = AlertRules::default();
        let mut state = AlertState::default();
        let near = RuleId::MemoryNearLimit;
        step(&mut state, &holding(&[(near, "web.1")]), &rules, &[], t(0));
        let fired = step(&mut state, &holding(&[(near, "web.1")]), &rules, &[], t(5));
        assert_eq!(sent(&fired), [(Status::Firing, near, "web.1")]);
        let waiting = Conditions {
            unknown_rules: vec![near],
            ..Conditions::default()
        };
        assert!(step(&mut state, &waiting, &rules, &[], t(6)).is_empty());
        assert!(state.get(near, "web.1").unwrap().is_firing());
        assert_eq!(
            sent(&step(&mut state, &holding(&[]), &rules, &[], t(7))),
            [(Status::Resolved, near, "web.1")]
        );
    }

    #[test]
    fn state_round_trips_through_json() {
        let rules = AlertRules::default();
        let mut state = AlertState::default();
        step(
            &mut state,
            &holding(&[(DOWN, "w1"), (RuleId::RolledBack, "web")]),
            &rules,
            &[],
            t(0),
        );
        let json = serde_json::to_string(&state).unwrap();
        assert!(json.starts_with('['), "{json}");
        assert_eq!(serde_json::from_str::<AlertState>(&json).unwrap(), state);
    }

    #[test]
    fn silences_that_cannot_work_are_refused() {
        let mut s = Silence {
            rule: None,
            subject: None,
            starts_at: t(0),
            ends_at: t(1),
            created_by: String::new(),
            comment: String::new(),
        };
        assert_eq!(s.validate(), Err(SilenceError::MatchesEverything));
        s.rule = Some(DOWN);
        s.ends_at = t(0);
        assert!(matches!(
            s.validate(),
            Err(SilenceError::EndsBeforeStart { .. })
        ));
    }

    #[test]
    fn a_silence_of_a_subject_nothing_has_matches_nothing() {
        let silence = |rule, subject: Option<&str>| Silence {
            rule,
            subject: subject.map(str::to_owned),
            starts_at: t(0),
            ends_at: t(1),
            created_by: String::new(),
            comment: String::new(),
        };
        let known = ["w1".to_owned(), "web".to_owned(), "web.1".to_owned()];
        let ongoing = [(DOWN, "gone-node")];
        assert!(silence(Some(DOWN), None).matches_something(&[], &[]));
        assert!(silence(None, Some("web.1")).matches_something(&[], &known));
        assert!(silence(Some(DOWN), Some("gone-node")).matches_something(&ongoing, &known));
        assert!(silence(None, Some("gone-node")).matches_something(&ongoing, &known));
        assert!(!silence(Some(RuleId::RolledBack), Some("gone-node"))
            .matches_something(&ongoing, &known));
        assert!(!silence(None, Some("no-such-node")).matches_something(&ongoing, &known));
    }

    #[test]
    fn firing_messages_lists_sent_unsilenced_firing_alerts() {
        let rules = AlertRules::default();
        let mut state = AlertState::default();
        step(
            &mut state,
            &holding(&[
                (DOWN, "w1"),
                (RuleId::RolledBack, "web"),
                (RuleId::RolledBack, "api"),
            ]),
            &rules,
            &[],
            t(0),
        );
        let mute_api = Silence {
            rule: None,
            subject: Some("api".into()),
            starts_at: t(0),
            ends_at: t(10),
            created_by: String::new(),
            comment: String::new(),
        };
        let messages = state.firing_messages(&[mute_api], t(1));
        assert_eq!(
            sent(&messages),
            [(Status::Firing, RuleId::RolledBack, "web")]
        );
    }
}
