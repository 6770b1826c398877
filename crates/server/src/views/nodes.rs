//! Nodes as the dashboard shows them: what Swarm says about each node joined with what its
//! agent last reported (disk, images, GC).

use std::collections::HashMap;

use jiff::Timestamp;
use serde::Serialize;
use swarmkeeper_engine::SwarmNode;
use swarmkeeper_report::{node_reporting_state, NodeReport, ReportingState, PRESSURE_LABEL};

/// A node's disk against its agent's GC thresholds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DiskBar {
    pub capacity_bytes: u64,
    pub used_bytes: u64,
    /// Kubelet arithmetic, as the agent computes it.
    pub usage_percent: u8,
    pub high_threshold_percent: u8,
    pub low_threshold_percent: u8,
}

impl DiskBar {
    /// `ok` below the low threshold, `high` between the two, `over` at or above the high one.
    pub fn level(&self) -> &'static str {
        if self.usage_percent >= self.high_threshold_percent {
            "over"
        } else if self.usage_percent >= self.low_threshold_percent {
            "high"
        } else {
            "ok"
        }
    }
}

/// What the dashboard says of a node's agent, on its pages and in their JSON alike (tryout
/// finding 9: the JSON called "silent" the agent the page said the drain stopped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AgentState {
    Reporting,
    /// No report for longer than `swarmkeeper_report::silent_after` the node's interval;
    /// `since` is the last report received.
    Silent {
        since: Timestamp,
    },
    /// Silent on a drained node: Swarm stopped the agent, a global task, with the drain, so
    /// it is expected (no GC and no reports while drained), the same test alerting makes
    /// (`Membership::Drained`, tryout finding 6); `since` is the last report received.
    StoppedByDrain {
        since: Timestamp,
    },
    /// The server has never received a report from the node.
    Never,
}

