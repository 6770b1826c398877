//! The agent's Prometheus metrics. Each agent owns its registry (prometheus-client has no global
//! one), so tests and several agents in one process stay apart.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use swarmkeeper_gc::{usage_percent, Filesystem};

use crate::stats::Usage;
use crate::GcOutcome;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TriggerLabel {
    trigger: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

pub struct Metrics {
    registry: Registry,
    usage_percent: Gauge,
    capacity_bytes: Gauge<u64, AtomicU64>,
    available_bytes: Gauge<u64, AtomicU64>,
    images: Gauge,
    engine_up: Gauge,
    bytes_freed: Counter,
    images_deleted: Family<ReasonLabel, Counter>,
    containers_removed: Counter,
    runs: Family<TriggerLabel, Counter>,
    failures: Family<ReasonLabel, Counter>,
    last_run: Gauge,
    pull_headroom: Gauge<u64, AtomicU64>,
    short_of_headroom: Gauge,
    build_cache_freed: Counter,
    usage: Arc<Usage>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("swarmkeeper");
        let m = Metrics {
            usage_percent: Gauge::default(),
            capacity_bytes: Gauge::default(),
            available_bytes: Gauge::default(),
            images: Gauge::default(),
            engine_up: Gauge::default(),
            bytes_freed: Counter::default(),
            images_deleted: Family::default(),
            containers_removed: Counter::default(),
            runs: Family::default(),
            failures: Family::default(),
            last_run: Gauge::default(),
            pull_headroom: Gauge::default(),
            short_of_headroom: Gauge::default(),
            build_cache_freed: Counter::default(),
            usage: Arc::default(),
            registry: Registry::default(),
        };
        registry.register(
            "disk_usage_percent",
            "Usage of the engine's data-root filesystem, kubelet arithmetic",
            m.usage_percent.clone(),
        );
        registry.register(
            "disk_capacity_bytes",
            "Capacity of the engine's data-root filesystem",
            m.capacity_bytes.clone(),
        );
        registry.register(
            "disk_available_bytes",
            "Available bytes on the engine's data-root filesystem",
            m.available_bytes.clone(),
        );
        registry.register("images", "Images on the node", m.images.clone());
        registry.register(
            "engine_up",
            "1 when the last call to the Docker Engine succeeded",
            m.engine_up.clone(),
        );
        registry.register(
            "gc_freed_bytes",
            "Bytes given back by GC, measured by statvfs",
            m.bytes_freed.clone(),
        );
        registry.register(
            "gc_images_deleted",
            "Images deleted by GC, by reason",
            m.images_deleted.clone(),
        );
        registry.register(
            "gc_containers_removed",
            "Dead containers removed by GC",
            m.containers_removed.clone(),
        );
        registry.register("gc_runs", "GC passes, by trigger", m.runs.clone());
        registry.register(
            "gc_failures",
            "GC passes or steps that failed, by reason",
            m.failures.clone(),
        );
        registry.register(
            "gc_last_run_timestamp_seconds",
            "When the last GC pass finished, as a Unix time",
            m.last_run.clone(),
        );
        registry.register(
            "gc_pull_headroom_bytes",
            "Room GC keeps available for the next pull (0: none)",
            m.pull_headroom.clone(),
        );
        registry.register(
            "gc_short_of_headroom",
            "1 when the last pass ended with less available than the pull headroom",
            m.short_of_headroom.clone(),
        );
        registry.register(
            "gc_build_cache_freed_bytes",
            "Bytes the engine reclaimed from the build cache for GC",
            m.build_cache_freed.clone(),
        );
        registry.register_collector(Box::new(m.usage.clone()));
        Metrics { registry, ..m }
    }

    pub fn observe_disk(&self, fs: &Filesystem, images: u64) {
        self.usage_percent
            .set(usage_percent(fs.capacity_bytes, fs.available_bytes).into());
        self.capacity_bytes.set(fs.capacity_bytes);
        self.available_bytes.set(fs.available_bytes);
        self.images.set(i64::try_from(images).unwrap_or(i64::MAX));
    }

    /// The latest resource-usage pass of the task containers, exposed at each scrape.
    pub fn usage(&self) -> &Arc<Usage> {
        &self.usage
    }

    pub fn engine_up(&self, up: bool) {
        self.engine_up.set(up.into());
    }

    pub fn record_run(&self, outcome: &GcOutcome) {
        self.runs
            .get_or_create(&TriggerLabel {
                trigger: outcome.trigger.as_str().into(),
            })
            .inc();
        self.bytes_freed.inc_by(outcome.bytes_freed);
        self.build_cache_freed
            .inc_by(outcome.build_cache_freed_bytes);
        self.pull_headroom.set(outcome.pull_headroom_bytes);
        self.short_of_headroom
            .set(outcome.short_of_headroom().into());
        for deleted in &outcome.deleted {
            self.images_deleted
                .get_or_create(&ReasonLabel {
                    reason: deleted.reason.as_str().into(),
                })
                .inc();
        }
        self.containers_removed
            .inc_by(outcome.removed_containers.len() as u64);
        if outcome.fell_short() {
            self.failure("shortfall");
        }
        if !outcome.failures.is_empty() {
            self.failures
                .get_or_create(&ReasonLabel {
                    reason: "refused".into(),
                })
                .inc_by(outcome.failures.len() as u64);
        }
        self.last_run.set(jiff::Timestamp::now().as_second());
    }

    /// A pass that could not run or finish: `engine`, `store`, `filesystem`, `shortfall`.
    pub fn failure(&self, reason: &str) {
        self.failures
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_disk_and_gc_figures() {
        let m = Metrics::new();
        m.observe_disk(
            &Filesystem {
                path: "/".into(),
                capacity_bytes: 1000,
                available_bytes: 50,
            },
            7,
        );
        m.failure("engine");
        m.record_run(&crate::GcOutcome {
            usage_percent_before: 84,
            usage_percent_after: 80,
            bytes_freed: 10,
            shortfall_bytes: 5,
            space_trigger: Some(swarmkeeper_gc::SpaceTrigger::PullHeadroom),
            pull_headroom_bytes: 64,
            available_bytes_after: 59,
            build_cache_freed_bytes: 3,
            ..crate::GcOutcome::for_tests()
        });
        let text = m.encode();
        for line in [
            "swarmkeeper_disk_usage_percent 95",
            "swarmkeeper_disk_capacity_bytes 1000",
            "swarmkeeper_images 7",
            "swarmkeeper_gc_failures_total{reason=\"engine\"} 1",
            "swarmkeeper_gc_failures_total{reason=\"shortfall\"} 1",
            "swarmkeeper_gc_pull_headroom_bytes 64",
            "swarmkeeper_gc_short_of_headroom 1",
            "swarmkeeper_gc_build_cache_freed_bytes_total 3",
            "# EOF",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }
}
