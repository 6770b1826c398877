//! Invariants of the alert engine over arbitrary histories of conditions, silences and clocks.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use swarmkeeper_alerts::{
    step, AlertRules, AlertState, Condition, Conditions, Message, RuleId, Silence, Status,
};

/// Rules with a `for` of zero, one and ten minutes.
const RULES: [RuleId; 3] = [
    RuleId::RolledBack,
    RuleId::NodeDown,
    RuleId::ServiceNotConverged,
];
const SUBJECTS: [&str; 2] = ["a", "b"];

type Key = (RuleId, String);

fn start() -> Timestamp {
    "2026-11-26T12:00:00Z".parse().unwrap()
}

fn keys() -> Vec<Key> {
    RULES
        .iter()
        .flat_map(|r| SUBJECTS.iter().map(move |s| (*r, s.to_string())))
        .collect()
}

/// One evaluation: minutes since the previous one, which keys hold, which are unknown.
#[derive(Debug, Clone)]
struct Tick {
    minutes: i64,
    active: Vec<bool>,
    unknown: Vec<bool>,
}

fn tick() -> impl Strategy<Value = Tick> {
    let n = keys().len();
    (
        prop_oneof![Just(0i64), 1i64..3, 1i64..20, 60i64..300],
        prop::collection::vec(prop::bool::weighted(0.6), n),
        prop::collection::vec(prop::bool::weighted(0.1), n),
    )
        .prop_map(|(minutes, active, unknown)| Tick {
            minutes,
            active,
            unknown,
        })
}

fn silence() -> impl Strategy<Value = Silence> {
    (
        prop::option::of(0..RULES.len()),
        prop::option::of(0..SUBJECTS.len()),
        0i64..600,
        1i64..300,
    )
        .prop_filter_map("matches something", |(rule, subject, from, len)| {
            let silence = Silence {
                rule: rule.map(|i| RULES[i]),
                subject: subject.map(|i| SUBJECTS[i].to_string()),
                starts_at: start() + SignedDuration::from_mins(from),
                ends_at: start() + SignedDuration::from_mins(from + len),
                created_by: "proptest".into(),
                comment: String::new(),
            };
            silence.validate().ok().map(|()| silence)
        })
}

/// Repeat intervals of never, 30 minutes and 4 hours; node-down and rolled-back kept firing
/// for 0 to 20 minutes after their condition goes.
fn rules() -> impl Strategy<Value = AlertRules> {
    (
        prop_oneof![Just(0u64), Just(30), Just(240)],
        prop_oneof![Just(0u64), Just(5), Just(20)],
    )
        .prop_map(|(minutes, keep)| {
            let mut rules = AlertRules {
                repeat_interval: Duration::from_secs(minutes * 60),
                ..AlertRules::default()
            };
            rules.node_down.keep_firing_for = Duration::from_secs(keep * 60);
            rules.rolled_back.keep_firing_for = Duration::from_secs(keep * 60);
            rules
        })
}

/// The seconds between two evaluations of the server (`alerting::EVALUATION_INTERVAL`).
const EVALUATION: i64 = 3;

fn conditions(tick: &Tick) -> Conditions {
    let keys = keys();
    Conditions {
        active: keys
            .iter()
            .zip(&tick.active)
            .filter(|(_, on)| **on)
            .map(|((rule, subject), _)| Condition {
                rule: *rule,
                subject: subject.clone(),
                summary: format!("{rule} {subject}"),
                hold: None,
            })
            .collect(),
        unknown: keys
            .iter()
            .zip(&tick.unknown)
            .filter(|(_, on)| **on)
            .map(|(k, _)| k.clone())
            .collect(),
        unknown_rules: vec![],
        ..Conditions::default()
    }
}

fn key(m: &Message) -> Key {
    (m.rule, m.subject.clone())
}

