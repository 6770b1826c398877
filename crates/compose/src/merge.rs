//! Several `-c` files, merged in order as the docker CLI's stack loader merges them: a later
//! file's settings override scalars, maps merge key by key, ports, volumes, secrets and configs
//! merge by what they mount or publish, `command` and `entrypoint` are replaced, and any other
//! list is appended to. Top-level networks, volumes, secrets and configs are replaced whole.

use std::collections::BTreeMap;

use crate::de::{HostsList, Mapping, MappingWithEquals, NamedMap, StringList};
use crate::located::Located;
use crate::model::{
    ComposeFile, Deploy, Healthcheck, Logging, Placement, ResourceLimits, ResourceReservations,
    Resources, RestartPolicy, Service, ServiceNetwork, UpdateConfig,
};

pub(crate) trait Merge {
    /// Lays `later` over `self`.
    fn merge(&mut self, later: Self);
}

/// A setting written later wins.
fn replace<T>(base: &mut Option<T>, later: Option<T>) {
    if later.is_some() {
        *base = later;
    }
}

/// Objects written in both places merge field by field.
fn deep<T: Merge>(base: &mut Option<T>, later: Option<T>) {
    match (base.as_mut(), later) {
        (Some(base), Some(later)) => base.merge(later),
        (None, later @ Some(_)) => *base = later,
        (_, None) => {}
    }
}

fn append<T>(base: &mut Option<Vec<T>>, later: Option<Vec<T>>) {
    match (base.as_mut(), later) {
        (Some(base), Some(later)) => base.extend(later),
        (None, later @ Some(_)) => *base = later,
        (_, None) => {}
    }
}

fn merge_map<K: Ord, V>(base: &mut Option<BTreeMap<K, V>>, later: Option<BTreeMap<K, V>>) {
    match (base.as_mut(), later) {
        (Some(base), Some(later)) => base.extend(later),
        (None, later @ Some(_)) => *base = later,
        (_, None) => {}
    }
}

/// Merges lists whose items are identified by `key`: a later item replaces the one with the
/// same key, and the result is sorted by key (the docker CLI sorts them, too).
fn merge_by<T, K: Ord>(base: &mut Vec<Located<T>>, later: Vec<Located<T>>, key: impl Fn(&T) -> K) {
    let mut by_key: BTreeMap<K, Located<T>> = BTreeMap::new();
    for item in base.drain(..).chain(later) {
        by_key.insert(key(&item.value), item);
    }
    base.extend(by_key.into_values());
}

impl<T: Merge> Merge for Located<T> {
    /// The merged object stays where it was first written.
    fn merge(&mut self, later: Self) {
        self.value.merge(later.value);
    }
}

impl Merge for ComposeFile {
    fn merge(&mut self, later: ComposeFile) {
        replace(&mut self.version, later.version);
        replace(&mut self.name, later.name);
        match (self.services.as_mut(), later.services) {
            (Some(NamedMap(base)), Some(NamedMap(later))) => {
                for (name, service) in later {
                    match base.get_mut(&name) {
                        Some(existing) => existing.value.merge(service.value),
                        None => {
                            base.insert(name, service);
                        }
                    }
                }
            }
            (None, later @ Some(_)) => self.services = later,
            (_, None) => {}
        }
        replace_definitions(&mut self.networks, later.networks);
        replace_definitions(&mut self.volumes, later.volumes);
        replace_definitions(&mut self.secrets, later.secrets);
        replace_definitions(&mut self.configs, later.configs);
    }
}

fn replace_definitions<T>(base: &mut Option<NamedMap<T>>, later: Option<NamedMap<T>>) {
    match (base.as_mut(), later) {
        (Some(NamedMap(base)), Some(NamedMap(later))) => base.extend(later),
        (None, later @ Some(_)) => *base = later,
        (_, None) => {}
    }
}

