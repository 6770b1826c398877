//! What a restart does to the `for` clocks of the ongoing alerts: Prometheus' restoration of
//! the `for` state (`ALERTS_FOR_STATE`, `rules/group.go` `RestoreForState`), with its two
//! settings, `--rules.alert.for-outage-tolerance` and `--rules.alert.for-grace-period`.
//!
//! The server stores the ongoing alerts (each pending one with when its condition was first
//! seen holding) and when it last evaluated them. At a start it hands both to
//! [`AlertState::restore`]:
//!
//! - a firing alert stays as it is: the next evaluation resolves it if its condition went,
//!   and never sends it twice;
//! - a pending alert is kept only when the server was down for at most the outage tolerance;
//!   otherwise nobody knows whether its condition held meanwhile, and it starts over;
//! - a kept pending alert keeps the time it had already spent pending, and the outage does
//!   not count: it fires after the rest of its `for` (so a server that crashes every 50 s
//!   still fires a `for: 1m` alert, in its second life), but no sooner than the grace period
//!   after the start, so that it does not fire on what the server read before fresh data came;
//! - an alert whose `for` is shorter than the grace period starts its `for` over (waiting
//!   the grace would delay it more than a new `for` does; Prometheus skips restoring such
//!   rules for the same reason);
//! - one that had already spent its whole `for` pending fires at the next evaluation whose
//!   condition holds (Prometheus: "the alert was firing when Prometheus went down").

use std::time::Duration;

use jiff::Timestamp;

use crate::engine::AlertState;
use crate::observe::signed;
use crate::rules::AlertRules;

/// How a restart restores pending alerts (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForRestore {
    /// A pending alert is restored only if the alerts were last evaluated at most this long
    /// before the start (Prometheus' `--rules.alert.for-outage-tolerance`, 1h).
    pub outage_tolerance: Duration,
    /// A restored pending alert fires no sooner than this after the start (Prometheus'
    /// `--rules.alert.for-grace-period`, 10m there, made for scrapes a minute apart). Here
    /// 30 s: one agent report at the agent's default `--interval`, so every node has reported
    /// once since the start, and Swarm has been listed ten times.
    pub grace_period: Duration,
}

impl Default for ForRestore {
    fn default() -> ForRestore {
        ForRestore {
            outage_tolerance: Duration::from_secs(3600),
            grace_period: Duration::from_secs(30),
        }
    }
}

impl AlertState {
    /// Restores the `for` clocks of the pending alerts at a start, by the rules of
    /// [`crate::restore`]: `last_evaluated` is when the stored state was last evaluated
    /// (`None`: unknown, every pending alert starts over), `now` the start. Firing alerts are
    /// left alone. The `for` of each alert is its rule's in `rules`.
    pub fn restore(
        &mut self,
        rules: &AlertRules,
        last_evaluated: Option<Timestamp>,
        now: Timestamp,
        policy: &ForRestore,
    ) {
        let down_at = last_evaluated
            .filter(|at| *at <= now && now.duration_since(*at) <= signed(policy.outage_tolerance));
        let grace = signed(policy.grace_period);
        self.alerts.retain(|_, alert| {
            if alert.is_firing() {
                return true;
            }
            let Some(down_at) = down_at else {
                return false;
            };
            let hold = signed(rules.for_duration(alert.rule));
            let spent = down_at
                .duration_since(alert.active_since)
                .max(jiff::SignedDuration::ZERO);
            let remaining = hold - spent;
            alert.active_since = if remaining <= jiff::SignedDuration::ZERO {
                alert.active_since
            } else if hold < grace {
                now
            } else if remaining < grace {
                now + (grace - hold)
            } else {
                now - spent
            };
            true
        });
    }
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;
    use crate::engine::step;
    use crate::observe::{Condition, Conditions};
    use crate::rules::RuleId;

    fn t(seconds: i64) -> Timestamp {
        "2026-11-26T12:00:00Z".parse::<Timestamp>().unwrap() + SignedDuration::from_secs(seconds)
    }

    fn down(subject: &str) -> Conditions {
        Conditions {
            active: vec![Condition {
                rule: RuleId::NodeDown,
                subject: subject.into(),
                summary: format!("node {subject} is down"),
                hold: None,
            }],
            ..Conditions::default()
        }
    }

    /// Node down (`for: 1m`) holding since `t(0)`, evaluated every 3 s until `until`.
    fn pending_until(until: i64) -> AlertState {
        let rules = AlertRules::default();
        let mut state = AlertState::default();
        for s in (0..=until).step_by(3) {
            assert!(step(&mut state, &down("w1"), &rules, &[], t(s)).is_empty());
        }
        state
    }

    /// The first time at or after `from` (each second) a step fires the alert.
    fn fires_at(state: &mut AlertState, from: i64, to: i64) -> Option<i64> {
        let rules = AlertRules::default();
        (from..=to).find(|s| !step(state, &down("w1"), &rules, &[], t(*s)).is_empty())
    }

