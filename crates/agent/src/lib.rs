//! The node side of swarmkeeper.
//!
//! [`Node`] observes one engine and turns what it sees into a GC [`swarmkeeper_gc::Snapshot`],
//! remembering first-seen and last-used times in the state database; [`collect`] carries a plan
//! out and re-measures the disk as it goes; [`run`] is the long-running agent that does both
//! whenever the engine's events or the clock say so, and serves its metrics (with each task
//! container's CPU, memory and I/O, [`Sampler`]); with a server, a
//! [`Reporter`] posts what each pass saw to `swarmkeeper server`.

mod advice;
mod alloc;
mod collect;
mod disk;
mod fs;
mod http;
mod metrics;
mod node;
mod policy_file;
mod report;
mod run;
mod stats;

pub use collect::{collect, DeletedImage, Failure, GcOutcome, RemovedContainer, Trigger};
pub use disk::disk_report;
pub use fs::{
    measure as measure_filesystem, mount_info, usage as filesystem_usage, FsUsage, MountInfo,
};
pub use metrics::Metrics;
pub use node::{Detail, FirstSighting, Node};
pub use policy_file::{find_agent_state_dir, read_policy, write_policy, AGENT_LABEL, POLICY_FILE};
pub use report::{post_report, ReportConfig, ReportError, ReportSecret, Reporter, ServerUrl};
pub use run::{run, AgentConfig};
pub use stats::{Sampler, StatsConfig, StatsPass, TaskLabels, TaskSample, Usage};

use std::path::PathBuf;

/// What can stop a GC pass. Engine errors are transient for the agent (it retries) and exit
/// code 3 for the CLI; the others are problems with this node's setup.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Engine(#[from] swarmkeeper_engine::EngineError),
    #[error(transparent)]
    Store(#[from] swarmkeeper_store::StoreError),
    #[error("cannot measure the filesystem at {path}: {source}")]
    Filesystem {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}
