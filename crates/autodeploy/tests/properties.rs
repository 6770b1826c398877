//! The auto-deploy invariants, over random sequences of checks, hooks and rollout outcomes.

use std::collections::HashSet;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use swarmkeeper_autodeploy::*;
use swarmkeeper_reference::Digest;

fn digest(n: u8) -> Digest {
    Digest::sha256_from_hex(&format!("{n:02x}").repeat(32)).unwrap()
}

#[derive(Debug, Clone)]
enum Event {
    /// The registry answers this digest (from a small pool, so digests repeat).
    Check(u8),
    Throttled(Option<u16>),
    RegistryError(Option<u16>),
    Hook,
    /// The rollout in flight, if any, ends so.
    Finish(u8),
    /// Time passes, in seconds.
    Wait(u16),
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => (0u8..6).prop_map(Event::Check),
        1 => prop::option::of(0u16..900).prop_map(Event::Throttled),
        1 => prop::option::of(0u16..900).prop_map(Event::RegistryError),
        1 => Just(Event::Hook),
        2 => (0u8..4).prop_map(Event::Finish),
        2 => (0u16..400).prop_map(Event::Wait),
    ]
}

fn outcome(n: u8) -> RolloutOutcome {
    match n {
        0 => RolloutOutcome::Converged,
        1 => RolloutOutcome::RolledBack {
            reason: "exit 1".into(),
        },
        2 => RolloutOutcome::Failed {
            reason: "paused".into(),
        },
        _ => RolloutOutcome::NotStarted {
            reason: "out of sequence".into(),
        },
    }
}

struct World {
    tracker: Tracker,
    now: Timestamp,
    running: Option<Digest>,
    /// What the test saw fail: never to be rolled out again.
    failed: HashSet<Digest>,
    rollouts: usize,
}

impl World {
    fn new(id: &str, interval: u64) -> World {
        let now: Timestamp = "2026-11-26T14:00:00Z".parse().unwrap();
        World {
            tracker: Tracker::new(
                id,
                Settings {
                    interval: Duration::from_secs(interval),
                },
                now,
            ),
            now,
            running: Some(digest(0)),
            failed: HashSet::new(),
            rollouts: 0,
        }
    }

    /// Applies one event, checking the invariants that hold at every step.
    fn apply(&mut self, event: &Event) -> Result<(), TestCaseError> {
        match event {
            Event::Check(n) => {
                let in_flight_before = self.tracker.in_flight().cloned();
                let decision = self.tracker.checked(
                    self.now,
                    self.running.as_ref(),
                    CheckResult::Digest(digest(*n)),
                );
                prop_assert!(
                    self.tracker.next_check() > self.now,
                    "the next check is in the future"
                );
                if let Decision::RollOut(d) = &decision {
                    prop_assert!(
                        in_flight_before.is_none(),
                        "a second rollout while {in_flight_before:?} is in flight"
                    );
                    prop_assert!(!self.failed.contains(d), "failed digest {d} retried");
                    prop_assert!(
                        Some(d) != self.running.as_ref(),
                        "rolled out the running digest"
                    );
                    self.rollouts += 1;
                }
                prop_assert_eq!(
                    self.tracker.in_flight().is_some(),
                    in_flight_before.is_some() || matches!(decision, Decision::RollOut(_))
                );
            }
            Event::Throttled(retry) | Event::RegistryError(retry) => {
                let retry_after = retry.map(|s| Duration::from_secs(s.into()));
                let result = match event {
                    Event::Throttled(_) => CheckResult::TooManyRequests { retry_after },
                    _ => CheckResult::Failed {
                        message: "registry error".into(),
                        retry_after,
                    },
                };
                let Decision::BackOff { until } =
                    self.tracker
                        .checked(self.now, self.running.as_ref(), result)
                else {
                    return Err(TestCaseError::fail("a failed check must back off"));
                };
                prop_assert!(
                    until
                        >= self.now
                            + SignedDuration::try_from(retry_after.unwrap_or_default()).unwrap()
                );
                prop_assert!(until > self.now);
            }
            Event::Hook => {
                let at = self.tracker.hook(self.now);
                prop_assert!(self.tracker.in_flight().is_none() || at >= self.now);
            }
            Event::Finish(n) => {
                if let Some(in_flight) = self.tracker.in_flight().cloned() {
                    let outcome = outcome(*n);
                    match outcome {
                        RolloutOutcome::Converged => self.running = Some(in_flight.digest.clone()),
                        RolloutOutcome::RolledBack { .. } | RolloutOutcome::Failed { .. } => {
                            self.failed.insert(in_flight.digest.clone());
                        }
                        RolloutOutcome::NotStarted { .. } => {}
                    }
                    self.tracker
                        .finished(self.now, &in_flight.digest, outcome)
                        .unwrap();
                    prop_assert!(self.tracker.in_flight().is_none());
                }
            }
            Event::Wait(s) => self.now += SignedDuration::from_secs((*s).into()),
        }
        Ok(())
    }
}

proptest! {
    /// Never two rollouts in flight; a failed digest is never rolled out again; the running
    /// digest is never rolled out; the next check is always ahead.
    #[test]
    fn invariants_hold(id in "[a-z0-9]{1,25}", interval in 10u64..600, events in prop::collection::vec(event(), 0..120)) {
        let mut world = World::new(&id, interval);
        for e in &events {
            world.apply(e)?;
        }
    }

    /// When the tag's digest never moves from the running one, nothing is ever rolled out.
    #[test]
    fn zero_rollouts_when_the_digest_does_not_move(id in "[a-z0-9]{1,25}", hooks in prop::collection::vec(any::<bool>(), 1..200)) {
        let mut world = World::new(&id, 60);
        for hook in hooks {
            if hook { world.tracker.hook(world.now); }
            world.now = world.now.max(world.tracker.next_check());
            let d = world.tracker.checked(world.now, Some(&digest(0)), CheckResult::Digest(digest(0)));
            prop_assert_eq!(d, Decision::UpToDate);
            prop_assert!(world.tracker.in_flight().is_none());
        }
    }

    /// Polled on schedule, a service is checked once per interval: its slots are one interval
    /// apart and each lies within an interval of the time it was asked after.
    #[test]
    fn one_check_per_interval(id in "[a-z0-9]{1,40}", interval in 10u64..7200, start in 0i64..4_000_000_000) {
        let interval = Duration::from_secs(interval);
        let after = Timestamp::from_second(start).unwrap();
        let first = next_slot(&id, interval, after);
        prop_assert!(first > after);
        prop_assert!(first.duration_since(after) <= SignedDuration::try_from(interval).unwrap());
        let second = next_slot(&id, interval, first);
        prop_assert_eq!(second.duration_since(first), SignedDuration::try_from(interval).unwrap());
        prop_assert!(slot_offset(&id, interval) < interval);
    }
}
