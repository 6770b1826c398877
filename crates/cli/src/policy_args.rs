//! The GC policy flags shared by `gc plan`, `gc run` and `agent`, each also settable from a
//! `SWARMKEEPER_…` environment variable so that a stack file can configure the agent.
//!
//! A flag not given (nor its variable) takes its value from a base policy: the defaults, or on
//! a node where an agent runs, the policy that agent runs with (so `gc plan` plans as it does).

use std::time::Duration;

use clap::Args;
use swarmkeeper_gc::{parse_duration, Policy, PolicySettings, PullHeadroom, Setting};

use crate::exit::Failure;

#[derive(Args, Debug, Clone, Default)]
pub struct PolicyArgs {
    /// Collect images when disk usage reaches this percentage [default: 85].
    #[arg(
        long,
        env = "SWARMKEEPER_HIGH_THRESHOLD",
        allow_negative_numbers = true,
        value_name = "PCT"
    )]
    pub high_threshold: Option<i64>,
    /// Collect down to this percentage [default: 80].
    #[arg(
        long,
        env = "SWARMKEEPER_LOW_THRESHOLD",
        allow_negative_numbers = true,
        value_name = "PCT"
    )]
    pub low_threshold: Option<i64>,
    /// Never collect an image seen for less than this [default: 2m].
    #[arg(long, env = "SWARMKEEPER_MIN_AGE", value_parser = parse_duration, value_name = "DURATION")]
    pub min_age: Option<Duration>,
    /// Collect images unused for longer than this whatever the usage (0: off) [default: 0].
    #[arg(long, env = "SWARMKEEPER_MAX_AGE", value_parser = spelled_duration, value_name = "DURATION")]
    pub max_age: Option<Spelled<Duration>>,
    /// Never collect images with a reference (repo:tag, repo@sha256:…) or repository matching
    /// this glob (repeatable).
    #[arg(
        long = "pin",
        env = "SWARMKEEPER_PIN",
        value_delimiter = ',',
        value_name = "PATTERN"
    )]
    pub pins: Option<Vec<String>>,
    /// Keep the images of each service's newest N versions unless the disk stays above the
    /// high threshold without them [default: 2].
    #[arg(long, env = "SWARMKEEPER_ROLLBACK_RESERVE", value_name = "N")]
    pub rollback_reserve: Option<usize>,
    /// Remove finished Swarm task containers after this long, at once under space pressure
    /// (the newest per slot is kept) [default: 1m].
    #[arg(long, env = "SWARMKEEPER_CONTAINER_MIN_AGE", value_parser = parse_duration, value_name = "DURATION")]
    pub container_min_age: Option<Duration>,
    /// Also remove stopped containers that are not Swarm tasks.
    #[arg(
        long,
        env = "SWARMKEEPER_PRUNE_STANDALONE_CONTAINERS",
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub prune_standalone_containers: Option<bool>,
    /// Keep this much available for the next pull: auto (about twice the largest image a
    /// Swarm service ran here recently), 0 (off), or a size such as 64MiB, 512m, 2g
    /// [default: auto].
    // A negative size is a bad size, not an unknown flag: the parser names it.
    #[arg(
        long,
        env = "SWARMKEEPER_PULL_HEADROOM",
        allow_hyphen_values = true,
        value_name = "SIZE"
    )]
    pub pull_headroom: Option<PullHeadroom>,
    /// Under space pressure, prune build cache unused for this long before deleting images
    /// [default: 1h].
    #[arg(long, env = "SWARMKEEPER_BUILD_CACHE_MIN_AGE", value_parser = parse_duration, value_name = "DURATION")]
    pub build_cache_min_age: Option<Duration>,
}

impl PolicyArgs {
    /// The settings: each flag given (or its variable) over `base`.
    pub fn settings(&self, base: PolicySettings) -> PolicySettings {
        PolicySettings {
            high_threshold_percent: self.high_threshold.unwrap_or(base.high_threshold_percent),
            low_threshold_percent: self.low_threshold.unwrap_or(base.low_threshold_percent),
            min_age: self.min_age.unwrap_or(base.min_age),
            max_age: self.max_age.as_ref().map_or(base.max_age, |m| m.value),
            pins: self.pins.clone().unwrap_or(base.pins),
            rollback_reserve: self.rollback_reserve.unwrap_or(base.rollback_reserve),
            container_min_age: self.container_min_age.unwrap_or(base.container_min_age),
            prune_standalone_containers: self
                .prune_standalone_containers
                .unwrap_or(base.prune_standalone_containers),
            pull_headroom: self.pull_headroom.unwrap_or(base.pull_headroom),
            build_cache_min_age: self.build_cache_min_age.unwrap_or(base.build_cache_min_age),
        }
    }

    /// The validated policy; a bad value is a usage error naming its flag and quoting the
    /// value as it was given (`5m`, not `5m0s`).
    pub fn policy(&self, base: PolicySettings) -> Result<Policy, Failure> {
        Policy::new(self.settings(base)).map_err(|mut e| {
            if let (Setting::MaxAge, Some(given)) = (e.setting, &self.max_age) {
                e.value.clone_from(&given.text);
            }
            Failure::Usage(e.describe(flag))
        })
    }
}

/// A flag's value with the text it was given as, for errors to quote.
#[derive(Debug, Clone)]
pub struct Spelled<T> {
    pub value: T,
    pub text: String,
}

fn spelled_duration(text: &str) -> Result<Spelled<Duration>, String> {
    Ok(Spelled {
        value: parse_duration(text)?,
        text: text.to_string(),
    })
}

/// The flag that sets a policy setting, as errors name it.
pub fn flag(setting: Setting) -> &'static str {
    match setting {
        Setting::HighThreshold => "--high-threshold",
        Setting::LowThreshold => "--low-threshold",
        Setting::MinAge => "--min-age",
        Setting::MaxAge => "--max-age",
        Setting::Pin => "--pin",
        Setting::RollbackReserve => "--rollback-reserve",
        Setting::ContainerMinAge => "--container-min-age",
        Setting::PullHeadroom => "--pull-headroom",
        Setting::BuildCacheMinAge => "--build-cache-min-age",
    }
}
