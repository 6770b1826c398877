//! The report an agent posts to the server: a wire contract between two builds that may not be
//! the same version during a rolling upgrade. Field names never change; new fields get a serde
//! default so that a newer server still reads an older agent, and unknown fields are ignored so
//! that an older server still reads a newer one. Values that name a kind of thing (trigger,
//! outcome, reasons) are strings for the same reason: one the server does not know yet must not
//! make it refuse the whole report.

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use swarmkeeper_gc::{DiskReport, Plan, Snapshot};

use crate::usage::UsageSample;

/// The largest report body the server accepts; it answers 413 to a larger one. Agents trim
/// their report to fit ([`NodeReport::to_json_within`]).
pub const MAX_REPORT_BYTES: usize = 4 * 1024 * 1024;

/// How old the agent lets a node's disk breakdown (`/system/df`, which walks every container
/// layer and volume) get before it asks the engine again: volume sizes and the containers
/// that use them are that fresh at worst.
pub const DISK_BREAKDOWN_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(600);

/// Where an agent POSTs its report on the server, with `Authorization: Bearer SECRET` and a
/// JSON body. The server answers 204 when it stored the report, 401 to a wrong secret, 413 to a
/// body over [`MAX_REPORT_BYTES`].
pub const REPORT_PATH: &str = "/api/agent/report";

/// GC runs an agent holds while the server does not accept its reports; older ones are dropped
/// (the agent's own run log still has them).
pub const MAX_PENDING_RUNS: usize = 100;

/// The shared secret in a secret file: the content without one trailing newline (`\n` or
/// `\r\n`, which `echo` and editors add); anything else is part of the secret. Agent and server
/// both read the Swarm secret this way, so they agree on it.
pub fn secret_from_file_content(content: &str) -> &str {
    content
        .strip_suffix('\n')
        .map_or(content, |s| s.strip_suffix('\r').unwrap_or(s))
}

/// One node as its agent sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeReport {
    /// The Swarm node ID (`Swarm.NodeID` in the engine's `/info`); empty when the engine is not
    /// part of a swarm. See [`NodeReport::node_key`].
    pub node_id: String,
    /// The engine host's hostname (`Name` in `/info`).
    pub hostname: String,
    /// The engine's version (`ServerVersion` in `/info`), e.g. `20.10.24+dfsg1`.
    pub engine_version: String,
    /// When the agent built the report, by the node's clock.
    pub reported_at: Timestamp,
    /// The swarmkeeper version of the agent.
    pub agent_version: String,
    /// The agent reports at least this often (its `--interval`): the server calls the node
    /// silent once about three intervals pass without a report.
    pub interval_seconds: u64,
    /// The image filesystem, measured when the report was built, and where its space goes.
    pub disk: DiskReport,
    /// When the engine last gave the breakdown in `disk` (`/system/df`, which is expensive on a
    /// busy node, so the agent asks for it at most every [`DISK_BREAKDOWN_MAX_AGE`]); the
    /// filesystem figures are always fresh. `None` until the engine has given one: all used
    /// bytes then count as other.
    #[serde(default)]
    pub disk_breakdown_at: Option<Timestamp>,
    /// The agent's GC policy: space GC starts at this usage ...
    pub high_threshold_percent: u8,
    /// ... and frees space down to this one.
    pub low_threshold_percent: u8,
    /// The images on the node after the agent's last GC pass, largest first.
    pub images: Vec<ReportedImage>,
    /// GC passes that removed or deleted something, or could not do all they had to, since the
    /// last report the server accepted, oldest first (at most [`MAX_PENDING_RUNS`]). Passes
    /// that found nothing to do are left out: every report already shows the node is looked
    /// after.
    pub gc_runs: Vec<ReportedRun>,
    /// True when images or GC runs were left out to keep the report under
    /// [`MAX_REPORT_BYTES`]: the smallest images and the oldest runs go first.
    #[serde(default)]
    pub truncated: bool,
    /// Which filesystem `disk` measures, as the node's host sees it; `None` from an agent
    /// before 0.2 or when the agent cannot tell.
    #[serde(default)]
    pub data_root: Option<DataRoot>,
    /// The room GC keeps for the next pull, in bytes (0: none), as of the last pass.
    #[serde(default)]
    pub pull_headroom_bytes: u64,
    /// Bytes GC may give back once it needs space, however much it needs
    /// ([`swarmkeeper_gc::reclaimable_bytes`]: unused images past min-age or superseded, the
    /// rollback reserve, dead task containers' images, the build cache), as of the last
    /// pass; 0 from an older agent. The disk-full forecast counts them as free.
    #[serde(default)]
    pub reclaimable_bytes: u64,
    /// The agent's pull headroom setting: `auto`, `0` (off) or a number of bytes; empty from
    /// an older agent.
    #[serde(default)]
    pub pull_headroom: String,
    /// How the agent's last GC pass ended; `None` from an older agent.
    #[serde(default)]
    pub last_pass: Option<LastPass>,
    /// Containers whose `json-file` logs have no size limit, largest first (never deleted:
    /// only reported). Empty when there are none or the agent cannot read the data root.
    #[serde(default)]
    pub unbounded_logs: Vec<UnboundedLog>,
    /// Resource usage sampled since the last report the server accepted, oldest first (at
    /// most [`crate::MAX_USAGE_SAMPLES`]). Absent from older agents' reports and when the
    /// agent's statistics are off.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub usage: Vec<UsageSample>,
    /// The node's volumes, largest first, as of `disk_breakdown_at` (at most
    /// [`crate::MAX_REPORTED_VOLUMES`]). `None` from an older agent, or before the engine has
    /// given a breakdown: the server then keeps showing what it knew.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<ReportedVolume>>,
}

