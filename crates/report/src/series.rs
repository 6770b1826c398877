//! Usage samples turned into what a chart and the overview show: rates from counters, one
//! point per clock bucket of the range's resolution, a service's replicas summed, the top
//! consumers and the replicas near their memory limit. Pure: the server reads the samples
//! from the store and draws.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::usage::{NodeUsage, TaskUsage, USAGE_RETENTION};

/// The ranges a usage chart shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum UsageRange {
    #[serde(rename = "1h")]
    Hour,
    #[serde(rename = "24h")]
    Day,
    #[serde(rename = "30d")]
    Month,
}

impl UsageRange {
    pub const ALL: [UsageRange; 3] = [UsageRange::Hour, UsageRange::Day, UsageRange::Month];

    /// `1h`, `24h` or `30d`; `None` for anything else.
    pub fn parse(text: &str) -> Option<UsageRange> {
        UsageRange::ALL.into_iter().find(|r| r.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            UsageRange::Hour => "1h",
            UsageRange::Day => "24h",
            UsageRange::Month => "30d",
        }
    }

    pub fn window(self) -> SignedDuration {
        match self {
            UsageRange::Hour => SignedDuration::from_hours(1),
            UsageRange::Day => SignedDuration::from_hours(24),
            UsageRange::Month => SignedDuration::from_hours(24 * 30),
        }
    }

    /// Seconds per point: see [`resolution`].
    pub fn step_seconds(self) -> i64 {
        resolution(self.window())
    }
}

/// The seconds between a chart's points over `window`: the step of the finest retention tier
/// that still holds the whole window (10 s for an hour, 60 s for a day, 3600 s beyond), so
/// every point stands on a stored sample and the oldest part of the window is as fine as
/// the newest. Past the last tier, its step.
pub fn resolution(window: SignedDuration) -> i64 {
    USAGE_RETENTION
        .iter()
        .find(|(within, _)| window <= *within)
        .unwrap_or(&USAGE_RETENTION[USAGE_RETENTION.len() - 1])
        .1
}

/// Two points further apart than this are not joined: the agent was down or the samples were
/// lost, and a rate over the gap would draw a slope nobody measured.
pub fn max_gap(step_seconds: i64) -> SignedDuration {
    SignedDuration::from_secs((3 * step_seconds).max(300))
}

/// One point of a chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsagePoint {
    /// The end of the interval the rate is averaged over (the sample's time).
    pub at: Timestamp,
    /// CPU cores busy on average since the previous point; `None` for the first point, after
    /// a gap longer than [`max_gap`], or when a counter went backwards (a restart).
    pub cpu_cores: Option<f64>,
    /// Bytes in use (a node: total less available; a task: its working set).
    pub memory_bytes: u64,
    /// The bytes `memory_bytes` is bounded by: a node's total, a task's limit, a service's
    /// replicas' limits summed; `None` when a replica has no limit.
    pub memory_limit_bytes: Option<u64>,
}

/// Keeps the newest of the samples in each `step`-second clock bucket, oldest first (the
/// rule [`crate::thin_usage`] keeps samples by).
fn per_bucket<T>(mut samples: Vec<(Timestamp, T)>, step: i64) -> Vec<(Timestamp, T)> {
    samples.sort_by_key(|(at, _)| *at);
    let mut kept: Vec<(Timestamp, T)> = Vec::with_capacity(samples.len());
    for (at, value) in samples {
        let bucket = at.as_second().div_euclid(step);
        match kept.last_mut() {
            Some(last) if last.0.as_second().div_euclid(step) == bucket => *last = (at, value),
            _ => kept.push((at, value)),
        }
    }
    kept
}

/// A rate between two readings of a counter: `None` across a gap or when it went backwards.
fn rate(
    previous: Option<(Timestamp, u64)>,
    at: Timestamp,
    counter: u64,
    step: i64,
    per_second: impl Fn(u64, f64) -> f64,
) -> Option<f64> {
    let (before, value) = previous?;
    let seconds = at.duration_since(before);
    if seconds <= SignedDuration::ZERO || seconds > max_gap(step) || counter < value {
        return None;
    }
    Some(per_second(counter - value, seconds.as_secs_f64()))
}

