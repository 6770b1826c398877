//! The compose file format as `docker stack deploy` reads it (version 3.x and unversioned
//! files), with the place of every service and of the settings lint rules look at.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::de::{
    FromShort, HostsList, Mapping, MappingWithEquals, NamedMap, ShellCommand, ShortOrLong,
    StringList,
};
use crate::located::Located;
use crate::units::{self, Duration};
use crate::Location;

compose_struct! {
    /// One compose file, before it is merged with the others.
    pub struct ComposeFile("the top level") {
        "version" => version: Option<String>,
        "name" => name: Option<String>,
        "services" => services: Option<NamedMap<Service>>,
        "networks" => networks: Option<NamedMap<NetworkDefinition>>,
        "volumes" => volumes: Option<NamedMap<VolumeDefinition>>,
        "secrets" => secrets: Option<NamedMap<FileObjectDefinition>>,
        "configs" => configs: Option<NamedMap<FileObjectDefinition>>,
    }
}

compose_struct! {
    /// A service as written under `services:`.
    pub struct Service("service") {
        "image" => image: Option<Located<String>>,
        "command" => command: Option<Located<ShellCommand>>,
        "entrypoint" => entrypoint: Option<Located<ShellCommand>>,
        "environment" => environment: Option<MappingWithEquals>,
        "env_file" => env_file: Option<Located<StringList>>,
        "labels" => labels: Option<Mapping>,
        "ports" => ports: Option<Ports>,
        "networks" => networks: Option<ServiceNetworks>,
        "volumes" => volumes: Option<ServiceVolumes>,
        "configs" => configs: Option<FileReferences>,
        "secrets" => secrets: Option<FileReferences>,
        "healthcheck" => healthcheck: Option<Located<Healthcheck>>,
        "logging" => logging: Option<Located<Logging>>,
        "deploy" => deploy: Option<Located<Deploy>>,
        "stop_grace_period" => stop_grace_period: Option<Located<Duration>>,
        "stop_signal" => stop_signal: Option<String>,
        "user" => user: Option<String>,
        "working_dir" => working_dir: Option<String>,
        "hostname" => hostname: Option<String>,
        "init" => init: Option<bool>,
        "read_only" => read_only: Option<bool>,
        "tty" => tty: Option<bool>,
        "stdin_open" => stdin_open: Option<bool>,
        "extra_hosts" => extra_hosts: Option<HostsList>,
        "dns" => dns: Option<StringList>,
        "dns_search" => dns_search: Option<StringList>,
        "cap_add" => cap_add: Option<Vec<String>>,
        "cap_drop" => cap_drop: Option<Vec<String>>,
        "sysctls" => sysctls: Option<Mapping>,
        "ulimits" => ulimits: Option<BTreeMap<String, Ulimit>>,
        "isolation" => isolation: Option<String>,
        /// Read by `docker compose`, ignored by `docker stack deploy`.
        "build" => build: Option<Located<Ignored>>,
        "restart" => restart: Option<Located<Ignored>>,
        "depends_on" => depends_on: Option<Located<Ignored>>,
        "container_name" => container_name: Option<Located<Ignored>>,
        "expose" => expose: Option<Located<Ignored>>,
        "network_mode" => network_mode: Option<Located<Ignored>>,
        "privileged" => privileged: Option<Located<Ignored>>,
        "devices" => devices: Option<Located<Ignored>>,
        "security_opt" => security_opt: Option<Located<Ignored>>,
        "shm_size" => shm_size: Option<Located<Ignored>>,
        "cgroup_parent" => cgroup_parent: Option<Located<Ignored>>,
        "links" => links: Option<Located<Ignored>>,
        "external_links" => external_links: Option<Located<Ignored>>,
        "pid" => pid: Option<Located<Ignored>>,
        "ipc" => ipc: Option<Located<Ignored>>,
        "userns_mode" => userns_mode: Option<Located<Ignored>>,
        "mac_address" => mac_address: Option<Located<Ignored>>,
        "domainname" => domainname: Option<Located<Ignored>>,
        ;
        /// Where the service's name is written (in the first file that defines it).
        at: Location,
    }
}

