//! The GC policy flags shared by `gc plan`, `gc run` and `agent`, each also settable from a
//! `SWARMKEEPER_…` environment variable so that a stack file can configure the agent.

use std::time::Duration;

use clap::Args;
use swarmkeeper_gc::{parse_duration, Policy};

use crate::exit::Failure;

#[derive(Args, Debug, Clone)]
pub struct PolicyArgs {
    /// Collect images when disk usage reaches this percentage.
    #[arg(
        long,
        env = "SWARMKEEPER_HIGH_THRESHOLD",
        default_value_t = 85,
        allow_negative_numbers = true,
        value_name = "PCT"
    )]
    pub high_threshold: i64,
    /// Collect down to this percentage.
    #[arg(
        long,
        env = "SWARMKEEPER_LOW_THRESHOLD",
        default_value_t = 80,
        allow_negative_numbers = true,
        value_name = "PCT"
    )]
    pub low_threshold: i64,
    /// Never collect an image seen for less than this.
    #[arg(long, env = "SWARMKEEPER_MIN_AGE", default_value = "2m", value_parser = parse_duration, value_name = "DURATION")]
    pub min_age: Duration,
    /// Collect images unused for longer than this whatever the usage (0: off).
    #[arg(long, env = "SWARMKEEPER_MAX_AGE", default_value = "0", value_parser = parse_duration, value_name = "DURATION")]
    pub max_age: Duration,
    /// Never collect images with a repo tag matching this glob (repeatable).
    #[arg(
        long = "pin",
        env = "SWARMKEEPER_PIN",
        value_delimiter = ',',
        value_name = "PATTERN"
    )]
    pub pins: Vec<String>,
    /// Keep the images of each service's newest N versions unless the disk stays above the
    /// high threshold without them.
    #[arg(
        long,
        env = "SWARMKEEPER_ROLLBACK_RESERVE",
        default_value_t = 2,
        value_name = "N"
    )]
    pub rollback_reserve: usize,
    /// Remove finished Swarm task containers after this long (the newest per slot is kept).
    #[arg(long, env = "SWARMKEEPER_CONTAINER_MIN_AGE", default_value = "1m", value_parser = parse_duration, value_name = "DURATION")]
    pub container_min_age: Duration,
    /// Also remove stopped containers that are not Swarm tasks.
    #[arg(long, env = "SWARMKEEPER_PRUNE_STANDALONE_CONTAINERS")]
    pub prune_standalone_containers: bool,
}

impl PolicyArgs {
    pub fn policy(&self) -> Result<Policy, Failure> {
        Policy::new(
            self.high_threshold,
            self.low_threshold,
            self.min_age,
            self.max_age,
            &self.pins,
            self.rollback_reserve,
            self.container_min_age,
            self.prune_standalone_containers,
        )
        .map_err(|e| Failure::Usage(e.to_string()))
    }
}
