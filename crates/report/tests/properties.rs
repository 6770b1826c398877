//! Invariants of disk history thinning, over arbitrary histories.

use std::collections::{HashMap, HashSet};

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use swarmkeeper_report::{thin, DiskSample, RetentionPolicy};

const DAY: i64 = 24 * 3600;

fn now() -> Timestamp {
    "2026-11-26T12:00:17Z".parse().unwrap()
}

/// Ages in seconds that crowd the interesting places: the last hour (many samples per
/// minute), both sides of the 24 h and 30 day edges, and beyond; a few from the future.
fn age() -> impl Strategy<Value = i64> {
    prop_oneof![
        -120i64..3_600,
        DAY - 7_200..DAY + 7_200,
        DAY..31 * DAY,
        30 * DAY - 7_200..30 * DAY + 7_200,
    ]
}

fn history() -> impl Strategy<Value = Vec<DiskSample>> {
    prop::collection::vec(
        (age(), any::<u32>()).prop_map(|(age, used)| DiskSample {
            at: now() - SignedDuration::from_secs(age),
            used_bytes: u64::from(used),
            capacity_bytes: u64::from(u32::MAX),
            reclaimable_bytes: 0,
        }),
        0..300,
    )
}

fn policies() -> impl Strategy<Value = RetentionPolicy> {
    prop_oneof![
        Just(RetentionPolicy::default()),
        (1i64..48, 1i64..40).prop_map(|(hours, days)| RetentionPolicy {
            minute_resolution_for: SignedDuration::from_hours(hours),
            keep_for: SignedDuration::from_hours(days * 24),
        }),
    ]
}

fn kept(samples: &[DiskSample], deleted: &[usize]) -> Vec<DiskSample> {
    let deleted: HashSet<usize> = deleted.iter().copied().collect();
    samples
        .iter()
        .enumerate()
        .filter(|(i, _)| !deleted.contains(i))
        .map(|(_, s)| *s)
        .collect()
}

fn age_of(s: &DiskSample) -> SignedDuration {
    now().duration_since(s.at)
}

proptest! {
    #[test]
    fn indices_are_ascending_unique_and_in_range(samples in history(), policy in policies()) {
        let deleted = thin(&samples, now(), &policy);
        prop_assert!(deleted.windows(2).all(|w| w[0] < w[1]));
        prop_assert!(deleted.iter().all(|&i| i < samples.len()));
    }

    #[test]
    fn the_newest_recent_sample_of_each_minute_stays(samples in history(), policy in policies()) {
        let deleted: HashSet<usize> = thin(&samples, now(), &policy).into_iter().collect();
        let mut minutes: HashMap<i64, Vec<usize>> = HashMap::new();
        for (i, s) in samples.iter().enumerate() {
            if age_of(s) <= policy.minute_resolution_for.min(policy.keep_for) {
                minutes.entry(s.at.as_second().div_euclid(60)).or_default().push(i);
            }
        }
        for members in minutes.values() {
            let newest = members.iter().map(|&i| samples[i].at).max().unwrap();
            let survivors: Vec<usize> = members.iter().copied().filter(|i| !deleted.contains(i)).collect();
            prop_assert_eq!(survivors.len(), 1, "one sample per minute stays");
            prop_assert_eq!(samples[survivors[0]].at, newest, "and it is the newest");
        }
    }

    #[test]
    fn older_samples_keep_exactly_one_per_hour(samples in history(), policy in policies()) {
        let left = kept(&samples, &thin(&samples, now(), &policy));
        let mut hours = HashSet::new();
        for s in left.iter().filter(|s| age_of(s) > policy.minute_resolution_for) {
            prop_assert!(age_of(s) <= policy.keep_for, "nothing older than keep_for stays");
            prop_assert!(hours.insert(s.at.as_second().div_euclid(3600)), "two samples in one hour");
        }
        let expected: HashSet<i64> = samples
            .iter()
            .filter(|s| age_of(s) > policy.minute_resolution_for && age_of(s) <= policy.keep_for)
            .map(|s| s.at.as_second().div_euclid(3600))
            .collect();
        prop_assert_eq!(hours, expected, "every hour with samples keeps one");
    }

    #[test]
    fn thinning_twice_changes_nothing(samples in history(), policy in policies()) {
        let left = kept(&samples, &thin(&samples, now(), &policy));
        prop_assert!(thin(&left, now(), &policy).is_empty());
    }

    #[test]
    fn thinning_later_keeps_the_invariants(samples in history(), minutes in 1i64..3_000) {
        let policy = RetentionPolicy::default();
        let left = kept(&samples, &thin(&samples, now(), &policy));
        let later = now() + SignedDuration::from_mins(minutes);
        let again = kept(&left, &thin(&left, later, &policy));
        let mut minutes_seen = HashSet::new();
        let mut hours_seen = HashSet::new();
        for s in &again {
            let age = later.duration_since(s.at);
            prop_assert!(age <= policy.keep_for);
            if age <= policy.minute_resolution_for {
                prop_assert!(minutes_seen.insert(s.at.as_second().div_euclid(60)));
            } else {
                prop_assert!(hours_seen.insert(s.at.as_second().div_euclid(3600)));
            }
        }
    }
}
