//! The overview: what needs attention now. Services that are not converged or were rolled
//! back, the latest events, and the lint warnings of the running services grouped by rule.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;
use swarmkeeper_lint::{RunningFinding, Severity};
use swarmkeeper_report::{NodeReport, ReportingState};

use crate::views::nodes::NodeRow;

/// One line of the event feed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    pub at: Timestamp,
    /// `deploy`, `rollback`, `scale`, `redeploy`, `gc`, `gc-shortfall`, `node-down`,
    /// `agent-silent`, `disk-pressure`.
    pub kind: String,
    pub text: String,
    /// A page about it.
    pub link: String,
}

/// A change someone made, from the audit log.
pub struct ChangeRecord<'a> {
    pub at: Timestamp,
    pub who: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub detail: &'a str,
}

/// A GC pass that did something, with its node.
pub struct GcRecord<'a> {
    pub at: Timestamp,
    pub node_id: &'a str,
    pub hostname: &'a str,
    pub images_deleted: usize,
    pub bytes_freed: String,
    pub outcome: &'a str,
}

const CLUSTER_CHANGES: &[&str] = &["deploy", "rollback", "scale", "redeploy"];
/// The audit actions of disk pressure (`crate::pressure`) start with this.
const DISK_PRESSURE: &str = "disk-pressure";

/// The agent's outcome of a GC pass that could not free what its trigger asked for.
const GC_SHORTFALL: &str = "shortfall";