/// One volume on the node (volumes are node-local: the same name on two nodes is two volumes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedVolume {
    pub name: String,
    /// e.g. `local`.
    pub driver: String,
    /// Where its data is on the node's host, e.g. `/var/lib/docker/volumes/NAME/_data`.
    pub mountpoint: String,
    /// Bytes of its data (the engine's `/system/df` `UsageData.Size`); `None` when the engine
    /// could not measure it (a non-local driver).
    pub size_bytes: Option<u64>,
    /// Its labels, e.g. `com.docker.stack.namespace` for a stack's volume.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// The containers, in any state, that mount it, by name (by ID when nameless), sorted:
    /// empty when no container uses it.
    #[serde(default)]
    pub containers: Vec<String>,
}

/// The filesystem that holds the engine's data root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRoot {
    /// The path measured: the engine's `DockerRootDir` (e.g. `/var/lib/docker`) unless the
    /// agent's `--fs-path` names another.
    pub path: std::path::PathBuf,
    /// Where that filesystem is mounted on the host: `/` when the data root is a folder of the
    /// root filesystem.
    pub mount_point: std::path::PathBuf,
    /// The device or source, e.g. `/dev/sda1`, `tmpfs`.
    pub source: String,
    /// e.g. `ext4`, `xfs`, `tmpfs`.
    pub fs_type: String,
    /// The whole size (`df`'s `Size`); `disk.filesystem.capacity_bytes` is this less
    /// `reserved_bytes`, which usage percentages are of (as `df`'s `Use%`).
    pub size_bytes: u64,
    /// Blocks reserved for root, which unprivileged writers never get.
    pub reserved_bytes: u64,
}

/// The outcome of the agent's newest GC pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastPass {
    pub started_at: Timestamp,
    /// Why space GC ran: `high-threshold`, `pull-headroom`, `continue`; `None` when it did
    /// not.
    #[serde(default)]
    pub space_trigger: Option<String>,
    pub usage_percent_after: u8,
    /// Bytes still to free to reach the low threshold and the pull headroom; 0 unless space
    /// GC ran and fell short.
    pub shortfall_bytes: u64,
    /// The pass fell short of the low threshold.
    pub short_of_low_threshold: bool,
    /// The pass ended with less available than the pull headroom: the next pull may not fit.
    pub short_of_headroom: bool,
}

impl LastPass {
    /// The pass ran space GC and could not free enough.
    pub fn fell_short(&self) -> bool {
        self.shortfall_bytes > 0
    }
}

/// A container whose `json-file` log grows without bound.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnboundedLog {
    pub container_id: String,
    /// The container's name, e.g. `web.1.x7…`; empty when not known.
    #[serde(default)]
    pub name: String,
    /// The Swarm service it runs a task of, if any.
    #[serde(default)]
    pub service: Option<String>,
    /// Bytes of its log file now.
    pub size_bytes: u64,
}

