//! What changing a node means: which tasks a drain moves (and which only stop), the checks of
//! an availability, a role and a label list, and whether a node may be removed. Pure.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use swarmkeeper_engine::{Service, ServiceView, SwarmNode, Task, TaskState};
use swarmkeeper_report::PRESSURE_LABEL;
use swarmkeeper_rollout::placement::{place, Displaced, NodeRoom, Placement};
use swarmkeeper_rollout::preflight::{unmet, NodeFacts};

use super::own::{own_part, OwnPart};
use super::FieldError;

/// A node's availability, as `docker node update --availability` takes it.
pub const AVAILABILITIES: [&str; 3] = ["active", "pause", "drain"];

/// A node's role, as `docker node promote` / `demote` set it.
pub const ROLES: [&str; 2] = ["manager", "worker"];

/// Why the node `hostname` (its `Status.State` `state`, role `role`) may not be given role
/// `wanted` in a swarm of `managers` managers; `None` when it may. Promoting a node that is
/// not ready adds a manager that cannot join the raft, and that the engine then lets no one
/// demote or remove until it is back; demoting the only manager is what the engine refuses
/// ("attempting to demote the last manager of the swarm").
pub fn role_refusal(
    hostname: &str,
    state: &str,
    role: &str,
    wanted: &str,
    managers: usize,
) -> Option<String> {
    match wanted {
        "manager" if role != "manager" && state != "ready" => Some(format!(
            "{hostname} is {state}: a manager that cannot reach the others never joins the \
             managers' raft, and until it is back it can be neither demoted nor removed; bring \
             it back first"
        )),
        "worker" if role == "manager" && managers <= 1 => Some(format!(
            "{hostname} is the swarm's only manager: promote another node first (Swarm does not \
             demote the last manager)"
        )),
        _ => None,
    }
}

/// The note a role change leaves when the swarm then has an even number of `managers`: Raft
/// needs a majority of managers, so N of them tolerate (N - 1) / 2 failures and an even
/// number tolerates no more than one fewer would (Docker's "Administer and maintain a swarm
/// of Docker Engines": an odd number, 3 or 5, is recommended). `None` for an odd number.
pub fn even_managers_note(managers: usize) -> Option<String> {
    if managers == 0 || managers % 2 == 1 {
        return None;
    }
    let tolerated = match (managers - 1) / 2 {
        0 => "no failure".to_owned(),
        1 => "1 failure".to_owned(),
        n => format!("{n} failures"),
    };
    Some(format!(
        "{managers} managers tolerate {tolerated}, as {} would: Raft needs a majority of \
         managers; 3 or 5 are recommended",
        managers - 1
    ))
}

/// How the fate of a task that would start nowhere else begins.
const PENDING: &str = "stops: would stay pending: ";

/// A task a drain affects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AffectedTask {
    pub id: String,
    pub service: String,
    pub slot: Option<u64>,
    pub state: String,
    /// What the drain does to it: `moves to HOST`, `moves to one of HOST, HOST (Swarm picks
    /// among nodes as loaded)`, `stops: global service`, or `stops: would
    /// stay pending: WHY` (no other node passes Swarm's scheduler filters: not ready or
    /// active, not enough CPU or memory for its reservations, its log driver missing, a
    /// placement constraint, a host-mode port taken; see `swarmkeeper_rollout::placement`).
    /// After a label change, WHY first names the constraint the node stops meeting:
    /// ``stops: would stay pending: `C` no longer matches HOST, and no other node can run it:
    /// …``.
    pub fate: String,
    /// For a task that moves: the node-local volumes it mounts (named, `local` driver), whose
    /// data stays on this node — its replacement starts with an empty volume of that name
    /// where it lands (tryout 14 finding 8: a database's data).
    pub left_behind: Vec<String>,
    /// The task of this very server: draining its node stops the dashboard.
    pub own_server: bool,
}

/// What draining a node does to the tasks it runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DrainEffect {
    /// Tasks of replicated services (and replicated jobs) another node takes: Swarm starts a
    /// replacement there.
    pub moving: Vec<AffectedTask>,
    /// Tasks that stop and start nowhere else: those of global services (one per node), and
    /// those that would stay pending.
    pub stopping: Vec<AffectedTask>,
    /// One of the tasks is this server's own: the dashboard stops with the drain.
    pub stops_dashboard: bool,
}

/// The swarm's other nodes as the scheduler's filters weigh them
/// (`swarmkeeper_rollout::placement::node_rooms`, the preflight's rule): each node's facts
/// (from `others`) and what the tasks Swarm keeps on it (`tasks`: the swarm's tasks) reserve,
/// publish on host ports and count, read from their services.
pub fn node_rooms(others: Vec<NodeFacts>, tasks: &[Task], services: &[Service]) -> Vec<NodeRoom> {
    swarmkeeper_rollout::placement::node_rooms(others, tasks, services, |_| false)
}

