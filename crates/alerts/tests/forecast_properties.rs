//! The disk-full forecast at the default rules, end to end through `evaluate`, as the server
//! runs it: an agent reports every 10 s or 30 s (with jitter), the server evaluates every
//! 3 s and thins the stored samples every 5 minutes (one a clock minute, `report::thin`) and
//! reads the last hour of them.
//!
//! - a flat disk whose usage wobbles by less than half a percent either way never fires;
//! - a steady fill, from 5 minutes to 2 days for an empty disk to fill, starting anywhere up
//!   to 50 % after any flat history, fires before the disk reaches the GC high threshold
//!   (85 %);
//! - once the disk stops growing and shrinks, the alert resolves within half the window.

mod support;

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use support::{housekeep, one_node, start};
use swarmkeeper_alerts::{evaluate, AlertRules, AlertState, Message, NodeDisk, RuleId, Status};
use swarmkeeper_report::DiskSample;

const HIGH_THRESHOLD: f64 = 85.0;
const EVALUATION: SignedDuration = SignedDuration::from_secs(3);

/// The server's side: what it stores of one node's reports, and its alert state.
struct Server {
    rules: AlertRules,
    state: AlertState,
    capacity: u64,
    interval: SignedDuration,
    samples: Vec<DiskSample>,
    last_thinned: Timestamp,
    firing: Vec<(Timestamp, f64)>,
    resolved: Vec<Timestamp>,
}

impl Server {
    fn new(capacity: u64, interval_seconds: i64) -> Server {
        Server {
            rules: AlertRules::default(),
            state: AlertState::default(),
            capacity,
            interval: SignedDuration::from_secs(interval_seconds),
            samples: Vec::new(),
            last_thinned: start(),
            firing: Vec::new(),
            resolved: Vec::new(),
        }
    }

    /// A report at `at` with the disk `used` percent full.
    fn report(&mut self, at: Timestamp, used: f64) {
        self.samples.push(DiskSample {
            at,
            used_bytes: (self.capacity as f64 * used / 100.0) as u64,
            capacity_bytes: self.capacity,
            reclaimable_bytes: 0,
        });
    }

    /// One evaluation at `now`; `used` is the disk's usage then, for the record.
    fn evaluate(&mut self, now: Timestamp, used: f64) {
        housekeep(&mut self.samples, &mut self.last_thinned, now);
        // The server reads only the window; older samples cannot matter.
        let window = SignedDuration::try_from(self.rules.disk_full_forecast.window).unwrap();
        self.samples
            .retain(|s| now.duration_since(s.at) <= window * 2);
        let last = self.samples.last().map(|s| s.used_bytes).unwrap_or(0);
        let observation = one_node(
            "w1",
            now,
            self.interval,
            NodeDisk {
                usage_percent: (last * 100 / self.capacity) as u8,
                high_threshold_percent: HIGH_THRESHOLD as u8,
                gc_fell_short: false,
                samples: self.samples.clone(),
            },
        );
        let messages: Vec<Message> = evaluate(&mut self.state, &self.rules, &observation, &[], now);
        for m in messages {
            assert_eq!(m.rule, RuleId::DiskFullForecast, "{m:?}");
            match m.status {
                Status::Firing => self.firing.push((now, used)),
                Status::Resolved => self.resolved.push(now),
            }
        }
    }

    fn pending(&self) -> bool {
        self.state.alerts().any(|a| !a.is_firing())
    }

    /// Runs from `from` to `until`: a report every interval (plus `jitter(n)` seconds), at
    /// each an evaluation, and one every 3 s in between while an alert is pending (or always,
    /// with `every_tick`). `usage(t)` is the disk's usage `t` after `from`.
    fn run(
        &mut self,
        from: Timestamp,
        until: Timestamp,
        jitter: &[i64],
        every_tick: bool,
        usage: impl Fn(SignedDuration) -> f64,
        stop: impl Fn(&Server) -> bool,
    ) -> Timestamp {
        let mut now = from;
        let mut n = 0usize;
        let mut next_report = from;
        while now < until && !stop(self) {
            if now >= next_report {
                self.report(now, usage(now.duration_since(from)));
                n += 1;
                let shift = jitter.get(n % jitter.len().max(1)).copied().unwrap_or(0);
                next_report = now + self.interval + SignedDuration::from_secs(shift);
                self.evaluate(now, usage(now.duration_since(from)));
            } else if every_tick || self.pending() {
                self.evaluate(now, usage(now.duration_since(from)));
            }
            now = (now + EVALUATION).min(next_report.max(now + SignedDuration::from_secs(1)));
        }
        now
    }
}

