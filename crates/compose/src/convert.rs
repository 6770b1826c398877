//! From a loaded [`Stack`] to the Engine API objects `docker stack deploy STACK` would create:
//! services named `STACK_service`, networks `STACK_network` (`STACK_default` for services
//! that name none), secrets and configs `STACK_name`, all labelled
//! `com.docker.stack.namespace=STACK`. This follows the docker CLI's `cli/compose/convert`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::Invalid;
use crate::model::{
    DeployMode, External, FileObjectDefinition, FileReference, MountType, NetworkDefinition, Port,
    Protocol, PublishMode, RestartCondition, Service, ServiceVolume, VolumeDefinition,
};
use crate::spec::{
    self, ConfigReference, ContainerSpec, DnsConfig, Driver, EndpointSpec, FileObjectCreate,
    FileTarget, HealthConfig, NetworkAttachment, NetworkCreate, PortConfig, SecretReference,
    ServiceMode, ServiceSpec, TaskSpec,
};
use crate::units::Duration;
use crate::{reference, syntax, Located, Stack};

/// Label on every object of a stack, naming the stack.
pub const LABEL_NAMESPACE: &str = "com.docker.stack.namespace";
/// Label on a service holding the image as the compose file wrote it.
pub const LABEL_IMAGE: &str = "com.docker.stack.image";
/// The network of services that name none.
pub const DEFAULT_NETWORK: &str = "default";
/// The driver of stack networks that name none.
pub const DEFAULT_NETWORK_DRIVER: &str = "overlay";

/// Everything a deploy of one stack creates or uses, by Engine API name.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StackSpec {
    pub namespace: String,
    /// By compose service name.
    pub services: BTreeMap<String, ServiceSpec>,
    /// Networks the stack creates, in name order.
    pub networks: Vec<NetworkCreate>,
    /// Names of networks that must already exist.
    pub external_networks: Vec<String>,
    pub secrets: Vec<FileObjectCreate>,
    pub configs: Vec<FileObjectCreate>,
}

/// Most replicas one service may ask for, on every path that sets them (a compose file, the
/// service form and its JSON twin, a scale): a typo of a few extra zeros should not ask Swarm
/// for millions of tasks. More goes in steps, or with the docker CLI.
pub const MAX_REPLICAS: u64 = 500;

/// `Ok` for at most [`MAX_REPLICAS`] replicas; else why, without the field's name
/// (`"1000 is more than 500; scale in steps or with the docker CLI"`): the caller names it.
pub fn check_replicas(replicas: u64) -> Result<(), String> {
    if replicas > MAX_REPLICAS {
        return Err(format!(
            "{replicas} is more than {MAX_REPLICAS}; scale in steps or with the docker CLI"
        ));
    }
    Ok(())
}

/// The checks `docker stack deploy` makes (or the Engine would make, before anything is
/// created) on a loaded stack: every service has a valid image reference, names only
/// networks, volumes, secrets and configs the stack defines, mounts each secret or config at
/// its own target, uses mount options that fit the mount's type and a credential spec of one
/// kind, and asks for replicas only in a replicated mode (at most [`MAX_REPLICAS`], a bound of
/// swarmkeeper's own); definitions do not contradict
/// themselves.
pub fn validate(stack: &Stack) -> Result<(), Invalid> {
    for (name, service) in &stack.services {
        validate_service(stack, name, service)?;
    }
    for (name, network) in &stack.networks {
        let external_name = network.external.as_ref().and_then(|e| e.name.as_ref());
        if external_name.is_some() && network.name.is_some() {
            return Err(Invalid::new(
                network.at,
                format!("network `{name}`: `external.name` and `name` conflict; only use `name`"),
            ));
        }
    }
    for (name, volume) in &stack.volumes {
        if volume.is_external() {
            let conflict = [
                ("driver", volume.driver.is_some()),
                (
                    "driver_opts",
                    volume.driver_opts.as_ref().is_some_and(|o| !o.is_empty()),
                ),
                (
                    "labels",
                    volume.labels.as_ref().is_some_and(|l| !l.0.is_empty()),
                ),
            ]
            .into_iter()
            .find(|(_, set)| *set);
            if let Some((key, _)) = conflict {
                return Err(Invalid::new(
                    volume.at,
                    format!("volume `{name}` is external: it cannot also set `{key}`"),
                ));
            }
            if volume.external.as_ref().is_some_and(|e| e.name.is_some()) && volume.name.is_some() {
                return Err(Invalid::new(
                    volume.at,
                    format!(
                        "volume `{name}`: `external.name` and `name` conflict; only use `name`"
                    ),
                ));
            }
        }
    }
    for (kind, definitions) in [("secret", &stack.secrets), ("config", &stack.configs)] {
        for (name, definition) in definitions {
            if definition
                .external
                .as_ref()
                .is_some_and(|e| e.name.is_some())
                && definition.name.is_some()
            {
                return Err(Invalid::new(
                    definition.at,
                    format!(
                        "{kind} `{name}`: `external.name` and `name` conflict; only use `name`"
                    ),
                ));
            }
            if definition.is_external() {
                continue;
            }
            if definition.driver.is_some() && definition.file.is_some() {
                return Err(Invalid::new(
                    definition.at,
                    format!("{kind} `{name}`: `driver` and `file` conflict; only use `driver`"),
                ));
            }
            if definition.file.is_none() && definition.driver.is_none() {
                return Err(Invalid::new(
                    definition.at,
                    format!("{kind} `{name}` needs a `file` or `external: true`"),
                ));
            }
        }
    }
    Ok(())
}