impl Service {
    /// The keys set on this service that `docker stack deploy` ignores, with their places.
    pub fn ignored_keys(&self) -> Vec<(&'static str, Location)> {
        let keys = [
            ("build", &self.build),
            ("restart", &self.restart),
            ("depends_on", &self.depends_on),
            ("container_name", &self.container_name),
            ("expose", &self.expose),
            ("network_mode", &self.network_mode),
            ("privileged", &self.privileged),
            ("devices", &self.devices),
            ("security_opt", &self.security_opt),
            ("shm_size", &self.shm_size),
            ("cgroup_parent", &self.cgroup_parent),
            ("links", &self.links),
            ("external_links", &self.external_links),
            ("pid", &self.pid),
            ("ipc", &self.ipc),
            ("userns_mode", &self.userns_mode),
            ("mac_address", &self.mac_address),
            ("domainname", &self.domainname),
        ];
        keys.into_iter()
            .filter_map(|(key, value)| value.as_ref().map(|v| (key, v.at)))
            .collect()
    }
}

/// A value that is accepted and not used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Ignored;

impl<'de> Deserialize<'de> for Ignored {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer).map(|_| Ignored)
    }
}

compose_struct! {
    /// `deploy:`, what Swarm does with the service.
    pub struct Deploy("deploy") {
        "mode" => mode: Option<Located<DeployMode>>,
        "replicas" => replicas: Option<Located<u64>>,
        "labels" => labels: Option<Mapping>,
        "placement" => placement: Option<Placement>,
        "resources" => resources: Option<Resources>,
        "restart_policy" => restart_policy: Option<Located<RestartPolicy>>,
        "update_config" => update_config: Option<Located<UpdateConfig>>,
        "rollback_config" => rollback_config: Option<Located<UpdateConfig>>,
        "endpoint_mode" => endpoint_mode: Option<Located<EndpointMode>>,
    }
}

string_enum! {
    pub enum DeployMode("deploy mode") {
        Replicated = "replicated",
        Global = "global",
        ReplicatedJob = "replicated-job",
        GlobalJob = "global-job",
    }
}

string_enum! {
    pub enum EndpointMode("endpoint mode") {
        Vip = "vip",
        Dnsrr = "dnsrr",
    }
}

compose_struct! {
    pub struct Placement("placement") {
        "constraints" => constraints: Option<Vec<String>>,
        "preferences" => preferences: Option<Vec<PlacementPreference>>,
        "max_replicas_per_node" => max_replicas_per_node: Option<u64>,
    }
}

compose_struct! {
    pub struct PlacementPreference("placement preference") {
        "spread" => spread: Option<String>,
    }
}

compose_struct! {
    pub struct Resources("resources") {
        "limits" => limits: Option<ResourceLimits>,
        "reservations" => reservations: Option<ResourceReservations>,
    }
}

compose_struct! {
    pub struct ResourceLimits("resource limits") {
        "cpus" => cpus: Option<Located<NanoCpus>>,
        "memory" => memory: Option<Located<Bytes>>,
        "pids" => pids: Option<i64>,
    }
}

compose_struct! {
    pub struct ResourceReservations("resource reservations") {
        "cpus" => cpus: Option<Located<NanoCpus>>,
        "memory" => memory: Option<Located<Bytes>>,
        "generic_resources" => generic_resources: Option<Vec<GenericResource>>,
    }
}

compose_struct! {
    pub struct GenericResource("generic resource") {
        "discrete_resource_spec" => discrete_resource_spec: Option<DiscreteResourceSpec>,
    }
}

compose_struct! {
    pub struct DiscreteResourceSpec("discrete resource spec") {
        "kind" => kind: Option<String>,
        "value" => value: Option<i64>,
    }
}

compose_struct! {
    /// `restart_policy:`, what Swarm does when a task's container exits.
    pub struct RestartPolicy("restart_policy") {
        "condition" => condition: Option<Located<RestartCondition>>,
        "delay" => delay: Option<Located<Duration>>,
        "max_attempts" => max_attempts: Option<Located<u64>>,
        "window" => window: Option<Located<Duration>>,
    }
}

string_enum! {
    pub enum RestartCondition("restart condition") {
        Never = "none",
        OnFailure = "on-failure",
        Any = "any",
    }
}

compose_struct! {
    /// `update_config:` or `rollback_config:`, how Swarm rolls tasks over to a new spec.
    pub struct UpdateConfig("update/rollback config") {
        "parallelism" => parallelism: Option<Located<u64>>,
        "delay" => delay: Option<Located<Duration>>,
        "failure_action" => failure_action: Option<Located<FailureAction>>,
        "monitor" => monitor: Option<Located<Duration>>,
        "max_failure_ratio" => max_failure_ratio: Option<f32>,
        "order" => order: Option<Located<UpdateOrder>>,
    }
}

