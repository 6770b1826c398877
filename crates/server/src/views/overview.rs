//! The overview: what needs attention now. Services that are not converged or were rolled
//! back, the latest events, and the lint warnings of the running services grouped by rule.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;
use swarmkeeper_alerts::RuleId;
use swarmkeeper_auth::Action;
use swarmkeeper_lint::{RunningFinding, Severity};
use swarmkeeper_report::NodeReport;

use crate::views::nodes::{AgentState, NodeRow};

/// One line of the event feed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    pub at: Timestamp,
    /// A change made through swarmkeeper: its audit name (`deploy`, `rollback`, `scale`,
    /// `redeploy`, `remove`, `create-service`, `edit-service`, `edit-service-as-compose`,
    /// `edit-stack-as-compose`, `auto-deploy`, `create-secret`, `rotate-secret`,
    /// `remove-secret`, `rekey-secret`, the same for configs, `manage-nodes`,
    /// `manage-networks`, `remove-volumes`: every audit entry for which
    /// `swarmkeeper_auth::Action::of_audit` names an action that changes the cluster);
    /// `disk-pressure`; `gc`, `gc-shortfall`; `node-down`, `node-up`, `agent-silent`,
    /// `agent-back`.
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

/// A GC pass the agent reported, with its node.
pub struct GcRecord<'a> {
    pub at: Timestamp,
    pub node_id: &'a str,
    pub hostname: &'a str,
    pub images_deleted: usize,
    /// Dead task containers removed.
    pub containers_removed: u64,
    /// Bytes the engine reclaimed from the build cache.
    pub build_cache_freed_bytes: u64,
    /// Measured with statvfs, formatted (`1.0 GiB`): what else happened on the disk counts.
    pub bytes_freed: String,
    /// `ok`, `partial` (the engine refused some steps) or `shortfall`.
    pub outcome: &'a str,
}

impl GcRecord<'_> {
    /// What the pass deleted, each kind it touched: `2 image(s) deleted, 1 finished
    /// container(s) removed, 4.0 KiB of build cache` (tryout 12 finding 7: a pass that removed
    /// a container read "0 image(s) deleted"); `nothing deleted` for a pass that deleted none.
    fn what_went(&self) -> String {
        let mut parts = Vec::new();
        if self.images_deleted > 0 {
            parts.push(format!("{} image(s) deleted", self.images_deleted));
        }
        if self.containers_removed > 0 {
            parts.push(format!(
                "{} finished container(s) removed",
                self.containers_removed
            ));
        }
        if self.build_cache_freed_bytes > 0 {
            parts.push(format!(
                "{} of build cache",
                swarmkeeper_units::bytes(self.build_cache_freed_bytes)
            ));
        }
        if parts.is_empty() {
            "nothing deleted".to_owned()
        } else {
            parts.join(", ")
        }
    }

    /// The pass deleted nothing and all went well: every interval's pass on a disk with room
    /// ends so (tryout finding 15: they buried the events).
    fn idle(&self) -> bool {
        self.images_deleted == 0
            && self.containers_removed == 0
            && self.build_cache_freed_bytes == 0
            && self.outcome == GC_OK
    }
}

/// A message of the alert history about a node (rules [`NODE_RULES`]): the server records
/// each firing and resolved one with the times of the fact, so a node that went down and came
/// back leaves its events there.
pub struct NodeAlertRecord<'a> {
    /// `node-down` or `agent-silent`.
    pub rule: &'a str,
    /// The node's hostname.
    pub subject: &'a str,
    /// `firing` or `resolved`.
    pub status: &'a str,
    pub summary: &'a str,
    /// When the condition was first seen holding.
    pub started_at: Timestamp,
    /// When a resolved message's condition was seen no longer holding; else when it was sent.
    pub ended_at: Timestamp,
}