impl Merge for Service {
    fn merge(&mut self, later: Service) {
        replace(&mut self.image, later.image);
        // An empty command does not clear the earlier one, as in the docker CLI.
        replace(&mut self.command, later.command.filter(|c| !c.0.is_empty()));
        replace(
            &mut self.entrypoint,
            later.entrypoint.filter(|c| !c.0.is_empty()),
        );
        self.environment = merged(self.environment.take(), later.environment, |b, l| {
            b.merge(l)
        });
        self.env_file = merged(self.env_file.take(), later.env_file, |b, l| {
            b.value.0.extend(l.value.0)
        });
        self.labels = merge_mapping(self.labels.take(), later.labels);
        self.sysctls = merge_mapping(self.sysctls.take(), later.sysctls);
        self.ports = merged(self.ports.take(), later.ports, |b, l| {
            merge_by(&mut b.0, l.0, |port| (port.published, port.clone()))
        });
        self.volumes = merged(self.volumes.take(), later.volumes, |b, l| {
            merge_by(&mut b.0, l.0, |volume| volume.target.clone())
        });
        self.secrets = merged(self.secrets.take(), later.secrets, |b, l| {
            merge_by(&mut b.0, l.0, |secret| secret.source.clone())
        });
        self.configs = merged(self.configs.take(), later.configs, |b, l| {
            merge_by(&mut b.0, l.0, |config| config.source.clone())
        });
        self.networks = merged(self.networks.take(), later.networks, |b, l| {
            for (name, network) in l.0 {
                // A bare name (list syntax) adds the network without clearing its options.
                let bare = network.value == ServiceNetwork::default();
                if !(bare && b.0.contains_key(&name)) {
                    b.0.insert(name, network);
                }
            }
        });
        deep(&mut self.healthcheck, later.healthcheck);
        self.logging = merged(self.logging.take(), later.logging, |b, l| b.merge(l));
        deep(&mut self.deploy, later.deploy);
        replace(&mut self.stop_grace_period, later.stop_grace_period);
        replace(&mut self.stop_signal, later.stop_signal);
        replace(&mut self.user, later.user);
        replace(&mut self.working_dir, later.working_dir);
        replace(&mut self.hostname, later.hostname);
        replace(&mut self.init, later.init);
        replace(&mut self.read_only, later.read_only);
        replace(&mut self.tty, later.tty);
        replace(&mut self.stdin_open, later.stdin_open);
        self.extra_hosts = merged(
            self.extra_hosts.take(),
            later.extra_hosts,
            |b: &mut HostsList, l| b.0.extend(l.0),
        );
        self.dns = merge_strings(self.dns.take(), later.dns);
        self.dns_search = merge_strings(self.dns_search.take(), later.dns_search);
        append(&mut self.cap_add, later.cap_add);
        append(&mut self.cap_drop, later.cap_drop);
        merge_map(&mut self.ulimits, later.ulimits);
        replace(&mut self.isolation, later.isolation);
        replace(&mut self.build, later.build);
        replace(&mut self.restart, later.restart);
        replace(&mut self.depends_on, later.depends_on);
        replace(&mut self.container_name, later.container_name);
        replace(&mut self.expose, later.expose);
        replace(&mut self.network_mode, later.network_mode);
        replace(&mut self.privileged, later.privileged);
        replace(&mut self.devices, later.devices);
        replace(&mut self.security_opt, later.security_opt);
        replace(&mut self.shm_size, later.shm_size);
        replace(&mut self.cgroup_parent, later.cgroup_parent);
        replace(&mut self.links, later.links);
        replace(&mut self.external_links, later.external_links);
        replace(&mut self.pid, later.pid);
        replace(&mut self.ipc, later.ipc);
        replace(&mut self.userns_mode, later.userns_mode);
        replace(&mut self.mac_address, later.mac_address);
        replace(&mut self.domainname, later.domainname);
    }
}