/// The newest `limit` events: changes to the cluster, GC passes (a streak of passes that fell
/// short on a node is one condition, see [`gc_events`]), and nodes that are down or whose agent
/// went silent. A fact is dated when it happened — a down node by Swarm's last change to it
/// (else the agent's last report); `now` only when neither is known.
pub fn events(
    changes: &[ChangeRecord<'_>],
    gc: &[GcRecord<'_>],
    nodes: &[NodeRow],
    now: Timestamp,
    limit: usize,
) -> Vec<Event> {
    let mut events: Vec<Event> = Vec::new();
    for change in changes
        .iter()
        .filter(|c| CLUSTER_CHANGES.contains(&c.action))
    {
        let link = if matches!(change.action, "deploy") || change.detail.contains("revision") {
            format!("/stacks/{}", change.target)
        } else {
            format!("/services/{}", change.target)
        };
        events.push(Event {
            at: change.at,
            kind: change.action.to_owned(),
            text: format!(
                "{} {} {}: {}",
                change.who, change.action, change.target, change.detail
            ),
            link,
        });
    }
    for change in changes
        .iter()
        .filter(|c| c.action.starts_with(DISK_PRESSURE))
    {
        events.push(Event {
            at: change.at,
            kind: DISK_PRESSURE.to_owned(),
            text: change.detail.to_owned(),
            link: format!("/nodes/{}", change.target),
        });
    }
    events.extend(gc_events(gc));
    for node in nodes {
        if !node.role.is_empty() && node.state != "ready" {
            let last_report = match node.agent {
                ReportingState::Silent { since } => Some(since),
                _ => None,
            };
            events.push(Event {
                at: node.state_since.or(last_report).unwrap_or(now),
                kind: "node-down".to_owned(),
                text: format!("node {} is {}", node.hostname, node.state),
                link: format!("/nodes/{}", node.id),
            });
        }
        if let ReportingState::Silent { since } = node.agent {
            let text = if node.agent_stopped_by_drain() {
                format!(
                    "the agent on {} stopped by the drain (no GC or reports while drained)",
                    node.hostname
                )
            } else {
                format!("the agent on {} stopped reporting", node.hostname)
            };
            events.push(Event {
                at: since,
                kind: "agent-silent".to_owned(),
                text,
                link: format!("/nodes/{}", node.id),
            });
        }
    }
    events.sort_by_key(|e| std::cmp::Reverse(e.at));
    events.truncate(limit);
    events
}

/// One event per GC pass, except passes that fell short: the agent retries those every pass
/// while the disk stays full, so consecutive ones on a node are one condition, dated at the
/// first of them — ongoing while it is the node's newest pass, else ended at the last.
/// `gc` may come in any order.
pub fn gc_events(gc: &[GcRecord<'_>]) -> Vec<Event> {
    let mut runs: Vec<&GcRecord<'_>> = gc.iter().collect();
    runs.sort_by_key(|r| (r.node_id, r.at));
    let mut events = Vec::new();
    let mut i = 0;
    while i < runs.len() {
        let first = runs[i];
        let link = format!("/nodes/{}", first.node_id);
        if first.outcome != GC_SHORTFALL {
            events.push(Event {
                at: first.at,
                kind: "gc".to_owned(),
                text: format!(
                    "GC on {}: {} image(s) deleted, {} freed ({})",
                    first.hostname, first.images_deleted, first.bytes_freed, first.outcome
                ),
                link,
            });
            i += 1;
            continue;
        }
        let streak = runs[i..]
            .iter()
            .take_while(|r| r.node_id == first.node_id && r.outcome == GC_SHORTFALL)
            .count();
        let last = runs[i + streak - 1];
        let ongoing = runs
            .get(i + streak)
            .is_none_or(|next| next.node_id != first.node_id);
        let text = if ongoing {
            format!(
                "GC on {} falls short: {streak} pass(es) so far could not free enough",
                first.hostname
            )
        } else {
            format!(
                "GC on {} fell short for {streak} pass(es), until {}",
                first.hostname,
                last.at.strftime("%Y-%m-%d %H:%M:%S UTC")
            )
        };
        events.push(Event {
            at: first.at,
            kind: "gc-shortfall".to_owned(),
            text,
            link,
        });
        i += streak;
    }
    events
}

/// A container whose `json-file` log has no size limit, with its node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnboundedLogRow {
    pub node_id: String,
    pub hostname: String,
    pub container_id: String,
    pub name: String,
    pub service: Option<String>,
    pub size_bytes: u64,
}

/// The `limit` largest unbounded logs of every node's latest report, largest first.
pub fn largest_unbounded_logs(
    reports: &[(NodeReport, Timestamp)],
    limit: usize,
) -> Vec<UnboundedLogRow> {
    let mut rows: Vec<UnboundedLogRow> = reports
        .iter()
        .flat_map(|(report, _)| {
            report.unbounded_logs.iter().map(|log| UnboundedLogRow {
                node_id: report.node_key(),
                hostname: report.hostname.clone(),
                container_id: log.container_id.clone(),
                name: log.name.clone(),
                service: log.service.clone(),
                size_bytes: log.size_bytes,
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        b.size_bytes
            .cmp(&a.size_bytes)
            .then_with(|| a.container_id.cmp(&b.container_id))
    });
    rows.truncate(limit);
    rows
}

/// Services with the same finding, for one line per rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WarningGroup {
    pub rule: &'static str,
    pub severity: Severity,
    pub message: String,
    pub why: &'static str,
    pub fix: &'static str,
    pub services: Vec<String>,
}

/// Errors and warnings (not infos) of every running service, one group per rule, errors
/// first.
pub fn warning_groups<'a>(
    findings: impl IntoIterator<Item = (&'a str, Vec<RunningFinding>)>,
) -> Vec<WarningGroup> {
    let mut groups: BTreeMap<(Severity, &'static str), WarningGroup> = BTreeMap::new();
    for (service, found) in findings {
        for finding in found.into_iter().filter(|f| f.severity != Severity::Info) {
            groups
                .entry((finding.severity, finding.rule))
                .or_insert_with(|| WarningGroup {
                    rule: finding.rule,
                    severity: finding.severity,
                    message: finding.message.clone(),
                    why: finding.why,
                    fix: finding.fix,
                    services: Vec::new(),
                })
                .services
                .push(service.to_owned());
        }
    }
    groups.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn only_cluster_changes_and_gc_make_events_newest_first() {
        let changes = [
            ChangeRecord {
                at: t("2026-11-26T10:00:00Z"),
                who: "ann",
                action: "login",
                target: "127.0.0.1",
                detail: "",
            },
            ChangeRecord {
                at: t("2026-11-26T11:00:00Z"),
                who: "ann",
                action: "scale",
                target: "web",
                detail: "replicas=3",
            },
            ChangeRecord {
                at: t("2026-11-26T12:00:00Z"),
                who: "bob",
                action: "deploy",
                target: "shop",
                detail: "succeeded (revision 4)",
            },
        ];
        let gc = [GcRecord {
            at: t("2026-11-26T11:30:00Z"),
            node_id: "n1",
            hostname: "w1",
            images_deleted: 2,
            bytes_freed: "1.0 GiB".into(),
            outcome: "ok",
        }];
        let events = events(&changes, &gc, &[], t("2026-11-26T13:00:00Z"), 10);
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["deploy", "gc", "scale"]);
        assert_eq!(events[0].link, "/stacks/shop");
        assert_eq!(events[2].link, "/services/web");
        assert_eq!(
            events[1].text,
            "GC on w1: 2 image(s) deleted, 1.0 GiB freed (ok)"
        );
    }

    fn gc_run<'a>(at: &str, node_id: &'a str, outcome: &'a str) -> GcRecord<'a> {
        GcRecord {
            at: t(at),
            node_id,
            hostname: node_id,
            images_deleted: 0,
            bytes_freed: "0 B".into(),
            outcome,
        }
    }

    #[test]
    fn a_streak_of_gc_shortfalls_is_one_condition_dated_at_its_start() {
        let gc = [
            gc_run("2026-11-26T10:02:00Z", "w1", "shortfall"),
            gc_run("2026-11-26T10:00:00Z", "w1", "ok"),
            gc_run("2026-11-26T10:00:30Z", "w1", "shortfall"),
            gc_run("2026-11-26T10:01:00Z", "w1", "shortfall"),
            gc_run("2026-11-26T10:01:30Z", "w2", "shortfall"),
        ];
        let seen: Vec<(Timestamp, String, String)> = gc_events(&gc)
            .into_iter()
            .map(|e| (e.at, e.kind, e.text))
            .collect();
        assert_eq!(
            seen,
            [
                (
                    t("2026-11-26T10:00:00Z"),
                    "gc".into(),
                    "GC on w1: 0 image(s) deleted, 0 B freed (ok)".into()
                ),
                (
                    t("2026-11-26T10:00:30Z"),
                    "gc-shortfall".into(),
                    "GC on w1 falls short: 3 pass(es) so far could not free enough".into()
                ),
                (
                    t("2026-11-26T10:01:30Z"),
                    "gc-shortfall".into(),
                    "GC on w2 falls short: 1 pass(es) so far could not free enough".into()
                ),
            ]
        );
    }

    #[test]
    fn a_gc_shortfall_streak_ends_at_the_next_pass_that_freed_enough() {
        let gc = [
            gc_run("2026-11-26T10:00:00Z", "w1", "shortfall"),
            gc_run("2026-11-26T10:00:30Z", "w1", "shortfall"),
            gc_run("2026-11-26T10:01:00Z", "w1", "ok"),
            gc_run("2026-11-26T10:01:30Z", "w1", "shortfall"),
        ];
        let seen: Vec<(Timestamp, String)> =
            gc_events(&gc).into_iter().map(|e| (e.at, e.text)).collect();
        assert_eq!(
            seen[0],
            (
                t("2026-11-26T10:00:00Z"),
                "GC on w1 fell short for 2 pass(es), until 2026-11-26 10:00:30 UTC".into()
            )
        );
        assert_eq!(seen[1].0, t("2026-11-26T10:01:00Z"));
        assert_eq!(
            seen[2],
            (
                t("2026-11-26T10:01:30Z"),
                "GC on w1 falls short: 1 pass(es) so far could not free enough".into()
            )
        );
    }

    #[test]
    fn a_down_node_is_dated_by_swarm_then_by_its_last_report_never_by_the_request() {
        let now = t("2026-11-26T13:00:00Z");
        let node = |id: &str, state: &str, state_since: Option<&str>, agent| NodeRow {
            id: id.into(),
            hostname: id.into(),
            role: "worker".into(),
            leader: false,
            availability: "active".into(),
            disk_pressure: None,
            state: state.into(),
            engine_version: String::new(),
            agent,
            agent_version: None,
            disk: None,
            images: None,
            last_gc: None,
            freed_today_bytes: 0,
            state_since: state_since.map(t),
            removed: false,
        };
        let nodes = [
            node(
                "ready",
                "ready",
                Some("2026-11-26T09:00:00Z"),
                ReportingState::Reporting,
            ),
            node(
                "swarm-dated",
                "down",
                Some("2026-11-26T12:00:00Z"),
                ReportingState::Reporting,
            ),
            node(
                "report-dated",
                "down",
                None,
                ReportingState::Silent {
                    since: t("2026-11-26T11:00:00Z"),
                },
            ),
            node("unknown", "unknown", None, ReportingState::Never),
        ];
        let events = events(&[], &[], &nodes, now, 10);
        let seen: Vec<(Timestamp, &str)> = events
            .iter()
            .filter(|e| e.kind == "node-down")
            .map(|e| (e.at, e.link.trim_start_matches("/nodes/")))
            .collect();
        assert_eq!(
            seen,
            [
                (now, "unknown"),
                (t("2026-11-26T12:00:00Z"), "swarm-dated"),
                (t("2026-11-26T11:00:00Z"), "report-dated"),
            ]
        );
    }

    /// Tryout finding 6: a drained node's agent was called "silent"; Swarm stopped it with the
    /// drain.
    #[test]
    fn an_agent_stopped_by_a_drain_is_said_so_not_silent() {
        let now = t("2026-11-26T13:00:00Z");
        let since = t("2026-11-26T12:58:00Z");
        let node = |id: &str, availability: &str| NodeRow {
            id: id.into(),
            hostname: id.into(),
            role: "worker".into(),
            leader: false,
            availability: availability.into(),
            disk_pressure: None,
            state: "ready".into(),
            engine_version: String::new(),
            agent: ReportingState::Silent { since },
            agent_version: None,
            disk: None,
            images: None,
            last_gc: None,
            freed_today_bytes: 0,
            state_since: None,
            removed: false,
        };
        let nodes = [node("drained", "drain"), node("paused", "pause")];
        assert!(nodes[0].agent_stopped_by_drain());
        assert!(!nodes[1].agent_stopped_by_drain());
        let texts: Vec<String> = events(&[], &[], &nodes, now, 10)
            .into_iter()
            .map(|e| e.text)
            .collect();
        assert_eq!(
            texts,
            [
                "the agent on drained stopped by the drain (no GC or reports while drained)",
                "the agent on paused stopped reporting",
            ]
        );
        let mut reporting = node("drained", "drain");
        reporting.agent = ReportingState::Reporting;
        assert!(!reporting.agent_stopped_by_drain());
    }

    #[test]
    fn the_largest_unbounded_logs_of_all_nodes_come_first() {
        let report = |node: &str, logs: &[(&str, u64)]| NodeReport {
            node_id: node.into(),
            hostname: format!("host-{node}"),
            unbounded_logs: logs
                .iter()
                .map(|(id, size)| swarmkeeper_report::UnboundedLog {
                    container_id: (*id).into(),
                    name: format!("web.{id}"),
                    service: Some("web".into()),
                    size_bytes: *size,
                })
                .collect(),
            ..NodeReport::default()
        };
        let at = t("2026-11-26T12:00:00Z");
        let reports = [
            (report("n1", &[("a", 10), ("b", 300)]), at),
            (report("n2", &[("c", 200)]), at),
        ];
        let rows = largest_unbounded_logs(&reports, 2);
        let seen: Vec<(&str, &str, u64)> = rows
            .iter()
            .map(|r| (r.hostname.as_str(), r.container_id.as_str(), r.size_bytes))
            .collect();
        assert_eq!(seen, [("host-n1", "b", 300), ("host-n2", "c", 200)]);
    }

    #[test]
    fn disk_pressure_changes_are_events_about_the_node() {
        let changes = [
            ChangeRecord {
                at: t("2026-11-26T11:00:00Z"),
                who: "swarmkeeper",
                action: "disk-pressure-pause",
                target: "n1",
                detail: "paused w1: disk 96% >= 95% and GC could not free enough",
            },
            ChangeRecord {
                at: t("2026-11-26T11:10:00Z"),
                who: "swarmkeeper",
                action: "disk-pressure-release",
                target: "n1",
                detail: "set w1 active again: usage stayed below its high threshold",
            },
        ];
        let events = events(&changes, &[], &[], t("2026-11-26T13:00:00Z"), 10);
        let seen: Vec<(&str, &str, &str)> = events
            .iter()
            .map(|e| (e.kind.as_str(), e.link.as_str(), e.text.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                (
                    "disk-pressure",
                    "/nodes/n1",
                    "set w1 active again: usage stayed below its high threshold"
                ),
                (
                    "disk-pressure",
                    "/nodes/n1",
                    "paused w1: disk 96% >= 95% and GC could not free enough"
                ),
            ]
        );
    }

    #[test]
    fn warnings_group_by_rule_with_errors_first_and_no_infos() {
        let bare = json!({"TaskTemplate": {"LogDriver": {"Name": "none"}}});
        let safe = json!({"TaskTemplate": {"LogDriver": {"Name": "local"}, "RestartPolicy": {"Condition": "none"}}, "UpdateConfig": {"FailureAction": "pause"}});
        let default_logs = json!({"TaskTemplate": {"RestartPolicy": {"Condition": "any"}}, "UpdateConfig": {"FailureAction": "pause"}});
        let lint = |spec: &serde_json::Value| {
            swarmkeeper_lint::lint_running(&swarmkeeper_engine::ServiceView::read(spec).unwrap())
        };
        let groups = warning_groups([
            ("a", lint(&bare)),
            ("b", lint(&bare)),
            ("c", lint(&safe)),
            ("d", lint(&default_logs)),
        ]);
        let rules: Vec<(&str, Vec<String>)> = groups
            .iter()
            .map(|g| (g.rule, g.services.clone()))
            .collect();
        assert_eq!(
            rules,
            [
                ("SK001", vec!["a".to_owned(), "b".to_owned()]),
                ("SK010", vec!["a".to_owned(), "b".to_owned()]),
                ("SK011", vec!["c".to_owned(), "d".to_owned()]),
                ("SK021", vec!["d".to_owned()]),
            ]
        );
    }
}
