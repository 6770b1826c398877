//! Where a node's disk goes: `swarmkeeper disk` and the agent's report.

use std::path::Path;

use swarmkeeper_engine::SystemDf;
use swarmkeeper_gc::{DiskReport, DiskUsageInput, Filesystem};

/// Builds the report from the engine's figures and the log files under the data root.
pub fn disk_report(filesystem: Filesystem, df: &SystemDf, root_dir: &Path) -> DiskReport {
    let input = DiskUsageInput {
        layers_bytes: df.layers_size,
        images: df.images.iter().map(|i| (i.size, i.shared_size)).collect(),
        container_rw_bytes: df.containers.iter().map(|c| c.size_rw).collect(),
        volume_bytes: df.volumes.iter().map(|v| v.size).collect(),
        build_cache_bytes: df.build_cache.iter().map(|b| b.size).collect(),
        log_bytes: swarmkeeper_engine::layout::container_log_bytes(root_dir),
    };
    DiskReport::new(filesystem, &input)
}