/// The effect of draining the node that runs `tasks` (the node's tasks, old ones included),
/// with `others` the swarm's other nodes ([`node_rooms`]): every task Swarm means to keep
/// running there is placed, one after another, by Swarm's scheduler filters
/// (`swarmkeeper_rollout::placement`): it moves to the node named, or stays pending and
/// says why; a global service's task stops. `own_container` is the server's own container,
/// when it runs in one (see [`own_container_id`]).
pub fn drain_effect(
    tasks: &[Task],
    services: &[Service],
    others: &[NodeRoom],
    own_container: Option<&str>,
) -> DrainEffect {
    let by_id: HashMap<&str, &Service> = services.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut running: Vec<&Task> = tasks
        .iter()
        .filter(|t| t.desired_state == TaskState::Running)
        .collect();
    running.sort_by_key(|t| (t.service_id.clone(), t.slot));
    // The replicated services' tasks, in order, go through the scheduler's filters.
    let movers: Vec<(usize, Displaced)> = running
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            let service = by_id.get(t.service_id.as_str())?;
            (!service.view.mode.is_global())
                .then(|| (i, Displaced::of(&service.name, &service.view)))
        })
        .collect();
    let needs: Vec<Displaced> = movers.iter().map(|(_, d)| d.clone()).collect();
    let placed = place(&needs, others);
    let mut fates: HashMap<usize, String> = HashMap::new();
    match placed {
        Ok(placed) => {
            for ((i, _), placement) in movers.iter().zip(placed) {
                fates.insert(
                    *i,
                    match placement {
                        Placement::Moves { to, alike } if alike.is_empty() => {
                            format!("moves to {to}")
                        }
                        Placement::Moves { to, alike } => format!(
                            "moves to one of {to}, {} (Swarm picks among nodes as loaded)",
                            alike.join(", ")
                        ),
                        Placement::Pending(why) => format!("{PENDING}{why}"),
                    },
                );
            }
        }
        Err(e) => {
            for (i, _) in &movers {
                fates.insert(*i, format!("{PENDING}{e}"));
            }
        }
    }
    let mut effect = DrainEffect::default();
    for (i, task) in running.iter().enumerate() {
        let service = by_id.get(task.service_id.as_str());
        let fate = match service {
            Some(s) if s.view.mode.is_global() => "stops: global service".to_owned(),
            Some(_) => fates.remove(&i).unwrap_or_default(),
            // A task whose service is gone: Swarm removes it, nothing replaces it.
            None => "stops: its service is gone".to_owned(),
        };
        let left_behind = match service {
            Some(s) if fate.starts_with("moves") => local_volumes(&s.view),
            _ => Vec::new(),
        };
        let affected = AffectedTask {
            id: task.id.clone(),
            service: service.map_or_else(|| task.service_id.clone(), |s| s.name.clone()),
            slot: task.slot,
            state: task.state.to_string(),
            own_server: own_container.is_some_and(|own| task.container_id.as_deref() == Some(own)),
            fate,
            left_behind,
        };
        effect.stops_dashboard |= affected.own_server;
        if affected.fate.starts_with("moves") {
            effect.moving.push(affected);
        } else {
            effect.stopping.push(affected);
        }
    }
    for list in [&mut effect.moving, &mut effect.stopping] {
        list.sort_by(|a, b| (&a.service, a.slot).cmp(&(&b.service, b.slot)));
    }
    effect
}

/// The named volumes of the `local` driver (Swarm's default) a service mounts: their data is
/// on the node a task runs on, and does not follow a task that moves.
fn local_volumes(view: &ServiceView) -> Vec<String> {
    view.mounts
        .iter()
        .filter(|m| m.kind == "volume" && !m.source.is_empty())
        .filter(|m| m.driver.is_empty() || m.driver == "local")
        .map(|m| m.source.clone())
        .collect()
}

