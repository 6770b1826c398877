//! The checks a deploy makes before it changes anything, so that a stack that cannot work
//! fails with a reason instead of half-applied (a network created, then a refused service) or
//! waiting for its timeout (a task pending on "no suitable node"). The decisions are
//! `rollout::preflight`'s; this reads what they need from the engine.
//!
//! Image references are checked when the files load (`compose::validate`), and whether the
//! registry has each tag where digests are resolved (`apply::pin_images`), before this.

use std::collections::{BTreeMap, BTreeSet};

use swarmkeeper_compose::StackSpec;
use swarmkeeper_engine::{Engine, EngineError, PublishMode, ServiceView, SwarmNode};
use swarmkeeper_report::PRESSURE_LABEL;
use swarmkeeper_rollout::placement::{node_rooms, replicas_left_pending, start_first_stuck};
use swarmkeeper_rollout::preflight::{
    held, port_clashes, rotated_to, unplaceable, Needs, NodeFacts, Published, Unmet, Unplaceable,
};

use crate::DeployError;

/// Every service of `spec` has a node to run on, every secret and config it names exists or
/// is created by the stack, and no published port is another service's (`pruned`: the stack
/// whose services the files do not name are removed first, so their ports are free). Bad
/// input names the service and the reason; what the engine says otherwise is an engine error.
pub(crate) async fn check(
    engine: &Engine,
    spec: &StackSpec,
    pruned: Option<&str>,
) -> Result<(), DeployError> {
    let nodes: Vec<NodeFacts> = engine.list_nodes().await?.iter().map(facts).collect();
    for service in spec.services.values() {
        let template = &service.task_template;
        let reservations = template.resources.reservations.as_ref();
        let needs = Needs {
            constraints: &template.placement.constraints,
            nano_cpus: reservations.map_or(0, |r| r.nano_cpus),
            memory_bytes: reservations.map_or(0, |r| r.memory_bytes),
            log_driver: template.log_driver.as_ref().map(|d| d.name.as_str()),
            // A stack file names no platforms (the docker CLI reads them from the image's
            // manifest; swarmkeeper's deploy records none).
            platforms: &[],
        };
        let why = unplaceable(&needs, &nodes)
            .map_err(|e| DeployError::Input(format!("service {}: {e}", service.name)))?;
        if let Some(why) = why {
            return Err(DeployError::Input(format!(
                "service {} cannot be placed: {why}",
                service.name
            )));
        }
    }
    let views = spec
        .services
        .values()
        .map(|service| {
            let view = serde_json::to_value(service)
                .map_err(|e| e.to_string())
                .and_then(|json| ServiceView::read(&json).map_err(|e| e.to_string()))
                .map_err(|e| DeployError::Input(format!("service {}: {e}", service.name)))?;
            Ok((service.name.as_str(), view))
        })
        .collect::<Result<Vec<_>, DeployError>>()?;
    let views: Vec<(&str, &ServiceView)> = views.iter().map(|(n, v)| (*n, v)).collect();
    let pruned_here =
        |s: &swarmkeeper_engine::Service| pruned.is_some() && s.view.stack() == pruned;
    if let Some(pending) = replicas_pending_beside(engine, &views, &[], pruned_here).await? {
        return Err(DeployError::Input(format!(
            "service {} cannot be placed: {}",
            pending.service, pending.why
        )));
    }
    external_objects(engine, spec).await?;
    let others = published_by(engine, |s| {
        !spec.services.values().any(|w| w.name == s.name)
            && (pruned.is_none() || s.view.stack() != pruned)
    })
    .await?;
    let wanted: Vec<Published> = spec
        .services
        .values()
        .flat_map(|s| {
            s.endpoint_spec
                .ports
                .iter()
                .filter(|p| p.published_port != 0)
                .map(|p| Published {
                    service: s.name.clone(),
                    protocol: if p.protocol.is_empty() {
                        "tcp".to_string()
                    } else {
                        p.protocol.clone()
                    },
                    port: p.published_port,
                    host: p.publish_mode == "host",
                })
        })
        .collect();
    if let Some((first, second)) = port_clashes(&wanted, &others).into_iter().next() {
        return Err(DeployError::Input(format!(
            "service {} publishes port {}/{}, which {}",
            second.service,
            second.port,
            second.protocol,
            already_published(&first, &second)
        )));
    }
    Ok(())
}