/// One image on the node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedImage {
    /// `sha256:…`.
    pub id: String,
    /// `repo:tag` references; empty for a dangling image.
    pub repo_tags: Vec<String>,
    /// `repo@sha256:…` references: what Swarm pulls by, often the only names on a worker.
    #[serde(default)]
    pub repo_digests: Vec<String>,
    /// How to show the image: a tag, else `repo@sha256:…`, else the id; empty from an older
    /// agent.
    #[serde(default)]
    pub name: String,
    /// Bytes of all the image's layers, shared ones included.
    pub size_bytes: u64,
    /// Bytes in layers other images also use: deleting the image frees `size_bytes -
    /// shared_bytes`. 0 when the agent has no `/system/df` figure for the image yet.
    pub shared_bytes: u64,
    /// When the agent first saw the image (or the engine stored it, for images older than the
    /// agent).
    pub first_seen: Timestamp,
    /// When a container last used the image; `None` if none ever did.
    pub last_used: Option<Timestamp>,
    /// A container on the node, in any state, uses the image: the engine would refuse to
    /// delete it.
    pub in_use: bool,
    /// Why the GC planner keeps the image: `in-use`, `pinned`, `too-young`, `rollback-reserve`
    /// or `not-needed`. `None` when the planner would delete it now (the disk is still above
    /// the high threshold, or the image is older than `--max-age`).
    pub keep_reason: Option<String>,
}

/// One GC pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedRun {
    /// When the pass started, by the node's clock; with the node, it identifies the run, so
    /// the server can ignore a run sent twice.
    pub started_at: Timestamp,
    /// `startup`, `interval`, `pull`, `retry` or `manual`.
    pub trigger: String,
    pub usage_percent_before: u8,
    pub usage_percent_after: u8,
    /// Measured with statvfs: available bytes after the pass minus before.
    pub bytes_freed: u64,
    /// The images deleted, in order.
    pub deleted: Vec<ReportedDeletion>,
    /// Dead task containers removed.
    pub containers_removed: u64,
    /// `ok`; `partial` when the engine refused some steps; `shortfall` when the disk is still
    /// above the low threshold, or short of the pull headroom, after the pass.
    pub outcome: String,
    /// Bytes the engine reclaimed from the build cache.
    #[serde(default)]
    pub build_cache_freed_bytes: u64,
    /// Why space GC ran: `high-threshold`, `pull-headroom` or `continue`.
    #[serde(default)]
    pub space_trigger: Option<String>,
    /// The pull headroom in force, in bytes.
    #[serde(default)]
    pub pull_headroom_bytes: u64,
}

/// One image a GC pass deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedDeletion {
    pub id: String,
    pub repo_tags: Vec<String>,
    /// A tag, else `repo@sha256:…`, else the id; empty from an older agent.
    #[serde(default)]
    pub name: String,
    /// `max-age`, `space` or `space-reserve`.
    pub reason: String,
    /// Unique bytes as planned.
    pub bytes: u64,
}

impl NodeReport {
    /// How the server tells nodes apart: the Swarm node ID, which survives a hostname change;
    /// for an engine outside a swarm, `hostname:NAME`, so that two such engines do not take
    /// each other's place. (Swarm node IDs never contain a colon.)
    pub fn node_key(&self) -> String {
        if self.node_id.is_empty() {
            format!("hostname:{}", self.hostname)
        } else {
            self.node_id.clone()
        }
    }

    /// The JSON body, at most `max_bytes` long if leaving out images and runs can make it so.
    /// Whichever of the two lists takes more room is cut first: runs from the oldest, images
    /// from the smallest. The report is left as sent, with `truncated` set if anything went.
    pub fn to_json_within(&mut self, max_bytes: usize) -> Vec<u8> {
        // Usage samples go first, oldest first: the newest still shows the node's state.
        while !self.usage.is_empty() && to_json(self).len() > max_bytes {
            self.truncated = true;
            let json = to_json(self).len();
            let drop = share(
                self.usage.len(),
                json - max_bytes,
                to_json(&self.usage).len(),
            );
            self.usage.drain(..drop);
        }
        // Then volumes, smallest last in the list (the agent lists them largest first): the
        // large ones are what the page is for.
        while let Some(volumes) = self.volumes.as_mut() {
            if volumes.is_empty() || to_json(self).len() <= max_bytes {
                break;
            }
            self.truncated = true;
            let excess = to_json(self).len() - max_bytes;
            let volumes = self.volumes.as_mut().expect("checked above");
            let drop = share(volumes.len(), excess, to_json(volumes).len());
            volumes.truncate(volumes.len() - drop);
        }
        loop {
            let json = to_json(self);
            if json.len() <= max_bytes || (self.images.is_empty() && self.gc_runs.is_empty()) {
                return json;
            }
            self.truncated = true;
            let excess = json.len() - max_bytes;
            let images_bytes = to_json(&self.images).len();
            let runs_bytes = to_json(&self.gc_runs).len();
            if !self.gc_runs.is_empty() && (runs_bytes >= images_bytes || self.images.is_empty()) {
                let drop = share(self.gc_runs.len(), excess, runs_bytes);
                self.gc_runs.drain(..drop);
            } else {
                let drop = share(self.images.len(), excess, images_bytes);
                self.images.truncate(self.images.len() - drop);
            }
        }
    }
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("report types always serialise")
}