/// The effect of replacing the labels of `node` (as it is now) with `labels`: every task it
/// runs whose service's placement constraints it met and no longer meets is displaced —
/// Swarm stops it ("assigned node no longer meets constraints") and places a replacement by
/// its scheduler's filters over `others` ([`node_rooms`]) — and said as [`drain_effect`]
/// says a drain's. A task of swarmkeeper's own server (its container is `own_container`, or
/// its service is the server's, `own::own_part`) stops the dashboard. Tasks the change does
/// not touch are not listed.
pub fn label_change_effect(
    node: &NodeFacts,
    labels: &BTreeMap<String, String>,
    tasks: &[Task],
    services: &[Service],
    others: &[NodeRoom],
    own_container: Option<&str>,
) -> DrainEffect {
    let relabelled = NodeFacts {
        labels: labels.clone(),
        ..node.clone()
    };
    let by_id: HashMap<&str, &Service> = services.iter().map(|s| (s.id.as_str(), s)).collect();
    let no_longer_fit = |task: &&Task| {
        by_id.get(task.service_id.as_str()).is_some_and(|s| {
            let constraints = &s.view.constraints;
            matches!(unmet(constraints, node), Ok(None))
                && matches!(unmet(constraints, &relabelled), Ok(Some(_)))
        })
    };
    let displaced: Vec<Task> = tasks.iter().filter(no_longer_fit).cloned().collect();
    // The constraint each displaced task stops meeting here: the reason it moves, where the
    // scheduler's reason for staying pending is about the other nodes.
    let lost: HashMap<&str, &str> = displaced
        .iter()
        .filter_map(|task| {
            let service = by_id.get(task.service_id.as_str())?;
            let lost = unmet(&service.view.constraints, &relabelled).ok()??;
            Some((task.id.as_str(), lost))
        })
        .collect();
    let mut effect = drain_effect(&displaced, services, others, own_container);
    for task in &mut effect.stopping {
        let (Some(why), Some(lost)) = (task.fate.strip_prefix(PENDING), lost.get(task.id.as_str()))
        else {
            continue;
        };
        task.fate = format!(
            "{PENDING}`{lost}` no longer matches {}, and no other node can run it: {why}",
            node.hostname
        );
    }
    let servers: Vec<&str> = services
        .iter()
        .filter(|s| own_part(&s.view) == Some(OwnPart::Server))
        .map(|s| s.name.as_str())
        .collect();
    for task in effect.moving.iter_mut().chain(effect.stopping.iter_mut()) {
        task.own_server |= servers.contains(&task.service.as_str());
        effect.stops_dashboard |= task.own_server;
    }
    effect
}

impl DrainEffect {
    /// Nothing moves and nothing stops.
    pub fn is_empty(&self) -> bool {
        self.moving.is_empty() && self.stopping.is_empty()
    }

    /// The tasks that move or stop in one sentence, each with its fate, and "this stops the
    /// dashboard" when one is the server's own: what a label change must be confirmed
    /// against.
    pub fn summary(&self) -> String {
        let tasks: Vec<String> = self
            .moving
            .iter()
            .chain(&self.stopping)
            .map(|t| match t.slot {
                Some(slot) => format!("{}.{slot} {}", t.service, t.fate),
                None => format!("{} {}", t.service, t.fate),
            })
            .collect();
        let mut said = format!("tasks move or stop: {}", tasks.join("; "));
        if self.stops_dashboard {
            said.push_str("; this stops the dashboard (swarmkeeper's own server)");
        }
        said
    }
}

/// The id of the container this process runs in, from its `/proc/self/mountinfo`: Docker
/// bind-mounts the container's `hostname`, `hosts` and `resolv.conf` from
/// `…/containers/ID/`. `None` outside a container.
pub fn own_container_id(mountinfo: &str) -> Option<String> {
    mountinfo.lines().find_map(|line| {
        let (_, rest) = line.split_once("/containers/")?;
        let id = rest.split('/').next()?;
        (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_owned())
    })
}

/// One of `allowed`, or a message naming the field and the values it takes.
pub fn one_of(field: &'static str, value: &str, allowed: &[&str]) -> Result<(), FieldError> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!("{value:?} is not one of {}", allowed.join(", ")),
        ))
    }
}

/// Node labels from `KEY=VALUE` lines (blank lines skipped; a value may be empty, as `docker
/// node update --label-add key` makes it). A line without a key, a key with spaces, or a key
/// twice is refused naming the line; every such line in one message (tryout 13 finding 5).
pub fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, FieldError> {
    let mut labels = BTreeMap::new();
    let mut wrong = Vec::new();
    for (n, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
        if line.is_empty() {
            continue;
        }
        let (key, value) = line.split_once('=').unwrap_or((line, ""));
        let key = key.trim();
        let why = if key.is_empty() {
            "a label needs a key before '='".to_owned()
        } else if key.chars().any(char::is_whitespace) {
            format!("the key {key:?} has a space in it")
        } else if labels.insert(key.to_owned(), value.to_owned()).is_some() {
            format!("{key} is given twice")
        } else {
            continue;
        };
        wrong.push(format!("line {n}: {why}"));
    }
    if wrong.is_empty() {
        Ok(labels)
    } else {
        Err(FieldError::new("labels", wrong.join("; ")))
    }
}

/// Labels as the edit form shows them: one `KEY=VALUE` line each.
pub fn labels_text(labels: &BTreeMap<String, String>) -> String {
    labels.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}

