//! Resource usage in a report: the samples the agent took (every `--stats-interval`) since the
//! server last accepted a report. Counters stay counters (CPU time, OOM kills): the server
//! turns two samples into a rate, so a lost report loses resolution, never a total. All
//! integers, so a report stays `Eq` and exact in JSON.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Samples an agent holds while the server does not accept its reports: an hour at the default
/// 10 s interval. Older ones are dropped first.
pub const MAX_USAGE_SAMPLES: usize = 360;

/// The most task containers one sample may list (a node runs far fewer; the bound keeps a
/// report's size and the server's work per report bounded).
pub const MAX_USAGE_TASKS: usize = 2_000;

/// One sampling pass on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageSample {
    /// When the agent read the figures, by the node's clock.
    pub taken_at: Timestamp,
    /// The node's own figures; `None` when `/proc` could not be read.
    #[serde(default)]
    pub node: Option<NodeUsage>,
    /// Every running Swarm task container on the node.
    #[serde(default)]
    pub tasks: Vec<TaskUsage>,
}

/// The node's CPU and memory at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeUsage {
    /// CPU time all CPUs spent busy since boot, in milliseconds (a counter).
    pub cpu_busy_ms: u64,
    /// Busy plus idle since boot, in milliseconds: busy / total between two samples is the
    /// node's utilisation.
    pub cpu_total_ms: u64,
    pub cpus: u32,
    pub memory_total_bytes: u64,
    /// `MemAvailable`.
    pub memory_available_bytes: u64,
}

/// One task container at one moment; the names are the labels of its metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskUsage {
    /// `com.docker.swarm.task.id`.
    pub task: String,
    /// `com.docker.swarm.service.name`.
    pub service: String,
    /// `com.docker.stack.namespace`; empty outside a stack.
    #[serde(default)]
    pub stack: String,
    /// The replica's slot; empty for a global service.
    #[serde(default)]
    pub slot: String,
    /// CPU time of its processes since the container started, in nanoseconds (a counter).
    pub cpu_ns: u64,
    /// Working set: usage less inactive page cache (what `docker stats` shows).
    pub memory_bytes: u64,
    /// `None` without a limit.
    #[serde(default)]
    pub memory_limit_bytes: Option<u64>,
    /// Processes the kernel's OOM killer killed in it; `None` when the kernel does not count.
    #[serde(default)]
    pub oom_kills: Option<u64>,
}

/// How finely the server keeps usage samples, finest first: (samples at most this old, one
/// per this many seconds of the clock). Older than the last tier, samples go.
pub const USAGE_RETENTION: [(jiff::SignedDuration, i64); 3] = [
    (jiff::SignedDuration::from_hours(1), 10),
    (jiff::SignedDuration::from_hours(24), 60),
    (jiff::SignedDuration::from_hours(24 * 30), 3600),
];

/// The usage samples to delete, as ascending indices into `taken_at` (one node's sample
/// times, in any order), per [`USAGE_RETENTION`]: within each clock bucket of its tier the
/// newest sample stays. Samples hold counters, so the rate between two kept samples is still
/// the true average over the time between them.
pub fn thin_usage(taken_at: &[Timestamp], now: Timestamp) -> Vec<usize> {
    crate::history::thin_by_tiers(taken_at, now, &USAGE_RETENTION)
}

/// Where the next usage thinning pass must look so that it ends where a pass over every
/// stored sample would: per tier of [`USAGE_RETENTION`] (finest first), the oldest sample time
/// that may share a clock bucket of that tier with a sample that joined the tier (by ageing
/// or by arriving) since the last pass. Older buckets of a tier were thinned when their
/// samples were last looked at and nothing joined them since, so a full pass would delete
/// nothing there.
///
/// A pass at `now` reads [`UsageWatermark::ranges`], deletes per [`thin_usage`] over the times
/// it read and every sample older than the last tier, and then keeps
/// [`UsageWatermark::after`]`(now)`; every sample stored meanwhile [`lower`](Self::lower)s it.
/// Since buckets nest (10 s in a minute in an hour) and ages only grow, a pass that reads the
/// ranges deletes exactly what a full pass at the same `now` deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageWatermark {
    from: [Timestamp; USAGE_RETENTION.len()],
}