/// The alerts of a state without what silences may change (when each was last sent).
fn shape(state: &AlertState) -> Vec<(Key, Timestamp, Option<Timestamp>)> {
    state
        .alerts()
        .map(|a| ((a.rule, a.subject.clone()), a.active_since, a.firing_since))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_engine_keeps_its_promises(
        ticks in prop::collection::vec(tick(), 1..40),
        silences in prop::collection::vec(silence(), 0..3),
        rules in rules(),
    ) {
        let mut state = AlertState::default();
        let mut unsilenced = AlertState::default();
        let mut now = start();
        // Per key: whether the receivers were told of the current alert, and when its last
        // firing message went out.
        let mut told: BTreeMap<Key, bool> = BTreeMap::new();
        let mut last_firing: BTreeMap<Key, Timestamp> = BTreeMap::new();
        for tick in &ticks {
            now += SignedDuration::from_mins(tick.minutes);
            let conditions = conditions(tick);
            let active: BTreeSet<Key> = conditions
                .active
                .iter()
                .map(|c| (c.rule, c.subject.clone()))
                .collect();
            let messages = step(&mut state, &conditions, &rules, &silences, now);
            step(&mut unsilenced, &conditions, &rules, &[], now);

            // Silences never change the alerts themselves.
            prop_assert_eq!(shape(&state), shape(&unsilenced));

            let mut seen = BTreeSet::new();
            for m in &messages {
                let k = key(m);
                prop_assert!(seen.insert(k.clone()), "two messages for {:?} in one step", k);
                match m.status {
                    Status::Resolved => {
                        prop_assert!(
                            told.get(&k).copied().unwrap_or(false),
                            "resolved {:?} without a firing message first", k
                        );
                        prop_assert!(!active.contains(&k), "resolved {:?} while it holds", k);
                        prop_assert!(state.get(k.0, &k.1).is_none());
                        prop_assert_eq!(m.ended_at, Some(now));
                        told.insert(k, false);
                    }
                    Status::Firing => {
                        let silenced = silences.iter().any(|s| s.matches(k.0, &k.1, now));
                        prop_assert!(!silenced, "firing {:?} sent while silenced", k);
                        let for_ = SignedDuration::try_from(rules.for_duration(k.0)).unwrap();
                        prop_assert!(now.duration_since(m.started_at) >= for_);
                        let alert = state.get(k.0, &k.1).unwrap();
                        prop_assert!(alert.is_firing());
                        prop_assert_eq!(alert.active_since, m.started_at);
                        if let Some(previous) = last_firing.get(&k) {
                            prop_assert!(!rules.repeat_interval.is_zero(), "{:?} sent twice", k);
                            prop_assert!(
                                now.duration_since(*previous)
                                    >= SignedDuration::try_from(rules.repeat_interval).unwrap(),
                                "{:?} repeated too soon", k
                            );
                        }
                        last_firing.insert(k.clone(), now);
                        told.insert(k, true);
                    }
                }
            }

            // An alert that went (resolved, or pending and cleared) starts over next time.
            last_firing.retain(|k, _| state.get(k.0, &k.1).is_some());

            // Every firing, unsilenced alert has been sent; nothing pending has.
            for alert in state.alerts() {
                let silenced = silences.iter().any(|s| s.matches(alert.rule, &alert.subject, now));
                if alert.is_firing() && !silenced {
                    prop_assert!(alert.last_notified.is_some(), "{:?} firing unsent", alert);
                }
                if !alert.is_firing() {
                    prop_assert!(alert.last_notified.is_none());
                }
            }
            // Every condition that holds has its alert.
            for k in &active {
                prop_assert!(state.get(k.0, &k.1).is_some());
            }
        }
    }

    #[test]
    fn a_condition_that_holds_throughout_fires_exactly_once_without_repeats(
        minutes in prop::collection::vec(0i64..5, 1..60),
    ) {
        let rules = AlertRules { repeat_interval: Duration::ZERO, ..AlertRules::default() };
        let held = Conditions {
            active: vec![Condition {
                rule: RuleId::NodeDown,
                subject: "w1".into(),
                summary: "down".into(),
                hold: None,
            }],
            unknown: vec![],
            unknown_rules: vec![],
            ..Conditions::default()
        };
        let mut state = AlertState::default();
        let mut now = start();
        let mut sent = 0;
        for m in &minutes {
            now += SignedDuration::from_mins(*m);
            sent += step(&mut state, &held, &rules, &[], now).len();
        }
        let elapsed = now.duration_since(start() + SignedDuration::from_mins(minutes[0]));
        prop_assert_eq!(sent, usize::from(elapsed >= SignedDuration::from_mins(1)));
    }

    /// Prometheus' `keep_firing_for`: a condition that goes and comes back faster than its
    /// rule's `keep_firing_for` sends one firing message, and one resolved message only once
    /// it stays gone that long; evaluated every 3 s, as the server does.
    #[test]
    fn a_condition_flapping_faster_than_keep_firing_for_fires_once_and_resolves_once(
        // (seconds holding, seconds gone) per flap; "gone" stays below the keep.
        flaps in prop::collection::vec((1i64..400, 0.0f64..1.0), 1..30),
        keep_minutes in 1i64..20,
        for_seconds in prop_oneof![Just(0u64), Just(60)],
    ) {
        let mut rules = AlertRules { repeat_interval: Duration::ZERO, ..AlertRules::default() };
        rules.node_down.for_duration = Duration::from_secs(for_seconds);
        rules.node_down.keep_firing_for = Duration::from_secs(keep_minutes as u64 * 60);
        let keep = keep_minutes * 60;
        let down = Conditions {
            active: vec![Condition {
                rule: RuleId::NodeDown,
                subject: "w1".into(),
                summary: "node w1 is down".into(),
                hold: None,
            }],
            ..Conditions::default()
        };
        let up = Conditions::default();
        let mut state = AlertState::default();
        let mut now = start();
        let mut sent: Vec<(Timestamp, Status)> = Vec::new();
        let run = |state: &mut AlertState, conditions: &Conditions, seconds: i64, now: &mut Timestamp| {
            let mut out = Vec::new();
            let mut elapsed = 0;
            while elapsed < seconds {
                for m in step(state, conditions, &rules, &[], *now) {
                    out.push((*now, m.status));
                }
                *now += SignedDuration::from_secs(EVALUATION);
                elapsed += EVALUATION;
            }
            out
        };
        let mut cleared = now;
        for (holding, gone) in &flaps {
            sent.extend(run(&mut state, &down, *holding, &mut now));
            cleared = now;
            // Gone for less than the keep, less one evaluation.
            let gone = ((keep - 2 * EVALUATION) as f64 * gone) as i64;
            sent.extend(run(&mut state, &up, gone, &mut now));
        }
        let firing = sent.iter().filter(|(_, s)| *s == Status::Firing).count();
        prop_assert!(firing <= 1, "{sent:?}");
        prop_assert!(
            sent.iter().all(|(_, s)| *s == Status::Firing),
            "resolved while flapping: {sent:?}"
        );
        // Gone for good: resolved once, after the keep.
        let after = run(&mut state, &up, keep + 2 * EVALUATION, &mut now);
        let resolved: Vec<&(Timestamp, Status)> = after.iter().filter(|(_, s)| *s == Status::Resolved).collect();
        prop_assert_eq!(resolved.len(), firing, "{:?} then {:?}", sent, after);
        for (at, _) in resolved {
            prop_assert!(at.duration_since(cleared) >= SignedDuration::from_secs(keep));
        }
        prop_assert!(state.get(RuleId::NodeDown, "w1").is_none());
    }
}
