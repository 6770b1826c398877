//! What a deploy checks before it changes anything, over plain data: whether a service's
//! placement constraints, resource reservations and log driver leave it a node to run on,
//! whether two services publish the same port, and what a missing secret or config was
//! rotated to. The engine would refuse the second only after the stack's networks exist, and
//! wait for ever on the first (a task stays pending "no suitable node").
//!
//! Whether a task fits a node is defined once, by [`misfit`]: the preflight asks it of nodes
//! with nothing reserved, the drain preview ([`crate::placement`]) of nodes with what their
//! tasks reserve (`tests/fits.rs` checks that the two agree).

use std::collections::{BTreeMap, BTreeSet};

use swarmkeeper_swarm::{Platform, ServiceView};

/// What placement constraints read of a node (`docker node inspect`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeFacts {
    pub id: String,
    pub hostname: String,
    /// `manager` or `worker`.
    pub role: String,
    /// `node.platform.os`, e.g. `linux`.
    pub os: String,
    /// `node.platform.arch`, e.g. `x86_64`.
    pub arch: String,
    /// The node's labels (`node.labels.…`).
    pub labels: BTreeMap<String, String>,
    /// The engine's labels (`engine.labels.…`).
    pub engine_labels: BTreeMap<String, String>,
    /// `Status.Addr`, the address `node.ip` reads; empty: not reported, never compared.
    pub addr: String,
    /// Ready and active: Swarm places new tasks on it (not down, drained or paused).
    pub schedulable: bool,
    /// Why it is not, as a refusal names it ([`held`]); `None` when schedulable.
    pub held: Option<String>,
    /// `Description.Resources.NanoCPUs`: CPUs × 10⁹ (0: not reported, never compared).
    pub nano_cpus: u64,
    /// `Description.Resources.MemoryBytes` (0: not reported, never compared).
    pub memory_bytes: u64,
    /// The log drivers the node's engine has (`Description.Engine.Plugins` of type `Log`);
    /// empty: not reported, never compared.
    pub log_drivers: Vec<String>,
}

/// What a service's tasks need of a node, as swarmkit's scheduler filters nodes
/// (`manager/scheduler/filter.go`): its placement constraints, at least its resource
/// reservations, and its log driver among the node's log plugins.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs<'a> {
    pub constraints: &'a [String],
    /// Reserved CPUs × 10⁹ (`Resources.Reservations.NanoCPUs`; 0: none).
    pub nano_cpus: u64,
    /// Reserved bytes (`Resources.Reservations.MemoryBytes`; 0: none).
    pub memory_bytes: u64,
    /// `TaskTemplate.LogDriver.Name`; `None`, empty or `none` fit any node (swarmkit's
    /// plugin filter does not look for those).
    pub log_driver: Option<&'a str>,
    /// `TaskTemplate.Placement.Platforms` (the image's, as the docker CLI records them);
    /// empty: any node.
    pub platforms: &'a [Platform],
}

impl<'a> Needs<'a> {
    /// What a running (or about to be sent) service's tasks need.
    pub fn of(view: &'a ServiceView) -> Needs<'a> {
        Needs {
            constraints: &view.constraints,
            nano_cpus: view.reservations.nano_cpus,
            memory_bytes: view.reservations.memory_bytes,
            log_driver: view.log_driver.as_ref().map(|d| d.name.as_str()),
            platforms: &view.platforms,
        }
    }

    fn plugin(&self) -> Option<&'a str> {
        self.log_driver.filter(|d| !d.is_empty() && *d != "none")
    }
}

/// Which need leaves a service no node, so that a form can mark its field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unmet {
    /// No node is ready and active.
    Nodes,
    Constraints,
    LogDriver,
    Memory,
    Cpus,
    /// Each need is met by some node, but no node meets them all.
    Together,
}

/// Why a service has no node to run on: the need, and the sentence that says so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unplaceable {
    pub unmet: Unmet,
    pub why: String,
}

impl std::fmt::Display for Unplaceable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.why)
    }
}

/// One constraint as Swarm reads it: `KEY==VALUE` or `KEY!=VALUE`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Constraint<'a> {
    key: &'a str,
    equal: bool,
    value: &'a str,
}

fn parse(constraint: &str) -> Result<Constraint<'_>, String> {
    let (key, equal, value) = if let Some((key, value)) = constraint.split_once("==") {
        (key, true, value)
    } else if let Some((key, value)) = constraint.split_once("!=") {
        (key, false, value)
    } else {
        return Err(format!(
            "placement constraint `{constraint}`: expected KEY==VALUE or KEY!=VALUE"
        ));
    };
    let (key, value) = (key.trim(), value.trim());
    if key.is_empty() || value.is_empty() {
        return Err(format!(
            "placement constraint `{constraint}`: the key and the value must not be empty"
        ));
    }
    Ok(Constraint { key, equal, value })
}