/// Combines two optional values with `both` when each is present.
fn merged<T>(base: Option<T>, later: Option<T>, both: impl FnOnce(&mut T, T)) -> Option<T> {
    match (base, later) {
        (Some(mut base), Some(later)) => {
            both(&mut base, later);
            Some(base)
        }
        (base, later) => later.or(base),
    }
}

fn merge_mapping(base: Option<Mapping>, later: Option<Mapping>) -> Option<Mapping> {
    merged(base, later, |b, l| b.0.extend(l.0))
}

fn merge_strings(base: Option<StringList>, later: Option<StringList>) -> Option<StringList> {
    merged(base, later, |b, l| b.0.extend(l.0))
}

impl Merge for MappingWithEquals {
    fn merge(&mut self, later: Self) {
        self.0.extend(later.0);
    }
}

impl Merge for Logging {
    /// The same driver (or one not named) merges options; another driver replaces the whole.
    fn merge(&mut self, later: Logging) {
        let same_driver = match (&self.driver, &later.driver) {
            (Some(a), Some(b)) => a.value == b.value,
            _ => true,
        };
        if same_driver {
            replace(&mut self.driver, later.driver);
            merge_map(&mut self.options, later.options);
        } else {
            *self = later;
        }
    }
}

impl Merge for Healthcheck {
    fn merge(&mut self, later: Healthcheck) {
        replace(&mut self.test, later.test);
        replace(&mut self.interval, later.interval);
        replace(&mut self.timeout, later.timeout);
        replace(&mut self.retries, later.retries);
        replace(&mut self.start_period, later.start_period);
        replace(&mut self.start_interval, later.start_interval);
        replace(&mut self.disable, later.disable);
    }
}

impl Merge for Deploy {
    fn merge(&mut self, later: Deploy) {
        replace(&mut self.mode, later.mode);
        replace(&mut self.replicas, later.replicas);
        self.labels = merge_mapping(self.labels.take(), later.labels);
        deep(&mut self.placement, later.placement);
        deep(&mut self.resources, later.resources);
        deep(&mut self.restart_policy, later.restart_policy);
        deep(&mut self.update_config, later.update_config);
        deep(&mut self.rollback_config, later.rollback_config);
        replace(&mut self.endpoint_mode, later.endpoint_mode);
    }
}

impl Merge for Placement {
    fn merge(&mut self, later: Placement) {
        append(&mut self.constraints, later.constraints);
        append(&mut self.preferences, later.preferences);
        replace(&mut self.max_replicas_per_node, later.max_replicas_per_node);
    }
}

impl Merge for Resources {
    fn merge(&mut self, later: Resources) {
        deep(&mut self.limits, later.limits);
        deep(&mut self.reservations, later.reservations);
    }
}

impl Merge for ResourceLimits {
    fn merge(&mut self, later: ResourceLimits) {
        replace(&mut self.cpus, later.cpus);
        replace(&mut self.memory, later.memory);
        replace(&mut self.pids, later.pids);
    }
}

impl Merge for ResourceReservations {
    fn merge(&mut self, later: ResourceReservations) {
        replace(&mut self.cpus, later.cpus);
        replace(&mut self.memory, later.memory);
        append(&mut self.generic_resources, later.generic_resources);
    }
}

impl Merge for RestartPolicy {
    fn merge(&mut self, later: RestartPolicy) {
        replace(&mut self.condition, later.condition);
        replace(&mut self.delay, later.delay);
        replace(&mut self.max_attempts, later.max_attempts);
        replace(&mut self.window, later.window);
    }
}

impl Merge for UpdateConfig {
    fn merge(&mut self, later: UpdateConfig) {
        replace(&mut self.parallelism, later.parallelism);
        replace(&mut self.delay, later.delay);
        replace(&mut self.failure_action, later.failure_action);
        replace(&mut self.monitor, later.monitor);
        replace(&mut self.max_failure_ratio, later.max_failure_ratio);
        replace(&mut self.order, later.order);
    }
}
