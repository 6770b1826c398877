//! The GC policy and its validation. The defaults and the rules match the kubelet's
//! `imageGCHighThresholdPercent`, `imageGCLowThresholdPercent`, `imageMinimumGCAge` and
//! `imageMaximumGCAge`; the rest (pins, rollback reserve, pull headroom, container and build
//! cache GC) is swarmkeeper's own.
//!
//! A [`Policy`] is built from [`PolicySettings`], the values as a user gave them, and is valid
//! once built. Errors name the setting in words ([`Setting::name`]); a front end that calls the
//! settings something else (the CLI's flags) renders them with [`PolicyError::describe`].

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use globset::{Glob, GlobSet, GlobSetBuilder};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
pub use swarmkeeper_units::{format_duration, parse_duration};

/// One setting of the policy, as errors name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setting {
    HighThreshold,
    LowThreshold,
    MinAge,
    MaxAge,
    Pin,
    RollbackReserve,
    ContainerMinAge,
    PullHeadroom,
    BuildCacheMinAge,
}

impl Setting {
    /// The setting in words, e.g. `high threshold`.
    pub fn name(self) -> &'static str {
        match self {
            Setting::HighThreshold => "high threshold",
            Setting::LowThreshold => "low threshold",
            Setting::MinAge => "min-age",
            Setting::MaxAge => "max-age",
            Setting::Pin => "pin pattern",
            Setting::RollbackReserve => "rollback reserve",
            Setting::ContainerMinAge => "container min-age",
            Setting::PullHeadroom => "pull headroom",
            Setting::BuildCacheMinAge => "build cache min-age",
        }
    }
}

/// Room kept free for the next pull, besides the percentage thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullHeadroom {
    /// About twice the largest image this node ran recently for a Swarm service
    /// ([`crate::pull_headroom`]): a pull needs room for the download and the unpacked
    /// layers at once.
    #[default]
    Auto,
    /// No headroom: the thresholds alone decide (the kubelet's behaviour).
    Off,
    /// A fixed number of bytes.
    Bytes(u64),
}

impl FromStr for PullHeadroom {
    type Err = String;

    /// `auto`; `0` (off); or a size as docker's memory flags take it (`64MiB`, `64m`, `1.5g`:
    /// binary units, any case, see [`swarmkeeper_compose::parse_bytes`]).
    fn from_str(text: &str) -> Result<PullHeadroom, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("auto") {
            return Ok(PullHeadroom::Auto);
        }
        let bytes = swarmkeeper_compose::parse_bytes(text).map_err(|_| {
            format!("expected auto, 0 (off) or a size such as 64MiB, 512m or 2g, not {text:?}")
        })?;
        Ok(if bytes == 0 {
            PullHeadroom::Off
        } else {
            PullHeadroom::Bytes(bytes)
        })
    }
}

impl fmt::Display for PullHeadroom {
    /// The form [`PullHeadroom::from_str`] reads back: `auto`, `0`, or bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PullHeadroom::Auto => f.write_str("auto"),
            PullHeadroom::Off => f.write_str("0"),
            PullHeadroom::Bytes(n) => write!(f, "{n}"),
        }
    }
}

