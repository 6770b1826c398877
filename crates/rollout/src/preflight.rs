//! What a deploy checks before it changes anything, over plain data: whether a service's
//! placement constraints leave it a node to run on, and whether two services publish the
//! same port. The engine would refuse the second only after the stack's networks exist, and
//! wait for ever on the first (a task stays pending "no suitable node").

use std::collections::BTreeMap;

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
    /// Ready and active: Swarm places new tasks on it (not down, drained or paused).
    pub schedulable: bool,
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
/// Swarm does not know matches no node. `None` for `node.ip`, which this check leaves to
/// the engine.
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
        "node.ip" => return None,
        k if k.starts_with("node.labels.") => label(&node.labels, "node.labels."),
        k if k.starts_with("engine.labels.") => label(&node.engine_labels, "engine.labels."),
        _ => return Some(false),
    };
    Some(match actual {
        Some(actual) => actual.eq_ignore_ascii_case(constraint.value) == constraint.equal,
        None => !constraint.equal,
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

/// Why `constraints` leave a service no node to run on, or `None` when at least one
/// schedulable node satisfies them all. A constraint Swarm cannot parse is an error.
pub fn unplaceable(constraints: &[String], nodes: &[NodeFacts]) -> Result<Option<String>, String> {
    let parsed = constraints
        .iter()
        .map(|c| parse(c))
        .collect::<Result<Vec<_>, _>>()?;
    let schedulable: Vec<&NodeFacts> = nodes.iter().filter(|n| n.schedulable).collect();
    if schedulable.is_empty() {
        return Ok(Some("the swarm has no ready, active node".to_string()));
    }
    let fits = |node: &NodeFacts| parsed.iter().all(|c| matches(c, node) != Some(false));
    if schedulable.iter().any(|n| fits(n)) {
        return Ok(None);
    }
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
    Ok(Some(why))
}

/// A published port: who publishes it, on which protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    pub service: String,
    pub protocol: String,
    pub port: u32,
}

/// Ports published through the routing mesh (ingress) that two services would share: Swarm
/// gives each such port to one service only. `wanted` are the stack's, `others` the
/// services of the swarm outside it (or not redeployed by it). Host-mode ports are left out:
/// they clash only on one node, which Swarm's scheduler sorts out. Each clash once, as
/// `(first, second)`.
pub fn port_clashes(wanted: &[Published], others: &[Published]) -> Vec<(Published, Published)> {
    let mut clashes = Vec::new();
    for (i, port) in wanted.iter().enumerate() {
        let same = |other: &&Published| {
            other.port == port.port
                && other.protocol.eq_ignore_ascii_case(&port.protocol)
                && other.service != port.service
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
            schedulable: true,
        }
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
        let fits = |c: &[&str]| unplaceable(&strings(c), &nodes).unwrap().is_none();
        assert!(fits(&[]));
        assert!(fits(&["node.role==manager"]));
        assert!(fits(&["node.role == Worker", "node.labels.ssd==true"]));
        assert!(fits(&["node.labels.ssd!=true"]), "m1 has no such label");
        assert!(fits(&[
            "NODE.PLATFORM.OS==linux",
            "node.platform.arch==x86_64"
        ]));
        assert!(fits(&["node.hostname!=m1"]));
        assert!(fits(&["node.ip==10.0.0.1"]), "left to the engine");
        assert!(!fits(&["node.labels.gpu==true"]));
        assert!(!fits(&["node.role==manager", "node.labels.zone==b"]));
        assert!(!fits(&["node.flavour==big"]), "a key Swarm does not know");
        let why = unplaceable(&strings(&["node.labels.gpu==true"]), &nodes)
            .unwrap()
            .unwrap();
        assert_eq!(
            why,
            "no ready, active node matches the placement constraint `node.labels.gpu==true` \
             (2 node(s) looked at)"
        );
        let both = unplaceable(
            &strings(&["node.role==manager", "node.labels.zone==b"]),
            &nodes,
        )
        .unwrap()
        .unwrap();
        assert!(both.contains("all of the placement constraints"), "{both}");
        let bad = unplaceable(&strings(&["node.role=manager"]), &nodes).unwrap_err();
        assert!(bad.contains("expected KEY==VALUE"), "{bad}");
    }

    #[test]
    fn a_drained_or_down_node_places_nothing() {
        let mut drained = node("w1", "worker", &[("gpu", "true")]);
        drained.schedulable = false;
        let nodes = [node("m1", "manager", &[]), drained];
        let why = unplaceable(&strings(&["node.labels.gpu==true"]), &nodes).unwrap();
        assert!(why.unwrap().contains("1 node(s) looked at"));
        let none = unplaceable(&[], &nodes[1..]).unwrap().unwrap();
        assert_eq!(none, "the swarm has no ready, active node");
    }

    #[test]
    fn a_published_port_belongs_to_one_service() {
        let p = |service: &str, protocol: &str, port| Published {
            service: service.into(),
            protocol: protocol.into(),
            port,
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
}