/// The labels an operator edits: all of the node's but swarmkeeper's own
/// [`PRESSURE_LABEL`], which the labels form shows apart and never offers to remove.
pub fn editable_labels(labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    labels
        .iter()
        .filter(|(k, _)| k.as_str() != PRESSURE_LABEL)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The labels a save of `posted` (form or `PUT /api/nodes/{id}/labels`) puts on a node that
/// has `current`: `posted`, with [`PRESSURE_LABEL`] as it is on the node, set or absent. The
/// label marks a node swarmkeeper paused and will set active again
/// (`swarmkeeper_report::disk_pressure`); dropped by a label edit, the node would stay paused
/// for good with nobody told. An operator takes such a node over by setting its availability,
/// as the README says. `posted` may carry the label only as the node has it (a script that
/// reads the labels and puts them back); any other value, or the label on a node without it,
/// is refused with why (nothing is saved), rather than silently dropped.
pub fn labels_to_save(
    current: &BTreeMap<String, String>,
    mut posted: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    if let Some(typed) = posted.remove(PRESSURE_LABEL) {
        if current.get(PRESSURE_LABEL) != Some(&typed) {
            return Err(format!(
                "{PRESSURE_LABEL} is set by swarmkeeper only (pause the node with Availability \
                 instead); nothing saved"
            ));
        }
    }
    if let Some(why) = current.get(PRESSURE_LABEL) {
        posted.insert(PRESSURE_LABEL.to_owned(), why.clone());
    }
    Ok(posted)
}

/// The 1-based line of `text` (`KEY=VALUE` lines, as [`parse_labels`] reads them) that sets
/// `key`, to name it in a refusal.
pub fn label_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| l.split_once('=').map_or(l, |(k, _)| k).trim() == key)
        .map(|i| i + 1)
}

/// Why `node` may not be removed from the swarm, if it may not: only a worker that is down
/// (a manager is demoted first, so the swarm keeps its quorum in view).
pub fn removal_refusal(node: &SwarmNode) -> Option<String> {
    if node.role == "manager" {
        return Some(format!(
            "node {} is a manager: demote it first",
            node.hostname
        ));
    }
    if node.state != "down" {
        return Some(format!(
            "node {} is {}: only a node that is down can be removed (drain it and stop its engine, or `docker swarm leave` on it)",
            node.hostname, node.state
        ));
    }
    None
}

/// swarmkeeper's agent on one node, as Swarm runs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentOnNode {
    /// No service of the swarm runs the agent (`views::own::own_part`): nothing to say.
    NotDeployed,
    /// A task of the agent's service runs on the node.
    Running,
    /// The agent's service exists but no task of it runs on the node: stopped by a drain,
    /// never started, or ended.
    NotRunning,
}

/// Whether swarmkeeper's agent runs on the node whose tasks are `node_tasks` (the node's,
/// old ones included), among the swarm's `services`.
pub fn agent_on_node(services: &[Service], node_tasks: &[Task]) -> AgentOnNode {
    let agents: Vec<&str> = services
        .iter()
        .filter(|s| own_part(&s.view) == Some(OwnPart::Agent))
        .map(|s| s.id.as_str())
        .collect();
    if agents.is_empty() {
        return AgentOnNode::NotDeployed;
    }
    let running = node_tasks.iter().any(|t| {
        agents.contains(&t.service_id.as_str())
            && t.desired_state == TaskState::Running
            && t.state == TaskState::Running
    });
    if running {
        AgentOnNode::Running
    } else {
        AgentOnNode::NotRunning
    }
}