impl UsageWatermark {
    /// Nothing thinned yet: the next pass reads everything (a server's first pass after it
    /// starts).
    pub const FULL: UsageWatermark = UsageWatermark {
        from: [Timestamp::MIN; USAGE_RETENTION.len()],
    };

    /// After a pass at `now`: tier 0 needs no look until a sample arrives; each coarser tier
    /// from the start of its bucket that samples ageing past the finer tier join next.
    pub fn after(now: Timestamp) -> UsageWatermark {
        let mut from = [Timestamp::MAX; USAGE_RETENTION.len()];
        for tier in 1..USAGE_RETENTION.len() {
            let (finer_within, _) = USAGE_RETENTION[tier - 1];
            from[tier] = bucket_start(now - finer_within, USAGE_RETENTION[tier].1);
        }
        UsageWatermark { from }
    }

    /// A sample taken at `at` was stored: every tier looks again from the bucket it is in.
    pub fn lower(&mut self, at: Timestamp) {
        for (from, (_, step)) in self.from.iter_mut().zip(USAGE_RETENTION) {
            *from = (*from).min(bucket_start(at, step));
        }
    }

    /// The sample times a pass at `now` reads, as half-open ranges `[from, until)` (`until`
    /// `None`: no end), at most one per tier, oldest tier last. Each lies within its tier's
    /// ages at `now` (a tier holds samples at most its age old and older than the finer
    /// tier's), so the ranges never overlap.
    pub fn ranges(&self, now: Timestamp) -> Vec<(Timestamp, Option<Timestamp>)> {
        let mut ranges = Vec::new();
        for (tier, &(within, _)) in USAGE_RETENTION.iter().enumerate() {
            let from = self.from[tier].max(now - within);
            let until = (tier > 0).then(|| now - USAGE_RETENTION[tier - 1].0);
            if until.is_none_or(|until| from < until) && from < Timestamp::MAX {
                ranges.push((from, until));
            }
        }
        ranges
    }

    /// Samples taken before this go at `now`, whatever their bucket: older than the last tier.
    pub fn expire_before(now: Timestamp) -> Timestamp {
        now - USAGE_RETENTION[USAGE_RETENTION.len() - 1].0
    }
}

/// The start of the `step`-second clock bucket `at` is in (the buckets [`thin_usage`] keeps
/// the newest of).
fn bucket_start(at: Timestamp, step: i64) -> Timestamp {
    if at == Timestamp::MIN || at == Timestamp::MAX {
        return at;
    }
    let second = at.as_second().div_euclid(step) * step;
    Timestamp::from_second(second).unwrap_or(Timestamp::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_thinned_to_10_s_for_an_hour_1_min_for_a_day_1_h_for_30_days() {
        let now: Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();
        // A sample every 5 s for 31 days.
        let times: Vec<Timestamp> = (0..31 * 24 * 720)
            .map(|n| now - jiff::SignedDuration::from_secs(5 * n))
            .collect();
        let delete = thin_usage(&times, now);
        let kept: Vec<Timestamp> = (0..times.len())
            .filter(|i| delete.binary_search(i).is_err())
            .map(|i| times[i])
            .collect();
        let within = |hours: i64| {
            kept.iter()
                .filter(|at| now.duration_since(**at) <= jiff::SignedDuration::from_hours(hours))
                .count()
        };
        // 360 (+1 for the bucket now is in) ten-second samples in the last hour, ...
        assert!((360..=361).contains(&within(1)), "{}", within(1));
        // ... 1,380 minutes for the rest of the day, ...
        assert!((1740..=1742).contains(&within(24)), "{}", within(24));
        // ... 696 hours for the rest of the 30 days, and nothing older.
        assert!((2436..=2440).contains(&kept.len()), "{}", kept.len());
        assert!(kept
            .iter()
            .all(|at| now.duration_since(*at) <= jiff::SignedDuration::from_hours(720)));
        // Thinning what was kept deletes nothing more.
        assert!(thin_usage(&kept, now).is_empty());
    }
}