fn validate_service(stack: &Stack, name: &str, service: &Service) -> Result<(), Invalid> {
    let Some(image) = &service.image else {
        return Err(Invalid::new(
            service.at,
            format!("service `{name}` has no `image`: docker stack deploy builds nothing, it runs images"),
        ));
    };
    reference::validate(&image.value).map_err(|e| Invalid::new(image.at, e))?;
    if let Some(deploy) = &service.deploy {
        let global = deploy
            .mode
            .as_ref()
            .is_some_and(|m| matches!(m.value, DeployMode::Global | DeployMode::GlobalJob));
        if let (true, Some(replicas)) = (global, &deploy.replicas) {
            return Err(Invalid::new(
                replicas.at,
                "`replicas` can only be used with mode `replicated` or `replicated-job`",
            ));
        }
        if let Some(replicas) = &deploy.replicas {
            check_replicas(replicas.value)
                .map_err(|e| Invalid::new(replicas.at, format!("replicas: {e}")))?;
        }
    }
    let restart_policy = service
        .deploy
        .as_ref()
        .and_then(|d| d.restart_policy.as_ref());
    if let (Some(restart), None) = (&service.restart, restart_policy) {
        syntax::parse_restart(&restart.value).map_err(|e| Invalid::new(restart.at, e))?;
    }
    if let Some(networks) = &service.networks {
        for (network, attachment) in &networks.0 {
            if network != DEFAULT_NETWORK && !stack.networks.contains_key(network) {
                return Err(Invalid::new(
                    attachment.at,
                    format!("service `{name}` uses network `{network}`, which is not defined under the top-level `networks`"),
                ));
            }
        }
    }
    for (kind, references, definitions) in [
        ("secret", &service.secrets, &stack.secrets),
        ("config", &service.configs, &stack.configs),
    ] {
        let mut targets: BTreeMap<&str, &str> = BTreeMap::new();
        for reference in references.iter().flat_map(|r| &r.0) {
            let source = reference.source.as_deref().unwrap_or_default();
            if !definitions.contains_key(source) {
                return Err(Invalid::new(
                    reference.at,
                    format!("service `{name}` uses {kind} `{source}`, which is not defined under the top-level `{kind}s`"),
                ));
            }
            let target = reference.target.as_deref().unwrap_or(source);
            if let Some(first) = targets.insert(target, source) {
                return Err(Invalid::new(
                    reference.at,
                    format!("service `{name}` mounts {kind}s `{first}` and `{source}` at the same target `{target}`"),
                ));
            }
        }
    }
    let mut targets: BTreeMap<String, ()> = BTreeMap::new();
    for mount in service.volumes.iter().flat_map(|v| &v.0) {
        validate_mount(stack, name, &mount.value)
            .map_err(|message| Invalid::new(mount.at, message))?;
        // The engine refuses the container ("Duplicate mount point"): the task is rejected.
        let target = mount.value.target.as_deref().unwrap_or_default();
        let target = target.trim_end_matches('/');
        if targets.insert(target.to_owned(), ()).is_some() {
            return Err(Invalid::new(
                mount.at,
                format!("service `{name}` mounts two volumes at the same target `{target}`"),
            ));
        }
    }
    if let Some(healthcheck) = &service.healthcheck {
        let has_test = healthcheck.test.as_ref().is_some_and(|t| !t.0.is_empty());
        if healthcheck.disable == Some(true) && has_test {
            return Err(Invalid::new(
                healthcheck.at,
                "healthcheck `test` and `disable: true` cannot be set at the same time",
            ));
        }
    }
    if let Some(credential_spec) = &service.credential_spec {
        let set: Vec<&str> = [
            ("config", &credential_spec.config),
            ("file", &credential_spec.file),
            ("registry", &credential_spec.registry),
        ]
        .into_iter()
        .filter(|(_, value)| value.as_deref().is_some_and(|v| !v.is_empty()))
        .map(|(key, _)| key)
        .collect();
        if set.len() > 1 {
            return Err(Invalid::new(
                credential_spec.at,
                format!(
                    "a credential spec is one of `config`, `file` or `registry`, not {}",
                    set.join(" and ")
                ),
            ));
        }
        if let Some(config) = credential_spec.config.as_deref().filter(|c| !c.is_empty()) {
            if !stack.configs.contains_key(config) {
                return Err(Invalid::new(
                    credential_spec.at,
                    format!("service `{name}`'s credential spec uses config `{config}`, which is not defined under the top-level `configs`"),
                ));
            }
        }
    }
    Ok(())
}

