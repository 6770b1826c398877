//! Figures as swarmkeeper reads and prints them, each defined once for every crate:
//!
//! - durations in Go's `time.ParseDuration` grammar ([`parse_duration`]), the one the docker
//!   CLI, Swarm and the kubelet use for their flags, printed the way Go prints them
//!   ([`format_duration`]);
//! - byte sizes in binary units for people ([`bytes`]);
//! - the short form of an object id ([`short_id`]), as `docker ps` and `docker service ps`
//!   show it;
//! - words from a fixed list that may grow ([`words!`]): the engine's states, the history's
//!   outcomes.
//!
//! Pure and without dependencies, so that any crate may use it.

use std::time::Duration;

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// Parses a duration as Go's `time.ParseDuration` does: a sequence of decimal numbers, each
/// with an optional fraction and a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), such as
/// `90s`, `2m`, `1h30m`, `1.5h` or `500ms`; a bare `0` is zero; surrounding blanks are
/// ignored. Negative durations are refused (none of swarmkeeper's settings means anything
/// negative).
///
/// Errors say what was wrong with the text, without naming a flag or a field: the caller
/// knows which setting it was.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    parse_go_duration(text.trim()).map_err(|e| e.describe(text, "like 90s, 2m or 1h30m"))
}

/// Why a text is not a duration in Go's grammar; [`DurationError::describe`] words it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DurationError {
    /// Not a sequence of numbers with units at all.
    Invalid,
    /// A number without a unit, such as `10`.
    MissingUnit,
    /// A unit Go does not know, such as `d`.
    UnknownUnit(String),
    /// Below zero.
    Negative,
    /// Beyond Go's `time.Duration` (about 292 years).
    TooLong,
}

impl DurationError {
    /// The message for `text`, quoting it as written; `examples` ends the message for text
    /// that is no duration at all (`"like 10s, 1m30s or 500ms"`), so that each caller can
    /// show the forms its users write.
    pub fn describe(&self, text: &str, examples: &str) -> String {
        match self {
            DurationError::Invalid => {
                format!("invalid duration {text:?}: expected a number and a unit, {examples}")
            }
            DurationError::MissingUnit => {
                format!("invalid duration {text:?}: missing unit (ns, us, ms, s, m or h)")
            }
            DurationError::UnknownUnit(unit) => format!(
                "invalid duration {text:?}: unknown unit {unit:?}, expected ns, us, ms, s, m or h"
            ),
            DurationError::Negative => {
                format!("invalid duration {text:?}: durations cannot be negative")
            }
            DurationError::TooLong => format!("invalid duration {text:?}: too long"),
        }
    }
}

/// Go's `time.ParseDuration` grammar exactly, blanks included (Go refuses `" 5s"`), for
/// callers that must read a value as Go reads it, such as compose files; [`parse_duration`]
/// is the lenient form for flags and forms.
pub fn parse_go_duration(text: &str) -> Result<Duration, DurationError> {
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if let Some(magnitude) = rest.strip_prefix('-') {
        return match parse_go_duration(magnitude) {
            Ok(Duration::ZERO) => Ok(Duration::ZERO),
            Ok(_) => Err(DurationError::Negative),
            Err(_) => Err(DurationError::Invalid),
        };
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(DurationError::Invalid);
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let (whole, after) = split_digits(rest);
        let (fraction, after) = match after.strip_prefix('.') {
            Some(after) => split_digits(after),
            None => ("", after),
        };
        if whole.is_empty() && fraction.is_empty() {
            return Err(DurationError::Invalid);
        }
        let unit_len = after
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => NANOS_PER_SECOND,
            "m" => 60 * NANOS_PER_SECOND,
            "h" => 3600 * NANOS_PER_SECOND,
            "" => return Err(DurationError::MissingUnit),
            other => return Err(DurationError::UnknownUnit(other.to_owned())),
        };
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| DurationError::Invalid)?
        };
        // Go keeps the fraction's leading digits that still matter at nanosecond precision.
        let mut fraction_nanos: u128 = 0;
        let mut divisor: u128 = 1;
        for digit in fraction.bytes().take(27) {
            fraction_nanos = fraction_nanos * 10 + u128::from(digit - b'0');
            divisor *= 10;
        }
        total = whole
            .checked_mul(scale)
            .and_then(|n| n.checked_add(fraction_nanos * scale / divisor))
            .and_then(|n| total.checked_add(n))
            .filter(|n| *n <= i64::MAX as u128)
            .ok_or(DurationError::TooLong)?;
        rest = after;
    }
    Ok(Duration::from_nanos(total as u64))
}