fn capacity() -> impl Strategy<Value = u64> {
    prop_oneof![Just(256u64 << 20), Just(20u64 << 30), Just(2u64 << 40)]
}

fn interval() -> impl Strategy<Value = i64> {
    prop_oneof![Just(30i64), Just(10i64)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn a_flat_disk_with_noise_never_fires(
        capacity in capacity(),
        interval in interval(),
        level in 1.0f64..84.0,
        // The worst noise is a slow rise: a sawtooth from -ramp to +ramp over `period`,
        // with random wobble on top, all within 0.49 % either way.
        ramp in 0.0f64..0.49,
        period_minutes in 1.0f64..120.0,
        noise in prop::collection::vec(-1.0f64..1.0, 1..200),
        jitter in prop::collection::vec(-2i64..3, 1..20),
    ) {
        let mut server = Server::new(capacity, interval);
        let end = start() + SignedDuration::from_mins(150);
        server.run(start(), end, &jitter, true, |t| {
            let phase = (t.as_secs_f64() / 60.0 / period_minutes).fract();
            let wobble = noise[(t.as_secs() / interval) as usize % noise.len()] * (0.49 - ramp);
            level - ramp + 2.0 * ramp * phase + wobble
        }, |_| false);
        prop_assert!(server.firing.is_empty(), "fired at {:?}", server.firing);
    }

    /// Tryout finding 8, as a family: a fresh 256 MiB worker (or one flat for up to an hour
    /// and a half) pulls up to three images within five minutes of the install (the
    /// finding's were two 15 MiB swarmkeeper images and a 1.9 MiB busybox), then stays flat.
    /// Steps are not a trend: the forecast never fires, during the pulls or in the two hours
    /// after.
    #[test]
    fn a_few_image_pulls_then_a_flat_disk_never_fire(
        interval in interval(),
        base in 0.2f64..30.0,
        history_minutes in 0i64..90,
        pulls in prop::collection::vec((0i64..300, 1.0f64..30.0), 1..=3),
        jitter in prop::collection::vec(-2i64..3, 1..20),
    ) {
        let capacity = 256u64 << 20;
        let mut server = Server::new(capacity, interval);
        let install = SignedDuration::from_mins(history_minutes);
        let mib = 100.0 / 256.0;
        let usage = |t: SignedDuration| {
            base + pulls
                .iter()
                .filter(|(at, _)| t >= install + SignedDuration::from_secs(*at))
                .map(|(_, size)| size * mib)
                .sum::<f64>()
        };
        let end = start() + install + SignedDuration::from_mins(120);
        server.run(start(), end, &jitter, true, usage, |_| false);
        prop_assert!(server.firing.is_empty(), "fired at {:?}", server.firing);
    }

    #[test]
    fn a_steady_fill_fires_before_the_high_threshold(
        capacity in capacity(),
        interval in interval(),
        // Minutes for an empty disk to fill, 5 minutes to 2 days, spread evenly in log.
        fill_minutes_log in (5f64).ln()..(2.0f64 * 24.0 * 60.0).ln(),
        from in 0.0f64..50.0,
        flat_minutes in 0i64..90,
        noise in prop::collection::vec(-0.05f64..0.05, 1..50),
        jitter in prop::collection::vec(-2i64..3, 1..20),
    ) {
        let per_second = 100.0 / (fill_minutes_log.exp() * 60.0);
        let mut server = Server::new(capacity, interval);
        let flat = SignedDuration::from_mins(flat_minutes);
        let usage = |t: SignedDuration| {
            let filling = (t - flat).as_secs_f64().max(0.0);
            let wobble = noise[(t.as_secs() / interval) as usize % noise.len()];
            (from + filling * per_second + wobble).clamp(0.0, 100.0)
        };
        let reaches_high = SignedDuration::from_secs_f64((HIGH_THRESHOLD - from) / per_second) + flat;
        // A fill that reaches the high threshold within 3 minutes leaves a trend of a few
        // 30 s reports and no time to hold it; disk-gc-shortfall is the alert for it (found
        // at random: 50 % to 85 % in 1m 45s).
        prop_assume!(reaches_high - flat >= SignedDuration::from_mins(3));
        server.run(start(), start() + reaches_high, &jitter, false, usage, |s| !s.firing.is_empty());
        prop_assert!(
            !server.firing.is_empty(),
            "no alert before {HIGH_THRESHOLD}% ({:?} after the fill began)",
            reaches_high - flat
        );
        let (at, used) = server.firing[0];
        prop_assert!(used < HIGH_THRESHOLD, "fired at {used}% ({at})");
    }

    #[test]
    fn a_disk_that_shrinks_after_a_fill_resolves_within_half_the_window(
        capacity in capacity(),
        interval in interval(),
        fill_minutes in 5.0f64..120.0,
        shrink_per_minute in 0.05f64..10.0,
        jitter in prop::collection::vec(-2i64..3, 1..20),
    ) {
        let per_second = 100.0 / (fill_minutes * 60.0);
        let mut server = Server::new(capacity, interval);
        let fill = |t: SignedDuration| (10.0 + t.as_secs_f64() * per_second).min(100.0);
        let fired_at = server.run(
            start(),
            start() + SignedDuration::from_hours(3),
            &jitter,
            false,
            fill,
            |s| !s.firing.is_empty(),
        );
        prop_assert!(!server.firing.is_empty());
        let peak = fill(fired_at.duration_since(start()));
        let shrink = |t: SignedDuration| (peak - t.as_secs_f64() / 60.0 * shrink_per_minute).max(0.0);
        let half_window = SignedDuration::from_mins(30);
        server.run(
            fired_at,
            fired_at + half_window + SignedDuration::from_secs(interval * 2),
            &jitter,
            true,
            shrink,
            |s| !s.resolved.is_empty(),
        );
        prop_assert_eq!(server.resolved.len(), 1, "not resolved within half the window");
        prop_assert_eq!(server.firing.len(), 1, "fired again while shrinking");
    }
}

/// Tryout finding 8, replayed: the lab's fresh 256 MiB worker, reports every 30 s (the
/// agent's default) and every 10 s, pulled a 15 MiB swarmkeeper image at the install, another
/// 15 MiB one two minutes later and a 1.9 MiB busybox at four and a half minutes, then stayed
/// flat at 13 %; "disk predicted full in about 2h 4m" fired eleven minutes after the install.
/// With and without an hour of flat history before it, nothing fires in the two hours after.
#[test]
fn the_tryouts_fresh_worker_is_not_forecast_full() {
    for interval in [30, 10] {
        for history_minutes in [0, 60] {
            let capacity = 256u64 << 20;
            let mut server = Server::new(capacity, interval);
            let install = SignedDuration::from_mins(history_minutes);
            let mib = 100.0 / 256.0;
            let usage = |t: SignedDuration| {
                let since = t - install;
                let mut used = 1.1 * mib;
                for (at, size) in [(0, 15.0), (120, 15.0), (270, 1.9)] {
                    if since >= SignedDuration::from_secs(at) {
                        used += size * mib;
                    }
                }
                used
            };
            let end = start() + install + SignedDuration::from_mins(120);
            server.run(start(), end, &[0, 1, -1], true, usage, |_| false);
            assert!(
                server.firing.is_empty(),
                "reports every {interval} s, {history_minutes} min of history: fired at {:?}",
                server.firing
            );
        }
    }
}

/// The seed incident's shape: a 256 MiB worker at 30 %, a 30 MB image pulled every 90 s (one
/// deploy after another). The fifth pull takes it from 77 % past the high threshold to 89 %:
/// the warning must come before it.
#[test]
fn image_pulls_every_90_seconds_are_warned_of_before_the_pull_that_crosses_the_threshold() {
    for interval in [10, 30] {
        let mut server = Server::new(256 << 20, interval);
        let pull = 30.0 * 1e6 / (256u64 << 20) as f64 * 100.0;
        let usage = |t: SignedDuration| 30.0 + pull * (t.as_secs() / 90) as f64;
        let crossing = SignedDuration::from_secs(90 * 5);
        assert!(
            usage(crossing) >= HIGH_THRESHOLD
                && usage(crossing - SignedDuration::from_secs(1)) < HIGH_THRESHOLD
        );
        server.run(start(), start() + crossing, &[0], false, usage, |s| {
            !s.firing.is_empty()
        });
        let Some(&(at, used)) = server.firing.first() else {
            panic!("reports every {interval} s: no warning before the fifth pull")
        };
        eprintln!(
            "reports every {interval} s: warned {} s in (the threshold is crossed at 450 s), at {used:.0} %",
            at.duration_since(start()).as_secs()
        );
    }
}

/// Tryout finding 20 (follow-up), replayed from the lab's record: a worker whose data root is
/// a 256 MiB tmpfs, the agent at its defaults, `swarmkeeper deploy` of a new 33 MB image every
/// 2 min 21 s, eight versions. The disk, as `df` read it every 10 s (seconds, used bytes),
/// rose by one image at each of the first six deploys, then stayed at 71 %: from then on the
/// agent's pull-triggered GC deletes the oldest image before each pull. On a fresh disk, and
/// after 45 minutes of a slow fill (1.2 MB a minute: every quarter of the hour's trend grows,
/// as on the tryout's worker, which had its install and a fill test in that hour). The
/// forecast fires during the deploys (a staircase of pulls is a fill), once, and must resolve
/// within 6 min 30 s of the last pull: 5 minutes of flat disk (the rule's `min_span`; one and
/// a half times the longest recent pause between rises, 2 to 3 minutes through samples a
/// minute apart, is less), the last rise seen up to a minute late through those samples (the
/// tryout's server was still firing 7 minutes after the disk went flat; before this rule,
/// with the slow fill before, it resolved 11 min 8 s after the last pull).
#[test]
fn the_labs_deploy_series_resolves_soon_after_the_disk_goes_flat() {
    const DF: [(i64, u64); 7] = [
        (0, 225280),
        (10, 33898496),
        (150, 65486848),
        (291, 97054720),
        (431, 128573440),
        (572, 160083968),
        (712, 191594496),
    ];
    let capacity = 256u64 << 20;
    for (interval, history_minutes) in [(30, 0), (30, 20), (10, 0), (10, 20)] {
        let history = SignedDuration::from_mins(history_minutes);
        let last_pull = history + SignedDuration::from_secs(712);
        let mut server = Server::new(capacity, interval);
        let usage = |t: SignedDuration| {
            let used = if t < history {
                225280 + (t.as_secs() as u64 * 29_000)
            } else {
                let since = (t - history).as_secs();
                let (_, used) = DF.iter().rev().find(|(at, _)| *at <= since).unwrap();
                used + history.as_secs() as u64 * 29_000
            };
            used as f64 * 100.0 / capacity as f64
        };
        let end = start() + last_pull + SignedDuration::from_mins(40);
        server.run(start(), end, &[0, 1, -1], true, usage, |_| false);
        let after = |at: Timestamp| at.duration_since(start()) - last_pull;
        eprintln!(
            "reports every {interval} s, {history_minutes} min of slow fill before: fired {:?}, \
             resolved {:?} after the last pull",
            server
                .firing
                .iter()
                .map(|(at, _)| after(*at))
                .collect::<Vec<_>>(),
            server
                .resolved
                .iter()
                .map(|at| after(*at))
                .collect::<Vec<_>>()
        );
        // It fired during the deploys (or the slow fill before them), and its last word is
        // "resolved", soon after the disk went flat.
        assert_eq!(server.firing.len(), 1, "fired again after a pause");
        let fired_last = server.firing.last().expect("no alert during the deploys").0;
        let resolved_last = *server.resolved.last().expect("never resolved");
        assert!(
            after(fired_last) < SignedDuration::ZERO,
            "fired after the last pull"
        );
        assert!(resolved_last > fired_last);
        assert!(
            after(resolved_last) <= SignedDuration::from_secs(6 * 60 + 30),
            "resolved {:?} after the last pull",
            after(resolved_last)
        );
    }
}