/// The checks of the docker CLI's `convertVolumeToMount`: each type takes its own options,
/// and a source where it needs one; and those the engine makes of a mount when it creates a
/// task's container (moby's `volume/mounts` Linux rules), which Swarm would otherwise answer
/// with a rejected task: a target that is an absolute path other than `/`, a bind source that
/// is absolute, no read-only or subpath on an anonymous volume, a subpath inside the volume,
/// a known bind propagation.
fn validate_mount(stack: &Stack, service: &str, mount: &ServiceVolume) -> Result<(), String> {
    let source = mount.source.as_deref().unwrap_or_default();
    let kind = mount.kind.clone().unwrap_or(MountType::Volume);
    let target = mount.target.as_deref().unwrap_or_default();
    // Windows named pipes and paths are the Windows engine's grammar.
    if kind != MountType::Npipe {
        if target.is_empty() {
            return Err("a mount needs a `target`, the path in the container".to_string());
        }
        if !target.starts_with('/') {
            return Err(format!(
                "mount target `{target}` must be an absolute path in the container (`/{target}`?)"
            ));
        }
        if target.split('/').all(|part| part.is_empty() || part == ".") {
            return Err("a mount's target cannot be `/`, the container's root".to_string());
        }
    }
    if kind == MountType::Bind && !source.is_empty() && !source.starts_with('/') {
        return Err(format!(
            "bind mount source `{source}` must be an absolute path on the node"
        ));
    }
    if kind == MountType::Volume && source.is_empty() {
        if mount.read_only == Some(true) {
            return Err(
                "an anonymous volume (no `source`) cannot be read-only: it starts empty"
                    .to_string(),
            );
        }
        if mount.volume.as_ref().is_some_and(|v| v.subpath.is_some()) {
            return Err("an anonymous volume (no `source`) has no `subpath`".to_string());
        }
    }
    if let Some(subpath) = mount.volume.as_ref().and_then(|v| v.subpath.as_deref()) {
        let outside = subpath.starts_with('/') || subpath.split('/').any(|part| part == "..");
        if outside || subpath.is_empty() {
            return Err(format!(
                "volume subpath `{subpath}` must be a relative path inside the volume"
            ));
        }
    }
    let propagation = mount.bind.as_ref().and_then(|b| b.propagation.as_deref());
    if let Some(propagation) = propagation {
        const MODES: [&str; 6] = [
            "private", "rprivate", "slave", "rslave", "shared", "rshared",
        ];
        if !MODES.contains(&propagation) {
            return Err(format!(
                "bind propagation `{propagation}` is one of {}",
                MODES.join(", ")
            ));
        }
    }
    let options = [
        ("bind", mount.bind.is_some(), MountType::Bind),
        ("volume", mount.volume.is_some(), MountType::Volume),
        ("tmpfs", mount.tmpfs.is_some(), MountType::Tmpfs),
    ];
    for (option, set, owner) in options {
        let allowed = kind == owner || (owner == MountType::Bind && kind == MountType::Npipe);
        if set && !allowed {
            return Err(format!(
                "{option} options cannot be used with a mount of type `{}`",
                kind.as_str()
            ));
        }
    }
    match kind {
        MountType::Volume if !source.is_empty() && !stack.volumes.contains_key(source) => Err(format!(
            "service `{service}` mounts volume `{source}`, which is not defined under the top-level `volumes`"
        )),
        MountType::Cluster if !source.starts_with("group:") && !stack.volumes.contains_key(source) => Err(format!(
            "service `{service}` mounts cluster volume `{source}`, which is not defined under the top-level `volumes`"
        )),
        MountType::Bind | MountType::Npipe | MountType::Cluster | MountType::Image if source.is_empty() => {
            Err(format!("a {} mount needs a `source`", kind.as_str()))
        }
        MountType::Tmpfs if !source.is_empty() => Err("a tmpfs mount cannot have a `source`".to_string()),
        _ => Ok(()),
    }
}