string_enum! {
    /// What Swarm does when an update fails. `rollback` is parsed in a `rollback_config` too,
    /// where Swarm refuses it, so that lint can point at it.
    pub enum FailureAction("failure action") {
        Continue = "continue",
        Pause = "pause",
        Rollback = "rollback",
    }
}

string_enum! {
    pub enum UpdateOrder("update order") {
        StopFirst = "stop-first",
        StartFirst = "start-first",
    }
}

compose_struct! {
    pub struct Healthcheck("healthcheck") {
        "test" => test: Option<HealthcheckTest>,
        "interval" => interval: Option<Located<Duration>>,
        "timeout" => timeout: Option<Located<Duration>>,
        "retries" => retries: Option<Located<u64>>,
        "start_period" => start_period: Option<Located<Duration>>,
        "start_interval" => start_interval: Option<Located<Duration>>,
        "disable" => disable: Option<bool>,
    }
}

/// The health probe: a list as the Engine takes it (`["CMD", …]`, `["CMD-SHELL", "…"]`,
/// `["NONE"]`), or a string, which runs in a shell.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HealthcheckTest(pub Vec<String>);

impl<'de> Deserialize<'de> for HealthcheckTest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let StringList(items) = StringList::deserialize(deserializer)?;
        Ok(HealthcheckTest(match items.as_slice() {
            [command] if !matches!(command.as_str(), "NONE") => {
                vec!["CMD-SHELL".to_string(), command.clone()]
            }
            _ => items,
        }))
    }
}

compose_struct! {
    pub struct Logging("logging") {
        "driver" => driver: Option<Located<String>>,
        "options" => options: Option<BTreeMap<String, String>>,
    }
}

/// `ulimits:` entries: one number for both limits, or `soft` and `hard`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Ulimit {
    pub soft: i64,
    pub hard: i64,
}

compose_struct! {
    pub struct UlimitLimits("ulimit") {
        "soft" => soft: Option<i64>,
        "hard" => hard: Option<i64>,
    }
}

impl<'de> Deserialize<'de> for Ulimit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct UlimitVisitor;
        impl<'de> serde::de::Visitor<'de> for UlimitVisitor {
            type Value = Ulimit;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number or a mapping with soft and hard")
            }

            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Ulimit, E> {
                Ok(Ulimit {
                    soft: value,
                    hard: value,
                })
            }

            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Ulimit, E> {
                let value = i64::try_from(value).map_err(E::custom)?;
                Ok(Ulimit {
                    soft: value,
                    hard: value,
                })
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Ulimit, A::Error> {
                let limits =
                    UlimitLimits::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(Ulimit {
                    soft: limits.soft.unwrap_or_default(),
                    hard: limits.hard.unwrap_or_default(),
                })
            }
        }
        deserializer.deserialize_any(UlimitVisitor)
    }
}

/// Durations are written as Go writes them: `10s`, `1m30s`, `500ms`.
impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        units::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// A memory size in bytes, written as bytes or with a unit (`512m`, `2g`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Bytes(pub u64);

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        units::parse_bytes(&text)
            .map(Bytes)
            .map_err(serde::de::Error::custom)
    }
}

/// CPUs in billionths, written as a decimal number of CPUs (`0.5`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct NanoCpus(pub u64);

impl<'de> Deserialize<'de> for NanoCpus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        units::parse_nano_cpus(&text)
            .map(NanoCpus)
            .map_err(serde::de::Error::custom)
    }
}

/// `ports:`, each item in the place it was written (a short range stands for several ports).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Ports(pub Vec<Located<Port>>);

impl<'de> Deserialize<'de> for Ports {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ShortOrLong::deserialize(deserializer).map(|list| Ports(list.0))
    }
}

/// A published port. The short syntax always sets protocol and mode, as the docker CLI does;
/// the long syntax leaves them to the Engine's defaults (`tcp`, `ingress`) when not written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Port {
    pub target: u32,
    pub published: Option<u32>,
    pub protocol: Option<Protocol>,
    pub mode: Option<PublishMode>,
}

