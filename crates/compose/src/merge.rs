//! Several `-c` files, merged in order with the docker CLI's rules (`loader/merge.go`, built
//! on mergo), key by key:
//!
//! - Services merge by name; a service only in a later file is added as written.
//! - A setting written later wins. The docker CLI keeps the earlier value when the later one
//!   is `false`, `0` or empty; here what is written later always wins (deliberate).
//! - Mappings (`environment`, `labels`, `deploy.labels`, `sysctls`, `ulimits`,
//!   `logging.options`) merge key by key.
//! - `command` and `entrypoint` are replaced, unless the later one is empty.
//! - `ports` merge by published port, `volumes` by target, `secrets` and `configs` by source;
//!   the later item wins, and the list comes out sorted by that key (the docker CLI re-keys
//!   and sorts the earlier list as soon as the service is in both files). Unlike the docker
//!   CLI, which keeps one port per published number, ports of different protocols on one
//!   number (`53/tcp`, `53/udp`) and unpublished ports are all kept (deliberate: the docker
//!   CLI drops all but one, silently).
//! - Other lists are appended to: `cap_add`, `cap_drop`, `dns`, `dns_search`, `extra_hosts`,
//!   `env_file`, `placement.constraints`, `placement.preferences`, `generic_resources`.
//!   `healthcheck.test` is replaced (deliberate: the docker CLI appends the two commands into
//!   one broken command).
//! - `networks` merge by name: a network written later by name alone clears its options, as
//!   in the docker CLI; written with options, its `aliases` replace the earlier ones and its
//!   `driver_opts` do when given (the docker CLI keeps the earlier `driver_opts`).
//! - `logging` with the same driver (or one not named) merges its options; another driver
//!   replaces the whole (the docker CLI also loses the later options when the earlier logging
//!   had none; not here).
//! - `deploy`, `healthcheck`, `credential_spec` and their sub-objects merge field by field.
//! - Top-level networks, volumes, secrets and configs are replaced whole, name by name.

use std::collections::BTreeMap;

use crate::de::{Mapping, NamedMap, StringList};
use crate::located::Located;
use crate::model::{
    ComposeFile, CredentialSpec, Deploy, Healthcheck, Logging, Placement, Port, Protocol,
    ResourceLimits, ResourceReservations, Resources, RestartPolicy, Service, ServiceNetworks,
    UpdateConfig,
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

/// Lists whose items are identified by `key`: when the earlier file has the list, it and the
/// later items go through one map by key (a later item replaces an earlier one), and come out
/// sorted by key, even when the later file does not list any; otherwise the later list is
/// taken as written.
fn merge_keyed<T, K: Ord>(
    base: &mut Option<Vec<Located<T>>>,
    later: Option<Vec<Located<T>>>,
    key: impl Fn(&T) -> K,
) {
    match base.as_mut() {
        Some(items) => {
            let mut by_key: BTreeMap<K, Located<T>> = BTreeMap::new();
            for item in items.drain(..).chain(later.into_iter().flatten()) {
                by_key.insert(key(&item.value), item);
            }
            items.extend(by_key.into_values());
        }
        None => *base = later,
    }
}

/// Ports are one per published port and protocol; unpublished ones are told apart by their
/// target.
fn port_key(port: &Port) -> (u32, Option<u32>, Protocol) {
    let protocol = port.protocol.unwrap_or(Protocol::Tcp);
    match port.published {
        Some(published) => (published, None, protocol),
        None => (0, Some(port.target), protocol),
    }
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
        replace(&mut self.command, later.command.filter(|c| !c.0.is_empty()));
        replace(
            &mut self.entrypoint,
            later.entrypoint.filter(|c| !c.0.is_empty()),
        );
        self.environment = merged(self.environment.take(), later.environment, |b, l| {
            b.0.extend(l.0);
            b.1.extend(l.1);
        });
        self.env_file = merged(self.env_file.take(), later.env_file, |b, l| {
            b.value.0.extend(l.value.0)
        });
        self.labels = merge_mapping(self.labels.take(), later.labels);
        self.sysctls = merge_mapping(self.sysctls.take(), later.sysctls);

        let mut ports = self.ports.take().map(|p| p.0);
        merge_keyed(&mut ports, later.ports.map(|p| p.0), port_key);
        self.ports = ports.map(crate::model::Ports);
        let mut volumes = self.volumes.take().map(|v| v.0);
        merge_keyed(&mut volumes, later.volumes.map(|v| v.0), |v| {
            v.target.clone()
        });
        self.volumes = volumes.map(crate::model::ServiceVolumes);
        for (base, later) in [
            (&mut self.secrets, later.secrets),
            (&mut self.configs, later.configs),
        ] {
            let mut references = base.take().map(|r| r.0);
            merge_keyed(&mut references, later.map(|r| r.0), |r| r.source.clone());
            *base = references.map(crate::model::FileReferences);
        }

        self.networks = merged(self.networks.take(), later.networks, merge_networks);
        deep(&mut self.healthcheck, later.healthcheck);
        self.logging = merged(self.logging.take(), later.logging, |b, l| b.merge(l));
        deep(&mut self.deploy, later.deploy);
        replace(&mut self.restart, later.restart);
        replace(&mut self.stop_grace_period, later.stop_grace_period);
        replace(&mut self.stop_signal, later.stop_signal);
        replace(&mut self.user, later.user);
        replace(&mut self.working_dir, later.working_dir);
        replace(&mut self.hostname, later.hostname);
        replace(&mut self.init, later.init);
        replace(&mut self.read_only, later.read_only);
        replace(&mut self.tty, later.tty);
        replace(&mut self.stdin_open, later.stdin_open);
        self.extra_hosts = merged(self.extra_hosts.take(), later.extra_hosts, |b, l| {
            b.0.extend(l.0)
        });
        self.dns = merge_strings(self.dns.take(), later.dns);
        self.dns_search = merge_strings(self.dns_search.take(), later.dns_search);
        append(&mut self.cap_add, later.cap_add);
        append(&mut self.cap_drop, later.cap_drop);
        merge_map(&mut self.ulimits, later.ulimits);
        replace(&mut self.isolation, later.isolation);
        replace(&mut self.oom_score_adj, later.oom_score_adj);
        deep(&mut self.credential_spec, later.credential_spec);
        self.ignored.extend(later.ignored);
    }
}

fn merge_networks(base: &mut ServiceNetworks, later: ServiceNetworks) {
    for (name, network) in later.0 {
        match base.0.get_mut(&name) {
            Some(existing) if network.value != Default::default() => {
                existing.value.aliases = network.value.aliases;
                replace(&mut existing.value.driver_opts, network.value.driver_opts);
            }
            _ => {
                base.0.insert(name, network);
            }
        }
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

impl Merge for Logging {
    /// The same driver (or one not named) merges options; another driver replaces the whole.
    fn merge(&mut self, later: Logging) {
        let same_driver = match (&self.driver, &later.driver) {
            (Some(a), Some(b)) => a.value == b.value,
            _ => true,
        };
        if same_driver {
            if self.driver.is_none() {
                self.driver = later.driver;
            }
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

impl Merge for CredentialSpec {
    fn merge(&mut self, later: CredentialSpec) {
        replace(&mut self.config, later.config);
        replace(&mut self.file, later.file);
        replace(&mut self.registry, later.registry);
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
