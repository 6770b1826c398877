//! Resource usage of this node's task containers, read from the kernel's cgroup files by
//! `swarmkeeper_cgroup` every `--stats-interval` (never through the engine's per-container
//! `/containers/{id}/stats`), and exposed on `/metrics` as `swarmkeeper_container_*` series
//! labelled `node`, `stack`, `service`, `task` and `slot` (names fixed in PRODUCT.md).
//!
//! One pass: one `GET /containers/json` (which containers run, and their Swarm labels), then a
//! few small cgroup and `/proc` files per task container. The files are in-memory kernel
//! files, so the pass reads them on the runtime's thread (about 0.1 ms per container) rather
//! than paying a thread hand-off. Each pass replaces the previous one whole: a container that
//! stopped has no series any more.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use swarmkeeper_cgroup::{ContainerStats, NodeStats, ReadError, Reader};
use swarmkeeper_engine::{ContainerSummary, Engine};
use swarmkeeper_report::{NodeUsage, TaskUsage, UsageSample};

/// Samples the agent keeps for the server while it does not accept reports: five minutes at
/// the default interval. Older ones go first; the agent's memory budget (10 MiB at 100
/// containers) does not allow the hour the server would accept.
pub const MAX_PENDING_USAGE: usize = 30;

/// Extra passes asked for by OOM kills ([`urgent_pass_at`]) are at least this far apart, so
/// that a storm of kills cannot turn into a storm of passes and reports.
pub const URGENT_PASS_GAP: Duration = Duration::from_secs(1);

/// How long a task container whose main process the OOM killer killed (so that it exited,
/// and its cgroup with it) stays in the passes with its kill counted: long enough for the
/// reports after the kill to carry it, each with the same count (the server counts a kill
/// when a task's count grows, or first appears above zero).
pub const KILLED_KEPT: Duration = Duration::from_secs(60);

/// When to take a pass asked for `now` by an OOM kill, the previous such pass having been
/// taken at `last`: at once, unless that was less than [`URGENT_PASS_GAP`] ago; then when the
/// gap is over (later kills meanwhile share that pass).
pub fn urgent_pass_at(last: Option<Instant>, now: Instant) -> Instant {
    last.map_or(now, |last| (last + URGENT_PASS_GAP).max(now))
}

/// Where the kernel's files are: the host's, bind-mounted, when the agent runs in a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsConfig {
    /// How often to sample; zero turns sampling off.
    pub interval: Duration,
    /// The cgroup hierarchy's mount point, `/sys/fs/cgroup` on the host.
    pub cgroup_root: PathBuf,
    /// The host's proc filesystem, `/proc`: containers' network counters are read through
    /// one of their processes.
    pub proc_root: PathBuf,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig {
            interval: Duration::from_secs(10),
            cgroup_root: "/sys/fs/cgroup".into(),
            proc_root: "/proc".into(),
        }
    }
}

/// The labels of a task container's series. Read from the labels Swarm puts on every task
/// container, so that a worker (which cannot ask for tasks) labels them too.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    /// The node's hostname, as `docker node ls` shows it.
    pub node: String,
    /// `com.docker.stack.namespace`; empty for a service outside a stack.
    pub stack: String,
    /// `com.docker.swarm.service.name`.
    pub service: String,
    /// `com.docker.swarm.task.id`.
    pub task: String,
    /// The replica's slot (`web.3.<task id>` → `3`); empty for a global service, whose
    /// tasks are named after the node instead.
    pub slot: String,
}

impl TaskLabels {
    /// `None` for a container that is not a Swarm task.
    pub fn from_container(node: &str, labels: &BTreeMap<String, String>) -> Option<TaskLabels> {
        let task = labels.get("com.docker.swarm.task.id")?;
        let service = labels.get("com.docker.swarm.service.name")?;
        let slot = labels
            .get("com.docker.swarm.task.name")
            .and_then(|name| name.strip_prefix(service.as_str())?.strip_prefix('.'))
            .and_then(|rest| rest.strip_suffix(task.as_str())?.strip_suffix('.'))
            .filter(|slot| !slot.is_empty() && slot.bytes().all(|b| b.is_ascii_digit()))
            .unwrap_or_default();
        Some(TaskLabels {
            node: node.to_string(),
            stack: labels
                .get("com.docker.stack.namespace")
                .cloned()
                .unwrap_or_default(),
            service: service.clone(),
            task: task.clone(),
            slot: slot.to_string(),
        })
    }
}