/// A node's points at `step` seconds; samples in any order.
pub fn node_points(samples: &[(Timestamp, NodeUsage)], step: i64) -> Vec<UsagePoint> {
    let kept = per_bucket(samples.to_vec(), step);
    let mut points = Vec::with_capacity(kept.len());
    let mut previous: Option<(Timestamp, &NodeUsage)> = None;
    for (at, node) in &kept {
        let cpu_cores = previous.and_then(|(before, prev)| {
            let total = node.cpu_total_ms.checked_sub(prev.cpu_total_ms)?;
            let seconds = at.duration_since(before);
            if total == 0 || seconds > max_gap(step) || node.cpu_busy_ms < prev.cpu_busy_ms {
                return None;
            }
            let busy = node.cpu_busy_ms - prev.cpu_busy_ms;
            Some((busy as f64 / total as f64).min(1.0) * f64::from(node.cpus))
        });
        points.push(UsagePoint {
            at: *at,
            cpu_cores,
            memory_bytes: node
                .memory_total_bytes
                .saturating_sub(node.memory_available_bytes),
            memory_limit_bytes: Some(node.memory_total_bytes),
        });
        previous = Some((*at, node));
    }
    points
}

/// One task's points at `step` seconds; samples in any order.
pub fn task_points(samples: &[(Timestamp, &TaskUsage)], step: i64) -> Vec<UsagePoint> {
    let kept = per_bucket(samples.to_vec(), step);
    let mut points = Vec::with_capacity(kept.len());
    let mut previous: Option<(Timestamp, u64)> = None;
    for (at, task) in kept {
        points.push(UsagePoint {
            at,
            cpu_cores: rate(previous, at, task.cpu_ns, step, |ns, s| ns as f64 / 1e9 / s),
            memory_bytes: task.memory_bytes,
            memory_limit_bytes: task.memory_limit_bytes,
        });
        previous = Some((at, task.cpu_ns));
    }
    points
}

/// The samples of each task, by task id.
fn by_task(samples: &[(Timestamp, TaskUsage)]) -> BTreeMap<&str, Vec<(Timestamp, &TaskUsage)>> {
    let mut tasks: BTreeMap<&str, Vec<(Timestamp, &TaskUsage)>> = BTreeMap::new();
    for (at, task) in samples {
        tasks
            .entry(task.task.as_str())
            .or_default()
            .push((*at, task));
    }
    tasks
}

/// A service's points at `step` seconds: each replica's points (by task id) summed per clock
/// bucket. A bucket's CPU is the sum of the replicas that have a rate there (`None` when none
/// has); its memory limit is `None` when a replica there has none. Stamped with the newest
/// sample of the bucket, so the replicas of nodes whose clocks and intervals differ still
/// add up.
pub fn service_points(samples: &[(Timestamp, TaskUsage)], step: i64) -> Vec<UsagePoint> {
    let by_task = by_task(samples);
    let mut buckets: BTreeMap<i64, UsagePoint> = BTreeMap::new();
    for task_samples in by_task.values() {
        for point in task_points(task_samples, step) {
            let bucket = point.at.as_second().div_euclid(step);
            let sum = buckets.entry(bucket).or_insert(UsagePoint {
                at: point.at,
                cpu_cores: None,
                memory_bytes: 0,
                memory_limit_bytes: Some(0),
            });
            sum.at = sum.at.max(point.at);
            sum.cpu_cores = match (sum.cpu_cores, point.cpu_cores) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            };
            sum.memory_bytes = sum.memory_bytes.saturating_add(point.memory_bytes);
            sum.memory_limit_bytes = sum
                .memory_limit_bytes
                .zip(point.memory_limit_bytes)
                .map(|(a, b)| a.saturating_add(b));
        }
    }
    buckets.into_values().collect()
}

/// A service's latest usage, for the overview's lists.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceUsage {
    pub service: String,
    pub stack: String,
    /// Cores busy over the last interval, summed over replicas (0 when no rate is known yet).
    pub cpu_cores: f64,
    /// Working sets summed over replicas.
    pub memory_bytes: u64,
    pub replicas: usize,
    /// The replica nearest its memory limit, when any has one.
    pub nearest_limit: Option<NearLimit>,
}

/// A replica's working set against its memory limit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NearLimit {
    pub task: String,
    /// `memory_bytes * 100 / memory_limit_bytes`.
    pub percent: f64,
}

