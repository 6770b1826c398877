//! The GC policy and its validation. The defaults and the rules match the kubelet's
//! `imageGCHighThresholdPercent`, `imageGCLowThresholdPercent`, `imageMinimumGCAge` and
//! `imageMaximumGCAge`; the rest (pins, rollback reserve, container GC) is swarmkeeper's own.

use std::time::Duration;

use globset::{Glob, GlobSet, GlobSetBuilder};

#[derive(Debug, Clone)]
pub struct Policy {
    pub high_threshold_percent: u8,
    pub low_threshold_percent: u8,
    pub min_age: Duration,
    /// `Duration::ZERO` turns max-age collection off.
    pub max_age: Duration,
    pins: GlobSet,
    pin_patterns: Vec<String>,
    pub rollback_reserve: usize,
    pub container_min_age: Duration,
    pub prune_standalone_containers: bool,
}

/// A policy value out of range: names the parameter as the user spelt it and the value given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {parameter} {value:?}: {reason}")]
pub struct PolicyError {
    pub parameter: &'static str,
    pub value: String,
    pub reason: String,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            high_threshold_percent: 85,
            low_threshold_percent: 80,
            min_age: Duration::from_secs(120),
            max_age: Duration::ZERO,
            pins: GlobSet::empty(),
            pin_patterns: Vec::new(),
            rollback_reserve: 2,
            container_min_age: Duration::from_secs(60),
            prune_standalone_containers: false,
        }
    }
}

impl Policy {
    /// Builds and validates a policy. Thresholds are taken as given by the user (any integer), so
    /// that an out-of-range value is reported rather than silently clamped.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        high_threshold_percent: i64,
        low_threshold_percent: i64,
        min_age: Duration,
        max_age: Duration,
        pin_patterns: &[String],
        rollback_reserve: usize,
        container_min_age: Duration,
        prune_standalone_containers: bool,
    ) -> Result<Policy, PolicyError> {
        let high = percent("--high-threshold", high_threshold_percent)?;
        let low = percent("--low-threshold", low_threshold_percent)?;
        if low > high {
            return Err(PolicyError {
                parameter: "--low-threshold",
                value: low.to_string(),
                reason: format!("must not exceed --high-threshold ({high})"),
            });
        }
        if !max_age.is_zero() && max_age <= min_age {
            return Err(PolicyError {
                parameter: "--max-age",
                value: humantime::format_duration(max_age).to_string(),
                reason: format!(
                    "must be greater than --min-age ({}) when set",
                    humantime::format_duration(min_age)
                ),
            });
        }
        let mut builder = GlobSetBuilder::new();
        for pattern in pin_patterns {
            let glob = Glob::new(pattern).map_err(|e| PolicyError {
                parameter: "--pin",
                value: pattern.clone(),
                reason: e.kind().to_string(),
            })?;
            builder.add(glob);
        }
        let pins = builder.build().map_err(|e| PolicyError {
            parameter: "--pin",
            value: pin_patterns.join(","),
            reason: e.to_string(),
        })?;
        Ok(Policy {
            high_threshold_percent: high,
            low_threshold_percent: low,
            min_age,
            max_age,
            pins,
            pin_patterns: pin_patterns.to_vec(),
            rollback_reserve,
            container_min_age,
            prune_standalone_containers,
        })
    }

    /// True when one of the image's repo tags matches a `--pin` pattern.
    pub fn pins_any(&self, repo_tags: &[String]) -> bool {
        !self.pins.is_empty() && repo_tags.iter().any(|t| self.pins.is_match(t))
    }

    pub fn pin_patterns(&self) -> &[String] {
        &self.pin_patterns
    }
}

fn percent(parameter: &'static str, value: i64) -> Result<u8, PolicyError> {
    u8::try_from(value)
        .ok()
        .filter(|v| *v <= 100)
        .ok_or_else(|| PolicyError {
            parameter,
            value: value.to_string(),
            reason: "must be a percentage between 0 and 100".into(),
        })
}

/// Parses `90s`, `2m`, `1h`, `1h30m`, or `0`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("{e} (expected a duration such as 90s, 2m or 1h)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(high: i64, low: i64, min: u64, max: u64) -> Result<Policy, PolicyError> {
        Policy::new(
            high,
            low,
            Duration::from_secs(min),
            Duration::from_secs(max),
            &[],
            2,
            Duration::from_secs(60),
            false,
        )
    }

    #[test]
    fn validates_like_the_kubelet() {
        assert!(build(85, 80, 120, 0).is_ok());
        assert!(build(100, 0, 0, 0).is_ok());
        assert!(build(80, 80, 0, 0).is_ok());
        let e = build(101, 80, 120, 0).unwrap_err();
        assert_eq!((e.parameter, e.value.as_str()), ("--high-threshold", "101"));
        let e = build(85, -1, 120, 0).unwrap_err();
        assert_eq!(e.parameter, "--low-threshold");
        let e = build(70, 80, 120, 0).unwrap_err();
        assert_eq!(e.parameter, "--low-threshold");
        assert!(e
            .to_string()
            .contains("must not exceed --high-threshold (70)"));
        let e = build(85, 80, 120, 120).unwrap_err();
        assert_eq!((e.parameter, e.value.as_str()), ("--max-age", "2m"));
        assert!(build(85, 80, 120, 121).is_ok());
    }

    #[test]
    fn pins_match_repo_tags_by_glob() {
        let p = Policy::new(
            85,
            80,
            Duration::ZERO,
            Duration::ZERO,
            &["registry.local/base/*".into(), "*:stable".into()],
            2,
            Duration::ZERO,
            false,
        )
        .unwrap();
        assert!(p.pins_any(&["registry.local/base/alpine:3".into()]));
        assert!(p.pins_any(&["app:stable".into()]));
        assert!(!p.pins_any(&["app:1".into()]));
        assert!(!Policy::default().pins_any(&["anything:1".into()]));
    }

    #[test]
    fn a_bad_pin_pattern_is_named() {
        let e = Policy::new(
            85,
            80,
            Duration::ZERO,
            Duration::ZERO,
            &["[oops".into()],
            2,
            Duration::ZERO,
            false,
        )
        .unwrap_err();
        assert_eq!((e.parameter, e.value.as_str()), ("--pin", "[oops"));
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("soon")
            .unwrap_err()
            .contains("expected a duration"));
        assert!(parse_duration("-2m").is_err());
    }
}