/// Whether `node` satisfies `constraint`, with swarmkit's rules (`manager/constraint`): keys
/// and values compare without regard to case; a label the node lacks matches only `!=`; a key
/// Swarm does not know matches no node; `node.ip` as [`ip_matches`] reads it. `None` for
/// `node.ip` on a node whose address is not reported, which this check leaves to the engine.
fn matches(constraint: &Constraint<'_>, node: &NodeFacts) -> Option<bool> {
    let key = constraint.key.to_ascii_lowercase();
    let label = |labels: &BTreeMap<String, String>, prefix: &str| {
        labels.get(&constraint.key[prefix.len()..]).cloned()
    };
    let actual = match key.as_str() {
        "node.id" => Some(node.id.clone()),
        "node.hostname" => Some(node.hostname.clone()),
        "node.role" => Some(node.role.clone()),
        "node.platform.os" => Some(node.os.clone()),
        "node.platform.arch" => Some(node.arch.clone()),
        "node.ip" if node.addr.is_empty() => return None,
        "node.ip" => return Some(ip_matches(constraint, &node.addr)),
        k if k.starts_with("node.labels.") => label(&node.labels, "node.labels."),
        k if k.starts_with("engine.labels.") => label(&node.engine_labels, "engine.labels."),
        _ => return Some(false),
    };
    Some(match actual {
        Some(actual) => actual.eq_ignore_ascii_case(constraint.value) == constraint.equal,
        None => !constraint.equal,
    })
}

/// `node.ip` as swarmkit's `NodeMatches` reads it: the value is an address, equal to the
/// node's `addr` (an IPv4 address and its IPv4-mapped IPv6 form are equal, as Go's
/// `net.IP.Equal` has it), or a CIDR subnet that holds it; `!=` is the opposite. An `addr`
/// that is no address is neither. A value that is neither an address nor a subnet matches no
/// node, whichever the operator.
fn ip_matches(constraint: &Constraint<'_>, addr: &str) -> bool {
    use std::net::IpAddr;
    let node = addr.parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
    let within = if let Ok(ip) = constraint.value.parse::<IpAddr>() {
        node == Some(ip.to_canonical())
    } else if let Some(within) = subnet_holds(constraint.value, node) {
        within
    } else {
        return false;
    };
    within == constraint.equal
}

/// Whether the subnet `cidr` (`10.0.0.0/8`, `2001:db8::/32`) holds `ip`; `None` when `cidr`
/// is no subnet.
fn subnet_holds(cidr: &str, ip: Option<std::net::IpAddr>) -> Option<bool> {
    use std::net::IpAddr;
    let (network, bits) = cidr.split_once('/')?;
    if bits.is_empty() || !bits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let bits: u32 = bits.parse().ok()?;
    let masked = |value: u128, width: u32| -> u128 {
        if bits == 0 {
            0
        } else {
            value >> (width - bits)
        }
    };
    Some(match network.parse::<IpAddr>().ok()? {
        IpAddr::V4(network) if bits <= 32 => matches!(ip, Some(IpAddr::V4(ip))
            if masked(u32::from(ip).into(), 32) == masked(u32::from(network).into(), 32)),
        IpAddr::V6(network) if bits <= 128 => matches!(ip, Some(IpAddr::V6(ip))
            if masked(u128::from(ip), 128) == masked(u128::from(network), 128)),
        _ => return None,
    })
}

/// The first of `constraints` that `node` does not meet, with the rules of [`unplaceable`]
/// (whether the node is schedulable is not looked at). A constraint Swarm cannot parse is an
/// error.
pub fn unmet<'a>(constraints: &'a [String], node: &NodeFacts) -> Result<Option<&'a str>, String> {
    for text in constraints {
        if matches(&parse(text)?, node) == Some(false) {
            return Ok(Some(text));
        }
    }
    Ok(None)
}

/// Whether `node` meets every one of `constraints`, as swarmkit's `constraint.NodeMatches`
/// decides whether a task may stay where it runs: [`unmet`]'s rules, except that a constraint
/// this check cannot decide (`node.ip` of a node whose address is not reported) or cannot
/// parse counts as not met (the engine stores only constraints that parse, so that never
/// keeps a task Swarm would replace).
pub fn node_matches(constraints: &[String], node: &NodeFacts) -> bool {
    constraints
        .iter()
        .all(|text| parse(text).is_ok_and(|constraint| matches(&constraint, node) == Some(true)))
}

/// What the tasks already on a node reserve. Swarm's scheduler weighs a task's reservations
/// against the node's resources less these; [`Reserved::NOTHING`] asks whether the node
/// could ever run the task, which is the preflight's question.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reserved {
    /// Billionths of a CPU.
    pub nano_cpus: u64,
    pub memory_bytes: u64,
}

impl Reserved {
    /// An empty node.
    pub const NOTHING: Reserved = Reserved {
        nano_cpus: 0,
        memory_bytes: 0,
    };
}

