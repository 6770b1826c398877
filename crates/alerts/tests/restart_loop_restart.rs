//! The restart-loop rule across a restart of the server (tryout finding 1): a single-replica
//! service restarting every `period` seconds, listed every 3 s with Swarm's history retention
//! (4 ended tasks of a slot), by a server that stops, stays down a while and starts again
//! from what it stored (the ended tasks it recorded, the time of its last listing and the
//! ongoing alerts). Before, the new server counted its first listing alone (4 ends), resolved
//! the firing alert and fired it again as a new one.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use swarmkeeper_alerts::{
    evaluate, AlertRules, AlertState, Observation, RestartLedger, RuleId, ServiceObservation,
    Status, TaskEnd,
};

const RETENTION: usize = 4;
const LISTING: i64 = 3;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).unwrap()
}

/// A loop of tasks ending every `period` s from `period` until `stop`.
struct Loop {
    period: i64,
    stop: i64,
}

impl Loop {
    fn ends_until(&self, now: i64) -> Vec<i64> {
        (1..)
            .map(|k| k * self.period)
            .take_while(|t| *t <= now.min(self.stop))
            .collect()
    }

    /// What one listing at `now` shows: the newest ends Swarm still keeps.
    fn listing(&self, now: i64) -> Vec<TaskEnd> {
        self.ends_until(now)
            .into_iter()
            .rev()
            .take(RETENTION)
            .map(|t| TaskEnd {
                service_id: "svc".into(),
                task_id: format!("task-{t}"),
                slot: "1".into(),
                at: at(t),
            })
            .collect()
    }

    /// Restarts within the rule's window before `now`, every one counted.
    fn true_count(&self, now: i64, within: Duration) -> usize {
        let within = within.as_secs() as i64;
        self.ends_until(now)
            .into_iter()
            .filter(|t| now - t <= within)
            .count()
    }
}

/// One server's life: listings from `from` every 3 s while before `until`, each recorded,
/// stored and evaluated. Returns the messages with their times.
#[allow(clippy::too_many_arguments)]
fn live(
    service: &Loop,
    ledger: &mut RestartLedger,
    stored: &mut Vec<TaskEnd>,
    last_listed: &mut Option<Timestamp>,
    alerts: &mut AlertState,
    rules: &AlertRules,
    from: i64,
    until: i64,
) -> Vec<(i64, Status)> {
    let mut out = Vec::new();
    let mut now = from;
    while now < until {
        let listing = service.listing(now);
        ledger.record(listing.iter().cloned(), at(now), rules.restart_loop.within);
        stored.extend(listing);
        *last_listed = Some(at(now));
        let observation = Observation {
            services: vec![ServiceObservation {
                name: "web".into(),
                converged: true,
                rolled_back: None,
                restarts: ledger.restarts("svc"),
                restarts_partial: ledger.may_be_short("svc", at(now), rules.restart_loop.within),
            }],
            ..Observation::default()
        };
        for message in evaluate(alerts, rules, &observation, &[], at(now)) {
            assert_eq!(message.rule, RuleId::RestartLoop);
            out.push((now, message.status));
        }
        now += LISTING;
    }
    out
}

/// The loop with a restart at `restart` s that lasts `outage` s; the messages sent.
fn across_a_restart(service: &Loop, restart: i64, outage: i64, end: i64) -> Vec<(i64, Status)> {
    let rules = AlertRules::default();
    let mut ledger = RestartLedger::default();
    let mut stored = Vec::new();
    let mut last_listed = None;
    let mut alerts = AlertState::default();
    let mut sent = live(
        service,
        &mut ledger,
        &mut stored,
        &mut last_listed,
        &mut alerts,
        &rules,
        0,
        restart,
    );
    // The new server reads back what the old one stored: the ends of the window, the last
    // listing, the ongoing alerts as JSON.
    let started = restart + outage;
    let window = SignedDuration::try_from(rules.restart_loop.within).unwrap();
    let kept: Vec<TaskEnd> = stored
        .iter()
        .filter(|e| e.at >= at(started) - window)
        .cloned()
        .collect();
    let mut ledger = RestartLedger::restored(kept, last_listed);
    let mut alerts: AlertState =
        serde_json::from_str(&serde_json::to_string(&alerts).unwrap()).unwrap();
    sent.extend(live(
        service,
        &mut ledger,
        &mut stored,
        &mut last_listed,
        &mut alerts,
        &rules,
        started,
        end,
    ));
    sent
}

#[test]
fn the_tryouts_loop_stays_firing_across_a_restart_and_nothing_is_sent_again() {
    // Tryout finding 1: an OOM-killed task every ~19 s, the server down 5 s at 101 s.
    let service = Loop {
        period: 19,
        stop: 1200,
    };
    let sent = across_a_restart(&service, 101, 5, 900);
    assert_eq!(sent, [(96, Status::Firing)]);
}

#[test]
fn before_the_fix_a_fresh_count_resolved_it() {
    // What the old server did: a new ledger from the first listing alone.
    let service = Loop {
        period: 19,
        stop: 1200,
    };
    let rules = AlertRules::default();
    let mut alerts = AlertState::default();
    let sent = live(
        &service,
        &mut RestartLedger::default(),
        &mut Vec::new(),
        &mut None,
        &mut alerts,
        &rules,
        0,
        101,
    );
    let again = live(
        &service,
        &mut RestartLedger::default(),
        &mut Vec::new(),
        &mut None,
        &mut alerts,
        &rules,
        106,
        200,
    );
    assert_eq!(sent, [(96, Status::Firing)]);
    assert_eq!(again[0], (106, Status::Resolved));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever the loop's pace, when the server restarts and for how long: at most one
    /// firing and one resolved message; never resolved while the window still holds the
    /// rule's count of restarts; resolved once the loop has stopped and the window has
    /// passed.
    #[test]
    fn a_restart_neither_resolves_a_loop_nor_fires_it_again(
        period in 1i64..40,
        stop in 0i64..1500,
        restart in 1i64..1500,
        outage in 1i64..1500,
    ) {
        let rules = AlertRules::default();
        let within = rules.restart_loop.within;
        let service = Loop { period, stop };
        let end = stop.max(restart + outage) + 2 * within.as_secs() as i64 + 30;
        let sent = across_a_restart(&service, restart, outage, end);
        let firing: Vec<i64> = sent.iter().filter(|(_, s)| *s == Status::Firing).map(|(t, _)| *t).collect();
        let resolved: Vec<i64> = sent.iter().filter(|(_, s)| *s == Status::Resolved).map(|(t, _)| *t).collect();
        prop_assert!(firing.len() <= 1, "{sent:?}");
        prop_assert_eq!(resolved.len(), firing.len(), "{:?}", sent);
        if let (Some(f), Some(r)) = (firing.first(), resolved.first()) {
            prop_assert!(f < r, "{sent:?}");
            prop_assert!(
                service.true_count(*r, within) < rules.restart_loop.restarts,
                "resolved at {r} while the window held {} restarts: {sent:?}",
                service.true_count(*r, within)
            );
        }
    }
}
