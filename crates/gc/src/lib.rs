//! The garbage-collection core of swarmkeeper.
//!
//! Everything here is a pure function over plain data: a [`Snapshot`] of one node (its image
//! filesystem, images and containers) and a [`Policy`] go in, a [`Plan`] comes out. The agent and
//! the CLI capture snapshots from a real engine and carry plans out; tests and `gc plan
//! --snapshot` feed recorded snapshots. Nothing in this crate touches the network or the disk.

mod accounting;
mod containers;
mod disk;
mod plan;
mod policy;
mod snapshot;
mod space;
mod usage;

pub use containers::{plan_containers, ContainerRemoval, ContainerRemovalReason};
pub use disk::{DiskReport, DiskUsageInput};
pub use plan::{
    plan, reclaimable_bytes, Accounting, BuildCachePrune, Deletion, DeletionReason, Keep,
    KeepReason, Plan, PlanMode,
};
pub use policy::{
    format_duration, parse_duration, repository, PinMatcher, Policy, PolicyError, PolicySettings,
    Problem, PullHeadroom, Setting,
};
pub use snapshot::{
    BuildCacheRecord, Container, ContainerState, Filesystem, Image, Layer, Snapshot, SnapshotError,
    SNAPSHOT_VERSION,
};
pub use space::{
    pull_headroom, space_need, SpaceNeed, SpaceTrigger, AUTO_HEADROOM_FACTOR,
    AUTO_HEADROOM_MAX_PERCENT, AUTO_HEADROOM_VERSIONS,
};
pub use usage::{bytes_to_free, usage_percent};

/// Label on a Swarm task container naming its service.
pub const LABEL_SERVICE_NAME: &str = "com.docker.swarm.service.name";
/// Label on a Swarm task container naming its task (`service.slot.taskid`).
pub const LABEL_TASK_NAME: &str = "com.docker.swarm.task.name";
/// Label on a Swarm task container holding its task id.
pub const LABEL_TASK_ID: &str = "com.docker.swarm.task.id";
/// Label that pins an image (or a container) against collection.
pub const LABEL_PIN: &str = "swarmkeeper.gc.pin";
