//! The task ends a service has had, remembered across listings and across restarts of the
//! server.
//!
//! Swarm keeps only the newest tasks of a slot (`TaskHistoryRetentionLimit`, 5 by default: the
//! running one and at most 4 that ended), so one listing never shows more than 4 restarts of a
//! single-replica service. The restart-loop rule wants 5 in 10 minutes by default: counted from
//! a listing alone it never fired at Swarm's default 5 s restart delay, and at 1 s it fired and
//! resolved every few seconds as ended tasks fell out of the history. The ledger keeps every end
//! it has seen for as long as the rule looks back, so the count grows while a loop goes on and
//! drops only as the ends age out of the window once it stops.
//!
//! The server stores the ends it records, and a new server starts from them
//! ([`RestartLedger::restored`]; tryout finding 1: a fresh ledger counted one listing, 4 ends,
//! and resolved a firing restart-loop alert 3 s after the start, then fired it again as new).
//! What ended while no server listed may be missing: Swarm may have dropped it from its
//! history before the first listing after the start. A service with an end in that outage may
//! be short of ends until the outage leaves the rule's window; until then a count below the
//! rule's is unknown, not fine ([`RestartLedger::may_be_short`]).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use jiff::Timestamp;

use crate::rules::RestartLoop;

/// Task ends per service id: task id → when the task ended and its slot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RestartLedger {
    ends: HashMap<String, BTreeMap<String, (Timestamp, String)>>,
    /// Restored from a store: the last listing the stored ends came from (`None`: not known,
    /// every end before the first listing may be missing), until the first listing since.
    unseen_since: Option<Option<Timestamp>>,
    /// Services that had an end while no server listed, with when the first listing after
    /// the outage was made: their count may lack ends Swarm dropped before it.
    short: HashMap<String, Timestamp>,
}

/// One task that ended on its own (a restart, see `swarmkeeper_swarm::Task::ended_on_its_own`).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskEnd {
    pub service_id: String,
    pub task_id: String,
    /// Its slot (`swarmkeeper_swarm::Task::slot_key`: the slot's number, a global task's
    /// node id).
    pub slot: String,
    pub at: Timestamp,
}

impl RestartLedger {
    /// Adds the ends of one listing (an end already known keeps its first time) and forgets
    /// those older than `keep` before `now`, and services left with none. Returns the ends
    /// it did not know, within `keep`: what a store of the ledger must add.
    pub fn record(
        &mut self,
        ends: impl IntoIterator<Item = TaskEnd>,
        now: Timestamp,
        keep: Duration,
    ) -> Vec<TaskEnd> {
        let keep = jiff::SignedDuration::try_from(keep).unwrap_or(jiff::SignedDuration::MAX);
        let oldest = now.checked_sub(keep).unwrap_or(Timestamp::MIN);
        let unseen_since = self.unseen_since.take();
        let mut added = Vec::new();
        for end in ends.into_iter().filter(|end| end.at >= oldest) {
            let tasks = self.ends.entry(end.service_id.clone()).or_default();
            if let std::collections::btree_map::Entry::Vacant(vacant) =
                tasks.entry(end.task_id.clone())
            {
                vacant.insert((end.at, end.slot.clone()));
                // A new end from the outage: Swarm may have dropped others before it.
                if unseen_since.is_some_and(|since| since.is_none_or(|since| end.at > since)) {
                    self.short.insert(end.service_id.clone(), now);
                }
                added.push(end);
            }
        }
        self.ends.retain(|_, tasks| {
            tasks.retain(|_, (at, _)| *at >= oldest);
            !tasks.is_empty()
        });
        self.short.retain(|_, listed| *listed >= oldest);
        added
    }

    /// A ledger that goes on from `ends`, what an earlier server recorded (those older than
    /// the rule's window may be left out), the last of them from its listing at
    /// `last_listed` (`None`: not known). The next [`record`](Self::record) is the first
    /// listing after the outage: a service with an end after `last_listed` in it
    /// [`may_be_short`](Self::may_be_short).
    pub fn restored(
        ends: impl IntoIterator<Item = TaskEnd>,
        last_listed: Option<Timestamp>,
    ) -> RestartLedger {
        let mut ledger = RestartLedger::default();
        for end in ends {
            ledger
                .ends
                .entry(end.service_id)
                .or_default()
                .entry(end.task_id)
                .or_insert((end.at, end.slot));
        }
        ledger.unseen_since = Some(last_listed);
        ledger
    }