/// Maps the stack to the objects `docker stack deploy` would create under `namespace`.
pub fn stack_spec(namespace: &str, stack: &Stack) -> Result<StackSpec, Invalid> {
    validate(stack)?;
    let scope = |name: &str| format!("{namespace}_{name}");
    let services = stack
        .services
        .iter()
        .map(|(name, service)| (name.clone(), service_spec(namespace, name, service, stack)))
        .collect();

    let mut used_networks: Vec<&str> = stack
        .services
        .values()
        .flat_map(|service| match &service.networks {
            Some(networks) if !networks.0.is_empty() => {
                networks.0.keys().map(String::as_str).collect()
            }
            _ => vec![DEFAULT_NETWORK],
        })
        .collect();
    used_networks.sort_unstable();
    used_networks.dedup();
    let mut networks = Vec::new();
    let mut external_networks = Vec::new();
    for name in used_networks {
        let definition = stack.networks.get(name).map(|d| &d.value);
        let default = NetworkDefinition::default();
        let definition = definition.unwrap_or(&default);
        if definition.is_external() {
            external_networks.push(network_name(namespace, name, definition));
            continue;
        }
        networks.push(NetworkCreate {
            name: network_name(namespace, name, definition),
            driver: definition
                .driver
                .clone()
                .unwrap_or_else(|| DEFAULT_NETWORK_DRIVER.to_string()),
            options: definition.driver_opts.clone().unwrap_or_default(),
            labels: with_namespace(namespace, definition.labels.as_ref().map(|l| &l.0)),
            internal: definition.internal.unwrap_or_default(),
            attachable: definition.attachable.unwrap_or_default(),
            // The docker CLI sends IPAM only when it names a driver or a pool.
            ipam: definition
                .ipam
                .as_ref()
                .filter(|ipam| {
                    ipam.driver.as_deref().is_some_and(|d| !d.is_empty())
                        || ipam.config.as_ref().is_some_and(|c| !c.is_empty())
                })
                .map(|ipam| spec::Ipam {
                    driver: ipam.driver.clone().unwrap_or_default(),
                    config: ipam
                        .config
                        .iter()
                        .flatten()
                        .map(|pool| spec::IpamConfig {
                            subnet: pool.subnet.clone().unwrap_or_default(),
                        })
                        .collect(),
                }),
        });
    }
    networks.sort_by(|a, b| a.name.cmp(&b.name));

    let file_objects = |definitions: &BTreeMap<String, crate::Located<FileObjectDefinition>>| {
        definitions
            .iter()
            .filter(|(_, definition)| !definition.is_external())
            .map(|(name, definition)| FileObjectCreate {
                name: definition.name.clone().unwrap_or_else(|| scope(name)),
                labels: with_namespace(namespace, definition.labels.as_ref().map(|l| &l.0)),
                file: definition.file.clone().unwrap_or_default(),
                driver: definition.driver.as_ref().map(|driver| Driver {
                    name: driver.clone(),
                    options: definition.driver_opts.clone().unwrap_or_default(),
                }),
                templating: definition.template_driver.as_ref().map(|name| Driver {
                    name: name.clone(),
                    options: BTreeMap::new(),
                }),
            })
            .collect::<Vec<_>>()
    };

    Ok(StackSpec {
        namespace: namespace.to_string(),
        services,
        networks,
        external_networks,
        secrets: file_objects(&stack.secrets),
        configs: file_objects(&stack.configs),
    })
}

/// The Engine name of a stack network, volume, secret or config: its `name`, the external
/// name, or `STACK_key`.
fn object_name(
    namespace: &str,
    key: &str,
    name: Option<&String>,
    external: Option<&External>,
) -> String {
    if let Some(name) = name {
        return name.clone();
    }
    match external {
        Some(external) if external.external => {
            external.name.clone().unwrap_or_else(|| key.to_string())
        }
        _ => format!("{namespace}_{key}"),
    }
}

/// The Engine name of the network a stack's services call `key` (declared as `definition`):
/// its `name`, the external name, or `STACK_key` — the name a service's attachment targets.
pub fn network_name(namespace: &str, key: &str, definition: &NetworkDefinition) -> String {
    object_name(
        namespace,
        key,
        definition.name.as_ref(),
        definition.external.as_ref(),
    )
}

fn volume_name(namespace: &str, key: &str, definition: &VolumeDefinition) -> String {
    object_name(
        namespace,
        key,
        definition.name.as_ref(),
        definition.external.as_ref(),
    )
}

fn file_object_name(namespace: &str, key: &str, definition: &FileObjectDefinition) -> String {
    object_name(
        namespace,
        key,
        definition.name.as_ref(),
        definition.external.as_ref(),
    )
}

fn with_namespace(
    namespace: &str,
    labels: Option<&BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let mut labels = labels.cloned().unwrap_or_default();
    labels.insert(LABEL_NAMESPACE.to_string(), namespace.to_string());
    labels
}