/// One task container's counters at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSample {
    pub labels: TaskLabels,
    pub container_id: String,
    pub stats: ContainerStats,
}

/// What one pass saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsPass {
    pub taken_at: Option<jiff::Timestamp>,
    /// `None` when `/proc` could not be read.
    pub node: Option<NodeStats>,
    pub tasks: Vec<TaskSample>,
}

/// Reads the figures of the running task containers among `containers`.
pub struct Sampler {
    reader: Reader,
    node: String,
    /// Running containers whose cgroup could not be found, warned about once each.
    unfound: Vec<String>,
    /// The figures each task container had at the last pass, by container id.
    last: BTreeMap<String, ContainerStats>,
    /// OOM kills the engine told of ([`Sampler::note_oom`]) not yet looked at by a pass.
    ooms: Vec<(String, BTreeMap<String, String>)>,
    /// Task containers that exited after an OOM kill, with their last figures and the kill
    /// counted, kept in the passes until the instant given.
    killed: Vec<(TaskSample, Instant)>,
}

impl Sampler {
    /// Adds to `tasks` (the running task containers just read) those whose OOM kill was
    /// noted but which could not be read: their last figures with one more kill.
    fn count_exited_kills(&mut self, tasks: &mut Vec<TaskSample>) {
        let now = Instant::now();
        for (id, attributes) in std::mem::take(&mut self.ooms) {
            if tasks.iter().any(|t| t.container_id == id)
                || self.killed.iter().any(|(t, _)| t.container_id == id)
            {
                // Still readable: its cgroup counts the kill.
                continue;
            }
            let Some(labels) = TaskLabels::from_container(&self.node, &attributes) else {
                continue;
            };
            let mut stats = self.last.get(&id).copied().unwrap_or(ContainerStats {
                cpu_nanoseconds: 0,
                memory_usage_bytes: 0,
                memory_working_set_bytes: 0,
                memory_limit_bytes: None,
                oom_kills: None,
                memory_limit_hits: 0,
                network: None,
                block_io: None,
            });
            stats.oom_kills = Some(stats.oom_kills.unwrap_or(0) + 1);
            self.killed.push((
                TaskSample {
                    labels,
                    container_id: id,
                    stats,
                },
                now + KILLED_KEPT,
            ));
        }
        self.killed.retain(|(_, until)| *until > now);
        self.last = tasks
            .iter()
            .map(|t| (t.container_id.clone(), t.stats))
            .collect();
        for (killed, _) in &self.killed {
            if !tasks.iter().any(|t| t.container_id == killed.container_id) {
                tasks.push(killed.clone());
            }
        }
    }

    /// `node` is the name the series carry (the engine's hostname).
    pub fn new(config: &StatsConfig, node: String) -> Result<Sampler, ReadError> {
        Ok(Sampler {
            reader: Reader::new(&config.cgroup_root, &config.proc_root)?,
            node,
            unfound: Vec::new(),
            last: BTreeMap::new(),
            ooms: Vec::new(),
            killed: Vec::new(),
        })
    }

    /// The engine's `oom` event for container `id` with the event's attributes (its labels):
    /// the next pass counts the kill even when the killed process was the container's main
    /// one, so that the container exited and its cgroup is gone.
    pub fn note_oom(&mut self, id: String, attributes: BTreeMap<String, String>) {
        self.ooms.push((id, attributes));
    }

