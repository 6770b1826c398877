//! Where displaced tasks (those of a node being drained) could run, by the filters Swarm's
//! scheduler applies to every node before it places a task (swarmkit's
//! `manager/scheduler/filter.go`): first those [`misfit`] defines for every
//! caller (ready and active; the CPU and memory the task reserves left over — the node's
//! resources less what the tasks already on it reserve; its log driver among the node's
//! plugins; the service's placement constraints; its image's platforms), then those that
//! depend on what runs there:
//! none of the task's host-mode published ports is taken on it; it runs fewer of the
//! service's tasks than the service's `MaxReplicas` per node.
//! A task no node passes stays pending, and [`place`] says why, counting the nodes each
//! filter turned away as Swarm's "no suitable node (…)" does.
//!
//! Tasks are placed one after another, each taking its room on the node it lands on (so two
//! tasks that each fit alone may not both fit); among the nodes that pass, the one with the
//! fewest tasks of the service, then the fewest tasks, as swarmkit's spread does. Volume and
//! network plugins and generic resources are not weighed: the engine's answers the shell
//! reads do not carry them.

use std::collections::{BTreeMap, HashMap};

use swarmkeeper_swarm::{
    Platform, PublishMode, Service, ServiceMode, ServiceView, Task, TaskState, UpdateOrder,
};
use swarmkeeper_units::bytes;

use crate::preflight::{misfit, Misfit, Needs, NodeFacts, Reserved};

/// A node a task might move to, and what already runs there.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeRoom {
    /// Hostname, role, labels, resources, log plugins, and whether it is ready and active.
    pub facts: NodeFacts,
    /// What the tasks Swarm keeps on it reserve: billionths of a CPU, bytes of memory.
    pub reserved_nano_cpus: u64,
    pub reserved_memory_bytes: u64,
    /// Host-mode published ports in use on it: `(protocol, port)`, with the service that
    /// publishes each.
    pub host_ports: BTreeMap<(String, u32), String>,
    /// Tasks Swarm keeps on it, by service name.
    pub tasks: BTreeMap<String, u64>,
}

/// A task that needs a node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Displaced {
    pub service: String,
    /// `Placement.Constraints`.
    pub constraints: Vec<String>,
    /// `Resources.Reservations`.
    pub nano_cpus: u64,
    pub memory_bytes: u64,
    /// `TaskTemplate.LogDriver.Name`, when it names one.
    pub log_driver: Option<String>,
    /// `TaskTemplate.Placement.Platforms`; empty: any.
    pub platforms: Vec<Platform>,
    /// Host-mode published ports: `(protocol, port)`, port not 0.
    pub host_ports: Vec<(String, u32)>,
    /// `Placement.MaxReplicas`; 0: no limit.
    pub max_replicas: u64,
}

impl Displaced {
    /// What a task of service `name`, whose spec is `view`, asks of a node.
    pub fn of(name: &str, view: &ServiceView) -> Displaced {
        Displaced {
            service: name.to_owned(),
            constraints: view.constraints.clone(),
            nano_cpus: view.reservations.nano_cpus,
            memory_bytes: view.reservations.memory_bytes,
            log_driver: view.log_driver.as_ref().map(|d| d.name.clone()),
            platforms: view.platforms.clone(),
            host_ports: view
                .ports
                .iter()
                .filter(|p| p.publish_mode == PublishMode::Host && p.published_port != 0)
                .map(|p| (p.protocol.clone(), p.published_port))
                .collect(),
            max_replicas: view.max_replicas,
        }
    }

    /// What the task asks of any node, as the preflight reads a service's needs.
    pub fn needs(&self) -> Needs<'_> {
        Needs {
            constraints: &self.constraints,
            nano_cpus: self.nano_cpus,
            memory_bytes: self.memory_bytes,
            log_driver: self.log_driver.as_deref(),
            platforms: &self.platforms,
        }
    }
}

impl NodeRoom {
    fn reserved(&self) -> Reserved {
        Reserved {
            nano_cpus: self.reserved_nano_cpus,
            memory_bytes: self.reserved_memory_bytes,
        }
    }
}