/// A service whose replicas Swarm would leave pending for ever: a port it publishes in host
/// mode, or its `max_replicas_per_node`, leaves fewer nodes than replicas
/// (`rollout::placement::replicas_left_pending`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicasPending {
    pub service: String,
    /// The host-mode port that runs out of nodes, `(protocol, published)`; `None`: the
    /// replicas per node do.
    pub port: Option<(String, u32)>,
    /// The cause is the update's order: with `start-first` its first new task finds every
    /// node's port held by the old tasks (`swarmkeeper_rollout::placement::start_first_stuck`).
    pub start_first: bool,
    /// Why, naming each node that can run it where the port is taken and by which service.
    pub why: String,
}

/// Which of the services `wanted` (name and view: a stack file's, a form's, an edited compose
/// text's) would have replicas left pending for ever ([`ReplicasPending`]), over the swarm's
/// nodes and what the tasks of the other services hold there (the running tasks of `wanted`
/// are theirs to replace). The services named in `updated`, whose spec the change updates,
/// are also checked for a `start-first` update no node can take
/// (`swarmkeeper_rollout::placement::start_first_stuck`): a service left as it is starts no
/// task. A constraint Swarm cannot parse is left to [`placement`]. Three engine requests; none
/// when no service publishes a host-mode port or caps its replicas per node.
pub async fn replicas_pending(
    engine: &Engine,
    wanted: &[(&str, &ServiceView)],
    updated: &[&str],
) -> Result<Option<ReplicasPending>, EngineError> {
    replicas_pending_beside(engine, wanted, updated, |_| false).await
}

/// [`replicas_pending`], the tasks of the services `removed` keeps (a pruned stack's) left out
/// too: the deploy removes them first.
async fn replicas_pending_beside(
    engine: &Engine,
    wanted: &[(&str, &ServiceView)],
    updated: &[&str],
    removed: impl Fn(&swarmkeeper_engine::Service) -> bool,
) -> Result<Option<ReplicasPending>, EngineError> {
    let asks = |view: &ServiceView| view.host_ports().next().is_some() || view.max_replicas > 0;
    if !wanted.iter().any(|(_, view)| asks(view)) {
        return Ok(None);
    }
    let (nodes, tasks, services) = tokio::try_join!(
        engine.list_nodes(),
        engine.list_all_tasks(),
        engine.list_services(None)
    )?;
    let facts: Vec<_> = nodes.iter().map(facts).collect();
    let rooms = node_rooms(facts.clone(), &tasks, &services, |s| {
        removed(s) || wanted.iter().any(|(name, _)| *name == s.name)
    });
    // An update that starts each new task first finds its own old tasks still there.
    // Built only when a service is updated: a stack file's deploy asks for none.
    let with_own = (!updated.is_empty()).then(|| node_rooms(facts, &tasks, &services, &removed));
    for (name, view) in wanted {
        let stuck = match replicas_left_pending(name, view, &rooms) {
            Ok(Some(why)) => Some((why, false)),
            _ if !updated.contains(name) => None,
            _ => start_first_stuck(name, view, with_own.as_deref().unwrap_or_default())
                .ok()
                .flatten()
                .map(|why| (why, true)),
        };
        if let Some((why, start_first)) = stuck {
            let port = view
                .host_ports()
                .find(|p| p.published_port != 0)
                .map(|p| (p.protocol.clone(), p.published_port));
            return Ok(Some(ReplicasPending {
                service: (*name).to_owned(),
                port,
                start_first,
                why,
            }));
        }
    }
    Ok(None)
}

/// A port one of the services asked about would publish that another service has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortClash {
    /// The service asked about that would publish it.
    pub service: String,
    pub published: u32,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    /// `port 18081/tcp, which service porty already publishes: …`.
    pub why: String,
}

/// Which port of the services `wanted` (a form's, an edited compose text's: name and view)
/// another service of the swarm, or another of `wanted`, already publishes, as [`check`]
/// weighs a stack file's. The running ports of the services named in `wanted` are theirs to
/// change. `None`: no clash.
pub async fn port_in_use(
    engine: &Engine,
    wanted: &[(&str, &ServiceView)],
) -> Result<Option<PortClash>, EngineError> {
    let others = published_by(engine, |s| !wanted.iter().any(|(n, _)| *n == s.name)).await?;
    let wanted: Vec<Published> = wanted
        .iter()
        .flat_map(|(name, view)| ports_of(name, view))
        .collect();
    Ok(port_clashes(&wanted, &others)
        .into_iter()
        .next()
        .map(|(first, second)| PortClash {
            why: format!(
                "port {}/{}, which {}",
                second.port,
                second.protocol,
                already_published(&first, &second)
            ),
            service: second.service,
            published: second.port,
            protocol: second.protocol,
        }))
}