/// What a node `hostname` with availability `availability` (as it is, or as an operator sets
/// it) means for swarmkeeper's `agent` there; `None` when nothing is lost. Swarm places no
/// new task on a paused node (swarmkit's scheduler skips nodes that are not active), so an
/// agent that is not running there when the node is paused — after a drain stopped it, or
/// paused before it started — stays off: no image GC, no disk reports, and no release of the
/// disk pressure pause (`swarmkeeper_report::disk_pressure` decides from reports) on that
/// node, until it is active again. A drain stops the agent too, and its own preview and the
/// node's "agent stopped by the drain" say so.
pub fn agent_off_note(hostname: &str, availability: &str, agent: AgentOnNode) -> Option<String> {
    (availability == "pause" && agent == AgentOnNode::NotRunning).then(|| {
        format!(
            "swarmkeeper's agent is not running on {hostname}, and Swarm starts no new task on \
             a paused node: image GC, disk reports and the release of a disk pressure pause \
             stay off there while it is paused. Set it active instead (Swarm starts the agent \
             there again); pause it once the agent reports, if it must stay paused."
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(id: &str, mode: serde_json::Value) -> Service {
        let spec = json!({"Name": format!("svc-{id}"), "Mode": mode, "TaskTemplate": {"ContainerSpec": {"Image": "x"}}});
        Service::new(id.to_owned(), 1, spec, None, None).unwrap()
    }

    fn task(id: &str, service: &str, slot: Option<u64>, desired: &str) -> Task {
        Task {
            id: id.into(),
            service_id: service.into(),
            slot,
            node_id: "n1".into(),
            desired_state: desired.into(),
            state: "running".into(),
            ..Task::default()
        }
    }

    /// An empty, ready, active worker `worker-2` (id `n2`).
    fn worker_2() -> NodeRoom {
        room(NodeFacts {
            id: "n2".into(),
            hostname: "worker-2".into(),
            role: "worker".into(),
            schedulable: true,
            ..NodeFacts::default()
        })
    }

    /// Tryout 12 finding 3: the preview named one of two equally loaded nodes as where a task
    /// goes, and Swarm chose the other.
    #[test]
    fn a_task_with_nodes_alike_names_them_all() {
        let services = [service("r", json!({"Replicated": {"Replicas": 1}}))];
        let tasks = [task("t1", "r", Some(1), "running")];
        let worker = |n: &str| {
            room(NodeFacts {
                id: format!("id-{n}"),
                hostname: n.into(),
                role: "worker".into(),
                schedulable: true,
                ..NodeFacts::default()
            })
        };
        let effect = drain_effect(&tasks, &services, &[worker("w2"), worker("w3")], None);
        assert_eq!(
            effect.moving[0].fate,
            "moves to one of w2, w3 (Swarm picks among nodes as loaded)"
        );
    }

    #[test]
    fn a_moving_task_s_local_volumes_are_said_to_stay_behind() {
        // Tryout 14 finding 8: the preview said "moves" and the database came up empty.
        let spec = json!({"Name": "svc-db", "Mode": {"Replicated": {"Replicas": 1}},
            "TaskTemplate": {"ContainerSpec": {"Image": "postgres", "Mounts": [
                {"Type": "volume", "Source": "db_data", "Target": "/var/lib/postgresql/data"},
                {"Type": "volume", "Source": "shared", "Target": "/shared",
                 "VolumeOptions": {"DriverConfig": {"Name": "nfs"}}},
                {"Type": "bind", "Source": "/etc/hosts", "Target": "/etc/hosts"},
                {"Type": "tmpfs", "Target": "/tmp"}]}}});
        let services = [Service::new("db".into(), 1, spec, None, None).unwrap()];
        let tasks = [task("t1", "db", Some(1), "running")];
        let other = worker_2();
        let effect = drain_effect(&tasks, &services, std::slice::from_ref(&other), None);
        assert_eq!(effect.moving[0].left_behind, ["db_data"]);
        // Nowhere to go: it stops, and says nothing of moving data.
        let effect = drain_effect(&tasks, &services, &[], None);
        assert!(effect.stopping[0].left_behind.is_empty());
    }

    #[test]
    fn a_drain_moves_replicated_tasks_and_stops_global_ones() {
        let services = [
            service("r", json!({"Replicated": {"Replicas": 2}})),
            service("g", json!({"Global": {}})),
        ];
        let tasks = [
            task("t2", "r", Some(2), "running"),
            task("t1", "r", Some(1), "running"),
            task("old", "r", Some(1), "shutdown"),
            task("tg", "g", None, "running"),
        ];
        let other = worker_2();
        let effect = drain_effect(&tasks, &services, std::slice::from_ref(&other), None);
        let ids = |l: &[AffectedTask]| l.iter().map(|t| t.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&effect.moving), ["t1", "t2"]);
        assert_eq!(ids(&effect.stopping), ["tg"]);
        assert_eq!(effect.moving[0].service, "svc-r");
        assert_eq!(effect.moving[0].fate, "moves to worker-2");
        assert_eq!(effect.stopping[0].fate, "stops: global service");
    }

    #[test]
    fn a_task_no_other_node_qualifies_for_stops_naming_the_constraint() {
        let pinned = |name: &str, constraint: &str| {
            let spec = json!({"Name": format!("svc-{name}"), "Mode": {"Replicated": {"Replicas": 1}},
                "TaskTemplate": {"ContainerSpec": {"Image": "nginx"},
                                 "Placement": {"Constraints": [constraint]}}});
            Service::new(name.to_owned(), 1, spec, None, None).unwrap()
        };
        let services = [
            pinned("m", "node.role == manager"),
            pinned("w", "node.role == worker"),
        ];
        let tasks = [
            task("tm", "m", Some(1), "running"),
            task("tw", "w", Some(1), "running"),
        ];
        let worker = room(NodeFacts {
            id: "n2".into(),
            role: "worker".into(),
            schedulable: true,
            ..NodeFacts::default()
        });
        let effect = drain_effect(&tasks, &services, std::slice::from_ref(&worker), None);
        assert_eq!(effect.moving.len(), 1);
        assert_eq!(effect.moving[0].id, "tw");
        assert_eq!(effect.stopping.len(), 1);
        assert_eq!(effect.stopping[0].id, "tm");
        assert!(
            effect.stopping[0]
                .fate
                .starts_with("stops: would stay pending: the placement constraint")
                && effect.stopping[0].fate.contains("node.role == manager"),
            "{}",
            effect.stopping[0].fate
        );
        // A single-node swarm: nothing moves.
        let alone = drain_effect(&tasks, &services, &[], None);
        assert!(alone.moving.is_empty());
        assert_eq!(alone.stopping.len(), 2);
        assert!(!alone.stops_dashboard);
    }

    #[test]
    fn a_task_whose_reservation_fits_no_other_node_would_stay_pending() {
        let spec = json!({"Name": "svc-db", "Mode": {"Replicated": {"Replicas": 1}},
            "TaskTemplate": {"ContainerSpec": {"Image": "postgres"},
                             "Resources": {"Reservations": {"MemoryBytes": 2147483648u64}}},
            "EndpointSpec": {"Ports": [{"TargetPort": 5432, "PublishedPort": 5432, "PublishMode": "host"}]}});
        let db = Service::new("db".to_owned(), 1, spec, None, None).unwrap();
        let services = [db, service("r", json!({"Replicated": {"Replicas": 1}}))];
        let facts = NodeFacts {
            id: "n2".into(),
            hostname: "worker-2".into(),
            role: "worker".into(),
            schedulable: true,
            memory_bytes: 3 << 30,
            nano_cpus: 2_000_000_000,
            ..NodeFacts::default()
        };
        // worker-2 already runs a db task: 2 GiB of its 3 reserved, port 5432 taken.
        let mut elsewhere = task("db-2", "db", Some(2), "running");
        elsewhere.node_id = "n2".into();
        let rooms = node_rooms(vec![facts], &[elsewhere], &services);
        assert_eq!(rooms[0].reserved_memory_bytes, 2 << 30);
        let effect = drain_effect(
            &[
                task("db-1", "db", Some(1), "running"),
                task("r-1", "r", Some(1), "running"),
            ],
            &services,
            &rooms,
            None,
        );
        assert_eq!(effect.moving.len(), 1, "{effect:?}");
        assert_eq!(effect.moving[0].fate, "moves to worker-2");
        let fate = &effect.stopping[0].fate;
        assert!(
            fate.starts_with("stops: would stay pending: not enough memory on any ready, active node (it reserves 2.0 GiB)"),
            "{fate}"
        );
    }

    #[test]
    fn draining_the_servers_own_node_warns_that_the_dashboard_stops() {
        let id = "0f".repeat(32);
        let mountinfo = format!(
            "1520 1500 0:52 / / ro,relatime master:1 - overlay overlay rw\n\
             1530 1520 254:1 /var/lib/docker/containers/{id}/hostname /etc/hostname rw - ext4 /dev/vda1 rw\n"
        );
        assert_eq!(own_container_id(&mountinfo), Some(id.clone()));
        assert_eq!(
            own_container_id("36 35 98:0 /mnt1 /mnt2 rw - ext3 /dev/root rw\n"),
            None
        );
        let services = [service("s", json!({"Replicated": {"Replicas": 1}}))];
        let mut server = task("ts", "s", Some(1), "running");
        server.container_id = Some(id.clone());
        let other = task("to", "s", Some(2), "running");
        let effect = drain_effect(&[server, other], &services, &[], Some(&id));
        assert!(effect.stops_dashboard);
        let own: Vec<_> = effect.stopping.iter().filter(|t| t.own_server).collect();
        assert_eq!(own.len(), 1);
        assert_eq!(own[0].id, "ts");
        let elsewhere = drain_effect(
            &[task("to", "s", Some(2), "running")],
            &services,
            &[],
            Some(&id),
        );
        assert!(!elsewhere.stops_dashboard);
    }

    #[test]
    fn labels_are_key_value_lines() {
        let labels = parse_labels("zone=a\n\n disk = ssd\nflag\n").unwrap();
        assert_eq!(
            labels,
            BTreeMap::from([
                ("zone".into(), "a".into()),
                ("disk".into(), " ssd".into()),
                ("flag".into(), String::new())
            ])
        );
        assert_eq!(
            labels_text(&BTreeMap::from([("a".into(), "1".into())])),
            "a=1\n"
        );
        for (bad, why) in [
            ("=x", "line 1: a label needs a key"),
            ("a=1\na b=2", "line 2: the key \"a b\""),
            ("a=1\na=2", "line 2: a is given twice"),
        ] {
            let error = parse_labels(bad).unwrap_err();
            assert_eq!(error.field, "labels");
            assert!(error.message.starts_with(why), "{bad}: {}", error.message);
        }
        // Every wrong line at once.
        let error = parse_labels(
            "=x
ok=1
a b=2
ok=2",
        )
        .unwrap_err();
        assert_eq!(
            error.message,
            "line 1: a label needs a key before '='; line 3: the key \"a b\" has a space in it; \
             line 4: ok is given twice"
        );
    }

    #[test]
    fn choices_name_what_they_take() {
        assert!(one_of("availability", "drain", &AVAILABILITIES).is_ok());
        let error = one_of("availability", "off", &AVAILABILITIES).unwrap_err();
        assert_eq!(
            error.to_string(),
            "availability: \"off\" is not one of active, pause, drain"
        );
    }

    fn room(facts: NodeFacts) -> NodeRoom {
        NodeRoom {
            facts: NodeFacts {
                nano_cpus: 1_000_000_000,
                memory_bytes: 1 << 30,
                ..facts
            },
            ..NodeRoom::default()
        }
    }

    fn node(id: &str, hostname: &str) -> SwarmNode {
        SwarmNode {
            id: id.into(),
            version: 1,
            hostname: hostname.into(),
            role: "worker".into(),
            availability: "active".into(),
            labels: BTreeMap::new(),
            state: "down".into(),
            status_message: String::new(),
            addr: String::new(),
            leader: false,
            manager_reachability: None,
            engine_version: String::new(),
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

    #[test]
    fn only_a_worker_that_is_down_may_be_removed() {
        let mut node = node("n1", "w1");
        assert_eq!(removal_refusal(&node), None);
        node.state = "ready".into();
        assert!(removal_refusal(&node)
            .unwrap()
            .contains("is ready: only a node that is down"));
        node.state = "down".into();
        node.role = "manager".into();
        assert!(removal_refusal(&node).unwrap().contains("demote it first"));
    }

    #[test]
    fn a_label_change_displaces_the_tasks_whose_constraints_it_breaks() {
        let pinned = |name: &str, constraint: &str, labels: serde_json::Value| {
            let spec = json!({"Name": format!("svc-{name}"), "Labels": labels,
                "Mode": {"Replicated": {"Replicas": 1}},
                "TaskTemplate": {"ContainerSpec": {"Image": "x"},
                                 "Placement": {"Constraints": [constraint]}}});
            Service::new(name.to_owned(), 1, spec, None, None).unwrap()
        };
        let services = [
            pinned(
                "server",
                "node.labels.swarmkeeper.state == true",
                json!({"swarmkeeper.server": "true"}),
            ),
            pinned("web", "node.labels.tier == front", json!({})),
            pinned("any", "node.role == manager", json!({})),
        ];
        let tasks = [
            task("ts", "server", Some(1), "running"),
            task("tw", "web", Some(1), "running"),
            task("ta", "any", Some(1), "running"),
        ];
        let manager = NodeFacts {
            id: "n1".into(),
            hostname: "manager-1".into(),
            role: "manager".into(),
            labels: [("swarmkeeper.state", "true"), ("tier", "front")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into(),
            schedulable: true,
            ..NodeFacts::default()
        };
        let front = room(NodeFacts {
            id: "n2".into(),
            hostname: "worker-2".into(),
            role: "worker".into(),
            labels: [("tier".to_owned(), "front".to_owned())].into(),
            schedulable: true,
            ..NodeFacts::default()
        });
        let others = std::slice::from_ref(&front);
        // The same labels: nothing happens.
        let same = label_change_effect(&manager, &manager.labels, &tasks, &services, others, None);
        assert!(same.is_empty(), "{same:?}");
        // Without swarmkeeper.state and tier: the server has nowhere to go, web moves.
        let labels = BTreeMap::new();
        let effect = label_change_effect(&manager, &labels, &tasks, &services, others, None);
        assert_eq!(effect.moving.len(), 1, "{effect:?}");
        assert_eq!(effect.moving[0].fate, "moves to worker-2");
        assert_eq!(effect.stopping.len(), 1, "{effect:?}");
        assert_eq!(effect.stopping[0].service, "svc-server");
        assert!(effect.stopping[0].own_server && effect.stops_dashboard);
        let said = effect.summary();
        assert!(said.contains("svc-web.1 moves to worker-2"), "{said}");
        // The constraint this node stops meeting, then why no other node can run it.
        assert!(
            said.contains(
                "svc-server.1 stops: would stay pending: `node.labels.swarmkeeper.state == true` \
                 no longer matches manager-1, and no other node can run it: the placement \
                 constraint `node.labels.swarmkeeper.state == true` is not met on"
            ),
            "{said}"
        );
        assert!(
            said.ends_with("this stops the dashboard (swarmkeeper's own server)"),
            "{said}"
        );
    }

    #[test]
    fn an_even_number_of_managers_is_noted() {
        assert_eq!(
            even_managers_note(2).as_deref(),
            Some(
                "2 managers tolerate no failure, as 1 would: Raft needs a majority of managers; \
                 3 or 5 are recommended"
            )
        );
        assert!(even_managers_note(4)
            .unwrap()
            .starts_with("4 managers tolerate 1 failure, as 3 would"));
        for odd in [0, 1, 3, 5, 7] {
            assert_eq!(even_managers_note(odd), None, "{odd}");
        }
    }

    #[test]
    fn a_label_save_keeps_swarmkeepers_pressure_mark_as_it_is() {
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let paused = labels(&[("zone", "a"), (PRESSURE_LABEL, "disk 96% >= 95%")]);
        assert_eq!(editable_labels(&paused), labels(&[("zone", "a")]));
        // The form posts the editable labels only: the mark stays.
        assert_eq!(
            labels_to_save(&paused, labels(&[("zone", "b")])),
            Ok(labels(&[
                ("zone", "b"),
                (PRESSURE_LABEL, "disk 96% >= 95%")
            ]))
        );
        // Put back as it is (a script's read and write): kept.
        assert_eq!(labels_to_save(&paused, paused.clone()), Ok(paused.clone()));
        // Typed (tryout9 finding 2): refused, neither changed nor made up, never dropped
        // silently.
        let refused = "swarmkeeper.disk-pressure is set by swarmkeeper only (pause the node \
                       with Availability instead); nothing saved";
        assert_eq!(
            labels_to_save(&paused, labels(&[(PRESSURE_LABEL, "x")])),
            Err(refused.to_owned())
        );
        assert_eq!(
            labels_to_save(
                &labels(&[("zone", "a")]),
                labels(&[("zone", "b"), (PRESSURE_LABEL, "manual")])
            ),
            Err(refused.to_owned())
        );
        let text = "lab.node=worker2\nzone=b\n swarmkeeper.disk-pressure = manual\n";
        assert_eq!(label_line(text, PRESSURE_LABEL), Some(3));
        assert_eq!(label_line(text, "nope"), None);
    }

    #[test]
    fn a_down_node_is_not_promoted_and_the_only_manager_not_demoted() {
        let down = role_refusal("w2", "down", "worker", "manager", 1).unwrap();
        assert!(
            down.starts_with("w2 is down: a manager that cannot reach"),
            "{down}"
        );
        assert_eq!(role_refusal("w2", "ready", "worker", "manager", 1), None);
        let only = role_refusal("m1", "ready", "manager", "worker", 1).unwrap();
        assert!(only.starts_with("m1 is the swarm's only manager"), "{only}");
        assert_eq!(role_refusal("m1", "ready", "manager", "worker", 2), None);
        // A down manager may still be demoted (the engine says whether it can).
        assert_eq!(role_refusal("m2", "down", "manager", "worker", 3), None);
    }

    #[test]
    fn pausing_a_node_whose_agent_is_not_running_keeps_gc_off_and_says_to_activate() {
        let agent = Service::new(
            "a".into(),
            1,
            json!({"Name": "sk_agent", "Labels": {"swarmkeeper.agent": "true"},
                   "Mode": {"Global": {}}, "TaskTemplate": {"ContainerSpec": {"Image": "x"}}}),
            None,
            None,
        )
        .unwrap();
        let other = service("r", json!({"Replicated": {"Replicas": 1}}));
        let services = [agent, other];
        let on = |state: &str, desired: &str| Task {
            state: state.into(),
            ..task("t", "a", None, desired)
        };
        assert_eq!(
            agent_on_node(&services, &[on("running", "running")]),
            AgentOnNode::Running
        );
        // Stopped by a drain: shut down, or still stopping.
        for stopped in [on("shutdown", "shutdown"), on("running", "shutdown")] {
            assert_eq!(
                agent_on_node(&services, &[stopped]),
                AgentOnNode::NotRunning
            );
        }
        assert_eq!(agent_on_node(&services, &[]), AgentOnNode::NotRunning);
        assert_eq!(
            agent_on_node(&services[1..], &[]),
            AgentOnNode::NotDeployed,
            "no agent service: nothing to say"
        );
        let note = agent_off_note("node-2", "pause", AgentOnNode::NotRunning).unwrap();
        assert!(
            note.starts_with("swarmkeeper's agent is not running on node-2")
                && note.contains("Set it active"),
            "{note}"
        );
        for (availability, agent) in [
            ("pause", AgentOnNode::Running),
            ("pause", AgentOnNode::NotDeployed),
            ("active", AgentOnNode::NotRunning),
            ("drain", AgentOnNode::NotRunning),
        ] {
            assert_eq!(
                agent_off_note("node-2", availability, agent),
                None,
                "{availability} {agent:?}"
            );
        }
    }
}