/// How many of `len` items, taking `part_bytes` together, to drop to shed `excess` bytes:
/// assuming items of even size, rounded up, at least one and at most all.
fn share(len: usize, excess: usize, part_bytes: usize) -> usize {
    let drop = (len as u128 * excess as u128).div_ceil(part_bytes.max(1) as u128);
    (drop as usize).clamp(1, len)
}

/// The images of a snapshot with the planner's verdict on each, largest first.
pub fn reported_images(snapshot: &Snapshot, plan: &Plan<'_>) -> Vec<ReportedImage> {
    let kept: HashMap<&str, &'static str> = plan
        .keep
        .iter()
        .map(|k| (k.id, k.reason.as_str()))
        .collect();
    // The planner's rule: a container this pass removes no longer holds its image.
    let removed: HashSet<&str> = plan.remove_containers.iter().map(|r| r.id).collect();
    let in_use: HashSet<&str> = snapshot
        .containers
        .iter()
        .filter(|c| !removed.contains(c.id.as_str()))
        .map(|c| c.image_id.as_str())
        .collect();
    let mut images: Vec<ReportedImage> = snapshot
        .images
        .iter()
        .map(|i| ReportedImage {
            id: i.id.clone(),
            repo_tags: i.repo_tags.clone(),
            repo_digests: i.repo_digests.clone(),
            name: i.name().to_string(),
            size_bytes: i.size_bytes,
            shared_bytes: i.shared_bytes,
            first_seen: i.first_seen,
            last_used: i.last_used,
            in_use: in_use.contains(i.id.as_str()),
            keep_reason: kept.get(i.id.as_str()).map(|r| r.to_string()),
        })
        .collect();
    images.sort_by(|a, b| {
        b.size_bytes
            .cmp(&a.size_bytes)
            .then_with(|| a.id.cmp(&b.id))
    });
    images
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use swarmkeeper_gc::{
        plan, Container, ContainerState, DiskUsageInput, Filesystem, Image, PlanMode, Policy,
        PolicySettings, SNAPSHOT_VERSION,
    };

    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn image(id: &str, tag: &str, size: u64, first_seen: &str) -> Image {
        Image {
            id: id.into(),
            repo_tags: vec![tag.into()],
            repo_digests: vec![],
            size_bytes: size,
            shared_bytes: 10,
            first_seen: t(first_seen),
            last_used: None,
            pinned: false,
            layers: None,
        }
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            version: SNAPSHOT_VERSION,
            taken_at: t("2026-11-26T12:00:00Z"),
            filesystem: Filesystem {
                path: "/var/lib/docker".into(),
                capacity_bytes: 1_000,
                available_bytes: 900,
            },
            images: vec![
                image("sha256:old", "app:1", 100, "2026-11-20T12:00:00Z"),
                image("sha256:run", "app:2", 300, "2026-11-20T12:00:00Z"),
                image("sha256:new", "app:3", 200, "2026-11-26T11:59:00Z"),
            ],
            containers: vec![Container {
                id: "c1".into(),
                image_id: "sha256:run".into(),
                state: ContainerState::Exited,
                created: t("2026-11-25T12:00:00Z"),
                finished_at: Some(t("2026-11-25T13:00:00Z")),
                labels: BTreeMap::new(),
            }],
            service_image_history: BTreeMap::new(),
            build_cache: None,
        }
    }

    /// A node at 60 % with no images and no runs, reported at 2026-11-26T12:00:05Z.
    pub(crate) fn report() -> NodeReport {
        let fs = Filesystem {
            path: "/var/lib/docker".into(),
            capacity_bytes: 1_000,
            available_bytes: 400,
        };
        NodeReport {
            node_id: "lkuqb6oz64hfgcogow5xr6sgp".into(),
            hostname: "node-1".into(),
            engine_version: "20.10.24+dfsg1".into(),
            reported_at: t("2026-11-26T12:00:05Z"),
            agent_version: "0.1.0".into(),
            interval_seconds: 30,
            disk: DiskReport::new(fs, &DiskUsageInput::default()),
            disk_breakdown_at: None,
            high_threshold_percent: 85,
            low_threshold_percent: 80,
            images: vec![],
            gc_runs: vec![],
            truncated: false,
            ..NodeReport::default()
        }
    }

    fn run(n: usize, deletions: usize) -> ReportedRun {
        ReportedRun {
            started_at: t("2026-11-26T12:00:00Z") + jiff::SignedDuration::from_secs(n as i64),
            trigger: "interval".into(),
            usage_percent_before: 90,
            usage_percent_after: 79,
            bytes_freed: 1_000,
            deleted: (0..deletions)
                .map(|d| ReportedDeletion {
                    id: format!("sha256:{n}-{d}"),
                    repo_tags: vec![format!("app:{d}")],
                    reason: "space".into(),
                    bytes: 100,
                    ..ReportedDeletion::default()
                })
                .collect(),
            containers_removed: 0,
            outcome: "ok".into(),
            ..ReportedRun::default()
        }
    }

    #[test]
    fn images_carry_the_planners_verdict_and_their_use() {
        let snapshot = snapshot();
        let policy = Policy::new(PolicySettings {
            min_age: Duration::from_secs(600),
            ..PolicySettings::default()
        })
        .unwrap();
        let plan = plan(&snapshot, &policy, PlanMode::Threshold);
        let images = reported_images(&snapshot, &plan);
        let summary: Vec<_> = images
            .iter()
            .map(|i| (i.id.as_str(), i.in_use, i.keep_reason.as_deref()))
            .collect();
        assert_eq!(
            summary,
            [
                ("sha256:run", true, Some("in-use")),
                ("sha256:new", false, Some("too-young")),
                ("sha256:old", false, Some("not-needed")),
            ]
        );
        assert_eq!(images[0].shared_bytes, 10);
        assert_eq!(images[0].repo_tags, ["app:2"]);
    }

    #[test]
    fn a_container_the_pass_removes_no_longer_holds_its_image() {
        let snapshot = snapshot();
        let policy = Policy::new(PolicySettings {
            min_age: Duration::from_secs(600),
            prune_standalone_containers: true,
            ..PolicySettings::default()
        })
        .unwrap();
        let plan = plan(&snapshot, &policy, PlanMode::Threshold);
        assert_eq!(plan.remove_containers.len(), 1);
        let images = reported_images(&snapshot, &plan);
        let run = images.iter().find(|i| i.id == "sha256:run").unwrap();
        assert!(!run.in_use);
        assert!(
            images.iter().all(|i| i.keep_reason.is_some() || !i.in_use),
            "what the report calls in use, the planner keeps"
        );
    }

    #[test]
    fn an_image_the_planner_would_delete_has_no_keep_reason() {
        let mut snapshot = snapshot();
        snapshot.filesystem.available_bytes = 50;
        let plan = plan(&snapshot, &Policy::default(), PlanMode::Threshold);
        let images = reported_images(&snapshot, &plan);
        let old = images.iter().find(|i| i.id == "sha256:old").unwrap();
        assert_eq!(old.keep_reason, None);
    }

    #[test]
    fn the_wire_format_has_the_documented_names_and_round_trips() {
        let mut report = report();
        report.gc_runs.push(run(1, 1));
        let json: serde_json::Value = serde_json::from_slice(&to_json(&report)).unwrap();
        for key in [
            "node_id",
            "hostname",
            "engine_version",
            "reported_at",
            "agent_version",
            "interval_seconds",
            "disk",
            "disk_breakdown_at",
            "high_threshold_percent",
            "low_threshold_percent",
            "images",
            "gc_runs",
            "truncated",
        ] {
            assert!(json.get(key).is_some(), "{key} missing from {json}");
        }
        assert_eq!(json["reported_at"], "2026-11-26T12:00:05Z");
        assert_eq!(json["disk"]["usage_percent"], 60);
        assert_eq!(json["gc_runs"][0]["deleted"][0]["reason"], "space");
        let back: NodeReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn a_report_without_the_optional_fields_still_reads() {
        let mut json: serde_json::Value = serde_json::from_slice(&to_json(&report())).unwrap();
        let object = json.as_object_mut().unwrap();
        for added_later in [
            "disk_breakdown_at",
            "truncated",
            "data_root",
            "pull_headroom_bytes",
            "pull_headroom",
            "last_pass",
            "unbounded_logs",
        ] {
            object.remove(added_later);
        }
        object.insert("from_a_newer_agent".into(), serde_json::json!(1));
        let back: NodeReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, report());
    }

    #[test]
    fn what_the_server_needs_for_disk_pressure_travels_in_the_report() {
        let mut report = report();
        report.data_root = Some(DataRoot {
            path: "/var/lib/docker".into(),
            mount_point: "/".into(),
            source: "/dev/vda".into(),
            fs_type: "ext4".into(),
            size_bytes: 2_000,
            reserved_bytes: 1_000,
        });
        report.pull_headroom = "auto".into();
        report.pull_headroom_bytes = 64 << 20;
        report.last_pass = Some(LastPass {
            started_at: t("2026-11-26T12:00:00Z"),
            space_trigger: Some("pull-headroom".into()),
            usage_percent_after: 78,
            shortfall_bytes: 3 << 20,
            short_of_low_threshold: false,
            short_of_headroom: true,
        });
        report.unbounded_logs = vec![UnboundedLog {
            container_id: "c1".into(),
            name: "web.1.abc".into(),
            service: Some("web".into()),
            size_bytes: 1 << 30,
        }];
        let json: serde_json::Value = serde_json::from_slice(&to_json(&report)).unwrap();
        assert_eq!(json["data_root"]["mount_point"], "/");
        assert_eq!(json["last_pass"]["short_of_headroom"], true);
        assert_eq!(json["unbounded_logs"][0]["size_bytes"], 1 << 30);
        let back: NodeReport = serde_json::from_value(json).unwrap();
        assert!(back.last_pass.as_ref().unwrap().fell_short());
        assert_eq!(back, report);
    }

    #[test]
    fn usage_round_trips_and_goes_first_when_the_report_is_too_large() {
        let sample = crate::UsageSample {
            taken_at: "2026-11-26T12:00:00Z".parse().unwrap(),
            node: None,
            tasks: vec![crate::TaskUsage {
                task: "k2x9".into(),
                service: "shop_web".into(),
                stack: String::new(),
                slot: "1".into(),
                cpu_ns: 7,
                memory_bytes: 4096,
                memory_limit_bytes: None,
                oom_kills: Some(0),
            }],
        };
        let mut report = report();
        report.gc_runs.push(run(1, 1));
        report.usage = vec![sample.clone(); 50];
        let full = to_json(&report);
        let back: NodeReport = serde_json::from_slice(&full).unwrap();
        assert_eq!(back, report);

        let without_usage = {
            let mut r = report.clone();
            r.usage.clear();
            to_json(&r).len()
        };
        let json = report.to_json_within(without_usage + 1000);
        assert!(json.len() <= without_usage + 1000);
        assert!(report.truncated);
        assert!(!report.usage.is_empty() && report.usage.len() < 50);
        assert_eq!(report.gc_runs.len(), 1, "runs stay while usage can go");
    }

    fn volume(name: &str, size: u64, containers: &[&str]) -> ReportedVolume {
        ReportedVolume {
            name: name.into(),
            driver: "local".into(),
            mountpoint: format!("/var/lib/docker/volumes/{name}/_data"),
            size_bytes: Some(size),
            labels: [("com.docker.stack.namespace".into(), "db".into())].into(),
            containers: containers.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn volumes_round_trip_and_are_cut_from_the_smallest_when_too_large() {
        let mut report = report();
        report.volumes = Some(
            (0..200)
                .map(|i| volume(&format!("vol{i:03}"), 1000 - i, &["db.1.x"]))
                .collect(),
        );
        let json: serde_json::Value = serde_json::from_slice(&to_json(&report)).unwrap();
        assert_eq!(json["volumes"][0]["name"], "vol000");
        assert_eq!(json["volumes"][0]["size_bytes"], 1000);
        assert_eq!(
            json["volumes"][0]["labels"]["com.docker.stack.namespace"],
            "db"
        );
        assert_eq!(json["volumes"][0]["containers"][0], "db.1.x");
        let back: NodeReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);

        let whole = to_json(&report).len();
        let json = report.to_json_within(whole - 5_000);
        assert!(json.len() <= whole - 5_000);
        assert!(report.truncated);
        let volumes = report.volumes.as_ref().unwrap();
        assert!(!volumes.is_empty() && volumes.len() < 200);
        assert_eq!(volumes[0].name, "vol000", "the largest stay");
    }

    #[test]
    fn a_report_without_volumes_says_nothing_of_them() {
        let json: serde_json::Value = serde_json::from_slice(&to_json(&report())).unwrap();
        assert!(json.get("volumes").is_none());
        let back: NodeReport = serde_json::from_value(json).unwrap();
        assert_eq!(back.volumes, None);
    }

    #[test]
    fn a_secret_file_loses_one_trailing_newline() {
        assert_eq!(secret_from_file_content("s3cret\n"), "s3cret");
        assert_eq!(secret_from_file_content("s3cret\r\n"), "s3cret");
        assert_eq!(secret_from_file_content("s3cret"), "s3cret");
        assert_eq!(secret_from_file_content(" s3cret \n\n"), " s3cret \n");
    }

    #[test]
    fn node_key_falls_back_to_the_hostname_outside_a_swarm() {
        let mut report = report();
        assert_eq!(report.node_key(), "lkuqb6oz64hfgcogow5xr6sgp");
        report.node_id.clear();
        assert_eq!(report.node_key(), "hostname:node-1");
    }

    #[test]
    fn a_small_report_is_sent_whole() {
        let mut report = report();
        report.gc_runs = (0..3).map(|n| run(n, 2)).collect();
        let json = report.to_json_within(MAX_REPORT_BYTES);
        assert!(!report.truncated);
        assert_eq!(report.gc_runs.len(), 3);
        assert_eq!(serde_json::from_slice::<NodeReport>(&json).unwrap(), report);
    }

    #[test]
    fn an_oversized_report_loses_its_oldest_runs_first() {
        let mut report = report();
        report.gc_runs = (0..100).map(|n| run(n, 50)).collect();
        report.images = reported_images(
            &snapshot(),
            &plan(&snapshot(), &Policy::default(), PlanMode::Threshold),
        );
        let max = 100_000;
        let json = report.to_json_within(max);
        assert!(json.len() <= max, "{} bytes", json.len());
        assert!(report.truncated);
        assert_eq!(report.images.len(), 3);
        assert!(!report.gc_runs.is_empty() && report.gc_runs.len() < 100);
        assert_eq!(report.gc_runs.last().unwrap(), &run(99, 50));
        assert_eq!(serde_json::from_slice::<NodeReport>(&json).unwrap(), report);
    }

    #[test]
    fn images_are_cut_from_the_smallest_once_they_take_more_room() {
        let mut report = report();
        let snapshot = snapshot();
        let template = reported_images(
            &snapshot,
            &plan(&snapshot, &Policy::default(), PlanMode::Threshold),
        );
        report.images = (0..5_000u64)
            .map(|n| ReportedImage {
                id: format!("sha256:{n:064}"),
                size_bytes: 10_000 - n,
                ..template[0].clone()
            })
            .collect();
        report.gc_runs = vec![run(1, 1)];
        let max = 200_000;
        let json = report.to_json_within(max);
        assert!(json.len() <= max, "{} bytes", json.len());
        assert!(report.truncated);
        assert_eq!(report.gc_runs.len(), 1, "runs are small: they stay");
        assert!(report.images.len() > 100 && report.images.len() < 5_000);
        assert_eq!(report.images[0].size_bytes, 10_000, "the largest stay");
    }

    #[test]
    fn a_report_that_cannot_fit_is_sent_bare() {
        let mut report = report();
        report.gc_runs = vec![run(1, 3)];
        let json = report.to_json_within(10);
        assert!(report.gc_runs.is_empty() && report.images.is_empty() && report.truncated);
        assert_eq!(serde_json::from_slice::<NodeReport>(&json).unwrap(), report);
    }
}