/// The ports the swarm's services that `keep` publish.
async fn published_by(
    engine: &Engine,
    keep: impl Fn(&swarmkeeper_engine::Service) -> bool,
) -> Result<Vec<Published>, EngineError> {
    Ok(engine
        .list_services(None)
        .await?
        .iter()
        .filter(|s| keep(s))
        .flat_map(|s| ports_of(&s.name, &s.view).collect::<Vec<_>>())
        .collect())
}

fn ports_of<'a>(service: &'a str, view: &'a ServiceView) -> impl Iterator<Item = Published> + 'a {
    view.ports
        .iter()
        .filter(|p| p.published_port != 0)
        .map(move |p| Published {
            service: service.to_owned(),
            protocol: p.protocol.clone(),
            port: p.published_port,
            host: p.publish_mode == PublishMode::Host,
        })
}

/// The end of a clash's message: who has the port and why the pair cannot work.
fn already_published(first: &Published, second: &Published) -> String {
    let why = if first.host || second.host {
        "the routing mesh takes a port on every node, so a host-mode port of the same number \
         is lost"
    } else {
        "a port of the routing mesh belongs to one service"
    };
    let mode = if first.host { " in host mode" } else { "" };
    format!("service {} already publishes{mode}: {why}", first.service)
}

/// Why the service `view` (a form's, an edited compose text's) would have no node to run
/// on: its placement constraints, resource reservations and log driver against the swarm's
/// nodes, as [`check`] weighs a stack file's (a constraint Swarm cannot read counts as one no
/// node meets). `None`: some node meets them all.
pub async fn placement(
    engine: &Engine,
    view: &ServiceView,
) -> Result<Option<Unplaceable>, EngineError> {
    let nodes: Vec<NodeFacts> = engine.list_nodes().await?.iter().map(facts).collect();
    Ok(unplaceable_on(view, &nodes))
}

/// [`unplaceable`], a constraint Swarm cannot read counted as one no node meets.
fn unplaceable_on(view: &ServiceView, nodes: &[NodeFacts]) -> Option<Unplaceable> {
    unplaceable(&Needs::of(view), nodes).unwrap_or_else(|why| {
        Some(Unplaceable {
            unmet: Unmet::Constraints,
            why,
        })
    })
}

/// Every raw spec of `specs` (service name, spec: a form's edit, a revision a rollback
/// re-applies) has a node to run on, weighed as [`placement`] weighs one, the nodes listed
/// once. The refusal names the service and the reason (bad input: nothing was changed).
pub(crate) async fn check_placements(
    engine: &Engine,
    specs: &[(String, serde_json::Value)],
) -> Result<(), DeployError> {
    if specs.is_empty() {
        return Ok(());
    }
    let nodes: Vec<NodeFacts> = engine.list_nodes().await?.iter().map(facts).collect();
    for (name, spec) in specs {
        let view = ServiceView::read(spec)
            .map_err(|e| DeployError::Input(format!("service {name}: {e}")))?;
        if let Some(why) = unplaceable_on(&view, &nodes) {
            return Err(DeployError::Input(format!(
                "service {name} cannot be placed: {why}"
            )));
        }
    }
    Ok(())
}

/// The preflight of the specs a rollback re-applies to stack `stack` (service name, spec):
/// each placeable ([`check_placements`]), and no port they publish published by a service
/// outside the stack, as [`check`] weighs a deploy's. The stack's own services are not
/// counted: each is either re-applied or removed by the rollback, so its ports are the
/// revision's to take. A refusal names the service, the port and the service that has it
/// (bad input: nothing was changed).
pub(crate) async fn check_revision(
    engine: &Engine,
    stack: &str,
    specs: &[(String, serde_json::Value)],
) -> Result<(), DeployError> {
    check_placements(engine, specs).await?;
    let mut wanted = Vec::new();
    for (name, spec) in specs {
        let view = ServiceView::read(spec)
            .map_err(|e| DeployError::Input(format!("service {name}: {e}")))?;
        wanted.extend(ports_of(name, &view));
    }
    if wanted.is_empty() {
        return Ok(());
    }
    let others = published_by(engine, |s| {
        s.view.stack() != Some(stack) && !specs.iter().any(|(name, _)| *name == s.name)
    })
    .await?;
    match port_clashes(&wanted, &others).into_iter().next() {
        Some((first, second)) => Err(DeployError::Input(format!(
            "service {} publishes port {}/{}, which {}",
            second.service,
            second.port,
            second.protocol,
            already_published(&first, &second)
        ))),
        None => Ok(()),
    }
}