    /// Reads every running task container of `containers` and the node. A container that
    /// stopped since the list was taken is left out; so is one whose files cannot be read
    /// (logged at debug level: the next pass tries again).
    pub fn sample(&mut self, containers: &[ContainerSummary]) -> StatsPass {
        let running: Vec<(&ContainerSummary, TaskLabels)> = containers
            .iter()
            .filter(|c| c.state == "running")
            .filter_map(|c| Some((c, TaskLabels::from_container(&self.node, &c.labels)?)))
            .collect();
        let ids: Vec<&str> = running.iter().map(|(c, _)| c.id.as_str()).collect();
        self.reader.retain(&ids);
        self.unfound.retain(|id| ids.contains(&id.as_str()));
        let mut tasks = Vec::with_capacity(running.len());
        for (container, labels) in running {
            match self.reader.container(&container.id) {
                Ok(stats) => tasks.push(TaskSample {
                    labels,
                    container_id: container.id.clone(),
                    stats,
                }),
                Err(e @ ReadError::NotFound { .. }) => {
                    if !self.unfound.contains(&container.id) {
                        self.unfound.push(container.id.clone());
                        tracing::warn!(container = %container.id, error = %e, "no usage for a running task container: its cgroup was not found");
                    }
                }
                Err(e) => {
                    tracing::debug!(container = %container.id, error = %e, "cannot read container stats")
                }
            }
        }
        self.count_exited_kills(&mut tasks);
        let node = match self.reader.node() {
            Ok(node) => Some(node),
            Err(e) => {
                tracing::debug!(error = %e, "cannot read node stats");
                None
            }
        };
        StatsPass {
            taken_at: Some(jiff::Timestamp::now()),
            node,
            tasks,
        }
    }
}

/// The latest pass, shared between the sampler and `/metrics` (a prometheus-client
/// [`Collector`], encoded at each scrape), and the samples not yet taken by a report the
/// server accepted.
#[derive(Debug, Default)]
pub struct Usage {
    latest: Mutex<Arc<StatsPass>>,
    /// Kept only once a reporter asked for them ([`Usage::keep_for_reports`]).
    pending: Mutex<Pending>,
    /// Task containers' OOM kills from the engine's events, for the sampler.
    ooms: Mutex<Vec<(String, BTreeMap<String, String>)>>,
}

#[derive(Debug, Default)]
struct Pending {
    wanted: bool,
    samples: VecDeque<(u64, UsageSample)>,
    next: u64,
}

impl Usage {
    /// The engine's `oom` event for task container `id`, with the event's attributes.
    pub fn note_oom(&self, id: String, attributes: BTreeMap<String, String>) {
        let mut ooms = self.ooms.lock().expect("never poisoned");
        // Bounded when no sampler takes them (`--stats-interval 0`).
        if ooms.len() >= 256 {
            ooms.remove(0);
        }
        ooms.push((id, attributes));
    }

    pub fn latest(&self) -> Arc<StatsPass> {
        self.latest.lock().expect("never poisoned").clone()
    }

    pub fn replace(&self, pass: StatsPass) {
        {
            let mut pending = self.pending.lock().expect("never poisoned");
            if pending.wanted {
                if let Some(sample) = pass.to_sample() {
                    let sequence = pending.next;
                    pending.next += 1;
                    pending.samples.push_back((sequence, sample));
                    while pending.samples.len() > MAX_PENDING_USAGE {
                        pending.samples.pop_front();
                    }
                }
            }
        }
        *self.latest.lock().expect("never poisoned") = Arc::new(pass);
    }

    /// From now on, keep each pass's sample until [`Usage::delivered`] says a report took it.
    pub fn keep_for_reports(&self) {
        self.pending.lock().expect("never poisoned").wanted = true;
    }

    /// The samples not yet delivered, oldest first, and the sequence number of the newest
    /// (for [`Usage::delivered`]).
    pub fn undelivered(&self) -> (Vec<UsageSample>, Option<u64>) {
        let pending = self.pending.lock().expect("never poisoned");
        let last = pending.samples.back().map(|(sequence, _)| *sequence);
        let samples = pending.samples.iter().map(|(_, s)| s.clone()).collect();
        (samples, last)
    }

    /// Forgets the samples up to `through`, which a report carried.
    pub fn delivered(&self, through: u64) {
        self.pending
            .lock()
            .expect("never poisoned")
            .samples
            .retain(|(sequence, _)| *sequence > through);
    }
}