string_enum! {
    #[derive(PartialOrd, Ord)]
    pub enum Protocol("protocol") {
        Tcp = "tcp",
        Udp = "udp",
        Sctp = "sctp",
    }
}

string_enum! {
    /// `ingress` publishes on every node through the routing mesh; `host` binds the port on
    /// the node running the task, so two tasks of one service cannot share a node.
    #[derive(PartialOrd, Ord)]
    pub enum PublishMode("publish mode") {
        Ingress = "ingress",
        Host = "host",
    }
}

compose_struct! {
    pub struct PortLong("port") {
        "target" => target: Option<u32>,
        "published" => published: Option<PortNumber>,
        "protocol" => protocol: Option<Protocol>,
        "mode" => mode: Option<PublishMode>,
    }
}

/// A port number written as a number or a string.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct PortNumber(pub u32);

impl<'de> Deserialize<'de> for PortNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_port_number(&text)
            .map(PortNumber)
            .map_err(serde::de::Error::custom)
    }
}

fn parse_port_number(text: &str) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(port) if port <= 65535 => Ok(port),
        _ => Err(format!(
            "invalid port {text:?}: expected a number from 0 to 65535"
        )),
    }
}

/// `START-END` or a single port, as an inclusive range.
fn parse_port_range(text: &str) -> Result<(u32, u32), String> {
    match text.split_once('-') {
        Some((start, end)) => {
            let (start, end) = (parse_port_number(start)?, parse_port_number(end)?);
            if start > end {
                return Err(format!(
                    "invalid port range {text:?}: the start is after the end"
                ));
            }
            Ok((start, end))
        }
        None => parse_port_number(text).map(|port| (port, port)),
    }
}

impl FromShort for Port {
    const WHAT: &'static str = "ports";
    type Long = PortLong;

    /// `[IP:][PUBLISHED:]TARGET[/PROTOCOL]`, where ports may be ranges `START-END`; the IP is
    /// ignored by Swarm, as by the docker CLI.
    fn from_short(text: &str) -> Result<Vec<Port>, String> {
        let (ports, protocol) = match text.rsplit_once('/') {
            Some((ports, protocol)) => {
                let protocol = match protocol {
                    "tcp" => Protocol::Tcp,
                    "udp" => Protocol::Udp,
                    "sctp" => Protocol::Sctp,
                    other => return Err(format!("invalid protocol {other:?} in port {text:?}: expected `tcp`, `udp` or `sctp`")),
                };
                (ports, protocol)
            }
            None => (text, Protocol::Tcp),
        };
        let mut parts = ports.rsplitn(3, ':');
        let target = parts.next().unwrap_or_default();
        let published = parts.next().filter(|p| !p.is_empty());
        let (target_start, target_end) =
            parse_port_range(target).map_err(|e| format!("{e} in port {text:?}"))?;
        let published = published
            .map(parse_port_range)
            .transpose()
            .map_err(|e| format!("{e} in port {text:?}"))?;
        if let Some((start, end)) = published {
            if end - start != target_end - target_start {
                return Err(format!(
                    "invalid port {text:?}: the published range and the target range differ in size"
                ));
            }
        }
        Ok((0..=target_end - target_start)
            .map(|offset| Port {
                target: target_start + offset,
                published: published.map(|(start, _)| start + offset),
                protocol: Some(protocol),
                mode: Some(PublishMode::Ingress),
            })
            .collect())
    }

    fn from_long(long: PortLong) -> Result<Port, String> {
        Ok(Port {
            target: long.target.ok_or("a port needs a `target`")?,
            published: long.published.map(|p| p.0),
            protocol: long.protocol,
            mode: long.mode,
        })
    }
}

/// `networks:` of a service: a list of names or a map of names to attachment options.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ServiceNetworks(pub BTreeMap<String, Located<ServiceNetwork>>);

compose_struct! {
    pub struct ServiceNetwork("service network") {
        "aliases" => aliases: Option<Vec<String>>,
        "ipv4_address" => ipv4_address: Option<String>,
        "ipv6_address" => ipv6_address: Option<String>,
        "driver_opts" => driver_opts: Option<BTreeMap<String, String>>,
    }
}