    #[test]
    fn a_pending_alert_keeps_its_time_spent_and_the_outage_does_not_count() {
        // Pending 30 s of its minute, down 5 minutes, back at t(330): 30 s still to go,
        // at least the 30 s grace.
        let mut state = pending_until(30);
        state.restore(
            &AlertRules::default(),
            Some(t(30)),
            t(330),
            &ForRestore::default(),
        );
        assert_eq!(
            state.get(RuleId::NodeDown, "w1").unwrap().active_since,
            t(300)
        );
        assert_eq!(fires_at(&mut state, 330, 500), Some(360));
    }

    /// The crash loop of issue #15: a server that dies every 50 s must still fire a
    /// `for: 1m` alert (one that began its minute again at every start never would), in its
    /// second life, the grace period after the start.
    #[test]
    fn a_server_crashing_every_50_seconds_still_fires_a_one_minute_alert() {
        let rules = AlertRules::default();
        let policy = ForRestore::default();
        let mut state = pending_until(48);
        // Dies at t(50), back at t(52): 12 s of the minute left, less than the grace.
        state.restore(&rules, Some(t(48)), t(52), &policy);
        assert_eq!(
            fires_at(&mut state, 52, 100),
            Some(82),
            "grace: 30 s after the start"
        );
        assert!(state.get(RuleId::NodeDown, "w1").unwrap().is_firing());
    }

    #[test]
    fn an_alert_restored_with_little_left_waits_the_grace_period() {
        let mut state = pending_until(57);
        state.restore(
            &AlertRules::default(),
            Some(t(57)),
            t(60),
            &ForRestore::default(),
        );
        assert_eq!(fires_at(&mut state, 60, 200), Some(90));
    }

    #[test]
    fn an_outage_longer_than_the_tolerance_starts_pending_alerts_over() {
        let rules = AlertRules::default();
        let mut state = pending_until(45);
        state.restore(&rules, Some(t(45)), t(45 + 3601), &ForRestore::default());
        assert!(state.get(RuleId::NodeDown, "w1").is_none());
        let back = 45 + 3601;
        assert_eq!(fires_at(&mut state, back, back + 100), Some(back + 60));
        // When the last evaluation is unknown (a state stored by an older version): the same.
        let mut state = pending_until(45);
        state.restore(&rules, None, t(50), &ForRestore::default());
        assert!(state.alerts().next().is_none());
    }

    #[test]
    fn a_firing_alert_is_left_alone() {
        let rules = AlertRules::default();
        let mut state = pending_until(57);
        assert_eq!(step(&mut state, &down("w1"), &rules, &[], t(60)).len(), 1);
        let before = state.clone();
        assert!(before.get(RuleId::NodeDown, "w1").unwrap().is_firing());
        state.restore(&rules, Some(t(60)), t(60 + 7200), &ForRestore::default());
        assert_eq!(state, before);
        assert!(step(&mut state, &down("w1"), &rules, &[], t(60 + 7200)).is_empty());
    }

    #[test]
    fn a_for_shorter_than_the_grace_starts_over() {
        let rules = AlertRules {
            node_down: crate::rules::NodeDown {
                enabled: true,
                for_duration: Duration::from_secs(20),
                keep_firing_for: Duration::ZERO,
            },
            ..AlertRules::default()
        };
        let mut state = AlertState::default();
        step(&mut state, &down("w1"), &rules, &[], t(0));
        step(&mut state, &down("w1"), &rules, &[], t(15));
        state.restore(&rules, Some(t(15)), t(17), &ForRestore::default());
        assert_eq!(
            state.get(RuleId::NodeDown, "w1").unwrap().active_since,
            t(17)
        );
    }

    #[test]
    fn a_pending_alert_past_its_for_fires_at_the_next_evaluation() {
        // Evaluated at t(59), stored, dead before the t(60) evaluation fired it.
        let rules = AlertRules::default();
        let mut state = AlertState::default();
        step(&mut state, &down("w1"), &rules, &[], t(0));
        step(&mut state, &down("w1"), &rules, &[], t(61));
        let alert = state.alerts.values_mut().next().unwrap();
        alert.firing_since = None;
        alert.last_notified = None;
        state.restore(&rules, Some(t(61)), t(70), &ForRestore::default());
        assert_eq!(
            state.get(RuleId::NodeDown, "w1").unwrap().active_since,
            t(0)
        );
        assert_eq!(fires_at(&mut state, 70, 80), Some(70));
    }

    #[test]
    fn a_last_evaluation_after_the_start_counts_as_unknown() {
        let mut state = pending_until(30);
        state.restore(
            &AlertRules::default(),
            Some(t(40)),
            t(35),
            &ForRestore::default(),
        );
        assert!(state.alerts().next().is_none());
    }
}
