//! Usage thinning done incrementally (`UsageWatermark`) ends exactly where thinning every
//! stored sample at each pass ends, however samples arrive (late, early, twice) and however
//! far apart passes run; and a second pass at the same time deletes nothing.

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use swarmkeeper_report::{thin_usage, UsageWatermark};

fn start() -> Timestamp {
    "2026-11-26T12:00:07.250Z".parse().unwrap()
}

/// One thing happening to a node's usage history.
#[derive(Debug, Clone)]
enum Step {
    /// Samples arrive, taken this many seconds before the clock (negative: the node's clock
    /// is ahead; old: an agent that could not report for a while).
    Arrive { ages: Vec<i64> },
    /// The clock moves on this many seconds, then a housekeeping pass runs.
    Pass { after: i64 },
}

/// Ages that crowd the tiers' edges (1 h, 24 h, 30 days) and the buckets around them.
fn age() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => -60i64..120,
        2 => 3_300i64..3_900,
        2 => 86_000i64..87_000,
        1 => 0i64..31 * 86_400,
        1 => 2_591_000i64..2_593_000,
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => prop::collection::vec(age(), 1..30).prop_map(|ages| Step::Arrive { ages }),
        2 => prop_oneof![1i64..400, 300i64..4_000, 80_000i64..90_000]
            .prop_map(|after| Step::Pass { after }),
    ]
}

/// The reference: every pass thins all that is stored.
fn full_pass(stored: &mut BTreeSet<Timestamp>, now: Timestamp) {
    let times: Vec<Timestamp> = stored.iter().copied().collect();
    for index in thin_usage(&times, now) {
        stored.remove(&times[index]);
    }
}

/// What `Store::thin_usage` does: read only the watermark's ranges, expire by range.
fn incremental_pass(stored: &mut BTreeSet<Timestamp>, mark: &mut UsageWatermark, now: Timestamp) {
    let mut read = Vec::new();
    for (from, until) in mark.ranges(now) {
        read.extend(
            stored
                .iter()
                .filter(|at| **at >= from && until.is_none_or(|until| **at < until)),
        );
    }
    for index in thin_usage(&read, now) {
        stored.remove(&read[index]);
    }
    let expire = UsageWatermark::expire_before(now);
    stored.retain(|at| *at >= expire);
    *mark = UsageWatermark::after(now);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn incremental_passes_equal_full_passes(steps in prop::collection::vec(step(), 1..40)) {
        let mut now = start();
        let mut full = BTreeSet::new();
        let mut incremental = BTreeSet::new();
        let mut mark = UsageWatermark::FULL;
        for step in steps {
            match step {
                Step::Arrive { ages } => {
                    for age in ages {
                        let at = now - SignedDuration::from_secs(age);
                        full.insert(at);
                        incremental.insert(at);
                        mark.lower(at);
                    }
                }
                Step::Pass { after } => {
                    now += SignedDuration::from_secs(after);
                    full_pass(&mut full, now);
                    incremental_pass(&mut incremental, &mut mark, now);
                    prop_assert_eq!(&incremental, &full, "after the pass at {}", now);
                }
            }
        }
    }

    #[test]
    fn thinning_twice_equals_thinning_once(ages in prop::collection::vec(age(), 0..400)) {
        let now = start();
        let mut once: BTreeSet<Timestamp> =
            ages.iter().map(|age| now - SignedDuration::from_secs(*age)).collect();
        full_pass(&mut once, now);
        let mut twice = once.clone();
        full_pass(&mut twice, now);
        prop_assert_eq!(&twice, &once);
        // An incremental pass right after a full one reads nothing and deletes nothing.
        let mark = UsageWatermark::after(now);
        let within_a_bucket = mark.ranges(now).iter().all(|(from, until)| {
            until.is_some_and(|until| *from >= until - SignedDuration::from_secs(3600))
        });
        prop_assert!(within_a_bucket);
        let mut again = once.clone();
        incremental_pass(&mut again, &mut mark.clone(), now);
        prop_assert_eq!(&again, &once);
    }
}

#[test]
fn a_pass_right_after_another_reads_at_most_a_bucket_per_tier() {
    let now = start();
    let mark = UsageWatermark::after(now);
    let later = now + SignedDuration::from_mins(5);
    let ranges = mark.ranges(later);
    // Tier 0 has nothing new; tiers 1 and 2 read what aged into them, from its bucket's start.
    assert_eq!(ranges.len(), 2, "{ranges:?}");
    for (from, until) in ranges {
        let span = until.unwrap().duration_since(from);
        assert!(span <= SignedDuration::from_secs(3600 + 300), "{span:?}");
    }
}