impl<'de> Deserialize<'de> for ServiceNetworks {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NetworksVisitor;
        impl<'de> serde::de::Visitor<'de> for NetworksVisitor {
            type Value = ServiceNetworks;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of network names or a mapping of names to options")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut networks = BTreeMap::new();
                while let Some(name) = seq.next_element::<Located<String>>()? {
                    networks.insert(name.value, Located::new(ServiceNetwork::default(), name.at));
                }
                Ok(ServiceNetworks(networks))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut networks = BTreeMap::new();
                while let Some(name) = map.next_key::<Located<String>>()? {
                    let options = map
                        .next_value::<Option<ServiceNetwork>>()?
                        .unwrap_or_default();
                    networks.insert(name.value, Located::new(options, name.at));
                }
                Ok(ServiceNetworks(networks))
            }
        }
        deserializer.deserialize_any(NetworksVisitor)
    }
}

/// `volumes:` of a service: mounts in short (`SOURCE:TARGET:MODE`) or long syntax.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ServiceVolumes(pub Vec<Located<ServiceVolume>>);

impl<'de> Deserialize<'de> for ServiceVolumes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ShortOrLong::deserialize(deserializer).map(|list| ServiceVolumes(list.0))
    }
}

string_enum! {
    pub enum MountType("mount type") {
        Volume = "volume",
        Bind = "bind",
        Tmpfs = "tmpfs",
        Npipe = "npipe",
        Cluster = "cluster",
    }
}

compose_struct! {
    pub struct ServiceVolume("volume mount") {
        "type" => kind: Option<MountType>,
        "source" => source: Option<String>,
        "target" => target: Option<String>,
        "read_only" => read_only: Option<bool>,
        "consistency" => consistency: Option<String>,
        "bind" => bind: Option<BindOptions>,
        "volume" => volume: Option<VolumeOptions>,
        "tmpfs" => tmpfs: Option<TmpfsOptions>,
    }
}

compose_struct! {
    pub struct BindOptions("bind options") {
        "propagation" => propagation: Option<String>,
        "create_host_path" => create_host_path: Option<bool>,
    }
}

compose_struct! {
    pub struct VolumeOptions("volume options") {
        "nocopy" => nocopy: Option<bool>,
    }
}

compose_struct! {
    pub struct TmpfsOptions("tmpfs options") {
        "size" => size: Option<Bytes>,
    }
}

const PROPAGATIONS: [&str; 6] = [
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
];
const CONSISTENCIES: [&str; 3] = ["consistent", "cached", "delegated"];

impl FromShort for ServiceVolume {
    const WHAT: &'static str = "volumes";
    type Long = ServiceVolume;

    /// `[SOURCE:]TARGET[:OPTIONS]` as the docker CLI's `ParseVolume` reads it: a source that is
    /// a path (`.`, `/` or `~` first) is a bind mount, any other source names a volume, and no
    /// source is an anonymous volume. Options are `ro`, `rw`, `nocopy`, a propagation or a
    /// consistency, separated by commas.
    fn from_short(text: &str) -> Result<Vec<ServiceVolume>, String> {
        if text.is_empty() {
            return Err("invalid empty volume spec".to_string());
        }
        let parts: Vec<&str> = text.splitn(3, ':').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(format!(
                "invalid volume {text:?}: empty section between colons"
            ));
        }
        let mut volume = ServiceVolume::default();
        match parts.as_slice() {
            [target] => volume.target = Some(target.to_string()),
            [source, target] | [source, target, _] => {
                volume.source = Some(source.to_string());
                volume.target = Some(target.to_string());
            }
            _ => unreachable!("splitn(3) yields one to three parts"),
        }
        if let [_, _, options] = parts.as_slice() {
            for option in options.split(',') {
                match option {
                    "ro" => volume.read_only = Some(true),
                    "rw" => volume.read_only = Some(false),
                    "nocopy" => volume.volume = Some(VolumeOptions { nocopy: Some(true) }),
                    p if PROPAGATIONS.contains(&p) => {
                        volume.bind = Some(BindOptions { propagation: Some(p.to_string()), create_host_path: None })
                    }
                    c if CONSISTENCIES.contains(&c) => volume.consistency = Some(c.to_string()),
                    other => return Err(format!("invalid volume {text:?}: unknown option {other:?}, expected `ro`, `rw`, `nocopy`, a propagation or a consistency")),
                }
            }
        }
        let is_path = volume
            .source
            .as_deref()
            .is_some_and(|s| s.starts_with(['.', '/', '~']));
        volume.kind = Some(if is_path {
            MountType::Bind
        } else {
            MountType::Volume
        });
        Ok(vec![volume])
    }

    fn from_long(long: ServiceVolume) -> Result<ServiceVolume, String> {
        if long.target.is_none() {
            return Err("a volume mount needs a `target`".to_string());
        }
        Ok(long)
    }
}

