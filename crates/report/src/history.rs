//! A node's disk history on the server: every report adds a sample, and [`thin`] decides which
//! to let go so that the history stays small however often agents report.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};

/// How full one node's image filesystem was at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSample {
    pub at: Timestamp,
    pub used_bytes: u64,
    pub capacity_bytes: u64,
    /// Of `used_bytes`, what the node's GC may give back once it needs space
    /// ([`NodeReport::reclaimable_bytes`](crate::NodeReport::reclaimable_bytes)); 0 from an
    /// older agent.
    pub reclaimable_bytes: u64,
}

/// How long disk history is kept and how finely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Samples at most this old keep one-minute resolution.
    pub minute_resolution_for: SignedDuration,
    /// Older samples keep one per hour up to this age; samples older than this go.
    pub keep_for: SignedDuration,
}

impl Default for RetentionPolicy {
    /// A day at one sample a minute (1,440 per node), then 30 days at one an hour (720 more).
    fn default() -> RetentionPolicy {
        RetentionPolicy {
            minute_resolution_for: SignedDuration::from_hours(24),
            keep_for: SignedDuration::from_hours(24 * 30),
        }
    }
}

/// The samples to delete, as ascending indices into `samples` (one node's history, in any
/// order). Within each clock minute of the recent window and each clock hour of the older one,
/// the newest sample stays (of equal ones, the later in `samples`); samples older than
/// `keep_for` go. Thinning what it kept deletes nothing more.
pub fn thin(samples: &[DiskSample], now: Timestamp, policy: &RetentionPolicy) -> Vec<usize> {
    let times: Vec<Timestamp> = samples.iter().map(|s| s.at).collect();
    thin_by_tiers(
        &times,
        now,
        &[(policy.minute_resolution_for, 60), (policy.keep_for, 3600)],
    )
}

/// The one thinning rule of every kept series (disk samples, usage samples): `tiers` are
/// (samples at most this old, one per this many seconds of the clock), finest first. Returns
/// ascending indices into `times` to delete: within each clock bucket of its tier the newest
/// time stays (of equal ones, the later in `times`); times older than the last tier go.
pub(crate) fn thin_by_tiers(
    times: &[Timestamp],
    now: Timestamp,
    tiers: &[(SignedDuration, i64)],
) -> Vec<usize> {
    let mut delete = Vec::new();
    let mut newest: HashMap<(i64, i64), usize> = HashMap::new();
    for (i, at) in times.iter().enumerate() {
        let age = now.duration_since(*at);
        let Some(&(_, step)) = tiers.iter().find(|(within, _)| age <= *within) else {
            delete.push(i);
            continue;
        };
        match newest.entry((step, at.as_second().div_euclid(step))) {
            Entry::Vacant(slot) => {
                slot.insert(i);
            }
            Entry::Occupied(mut slot) => {
                if *at >= times[*slot.get()] {
                    delete.push(slot.insert(i));
                } else {
                    delete.push(i);
                }
            }
        }
    }
    delete.sort_unstable();
    delete
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn at(s: &str) -> DiskSample {
        DiskSample {
            at: t(s),
            used_bytes: 1,
            capacity_bytes: 2,
            reclaimable_bytes: 0,
        }
    }

    const NOW: &str = "2026-11-26T12:00:00Z";

    #[test]
    fn recent_samples_keep_the_newest_of_each_minute() {
        let samples = [
            at("2026-11-26T11:58:10Z"),
            at("2026-11-26T11:58:40Z"),
            at("2026-11-26T11:59:05Z"),
            at("2026-11-26T11:58:20Z"),
        ];
        assert_eq!(thin(&samples, t(NOW), &RetentionPolicy::default()), [0, 3]);
    }

    #[test]
    fn older_samples_keep_one_an_hour_and_the_oldest_go() {
        let samples = [
            at("2026-11-20T08:05:00Z"),
            at("2026-11-20T08:55:00Z"),
            at("2026-11-20T09:00:00Z"),
            at("2026-10-01T00:00:00Z"),
            at("2026-11-25T12:00:00Z"),
            at("2026-11-25T12:00:30Z"),
        ];
        // 12:00:00 the day before is exactly 24 h old: still at minute resolution, where the
        // 12:00:30 sample is newer.
        assert_eq!(
            thin(&samples, t(NOW), &RetentionPolicy::default()),
            [0, 3, 4]
        );
    }

    #[test]
    fn equal_times_keep_the_later_sample() {
        let samples = [at("2026-11-26T11:59:00Z"), at("2026-11-26T11:59:00Z")];
        assert_eq!(thin(&samples, t(NOW), &RetentionPolicy::default()), [0]);
    }

    #[test]
    fn samples_from_the_future_count_as_recent() {
        let samples = [at("2026-11-26T12:05:00Z"), at("2026-11-26T12:05:30Z")];
        assert_eq!(thin(&samples, t(NOW), &RetentionPolicy::default()), [0]);
    }
}
