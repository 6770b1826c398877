//! When a disk will be full, from the trend of its recent samples.

use jiff::{SignedDuration, Timestamp};
use swarmkeeper_report::DiskSample;

/// What the trend of a node's disk says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Forecast {
    /// Fewer than the required samples in the window, or they span less than the required
    /// time: no trend can be told. The alert neither fires nor resolves on it.
    TooFewSamples,
    /// The fitted line is flat or falling: the disk is not filling up.
    NotFilling,
    /// The fitted line reaches the capacity after `in_` from now, filling at `bytes_per_hour`;
    /// `used_percent` is where the line stands now.
    FullIn {
        in_: SignedDuration,
        bytes_per_hour: f64,
        used_percent: f64,
    },
}

/// Fits a least-squares line through the samples of the last `window` before `now` (used bytes
/// against time) and says when, at its slope, the disk reaches the capacity of the newest
/// sample, as Prometheus' `predict_linear` would, but starting from the newest sample when
/// that is above the line: a fill that began late in the window flattens the fitted line
/// and lowers where it stands now, while the disk is at least as full as it last read.
/// Samples after `now` are ignored. It needs `min_samples` samples spanning at least
/// `min_span`: a handful of samples a few seconds apart would turn one image pull into a
/// steep slope. (A quarter of the window used to be required: at the 1 h default that held
/// the alert back 15 minutes after a fill began, long enough for a small disk to pass the
/// GC threshold first.)
pub fn forecast_full(
    samples: &[DiskSample],
    now: Timestamp,
    window: SignedDuration,
    min_samples: usize,
    min_span: SignedDuration,
) -> Forecast {
    let recent: Vec<&DiskSample> = samples
        .iter()
        .filter(|s| s.at <= now && now.duration_since(s.at) <= window)
        .collect();
    let (Some(first), Some(last)) = (
        recent.iter().map(|s| s.at).min(),
        recent.iter().max_by_key(|s| s.at),
    ) else {
        return Forecast::TooFewSamples;
    };
    let span = last.at.duration_since(first);
    if recent.len() < min_samples.max(2) || span < min_span || span.is_zero() {
        return Forecast::TooFewSamples;
    }
    // Seconds before `now` (negative) against bytes; centred sums keep the precision that raw
    // epoch seconds squared would lose.
    let n = recent.len() as f64;
    let xs: Vec<f64> = recent
        .iter()
        .map(|s| s.at.duration_since(now).as_secs_f64())
        .collect();
    let mean_x = xs.iter().sum::<f64>() / n;
    let mean_y = recent.iter().map(|s| s.used_bytes as f64).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (x, s) in xs.iter().zip(&recent) {
        sxy += (x - mean_x) * (s.used_bytes as f64 - mean_y);
        sxx += (x - mean_x) * (x - mean_x);
    }
    let slope = sxy / sxx;
    if !slope.is_finite() || slope <= 0.0 {
        return Forecast::NotFilling;
    }
    let capacity = last.capacity_bytes as f64;
    let used_now = (mean_y - slope * mean_x).max(last.used_bytes as f64);
    let seconds = ((capacity - used_now) / slope).max(0.0);
    Forecast::FullIn {
        in_: SignedDuration::try_from_secs_f64(seconds).unwrap_or(SignedDuration::MAX),
        bytes_per_hour: slope * 3600.0,
        used_percent: if capacity > 0.0 {
            (used_now / capacity * 100.0).clamp(0.0, 100.0)
        } else {
            100.0
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn now() -> Timestamp {
        "2026-11-26T12:00:00Z".parse().unwrap()
    }

    /// One sample a minute for the last `minutes`, used bytes from `used(age_minutes)`.
    fn history(minutes: i64, used: impl Fn(i64) -> u64) -> Vec<DiskSample> {
        (0..minutes)
            .map(|age| DiskSample {
                at: now() - SignedDuration::from_mins(age),
                used_bytes: used(age),
                capacity_bytes: 1000 * MIB,
            })
            .collect()
    }

    fn forecast(samples: &[DiskSample]) -> Forecast {
        forecast_full(
            samples,
            now(),
            SignedDuration::from_hours(1),
            5,
            SignedDuration::from_mins(5),
        )
    }

    #[test]
    fn a_steady_fill_is_extrapolated_to_the_capacity() {
        // 500 MiB used now, growing 2 MiB a minute: 500 MiB left, 250 minutes.
        let samples = history(60, |age| (500 - 2 * age as u64) * MIB);
        let Forecast::FullIn {
            in_,
            bytes_per_hour,
            used_percent,
        } = forecast(&samples)
        else {
            panic!("{:?}", forecast(&samples))
        };
        assert!((in_.as_secs_f64() - 250.0 * 60.0).abs() < 1.0, "{in_:?}");
        assert!((bytes_per_hour - 120.0 * MIB as f64).abs() < 1.0);
        assert!((used_percent - 50.0).abs() < 0.01);
    }

    #[test]
    fn older_samples_than_the_window_do_not_count() {
        // Fast growth two hours ago, flat for the last hour.
        let mut samples = history(60, |_| 700 * MIB);
        samples.extend((61..180).map(|age| DiskSample {
            at: now() - SignedDuration::from_mins(age),
            used_bytes: (700 - (age as u64 - 60) * 5) * MIB,
            capacity_bytes: 1000 * MIB,
        }));
        assert_eq!(forecast(&samples), Forecast::NotFilling);
    }

    #[test]
    fn a_falling_or_flat_trend_is_not_filling() {
        assert_eq!(
            forecast(&history(60, |age| (400 + age as u64) * MIB)),
            Forecast::NotFilling
        );
        assert_eq!(forecast(&history(60, |_| 400 * MIB)), Forecast::NotFilling);
    }

    #[test]
    fn too_few_samples_or_too_short_a_span_tell_nothing() {
        assert_eq!(forecast(&[]), Forecast::TooFewSamples);
        assert_eq!(
            forecast(&history(4, |age| (500 - age as u64) * MIB)),
            Forecast::TooFewSamples
        );
        // Ten samples, but all within 4 and a half minutes.
        let samples: Vec<DiskSample> = history(10, |age| (500 - 50 * age as u64) * MIB)
            .into_iter()
            .map(|mut s| {
                s.at = now() - now().duration_since(s.at) / 2;
                s
            })
            .collect();
        assert_eq!(forecast(&samples), Forecast::TooFewSamples);
    }

    #[test]
    fn samples_from_the_future_are_ignored() {
        let mut samples = history(60, |_| 400 * MIB);
        samples.push(DiskSample {
            at: now() + SignedDuration::from_mins(5),
            used_bytes: 999 * MIB,
            capacity_bytes: 1000 * MIB,
        });
        assert_eq!(forecast(&samples), Forecast::NotFilling);
    }

    #[test]
    fn a_disk_past_full_on_the_line_is_full_now() {
        let samples = history(60, |age| (1100 - age as u64) * MIB);
        let Forecast::FullIn { in_, .. } = forecast(&samples) else {
            panic!()
        };
        assert_eq!(in_, SignedDuration::ZERO);
    }

    /// The lab case at the defaults: a 256 MiB disk flat at 30 % for an hour, then filling
    /// 10 MiB a minute. Seven minutes in (57 %, the GC threshold 85 % still 11 minutes away)
    /// the forecast says full within the 6 h default, although the hour's line barely rises.
    #[test]
    fn a_fill_that_began_late_in_the_window_is_forecast_before_the_gc_threshold() {
        let capacity = 256 * MIB;
        let samples: Vec<DiskSample> = (0..120)
            .map(|half_minutes| {
                let age = SignedDuration::from_secs(30 * half_minutes);
                let filling_for = (14 - half_minutes).max(0) as u64; // half-minutes
                DiskSample {
                    at: now() - age,
                    used_bytes: 77 * MIB + filling_for * 5 * MIB,
                    capacity_bytes: capacity,
                }
            })
            .collect();
        let used = samples[0].used_bytes as f64 / capacity as f64 * 100.0;
        assert!(used < 85.0 && used > 50.0, "{used}");
        let Forecast::FullIn {
            in_, used_percent, ..
        } = forecast(&samples)
        else {
            panic!("{:?}", forecast(&samples))
        };
        assert!(in_ <= SignedDuration::from_hours(6), "{in_:?}");
        assert!((used_percent - used).abs() < 0.01, "{used_percent}");
    }

    #[test]
    fn five_minutes_of_samples_are_enough_for_a_trend() {
        let samples = history(6, |age| (500 - 2 * age as u64) * MIB);
        assert!(matches!(forecast(&samples), Forecast::FullIn { .. }));
    }
}