/// The spec of one service, as the docker CLI's `convert.Service` builds it and its Engine
/// client sends it (the image with a tag: `app` becomes `app:latest`; the label
/// `com.docker.stack.image` keeps it as written).
pub fn service_spec(namespace: &str, name: &str, service: &Service, stack: &Stack) -> ServiceSpec {
    let deploy = service.deploy.as_ref().map(|d| &d.value);
    let image = service
        .image
        .as_ref()
        .map(|i| i.value.clone())
        .unwrap_or_default();
    let mut labels = with_namespace(
        namespace,
        deploy.and_then(|d| d.labels.as_ref()).map(|l| &l.0),
    );
    labels.insert(LABEL_IMAGE.to_string(), image.clone());
    let (capability_add, capability_drop) = effective_capabilities(
        service.cap_add.as_deref().unwrap_or_default(),
        service.cap_drop.as_deref().unwrap_or_default(),
    );

    let container_spec = ContainerSpec {
        image: reference::normalize(&image),
        labels: with_namespace(namespace, service.labels.as_ref().map(|l| &l.0)),
        command: service
            .entrypoint
            .as_ref()
            .map(|c| c.0.clone())
            .unwrap_or_default(),
        args: service
            .command
            .as_ref()
            .map(|c| c.0.clone())
            .unwrap_or_default(),
        hostname: service.hostname.clone().unwrap_or_default(),
        env: environment(service),
        dir: service.working_dir.clone().unwrap_or_default(),
        user: service.user.clone().unwrap_or_default(),
        mounts: service
            .volumes
            .iter()
            .flat_map(|v| &v.0)
            .map(|mount| self::mount(namespace, &mount.value, stack))
            .collect(),
        stop_grace_period: service.stop_grace_period.as_ref().map(|d| d.value),
        stop_signal: service.stop_signal.clone().unwrap_or_default(),
        healthcheck: service
            .healthcheck
            .as_ref()
            .map(|h| health_config(&h.value)),
        hosts: service
            .extra_hosts
            .iter()
            .flat_map(|h| &h.0)
            .filter_map(|entry| {
                entry
                    .split_once(':')
                    .map(|(host, ip)| format!("{ip} {host}"))
            })
            .collect(),
        dns_config: dns_config(service),
        secrets: file_references(
            namespace,
            service.secrets.as_ref().map(|s| &s.0),
            &stack.secrets,
        )
        .into_iter()
        .map(|(file, name)| SecretReference {
            file,
            secret_id: String::new(),
            secret_name: name,
        })
        .collect(),
        configs: config_references(namespace, service, stack),
        tty: service.tty.unwrap_or_default(),
        open_stdin: service.stdin_open.unwrap_or_default(),
        read_only: service.read_only.unwrap_or_default(),
        init: service.init,
        isolation: service.isolation.clone().unwrap_or_default(),
        sysctls: service
            .sysctls
            .as_ref()
            .map(|s| s.0.clone())
            .unwrap_or_default(),
        capability_add,
        capability_drop,
        ulimits: service
            .ulimits
            .iter()
            .flatten()
            .map(|(name, limit)| spec::Ulimit {
                name: name.clone(),
                soft: limit.soft,
                hard: limit.hard,
            })
            .collect(),
        oom_score_adj: service.oom_score_adj.as_ref().map_or(0, |o| o.value),
        privileges: service
            .credential_spec
            .as_ref()
            .and_then(|credential_spec| {
                let value = |v: &Option<String>| v.clone().unwrap_or_default();
                let spec = spec::CredentialSpec {
                    config: credential_spec
                        .config
                        .as_ref()
                        .filter(|c| !c.is_empty())
                        .map(|key| config_name(namespace, key, stack))
                        .unwrap_or_default(),
                    file: value(&credential_spec.file),
                    registry: value(&credential_spec.registry),
                };
                (spec != spec::CredentialSpec::default()).then_some(spec::Privileges {
                    credential_spec: Some(spec),
                })
            }),
    };

    let placement = deploy.and_then(|d| d.placement.as_ref());
    let resources = deploy.and_then(|d| d.resources.as_ref());
    ServiceSpec {
        name: format!("{namespace}_{name}"),
        labels,
        task_template: TaskSpec {
            container_spec,
            resources: spec::ResourceRequirements {
                limits: resources
                    .and_then(|r| r.limits.as_ref())
                    .map(|limits| spec::Limit {
                        nano_cpus: limits.cpus.as_ref().map(|c| c.value.0).unwrap_or_default(),
                        memory_bytes: limits
                            .memory
                            .as_ref()
                            .map(|m| m.value.0)
                            .unwrap_or_default(),
                        pids: limits.pids,
                    }),
                reservations: resources
                    .and_then(|r| r.reservations.as_ref())
                    .map(|reservations| spec::Reservation {
                        nano_cpus: reservations
                            .cpus
                            .as_ref()
                            .map(|c| c.value.0)
                            .unwrap_or_default(),
                        memory_bytes: reservations
                            .memory
                            .as_ref()
                            .map(|m| m.value.0)
                            .unwrap_or_default(),
                        generic_resources: reservations
                            .generic_resources
                            .iter()
                            .flatten()
                            .filter_map(|r| r.discrete_resource_spec.as_ref())
                            .map(|discrete| spec::GenericResource {
                                discrete_resource_spec: spec::DiscreteGenericResource {
                                    kind: discrete.kind.clone().unwrap_or_default(),
                                    value: discrete.value.unwrap_or_default(),
                                },
                            })
                            .collect(),
                    }),
            },
            restart_policy: restart_policy(service),
            placement: spec::Placement {
                constraints: placement
                    .and_then(|p| p.constraints.as_ref())
                    .map(|c| c.iter().map(|c| c.value.clone()).collect())
                    .unwrap_or_default(),
                preferences: placement
                    .and_then(|p| p.preferences.as_ref())
                    .into_iter()
                    .flatten()
                    .map(|preference| spec::PlacementPreference {
                        spread: spec::SpreadOver {
                            spread_descriptor: preference.spread.clone().unwrap_or_default(),
                        },
                    })
                    .collect(),
                max_replicas: placement
                    .and_then(|p| p.max_replicas_per_node)
                    .filter(|&n| n > 0),
            },
            networks: network_attachments(namespace, name, service, stack),
            log_driver: service.logging.as_ref().map(|logging| Driver {
                name: logging
                    .driver
                    .as_ref()
                    .map(|d| d.value.clone())
                    .unwrap_or_default(),
                options: logging
                    .options
                    .iter()
                    .flatten()
                    .map(|(key, value)| (key.clone(), value.value.clone()))
                    .collect(),
            }),
        },
        mode: service_mode(service),
        update_config: deploy
            .and_then(|d| d.update_config.as_ref())
            .map(|u| update_config(&u.value)),
        rollback_config: deploy
            .and_then(|d| d.rollback_config.as_ref())
            .map(|u| update_config(&u.value)),
        endpoint_spec: endpoint_spec(service),
    }
}

