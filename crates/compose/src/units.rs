//! The value syntaxes compose files borrow from Go and the docker CLI: durations as Go's
//! `time.ParseDuration` reads them, byte sizes as `units.RAMInBytes`, CPUs as `opts.ParseCPUs`.

use std::fmt;

use serde::{Serialize, Serializer};
use swarmkeeper_units as units;

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// A non-negative span of time, to the nanosecond. The Engine API carries durations as
/// integer nanoseconds, so that is how it serialises.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub u64);

impl Duration {
    pub const ZERO: Duration = Duration(0);

    pub const fn from_secs(seconds: u64) -> Duration {
        Duration(seconds * NANOS_PER_SECOND)
    }

    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    pub fn saturating_add(self, other: Duration) -> Duration {
        Duration(self.0.saturating_add(other.0))
    }

    pub fn saturating_mul(self, times: u64) -> Duration {
        Duration(self.0.saturating_mul(times))
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

/// Go's `time.Duration.String()` (`1m30s`, `500ms`, `1h0m0s`, `0s`), through
/// [`units::format_duration`], so messages quote durations the way the docker CLI prints them.
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&units::format_duration(std::time::Duration::from_nanos(
            self.0,
        )))
    }
}

/// Parses a duration exactly as Go's `time.ParseDuration` does (the grammar is
/// [`units::parse_go_duration`]'s, blanks refused as Go refuses them): a sequence of decimal
/// numbers, each with an optional fraction and a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`,
/// `h`), such as `10s`, `1m30s`, `1.5h` or `500ms`; a bare `0` is zero. Negative durations
/// mean nothing in a compose file and are refused.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    units::parse_go_duration(text)
        .map(|d| Duration(d.as_nanos() as u64))
        .map_err(|e| e.describe(text, "like 10s, 1m30s or 500ms"))
}

/// Parses a size as the docker CLI's `units.RAMInBytes`: a number with an optional binary
/// unit, `k`, `m`, `g`, `t` or `p` (1024-based, any case, optionally followed by `b` or `ib`),
/// such as `512m`, `1.5G` or `64MiB`.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let invalid = || {
        format!("invalid size {text:?}: expected bytes or a number with a unit, like 512m or 2g")
    };
    let trimmed = text.trim();
    let number_len = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(number_len);
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let unit = unit.trim_start().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let power = match unit {
        "" => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        _ => return Err(invalid()),
    };
    let bytes = value * 1024f64.powi(power);
    if !bytes.is_finite() || bytes > i64::MAX as f64 {
        return Err(format!("invalid size {text:?}: too large"));
    }
    Ok(bytes as u64)
}

/// Parses a CPU count as the docker CLI's `opts.ParseCPUs`: a decimal number of CPUs, such as
/// `0.5` or `2`, returned in billionths of a CPU (the Engine API's `NanoCPUs`).
pub fn parse_nano_cpus(text: &str) -> Result<u64, String> {
    let invalid =
        || format!("invalid CPU count {text:?}: expected a decimal number of CPUs, like 0.5 or 2");
    let (whole, frac) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    if whole.is_empty() && frac.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(invalid());
    }
    let significant = frac.trim_end_matches('0');
    if significant.len() > 9 {
        return Err(format!(
            "invalid CPU count {text:?}: value is too precise (at most 9 decimals)"
        ));
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| invalid())?
    };
    let frac: u64 = format!("{significant:0<9}")
        .parse()
        .map_err(|_| invalid())?;
    whole
        .checked_mul(NANOS_PER_SECOND)
        .and_then(|n| n.checked_add(frac))
        .ok_or_else(|| format!("invalid CPU count {text:?}: too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_like_go() {
        let cases = [
            ("0", 0),
            ("10s", 10 * NANOS_PER_SECOND),
            ("1m30s", 90 * NANOS_PER_SECOND),
            ("500ms", 500_000_000),
            ("1.5h", 5400 * NANOS_PER_SECOND),
            (".5s", 500_000_000),
            ("1h2m3s4ms5us6ns", 3_723_004_005_006),
            ("3µs", 3_000),
            ("+5s", 5 * NANOS_PER_SECOND),
            ("-0", 0),
            ("-0s", 0),
        ];
        for (text, nanos) in cases {
            assert_eq!(parse_duration(text), Ok(Duration(nanos)), "{text}");
        }
    }

    #[test]
    fn refuses_what_go_refuses() {
        for text in [
            "",
            "10",
            "10x",
            "s",
            "1.s.",
            "5 s",
            "-5s",
            "1d",
            "9999999999h",
            ".",
        ] {
            assert!(parse_duration(text).is_err(), "{text} should be refused");
        }
        assert!(parse_duration("10x")
            .unwrap_err()
            .contains("unknown unit \"x\""));
        assert!(parse_duration("10").unwrap_err().contains("missing unit"));
    }

    #[test]
    fn prints_durations_like_go() {
        let cases = [
            (0, "0s"),
            (90 * NANOS_PER_SECOND, "1m30s"),
            (500_000_000, "500ms"),
            (3600 * NANOS_PER_SECOND, "1h0m0s"),
            (1_500_000_000, "1.5s"),
            (1_500, "1.5µs"),
        ];
        for (nanos, text) in cases {
            assert_eq!(Duration(nanos).to_string(), text);
        }
    }

    #[test]
    fn parses_sizes_like_go_units() {
        assert_eq!(parse_bytes("512"), Ok(512));
        assert_eq!(parse_bytes("512m"), Ok(512 << 20));
        assert_eq!(parse_bytes("1.5G"), Ok(3 << 29));
        assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(parse_bytes("2 kb"), Ok(2048));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("5x").is_err());
    }

    #[test]
    fn parses_cpus_like_the_docker_cli() {
        assert_eq!(parse_nano_cpus("0.5"), Ok(500_000_000));
        assert_eq!(parse_nano_cpus("2"), Ok(2_000_000_000));
        assert_eq!(parse_nano_cpus("0.000000001"), Ok(1));
        assert!(parse_nano_cpus("0.0000000001")
            .unwrap_err()
            .contains("too precise"));
        assert!(parse_nano_cpus("half").is_err());
        assert!(parse_nano_cpus(".").is_err());
    }
}
