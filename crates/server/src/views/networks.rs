//! Networks: each with the services and running tasks attached, the check of a subnet, and
//! whether one may be removed. Pure.

use std::collections::HashMap;
use std::net::IpAddr;

use jiff::Timestamp;
use serde::Serialize;
use swarmkeeper_engine::{Network, Service, Task, TaskState, STACK_NAMESPACE_LABEL};

use super::FieldError;

/// A network as its page lists it.
#[derive(Clone, Debug, Serialize)]
pub struct NetworkRow {
    pub id: String,
    pub name: String,
    pub driver: String,
    pub scope: String,
    pub attachable: bool,
    pub internal: bool,
    /// Traffic between nodes is encrypted (the overlay's `encrypted` option).
    pub encrypted: bool,
    pub ingress: bool,
    /// `SUBNET` or `SUBNET via GATEWAY`.
    pub subnets: Vec<String>,
    pub stack: Option<String>,
    pub created_at: Option<Timestamp>,
    /// Services whose tasks attach to it, by name.
    pub services: Vec<String>,
    /// Tasks Swarm means to keep running that are attached to it.
    pub tasks: usize,
}

/// Networks the engine makes on every node itself; none can be removed.
const PREDEFINED: [&str; 4] = ["bridge", "host", "none", "docker_gwbridge"];

/// Each network with its users, sorted by name; one pass over services and tasks.
pub fn network_rows(networks: &[Network], services: &[Service], tasks: &[Task]) -> Vec<NetworkRow> {
    let mut users: HashMap<&str, Vec<String>> = HashMap::new();
    for service in services {
        for target in &service.view.networks {
            users.entry(target).or_default().push(service.name.clone());
        }
    }
    let mut attached: HashMap<&str, usize> = HashMap::new();
    for task in tasks
        .iter()
        .filter(|t| t.desired_state == TaskState::Running)
    {
        for network in &task.networks {
            *attached.entry(network).or_default() += 1;
        }
    }
    let mut rows: Vec<NetworkRow> = networks
        .iter()
        .map(|n| {
            // The engine stores a service's network by id; a spec written by hand may name it.
            let mut services: Vec<String> = [n.id.as_str(), n.name.as_str()]
                .iter()
                .filter_map(|key| users.get(key))
                .flatten()
                .cloned()
                .collect();
            services.sort();
            services.dedup();
            NetworkRow {
                id: n.id.clone(),
                name: n.name.clone(),
                driver: n.driver.clone(),
                scope: n.scope.clone(),
                attachable: n.attachable,
                internal: n.internal,
                encrypted: n.encrypted,
                ingress: n.ingress,
                subnets: n
                    .subnets
                    .iter()
                    .map(|(subnet, gateway)| match gateway.is_empty() {
                        true => subnet.clone(),
                        false => format!("{subnet} via {gateway}"),
                    })
                    .collect(),
                stack: n.labels.get(STACK_NAMESPACE_LABEL).cloned(),
                created_at: n.created_at,
                services,
                tasks: attached.get(n.id.as_str()).copied().unwrap_or(0),
            }
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    rows
}

/// A subnet in CIDR notation (`10.20.0.0/24`, `fd00::/64`), or a message for the field.
pub fn check_subnet(text: &str) -> Result<(), FieldError> {
    let refuse = || {
        Err(FieldError::new(
            "subnet",
            format!("{text:?} is not a subnet in CIDR notation, such as 10.20.0.0/24"),
        ))
    };
    let Some((address, prefix)) = text.split_once('/') else {
        return refuse();
    };
    let (Ok(address), Ok(prefix)) = (address.parse::<IpAddr>(), prefix.parse::<u8>()) else {
        return refuse();
    };
    let most = if address.is_ipv4() { 32 } else { 128 };
    if prefix > most {
        return refuse();
    }
    Ok(())
}

/// A CIDR subnet as (family, first address as bits, prefix length); `None` when not one.
fn cidr(text: &str) -> Option<(bool, u128, u32)> {
    let (address, prefix) = text.split_once('/')?;
    let prefix: u32 = prefix.parse().ok()?;
    match address.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) if prefix <= 32 => Some((true, u128::from(u32::from(a)) << 96, prefix)),
        IpAddr::V6(a) if prefix <= 128 => Some((false, u128::from(a), prefix)),
        _ => None,
    }
}

/// Whether two CIDR subnets share an address: same family, and equal on the shorter prefix.
pub fn subnets_overlap(a: &str, b: &str) -> bool {
    let (Some((v4a, bits_a, len_a)), Some((v4b, bits_b, len_b))) = (cidr(a), cidr(b)) else {
        return false;
    };
    let len = len_a.min(len_b);
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    v4a == v4b && bits_a & mask == bits_b & mask
}