/// The first of swarmkit's node filters (`manager/scheduler/pipeline.go`, in its order:
/// ready, resources, plugins, constraints, platform) that a node fails for a task, as
/// [`misfit`] finds it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Misfit {
    /// Not ready, or not active (down, drained, paused).
    NotReady,
    /// Fewer CPUs left than the task reserves.
    Cpu,
    /// Less memory left than the task reserves.
    Memory,
    /// The task's log driver is not among the node's log plugins.
    LogDriver,
    /// This placement constraint is not met.
    Constraint(String),
    /// The node's OS and architecture are none of the image's platforms.
    Platform,
}

/// The one definition of "a task fits a node": `None` when `node`, with `reserved` already
/// taken by its tasks, passes every filter Swarm's scheduler applies to a node on its own
/// (ready and active; CPU and memory reservations within what is left; the log driver among
/// its plugins; every placement constraint; its platform among the image's), else the first
/// filter it fails. A figure the node does not report (0 CPUs or bytes, no plugins listed, no
/// platform) is never compared: such a node
/// is given the benefit of the doubt, the engine decides. A constraint Swarm cannot parse is
/// an error. The drain preview ([`crate::placement`]) asks it with what each node's tasks
/// reserve, the preflight ([`unplaceable`]) with [`Reserved::NOTHING`].
pub fn misfit(
    needs: &Needs<'_>,
    node: &NodeFacts,
    reserved: Reserved,
) -> Result<Option<Misfit>, String> {
    if !node.schedulable {
        return Ok(Some(Misfit::NotReady));
    }
    if !room_for(node.nano_cpus, reserved.nano_cpus, needs.nano_cpus) {
        return Ok(Some(Misfit::Cpu));
    }
    if !room_for(node.memory_bytes, reserved.memory_bytes, needs.memory_bytes) {
        return Ok(Some(Misfit::Memory));
    }
    if !has_log_driver(needs, node) {
        return Ok(Some(Misfit::LogDriver));
    }
    if let Some(constraint) = unmet(needs.constraints, node)? {
        return Ok(Some(Misfit::Constraint(constraint.to_owned())));
    }
    if !runs_platform(needs, node) {
        return Ok(Some(Misfit::Platform));
    }
    Ok(None)
}

/// Whether the node's platform is one of the task's (swarmkit's platform filter: an empty OS
/// or architecture matches any, `x86_64` is `amd64` and `aarch64` is `arm64`); a node that
/// reports no platform is not compared.
fn runs_platform(needs: &Needs<'_>, node: &NodeFacts) -> bool {
    let arch = |a: &str| match a {
        "x86_64" => "amd64".to_owned(),
        "aarch64" => "arm64".to_owned(),
        other => other.to_owned(),
    };
    let unreported = node.os.is_empty() && node.arch.is_empty();
    needs.platforms.is_empty()
        || unreported
        || needs.platforms.iter().any(|p| {
            (p.architecture.is_empty() || arch(&p.architecture) == arch(&node.arch))
                && (p.os.is_empty() || p.os == node.os)
        })
}

/// Why Swarm places no new task on a node whose `Status.State` is `state` and
/// `Spec.Availability` is `availability`, with the reason swarmkeeper wrote when it paused the
/// node for disk pressure (`pressure`, the `swarmkeeper.disk-pressure` label's value): `down`,
/// `drained`, `paused by swarmkeeper for disk pressure (disk 98% >= 95% …); it is made active
/// again once its disk has stayed below its GC high threshold for …` (the server's release rule,
/// `report::pressure`; tryout 11 finding 7: it said the low threshold). `None` for a ready,
/// active node.
pub fn held(state: &str, availability: &str, pressure: Option<&str>) -> Option<String> {
    let availability = match availability {
        "active" => None,
        "drain" => Some("drained".to_owned()),
        "pause" => Some(match pressure {
            Some(why) => format!(
                "paused by swarmkeeper for disk pressure ({why}); it is made active again once \
                 its disk has stayed below its GC high threshold for the server's \
                 --disk-pressure-release (5m by default)"
            ),
            None => "paused".to_owned(),
        }),
        other => Some(other.to_owned()),
    };
    match (state, availability) {
        ("ready", availability) => availability,
        (state, None) => Some(state.to_owned()),
        (state, Some(availability)) => Some(format!("{state} and {availability}")),
    }
}

/// The nodes Swarm holds (`schedulable` false) that would meet `fits`, as a refusal's end:
/// `; tryout-worker1 matches but is paused by swarmkeeper for disk pressure (…)`; empty
/// when there is none. At most three are named.
fn held_that_fit(nodes: &[NodeFacts], fits: impl Fn(&NodeFacts) -> bool) -> String {
    let held: Vec<String> = nodes
        .iter()
        .filter(|n| !n.schedulable && fits(n))
        .filter_map(|n| {
            Some(format!(
                "{} matches but is {}",
                n.hostname,
                n.held.as_ref()?
            ))
        })
        .collect();
    let shown = held.len().min(3);
    let mut said = held[..shown].join("; ");
    if held.len() > shown {
        said.push_str(&format!("; {} more held nodes match", held.len() - shown));
    }
    match said.is_empty() {
        true => said,
        false => format!("; {said}"),
    }
}