    /// Whether the service's ends within `within` before `now` may lack some: it had ends
    /// while no server listed its tasks (a restart's outage), and the first listing after
    /// that is still within the window. Before the first listing of a restored ledger every
    /// service may be short.
    pub fn may_be_short(&self, service_id: &str, now: Timestamp, within: Duration) -> bool {
        if self.unseen_since.is_some() {
            return true;
        }
        let within = jiff::SignedDuration::try_from(within).unwrap_or(jiff::SignedDuration::MAX);
        self.short
            .get(service_id)
            .is_some_and(|listed| now.duration_since(*listed) < within)
    }

    /// Whether the service's restart loop is known to be over at `now`, though its count may
    /// lack ends ([`may_be_short`](Self::may_be_short)): every slot with an end in the
    /// ledger has had none since for longer than the longest pause between its known ends,
    /// and at least `within / (restarts - 1)`, the pause of the slowest even loop the rule
    /// fires on (2m 30s at 5 in 10m). An end missed in a restart's outage only merges two
    /// pauses into a longer one, so it makes the wait longer, never shorter; and Swarm drops
    /// a slot's oldest tasks first, so the first listing after the outage shows each slot's
    /// newest end. Before that listing nothing is known to be over.
    pub fn loop_ended(&self, service_id: &str, now: Timestamp, rule: &RestartLoop) -> bool {
        if self.unseen_since.is_some() {
            return false;
        }
        let pauses = u32::try_from(rule.restarts.saturating_sub(1).max(1)).unwrap_or(u32::MAX);
        let floor = jiff::SignedDuration::try_from(rule.within / pauses)
            .unwrap_or(jiff::SignedDuration::MAX);
        let Some(tasks) = self.ends.get(service_id) else {
            return true;
        };
        let mut slots: BTreeMap<&str, Vec<Timestamp>> = BTreeMap::new();
        for (at, slot) in tasks.values() {
            slots.entry(slot).or_default().push(*at);
        }
        slots.values_mut().all(|times| {
            times.sort();
            let longest = times
                .windows(2)
                .map(|pair| pair[1].duration_since(pair[0]))
                .max()
                .unwrap_or(jiff::SignedDuration::ZERO);
            let newest = *times.last().expect("a slot in the ledger has an end");
            now.duration_since(newest) >= floor.max(longest)
        })
    }

    /// When the service's tasks ended, oldest first.
    pub fn restarts(&self, service_id: &str) -> Vec<Timestamp> {
        let mut times: Vec<Timestamp> = self
            .ends
            .get(service_id)
            .map(|tasks| tasks.values().map(|(at, _)| *at).collect())
            .unwrap_or_default();
        times.sort();
        times
    }