/// Every service's latest usage from recent task samples (any order, several per task; each
/// task's newest sample counts, its CPU rate from the one before), largest CPU first.
pub fn latest_by_service(samples: &[(Timestamp, TaskUsage)], step: i64) -> Vec<ServiceUsage> {
    let by_task = by_task(samples);
    let mut services: BTreeMap<&str, ServiceUsage> = BTreeMap::new();
    for task_samples in by_task.values() {
        let Some(&(_, newest)) = task_samples.iter().max_by_key(|(at, _)| *at) else {
            continue;
        };
        let Some(point) = task_points(task_samples, step).pop() else {
            continue;
        };
        let service = services
            .entry(newest.service.as_str())
            .or_insert_with(|| ServiceUsage {
                service: newest.service.clone(),
                stack: newest.stack.clone(),
                cpu_cores: 0.0,
                memory_bytes: 0,
                replicas: 0,
                nearest_limit: None,
            });
        service.replicas += 1;
        service.cpu_cores += point.cpu_cores.unwrap_or(0.0);
        service.memory_bytes = service.memory_bytes.saturating_add(point.memory_bytes);
        if let Some(limit) = point.memory_limit_bytes.filter(|l| *l > 0) {
            let percent = point.memory_bytes as f64 * 100.0 / limit as f64;
            if service
                .nearest_limit
                .as_ref()
                .is_none_or(|near| percent > near.percent)
            {
                service.nearest_limit = Some(NearLimit {
                    task: newest.task.clone(),
                    percent,
                });
            }
        }
    }
    let mut list: Vec<ServiceUsage> = services.into_values().collect();
    list.sort_by(|a, b| b.cpu_cores.total_cmp(&a.cpu_cores));
    list
}

/// The overview's lists: the `n` largest by CPU and by memory, and every service with a
/// replica at or above `near_percent` of its memory limit (nearest first).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopConsumers {
    pub by_cpu: Vec<ServiceUsage>,
    pub by_memory: Vec<ServiceUsage>,
    pub near_memory_limit: Vec<ServiceUsage>,
}