/// Secrets and configs the services name that the stack does not create (`external: true`)
/// must exist; external networks are checked with the others (`objects::survey`). One that
/// a rotation replaced is named with its successor, which the file must name instead.
async fn external_objects(engine: &Engine, spec: &StackSpec) -> Result<(), DeployError> {
    let declared_secrets: BTreeSet<&str> = spec.secrets.iter().map(|o| o.name.as_str()).collect();
    let declared_configs: BTreeSet<&str> = spec.configs.iter().map(|o| o.name.as_str()).collect();
    let mut secrets = Vec::new();
    let mut configs = Vec::new();
    for service in spec.services.values() {
        let container = &service.task_template.container_spec;
        for secret in &container.secrets {
            if !declared_secrets.contains(secret.secret_name.as_str()) {
                secrets.push((&service.name, &secret.secret_name));
            }
        }
        for config in &container.configs {
            if !declared_configs.contains(config.config_name.as_str()) {
                configs.push((&service.name, &config.config_name));
            }
        }
    }
    for (word, named) in [("secret", secrets), ("config", configs)] {
        if named.is_empty() {
            continue;
        }
        let existing = match word {
            "secret" => engine.list_secrets(None).await?,
            _ => engine.list_configs(None).await?,
        };
        if let Some((service, name)) = named
            .iter()
            .find(|(_, name)| !existing.iter().any(|o| &o.name == *name))
        {
            let objects: Vec<(&str, &BTreeMap<String, String>)> = existing
                .iter()
                .map(|o| (o.name.as_str(), &o.labels))
                .collect();
            return Err(DeployError::Input(missing_external(
                word,
                service,
                name,
                rotated_to(name, &objects),
            )));
        }
    }
    Ok(())
}

/// The refusal of an external secret or config `name` that does not exist; `successor`:
/// what a rotation replaced it with.
fn missing_external(word: &str, service: &str, name: &str, successor: Option<&str>) -> String {
    match successor {
        Some(next) => format!(
            "service {service}: {word} {name} is external but does not exist: it was rotated \
             to {next}; name {next} in the stack file instead of {name} (with `name: {next}` \
             under the {word}'s key to keep the key)"
        ),
        None => format!(
            "service {service}: {word} {name} is external but does not exist \
             (`docker {word} create {name} FILE`)"
        ),
    }
}

/// What constraints read of a node; Swarm places new tasks only on a ready, active one.
pub fn facts(node: &SwarmNode) -> NodeFacts {
    NodeFacts {
        id: node.id.clone(),
        hostname: node.hostname.clone(),
        role: node.role.clone(),
        os: node.os.clone(),
        arch: node.architecture.clone(),
        labels: node.labels.clone(),
        engine_labels: node.engine_labels.clone(),
        addr: node.addr.clone(),
        schedulable: node.state == "ready" && node.availability == "active",
        held: held(
            &node.state,
            &node.availability,
            node.labels.get(PRESSURE_LABEL).map(String::as_str),
        ),
        nano_cpus: node.nano_cpus,
        memory_bytes: node.memory_bytes,
        log_drivers: node.log_drivers.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotated_secret_is_named_with_its_successor() {
        let missing = missing_external("secret", "shop_api", "db_pass", Some("db_pass.v2"));
        assert_eq!(
            missing,
            "service shop_api: secret db_pass is external but does not exist: it was rotated \
             to db_pass.v2; name db_pass.v2 in the stack file instead of db_pass (with `name: \
             db_pass.v2` under the secret's key to keep the key)"
        );
        let plain = missing_external("config", "shop_api", "app_conf", None);
        assert_eq!(
            plain,
            "service shop_api: config app_conf is external but does not exist \
             (`docker config create app_conf FILE`)"
        );
    }
}
