//! The preflight ("can any node run this service at all?") and the drain preview's placement
//! ("where does this task go?") share one definition of a task fitting a node
//! (`preflight::misfit`): on nodes with nothing reserved, a task the placement moves is never
//! refused by the preflight, and one the preflight lets through always finds a node.

use std::collections::BTreeMap;

use proptest::prelude::*;
use swarmkeeper_rollout::placement::{place, Displaced, NodeRoom, Placement};
use swarmkeeper_rollout::preflight::{misfit, unplaceable, NodeFacts, Reserved};
use swarmkeeper_swarm::Platform;

const GIB: u64 = 1 << 30;
const CONSTRAINTS: [&str; 9] = [
    "node.role==manager",
    "node.role!=manager",
    "node.labels.zone==a",
    "node.labels.zone!=b",
    "node.platform.os==linux",
    "node.platform.arch==aarch64",
    "engine.labels.gpu==true",
    "node.ip==10.0.0.0/8",
    "node.ip!=10.0.0.5",
];
const DRIVERS: [&str; 3] = ["json-file", "local", "syslog"];
const PLATFORMS: [(&str, &str); 4] = [
    ("linux", "amd64"),
    ("linux", "arm64"),
    ("windows", "amd64"),
    ("linux", ""),
];

fn arb_node() -> impl Strategy<Value = NodeFacts> {
    (
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(prop_oneof![Just("a"), Just("b")]),
        any::<bool>(),
        prop_oneof![Just("x86_64"), Just("aarch64"), Just("")],
        0u64..4,
        0u64..8,
        proptest::sample::subsequence(DRIVERS.to_vec(), 0..=DRIVERS.len()),
        // An empty address stands for a node that reports none.
        prop_oneof![Just("10.0.0.5"), Just("192.168.1.2"), Just("")],
    )
        .prop_map(
            |(schedulable, manager, zone, gpu, arch, cpus, gib, drivers, addr)| NodeFacts {
                id: "n".into(),
                hostname: "n".into(),
                role: if manager { "manager" } else { "worker" }.into(),
                // An empty architecture stands for a node that reports no platform.
                os: if arch.is_empty() { "" } else { "linux" }.into(),
                arch: arch.into(),
                labels: zone
                    .map(|z| ("zone".to_owned(), z.to_owned()))
                    .into_iter()
                    .collect(),
                engine_labels: if gpu {
                    BTreeMap::from([("gpu".to_owned(), "true".to_owned())])
                } else {
                    BTreeMap::new()
                },
                addr: addr.into(),
                schedulable,
                held: (!schedulable).then(|| "drained".to_owned()),
                nano_cpus: cpus * 1_000_000_000,
                memory_bytes: gib * GIB,
                log_drivers: drivers.into_iter().map(str::to_owned).collect(),
            },
        )
}

fn arb_task() -> impl Strategy<Value = Displaced> {
    (
        proptest::sample::subsequence(CONSTRAINTS.to_vec(), 0..=2),
        proptest::sample::subsequence(PLATFORMS.to_vec(), 0..=2),
        0u64..4,
        0u64..9,
        proptest::option::of(prop_oneof![
            Just("none"),
            Just(""),
            Just("local"),
            Just("syslog"),
            Just("gelf")
        ]),
    )
        .prop_map(|(constraints, platforms, cpus, gib, driver)| Displaced {
            service: "svc".into(),
            constraints: constraints.into_iter().map(str::to_owned).collect(),
            platforms: platforms
                .into_iter()
                .map(|(os, architecture)| Platform {
                    os: os.into(),
                    architecture: architecture.into(),
                })
                .collect(),
            nano_cpus: cpus * 1_000_000_000,
            memory_bytes: gib * GIB,
            log_driver: driver.map(str::to_owned),
            ..Displaced::default()
        })
}

/// The nodes as the drain preview sees them when nothing runs there yet.
fn empty_rooms(nodes: &[NodeFacts]) -> Vec<NodeRoom> {
    nodes
        .iter()
        .enumerate()
        .map(|(i, facts)| NodeRoom {
            facts: NodeFacts {
                hostname: format!("n{i}"),
                ..facts.clone()
            },
            ..NodeRoom::default()
        })
        .collect()
}

proptest! {
    #[test]
    fn preflight_and_placement_agree_on_empty_nodes(
        nodes in proptest::collection::vec(arb_node(), 0..4),
        task in arb_task(),
    ) {
        let refused = unplaceable(&task.needs(), &nodes).unwrap();
        let placed = place(std::slice::from_ref(&task), &empty_rooms(&nodes)).unwrap();
        let moves = matches!(placed[0], Placement::Moves { .. });
        prop_assert_eq!(refused.is_none(), moves, "preflight {:?}, placement {:?}", refused, placed);
        // Node by node, too: the node the task moves to fits it, by the one definition.
        if let Placement::Moves { to: host, .. } = &placed[0] {
            let i: usize = host[1..].parse().unwrap();
            prop_assert_eq!(misfit(&task.needs(), &nodes[i], Reserved::NOTHING).unwrap(), None);
        }
        for node in &nodes {
            let alone = unplaceable(&task.needs(), std::slice::from_ref(node)).unwrap();
            let fits = misfit(&task.needs(), node, Reserved::NOTHING).unwrap().is_none();
            prop_assert_eq!(alone.is_none(), fits);
        }
    }
}