/// Whether `need` fits in `total` less `reserved`; a `total` of 0 is not reported.
fn room_for(total: u64, reserved: u64, need: u64) -> bool {
    total == 0 || need <= total.saturating_sub(reserved)
}

/// Whether the node has the log driver `needs` name (swarmkit's plugin filter skips `none`
/// and no driver); a node that lists no plugins is not compared.
fn has_log_driver(needs: &Needs<'_>, node: &NodeFacts) -> bool {
    needs.plugin().is_none_or(|driver| {
        node.log_drivers.is_empty() || node.log_drivers.iter().any(|d| d == driver)
    })
}

/// Why `needs` leave a service no node to run on, or `None` when at least one node could run
/// it, empty: [`misfit`] with [`Reserved::NOTHING`] passes on it. A constraint Swarm cannot
/// parse is an error. Resources compare with what a node has in all (swarmkit subtracts what
/// other tasks reserve there, so a service let through may still wait for room; one refused
/// here can never run). The reason names the need no node meets, with the same filters.
pub fn unplaceable(needs: &Needs<'_>, nodes: &[NodeFacts]) -> Result<Option<Unplaceable>, String> {
    let constraints = needs.constraints;
    let parsed = constraints
        .iter()
        .map(|c| parse(c))
        .collect::<Result<Vec<_>, _>>()?;
    for node in nodes {
        if misfit(needs, node, Reserved::NOTHING)?.is_none() {
            return Ok(None);
        }
    }
    // No node fits: name the need no node meets, in the filters' order.
    let refuse = |unmet, why| Ok(Some(Unplaceable { unmet, why }));
    let schedulable: Vec<&NodeFacts> = nodes.iter().filter(|n| n.schedulable).collect();
    let constraints_hold = |n: &NodeFacts| parsed.iter().all(|c| matches(c, n) != Some(false));
    if schedulable.is_empty() {
        return refuse(
            Unmet::Nodes,
            format!(
                "the swarm has no ready, active node{}",
                held_that_fit(nodes, constraints_hold)
            ),
        );
    }
    let placed: Vec<&NodeFacts> = schedulable
        .iter()
        .copied()
        .filter(|n| parsed.iter().all(|c| matches(c, n) != Some(false)))
        .collect();
    if placed.is_empty() {
        // Name the constraint no node meets, else say that no node meets them together.
        let alone = parsed
            .iter()
            .zip(constraints)
            .find(|(c, _)| !schedulable.iter().any(|n| matches(c, n) != Some(false)));
        let why = match alone {
            Some((_, text)) => format!(
                "no ready, active node matches the placement constraint `{text}` ({} node(s) \
                 looked at)",
                schedulable.len()
            ),
            None => format!(
                "no ready, active node matches all of the placement constraints {}",
                constraints
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let held = held_that_fit(nodes, constraints_hold);
        return refuse(Unmet::Constraints, format!("{why}{held}"));
    }
    let where_ = if constraints.is_empty() {
        format!("{} ready, active node(s)", placed.len())
    } else {
        format!(
            "{} ready, active node(s) that match the placement constraints",
            placed.len()
        )
    };
    let has_memory = |n: &NodeFacts| room_for(n.memory_bytes, 0, needs.memory_bytes);
    let has_cpus = |n: &NodeFacts| room_for(n.nano_cpus, 0, needs.nano_cpus);
    if let Some(driver) = needs.plugin() {
        if !placed.iter().any(|n| has_log_driver(needs, n)) {
            let known: BTreeSet<&str> = placed
                .iter()
                .flat_map(|n| n.log_drivers.iter().map(String::as_str))
                .chain(["none"])
                .collect();
            let known: Vec<&str> = known.into_iter().collect();
            return refuse(
                Unmet::LogDriver,
                format!(
                    "log driver `{driver}` is on none of the {where_}; they have {}",
                    known.join(", ")
                ),
            );
        }
    }
    if !placed.iter().any(|n| has_memory(n)) {
        let most = placed.iter().map(|n| n.memory_bytes).max().unwrap_or(0);
        return refuse(
            Unmet::Memory,
            format!(
                "a memory reservation of {} is more than any of the {where_} has (the most: {})",
                swarmkeeper_units::bytes(needs.memory_bytes),
                swarmkeeper_units::bytes(most)
            ),
        );
    }
    if !placed.iter().any(|n| runs_platform(needs, n)) {
        let platforms: Vec<String> = needs
            .platforms
            .iter()
            .map(|p| format!("{}/{}", p.os, p.architecture))
            .collect();
        // The form has no platform field: the image is what to change, next to where it may
        // run.
        return refuse(
            Unmet::Constraints,
            format!(
                "none of the {where_} runs a platform of the image ({})",
                platforms.join(", ")
            ),
        );
    }
    if !placed.iter().any(|n| has_cpus(n)) {
        let most = placed.iter().map(|n| n.nano_cpus).max().unwrap_or(0);
        let cpus = |nano: u64| nano as f64 / 1e9;
        return refuse(
            Unmet::Cpus,
            format!(
                "a reservation of {} CPUs is more than any of the {where_} has (the most: {})",
                cpus(needs.nano_cpus),
                cpus(most)
            ),
        );
    }
    let what = if needs.platforms.is_empty() {
        "both the log driver and the resources the service reserves"
    } else {
        "at once the platform, the log driver and the resources the service needs"
    };
    refuse(Unmet::Together, format!("none of the {where_} has {what}"))
}

/// The label a rotation puts on the new version of a secret or config: the name of the one
/// it replaces.
pub const ROTATED_FROM_LABEL: &str = "swarmkeeper.rotated-from";

/// What `name` (a secret or config that no longer exists) was rotated to, among the objects
/// that exist (name and labels): the newest version down the chain of
/// [`ROTATED_FROM_LABEL`]s, else by the rotation's naming rule, the highest `NAME.vN`
/// (`db_pass` → `db_pass.v3`; `tls.v7` → `tls.v9`). `None`: no successor.
pub fn rotated_to<'a>(
    name: &str,
    objects: &[(&'a str, &BTreeMap<String, String>)],
) -> Option<&'a str> {
    let mut current: Option<&'a str> = None;
    let mut seen = BTreeSet::new();
    loop {
        let from = current.unwrap_or(name);
        let next = objects
            .iter()
            .find(|(_, labels)| labels.get(ROTATED_FROM_LABEL).map(String::as_str) == Some(from))
            .map(|(n, _)| *n);
        match next {
            Some(next) if seen.insert(next) => current = Some(next),
            _ => break,
        }
    }
    if current.is_some() {
        return current;
    }
    let (base, from) = rotation_version(name).unwrap_or((name, 1));
    objects
        .iter()
        .filter_map(|(n, _)| {
            rotation_version(n)
                .filter(|(b, v)| *b == base && *v > from)
                .map(|(_, v)| (v, *n))
        })
        .max()
        .map(|(_, n)| n)
}

/// `NAME.vN` (N from 1, no leading zero) as `(NAME, N)`: the names a rotation gives the
/// versions of a secret or config (the next after `NAME` is `NAME.v2`).
pub fn rotation_version(text: &str) -> Option<(&str, u64)> {
    let (base, n) = text.rsplit_once(".v")?;
    let digits = !n.is_empty() && !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit());
    if base.is_empty() || !digits {
        return None;
    }
    Some((base, n.parse().ok()?))
}

/// A published port: who publishes it, on which protocol, in which mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    pub service: String,
    pub protocol: String,
    pub port: u32,
    /// Published in host mode (on the node that runs the task only), not through the
    /// routing mesh.
    pub host: bool,
}