fn environment(service: &Service) -> Vec<String> {
    let mut env: Vec<String> = service
        .environment
        .iter()
        .flat_map(|e| &e.0)
        .map(|(key, value)| match value {
            Some(value) => format!("{key}={value}"),
            None => key.clone(),
        })
        .collect();
    env.sort();
    env
}

/// `deploy.restart_policy`, or else what `restart:` means to the docker CLI.
fn restart_policy(service: &Service) -> Option<spec::RestartPolicy> {
    let deploy = service.deploy.as_ref();
    if let Some(policy) = deploy.and_then(|d| d.restart_policy.as_ref()) {
        return Some(spec::RestartPolicy {
            condition: policy
                .condition
                .as_ref()
                .map(|c| c.as_str().to_string())
                .unwrap_or_default(),
            delay: policy.delay.as_ref().map(|d| d.value),
            max_attempts: policy.max_attempts.as_ref().map(|m| m.value),
            window: policy.window.as_ref().map(|w| w.value),
        });
    }
    let restart = service.restart.as_ref()?;
    // `validate` has refused what does not parse.
    let (condition, max_attempts): (RestartCondition, Option<u64>) =
        syntax::parse_restart(&restart.value).ok().flatten()?;
    Some(spec::RestartPolicy {
        condition: condition.as_str().to_string(),
        delay: None,
        max_attempts,
        window: None,
    })
}

/// `cap_add` and `cap_drop` as the docker CLI's `EffectiveCapAddCapDrop` makes them: upper
/// case with a `CAP_` prefix (but `ALL`), `ALL` alone when listed, a capability both added and
/// dropped only added, each sorted and once.
fn effective_capabilities(add: &[String], drop: &[String]) -> (Vec<String>, Vec<String>) {
    let normalize = |caps: &[String]| -> std::collections::BTreeSet<String> {
        let caps: std::collections::BTreeSet<String> = caps
            .iter()
            .map(|c| {
                let c = c.trim().to_uppercase();
                if c == "ALL" || c == "RESET" || c.starts_with("CAP_") {
                    c
                } else {
                    format!("CAP_{c}")
                }
            })
            .collect();
        if caps.contains("ALL") {
            std::collections::BTreeSet::from(["ALL".to_string()])
        } else {
            caps
        }
    };
    let add = normalize(add);
    let drop = normalize(drop);
    let capability_drop = drop
        .iter()
        .filter(|c| !add.contains(*c) && *c != "RESET")
        .cloned()
        .collect();
    let capability_add = add.into_iter().filter(|c| c != "RESET").collect();
    (capability_add, capability_drop)
}