impl AgentState {
    /// The agent's [`ReportingState`] on a node of `availability` (`active`, `pause`,
    /// `drain`; empty outside the swarm).
    pub fn of(reporting: ReportingState, availability: &str) -> AgentState {
        match reporting {
            ReportingState::Reporting => AgentState::Reporting,
            ReportingState::Silent { since } if availability == "drain" => {
                AgentState::StoppedByDrain { since }
            }
            ReportingState::Silent { since } => AgentState::Silent { since },
            ReportingState::Never => AgentState::Never,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeRow {
    /// The Swarm node ID, or `hostname:NAME` for an engine outside the swarm that reports.
    pub id: String,
    pub hostname: String,
    /// `manager` or `worker`; empty for a reporting engine outside the swarm.
    pub role: String,
    pub leader: bool,
    /// `active`, `pause` or `drain`.
    pub availability: String,
    /// Why swarmkeeper paused the node for disk pressure (its [`PRESSURE_LABEL`]); `None`
    /// when it did not.
    pub disk_pressure: Option<String>,
    /// `ready`, `down`, `unknown`, `disconnected`.
    pub state: String,
    pub engine_version: String,
    pub agent: AgentState,
    pub agent_version: Option<String>,
    pub disk: Option<DiskBar>,
    pub images: Option<usize>,
    /// The start of the agent's newest GC pass, whatever it did: [`last_gc_pass`], the one
    /// source the list and the node page share.
    pub last_gc: Option<Timestamp>,
    /// Freed by GC since midnight UTC.
    pub freed_today_bytes: u64,
    /// Swarm's `UpdatedAt` of the node, which moves when its status does: since when the node
    /// is in `state`. `None` for an engine outside the swarm.
    pub state_since: Option<Timestamp>,
    /// A Swarm node ID that Swarm's node list no longer holds (`docker node rm`, or "Remove
    /// from the swarm"): kept only for its stored reports, out of the node list and the
    /// overview, under "Removed nodes" — the same test alerting makes (`Membership::Removed`).
    pub removed: bool,
}

/// What the store knows of a node beyond its latest report.
#[derive(Clone, Debug, Default)]
pub struct NodeHistory {
    /// The start of the newest stored GC run (a pass that deleted or removed something).
    pub last_gc: Option<Timestamp>,
    pub freed_today_bytes: u64,
}

pub fn disk_bar(report: &NodeReport) -> DiskBar {
    DiskBar {
        capacity_bytes: report.disk.filesystem.capacity_bytes,
        used_bytes: report.disk.used_bytes,
        usage_percent: report.disk.usage_percent,
        high_threshold_percent: report.high_threshold_percent,
        low_threshold_percent: report.low_threshold_percent,
    }
}

/// When the node's agent last ran a GC pass: the pass its latest report describes (every
/// pass, also one with nothing to free); from an agent that reports none (an older one), the
/// newest stored run, which only a pass that deleted something leaves.
pub fn last_gc_pass(report: Option<&NodeReport>, history: &NodeHistory) -> Option<Timestamp> {
    let reported = report
        .and_then(|r| r.last_pass.as_ref())
        .map(|p| p.started_at);
    reported.max(history.last_gc)
}

/// One row per Swarm node, then one per reporting engine Swarm does not list (a node that
/// left, or an engine outside the swarm), sorted managers first, then by hostname.
pub fn node_rows(
    nodes: &[SwarmNode],
    reports: &[(NodeReport, Timestamp)],
    history: &HashMap<String, NodeHistory>,
    now: Timestamp,
) -> Vec<NodeRow> {
    let by_key: HashMap<String, &(NodeReport, Timestamp)> = reports
        .iter()
        .map(|entry| (entry.0.node_key(), entry))
        .collect();
    let row = |id: &str, report: Option<&(NodeReport, Timestamp)>| {
        let mut history = history.get(id).cloned().unwrap_or_default();
        history.last_gc = last_gc_pass(report.map(|(r, _)| r), &history);
        let (agent, agent_version, disk, images) = match report {
            Some((report, received)) => (
                node_reporting_state(Some(*received), report.interval_seconds, now),
                Some(report.agent_version.clone()),
                Some(disk_bar(report)),
                Some(report.disk.image_count),
            ),
            None => (ReportingState::Never, None, None, None),
        };
        (agent, agent_version, disk, images, history)
    };
    let mut rows: Vec<NodeRow> = nodes
        .iter()
        .map(|node| {
            let (agent, agent_version, disk, images, history) =
                row(&node.id, by_key.get(&node.id).copied());
            NodeRow {
                id: node.id.clone(),
                hostname: node.hostname.clone(),
                role: node.role.clone(),
                leader: node.leader,
                availability: node.availability.clone(),
                disk_pressure: node.labels.get(PRESSURE_LABEL).cloned(),
                state: node.state.clone(),
                engine_version: node.engine_version.clone(),
                agent: AgentState::of(agent, &node.availability),
                agent_version,
                disk,
                images,
                last_gc: history.last_gc,
                freed_today_bytes: history.freed_today_bytes,
                state_since: node.updated_at,
                removed: false,
            }
        })
        .collect();
    for entry in reports {
        let key = entry.0.node_key();
        if nodes.iter().any(|n| n.id == key) {
            continue;
        }
        let (agent, agent_version, disk, images, history) = row(&key, Some(entry));
        let removed = !entry.0.node_id.is_empty();
        rows.push(NodeRow {
            hostname: entry.0.hostname.clone(),
            role: String::new(),
            leader: false,
            availability: String::new(),
            disk_pressure: None,
            state: if removed { "removed" } else { "not in swarm" }.to_owned(),
            engine_version: entry.0.engine_version.clone(),
            id: key,
            agent: AgentState::of(agent, ""),
            agent_version,
            disk,
            images,
            last_gc: history.last_gc,
            freed_today_bytes: history.freed_today_bytes,
            state_since: None,
            removed,
        });
    }
    rows.sort_by(|a, b| {
        (a.role != "manager", &a.hostname).cmp(&(b.role != "manager", &b.hostname))
    });
    rows
}

/// Whether a node swarmkeeper paused for disk pressure now belongs to an operator: it is not
/// active, no longer carries [`PRESSURE_LABEL`] (removed by hand, or by swarmkeeper when the
/// operator changed its availability), and swarmkeeper's last disk-pressure action on it
/// (`last_pressure_action`, from the audit log) was a pause or leaving it to its operator,
/// not a release. Such a node is never set active again by swarmkeeper
/// (`swarmkeeper_report::disk_pressure`), and its page says so.
pub fn taken_over_after_pressure(
    availability: &str,
    labelled: bool,
    last_pressure_action: Option<&str>,
) -> bool {
    availability != "active"
        && !labelled
        && matches!(
            last_pressure_action,
            Some(crate::pressure::PAUSE_ACTION | crate::pressure::FORGET_ACTION)
        )
}

/// Midnight UTC of `now`'s day: "freed today" is counted from there.
pub fn start_of_day(now: Timestamp) -> Timestamp {
    let seconds = now.as_second();
    Timestamp::from_second(seconds - seconds.rem_euclid(86_400)).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use swarmkeeper_gc::{DiskReport, Filesystem};

    fn node(id: &str, hostname: &str, role: &str) -> SwarmNode {
        SwarmNode {
            id: id.into(),
            version: 1,
            hostname: hostname.into(),
            role: role.into(),
            availability: "active".into(),
            labels: BTreeMap::new(),
            state: "ready".into(),
            status_message: String::new(),
            addr: String::new(),
            leader: role == "manager",
            manager_reachability: None,
            engine_version: "20.10".into(),
            nano_cpus: 0,
            memory_bytes: 0,
            os: String::new(),
            architecture: String::new(),
            engine_labels: BTreeMap::new(),
            log_drivers: Vec::new(),
            created_at: None,
            updated_at: None,
            spec: serde_json::Value::Null,
        }
    }

    fn report(node_id: &str, hostname: &str, usage: u8) -> NodeReport {
        NodeReport {
            node_id: node_id.into(),
            hostname: hostname.into(),
            engine_version: "20.10".into(),
            reported_at: "2026-11-26T11:59:50Z".parse().unwrap(),
            agent_version: "0.1.0".into(),
            interval_seconds: 30,
            disk: DiskReport {
                filesystem: Filesystem {
                    path: "/var/lib/docker".into(),
                    capacity_bytes: 100,
                    available_bytes: 100 - u64::from(usage),
                },
                usage_percent: usage,
                used_bytes: u64::from(usage),
                image_count: 3,
                images_unique_bytes: 0,
                images_shared_bytes: 0,
                container_count: 0,
                containers_bytes: 0,
                logs_bytes: None,
                volume_count: 0,
                volumes_bytes: 0,
                build_cache_bytes: 0,
                other_bytes: 0,
            },
            disk_breakdown_at: None,
            high_threshold_percent: 85,
            low_threshold_percent: 80,
            images: Vec::new(),
            gc_runs: Vec::new(),
            truncated: false,
            ..NodeReport::default()
        }
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn swarm_nodes_join_their_reports_and_strangers_are_listed_after() {
        let nodes = [
            node("w1", "worker-1", "worker"),
            node("m1", "manager-1", "manager"),
            node("w2", "worker-2", "worker"),
        ];
        let reports = [
            (report("w1", "worker-1", 90), t("2026-11-26T11:59:55Z")),
            (report("m1", "manager-1", 40), t("2026-11-26T11:50:00Z")),
            (report("", "laptop", 10), t("2026-11-26T11:59:00Z")),
        ];
        let rows = node_rows(&nodes, &reports, &HashMap::new(), t("2026-11-26T12:00:00Z"));
        let names: Vec<&str> = rows.iter().map(|r| r.hostname.as_str()).collect();
        assert_eq!(names, ["manager-1", "laptop", "worker-1", "worker-2"]);
        assert_eq!(
            rows[0].agent,
            AgentState::Silent {
                since: t("2026-11-26T11:50:00Z")
            }
        );
        assert_eq!(rows[2].agent, AgentState::Reporting);
        assert_eq!(rows[2].disk.as_ref().unwrap().level(), "over");
        assert_eq!(rows[3].agent, AgentState::Never);
        assert_eq!(rows[1].id, "hostname:laptop");
        assert_eq!(rows[1].state, "not in swarm");
        assert_eq!(rows[2].disk_pressure, None);
        assert!(
            rows.iter().all(|r| !r.removed),
            "an engine outside a swarm is not removed"
        );
    }

    /// Tryout finding 9: the JSON called the agent of a drained node "silent" while its page
    /// said the drain stopped it.
    #[test]
    fn the_json_says_the_drain_stopped_a_drained_nodes_agent() {
        let mut drained = node("w1", "worker-1", "worker");
        drained.availability = "drain".into();
        let mut paused = node("w2", "worker-2", "worker");
        paused.availability = "pause".into();
        let mut active = node("w3", "worker-3", "worker");
        active.availability = "active".into();
        let last = t("2026-11-26T11:50:00Z");
        let reports = [
            (report("w1", "worker-1", 40), last),
            (report("w2", "worker-2", 40), last),
            (report("w3", "worker-3", 40), t("2026-11-26T11:59:55Z")),
        ];
        let rows = node_rows(
            &[drained, paused, active],
            &reports,
            &HashMap::new(),
            t("2026-11-26T12:00:00Z"),
        );
        let agents: Vec<serde_json::Value> = rows
            .iter()
            .map(|row| serde_json::to_value(row).unwrap()["agent"].clone())
            .collect();
        assert_eq!(
            agents,
            [
                serde_json::json!({"state": "stopped_by_drain", "since": "2026-11-26T11:50:00Z"}),
                serde_json::json!({"state": "silent", "since": "2026-11-26T11:50:00Z"}),
                serde_json::json!({"state": "reporting"}),
            ]
        );
    }

    #[test]
    fn a_reporting_node_swarm_no_lists_is_removed() {
        let nodes = [node("m1", "manager-1", "manager")];
        let reports = [(report("w2", "worker-2", 86), t("2026-11-26T11:59:00Z"))];
        let rows = node_rows(&nodes, &reports, &HashMap::new(), t("2026-11-26T12:00:00Z"));
        assert!(!rows[0].removed);
        assert!(rows[1].removed);
        assert_eq!(rows[1].state, "removed");
    }

    #[test]
    fn a_node_swarmkeeper_paused_says_why() {
        let mut full = node("w1", "worker-1", "worker");
        full.availability = "pause".into();
        full.labels.insert(
            PRESSURE_LABEL.into(),
            "disk 96% >= 95% and GC could not free enough".into(),
        );
        let rows = node_rows(&[full], &[], &HashMap::new(), t("2026-11-26T12:00:00Z"));
        assert_eq!(
            rows[0].disk_pressure.as_deref(),
            Some("disk 96% >= 95% and GC could not free enough")
        );
    }

    #[test]
    fn disk_levels_follow_the_thresholds() {
        let bar = |usage| disk_bar(&report("n", "n", usage)).level();
        assert_eq!(bar(79), "ok");
        assert_eq!(bar(80), "high");
        assert_eq!(bar(85), "over");
    }

    #[test]
    fn today_starts_at_midnight_utc() {
        assert_eq!(
            start_of_day(t("2026-11-26T17:45:12Z")),
            t("2026-11-26T00:00:00Z")
        );
    }

    #[test]
    fn a_paused_node_whose_mark_went_belongs_to_its_operator() {
        use crate::pressure::{FORGET_ACTION, PAUSE_ACTION, RELEASE_ACTION};
        // The tryout's case: the label dropped by a label save, the node still paused.
        assert!(taken_over_after_pressure(
            "pause",
            false,
            Some(PAUSE_ACTION)
        ));
        // The operator drained it, swarmkeeper let go.
        assert!(taken_over_after_pressure(
            "drain",
            false,
            Some(FORGET_ACTION)
        ));
        // Still swarmkeeper's: it says so with the label's reason instead.
        assert!(!taken_over_after_pressure(
            "pause",
            true,
            Some(PAUSE_ACTION)
        ));
        // Released, or never paused by swarmkeeper: an operator's own pause.
        assert!(!taken_over_after_pressure(
            "pause",
            false,
            Some(RELEASE_ACTION)
        ));
        assert!(!taken_over_after_pressure("pause", false, None));
        assert!(!taken_over_after_pressure(
            "active",
            false,
            Some(FORGET_ACTION)
        ));
    }
}