impl Serialize for PullHeadroom {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PullHeadroom {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The policy as a user gives it, before validation. Serialises with durations as text
/// (`"2m"`), so that an agent can write the policy it runs with where `gc plan` finds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicySettings {
    /// Space GC starts when usage reaches this (0-100; the kubelet's 85).
    pub high_threshold_percent: i64,
    /// ... and frees down to this (0-100, at most the high threshold; the kubelet's 80).
    pub low_threshold_percent: i64,
    /// Images seen for less are never collected.
    #[serde(with = "duration_text")]
    pub min_age: Duration,
    /// Images unused for longer are collected whatever the usage; zero turns it off.
    #[serde(with = "duration_text")]
    pub max_age: Duration,
    /// Globs: an image with a matching repo tag (`repo:tag`), or a repo digest
    /// (`repo@sha256:…`) whose repository matches, is never collected.
    pub pins: Vec<String>,
    /// Each Swarm service's newest N images are the last resort.
    pub rollback_reserve: usize,
    /// Finished Swarm task containers are removed after this long (at once under space
    /// pressure); the newest of each slot stays.
    #[serde(with = "duration_text")]
    pub container_min_age: Duration,
    pub prune_standalone_containers: bool,
    pub pull_headroom: PullHeadroom,
    /// Under space pressure, build cache unused for this long is pruned before any image.
    #[serde(with = "duration_text")]
    pub build_cache_min_age: Duration,
}

impl Default for PolicySettings {
    fn default() -> Self {
        PolicySettings {
            high_threshold_percent: 85,
            low_threshold_percent: 80,
            min_age: Duration::from_secs(120),
            max_age: Duration::ZERO,
            pins: Vec::new(),
            rollback_reserve: 2,
            container_min_age: Duration::from_secs(60),
            prune_standalone_containers: false,
            pull_headroom: PullHeadroom::Auto,
            build_cache_min_age: Duration::from_secs(3600),
        }
    }
}

/// A validated policy. Build it with [`Policy::new`]; [`Policy::default`] is the kubelet's
/// defaults plus swarmkeeper's.
#[derive(Debug, Clone)]
pub struct Policy {
    settings: PolicySettings,
    high: u8,
    low: u8,
    pins: GlobSet,
    /// Each pin's literal start (the text before its first glob character): a reference
    /// starting with none of them cannot match, and is ruled out without the glob set.
    pin_prefixes: Vec<Box<str>>,
}

/// What is wrong with a setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    NotAPercentage,
    /// The low threshold is above the high one (given).
    AboveHighThreshold {
        high: u8,
    },
    /// Max-age, when set, must be greater than min-age (given).
    NotAboveMinAge {
        min_age: Duration,
    },
    /// Not a glob; the text says why.
    BadPattern(String),
}

/// A setting out of range: which, the value given, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe(Setting::name))]
pub struct PolicyError {
    pub setting: Setting,
    pub value: String,
    pub problem: Problem,
}

impl PolicyError {
    /// The message with each setting named by `name` (e.g. the CLI's flag names):
    /// `invalid low threshold "90": must not exceed the high threshold (85)`.
    pub fn describe<'a>(&self, name: impl Fn(Setting) -> &'a str) -> String {
        let reason = match &self.problem {
            Problem::NotAPercentage => "must be a percentage between 0 and 100".to_string(),
            Problem::AboveHighThreshold { high } => {
                format!("must not exceed {} ({high})", name(Setting::HighThreshold))
            }
            Problem::NotAboveMinAge { min_age } => format!(
                "must be greater than {} ({}) when set",
                name(Setting::MinAge),
                format_duration(*min_age)
            ),
            Problem::BadPattern(why) => why.clone(),
        };
        format!("invalid {} {:?}: {reason}", name(self.setting), self.value)
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy::new(PolicySettings::default()).expect("the defaults are valid")
    }
}

impl Policy {
    /// Validates the settings: thresholds in 0-100 with low ≤ high, max-age (when set) above
    /// min-age, pins that are globs.
    pub fn new(settings: PolicySettings) -> Result<Policy, PolicyError> {
        let high = percent(Setting::HighThreshold, settings.high_threshold_percent)?;
        let low = percent(Setting::LowThreshold, settings.low_threshold_percent)?;
        if low > high {
            return Err(PolicyError {
                setting: Setting::LowThreshold,
                value: low.to_string(),
                problem: Problem::AboveHighThreshold { high },
            });
        }
        if !settings.max_age.is_zero() && settings.max_age <= settings.min_age {
            return Err(PolicyError {
                setting: Setting::MaxAge,
                value: format_duration(settings.max_age),
                problem: Problem::NotAboveMinAge {
                    min_age: settings.min_age,
                },
            });
        }
        let mut builder = GlobSetBuilder::new();
        for pattern in &settings.pins {
            let glob = Glob::new(pattern).map_err(|e| PolicyError {
                setting: Setting::Pin,
                value: pattern.clone(),
                problem: Problem::BadPattern(e.kind().to_string()),
            })?;
            builder.add(glob);
        }
        let pins = builder.build().map_err(|e| PolicyError {
            setting: Setting::Pin,
            value: settings.pins.join(","),
            problem: Problem::BadPattern(e.to_string()),
        })?;
        let pin_prefixes = settings
            .pins
            .iter()
            .map(|pattern| literal_prefix(pattern).into())
            .collect();
        Ok(Policy {
            settings,
            high,
            low,
            pins,
            pin_prefixes,
        })
    }