/// `secrets:` or `configs:` of a service: names, or mappings with where and how to mount.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FileReferences(pub Vec<Located<FileReference>>);

impl<'de> Deserialize<'de> for FileReferences {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ShortOrLong::deserialize(deserializer).map(|list| FileReferences(list.0))
    }
}

compose_struct! {
    pub struct FileReference("secret or config reference") {
        "source" => source: Option<String>,
        "target" => target: Option<String>,
        "uid" => uid: Option<String>,
        "gid" => gid: Option<String>,
        "mode" => mode: Option<u32>,
    }
}

impl FromShort for FileReference {
    const WHAT: &'static str = "secrets or configs";
    type Long = FileReference;

    fn from_short(text: &str) -> Result<Vec<FileReference>, String> {
        Ok(vec![FileReference {
            source: Some(text.to_string()),
            ..FileReference::default()
        }])
    }

    fn from_long(long: FileReference) -> Result<FileReference, String> {
        if long.source.is_none() {
            return Err("a secret or config reference needs a `source`".to_string());
        }
        Ok(long)
    }
}

/// `external: true`, or the old `external: {name: …}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct External {
    pub external: bool,
    pub name: Option<String>,
}

compose_struct! {
    pub struct ExternalName("external") {
        "name" => name: Option<String>,
    }
}

impl<'de> Deserialize<'de> for External {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ExternalVisitor;
        impl<'de> serde::de::Visitor<'de> for ExternalVisitor {
            type Value = External;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("true, false or a mapping with a name")
            }

            fn visit_bool<E: serde::de::Error>(self, external: bool) -> Result<External, E> {
                Ok(External {
                    external,
                    name: None,
                })
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<External, A::Error> {
                let named =
                    ExternalName::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(External {
                    external: true,
                    name: named.name,
                })
            }
        }
        deserializer.deserialize_any(ExternalVisitor)
    }
}

compose_struct! {
    /// A network under the top-level `networks:`.
    pub struct NetworkDefinition("network") {
        "driver" => driver: Option<String>,
        "driver_opts" => driver_opts: Option<BTreeMap<String, String>>,
        "external" => external: Option<External>,
        "name" => name: Option<String>,
        "labels" => labels: Option<Mapping>,
        "attachable" => attachable: Option<bool>,
        "internal" => internal: Option<bool>,
        "ipam" => ipam: Option<Ipam>,
        "enable_ipv6" => enable_ipv6: Option<bool>,
    }
}

compose_struct! {
    pub struct Ipam("ipam") {
        "driver" => driver: Option<String>,
        "config" => config: Option<Vec<IpamPool>>,
    }
}

compose_struct! {
    pub struct IpamPool("ipam config") {
        "subnet" => subnet: Option<String>,
    }
}

compose_struct! {
    /// A volume under the top-level `volumes:`.
    pub struct VolumeDefinition("volume") {
        "driver" => driver: Option<String>,
        "driver_opts" => driver_opts: Option<BTreeMap<String, String>>,
        "external" => external: Option<External>,
        "name" => name: Option<String>,
        "labels" => labels: Option<Mapping>,
    }
}

compose_struct! {
    /// A secret or config under the top-level `secrets:` or `configs:`.
    pub struct FileObjectDefinition("secret or config") {
        "file" => file: Option<String>,
        "external" => external: Option<External>,
        "name" => name: Option<String>,
        "labels" => labels: Option<Mapping>,
        "driver" => driver: Option<String>,
        "driver_opts" => driver_opts: Option<BTreeMap<String, String>>,
        "template_driver" => template_driver: Option<String>,
    }
}

impl NetworkDefinition {
    pub fn is_external(&self) -> bool {
        self.external.as_ref().is_some_and(|e| e.external)
    }
}

impl VolumeDefinition {
    pub fn is_external(&self) -> bool {
        self.external.as_ref().is_some_and(|e| e.external)
    }
}

impl FileObjectDefinition {
    pub fn is_external(&self) -> bool {
        self.external.as_ref().is_some_and(|e| e.external)
    }
}