/// Ports two services would share where that cannot work: Swarm gives a port of the routing
/// mesh (ingress) to one service only, and the mesh takes it on every node, so a host-mode
/// port of the same number is lost wherever it runs (the engine accepts that pair and the
/// host-mode service stops being reachable). Two host-mode ports clash only on one node,
/// which Swarm's scheduler sorts out, so they are left out. `wanted` are the stack's,
/// `others` the services of the swarm outside it (or not redeployed by it). Each clash once,
/// as `(first, second)`.
pub fn port_clashes(wanted: &[Published], others: &[Published]) -> Vec<(Published, Published)> {
    let mut clashes = Vec::new();
    for (i, port) in wanted.iter().enumerate() {
        let same = |other: &&Published| {
            other.port == port.port
                && other.protocol.eq_ignore_ascii_case(&port.protocol)
                && other.service != port.service
                && !(other.host && port.host)
        };
        if let Some(first) = wanted[..i].iter().find(same).or(others.iter().find(same)) {
            clashes.push((first.clone(), port.clone()));
        }
    }
    clashes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(hostname: &str, role: &str, labels: &[(&str, &str)]) -> NodeFacts {
        NodeFacts {
            id: format!("id-{hostname}"),
            hostname: hostname.into(),
            role: role.into(),
            os: "linux".into(),
            arch: "x86_64".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            engine_labels: BTreeMap::new(),
            addr: String::new(),
            schedulable: true,
            held: None,
            nano_cpus: 2_000_000_000,
            memory_bytes: 8 << 30,
            log_drivers: vec!["json-file".into(), "local".into()],
        }
    }

    fn placed(constraints: &[String], nodes: &[NodeFacts]) -> Result<Option<String>, String> {
        let needs = Needs {
            constraints,
            ..Needs::default()
        };
        Ok(unplaceable(&needs, nodes)?.map(|u| u.why))
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn constraints_match_like_swarmkit() {
        let nodes = [
            node("m1", "manager", &[("zone", "a")]),
            node("w1", "worker", &[("zone", "b"), ("ssd", "true")]),
        ];
        let fits = |c: &[&str]| placed(&strings(c), &nodes).unwrap().is_none();
        assert!(fits(&[]));
        assert!(fits(&["node.role==manager"]));
        assert!(fits(&["node.role == Worker", "node.labels.ssd==true"]));
        assert!(fits(&["node.labels.ssd!=true"]), "m1 has no such label");
        assert!(fits(&[
            "NODE.PLATFORM.OS==linux",
            "node.platform.arch==x86_64"
        ]));
        assert!(fits(&["node.hostname!=m1"]));
        assert!(
            fits(&["node.ip==10.0.0.1"]),
            "no address reported: left to the engine"
        );
        assert!(!fits(&["node.labels.gpu==true"]));
        assert!(!fits(&["node.role==manager", "node.labels.zone==b"]));
        assert!(!fits(&["node.flavour==big"]), "a key Swarm does not know");
        let why = placed(&strings(&["node.labels.gpu==true"]), &nodes)
            .unwrap()
            .unwrap();
        assert_eq!(
            why,
            "no ready, active node matches the placement constraint `node.labels.gpu==true` \
             (2 node(s) looked at)"
        );
        let both = placed(
            &strings(&["node.role==manager", "node.labels.zone==b"]),
            &nodes,
        )
        .unwrap()
        .unwrap();
        assert!(both.contains("all of the placement constraints"), "{both}");
        let bad = placed(&strings(&["node.role=manager"]), &nodes).unwrap_err();
        assert!(bad.contains("expected KEY==VALUE"), "{bad}");
    }

    /// swarmkit's `NodeMatches` for `node.ip`: an address or a CIDR subnet, against
    /// `Status.Addr`.
    #[test]
    fn node_ip_matches_an_address_or_a_subnet_like_swarmkit() {
        let at = |addr: &str| NodeFacts {
            addr: addr.into(),
            ..node("w1", "worker", &[])
        };
        let v4 = at("10.0.0.5");
        let meets =
            |constraint: &str, node: &NodeFacts| node_matches(&strings(&[constraint]), node);
        for (constraint, want) in [
            ("node.ip==10.0.0.5", true),
            ("node.ip != 10.0.0.5", false),
            ("node.ip==10.0.0.6", false),
            ("node.ip!=10.0.0.6", true),
            ("node.ip==10.0.0.0/24", true),
            ("node.ip==10.0.1.0/24", false),
            ("node.ip!=10.0.1.0/24", true),
            ("node.ip==10.0.0.5/32", true),
            ("node.ip==0.0.0.0/0", true),
            ("node.ip==::ffff:10.0.0.5", true),
            ("node.ip==2001:db8::/32", false),
            ("node.ip!=2001:db8::/32", true),
            // Neither an address nor a subnet: no node, whichever the operator.
            ("node.ip==nonsense", false),
            ("node.ip!=nonsense", false),
            ("node.ip==10.0.0.0/33", false),
            ("node.ip!=10.0.0.0/+8", false),
        ] {
            assert_eq!(meets(constraint, &v4), want, "{constraint}");
        }
        let v6 = at("2001:db8::7");
        assert!(meets("node.ip==2001:DB8::7", &v6));
        assert!(meets("node.ip==2001:db8::/32", &v6));
        assert!(!meets("node.ip==2001:db9::/32", &v6));
        assert!(!meets("node.ip==10.0.0.0/8", &v6));
        // An address that is none matches no address, so `!=` holds.
        let odd = at("not-an-ip");
        assert!(!meets("node.ip==10.0.0.5", &odd));
        assert!(meets("node.ip!=10.0.0.0/8", &odd));
        // The preflight refuses what no node meets.
        let why = placed(
            &strings(&["node.ip==192.168.9.9"]),
            std::slice::from_ref(&v4),
        )
        .unwrap()
        .unwrap();
        assert!(why.contains("node.ip==192.168.9.9"), "{why}");
        assert_eq!(
            placed(&strings(&["node.ip==10.0.0.0/8"]), &[v4]).unwrap(),
            None
        );
    }

    #[test]
    fn a_drained_or_down_node_places_nothing() {
        let mut drained = node("w1", "worker", &[("gpu", "true")]);
        drained.schedulable = false;
        let nodes = [node("m1", "manager", &[]), drained];
        let why = placed(&strings(&["node.labels.gpu==true"]), &nodes).unwrap();
        assert!(why.unwrap().contains("1 node(s) looked at"));
        let none = placed(&[], &nodes[1..]).unwrap().unwrap();
        assert_eq!(none, "the swarm has no ready, active node");
    }

    #[test]
    fn a_refusal_names_the_held_node_that_would_match_and_why_swarm_holds_it() {
        let held_node = |hostname: &str, state: &str, availability: &str, pressure| NodeFacts {
            schedulable: false,
            held: held(state, availability, pressure),
            ..node(hostname, "worker", &[("disk", "small")])
        };
        let nodes = [
            node("m1", "manager", &[]),
            held_node(
                "w1",
                "ready",
                "pause",
                Some("disk 98% >= 95% and GC could not free enough"),
            ),
            held_node("w2", "down", "active", None),
            held_node("w3", "down", "drain", None),
        ];
        let why = placed(&strings(&["node.hostname == w1"]), &nodes)
            .unwrap()
            .unwrap();
        assert_eq!(
            why,
            "no ready, active node matches the placement constraint `node.hostname == w1` \
             (1 node(s) looked at); w1 matches but is paused by swarmkeeper for disk pressure \
             (disk 98% >= 95% and GC could not free enough); it is made active again once its \
             disk has stayed below its GC high threshold for the server's \
             --disk-pressure-release (5m by default)"
        );
        let why = placed(&strings(&["node.labels.disk==small"]), &nodes)
            .unwrap()
            .unwrap();
        assert!(
            why.ends_with("; w2 matches but is down; w3 matches but is down and drained"),
            "{why}"
        );
        // A held node the constraints turn away is not named.
        let why = placed(&strings(&["node.labels.gpu==true"]), &nodes)
            .unwrap()
            .unwrap();
        assert!(!why.contains("matches but"), "{why}");
        let none = placed(&[], &nodes[1..2]).unwrap().unwrap();
        assert!(
            none.starts_with("the swarm has no ready, active node; w1 matches but is paused by"),
            "{none}"
        );
        assert_eq!(held("ready", "active", None), None);
        assert_eq!(held("ready", "pause", None).as_deref(), Some("paused"));
        assert_eq!(held("unknown", "active", None).as_deref(), Some("unknown"));
    }

    #[test]
    fn log_driver_and_reservations_need_a_node_that_has_them() {
        let mut big = node("w1", "worker", &[("zone", "b")]);
        big.memory_bytes = 64 << 30;
        big.nano_cpus = 16_000_000_000;
        big.log_drivers.push("syslog".into());
        let nodes = [node("m1", "manager", &[("zone", "a")]), big];
        let zone_a = strings(&["node.labels.zone==a"]);
        let needs = |driver: Option<&'static str>, memory_bytes: u64, nano_cpus: u64| Needs {
            constraints: &[],
            nano_cpus,
            memory_bytes,
            log_driver: driver,
            platforms: &[],
        };
        let unmet = |needs: Needs<'_>| unplaceable(&needs, &nodes).unwrap().map(|u| u.unmet);
        for fits in [
            needs(None, 0, 0),
            needs(Some("local"), 0, 0),
            needs(Some("none"), 0, 0),
            needs(Some(""), 0, 0),
            needs(Some("syslog"), 64 << 30, 16_000_000_000),
        ] {
            assert_eq!(unmet(fits), None, "{fits:?}");
        }
        let typo = unplaceable(&needs(Some("nosuchdriver"), 0, 0), &nodes)
            .unwrap()
            .unwrap();
        assert_eq!(typo.unmet, Unmet::LogDriver);
        assert_eq!(
            typo.why,
            "log driver `nosuchdriver` is on none of the 2 ready, active node(s); they have \
             json-file, local, none, syslog"
        );
        let huge = unplaceable(&needs(None, 1000 << 40, 0), &nodes)
            .unwrap()
            .unwrap();
        assert_eq!(huge.unmet, Unmet::Memory);
        assert_eq!(
            huge.why,
            "a memory reservation of 1000 TiB is more than any of the 2 ready, active node(s) \
             has (the most: 64.0 GiB)"
        );
        assert_eq!(unmet(needs(None, 0, 17_000_000_000)), Some(Unmet::Cpus));
        // Within the constraints: only m1 is in zone a, and it has no syslog.
        let in_zone_a = Needs {
            constraints: &zone_a,
            ..needs(Some("syslog"), 0, 0)
        };
        let why = unplaceable(&in_zone_a, &nodes).unwrap().unwrap();
        assert_eq!(why.unmet, Unmet::LogDriver);
        assert!(
            why.why.contains("1 ready, active node(s) that match"),
            "{why}"
        );
        assert_eq!(
            unmet(needs(Some("syslog"), 0, 0)),
            None,
            "the big node has it"
        );
        let mut small_syslog = node("w2", "worker", &[]);
        small_syslog.log_drivers.push("syslog".into());
        let apart = [node("m1", "manager", &[]), small_syslog, {
            let mut big = node("w3", "worker", &[]);
            big.memory_bytes = 64 << 30;
            big
        }];
        let together = unplaceable(&needs(Some("syslog"), 32 << 30, 0), &apart)
            .unwrap()
            .unwrap();
        assert_eq!(together.unmet, Unmet::Together);
        // A node that reports no resources or plugins is never the reason for a refusal.
        let mut silent = node("old", "worker", &[]);
        (silent.memory_bytes, silent.nano_cpus, silent.log_drivers) = (0, 0, Vec::new());
        assert_eq!(
            unplaceable(&needs(Some("x"), 1 << 50, 1 << 50), &[silent]).unwrap(),
            None
        );
    }

    #[test]
    fn the_image_s_platforms_need_a_node_that_runs_one_of_them() {
        let arm = NodeFacts {
            arch: "aarch64".into(),
            ..node("pi", "worker", &[])
        };
        let nodes = [node("m1", "manager", &[]), arm];
        let platform = |os: &str, architecture: &str| Platform {
            os: os.into(),
            architecture: architecture.into(),
        };
        fn needs(platforms: &[Platform]) -> Needs<'_> {
            Needs {
                platforms,
                ..Needs::default()
            }
        }
        let fits = |p: &[Platform], n: &NodeFacts| {
            misfit(&needs(p), n, Reserved::NOTHING).unwrap().is_none()
        };
        // x86_64 is amd64 and aarch64 is arm64, as swarmkit normalises them.
        assert!(fits(&[platform("linux", "amd64")], &nodes[0]));
        assert!(!fits(&[platform("linux", "amd64")], &nodes[1]));
        assert!(fits(&[platform("linux", "arm64")], &nodes[1]));
        assert!(fits(&[platform("", "arm64")], &nodes[1]), "any OS");
        assert!(
            fits(&[platform("linux", "")], &nodes[1]),
            "any architecture"
        );
        assert!(fits(&[], &nodes[1]), "no platforms: any node");
        let windows = [platform("windows", "amd64")];
        assert_eq!(
            misfit(&needs(&windows), &nodes[0], Reserved::NOTHING).unwrap(),
            Some(Misfit::Platform)
        );
        let unreported = NodeFacts {
            os: String::new(),
            arch: String::new(),
            ..node("old", "worker", &[])
        };
        assert!(fits(&windows, &unreported));
        let why = unplaceable(&needs(&windows), &nodes).unwrap().unwrap();
        assert_eq!(why.unmet, Unmet::Constraints);
        assert_eq!(
            why.why,
            "none of the 2 ready, active node(s) runs a platform of the image (windows/amd64)"
        );
    }

    #[test]
    fn a_rotated_object_is_found_by_label_then_by_name() {
        let none = BTreeMap::new();
        let from = |name: &str| BTreeMap::from([(ROTATED_FROM_LABEL.to_owned(), name.to_owned())]);
        let (v2, v3) = (from("db_pass"), from("db_pass.v2"));
        let chain = [("other", &none), ("db_pass.v2", &v2), ("db_pass.v3", &v3)];
        assert_eq!(rotated_to("db_pass", &chain), Some("db_pass.v3"));
        assert_eq!(rotated_to("db_pass.v2", &chain), Some("db_pass.v3"));
        let renamed = from("db_pass");
        assert_eq!(
            rotated_to("db_pass", &[("db_password_2026", &renamed)]),
            Some("db_password_2026")
        );
        let unlabelled = [
            ("tls.v8", &none),
            ("tls.v9", &none),
            ("tls.v10", &none),
            ("x.v99", &none),
        ];
        assert_eq!(rotated_to("tls.v7", &unlabelled), Some("tls.v10"));
        assert_eq!(rotated_to("tls", &unlabelled), Some("tls.v10"));
        assert_eq!(rotated_to("tls.v10", &unlabelled), None);
        assert_eq!(
            rotated_to("db_pass", &[("db_pass.v02", &none), ("db_passv2", &none)]),
            None
        );
        let looped = [("a.v2", &from("b")), ("b", &from("a.v2"))];
        assert_eq!(rotated_to("a.v2", &looped), Some("a.v2"));
        assert_eq!(rotation_version("pw.v12"), Some(("pw", 12)));
        assert_eq!(rotation_version("pw"), None);
    }

    #[test]
    fn a_published_port_belongs_to_one_service() {
        let p = |service: &str, protocol: &str, port| Published {
            service: service.into(),
            protocol: protocol.into(),
            port,
            host: false,
        };
        let wanted = [
            p("s_web", "tcp", 8080),
            p("s_api", "tcp", 8080),
            p("s_dns", "udp", 53),
            p("s_web", "udp", 8080),
        ];
        let others = [p("other_dns", "udp", 53), p("other_x", "tcp", 9000)];
        let clashes = port_clashes(&wanted, &others);
        assert_eq!(
            clashes,
            [
                (p("s_web", "tcp", 8080), p("s_api", "tcp", 8080)),
                (p("other_dns", "udp", 53), p("s_dns", "udp", 53)),
            ]
        );
        assert!(port_clashes(&wanted[2..], &[]).is_empty());
    }

    #[test]
    fn a_host_mode_port_clashes_with_the_mesh_only() {
        let p = |service: &str, port, host| Published {
            service: service.into(),
            protocol: "tcp".into(),
            port,
            host,
        };
        // The dashboard's host-mode 8080: an ingress 8080 would take it on every node.
        let others = [
            p("swarmkeeper_server", 8080, true),
            p("porty", 18081, false),
        ];
        assert_eq!(
            port_clashes(&[p("web1", 8080, false)], &others),
            [(p("swarmkeeper_server", 8080, true), p("web1", 8080, false))]
        );
        assert_eq!(
            port_clashes(&[p("web1", 18081, true)], &others),
            [(p("porty", 18081, false), p("web1", 18081, true))]
        );
        // Two host-mode ports: the scheduler puts the tasks on different nodes.
        assert!(port_clashes(&[p("web1", 8080, true)], &others).is_empty());
    }
}