/// One mount, as the docker CLI's `convertVolumeToMount` makes it: a named volume becomes the
/// stack's volume (`STACK_name`, or its `name`) with the stack's labels and driver unless it is
/// external; other types keep their source as resolved at load.
fn mount(namespace: &str, mount: &ServiceVolume, stack: &Stack) -> spec::Mount {
    let kind = mount.kind.clone().unwrap_or(MountType::Volume);
    let mut result = spec::Mount {
        kind: kind.as_str().to_string(),
        source: mount.source.clone().unwrap_or_default(),
        target: mount.target.clone().unwrap_or_default(),
        read_only: mount.read_only.unwrap_or_default(),
        consistency: mount.consistency.clone().unwrap_or_default(),
        bind_options: None,
        volume_options: None,
        tmpfs_options: None,
        cluster_options: None,
    };
    let definition = |key: &str| {
        stack
            .volumes
            .get(key)
            .map(|d| d.value.clone())
            .unwrap_or_default()
    };
    match kind {
        MountType::Volume if !result.source.is_empty() => {
            let key = result.source.clone();
            let definition = definition(&key);
            result.source = volume_name(namespace, &key, &definition);
            let mut options = spec::VolumeOptions {
                no_copy: mount
                    .volume
                    .as_ref()
                    .and_then(|v| v.nocopy)
                    .unwrap_or_default(),
                subpath: mount
                    .volume
                    .as_ref()
                    .and_then(|v| v.subpath.clone())
                    .unwrap_or_default(),
                ..spec::VolumeOptions::default()
            };
            if !definition.is_external() {
                options.labels =
                    with_namespace(namespace, definition.labels.as_ref().map(|l| &l.0));
                if definition.driver.is_some() || definition.driver_opts.is_some() {
                    options.driver_config = Some(Driver {
                        name: definition.driver.clone().unwrap_or_default(),
                        options: definition.driver_opts.clone().unwrap_or_default(),
                    });
                }
            }
            result.volume_options = Some(options);
        }
        MountType::Bind | MountType::Npipe => {
            result.bind_options = mount.bind.as_ref().map(|bind| spec::BindOptions {
                propagation: bind.propagation.clone().unwrap_or_default(),
            });
        }
        MountType::Tmpfs => {
            result.tmpfs_options = mount.tmpfs.as_ref().map(|tmpfs| spec::TmpfsOptions {
                size_bytes: tmpfs.size.map(|s| s.0).unwrap_or_default(),
                mode: tmpfs.mode.map(|m| m.0).unwrap_or_default(),
            });
        }
        MountType::Cluster => {
            if !result.source.starts_with("group:") {
                let key = result.source.clone();
                result.source = volume_name(namespace, &key, &definition(&key));
            }
            result.cluster_options = Some(spec::Empty {});
        }
        MountType::Volume | MountType::Image => {}
    }
    result
}

fn health_config(healthcheck: &crate::model::Healthcheck) -> HealthConfig {
    if healthcheck.disable == Some(true) {
        return HealthConfig {
            test: vec!["NONE".to_string()],
            interval: Duration::ZERO,
            timeout: Duration::ZERO,
            start_period: Duration::ZERO,
            start_interval: Duration::ZERO,
            retries: 0,
        };
    }
    let duration =
        |d: &Option<crate::Located<Duration>>| d.as_ref().map(|d| d.value).unwrap_or_default();
    HealthConfig {
        test: healthcheck
            .test
            .as_ref()
            .map(|t| t.0.clone())
            .unwrap_or_default(),
        interval: duration(&healthcheck.interval),
        timeout: duration(&healthcheck.timeout),
        start_period: duration(&healthcheck.start_period),
        start_interval: duration(&healthcheck.start_interval),
        retries: healthcheck
            .retries
            .as_ref()
            .map(|r| r.value)
            .unwrap_or_default(),
    }
}

fn dns_config(service: &Service) -> Option<DnsConfig> {
    let nameservers = service
        .dns
        .as_ref()
        .map(|d| d.0.clone())
        .unwrap_or_default();
    let search = service
        .dns_search
        .as_ref()
        .map(|d| d.0.clone())
        .unwrap_or_default();
    (!nameservers.is_empty() || !search.is_empty()).then_some(DnsConfig {
        nameservers,
        search,
    })
}

/// Secret or config mounts: the file each becomes and the Engine name of the object, sorted
/// by name as the docker CLI sorts them (so that a reordering does not restart the service;
/// one object mounted twice keeps the file's order).
fn file_references(
    namespace: &str,
    references: Option<&Vec<Located<FileReference>>>,
    definitions: &BTreeMap<String, Located<FileObjectDefinition>>,
) -> Vec<(FileTarget, String)> {
    let mut result: Vec<(FileTarget, String)> = references
        .into_iter()
        .flatten()
        .map(|reference| {
            let source = reference.source.clone().unwrap_or_default();
            let default = FileObjectDefinition::default();
            let definition = definitions
                .get(&source)
                .map(|d| &d.value)
                .unwrap_or(&default);
            let file = FileTarget {
                name: reference.target.clone().unwrap_or_else(|| source.clone()),
                uid: reference.uid.clone().unwrap_or_else(|| "0".to_string()),
                gid: reference.gid.clone().unwrap_or_else(|| "0".to_string()),
                mode: reference.mode.unwrap_or(0o444),
            };
            (file, file_object_name(namespace, &source, definition))
        })
        .collect();
    result.sort_by(|a, b| a.1.cmp(&b.1));
    result
}

/// The Engine name of the stack's config `key`.
fn config_name(namespace: &str, key: &str, stack: &Stack) -> String {
    let definition = stack
        .configs
        .get(key)
        .map(|d| d.value.clone())
        .unwrap_or_default();
    file_object_name(namespace, key, &definition)
}

/// The configs mounted as files, and the one a credential spec uses (a runtime reference,
/// after the files, once), sorted by name as the docker CLI sorts them.
fn config_references(namespace: &str, service: &Service, stack: &Stack) -> Vec<ConfigReference> {
    let mut references: Vec<ConfigReference> = file_references(
        namespace,
        service.configs.as_ref().map(|c| &c.0),
        &stack.configs,
    )
    .into_iter()
    .map(|(file, name)| ConfigReference {
        file: Some(file),
        runtime: None,
        config_id: String::new(),
        config_name: name,
    })
    .collect();
    let runtime = service
        .credential_spec
        .as_ref()
        .and_then(|spec| spec.config.as_deref())
        .filter(|config| !config.is_empty());
    if let Some(key) = runtime {
        references.push(ConfigReference {
            file: None,
            runtime: Some(spec::Empty {}),
            config_id: String::new(),
            config_name: config_name(namespace, key, stack),
        });
    }
    references.sort_by(|a, b| a.config_name.cmp(&b.config_name));
    references
}

