//! Resource usage in a report: the samples the agent took (every `--stats-interval`) since the
//! server last accepted a report. Counters stay counters (CPU time, OOM kills): the server
//! turns two samples into a rate, so a lost report loses resolution, never a total. All
//! integers, so a report stays `Eq` and exact in JSON.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Samples an agent holds while the server does not accept its reports: an hour at the default
/// 10 s interval. Older ones are dropped first.
pub const MAX_USAGE_SAMPLES: usize = 360;

/// The most task containers one sample may list (a node runs far fewer; the bound keeps a
/// report's size and the server's work per report bounded).
pub const MAX_USAGE_TASKS: usize = 2_000;

/// One sampling pass on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageSample {
    /// When the agent read the figures, by the node's clock.
    pub taken_at: Timestamp,
    /// The node's own figures; `None` when `/proc` could not be read.
    #[serde(default)]
    pub node: Option<NodeUsage>,
    /// Every running Swarm task container on the node.
    #[serde(default)]
    pub tasks: Vec<TaskUsage>,
}

/// The node's CPU and memory at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeUsage {
    /// CPU time all CPUs spent busy since boot, in milliseconds (a counter).
    pub cpu_busy_ms: u64,
    /// Busy plus idle since boot, in milliseconds: busy / total between two samples is the
    /// node's utilisation.
    pub cpu_total_ms: u64,
    pub cpus: u32,
    pub memory_total_bytes: u64,
    /// `MemAvailable`.
    pub memory_available_bytes: u64,
}

/// One task container at one moment; the names are the labels of its metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskUsage {
    /// `com.docker.swarm.task.id`.
    pub task: String,
    /// `com.docker.swarm.service.name`.
    pub service: String,
    /// `com.docker.stack.namespace`; empty outside a stack.
    #[serde(default)]
    pub stack: String,
    /// The replica's slot; empty for a global service.
    #[serde(default)]
    pub slot: String,
    /// CPU time of its processes since the container started, in nanoseconds (a counter).
    pub cpu_ns: u64,
    /// Working set: usage less inactive page cache (what `docker stats` shows).
    pub memory_bytes: u64,
    /// `None` without a limit.
    #[serde(default)]
    pub memory_limit_bytes: Option<u64>,
    /// Processes the kernel's OOM killer killed in it; `None` when the kernel does not count.
    #[serde(default)]
    pub oom_kills: Option<u64>,
}
