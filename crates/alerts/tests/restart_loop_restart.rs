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

/// What a server keeps: its ledger in memory; in its store, the ends it recorded and when it
/// last listed; the ongoing alerts.
#[derive(Default)]
struct Server {
    ledger: RestartLedger,
    stored: Vec<TaskEnd>,
    last_listed: Option<Timestamp>,
    alerts: AlertState,
    /// Whether a loop the ledger shows over resolves while its count may lack ends
    /// (`RestartLedger::loop_ended`); false: held until the outage leaves the window, as
    /// before.
    trust_quiet: bool,
}

impl Server {
    /// A server started at `started` from what `self` stored (the ends of the window, the
    /// last listing, the ongoing alerts as JSON); with `remember` false, one that counts its
    /// listings alone, as before the fix.
    fn restarted(&self, rules: &AlertRules, started: i64, remember: bool) -> Server {
        let window = SignedDuration::try_from(rules.restart_loop.within).unwrap();
        let kept = self
            .stored
            .iter()
            .filter(|e| e.at >= at(started) - window)
            .cloned();
        Server {
            ledger: if remember {
                RestartLedger::restored(kept, self.last_listed)
            } else {
                RestartLedger::default()
            },
            stored: self.stored.clone(),
            last_listed: self.last_listed,
            alerts: serde_json::from_str(&serde_json::to_string(&self.alerts).unwrap()).unwrap(),
            trust_quiet: self.trust_quiet,
        }
    }

    /// Its life: listings from `from` every 3 s while before `until`, each recorded, stored
    /// and evaluated. Returns the messages with their times.
    fn live(
        &mut self,
        service: &Loop,
        rules: &AlertRules,
        from: i64,
        until: i64,
    ) -> Vec<(i64, Status)> {
        let within = rules.restart_loop.within;
        let mut out = Vec::new();
        let mut now = from;
        while now < until {
            let listing = service.listing(now);
            let added = self.ledger.record(listing, at(now), within);
            self.stored.extend(added);
            self.last_listed = Some(at(now));
            let observation = Observation {
                services: vec![ServiceObservation {
                    name: "web".into(),
                    converged: true,
                    rolled_back: None,
                    restarts: self.ledger.restarts("svc"),
                    restarts_partial: self.ledger.may_be_short("svc", at(now), within),
                    loop_ended: self.trust_quiet
                        && self.ledger.loop_ended("svc", at(now), &rules.restart_loop),
                    spec_since: None,
                }],
                ..Observation::default()
            };
            for message in evaluate(&mut self.alerts, rules, &observation, &[], at(now)) {
                assert_eq!(message.rule, RuleId::RestartLoop);
                out.push((now, message.status));
            }
            now += LISTING;
        }
        out
    }
}

/// The loop with a restart at `restart` s that lasts `outage` s; the messages sent.
fn across_a_restart(
    service: &Loop,
    restart: i64,
    outage: i64,
    end: i64,
    remember: bool,
    trust_quiet: bool,
) -> Vec<(i64, Status)> {
    let rules = AlertRules::default();
    let mut first = Server {
        trust_quiet,
        ..Server::default()
    };
    let mut sent = first.live(service, &rules, 0, restart);
    let started = restart + outage;
    let mut second = first.restarted(&rules, started, remember);
    sent.extend(second.live(service, &rules, started, end));
    sent
}

#[test]
fn the_tryouts_loop_stays_firing_across_a_restart_and_nothing_is_sent_again() {
    // Tryout finding 1: an OOM-killed task every ~19 s, the server down 5 s at 101 s.
    let service = Loop {
        period: 19,
        stop: 1200,
    };
    assert_eq!(
        across_a_restart(&service, 101, 5, 900, true, true),
        [(96, Status::Firing)]
    );
    // What the old server did: its first listing alone, 4 ends.
    let before = across_a_restart(&service, 101, 5, 900, false, true);
    assert_eq!(before[..2], [(96, Status::Firing), (106, Status::Resolved)]);
}

/// Issue 15 item 3: a loop that ends while the server is down, Swarm dropping most of its
/// ends from the history, resolves once the ledger shows every slot quiet for longer than the
/// loop's pace (at least 2m 30s at 5 in 10m), not a whole window after the restart; a loop
/// that goes on across the same restart stays firing.
#[test]
fn a_loop_that_ended_in_the_outage_resolves_when_the_data_shows_it() {
    // An end every 6 s until 450 s; the server down from 100 s to 500 s.
    let ended = Loop {
        period: 6,
        stop: 450,
    };
    let before = across_a_restart(&ended, 100, 400, 1200, true, false);
    assert_eq!(before, [(30, Status::Firing), (1100, Status::Resolved)]);
    let after = across_a_restart(&ended, 100, 400, 1200, true, true);
    // The ends before the outage left the window at 696 s; the loop ended at 450 s.
    assert_eq!(after, [(30, Status::Firing), (698, Status::Resolved)]);
    // Ended just before the restart: the ends the first listing shows keep it firing until
    // fewer than 5 remain in the window, as without a restart.
    let just_before = Loop {
        period: 6,
        stop: 96,
    };
    let after = across_a_restart(&just_before, 100, 400, 1200, true, true);
    assert_eq!(after, [(30, Status::Firing), (674, Status::Resolved)]);
    // Going on at 30 s, ends missed in the outage: fires after the restart (3 ends before),
    // never resolved while it restarts.
    let going_on = Loop {
        period: 30,
        stop: 5000,
    };
    let sent = across_a_restart(&going_on, 100, 400, 1500, true, true);
    assert_eq!(sent, [(500, Status::Firing)]);
}

/// How long the ledger waits for a slot to stay quiet: the pause of the slowest even loop
/// the default rule fires on, 10m / (5 - 1).
const QUIET: i64 = 150;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever the loop's pace, when the server restarts and for how long: at most one
    /// firing and one resolved message; never resolved while the loop goes on and the window
    /// still holds the rule's count of restarts; resolved once the loop has stopped and the
    /// window has passed.
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
        let sent = across_a_restart(&service, restart, outage, end, true, true);
        let firing: Vec<i64> = sent.iter().filter(|(_, s)| *s == Status::Firing).map(|(t, _)| *t).collect();
        let resolved: Vec<i64> = sent.iter().filter(|(_, s)| *s == Status::Resolved).map(|(t, _)| *t).collect();
        prop_assert!(firing.len() <= 1, "{sent:?}");
        prop_assert_eq!(resolved.len(), firing.len(), "{:?}", sent);
        if let (Some(f), Some(r)) = (firing.first(), resolved.first()) {
            prop_assert!(f < r, "{sent:?}");
            // Resolved only once the window holds fewer restarts, or, when the count may
            // lack ends since the restart, once the loop has stopped for its quiet time.
            let last_end = service.ends_until(*r).last().copied().unwrap_or(0);
            prop_assert!(
                service.true_count(*r, within) < rules.restart_loop.restarts
                    || *r - last_end >= QUIET.max(period),
                "resolved at {r} while the window held {} restarts and the loop went on: \
                 {sent:?}",
                service.true_count(*r, within)
            );
        }
    }
}
