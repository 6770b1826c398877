//! `/volumes`: every node's volumes as its agent last reported them. Volumes are node-local, so
//! a row is a volume on one node: the same name on two nodes is two rows, side by side.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;
use swarmkeeper_report::NodeReport;

/// The label `docker stack deploy` (and swarmkeeper's deploy) puts on a stack's objects.
const STACK_LABEL: &str = "com.docker.stack.namespace";

/// One volume on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeRow {
    pub name: String,
    /// The node's hostname, and its key (the Swarm node ID, or `hostname:NAME` outside a
    /// swarm).
    pub node: String,
    pub node_key: String,
    pub driver: String,
    /// Where its data is on that node's host.
    pub mountpoint: String,
    /// Bytes of its data; `None` when the engine could not measure it (a non-local driver).
    pub size_bytes: Option<u64>,
    /// The stack it belongs to (its `com.docker.stack.namespace` label).
    pub stack: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// The containers, in any state, that mount it, as the node's agent last reported (its
    /// disk breakdown, at most `swarmkeeper_report::DISK_BREAKDOWN_MAX_AGE` old).
    pub containers: Vec<String>,
    /// What the page shows of `containers`: those of no service `tasks` names (a task's
    /// container replaced since the breakdown is not named beside the task that runs now;
    /// tryout 12 finding 2).
    pub other_containers: Vec<String>,
    /// The Swarm tasks that mount it on its node now, as the swarm's task list says (the
    /// agent's report may predate them).
    pub tasks: Vec<VolumeTask>,
    /// No container and no task uses it (swarmkeeper never deletes it for that: only an
    /// admin may).
    pub unused: bool,
    /// When the agent measured it.
    pub measured_at: Option<Timestamp>,
}

/// A Swarm task that mounts a volume on its node, Swarm wanting it to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeTask {
    /// The task's slot as the dashboard names it: `service.1`, `service.HOSTNAME` for a
    /// global service's.
    pub task: String,
    pub service: String,
    pub task_id: String,
}

/// A volume a task mounts on a node: [`VolumeTask`] with where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskMount {
    /// The task's node: a Swarm node ID, as a report's `node_key`.
    pub node_id: String,
    pub volume: String,
    pub user: VolumeTask,
}

/// What the page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumesView {
    /// By name, then by node.
    pub volumes: Vec<VolumeRow>,
    /// Nodes whose latest report has no volume list (an agent older than the field, or one
    /// still waiting for the engine's first `/system/df`), by hostname.
    pub nodes_without_volumes: Vec<String>,
    /// Bytes of the volumes no container uses, over all nodes.
    pub unused_bytes: u64,
    /// How old sizes and containers may be: `swarmkeeper_report::DISK_BREAKDOWN_MAX_AGE`.
    pub measured_every_minutes: u64,
}

/// The volumes of `stack` that every node's latest report holds, as `NAME on NODE`, sorted:
/// what a stack's removal keeps (`docker stack rm` never removes a volume either).
pub fn stack_volumes(reports: &[NodeReport], stack: &str) -> Vec<String> {
    volumes_view(reports, &[])
        .volumes
        .into_iter()
        .filter(|v| v.stack.as_deref() == Some(stack))
        .map(|v| format!("{} on {}", v.name, v.node))
        .collect()
}

/// The view over every node's latest report, with the `mounts` of the swarm's tasks now.
pub fn volumes_view(reports: &[NodeReport], mounts: &[TaskMount]) -> VolumesView {
    let mut volumes = Vec::new();
    let mut nodes_without_volumes = Vec::new();
    for report in reports {
        let Some(reported) = &report.volumes else {
            nodes_without_volumes.push(report.hostname.clone());
            continue;
        };
        let node_key = report.node_key();
        for v in reported {
            let tasks: Vec<VolumeTask> = mounts
                .iter()
                .filter(|m| m.node_id == node_key && m.volume == v.name)
                .map(|m| m.user.clone())
                .collect();
            let other_containers = v
                .containers
                .iter()
                .filter(|c| {
                    service_of(c).is_none_or(|service| tasks.iter().all(|t| t.service != service))
                })
                .cloned()
                .collect();
            volumes.push(VolumeRow {
                name: v.name.clone(),
                node: report.hostname.clone(),
                node_key: report.node_key(),
                driver: v.driver.clone(),
                mountpoint: v.mountpoint.clone(),
                size_bytes: v.size_bytes,
                stack: v.labels.get(STACK_LABEL).cloned(),
                labels: v.labels.clone(),
                containers: v.containers.clone(),
                other_containers,
                unused: v.containers.is_empty() && tasks.is_empty(),
                tasks,
                measured_at: report.disk_breakdown_at,
            });
        }
    }
    volumes.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.node.cmp(&b.node)));
    nodes_without_volumes.sort();
    let unused_bytes = volumes
        .iter()
        .filter(|v| v.unused)
        .filter_map(|v| v.size_bytes)
        .fold(0u64, u64::saturating_add);
    VolumesView {
        volumes,
        nodes_without_volumes,
        unused_bytes,
        measured_every_minutes: swarmkeeper_report::DISK_BREAKDOWN_MAX_AGE.as_secs() / 60,
    }
}