/// Where a task goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Onto a node that passes every filter: `to` (a hostname), the one this simulation gives
    /// it and counts for the tasks after it; `alike`, the other nodes that pass and are as
    /// loaded by the spread rule, among which Swarm's own pick is not known in advance (its
    /// scheduler breaks ties its own way; tryout 12 saw two tasks land the other way round).
    Moves { to: String, alike: Vec<String> },
    /// Nowhere: why, for people (`not enough memory on any ready, active node (it reserves
    /// 2.0 GiB; 2 nodes looked at)`).
    Pending(String),
}

/// Why one node turned a task away: the first filter it failed, in swarmkit's order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Refusal {
    /// One of the filters every caller shares ([`misfit`]).
    Node(Misfit),
    HostPort(String, u32),
    MaxReplicas,
}

/// Places `tasks` in order on `nodes` (see the module's rules). A constraint Swarm cannot
/// parse is an error naming it.
pub fn place(tasks: &[Displaced], nodes: &[NodeRoom]) -> Result<Vec<Placement>, String> {
    let mut nodes = nodes.to_vec();
    let mut placed = Vec::with_capacity(tasks.len());
    for task in tasks {
        let mut refusals = Vec::new();
        let mut fit = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            match refusal(task, node)? {
                Some(refusal) => refusals.push(refusal),
                None => fit.push(i),
            }
        }
        let load = |n: &NodeRoom| {
            (
                n.tasks.get(&task.service).copied().unwrap_or(0),
                n.tasks.values().sum::<u64>(),
            )
        };
        let least = fit.iter().map(|&i| load(&nodes[i])).min();
        let mut lightest = fit.into_iter().filter(|&i| Some(load(&nodes[i])) == least);
        let best = lightest.next();
        let alike: Vec<String> = lightest.map(|i| nodes[i].facts.hostname.clone()).collect();
        placed.push(match best {
            Some(i) => {
                let node = &mut nodes[i];
                node.reserved_nano_cpus += task.nano_cpus;
                node.reserved_memory_bytes += task.memory_bytes;
                for port in &task.host_ports {
                    node.host_ports.insert(port.clone(), task.service.clone());
                }
                *node.tasks.entry(task.service.clone()).or_default() += 1;
                Placement::Moves {
                    to: node.facts.hostname.clone(),
                    alike,
                }
            }
            None => Placement::Pending(explain(task, &refusals)),
        });
    }
    Ok(placed)
}

/// The swarm's nodes as the scheduler's filters weigh them: each node's facts (`nodes`) and
/// what the tasks Swarm keeps on it (`tasks`: the swarm's tasks, desired `running`) reserve,
/// publish on host ports and count, read from their services (`services`). Tasks of a
/// service `leave_out` keeps are not counted: a deploy replaces them (its update frees their
/// ports).
pub fn node_rooms(
    nodes: Vec<NodeFacts>,
    tasks: &[Task],
    services: &[Service],
    leave_out: impl Fn(&Service) -> bool,
) -> Vec<NodeRoom> {
    let by_id: HashMap<&str, Displaced> = services
        .iter()
        .filter(|s| !leave_out(s))
        .map(|s| (s.id.as_str(), Displaced::of(&s.name, &s.view)))
        .collect();
    nodes
        .into_iter()
        .map(|facts| {
            let mut room = NodeRoom::default();
            for task in tasks
                .iter()
                .filter(|t| t.node_id == facts.id && t.desired_state == TaskState::Running)
            {
                let Some(need) = by_id.get(task.service_id.as_str()) else {
                    continue;
                };
                room.reserved_nano_cpus += need.nano_cpus;
                room.reserved_memory_bytes += need.memory_bytes;
                for port in &need.host_ports {
                    room.host_ports.insert(port.clone(), need.service.clone());
                }
                *room.tasks.entry(need.service.clone()).or_default() += 1;
            }
            room.facts = facts;
            room
        })
        .collect()
}