/// The alert rules whose history [`events`] reads: a node down, an agent silent.
pub const NODE_RULES: [&str; 2] = [RuleId::NodeDown.as_str(), RuleId::AgentSilent.as_str()];

/// The audit actions of disk pressure (`crate::pressure`) start with this.
const DISK_PRESSURE: &str = "disk-pressure";

/// The agent's outcome of a GC pass that could not free what its trigger asked for.
const GC_SHORTFALL: &str = "shortfall";
/// The agent's outcome of a GC pass that did all it set out to.
const GC_OK: &str = "ok";

/// The newest `limit` events: every change to the cluster made through swarmkeeper (the audit
/// entries whose action changes the cluster, `swarmkeeper_auth::Action::changes_cluster`),
/// disk pressure, GC passes that did something (a streak of passes that fell short on a node
/// is one condition, see [`gc_events`]), nodes that went down or came back and agents that
/// went silent or came back (from the alert history, `node_alerts`), and nodes that are down
/// or whose agent is silent or stopped by a drain now without an alert that says so yet
/// (`nodes`). A fact is dated when it happened — a down node by Swarm's last change to it
/// (else the agent's last report); `now` only when neither is known.
pub fn events(
    changes: &[ChangeRecord<'_>],
    gc: &[GcRecord<'_>],
    node_alerts: &[NodeAlertRecord<'_>],
    nodes: &[NodeRow],
    now: Timestamp,
    limit: usize,
) -> Vec<Event> {
    let node_link = |hostname: &str| {
        nodes
            .iter()
            .find(|n| n.hostname == hostname)
            .map_or_else(|| "/nodes".to_owned(), |n| format!("/nodes/{}", n.id))
    };
    let mut events: Vec<Event> = Vec::new();
    for change in changes {
        let Some(action) = Action::of_audit(change.action).filter(|a| a.changes_cluster()) else {
            continue;
        };
        events.push(Event {
            at: change.at,
            kind: change.action.to_owned(),
            text: format!(
                "{} {} {}: {}",
                change.who, change.action, change.target, change.detail
            ),
            link: change_link(action, change, &node_link),
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
    let ongoing = node_alert_events(node_alerts, &node_link, &mut events);
    for node in nodes {
        let alerted = |rule: RuleId| ongoing.contains(&(rule.as_str(), node.hostname.as_str()));
        if !node.role.is_empty() && node.state != "ready" && !alerted(RuleId::NodeDown) {
            let last_report = match node.agent {
                AgentState::Silent { since } | AgentState::StoppedByDrain { since } => Some(since),
                AgentState::Reporting | AgentState::Never => None,
            };
            events.push(Event {
                at: node.state_since.or(last_report).unwrap_or(now),
                kind: RuleId::NodeDown.as_str().to_owned(),
                text: format!("node {} is {}", node.hostname, node.state),
                link: format!("/nodes/{}", node.id),
            });
        }
        let (since, text) = match node.agent {
            AgentState::StoppedByDrain { since } => (
                since,
                format!(
                    "the agent on {} stopped by the drain (no GC or reports while drained)",
                    node.hostname
                ),
            ),
            AgentState::Silent { since } if !alerted(RuleId::AgentSilent) => (
                since,
                format!("the agent on {} stopped reporting", node.hostname),
            ),
            _ => continue,
        };
        events.push(Event {
            at: since,
            kind: RuleId::AgentSilent.as_str().to_owned(),
            text,
            link: format!("/nodes/{}", node.id),
        });
    }
    events.sort_by_key(|e| std::cmp::Reverse(e.at));
    events.truncate(limit);
    events
}

/// The page about a change to the cluster of the kind `action`.
fn change_link(
    action: Action,
    change: &ChangeRecord<'_>,
    node_link: &dyn Fn(&str) -> String,
) -> String {
    let stack = change.action == Action::Deploy.as_str()
        || change.action.contains("stack")
        || change.detail.contains("revision");
    match action {
        Action::Deploy | Action::Rollback | Action::Scale | Action::Redeploy if stack => {
            format!("/stacks/{}", change.target)
        }
        // The service or stack is gone: the list it left.
        Action::Remove if change.detail.starts_with("service") => "/services".to_owned(),
        Action::Remove => "/stacks".to_owned(),
        Action::ManageSecrets if change.action.ends_with("config") => "/configs".to_owned(),
        Action::ManageSecrets => "/secrets".to_owned(),
        // Audited by hostname.
        Action::ManageNodes => node_link(change.target),
        Action::ManageNetworks => "/networks".to_owned(),
        Action::RemoveVolumes => "/volumes".to_owned(),
        _ => format!("/services/{}", change.target),
    }
}

/// One event per fact of `records`: a firing message is the node going down (or its agent
/// silent) when the condition started, a resolved one its return when it ended; the repeats
/// of a firing message (the repeat interval, a catch-up after a restart) are one fact. Returns
/// the (rule, hostname) of the alerts still firing: their newest message is a firing one.
fn node_alert_events<'a>(
    records: &[NodeAlertRecord<'a>],
    node_link: &dyn Fn(&str) -> String,
    events: &mut Vec<Event>,
) -> Vec<(&'a str, &'a str)> {
    let mut seen: Vec<(&str, &str, &str, Timestamp)> = Vec::new();
    let mut newest: BTreeMap<(&str, &str), (Timestamp, &str)> = BTreeMap::new();
    for r in records {
        let fact = (r.rule, r.subject, r.status, r.started_at);
        if seen.contains(&fact) {
            continue;
        }
        seen.push(fact);
        let resolved = r.status == "resolved";
        let at = if resolved { r.ended_at } else { r.started_at };
        newest
            .entry((r.rule, r.subject))
            .and_modify(|latest| {
                if at >= latest.0 {
                    *latest = (at, r.status);
                }
            })
            .or_insert((at, r.status));
        let kind = match (r.rule == RuleId::NodeDown.as_str(), resolved) {
            (true, false) => "node-down",
            (true, true) => "node-up",
            (false, false) => "agent-silent",
            (false, true) => "agent-back",
        };
        let text = match (r.rule == RuleId::NodeDown.as_str(), resolved) {
            (true, false) => format!("node {} went down", r.subject),
            (false, false) => format!("the agent on {} stopped reporting", r.subject),
            // The resolved message says why it ended: back, drained, removed.
            (_, true) => r.summary.to_owned(),
        };
        events.push(Event {
            at,
            kind: kind.to_owned(),
            text,
            link: node_link(r.subject),
        });
    }
    newest
        .into_iter()
        .filter(|(_, (_, status))| *status == "firing")
        .map(|(key, _)| key)
        .collect()
}

/// One event per GC pass that deleted something or did not go well, except passes that fell
/// short: the agent retries those every pass while the disk stays full, so consecutive ones on
/// a node are one condition, dated at the first of them — ongoing while it is the node's
/// newest pass (an idle one ends it too), else ended at the last. `gc` may come in any
/// order.
pub fn gc_events(gc: &[GcRecord<'_>]) -> Vec<Event> {
    let mut runs: Vec<&GcRecord<'_>> = gc.iter().collect();
    runs.sort_by_key(|r| (r.node_id, r.at));
    let mut events = Vec::new();
    let mut i = 0;
    while i < runs.len() {
        let first = runs[i];
        let link = format!("/nodes/{}", first.node_id);
        if first.idle() {
            i += 1;
            continue;
        }
        if first.outcome != GC_SHORTFALL {
            events.push(Event {
                at: first.at,
                kind: "gc".to_owned(),
                text: format!(
                    "GC on {}: {}, {} freed ({})",
                    first.hostname,
                    first.what_went(),
                    first.bytes_freed,
                    first.outcome
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
    use swarmkeeper_report::ReportingState;

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
            containers_removed: 0,
            build_cache_freed_bytes: 0,
            bytes_freed: "1.0 GiB".into(),
            outcome: "ok",
        }];
        let events = events(&changes, &gc, &[], &[], t("2026-11-26T13:00:00Z"), 10);
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
            images_deleted: usize::from(outcome == "ok"),
            containers_removed: 0,
            build_cache_freed_bytes: 0,
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
                    "GC on w1: 1 image(s) deleted, 0 B freed (ok)".into()
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
                AgentState::Reporting,
            ),
            node(
                "swarm-dated",
                "down",
                Some("2026-11-26T12:00:00Z"),
                AgentState::Reporting,
            ),
            node(
                "report-dated",
                "down",
                None,
                AgentState::Silent {
                    since: t("2026-11-26T11:00:00Z"),
                },
            ),
            node("unknown", "unknown", None, AgentState::Never),
        ];
        let events = events(&[], &[], &[], &nodes, now, 10);
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

    fn row(id: &str, availability: &str, state: &str, agent: AgentState) -> NodeRow {
        NodeRow {
            id: format!("id-{id}"),
            hostname: id.into(),
            role: "worker".into(),
            leader: false,
            availability: availability.into(),
            disk_pressure: None,
            state: state.into(),
            engine_version: String::new(),
            agent,
            agent_version: None,
            disk: None,
            images: None,
            last_gc: None,
            freed_today_bytes: 0,
            state_since: None,
            removed: false,
        }
    }

    /// Tryout finding 6: a drained node's agent was called "silent"; Swarm stopped it with the
    /// drain.
    #[test]
    fn an_agent_stopped_by_a_drain_is_said_so_not_silent() {
        let now = t("2026-11-26T13:00:00Z");
        let silent = ReportingState::Silent {
            since: t("2026-11-26T12:58:00Z"),
        };
        let nodes = [
            row("drained", "drain", "ready", AgentState::of(silent, "drain")),
            row("paused", "pause", "ready", AgentState::of(silent, "pause")),
        ];
        let texts: Vec<String> = events(&[], &[], &[], &nodes, now, 10)
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
        assert_eq!(
            AgentState::of(ReportingState::Reporting, "drain"),
            AgentState::Reporting
        );
    }

    fn change<'a>(at: &str, action: &'a str, target: &'a str, detail: &'a str) -> ChangeRecord<'a> {
        ChangeRecord {
            at: t(at),
            who: "ann",
            action,
            target,
            detail,
        }
    }

    /// Tryout finding 15: only deploys, rollbacks, scales and redeploys were events; edits,
    /// secret rotations, node changes and the rest of the dashboard's changes were not.
    #[test]
    fn every_change_to_the_cluster_is_an_event_and_nothing_else() {
        let changes = [
            change("2026-11-26T10:00:00Z", "edit-service", "web", "succeeded"),
            change("2026-11-26T10:01:00Z", "create-service", "api", "succeeded"),
            change(
                "2026-11-26T10:02:00Z",
                "edit-service-as-compose",
                "web",
                "succeeded",
            ),
            change(
                "2026-11-26T10:03:00Z",
                "edit-stack-as-compose",
                "shop",
                "succeeded (revision 3)",
            ),
            change("2026-11-26T10:04:00Z", "remove", "old", "service"),
            change(
                "2026-11-26T10:05:00Z",
                "remove",
                "legacy",
                "stack: 2 service(s)",
            ),
            change(
                "2026-11-26T10:06:00Z",
                "rotate-secret",
                "db_password",
                "to db_password.v2",
            ),
            change(
                "2026-11-26T10:07:00Z",
                "rekey-secret",
                "sk_report",
                "to sk_report.v2",
            ),
            change("2026-11-26T10:08:00Z", "create-config", "nginx_conf", ""),
            change(
                "2026-11-26T10:09:00Z",
                "manage-nodes",
                "w2",
                "availability: active → drain",
            ),
            change(
                "2026-11-26T10:10:00Z",
                "manage-networks",
                "backend",
                "created overlay",
            ),
            change(
                "2026-11-26T10:11:00Z",
                "remove-volumes",
                "cache",
                "on node w1: removed",
            ),
            change(
                "2026-11-26T10:12:00Z",
                "auto-deploy",
                "web",
                "new digest: started",
            ),
            change("2026-11-26T10:13:00Z", "scale", "web", "replicas=0"),
            change("2026-11-26T10:14:00Z", "login", "127.0.0.1", ""),
            change("2026-11-26T10:15:00Z", "create-user", "bob", "operator"),
            change("2026-11-26T10:16:00Z", "create-token", "t1", "ci"),
            change(
                "2026-11-26T10:17:00Z",
                "manage-settings",
                "rules",
                "changed",
            ),
            change(
                "2026-11-26T10:18:00Z",
                "manage-registries",
                "ghcr.io",
                "added",
            ),
            change("2026-11-26T10:19:00Z", "manage-autodeploy", "web", "on"),
            change("2026-11-26T10:20:00Z", "forget-node", "w9", "forgotten"),
            change(
                "2026-11-26T10:21:00Z",
                "report-secret",
                "sk_report",
                "dropped",
            ),
        ];
        let nodes = [row("w2", "drain", "ready", AgentState::Reporting)];
        let events = events(&changes, &[], &[], &nodes, t("2026-11-26T13:00:00Z"), 50);
        let seen: Vec<(&str, &str)> = events
            .iter()
            .rev()
            .map(|e| (e.kind.as_str(), e.link.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("edit-service", "/services/web"),
                ("create-service", "/services/api"),
                ("edit-service-as-compose", "/services/web"),
                ("edit-stack-as-compose", "/stacks/shop"),
                ("remove", "/services"),
                ("remove", "/stacks"),
                ("rotate-secret", "/secrets"),
                ("rekey-secret", "/secrets"),
                ("create-config", "/configs"),
                ("manage-nodes", "/nodes/id-w2"),
                ("manage-networks", "/networks"),
                ("remove-volumes", "/volumes"),
                ("auto-deploy", "/services/web"),
                ("scale", "/services/web"),
            ]
        );
        assert_eq!(events[0].text, "ann scale web: replicas=0");
    }

    fn alert<'a>(
        rule: &'a str,
        status: &'a str,
        summary: &'a str,
        started_at: &str,
        ended_at: &str,
    ) -> NodeAlertRecord<'a> {
        NodeAlertRecord {
            rule,
            subject: "w2",
            status,
            summary,
            started_at: t(started_at),
            ended_at: t(ended_at),
        }
    }

    /// Tryout finding 15: a node that went down and came back left no event; nor did an
    /// agent that went silent and came back.
    #[test]
    fn a_node_that_came_back_leaves_its_down_and_its_return() {
        // Newest first, as the store gives them; the firing message went out twice (the
        // repeat interval).
        let alerts = [
            alert(
                "agent-silent",
                "resolved",
                "the agent on node w2 reports again",
                "2026-11-26T19:20:00Z",
                "2026-11-26T19:25:00Z",
            ),
            alert(
                "agent-silent",
                "firing",
                "the agent on node w2 has not reported since …",
                "2026-11-26T19:20:00Z",
                "2026-11-26T19:21:00Z",
            ),
            alert(
                "node-down",
                "resolved",
                "node w2 is ready again",
                "2026-11-26T19:11:25Z",
                "2026-11-26T19:13:40Z",
            ),
            alert(
                "node-down",
                "firing",
                "node w2 is down",
                "2026-11-26T19:11:25Z",
                "2026-11-26T19:13:00Z",
            ),
            alert(
                "node-down",
                "firing",
                "node w2 is down",
                "2026-11-26T19:11:25Z",
                "2026-11-26T19:12:37Z",
            ),
        ];
        let nodes = [row("w2", "active", "ready", AgentState::Reporting)];
        let events = events(&[], &[], &alerts, &nodes, t("2026-11-26T20:00:00Z"), 10);
        let seen: Vec<(Timestamp, &str, &str, &str)> = events
            .iter()
            .map(|e| (e.at, e.kind.as_str(), e.text.as_str(), e.link.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                (
                    t("2026-11-26T19:25:00Z"),
                    "agent-back",
                    "the agent on node w2 reports again",
                    "/nodes/id-w2"
                ),
                (
                    t("2026-11-26T19:20:00Z"),
                    "agent-silent",
                    "the agent on w2 stopped reporting",
                    "/nodes/id-w2"
                ),
                (
                    t("2026-11-26T19:13:40Z"),
                    "node-up",
                    "node w2 is ready again",
                    "/nodes/id-w2"
                ),
                (
                    t("2026-11-26T19:11:25Z"),
                    "node-down",
                    "node w2 went down",
                    "/nodes/id-w2"
                ),
            ]
        );
    }

    /// A node down now is one event: its alert's once it fired (dated when it went down),
    /// the node list's before.
    #[test]
    fn a_node_down_now_is_one_event() {
        let now = t("2026-11-26T20:00:00Z");
        let down = [row("w2", "active", "down", AgentState::Never)];
        let firing = [alert(
            "node-down",
            "firing",
            "node w2 is down",
            "2026-11-26T19:58:00Z",
            "2026-11-26T19:59:00Z",
        )];
        let kinds = |alerts: &[NodeAlertRecord<'_>]| -> Vec<(Timestamp, String)> {
            events(&[], &[], alerts, &down, now, 10)
                .into_iter()
                .map(|e| (e.at, e.text))
                .collect()
        };
        assert_eq!(
            kinds(&firing),
            [(t("2026-11-26T19:58:00Z"), "node w2 went down".into())]
        );
        assert_eq!(kinds(&[]), [(now, "node w2 is down".into())]);
    }

    /// Tryout finding 15: "GC on w2: 0 image(s) deleted, 0 B freed (ok)", every interval.
    #[test]
    fn a_gc_pass_that_deleted_nothing_and_went_well_is_no_event() {
        let pass = |at: &str, images: usize, containers: u64, cache: u64, outcome| GcRecord {
            at: t(at),
            node_id: "n1",
            hostname: "w1",
            images_deleted: images,
            containers_removed: containers,
            build_cache_freed_bytes: cache,
            bytes_freed: "0 B".into(),
            outcome,
        };
        let gc = [
            pass("2026-11-26T10:00:00Z", 0, 0, 0, "ok"),
            pass("2026-11-26T10:01:00Z", 0, 3, 0, "ok"),
            pass("2026-11-26T10:02:00Z", 0, 0, 4096, "ok"),
            pass("2026-11-26T10:03:00Z", 0, 0, 0, "partial"),
            pass("2026-11-26T10:04:00Z", 0, 0, 0, "ok"),
        ];
        let seen: Vec<(Timestamp, String)> =
            gc_events(&gc).into_iter().map(|e| (e.at, e.text)).collect();
        assert_eq!(
            seen,
            [
                (
                    t("2026-11-26T10:01:00Z"),
                    "GC on w1: 3 finished container(s) removed, 0 B freed (ok)".into()
                ),
                (
                    t("2026-11-26T10:02:00Z"),
                    "GC on w1: 4.0 KiB of build cache, 0 B freed (ok)".into()
                ),
                (
                    t("2026-11-26T10:03:00Z"),
                    "GC on w1: nothing deleted, 0 B freed (partial)".into()
                ),
            ]
        );
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
        let events = events(&changes, &[], &[], &[], t("2026-11-26T13:00:00Z"), 10);
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