impl StatsPass {
    /// The pass as a report carries it; `None` before the first pass.
    pub fn to_sample(&self) -> Option<UsageSample> {
        Some(UsageSample {
            taken_at: self.taken_at?,
            node: self.node.map(|n| NodeUsage {
                cpu_busy_ms: (n.cpu_busy_seconds * 1000.0) as u64,
                cpu_total_ms: (n.cpu_total_seconds * 1000.0) as u64,
                cpus: n.cpus,
                memory_total_bytes: n.memory_total_bytes,
                memory_available_bytes: n.memory_available_bytes,
            }),
            tasks: self
                .tasks
                .iter()
                .map(|t| TaskUsage {
                    task: t.labels.task.clone(),
                    service: t.labels.service.clone(),
                    stack: t.labels.stack.clone(),
                    slot: t.labels.slot.clone(),
                    cpu_ns: t.stats.cpu_nanoseconds,
                    memory_bytes: t.stats.memory_working_set_bytes,
                    memory_limit_bytes: t.stats.memory_limit_bytes,
                    oom_kills: t.stats.oom_kills,
                })
                .collect(),
        })
    }
}

/// A family of series, one per task, from one figure of [`ContainerStats`].
struct Family {
    name: &'static str,
    help: &'static str,
    counter: bool,
    value: fn(&ContainerStats) -> Option<f64>,
}

const CONTAINER_FAMILIES: &[Family] = &[
    Family {
        name: "container_cpu_seconds",
        help: "CPU time used by the task container's processes (cgroup cpuacct.usage / cpu.stat)",
        counter: true,
        value: |s| Some(s.cpu_seconds()),
    },
    Family {
        name: "container_memory_bytes",
        help: "Working set of the task container: memory usage less inactive page cache, as docker stats and the kubelet count it",
        counter: false,
        value: |s| Some(s.memory_working_set_bytes as f64),
    },
    Family {
        name: "container_memory_usage_bytes",
        help: "Memory usage of the task container, page cache included",
        counter: false,
        value: |s| Some(s.memory_usage_bytes as f64),
    },
    Family {
        name: "container_memory_limit_bytes",
        help: "Memory limit of the task container; absent without a limit",
        counter: false,
        value: |s| s.memory_limit_bytes.map(|b| b as f64),
    },
    Family {
        name: "container_oom_kills",
        help: "Processes of the task container killed by the kernel's OOM killer",
        counter: true,
        value: |s| s.oom_kills.map(|n| n as f64),
    },
    Family {
        name: "container_network_receive_bytes",
        help: "Bytes received on the task container's interfaces but lo; absent with the host's network",
        counter: true,
        value: |s| s.network.map(|n| n.receive_bytes as f64),
    },
    Family {
        name: "container_network_transmit_bytes",
        help: "Bytes sent on the task container's interfaces but lo; absent with the host's network",
        counter: true,
        value: |s| s.network.map(|n| n.transmit_bytes as f64),
    },
    Family {
        name: "container_blkio_read_bytes",
        help: "Bytes the task container read from block devices",
        counter: true,
        value: |s| s.block_io.map(|io| io.read_bytes as f64),
    },
    Family {
        name: "container_blkio_write_bytes",
        help: "Bytes the task container wrote to block devices",
        counter: true,
        value: |s| s.block_io.map(|io| io.write_bytes as f64),
    },
];