/// Why an update of `name` to `view` that starts each new task before it stops an old one
/// (`update_config.order: start-first`) could never start its first new task: each needs a
/// node where its host-mode port is free while the service's old tasks still hold theirs, and
/// none of `nodes` (which count those old tasks, and what every other service holds) is
/// such a node. Swarm then leaves the update pending until the deploy times out (tryout 14
/// finding 12: ten minutes of "updating"). Reservations are left out, as in
/// [`replicas_left_pending`]. `None`: the order is stop-first, the service publishes no
/// host-mode port or holds none yet (it is new), or a node has room. A constraint Swarm
/// cannot parse is an error.
pub fn start_first_stuck(
    name: &str,
    view: &ServiceView,
    nodes: &[NodeRoom],
) -> Result<Option<String>, String> {
    let task = Displaced {
        nano_cpus: 0,
        memory_bytes: 0,
        ..Displaced::of(name, view)
    };
    let holds_a_port = nodes
        .iter()
        .any(|n| n.host_ports.values().any(|holder| holder == name));
    if view.update_config.order != UpdateOrder::StartFirst
        || task.host_ports.is_empty()
        || !holds_a_port
    {
        return Ok(None);
    }
    let Some(Placement::Pending(why)) = place(std::slice::from_ref(&task), nodes)?.pop() else {
        return Ok(None);
    };
    let (protocol, port) = &task.host_ports[0];
    Ok(Some(format!(
        "with update_config.order start-first, a new task must start before an old one stops, \
         on a node where port {port}/{protocol} is free while the old tasks still hold it, and \
         there is none: {why}; set update_config.order to stop-first, or give it a node more"
    )))
}

/// Why Swarm would leave some of the replicas of service `name` (spec `view`) pending for
/// ever although a node can run one: a port it publishes in host mode needs a node of its
/// own for each task where no other service publishes it (swarmkit's host-port filter), and
/// `max_replicas_per_node` caps the tasks of one node — with fewer such nodes than replicas,
/// the deploy would wait for its timeout and roll back. The tasks are placed as [`place`]
/// places them, over `nodes` ([`node_rooms`] without the service itself, whose own tasks
/// its update replaces); their reservations are left out, as the preflight compares them with
/// empty nodes (`preflight::unplaceable`). The reason names the port, each node that can
/// run the service where it is taken, and by which service. `None`: every replica has a
/// node, or the service is not replicated or has neither. A constraint Swarm cannot parse is
/// an error.
pub fn replicas_left_pending(
    name: &str,
    view: &ServiceView,
    nodes: &[NodeRoom],
) -> Result<Option<String>, String> {
    let ServiceMode::Replicated { replicas } = view.mode else {
        return Ok(None);
    };
    let task = Displaced {
        nano_cpus: 0,
        memory_bytes: 0,
        ..Displaced::of(name, view)
    };
    if replicas == 0 || (task.host_ports.is_empty() && task.max_replicas == 0) {
        return Ok(None);
    }
    // The service's own tasks, should `nodes` count them, are the ones its update replaces.
    let nodes: Vec<NodeRoom> = nodes
        .iter()
        .cloned()
        .map(|mut node| {
            node.host_ports.retain(|_, holder| holder != name);
            node.tasks.remove(name);
            node
        })
        .collect();
    let copies = vec![task.clone(); usize::try_from(replicas).unwrap_or(usize::MAX)];
    let pending = place(&copies, &nodes)?
        .iter()
        .filter(|p| matches!(p, Placement::Pending(_)))
        .count();
    if pending == 0 {
        return Ok(None);
    }
    // The nodes that can run one of its tasks, by the filters of every caller.
    let mut able = Vec::new();
    for node in &nodes {
        if misfit(&task.needs(), &node.facts, Reserved::NOTHING)?.is_none() {
            able.push(node);
        }
    }
    let nodes_word = |n: usize| if n == 1 { "node" } else { "nodes" };
    let left = format!(
        "Swarm would leave {pending} of them pending (\"no suitable node\") until the deploy \
         times out"
    );
    let Some((protocol, port)) = task.host_ports.first() else {
        return Ok(Some(format!(
            "it asks for {replicas} replicas with at most {} per node, and {} ready, active {} \
             can run it: {left}",
            task.max_replicas,
            able.len(),
            nodes_word(able.len())
        )));
    };
    let key = (protocol.clone(), *port);
    let taken: Vec<String> = able
        .iter()
        .filter_map(|n| {
            let holder = n.host_ports.get(&key)?;
            Some(format!("on {} by service {holder}", n.facts.hostname))
        })
        .collect();
    let free = able.len() - taken.len();
    let mut why = format!(
        "it publishes port {port}/{protocol} in host mode with {replicas} {}: each task needs \
         a node of its own where no other task publishes that port, and {free} of the {} \
         ready, active {} that can run it {} it free",
        if replicas == 1 { "replica" } else { "replicas" },
        able.len(),
        nodes_word(able.len()),
        if free == 1 { "has" } else { "have" }
    );
    if !taken.is_empty() {
        why.push_str(&format!(" (taken {})", taken.join(", ")));
    }
    why.push_str(&format!(
        "; {left}; publish it in ingress mode, or run fewer replicas"
    ));
    Ok(Some(why))
}