    /// The settings the policy was built from.
    pub fn settings(&self) -> &PolicySettings {
        &self.settings
    }

    pub fn high_threshold_percent(&self) -> u8 {
        self.high
    }

    pub fn low_threshold_percent(&self) -> u8 {
        self.low
    }

    pub fn min_age(&self) -> Duration {
        self.settings.min_age
    }

    /// `Duration::ZERO`: max-age collection is off.
    pub fn max_age(&self) -> Duration {
        self.settings.max_age
    }

    pub fn rollback_reserve(&self) -> usize {
        self.settings.rollback_reserve
    }

    pub fn container_min_age(&self) -> Duration {
        self.settings.container_min_age
    }

    pub fn prune_standalone_containers(&self) -> bool {
        self.settings.prune_standalone_containers
    }

    pub fn pull_headroom(&self) -> PullHeadroom {
        self.settings.pull_headroom
    }

    pub fn build_cache_min_age(&self) -> Duration {
        self.settings.build_cache_min_age
    }

    /// True when a pin pattern matches one of the image's repo tags or the repository of one
    /// of its repo digests: Swarm pulls by digest, so an image on a worker often has no tag,
    /// only `repo@sha256:…`.
    pub fn pins_any(&self, repo_tags: &[String], repo_digests: &[String]) -> bool {
        self.pin_matcher().pinned(repo_tags, repo_digests)
    }

    /// [`Policy::pins_any`] for many images: each repository is matched once.
    pub fn pin_matcher(&self) -> PinMatcher<'_> {
        PinMatcher {
            pins: &self.pins,
            prefixes: &self.pin_prefixes,
            repositories: FxHashMap::default(),
        }
    }
}

/// The text a glob's matches all start with: everything before its first character that
/// globset gives a meaning (`*?[]{}`, `,` in alternations, `\` escapes). Matching by globset
/// is case-sensitive and the same on the whole text, so a reference that starts otherwise
/// never matches.
fn literal_prefix(pattern: &str) -> &str {
    let end = pattern
        .find(['*', '?', '[', ']', '{', '}', ',', '\\'])
        .unwrap_or(pattern.len());
    &pattern[..end]
}

/// Matches images against the pin patterns, remembering each repository's answer: the images
/// of a node come from far fewer repositories.
pub struct PinMatcher<'p> {
    pins: &'p GlobSet,
    prefixes: &'p [Box<str>],
    repositories: FxHashMap<String, bool>,
}

impl PinMatcher<'_> {
    pub fn pinned(&mut self, repo_tags: &[String], repo_digests: &[String]) -> bool {
        if self.pins.is_empty() {
            return false;
        }
        repo_tags
            .iter()
            .any(|t| self.may_match(t) && self.pins.is_match(t))
            || repo_digests.iter().any(|d| {
                let repo = digest_repository(d);
                if !self.may_match(repo) {
                    return false;
                }
                match self.repositories.get(repo) {
                    Some(&pinned) => pinned,
                    None => {
                        let pinned = self.pins.is_match(repo);
                        self.repositories.insert(repo.to_string(), pinned);
                        pinned
                    }
                }
            })
    }

    /// Whether the text starts with a pin's literal prefix: a glob set's match builds a
    /// candidate path (an allocation) and runs its strategies, a few hundred nanoseconds per
    /// tag, which 100,000 images multiply into tens of milliseconds.
    fn may_match(&self, text: &str) -> bool {
        self.prefixes.iter().any(|p| text.starts_with(&**p))
    }
}