pub fn top_consumers(services: &[ServiceUsage], n: usize, near_percent: f64) -> TopConsumers {
    let mut by_cpu: Vec<ServiceUsage> = services
        .iter()
        .filter(|s| s.cpu_cores > 0.0)
        .cloned()
        .collect();
    by_cpu.sort_by(|a, b| {
        b.cpu_cores
            .total_cmp(&a.cpu_cores)
            .then(a.service.cmp(&b.service))
    });
    by_cpu.truncate(n);
    let mut by_memory: Vec<ServiceUsage> = services.to_vec();
    by_memory.sort_by(|a, b| {
        b.memory_bytes
            .cmp(&a.memory_bytes)
            .then(a.service.cmp(&b.service))
    });
    by_memory.truncate(n);
    let percent = |s: &ServiceUsage| s.nearest_limit.as_ref().map_or(0.0, |near| near.percent);
    let mut near_memory_limit: Vec<ServiceUsage> = services
        .iter()
        .filter(|s| percent(s) >= near_percent)
        .cloned()
        .collect();
    near_memory_limit.sort_by(|a, b| percent(b).total_cmp(&percent(a)));
    TopConsumers {
        by_cpu,
        by_memory,
        near_memory_limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    fn task(id: &str, service: &str, cpu_ns: u64, memory: u64, limit: Option<u64>) -> TaskUsage {
        TaskUsage {
            task: id.into(),
            service: service.into(),
            stack: String::new(),
            slot: String::new(),
            cpu_ns,
            memory_bytes: memory,
            memory_limit_bytes: limit,
            oom_kills: None,
        }
    }

    #[test]
    fn the_range_picks_the_finest_tier_that_holds_it() {
        assert_eq!(UsageRange::Hour.step_seconds(), 10);
        assert_eq!(UsageRange::Day.step_seconds(), 60);
        assert_eq!(UsageRange::Month.step_seconds(), 3600);
        assert_eq!(resolution(SignedDuration::from_mins(10)), 10);
        assert_eq!(resolution(SignedDuration::from_hours(24 * 90)), 3600);
        for range in UsageRange::ALL {
            assert_eq!(UsageRange::parse(range.as_str()), Some(range));
        }
        assert_eq!(UsageRange::parse("7d"), None);
    }

    #[test]
    fn a_node_s_cpu_is_busy_over_total_times_its_cpus() {
        let node = |busy, total| NodeUsage {
            cpu_busy_ms: busy,
            cpu_total_ms: total,
            cpus: 4,
            memory_total_bytes: 1000,
            memory_available_bytes: 400,
        };
        let points = node_points(&[(t(10), node(1_000, 40_000)), (t(0), node(0, 0))], 10);
        assert_eq!(points.len(), 2);
        assert_eq!(points[0].cpu_cores, None);
        // 1 s busy of 40 s over 4 CPUs: a tenth of one core.
        assert_eq!(points[1].cpu_cores, Some(0.1));
        assert_eq!(points[1].memory_bytes, 600);
        assert_eq!(points[1].memory_limit_bytes, Some(1000));
    }

    #[test]
    fn a_gap_or_a_counter_going_back_has_no_rate() {
        let samples = [
            (t(0), task("a", "web", 0, 1, None)),
            (t(10), task("a", "web", 5_000_000_000, 1, None)),
            (t(20), task("a", "web", 1_000, 1, None)),
            (t(1000), task("a", "web", 2_000, 1, None)),
        ];
        let refs: Vec<(Timestamp, &TaskUsage)> = samples.iter().map(|(a, t)| (*a, t)).collect();
        let cpu: Vec<Option<f64>> = task_points(&refs, 10).iter().map(|p| p.cpu_cores).collect();
        assert_eq!(cpu, [None, Some(0.5), None, None]);
    }

    #[test]
    fn a_service_sums_its_replicas_per_bucket() {
        let samples = [
            (t(0), task("a", "web", 0, 100, Some(1000))),
            (t(2), task("b", "web", 0, 200, Some(1000))),
            (t(10), task("a", "web", 10_000_000_000, 150, Some(1000))),
            (t(13), task("b", "web", 5_000_000_000, 250, Some(1000))),
        ];
        let points = service_points(&samples, 10);
        assert_eq!(points.len(), 2);
        assert_eq!(points[0].memory_bytes, 300);
        assert_eq!(points[0].cpu_cores, None);
        assert_eq!(points[1].at, t(13));
        assert_eq!(points[1].memory_bytes, 400);
        assert_eq!(points[1].memory_limit_bytes, Some(2000));
        assert_eq!(points[1].cpu_cores, Some(1.0 + 5.0 / 11.0));
    }

    #[test]
    fn the_overview_lists_top_consumers_and_services_near_their_limit() {
        let samples = [
            (t(0), task("a", "web", 0, 100, Some(1000))),
            (t(10), task("a", "web", 10_000_000_000, 950, Some(1000))),
            (t(0), task("b", "db", 0, 5000, None)),
            (t(10), task("b", "db", 2_000_000_000, 6000, None)),
            (t(10), task("c", "idle", 0, 10, Some(100))),
        ];
        let services = latest_by_service(&samples, 10);
        let top = top_consumers(&services, 2, 90.0);
        let names = |list: &[ServiceUsage]| -> Vec<String> {
            list.iter().map(|s| s.service.clone()).collect()
        };
        assert_eq!(names(&top.by_cpu), ["web", "db"]);
        assert_eq!(names(&top.by_memory), ["db", "web"]);
        assert_eq!(names(&top.near_memory_limit), ["web"]);
        assert_eq!(
            top.near_memory_limit[0].nearest_limit,
            Some(NearLimit {
                task: "a".to_owned(),
                percent: 95.0
            })
        );
    }

    fn samples() -> impl Strategy<Value = Vec<(Timestamp, TaskUsage)>> {
        prop::collection::vec(
            (0i64..7200, 0usize..4, 0u64..1 << 40, 0u64..1 << 30),
            0..200,
        )
        .prop_map(|raw| {
            raw.into_iter()
                .map(|(at, replica, cpu, memory)| {
                    (
                        t(at),
                        task(&format!("t{replica}"), "web", cpu, memory, Some(1 << 30)),
                    )
                })
                .collect()
        })
    }

    proptest! {
        /// Summing never loses a replica's bytes: every bucket's memory is the sum of the
        /// replicas' newest samples in it, and there is one point per bucket, in order.
        #[test]
        fn summing_keeps_every_replica_once(samples in samples(), step in prop::sample::select(vec![10i64, 60, 3600])) {
            let points = service_points(&samples, step);
            let mut expected: BTreeMap<i64, BTreeMap<&str, (Timestamp, u64)>> = BTreeMap::new();
            for (at, task) in &samples {
                let slot = expected
                    .entry(at.as_second().div_euclid(step))
                    .or_default()
                    .entry(task.task.as_str())
                    .or_insert((*at, task.memory_bytes));
                if *at >= slot.0 {
                    *slot = (*at, task.memory_bytes);
                }
            }
            prop_assert_eq!(points.len(), expected.len());
            for (point, (bucket, replicas)) in points.iter().zip(&expected) {
                prop_assert_eq!(point.at.as_second().div_euclid(step), *bucket);
                prop_assert_eq!(point.memory_bytes, replicas.values().map(|(_, m)| m).sum::<u64>());
                prop_assert!(point.cpu_cores.is_none_or(|c| c >= 0.0 && c.is_finite()));
            }
            prop_assert!(points.windows(2).all(|w| w[0].at < w[1].at));
        }

        /// Bucketing at a range's step never yields more points than the range has steps.
        #[test]
        fn a_range_has_at_most_one_point_per_step(samples in samples()) {
            for range in UsageRange::ALL {
                let step = range.step_seconds();
                let points = service_points(&samples, step);
                let span = 7200 / step + 2;
                prop_assert!(points.len() as i64 <= span);
            }
        }
    }
}