fn refusal(task: &Displaced, node: &NodeRoom) -> Result<Option<Refusal>, String> {
    if let Some(misfit) = misfit(&task.needs(), &node.facts, node.reserved())? {
        return Ok(Some(Refusal::Node(misfit)));
    }
    if let Some((protocol, port)) = task
        .host_ports
        .iter()
        .find(|p| node.host_ports.contains_key(*p))
    {
        return Ok(Some(Refusal::HostPort(protocol.clone(), *port)));
    }
    let running = node.tasks.get(&task.service).copied().unwrap_or(0);
    if task.max_replicas > 0 && running >= task.max_replicas {
        return Ok(Some(Refusal::MaxReplicas));
    }
    Ok(None)
}

/// Why no node takes `task`: each filter's refusals counted, the most common first.
fn explain(task: &Displaced, refusals: &[Refusal]) -> String {
    let not_ready = Refusal::Node(Misfit::NotReady);
    let ready = refusals.iter().filter(|r| **r != not_ready).count();
    if ready == 0 {
        return "no other node is ready and active".to_owned();
    }
    let mut counts: BTreeMap<&Refusal, usize> = BTreeMap::new();
    for refusal in refusals.iter().filter(|r| **r != not_ready) {
        *counts.entry(refusal).or_default() += 1;
    }
    let mut counted: Vec<(&Refusal, usize)> = counts.into_iter().collect();
    counted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let nodes = |n: usize| {
        if n == ready {
            "any ready, active node".to_owned()
        } else if n == 1 {
            "1 node".to_owned()
        } else {
            format!("{n} nodes")
        }
    };
    let parts: Vec<String> = counted
        .iter()
        .map(|(refusal, n)| match refusal {
            Refusal::Node(Misfit::NotReady) => unreachable!("left out above"),
            Refusal::Node(Misfit::Cpu) => format!(
                "not enough CPU on {} (it reserves {} CPUs)",
                nodes(*n),
                task.nano_cpus as f64 / 1e9
            ),
            Refusal::Node(Misfit::Memory) => format!(
                "not enough memory on {} (it reserves {})",
                nodes(*n),
                bytes(task.memory_bytes)
            ),
            Refusal::Node(Misfit::LogDriver) => format!(
                "log driver `{}` is not on {}",
                task.log_driver.as_deref().unwrap_or_default(),
                nodes(*n)
            ),
            Refusal::Node(Misfit::Platform) => {
                format!("its image's platforms are not those of {}", nodes(*n))
            }
            Refusal::Node(Misfit::Constraint(text)) => {
                format!(
                    "the placement constraint `{text}` is not met on {}",
                    nodes(*n)
                )
            }
            Refusal::HostPort(protocol, port) => {
                format!("host port {port}/{protocol} is taken on {}", nodes(*n))
            }
            Refusal::MaxReplicas => format!(
                "{} already runs the most replicas per node ({})",
                nodes(*n),
                task.max_replicas
            ),
        })
        .collect();
    format!(
        "{} ({ready} ready, active node{} looked at)",
        parts.join("; "),
        if ready == 1 { "" } else { "s" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GIB: u64 = 1 << 30;

    fn node(name: &str, memory_gib: u64) -> NodeRoom {
        NodeRoom {
            facts: NodeFacts {
                id: name.into(),
                hostname: name.into(),
                role: "worker".into(),
                schedulable: true,
                nano_cpus: 2_000_000_000,
                memory_bytes: memory_gib * GIB,
                ..NodeFacts::default()
            },
            ..NodeRoom::default()
        }
    }

    fn task(service: &str) -> Displaced {
        Displaced {
            service: service.into(),
            ..Displaced::default()
        }
    }

    /// A move to `to`, no other node as loaded.
    fn moves(to: &str) -> Placement {
        Placement::Moves {
            to: to.into(),
            alike: Vec::new(),
        }
    }

    #[test]
    fn equally_loaded_nodes_are_named_as_alike() {
        let placed = place(
            &[task("web"), task("api")],
            &[node("w1", 4), node("w2", 4), node("w3", 4)],
        )
        .unwrap();
        assert_eq!(
            placed[0],
            Placement::Moves {
                to: "w1".into(),
                alike: vec!["w2".into(), "w3".into()]
            }
        );
        // w1 now runs one task more: the next one's least loaded are w2 and w3.
        assert_eq!(
            placed[1],
            Placement::Moves {
                to: "w2".into(),
                alike: vec!["w3".into()]
            }
        );
    }

    #[test]
    fn a_task_without_needs_moves_to_the_least_loaded_node() {
        let mut busy = node("w1", 4);
        busy.tasks.insert("web".into(), 1);
        let placed = place(&[task("web")], &[busy, node("w2", 4)]).unwrap();
        assert_eq!(placed, [moves("w2")]);
    }

    #[test]
    fn reservations_take_room_and_the_second_task_stays_pending() {
        let db = Displaced {
            memory_bytes: 3 * GIB,
            ..task("db")
        };
        let placed = place(&[db.clone(), db], &[node("w1", 4)]).unwrap();
        assert_eq!(placed[0], moves("w1"));
        assert_eq!(
            placed[1],
            Placement::Pending(
                "not enough memory on any ready, active node (it reserves 3.0 GiB) \
                 (1 ready, active node looked at)"
                    .into()
            )
        );
    }

    #[test]
    fn what_the_node_already_reserves_counts() {
        let mut full = node("w1", 4);
        full.reserved_memory_bytes = 3 * GIB;
        full.reserved_nano_cpus = 1_500_000_000;
        let cpu = Displaced {
            nano_cpus: 1_000_000_000,
            ..task("a")
        };
        let Placement::Pending(why) = &place(&[cpu], &[full]).unwrap()[0] else {
            panic!("moved")
        };
        assert!(
            why.starts_with("not enough CPU on any ready, active node (it reserves 1 CPUs)"),
            "{why}"
        );
    }

    #[test]
    fn a_host_port_in_use_constraints_and_max_replicas_turn_nodes_away() {
        let mut taken = node("w1", 4);
        taken
            .host_ports
            .insert(("tcp".into(), 8080), "other".into());
        let mut labelled = node("w2", 4);
        labelled.facts.labels.insert("zone".into(), "a".into());
        let mut full = node("w3", 4);
        full.facts.labels.insert("zone".into(), "a".into());
        full.tasks.insert("web".into(), 1);
        let web = Displaced {
            host_ports: vec![("tcp".into(), 8080)],
            constraints: vec!["node.labels.zone==a".into()],
            max_replicas: 1,
            ..task("web")
        };
        // w1 fails the constraint first (swarmkit's order), w3 the replicas; w2 takes it.
        let nodes = [taken, labelled, full];
        assert_eq!(
            place(std::slice::from_ref(&web), &nodes).unwrap(),
            [moves("w2")]
        );
        // A second one: w2 now holds the port.
        let placed = place(&[web.clone(), web.clone()], &nodes).unwrap();
        let Placement::Pending(why) = &placed[1] else {
            panic!("{placed:?}")
        };
        assert!(
            why.contains("the placement constraint `node.labels.zone==a` is not met on 1 node"),
            "{why}"
        );
        assert!(
            why.contains("host port 8080/tcp is taken on 1 node"),
            "{why}"
        );
        assert!(
            why.contains("1 node already runs the most replicas per node (1)"),
            "{why}"
        );
        assert!(why.ends_with("(3 ready, active nodes looked at)"), "{why}");
    }

    #[test]
    fn a_log_driver_the_node_lacks_turns_it_away() {
        let mut syslog = node("w2", 4);
        syslog.facts.log_drivers = vec!["json-file".into(), "syslog".into()];
        let mut plain = node("w1", 4);
        plain.facts.log_drivers = vec!["json-file".into(), "local".into()];
        let logs = Displaced {
            log_driver: Some("syslog".into()),
            ..task("a")
        };
        let placed = place(std::slice::from_ref(&logs), &[plain.clone(), syslog]).unwrap();
        assert_eq!(placed, [moves("w2")]);
        let Placement::Pending(why) = &place(&[logs], &[plain]).unwrap()[0] else {
            panic!("moved")
        };
        assert_eq!(
            why,
            "log driver `syslog` is not on any ready, active node (1 ready, active node looked at)"
        );
    }

    #[test]
    fn an_image_for_another_platform_stays_pending() {
        let arm = Displaced {
            platforms: vec![Platform {
                os: "linux".into(),
                architecture: "arm64".into(),
            }],
            ..task("a")
        };
        let mut x86 = node("w1", 4);
        (x86.facts.os, x86.facts.arch) = ("linux".into(), "x86_64".into());
        let mut pi = node("pi", 4);
        (pi.facts.os, pi.facts.arch) = ("linux".into(), "aarch64".into());
        let placed = place(std::slice::from_ref(&arm), &[x86.clone(), pi]).unwrap();
        assert_eq!(placed, [moves("pi")]);
        assert_eq!(
            place(&[arm], &[x86]).unwrap(),
            [Placement::Pending(
                "its image's platforms are not those of any ready, active node \
                 (1 ready, active node looked at)"
                    .into()
            )]
        );
    }

    #[test]
    fn no_ready_node_and_a_bad_constraint() {
        let mut down = node("w1", 4);
        down.facts.schedulable = false;
        assert_eq!(
            place(&[task("a")], &[down]).unwrap(),
            [Placement::Pending(
                "no other node is ready and active".into()
            )]
        );
        let bad = Displaced {
            constraints: vec!["zone".into()],
            ..task("a")
        };
        assert!(place(&[bad], &[node("w1", 1)]).is_err());
    }

    fn web(replicas: u64, ports: serde_json::Value, max_replicas: u64) -> ServiceView {
        ServiceView::read(&serde_json::json!({
            "Name": "web",
            "Mode": {"Replicated": {"Replicas": replicas}},
            "TaskTemplate": {"ContainerSpec": {"Image": "nginx"},
                             "Resources": {"Reservations": {"MemoryBytes": 3 * GIB}},
                             "Placement": {"MaxReplicas": max_replicas}},
            "EndpointSpec": {"Ports": ports}
        }))
        .unwrap()
    }

    fn host_port(port: u32) -> serde_json::Value {
        serde_json::json!([{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": port,
                            "PublishMode": "host"}])
    }

    #[test]
    fn a_start_first_update_needs_a_node_its_old_tasks_leave_free() {
        // Tryout 14 finding 12: two replicas on two nodes, a host port, start-first.
        let start_first = |replicas| {
            let mut view = web(replicas, host_port(8081), 0);
            view.update_config.order = UpdateOrder::StartFirst;
            view
        };
        let holding = |name: &str| {
            let mut n = node(name, 4);
            n.host_ports.insert(("tcp".into(), 8081), "web".into());
            n.tasks.insert("web".into(), 1);
            n
        };
        let stuck =
            |view: &ServiceView, nodes: &[NodeRoom]| start_first_stuck("web", view, nodes).unwrap();
        let why = stuck(&start_first(2), &[holding("w1"), holding("w2")]).unwrap();
        assert!(
            why.starts_with("with update_config.order start-first, a new task must start before an old one stops, on a node where port 8081/tcp is free"),
            "{why}"
        );
        // A third node takes the first new task; then an old one stops, and so on.
        assert_eq!(
            stuck(
                &start_first(2),
                &[holding("w1"), holding("w2"), node("w3", 4)]
            ),
            None
        );
        // Stop-first frees the port first; a new service holds nothing yet.
        assert_eq!(
            stuck(&web(2, host_port(8081), 0), &[holding("w1"), holding("w2")]),
            None
        );
        assert_eq!(
            stuck(&start_first(2), &[node("w1", 4), node("w2", 4)]),
            None
        );
    }

    #[test]
    fn replicas_publishing_a_host_port_need_a_node_each_where_it_is_free() {
        let nodes = [node("w1", 4), node("w2", 4)];
        let short = |view: &ServiceView, nodes: &[NodeRoom]| {
            replicas_left_pending("web", view, nodes).unwrap()
        };
        // Two nodes, two replicas: one each (their 3 GiB reservations are the preflight's
        // `unplaceable` to weigh, on empty nodes: not counted twice here).
        assert_eq!(short(&web(2, host_port(8080), 0), &nodes), None);
        let why = short(&web(3, host_port(8080), 0), &nodes).unwrap();
        assert_eq!(
            why,
            "it publishes port 8080/tcp in host mode with 3 replicas: each task needs a node \
             of its own where no other task publishes that port, and 2 of the 2 ready, active \
             nodes that can run it have it free; Swarm would leave 1 of them pending (\"no \
             suitable node\") until the deploy times out; publish it in ingress mode, or run \
             fewer replicas"
        );
        // Another service holds it on w1; a node that is not active does not count.
        let mut taken = node("w1", 4);
        taken
            .host_ports
            .insert(("tcp".into(), 8080), "proxy".into());
        let mut paused = node("w3", 4);
        paused.facts.schedulable = false;
        let nodes = [taken, node("w2", 4), paused];
        let why = short(&web(2, host_port(8080), 0), &nodes).unwrap();
        assert!(
            why.contains("1 of the 2 ready, active nodes that can run it has it free (taken on w1 by service proxy)"),
            "{why}"
        );
        assert_eq!(short(&web(1, host_port(8080), 0), &nodes), None);
        // Another port, the routing mesh, or the service's own tasks leave it free.
        assert_eq!(short(&web(2, host_port(9090), 0), &nodes), None);
        let mesh = serde_json::json!([{"Protocol": "tcp", "TargetPort": 80,
                                       "PublishedPort": 8080}]);
        assert_eq!(short(&web(5, mesh.clone(), 0), &nodes), None);
        let mut own = node("w1", 4);
        own.host_ports.insert(("tcp".into(), 8080), "web".into());
        own.tasks.insert("web".into(), 1);
        let why = short(&web(2, host_port(8080), 0), &[own]).unwrap();
        assert!(
            why.contains("1 of the 1 ready, active node that can run it has it free; Swarm would leave 1 of them pending"),
            "{why}"
        );
        // max_replicas_per_node caps a node's tasks, host port or not.
        let why = short(&web(5, mesh, 2), &[node("w1", 4), node("w2", 4)]).unwrap();
        assert!(
            why.starts_with("it asks for 5 replicas with at most 2 per node, and 2 ready, active nodes can run it: Swarm would leave 1 of them pending"),
            "{why}"
        );
        // A global service is Swarm's one task per node.
        let global = ServiceView {
            mode: ServiceMode::Global,
            ..web(2, host_port(8080), 0)
        };
        assert_eq!(short(&global, &[node("w1", 4)]), None);
    }

    #[test]
    fn node_rooms_count_what_running_tasks_hold_but_the_service_left_out() {
        let proxy = Service::new(
            "p".into(),
            1,
            serde_json::json!({"Name": "proxy", "TaskTemplate": {"ContainerSpec": {"Image": "x"}},
                               "EndpointSpec": {"Ports": host_port(8080)}}),
            None,
            None,
        )
        .unwrap();
        let web = Service::new(
            "w".into(),
            1,
            serde_json::json!({"Name": "web", "TaskTemplate": {"ContainerSpec": {"Image": "x"}},
                               "EndpointSpec": {"Ports": host_port(9090)}}),
            None,
            None,
        )
        .unwrap();
        let task = |service: &str, desired: TaskState| Task {
            service_id: service.into(),
            node_id: "w1".into(),
            desired_state: desired,
            ..Task::default()
        };
        let tasks = [
            task("p", TaskState::Running),
            task("w", TaskState::Running),
            task("p", TaskState::Shutdown),
        ];
        let services = [proxy, web];
        let rooms = node_rooms(vec![node("w1", 4).facts], &tasks, &services, |s| {
            s.name == "web"
        });
        assert_eq!(
            rooms[0].host_ports,
            BTreeMap::from([(("tcp".to_owned(), 8080), "proxy".to_owned())])
        );
        assert_eq!(rooms[0].tasks, BTreeMap::from([("proxy".to_owned(), 1)]));
    }

    fn arb_node() -> impl Strategy<Value = NodeRoom> {
        (
            0u64..4,
            0u64..8,
            any::<bool>(),
            proptest::option::of(8000u32..8003),
        )
            .prop_map(|(cpus, gib, schedulable, port)| {
                let mut n = node("n", gib);
                n.facts.nano_cpus = cpus * 1_000_000_000;
                n.facts.schedulable = schedulable;
                n.host_ports
                    .extend(port.map(|p| (("tcp".to_owned(), p), "other".to_owned())));
                n
            })
    }

    fn arb_task() -> impl Strategy<Value = Displaced> {
        (
            0u64..3,
            0u64..4,
            proptest::option::of(8000u32..8003),
            0u64..3,
        )
            .prop_map(|(cpus, gib, port, max)| Displaced {
                nano_cpus: cpus * 1_000_000_000,
                memory_bytes: gib * GIB,
                host_ports: port.map(|p| ("tcp".to_owned(), p)).into_iter().collect(),
                max_replicas: max,
                ..task("svc")
            })
    }

    proptest! {
        /// Whatever moves fits: no node ends over its CPU or memory, with a host port twice,
        /// or with more replicas than allowed; and a task that stays pending had no node
        /// passing every filter at its turn.
        #[test]
        fn placements_respect_every_filter(
            nodes in proptest::collection::vec(arb_node(), 0..5),
            tasks in proptest::collection::vec(arb_task(), 0..8),
        ) {
            let mut nodes: Vec<NodeRoom> = nodes
                .into_iter()
                .enumerate()
                .map(|(i, mut n)| { n.facts.hostname = format!("n{i}"); n })
                .collect();
            let placed = place(&tasks, &nodes).unwrap();
            prop_assert_eq!(placed.len(), tasks.len());
            for (task, placement) in tasks.iter().zip(&placed) {
                let fits: Vec<usize> = (0..nodes.len())
                    .filter(|&i| refusal(task, &nodes[i]).unwrap().is_none())
                    .collect();
                match placement {
                    Placement::Moves { to: host, .. } => {
                        let i = nodes.iter().position(|n| &n.facts.hostname == host).unwrap();
                        prop_assert!(fits.contains(&i));
                        let n = &mut nodes[i];
                        n.reserved_nano_cpus += task.nano_cpus;
                        n.reserved_memory_bytes += task.memory_bytes;
                        // A node that reports no figure is not compared (`preflight::misfit`).
                        let (cpus, memory) = (n.facts.nano_cpus, n.facts.memory_bytes);
                        prop_assert!(n.reserved_nano_cpus <= cpus || task.nano_cpus == 0 || cpus == 0);
                        prop_assert!(n.reserved_memory_bytes <= memory || task.memory_bytes == 0 || memory == 0);
                        for port in &task.host_ports {
                            n.host_ports.insert(port.clone(), task.service.clone());
                        }
                        *n.tasks.entry(task.service.clone()).or_default() += 1;
                    }
                    Placement::Pending(why) => {
                        prop_assert!(fits.is_empty());
                        prop_assert!(!why.is_empty());
                    }
                }
            }
        }
    }

    proptest! {
        /// `replicas_left_pending` refuses exactly when the replicas outnumber the nodes that
        /// can run the service with its host port free (at most one task each).
        #[test]
        fn host_port_replicas_are_refused_exactly_when_free_nodes_run_out(
            nodes in proptest::collection::vec(arb_node(), 0..5),
            replicas in 1u64..6,
        ) {
            let nodes: Vec<NodeRoom> = nodes
                .into_iter()
                .enumerate()
                .map(|(i, mut n)| { n.facts.hostname = format!("n{i}"); n })
                .collect();
            let view = web(replicas, host_port(8001), 0);
            let free = nodes
                .iter()
                .filter(|n| n.facts.schedulable && !n.host_ports.contains_key(&("tcp".to_owned(), 8001)))
                .count() as u64;
            let refused = replicas_left_pending("web", &view, &nodes).unwrap();
            prop_assert_eq!(refused.is_some(), replicas > free, "{:?}", refused);
        }
    }
}