/// The repository of a repo digest: what comes before `@sha256:` and its 64 hex digits, read
/// without a search as the engine writes them; [`repository`] for any other form.
fn digest_repository(reference: &str) -> &str {
    const DIGEST: usize = "@sha256:".len() + 64;
    match reference.len().checked_sub(DIGEST) {
        Some(at) if reference.as_bytes()[at..].starts_with(b"@sha256:") => &reference[..at],
        _ => repository(reference),
    }
}

/// The repository of a reference: `registry:5000/app` of `registry:5000/app:1`, of
/// `registry:5000/app@sha256:…` and of `registry:5000/app:1@sha256:…`.
pub fn repository(reference: &str) -> &str {
    let name = reference
        .split_once('@')
        .map_or(reference, |(name, _)| name);
    match name.rsplit_once(':') {
        // A colon before the last slash belongs to a registry's port.
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => name,
    }
}

fn percent(setting: Setting, value: i64) -> Result<u8, PolicyError> {
    u8::try_from(value)
        .ok()
        .filter(|v| *v <= 100)
        .ok_or_else(|| PolicyError {
            setting,
            value: value.to_string(),
            problem: Problem::NotAPercentage,
        })
}

/// Durations as `parse_duration` reads them, so a policy file reads like the flags.
pub(crate) mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&swarmkeeper_units::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        swarmkeeper_units::parse_duration(&String::deserialize(d)?)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(high: i64, low: i64, min: u64, max: u64) -> Result<Policy, PolicyError> {
        Policy::new(PolicySettings {
            high_threshold_percent: high,
            low_threshold_percent: low,
            min_age: Duration::from_secs(min),
            max_age: Duration::from_secs(max),
            ..PolicySettings::default()
        })
    }

    fn pinned(patterns: &[&str]) -> Policy {
        Policy::new(PolicySettings {
            pins: patterns.iter().map(|p| p.to_string()).collect(),
            ..PolicySettings::default()
        })
        .unwrap()
    }

    #[test]
    fn validates_like_the_kubelet() {
        assert!(build(85, 80, 120, 0).is_ok());
        assert!(build(100, 0, 0, 0).is_ok());
        assert!(build(80, 80, 0, 0).is_ok());
        let e = build(101, 80, 120, 0).unwrap_err();
        assert_eq!(
            (e.setting, e.value.as_str()),
            (Setting::HighThreshold, "101")
        );
        let e = build(85, -1, 120, 0).unwrap_err();
        assert_eq!(e.setting, Setting::LowThreshold);
        let e = build(70, 80, 120, 0).unwrap_err();
        assert_eq!(e.setting, Setting::LowThreshold);
        let e = build(85, 80, 120, 120).unwrap_err();
        assert_eq!((e.setting, e.value.as_str()), (Setting::MaxAge, "2m0s"));
        assert!(build(85, 80, 120, 121).is_ok());
    }

    #[test]
    fn errors_name_the_setting_in_words_or_as_the_caller_calls_it() {
        let e = build(70, 80, 120, 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid low threshold \"80\": must not exceed high threshold (70)"
        );
        let flag = |s: Setting| match s {
            Setting::HighThreshold => "--high-threshold",
            Setting::LowThreshold => "--low-threshold",
            _ => "--other",
        };
        assert_eq!(
            e.describe(flag),
            "invalid --low-threshold \"80\": must not exceed --high-threshold (70)"
        );
        let e = build(85, 80, 120, 60).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid max-age \"1m0s\": must be greater than min-age (2m0s) when set"
        );
    }

    #[test]
    fn pins_match_tags_and_the_repositories_of_digests_by_glob() {
        let p = pinned(&["registry.local/base/*", "*:stable"]);
        let none: &[String] = &[];
        assert!(p.pins_any(&["registry.local/base/alpine:3".into()], none));
        assert!(p.pins_any(&["app:stable".into()], none));
        assert!(!p.pins_any(&["app:1".into()], none));
        // Swarm pulls by digest: often no tag at all.
        assert!(p.pins_any(none, &["registry.local/base/pg@sha256:11".into()]));
        assert!(!p.pins_any(none, &["registry.local/app@sha256:11".into()]));
        let repo = pinned(&["registry.local:5000/db"]);
        assert!(repo.pins_any(none, &["registry.local:5000/db@sha256:11".into()]));
        assert!(!repo.pins_any(none, &["registry.local:5000/dbx@sha256:11".into()]));
        assert!(!Policy::default().pins_any(&["anything:1".into()], none));
        // One answer per repository, however many images come from it.
        let mut matcher = p.pin_matcher();
        for n in 0..3 {
            let digest = format!("registry.local/base/pg@sha256:{n}");
            assert!(matcher.pinned(none, &[digest]));
        }
        assert_eq!(matcher.repositories.len(), 1);
    }

    #[test]
    fn digest_repositories_are_read_without_a_search() {
        let d = format!("registry:5000/app@sha256:{}", "a".repeat(64));
        assert_eq!(digest_repository(&d), "registry:5000/app");
        assert_eq!(digest_repository("app@sha256:11"), "app");
        assert_eq!(digest_repository("app:1"), "app");
    }

    #[test]
    fn repositories_keep_registry_ports() {
        assert_eq!(repository("registry:5000/app:1"), "registry:5000/app");
        assert_eq!(repository("registry:5000/app"), "registry:5000/app");
        assert_eq!(
            repository("registry:5000/app@sha256:ab"),
            "registry:5000/app"
        );
        assert_eq!(repository("app:1@sha256:ab"), "app");
        assert_eq!(repository("app"), "app");
    }

    #[test]
    fn a_bad_pin_pattern_is_named() {
        let e = Policy::new(PolicySettings {
            pins: vec!["[oops".into()],
            ..PolicySettings::default()
        })
        .unwrap_err();
        assert_eq!((e.setting, e.value.as_str()), (Setting::Pin, "[oops"));
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
            .contains("90s, 2m or 1h30m"));
        assert!(parse_duration("-2m").is_err());
    }

    #[test]
    fn pull_headroom_reads_auto_off_and_docker_sizes() {
        let p = |t: &str| t.parse::<PullHeadroom>();
        assert_eq!(p("auto"), Ok(PullHeadroom::Auto));
        assert_eq!(p("AUTO"), Ok(PullHeadroom::Auto));
        assert_eq!(p("0"), Ok(PullHeadroom::Off));
        assert_eq!(p("64MiB"), Ok(PullHeadroom::Bytes(64 << 20)));
        assert_eq!(p("64m"), Ok(PullHeadroom::Bytes(64 << 20)));
        assert_eq!(p("64MB"), Ok(PullHeadroom::Bytes(64 << 20)));
        assert_eq!(p("1.5g"), Ok(PullHeadroom::Bytes(3 << 29)));
        assert_eq!(p("1000"), Ok(PullHeadroom::Bytes(1000)));
        assert!(p("lots").unwrap_err().contains("expected auto, 0 (off)"));
        assert!(p("-5m").is_err());
        for h in [
            PullHeadroom::Auto,
            PullHeadroom::Off,
            PullHeadroom::Bytes(7),
        ] {
            assert_eq!(p(&h.to_string()), Ok(h));
        }
    }

    #[test]
    fn settings_round_trip_as_json_with_durations_as_text() {
        let settings = PolicySettings {
            min_age: Duration::from_secs(5),
            pins: vec!["base/*".into()],
            pull_headroom: PullHeadroom::Bytes(64 << 20),
            ..PolicySettings::default()
        };
        let json = serde_json::to_value(&settings).unwrap();
        assert_eq!(json["min_age"], "5s");
        assert_eq!(json["max_age"], "0s");
        assert_eq!(json["pull_headroom"], "67108864");
        assert_eq!(
            serde_json::from_value::<PolicySettings>(json).unwrap(),
            settings
        );
        // Settings a newer agent does not write yet take their defaults.
        let old: PolicySettings =
            serde_json::from_str(r#"{"high_threshold_percent": 70}"#).unwrap();
        assert_eq!(old.high_threshold_percent, 70);
        assert_eq!(old.pull_headroom, PullHeadroom::Auto);
    }
}