impl Collector for Usage {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let pass = self.latest();
        if pass.taken_at.is_none() {
            return Ok(());
        }
        for family in CONTAINER_FAMILIES {
            let kind = if family.counter {
                prometheus_client::metrics::MetricType::Counter
            } else {
                prometheus_client::metrics::MetricType::Gauge
            };
            let mut metric = encoder.encode_descriptor(family.name, family.help, None, kind)?;
            for task in &pass.tasks {
                let Some(value) = (family.value)(&task.stats) else {
                    continue;
                };
                let series = metric.encode_family(&task.labels)?;
                if family.counter {
                    ConstCounter::new(value).encode(series)?;
                } else {
                    ConstGauge::new(value).encode(series)?;
                }
            }
        }
        if let Some(node) = &pass.node {
            let gauges: [(&str, &str, f64); 5] = [
                (
                    "node_memory_total_bytes",
                    "The node's memory (MemTotal)",
                    node.memory_total_bytes as f64,
                ),
                (
                    "node_memory_available_bytes",
                    "Memory available to new work on the node (MemAvailable)",
                    node.memory_available_bytes as f64,
                ),
                ("node_cpus", "CPUs of the node", node.cpus.into()),
                (
                    "node_load1",
                    "The node's 1-minute load average",
                    node.load[0],
                ),
                (
                    "node_load5",
                    "The node's 5-minute load average",
                    node.load[1],
                ),
            ];
            for (name, help, value) in gauges {
                let metric = encoder.encode_descriptor(
                    name,
                    help,
                    None,
                    prometheus_client::metrics::MetricType::Gauge,
                )?;
                ConstGauge::new(value).encode(metric)?;
            }
            for (name, help, value) in [
                (
                    "node_cpu_busy_seconds",
                    "CPU time all the node's CPUs spent busy since boot",
                    node.cpu_busy_seconds,
                ),
                (
                    "node_cpu_total_seconds",
                    "CPU time of all the node's CPUs since boot, busy and idle",
                    node.cpu_total_seconds,
                ),
            ] {
                let metric = encoder.encode_descriptor(
                    name,
                    help,
                    None,
                    prometheus_client::metrics::MetricType::Counter,
                )?;
                ConstCounter::new(value).encode(metric)?;
            }
        }
        Ok(())
    }
}