    /// The ends of one slot of the service (task id, when), oldest first: what a task's page
    /// counts as its slot's restarts, beyond the 4 ended tasks Swarm still lists.
    pub fn slot_ends(&self, service_id: &str, slot: &str) -> Vec<(String, Timestamp)> {
        let mut ends: Vec<(String, Timestamp)> = self
            .ends
            .get(service_id)
            .map(|tasks| {
                tasks
                    .iter()
                    .filter(|(_, (_, s))| s == slot)
                    .map(|(task, (at, _))| (task.clone(), *at))
                    .collect()
            })
            .unwrap_or_default();
        ends.sort_by_key(|(_, at)| *at);
        ends
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{conditions, AlertRules, Observation, RuleId, ServiceObservation};

    const RETENTION: usize = 4; // ended tasks Swarm keeps per slot by default

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    /// A single-replica service restarting every `period` seconds from t=0, listed every 3 s
    /// (the server's evaluation interval) with Swarm's retention; whether the restart-loop rule
    /// holds at each listing, counting what the ledger remembers or (`remember` false) what
    /// the listing alone shows.
    fn firing_over_time(period: i64, until: i64, remember: bool) -> Vec<(i64, bool)> {
        let rules = AlertRules::default();
        let mut ledger = RestartLedger::default();
        let mut out = Vec::new();
        let mut now = 0;
        while now <= until {
            let ended: Vec<i64> = (1..=now / period).map(|k| k * period).collect();
            let listed = ended.iter().rev().take(RETENTION).map(|&t| TaskEnd {
                service_id: "svc".into(),
                task_id: format!("task-{t}"),
                slot: "1".into(),
                at: at(t),
            });
            if !remember {
                ledger = RestartLedger::default();
            }
            ledger.record(listed, at(now), rules.restart_loop.within);
            let observation = Observation {
                services: vec![ServiceObservation {
                    name: "web".into(),
                    converged: true,
                    rolled_back: None,
                    restarts: ledger.restarts("svc"),
                    restarts_partial: false,
                    loop_ended: false,
                    spec_since: None,
                }],
                ..Observation::default()
            };
            let fires = conditions(&rules, &observation, at(now))
                .active
                .iter()
                .any(|c| c.rule == RuleId::RestartLoop);
            out.push((now, fires));
            now += 3;
        }
        out
    }

    #[test]
    fn a_loop_at_swarms_default_restart_delay_fires_and_stays_firing() {
        // 5 s delay + a task that dies at once: an end every ~6 s.
        let listing_alone = firing_over_time(6, 300, false);
        assert!(
            listing_alone.iter().all(|(_, f)| !f),
            "the listing alone never fires"
        );
        let seen = firing_over_time(6, 300, true);
        let first = seen.iter().find(|(_, f)| *f).map(|(t, _)| *t);
        assert_eq!(first, Some(30), "fires at the fifth restart");
        assert!(
            seen.iter().filter(|(t, _)| *t >= 30).all(|(_, f)| *f),
            "{seen:?}"
        );
    }

    #[test]
    fn a_fast_loop_does_not_flap() {
        let seen = firing_over_time(1, 300, true);
        assert!(
            seen.iter().filter(|(t, _)| *t >= 6).all(|(_, f)| *f),
            "{seen:?}"
        );
    }

    #[test]
    fn ends_age_out_of_the_window_and_services_are_forgotten() {
        let mut ledger = RestartLedger::default();
        let keep = Duration::from_secs(600);
        let end = |task: &str, t| TaskEnd {
            service_id: "svc".into(),
            task_id: task.into(),
            slot: "1".into(),
            at: at(t),
        };
        let added = ledger.record([end("a", 0), end("b", 100)], at(100), keep);
        assert_eq!(added, [end("a", 0), end("b", 100)]);
        // A listing that shows "a" again (still in Swarm's history) does not count it twice,
        // and adds nothing to store; an end already out of the window is not taken.
        assert!(ledger.record([end("a", 0)], at(200), keep).is_empty());
        assert!(ledger.record([end("x", 0)], at(601), keep).is_empty());
        assert_eq!(ledger.restarts("svc"), vec![at(100)]);
        ledger = RestartLedger::default();
        ledger.record([end("a", 0), end("b", 100)], at(200), keep);
        assert_eq!(ledger.restarts("svc"), vec![at(0), at(100)]);
        ledger.record(
            [TaskEnd {
                slot: "2".into(),
                ..end("c", 150)
            }],
            at(200),
            keep,
        );
        assert_eq!(
            ledger.slot_ends("svc", "1"),
            vec![("a".to_owned(), at(0)), ("b".to_owned(), at(100))]
        );
        assert_eq!(
            ledger.slot_ends("svc", "2"),
            vec![("c".to_owned(), at(150))]
        );
        assert!(ledger.slot_ends("other", "1").is_empty());
        ledger.record([], at(650), keep);
        assert_eq!(ledger.restarts("svc"), vec![at(100), at(150)]);
        ledger.record([], at(751), keep);
        assert!(ledger.restarts("svc").is_empty());
        assert_eq!(ledger, RestartLedger::default());
    }
}
