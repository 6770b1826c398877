//! Agents report in: each agent posts a [`NodeReport`] about its node to `swarmkeeper server`,
//! which keeps the latest one, a disk history thinned by [`thin`], and the GC runs, calls a
//! node whose reports stopped coming silent ([`node_reporting_state`]), and pauses a node under
//! disk pressure ([`disk_pressure`]). The server checks each report with [`validate_report`]
//! before it stores anything. Reports carry the node's and its task containers' resource
//! usage ([`UsageSample`]).
//!
//! Like the GC core, everything here is pure: the agent and the server are the shells that
//! measure, post, receive and store.

mod health;
mod history;
mod pressure;
mod series;
mod usage;
mod validate;
mod wire;

pub use health::{
    node_reporting_state, silent_after, ReportingState, MISSED_INTERVALS, SILENT_FLOOR,
};
pub use history::{thin, DiskSample, RetentionPolicy};
pub use pressure::{
    disk_pressure, pressure_samples, Availability, NodeState, PressureAction, PressurePolicy,
    PressureSample, PRESSURE_LABEL,
};
pub use series::{
    latest_by_service, max_gap, node_points, resolution, service_points, task_points,
    top_consumers, ServiceUsage, TopConsumers, UsagePoint, UsageRange,
};
pub use usage::{
    thin_usage, NodeUsage, TaskUsage, UsageSample, UsageWatermark, MAX_USAGE_SAMPLES,
    MAX_USAGE_TASKS, USAGE_RETENTION,
};
pub use validate::{
    validate_report, ReportProblem, MAX_CLOCK_AHEAD, MAX_INTERVAL_SECONDS, MAX_REPORTED_BYTES,
    MAX_REPORTED_COUNT,
};
pub use wire::{
    reported_images, secret_from_file_content, DataRoot, LastPass, NodeReport, ReportedDeletion,
    ReportedImage, ReportedRun, ReportedVolume, UnboundedLog, DISK_BREAKDOWN_MAX_AGE,
    MAX_PENDING_RUNS, MAX_REPORT_BYTES, REPORT_PATH,
};