/// The leading ASCII digits of `text`, and the rest.
fn split_digits(text: &str) -> (&str, &str) {
    let len = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text.split_at(len)
}

/// Go's `time.Duration.String()`: `1m30s`, `500ms`, `1m0s`, `1h0m0s`, `0s`, so messages quote
/// durations the way the docker CLI prints them. [`parse_duration`] reads every output back to
/// the same duration.
pub fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    if nanos < NANOS_PER_SECOND {
        let (unit, scale) = match nanos {
            0..1_000 => ("ns", 1),
            1_000..1_000_000 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        return format!("{}{unit}", decimal(nanos, scale));
    }
    let hours = nanos / (3600 * NANOS_PER_SECOND);
    let minutes = nanos / (60 * NANOS_PER_SECOND) % 60;
    let seconds = decimal(nanos % (60 * NANOS_PER_SECOND), NANOS_PER_SECOND);
    if hours > 0 {
        format!("{hours}h{minutes}m{seconds}s")
    } else if minutes > 0 {
        format!("{minutes}m{seconds}s")
    } else {
        format!("{seconds}s")
    }
}

/// `value / scale` in decimal, without trailing zeros: `1500, 1000` is `1.5`.
fn decimal(value: u128, scale: u128) -> String {
    let whole = value / scale;
    let rest = value % scale;
    if rest == 0 {
        return whole.to_string();
    }
    let digits = scale.ilog10() as usize;
    let decimals = format!("{rest:0digits$}");
    format!("{whole}.{}", decimals.trim_end_matches('0'))
}

/// Bytes in binary units, the way `docker system df` rounds: `900 B`, `12.0 KiB`,
/// `1.5 GiB`, and no decimal from 100 up (`320 MiB`).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else if value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Bytes exactly, in the largest binary unit that divides them, in the grammar the docker
/// CLI and compose read (`RAMInBytes`): `32M`, `1G`, `1536K`, `1000`; `0` for none.
pub fn size(n: u64) -> String {
    for (unit, scale) in [
        ("T", 1u64 << 40),
        ("G", 1 << 30),
        ("M", 1 << 20),
        ("K", 1 << 10),
    ] {
        if n != 0 && n.is_multiple_of(scale) {
            return format!("{}{unit}", n / scale);
        }
    }
    n.to_string()
}

/// How many characters of an id people see, as the docker CLI shows them.
pub const SHORT_ID_LEN: usize = 12;

/// The first twelve characters of an id, after the `sha256:` of an image id: `0123456789ab`.
pub fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.get(..SHORT_ID_LEN).unwrap_or(hex)
}

