//! Which channel gets which message: one evaluation's messages, and the firing alerts a
//! channel has not been told of because it was added after they fired.
//!
//! Alertmanager keeps a notification log per receiver and alert group: a receiver with no entry
//! for a group that has firing alerts is notified at the group's next flush, and one with no
//! entry for a group whose alerts are all resolved is not notified at all (its `DedupStage`).
//! So a receiver added while an alert fires gets it at once, not after the repeat interval,
//! and never hears of a resolution it had no firing for. The same here, per channel name: a
//! channel added while an alert fires gets its firing message at the next evaluation, and the
//! resolved message goes to the channels that were told it fired.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;

use crate::engine::{evaluate, silenced, AlertState, Silence};
use crate::message::{Message, Status};
use crate::observe::Observation;
use crate::rules::{AlertRules, RuleId};

/// One message and the channels (by name) it goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    pub message: Message,
    pub channels: Vec<String>,
    /// A firing message for a channel added after the alert fired: the other channels had it
    /// already (the history says so).
    pub catch_up: bool,
}

/// [`evaluate`], then each message with the channels it goes to, out of `channels` (every
/// channel's name):
///
/// - a firing message of the evaluation goes to every channel, which are then told;
/// - a resolved message goes to the channels told that it fired and still there (every
///   channel for an alert from a state that did not record it);
/// - an alert that fires, was sent, and is not silenced now goes to each channel not told of
///   it yet (a channel added since it fired), after the evaluation's own messages;
/// - a channel that went is forgotten, so one added again under its name is told again.
///
/// The messages of the evaluation keep their order: resolved first, then firing.
pub fn evaluate_routed(
    state: &mut AlertState,
    rules: &AlertRules,
    observation: &Observation,
    silences: &[Silence],
    channels: &[String],
    now: Timestamp,
) -> Vec<Routed> {
    let all: BTreeSet<String> = channels.iter().cloned().collect();
    let told_before: BTreeMap<(RuleId, String), Option<BTreeSet<String>>> = state
        .alerts
        .iter()
        .map(|(key, alert)| (key.clone(), alert.told.clone()))
        .collect();
    let messages = evaluate(state, rules, observation, silences, now);
    let mut routed = Vec::new();
    let mut just_sent = BTreeSet::new();
    for message in messages {
        let key = (message.rule, message.subject.clone());
        let to: Vec<String> = match message.status {
            Status::Firing => {
                if let Some(alert) = state.alerts.get_mut(&key) {
                    alert.told = Some(all.clone());
                }
                just_sent.insert(key);
                all.iter().cloned().collect()
            }
            Status::Resolved => match told_before.get(&key).cloned().flatten() {
                Some(told) => told.intersection(&all).cloned().collect(),
                None => all.iter().cloned().collect(),
            },
        };
        routed.push(Routed {
            message,
            channels: to,
            catch_up: false,
        });
    }
    for (key, alert) in state.alerts.iter_mut() {
        let due = !just_sent.contains(key)
            && alert.is_firing()
            && alert.last_notified.is_some()
            && !silenced(silences, alert.rule, &alert.subject, now);
        let message = alert.message(Status::Firing, now);
        let told = alert.told.get_or_insert_with(|| all.clone());
        told.retain(|name| all.contains(name));
        let missing: Vec<String> = all.difference(told).cloned().collect();
        if !due || missing.is_empty() {
            continue;
        }
        told.extend(missing.iter().cloned());
        routed.push(Routed {
            message,
            channels: missing,
            catch_up: true,
        });
    }
    routed
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;
    use crate::engine::Alert;
    use crate::observe::NodeObservation;

    fn t(seconds: i64) -> Timestamp {
        "2026-11-26T12:00:00Z".parse::<Timestamp>().unwrap() + SignedDuration::from_secs(seconds)
    }

    fn down(nodes: &[&str]) -> Observation {
        Observation {
            nodes: nodes
                .iter()
                .map(|name| NodeObservation {
                    name: name.to_string(),
                    down: true,
                    membership: crate::Membership::Member,
                    last_report: None,
                    ready_since: None,
                    report_interval_seconds: 0,
                    disk: None,
                })
                .collect(),
            ..Observation::default()
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn routes(routed: &[Routed]) -> Vec<(Status, &str, Vec<&str>, bool)> {
        routed
            .iter()
            .map(|r| {
                (
                    r.message.status,
                    r.message.subject.as_str(),
                    r.channels.iter().map(String::as_str).collect(),
                    r.catch_up,
                )
            })
            .collect()
    }

    #[test]
    fn a_channel_added_while_an_alert_fires_gets_it_at_the_next_evaluation() {
        let rules = AlertRules::default();
        let mut state = AlertState::default();
        let one = names(&["hook"]);
        let two = names(&["hook", "late"]);
        let w1 = down(&["w1"]);
        // Node down fires after its `for` (1 minute).
        assert!(evaluate_routed(&mut state, &rules, &w1, &[], &one, t(0)).is_empty());
        let fired = evaluate_routed(&mut state, &rules, &w1, &[], &one, t(60));
        assert_eq!(
            routes(&fired),
            [(Status::Firing, "w1", vec!["hook"], false)]
        );
        assert!(evaluate_routed(&mut state, &rules, &w1, &[], &one, t(63)).is_empty());
        // "late" is added: it gets the firing alert at once, not after the repeat interval,
        // and "hook" gets nothing new.
        let caught = evaluate_routed(&mut state, &rules, &w1, &[], &two, t(66));
        assert_eq!(
            routes(&caught),
            [(Status::Firing, "w1", vec!["late"], true)]
        );
        assert_eq!(caught[0].message.started_at, t(0));
        assert!(evaluate_routed(&mut state, &rules, &w1, &[], &two, t(69)).is_empty());
        // The repeat goes to both, the resolution too.
        let repeat = t(60) + SignedDuration::try_from(rules.repeat_interval).unwrap();
        let repeated = evaluate_routed(&mut state, &rules, &w1, &[], &two, repeat);
        assert_eq!(
            routes(&repeated),
            [(Status::Firing, "w1", vec!["hook", "late"], false)]
        );
        let later = repeat + SignedDuration::from_secs(3);
        let resolved = evaluate_routed(&mut state, &rules, &down(&[]), &[], &two, later);
        assert_eq!(
            routes(&resolved),
            [(Status::Resolved, "w1", vec!["hook", "late"], false)]
        );
    }

    #[test]
    fn a_resolution_goes_only_to_channels_told_it_fired() {
        let rules = AlertRules::default();
        let mut state = AlertState::default();
        let w1 = down(&["w1"]);
        evaluate_routed(&mut state, &rules, &w1, &[], &names(&["hook"]), t(0));
        evaluate_routed(&mut state, &rules, &w1, &[], &names(&["hook"]), t(60));
        // "late" is added in the same evaluation that sees the node back: it never heard of
        // the alert, so it hears nothing of its end (Alertmanager's rule).
        let resolved = evaluate_routed(
            &mut state,
            &rules,
            &down(&[]),
            &[],
            &names(&["hook", "late"]),
            t(63),
        );
        assert_eq!(
            routes(&resolved),
            [(Status::Resolved, "w1", vec!["hook"], false)]
        );
    }

    #[test]
    fn silenced_pending_and_unsent_alerts_are_not_caught_up_and_removed_channels_are_forgotten() {
        let rules = AlertRules::default();
        let mut state = AlertState::default();
        let w = down(&["w1", "w2"]);
        let one = names(&["hook"]);
        evaluate_routed(&mut state, &rules, &w, &[], &one, t(0));
        let silence = [Silence {
            rule: None,
            subject: Some("w2".into()),
            starts_at: t(0),
            ends_at: t(600),
            created_by: "admin".into(),
            comment: String::new(),
        }];
        let fired = evaluate_routed(&mut state, &rules, &w, &silence, &one, t(60));
        assert_eq!(
            routes(&fired),
            [(Status::Firing, "w1", vec!["hook"], false)]
        );
        // A pending alert (w3) and a silenced one (w2) are not sent to the new channel.
        let w3 = down(&["w1", "w2", "w3"]);
        let two = names(&["hook", "late"]);
        let caught = evaluate_routed(&mut state, &rules, &w3, &silence, &two, t(63));
        assert_eq!(
            routes(&caught),
            [(Status::Firing, "w1", vec!["late"], true)]
        );
        // Once the silence ends, w2 goes out to every channel as its first firing message.
        let after = evaluate_routed(&mut state, &rules, &w3, &[], &two, t(601));
        assert_eq!(
            routes(&after),
            [
                (Status::Firing, "w2", vec!["hook", "late"], false),
                (Status::Firing, "w3", vec!["hook", "late"], false)
            ]
        );
        // "late" removed, then added again: it is told again.
        assert!(evaluate_routed(&mut state, &rules, &w3, &[], &one, t(604)).is_empty());
        let again = evaluate_routed(&mut state, &rules, &w3, &[], &two, t(607));
        assert_eq!(
            routes(&again),
            [
                (Status::Firing, "w1", vec!["late"], true),
                (Status::Firing, "w2", vec!["late"], true),
                (Status::Firing, "w3", vec!["late"], true)
            ]
        );
    }

    #[test]
    fn a_state_from_before_channels_were_told_apart_repeats_nothing() {
        let rules = AlertRules::default();
        let old: Vec<Alert> = serde_json::from_str(
            r#"[{"rule": "node-down", "subject": "w1", "summary": "node w1 is down",
                 "active_since": "2026-11-26T12:00:00Z",
                 "firing_since": "2026-11-26T12:01:00Z",
                 "last_notified": "2026-11-26T12:01:00Z"}]"#,
        )
        .unwrap();
        assert_eq!(old[0].told, None);
        let mut state = AlertState::from(old);
        let two = names(&["hook", "late"]);
        let w1 = down(&["w1"]);
        assert!(evaluate_routed(&mut state, &rules, &w1, &[], &two, t(66)).is_empty());
        let resolved = evaluate_routed(&mut state, &rules, &down(&[]), &[], &two, t(69));
        assert_eq!(
            routes(&resolved),
            [(Status::Resolved, "w1", vec!["hook", "late"], false)]
        );
    }

    /// Issue 15: a channel whose settings the server cannot open after a key change is told
    /// to the channels that work, and resolves, saying why, when it is removed or added again.
    #[test]
    fn an_unusable_channel_is_told_to_the_others_and_resolves_when_removed_or_added_again() {
        let rules = AlertRules::default();
        let mut state = AlertState::default();
        let channels = |list: &[(&str, bool)]| Observation {
            channels: list
                .iter()
                .map(|(name, usable)| crate::ChannelObservation {
                    name: name.to_string(),
                    problem: (!usable).then(|| "its settings cannot be opened".to_string()),
                })
                .collect(),
            ..Observation::default()
        };
        // Only the channels that open (and the --alert-webhooks) receive messages.
        let working = names(&["alert-webhook-1", "new"]);
        let broken = channels(&[("old", false), ("other", false), ("new", true)]);
        let fired = evaluate_routed(&mut state, &rules, &broken, &[], &working, t(0));
        assert_eq!(
            routes(&fired),
            [
                (Status::Firing, "old", vec!["alert-webhook-1", "new"], false),
                (
                    Status::Firing,
                    "other",
                    vec!["alert-webhook-1", "new"],
                    false
                ),
            ]
        );
        assert_eq!(fired[0].message.rule, RuleId::AlertChannelUnusable);
        assert_eq!(
            fired[0].message.summary,
            "alert channel old gets no alerts: its settings cannot be opened"
        );
        assert!(evaluate_routed(&mut state, &rules, &broken, &[], &working, t(3)).is_empty());
        // "old" removed, "other" added again (it opens now).
        let working = names(&["alert-webhook-1", "new", "other"]);
        let fixed = channels(&[("other", true), ("new", true)]);
        let resolved = evaluate_routed(&mut state, &rules, &fixed, &[], &working, t(6));
        let why: Vec<(Status, &str)> = resolved
            .iter()
            .map(|r| (r.message.status, r.message.summary.as_str()))
            .collect();
        assert_eq!(
            why,
            [
                (Status::Resolved, "alert channel old was removed"),
                (
                    Status::Resolved,
                    "alert channel other can be used again: its settings open"
                ),
            ]
        );
        assert_eq!(resolved[1].channels, ["alert-webhook-1", "new"]);
        // Switched off: nothing fires.
        let mut off = rules.clone();
        off.alert_channel_unusable.enabled = false;
        let mut state = AlertState::default();
        assert!(evaluate_routed(&mut state, &off, &broken, &[], &working, t(9)).is_empty());
    }
}