/// The subnet field's error when `subnet` overlaps a subnet of an existing network: Swarm
/// would create the network but fail to allocate it (no driver, no subnet, nothing said).
pub fn overlap_refusal(subnet: &str, networks: &[Network]) -> Option<FieldError> {
    networks.iter().find_map(|n| {
        n.subnets
            .iter()
            .find(|(theirs, _)| subnets_overlap(subnet, theirs))
            .map(|(theirs, _)| {
                FieldError::new(
                    "subnet",
                    format!("{subnet} overlaps subnet {theirs} of network {}", n.name),
                )
            })
    })
}

/// Why `row` may not be removed, if it may not.
pub fn removal_refusal(row: &NetworkRow) -> Option<String> {
    if row.ingress || (row.scope == "local" && PREDEFINED.contains(&row.name.as_str())) {
        return Some(format!(
            "network {} is made by the engine itself and cannot be removed",
            row.name
        ));
    }
    if !row.services.is_empty() {
        return Some(format!(
            "network {} is used by {}: remove it from them first",
            row.name,
            row.services.join(", ")
        ));
    }
    if row.tasks > 0 {
        return Some(format!(
            "network {} still has {} task(s) attached",
            row.name, row.tasks
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn network(id: &str, name: &str, scope: &str) -> Network {
        Network {
            id: id.into(),
            name: name.into(),
            driver: "overlay".into(),
            scope: scope.into(),
            attachable: false,
            internal: false,
            encrypted: false,
            ingress: false,
            labels: BTreeMap::new(),
            subnets: vec![("10.0.1.0/24".into(), "10.0.1.1".into())],
            created_at: None,
        }
    }

    #[test]
    fn each_network_lists_its_services_and_running_tasks() {
        let spec = json!({"Name": "web", "TaskTemplate": {"ContainerSpec": {"Image": "x"}, "Networks": [{"Target": "n1"}]}});
        let services = [Service::new("s1".into(), 1, spec, None, None).unwrap()];
        let task = |desired: &str| Task {
            desired_state: desired.into(),
            networks: vec!["n1".into()],
            ..Task::default()
        };
        let tasks = [task("running"), task("shutdown")];
        let rows = network_rows(
            &[
                network("n2", "other", "swarm"),
                network("n1", "front", "swarm"),
            ],
            &services,
            &tasks,
        );
        assert_eq!(rows[0].name, "front");
        assert_eq!(rows[0].services, ["web"]);
        assert_eq!(rows[0].tasks, 1);
        assert_eq!(rows[0].subnets, ["10.0.1.0/24 via 10.0.1.1"]);
        assert!(rows[1].services.is_empty());
        assert!(removal_refusal(&rows[0]).unwrap().contains("used by web"));
        assert_eq!(removal_refusal(&rows[1]), None);
        let bridge = network_rows(&[network("b", "bridge", "local")], &[], &[]);
        assert!(removal_refusal(&bridge[0])
            .unwrap()
            .contains("engine itself"));
    }

    #[test]
    fn subnets_are_cidr() {
        for good in ["10.20.0.0/24", "fd00::/64", "192.168.0.0/16"] {
            assert_eq!(check_subnet(good), Ok(()), "{good}");
        }
        for bad in ["10.20.0.0", "10.20.0.0/33", "x/24", "fd00::/129", ""] {
            assert_eq!(check_subnet(bad).unwrap_err().field, "subnet", "{bad}");
        }
    }

    #[test]
    fn an_overlapping_subnet_names_the_network_that_has_it() {
        assert!(subnets_overlap("10.99.0.0/24", "10.99.0.0/24"));
        assert!(subnets_overlap("10.99.0.128/25", "10.99.0.0/24"));
        assert!(subnets_overlap("10.0.0.0/8", "10.99.0.0/24"));
        assert!(subnets_overlap("0.0.0.0/0", "192.168.1.0/24"));
        assert!(!subnets_overlap("10.99.1.0/24", "10.99.0.0/24"));
        assert!(!subnets_overlap("10.99.0.0/24", "::/0"), "families differ");
        assert!(subnets_overlap("fd00::/64", "fd00::1/128"));
        assert!(!subnets_overlap("fd00::/64", "fd01::/64"));
        let existing = [network("n1", "backend", "swarm")];
        let error = overlap_refusal("10.0.1.128/25", &existing).unwrap();
        assert_eq!(error.field, "subnet");
        assert_eq!(
            error.message,
            "10.0.1.128/25 overlaps subnet 10.0.1.0/24 of network backend"
        );
        assert!(overlap_refusal("10.0.2.0/24", &existing).is_none());
    }
}