/// Declares an enum of words (an engine's states, a stored outcome) that keeps any other word
/// as `Other(String)`, so that a newer engine or an older file never makes a value unreadable:
/// `parse` (total), `as_str`, `From<&str>`, `From<String>`, `Display`, and `Serialize` /
/// `Deserialize` as the word (the calling crate depends on `serde`).
///
/// ```
/// swarmkeeper_units::words! {
///     /// How a thing ended.
///     pub enum End { Done => "done", Failed => "failed", }
/// }
/// assert_eq!(End::parse("failed"), End::Failed);
/// assert_eq!(End::parse("exploded").as_str(), "exploded");
/// ```
#[macro_export]
macro_rules! words {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+ }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A word not in the list, as it was written.
            Other(String),
        }

        impl $name {
            /// The value a word stands for; any text is accepted.
            pub fn parse(text: &str) -> $name {
                match text {
                    $( $text => $name::$variant, )+
                    other => $name::Other(other.to_owned()),
                }
            }

            /// The word, as it is written.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $text, )+
                    $name::Other(other) => other,
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> $name {
                $name::parse(text)
            }
        }

        impl From<String> for $name {
            fn from(text: String) -> $name {
                $name::parse(&text)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<$name, D::Error> {
                let text = <String as serde::Deserialize>::deserialize(deserializer)?;
                Ok($name::parse(&text))
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_exact_in_the_largest_unit() {
        assert_eq!(size(33_554_432), "32M");
        assert_eq!(size(1 << 30), "1G");
        assert_eq!(size(1536 * 1024), "1536K");
        assert_eq!(size(1000), "1000");
        assert_eq!(size(0), "0");
    }

    #[test]
    fn go_grammar_refuses_blanks_that_flags_forgive() {
        assert_eq!(parse_duration(" 5s "), Ok(Duration::from_secs(5)));
        assert_eq!(parse_go_duration(" 5s"), Err(DurationError::Invalid));
        assert_eq!(
            parse_go_duration("3d"),
            Err(DurationError::UnknownUnit("d".to_owned()))
        );
        assert_eq!(parse_go_duration("-1s"), Err(DurationError::Negative));
        assert_eq!(
            DurationError::MissingUnit.describe("10", "like 10s"),
            "invalid duration \"10\": missing unit (ns, us, ms, s, m or h)"
        );
    }

    fn nanos(n: u64) -> Duration {
        Duration::from_nanos(n)
    }

    #[test]
    fn reads_what_go_reads() {
        let second = 1_000_000_000;
        for (text, want) in [
            ("0", 0),
            ("90s", 90 * second),
            ("2m", 120 * second),
            ("1h", 3600 * second),
            ("1h30m", 5400 * second),
            ("1m30s", 90 * second),
            ("500ms", 500_000_000),
            ("1.5h", 5400 * second),
            (".5s", 500_000_000),
            ("1h2m3s4ms5us6ns", 3_723_004_005_006),
            ("3µs", 3_000),
            ("+5s", 5 * second),
            ("-0", 0),
            ("-0s", 0),
            (" 10s ", 10 * second),
        ] {
            assert_eq!(parse_duration(text), Ok(nanos(want)), "{text}");
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
            "soon",
            "9999999999h",
            ".",
        ] {
            assert!(parse_duration(text).is_err(), "{text} should be refused");
        }
        assert!(parse_duration("10x")
            .unwrap_err()
            .contains("unknown unit \"x\""));
        assert!(parse_duration("10").unwrap_err().contains("missing unit"));
        assert!(parse_duration("-2m").unwrap_err().contains("negative"));
    }

    #[test]
    fn prints_like_go() {
        let second = 1_000_000_000;
        for (want, n) in [
            ("0s", 0),
            ("500ms", 500_000_000),
            ("1.5s", 1_500_000_000),
            ("30s", 30 * second),
            ("1m30s", 90 * second),
            ("2m0s", 120 * second),
            ("1h0m0s", 3600 * second),
            ("1h0m5s", 3605 * second),
            ("1h30m0s", 5400 * second),
            ("250µs", 250_000),
            ("7ns", 7),
        ] {
            assert_eq!(format_duration(nanos(n)), want);
            assert_eq!(parse_duration(want), Ok(nanos(n)), "{want} reads back");
        }
    }

    #[test]
    fn sizes_read_like_docker_system_df() {
        assert_eq!(bytes(900), "900 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(12 * 1024), "12.0 KiB");
        assert_eq!(bytes(30 * 1024 * 1024), "30.0 MiB");
        assert_eq!(bytes(320 * 1024 * 1024), "320 MiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024 / 2), "1.5 GiB");
    }

    #[test]
    fn ids_are_shortened_like_the_docker_cli() {
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(short_id("k3v0y2n6x3mhf4ghy1o4a0mdw"), "k3v0y2n6x3mh");
        assert_eq!(short_id("abc"), "abc");
    }
}