/// Samples every `config.interval` until the runtime stops, and also as soon as `urgent` is
/// notified (an OOM kill: the alert must not wait for the next tick), spaced by
/// [`urgent_pass_at`]; notifies `urgent_taken` after each such pass so that a report carries
/// it at once. Waits for the engine's hostname first; gives up (with a warning, the rest of
/// the agent going on) when there is no cgroup hierarchy to read.
pub(crate) async fn sample_forever(
    engine: Engine,
    config: StatsConfig,
    usage: Arc<Usage>,
    urgent: Arc<Notify>,
    urgent_taken: Arc<Notify>,
) {
    let mut backoff = Duration::from_secs(1);
    let hostname = loop {
        match engine.info().await {
            Ok(info) => break info.hostname,
            Err(_) => {
                // The main loop logs the engine's state; just wait for it.
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    };
    let mut sampler = match Sampler::new(&config, hostname) {
        Ok(sampler) => sampler,
        Err(e) => {
            tracing::warn!(error = %e, "no container statistics (mount the host's /sys/fs/cgroup and set --cgroup-root)");
            return;
        }
    };
    let mut tick = tokio::time::interval(config.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_urgent = None;
    loop {
        let is_urgent = tokio::select! {
            _ = tick.tick() => false,
            () = urgent.notified() => true,
        };
        if is_urgent {
            let at = urgent_pass_at(last_urgent, Instant::now());
            tokio::time::sleep_until(at).await;
            last_urgent = Some(at);
        }
        match engine.list_containers().await {
            Ok(containers) => {
                for (id, attributes) in
                    std::mem::take(&mut *usage.ooms.lock().expect("never poisoned"))
                {
                    sampler.note_oom(id, attributes);
                }
                usage.replace(sampler.sample(&containers));
                if is_urgent {
                    urgent_taken.notify_one();
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot list containers for statistics"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn urgent_passes_are_at_once_but_a_second_apart() {
        let t0 = Instant::now();
        assert_eq!(urgent_pass_at(None, t0), t0);
        let later = t0 + Duration::from_secs(5);
        assert_eq!(urgent_pass_at(Some(t0), later), later);
        // A kill 200 ms after the last extra pass waits for the gap to end; so does every
        // kill until then, and all of them share that one pass.
        let soon = t0 + Duration::from_millis(200);
        assert_eq!(urgent_pass_at(Some(t0), soon), t0 + URGENT_PASS_GAP);
        assert_eq!(
            urgent_pass_at(Some(t0), t0 + URGENT_PASS_GAP),
            t0 + URGENT_PASS_GAP
        );
    }

    #[test]
    fn a_task_killed_by_oom_that_exited_is_counted_in_the_next_passes() {
        let root = std::env::temp_dir().join(format!("skagent-oom-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("cgroup.controllers"), "memory\n").unwrap();
        let config = StatsConfig {
            cgroup_root: root.clone(),
            proc_root: root.join("proc"),
            ..StatsConfig::default()
        };
        let mut sampler = Sampler::new(&config, "n1".into()).unwrap();
        let task = labels(&[
            ("com.docker.swarm.service.name", "hog"),
            ("com.docker.swarm.task.id", "t9"),
            ("com.docker.swarm.task.name", "hog.1.t9"),
            ("name", "hog.1.t9"),
        ]);
        // Its main process was killed: the container is gone before the pass.
        sampler.note_oom("c9".into(), task);
        sampler.note_oom("c-not-a-task".into(), labels(&[("name", "x")]));
        for _ in 0..3 {
            let pass = sampler.sample(&[]);
            assert_eq!(pass.tasks.len(), 1);
            let sample = pass.to_sample().unwrap();
            let killed = &sample.tasks[0];
            assert_eq!((killed.task.as_str(), killed.slot.as_str()), ("t9", "1"));
            assert_eq!(killed.oom_kills, Some(1));
        }
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn task_labels_come_from_swarms_container_labels() {
        let replicated = labels(&[
            ("com.docker.stack.namespace", "shop"),
            ("com.docker.swarm.service.name", "shop_web"),
            ("com.docker.swarm.task.id", "k2x9"),
            ("com.docker.swarm.task.name", "shop_web.3.k2x9"),
        ]);
        assert_eq!(
            TaskLabels::from_container("node-1", &replicated),
            Some(TaskLabels {
                node: "node-1".into(),
                stack: "shop".into(),
                service: "shop_web".into(),
                task: "k2x9".into(),
                slot: "3".into(),
            })
        );
        let global = labels(&[
            ("com.docker.swarm.service.name", "agent"),
            ("com.docker.swarm.task.id", "t1"),
            ("com.docker.swarm.task.name", "agent.nodeid9.t1"),
        ]);
        let global = TaskLabels::from_container("n", &global).unwrap();
        assert_eq!((global.stack.as_str(), global.slot.as_str()), ("", ""));
        assert_eq!(
            TaskLabels::from_container("n", &labels(&[("app", "x")])),
            None
        );
    }

    #[test]
    fn a_pass_is_exposed_with_the_product_names() {
        let metrics = crate::Metrics::new();
        let stats = ContainerStats {
            cpu_nanoseconds: 1_500_000_000,
            memory_usage_bytes: 3000,
            memory_working_set_bytes: 2000,
            memory_limit_bytes: Some(16 << 20),
            oom_kills: Some(1),
            memory_limit_hits: 4,
            network: Some(swarmkeeper_cgroup::Network {
                receive_bytes: 10,
                transmit_bytes: 20,
            }),
            block_io: None,
        };
        metrics.usage().replace(StatsPass {
            taken_at: Some(jiff::Timestamp::UNIX_EPOCH),
            node: None,
            tasks: vec![TaskSample {
                labels: TaskLabels {
                    node: "n1".into(),
                    stack: "shop".into(),
                    service: "shop_web".into(),
                    task: "k2x9".into(),
                    slot: "3".into(),
                },
                container_id: "c".into(),
                stats,
            }],
        });
        let text = metrics.encode();
        let labels = r#"{node="n1",stack="shop",service="shop_web",task="k2x9",slot="3"}"#;
        for line in [
            format!("swarmkeeper_container_cpu_seconds_total{labels} 1.5"),
            format!("swarmkeeper_container_memory_bytes{labels} 2000.0"),
            format!("swarmkeeper_container_memory_limit_bytes{labels} 16777216.0"),
            format!("swarmkeeper_container_oom_kills_total{labels} 1.0"),
            format!("swarmkeeper_container_network_receive_bytes_total{labels} 10.0"),
            format!("swarmkeeper_container_network_transmit_bytes_total{labels} 20.0"),
        ] {
            assert!(text.contains(&line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("blkio_read_bytes_total{"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