/// Why a volume removal is refused before any engine is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemovalRefused {
    /// No node reported a volume of that name (on that node).
    NotFound(String),
    /// The name is on several nodes and the request named none.
    Ambiguous(String),
    /// A task of the swarm mounts it on its node now, or its node's latest report has
    /// containers on it.
    InUse(String),
}

/// The service a Swarm task's container belongs to: its name is `SERVICE.SLOT.TASK` (or
/// `SERVICE.NODE.TASK` for a global service); `None` for another container.
fn service_of(container: &str) -> Option<&str> {
    let mut parts = container.rsplitn(3, '.');
    let (_task, _slot, service) = (parts.next()?, parts.next()?, parts.next()?);
    Some(service)
}

/// The row a removal of `name` (on `node`, a node key or hostname, when given) is about,
/// refused while a task or a container uses it (naming the tasks and their services, then
/// the containers), on an unknown name or node, and when the name is on several nodes and
/// no node is named.
pub fn removal_target<'a>(
    view: &'a VolumesView,
    name: &str,
    node: Option<&str>,
) -> Result<&'a VolumeRow, RemovalRefused> {
    let named: Vec<&VolumeRow> = view.volumes.iter().filter(|v| v.name == name).collect();
    let hosts = || {
        named
            .iter()
            .map(|v| format!("{} ({})", v.node, v.node_key))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if named.is_empty() {
        return Err(RemovalRefused::NotFound(format!(
            "no node reported a volume named {name}"
        )));
    }
    let row = match node {
        Some(node) => named
            .iter()
            .find(|v| v.node_key == node || v.node == node)
            .copied()
            .ok_or_else(|| {
                RemovalRefused::NotFound(format!(
                    "node {node} reported no volume named {name}; it is on {}",
                    hosts()
                ))
            })?,
        None if named.len() > 1 => {
            return Err(RemovalRefused::Ambiguous(format!(
                "volume {name} is on several nodes, {}: say which with node=NODE_ID",
                hosts()
            )))
        }
        None => named[0],
    };
    let mut users: Vec<String> = row
        .tasks
        .iter()
        .map(|t| format!("task {} (service {})", t.task, t.service))
        .collect();
    // A container of a task named already is that task.
    let containers: Vec<&String> = row
        .containers
        .iter()
        .filter(|c| {
            !row.tasks
                .iter()
                .any(|t| c.ends_with(&format!(".{}", t.task_id)))
        })
        .collect();
    if !containers.is_empty() {
        let mut services: Vec<&str> = containers.iter().filter_map(|c| service_of(c)).collect();
        services.sort_unstable();
        services.dedup();
        let services = if services.is_empty() {
            String::new()
        } else {
            format!(" (services {})", services.join(", "))
        };
        let names: Vec<&str> = containers.iter().map(|c| c.as_str()).collect();
        users.push(format!("containers {}{services}", names.join(", ")));
    }
    if !users.is_empty() {
        return Err(RemovalRefused::InUse(format!(
            "volume {name} on node {} is in use by {}",
            row.node,
            users.join(" and ")
        )));
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use swarmkeeper_report::ReportedVolume;

    use super::*;

    fn report(host: &str, volumes: Option<Vec<ReportedVolume>>) -> NodeReport {
        NodeReport {
            node_id: format!("id-{host}"),
            hostname: host.into(),
            volumes,
            ..NodeReport::default()
        }
    }

    fn volume(name: &str, size: u64, containers: &[&str]) -> ReportedVolume {
        ReportedVolume {
            name: name.into(),
            driver: "local".into(),
            mountpoint: format!("/var/lib/docker/volumes/{name}/_data"),
            size_bytes: Some(size),
            labels: [(STACK_LABEL.into(), "db".into())].into(),
            containers: containers.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn the_same_name_on_two_nodes_is_two_rows_and_unused_ones_are_marked() {
        let view = volumes_view(
            &[
                report(
                    "node-b",
                    Some(vec![volume("db_data", 10, &[]), volume("cache", 5, &[])]),
                ),
                report("node-a", Some(vec![volume("db_data", 4096, &["db.1.x"])])),
                report("old-agent", None),
            ],
            &[],
        );
        let rows: Vec<_> = view
            .volumes
            .iter()
            .map(|v| (v.name.as_str(), v.node.as_str(), v.size_bytes, v.unused))
            .collect();
        assert_eq!(
            rows,
            [
                ("cache", "node-b", Some(5), true),
                ("db_data", "node-a", Some(4096), false),
                ("db_data", "node-b", Some(10), true),
            ]
        );
        assert_eq!(view.volumes[1].stack.as_deref(), Some("db"));
        assert_eq!(view.volumes[1].node_key, "id-node-a");
        assert_eq!(view.nodes_without_volumes, ["old-agent"]);
        assert_eq!(view.unused_bytes, 15);
    }

    #[test]
    fn a_removal_names_its_node_and_is_refused_while_in_use() {
        let view = volumes_view(
            &[
                report(
                    "node-b",
                    Some(vec![volume("db_data", 10, &[]), volume("cache", 5, &[])]),
                ),
                report(
                    "node-a",
                    Some(vec![volume("db_data", 4096, &["shop_db.1.k2x9"])]),
                ),
            ],
            &[],
        );
        let unused = removal_target(&view, "cache", None).unwrap();
        assert_eq!(
            (unused.node.as_str(), unused.node_key.as_str()),
            ("node-b", "id-node-b")
        );
        let Err(RemovalRefused::Ambiguous(why)) = removal_target(&view, "db_data", None) else {
            panic!("two nodes, none named");
        };
        assert!(
            why.contains("node-a (id-node-a)") && why.contains("node-b"),
            "{why}"
        );
        assert_eq!(
            removal_target(&view, "db_data", Some("id-node-b"))
                .unwrap()
                .node,
            "node-b"
        );
        assert_eq!(
            removal_target(&view, "db_data", Some("node-b"))
                .unwrap()
                .node,
            "node-b"
        );
        assert_eq!(
            removal_target(&view, "db_data", Some("id-node-a")),
            Err(RemovalRefused::InUse(
                "volume db_data on node node-a is in use by containers shop_db.1.k2x9 (services shop_db)"
                    .into()
            ))
        );
        assert!(matches!(
            removal_target(&view, "cache", Some("node-a")),
            Err(RemovalRefused::NotFound(_))
        ));
        assert!(matches!(
            removal_target(&view, "nothing", None),
            Err(RemovalRefused::NotFound(_))
        ));
        assert_eq!(service_of("standalone"), None);
    }

    #[test]
    fn a_task_that_mounts_a_volume_now_uses_it_whatever_the_report_said() {
        let mount = |node: &str, volume: &str| TaskMount {
            node_id: format!("id-{node}"),
            volume: volume.into(),
            user: VolumeTask {
                task: "volsvc.1".into(),
                service: "volsvc".into(),
                task_id: "t1".into(),
            },
        };
        let view = volumes_view(
            &[
                report("node-a", Some(vec![volume("busyvol", 10, &[])])),
                report(
                    "node-b",
                    Some(vec![volume("busyvol", 10, &["volsvc.1.t1"])]),
                ),
            ],
            &[mount("node-a", "busyvol"), mount("node-b", "busyvol")],
        );
        assert!(view.volumes.iter().all(|v| !v.unused), "{view:?}");
        assert_eq!(view.unused_bytes, 0);
        assert_eq!(
            removal_target(&view, "busyvol", Some("node-a")),
            Err(RemovalRefused::InUse(
                "volume busyvol on node node-a is in use by task volsvc.1 (service volsvc)".into()
            ))
        );
        // The task's own container, reported, is not named twice.
        assert_eq!(
            removal_target(&view, "busyvol", Some("node-b")),
            Err(RemovalRefused::InUse(
                "volume busyvol on node node-b is in use by task volsvc.1 (service volsvc)".into()
            ))
        );
    }

    /// Tryout 12 finding 2: the breakdown named the container of a task replaced since (the
    /// server's, after a re-key) beside the task that runs now.
    #[test]
    fn a_container_of_a_service_whose_task_runs_now_is_not_shown_twice() {
        let now = TaskMount {
            node_id: "id-node-a".into(),
            volume: "state".into(),
            user: VolumeTask {
                task: "sk_server.1".into(),
                service: "sk_server".into(),
                task_id: "new".into(),
            },
        };
        let view = volumes_view(
            &[report(
                "node-a",
                Some(vec![volume(
                    "state",
                    10,
                    &["sk_server.1.oldtask", "backup-job", "other.1.x"],
                )]),
            )],
            &[now],
        );
        let row = &view.volumes[0];
        assert_eq!(row.other_containers, ["backup-job", "other.1.x"]);
        assert_eq!(
            row.containers.len(),
            3,
            "kept whole: a removal still weighs them"
        );
        assert!(!row.unused);
        assert_eq!(view.measured_every_minutes, 10);
    }
}