/// The networks a service joins (the stack's default network if it names none), sorted by
/// target. On user-defined networks the service's name is an alias, so that other services
/// of the stack reach it by that name.
fn network_attachments(
    namespace: &str,
    name: &str,
    service: &Service,
    stack: &Stack,
) -> Vec<NetworkAttachment> {
    let default_only = BTreeMap::from([(DEFAULT_NETWORK.to_string(), Default::default())]);
    let networks = match &service.networks {
        Some(networks) if !networks.0.is_empty() => networks
            .0
            .iter()
            .map(|(k, v)| (k, &v.value))
            .collect::<Vec<_>>(),
        _ => default_only.iter().collect(),
    };
    let mut attachments: Vec<NetworkAttachment> = networks
        .into_iter()
        .map(|(network, options)| {
            let default = NetworkDefinition::default();
            let definition = stack
                .networks
                .get(network)
                .map(|d| &d.value)
                .unwrap_or(&default);
            let target = network_name(namespace, network, definition);
            let mut aliases = options.aliases.clone().unwrap_or_default();
            let user_defined = !matches!(target.as_str(), "default" | "bridge" | "host" | "none")
                && !target.starts_with("container:");
            if user_defined {
                aliases.push(name.to_string());
            }
            NetworkAttachment {
                target,
                aliases,
                driver_opts: options.driver_opts.clone().unwrap_or_default(),
            }
        })
        .collect();
    attachments.sort_by(|a, b| a.target.cmp(&b.target));
    attachments
}

fn service_mode(service: &Service) -> ServiceMode {
    let deploy = service.deploy.as_ref();
    let replicas = deploy.and_then(|d| d.replicas.as_ref()).map(|r| r.value);
    match deploy
        .and_then(|d| d.mode.as_ref())
        .map(|m| m.value)
        .unwrap_or(DeployMode::Replicated)
    {
        DeployMode::Replicated => ServiceMode {
            replicated: Some(spec::Replicated { replicas }),
            ..ServiceMode::default()
        },
        DeployMode::Global => ServiceMode {
            global: Some(spec::Empty {}),
            ..ServiceMode::default()
        },
        DeployMode::ReplicatedJob => ServiceMode {
            replicated_job: Some(spec::ReplicatedJob {
                max_concurrent: replicas,
                total_completions: replicas,
            }),
            ..ServiceMode::default()
        },
        DeployMode::GlobalJob => ServiceMode {
            global_job: Some(spec::Empty {}),
            ..ServiceMode::default()
        },
    }
}

fn update_config(config: &crate::model::UpdateConfig) -> spec::UpdateConfig {
    spec::UpdateConfig {
        // The docker CLI defaults parallelism to 1 when the compose file leaves it out.
        parallelism: config.parallelism.as_ref().map_or(1, |p| p.value),
        delay: config.delay.as_ref().map(|d| d.value).unwrap_or_default(),
        failure_action: config
            .failure_action
            .as_ref()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default(),
        monitor: config.monitor.as_ref().map(|m| m.value).unwrap_or_default(),
        max_failure_ratio: config
            .max_failure_ratio
            .as_ref()
            .map(|r| r.value)
            .unwrap_or_default(),
        order: config
            .order
            .as_ref()
            .map(|o| o.as_str().to_string())
            .unwrap_or_default(),
    }
}

/// The service's ports sorted by published port, as the docker CLI sorts them (its versions
/// up to 28 sort by the published port alone; ports that share one keep the file's order).
fn endpoint_spec(service: &Service) -> EndpointSpec {
    let mut ports: Vec<PortConfig> = service
        .ports
        .iter()
        .flat_map(|p| &p.0)
        .map(|port| port_config(port))
        .collect();
    ports.sort_by_key(|port| port.published_port);
    EndpointSpec {
        mode: service
            .deploy
            .as_ref()
            .and_then(|d| d.endpoint_mode.as_ref())
            .map(|m| m.as_str().to_string())
            .unwrap_or_default(),
        ports,
    }
}

/// A port with the Engine's defaults written out (`tcp`, `ingress`), as the Engine stores it,
/// so that a deployed spec compares equal to the one written.
fn port_config(port: &Port) -> PortConfig {
    PortConfig {
        protocol: port.protocol.unwrap_or(Protocol::Tcp).as_str().to_string(),
        target_port: port.target,
        published_port: port.published.unwrap_or_default(),
        publish_mode: port
            .mode
            .unwrap_or(PublishMode::Ingress)
            .as_str()
            .to_string(),
    }
}
