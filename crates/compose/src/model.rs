//! The compose file format as `docker stack deploy` reads it (version 3.x and unversioned
//! files), with the place of every service and of the settings lint rules look at. What each
//! key of the docker CLI's schema becomes is listed in `KEYS.md`; the keys it ignores are
//! noted ([`IgnoredKey`]), the ones it forbids are refused with its reasons.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::de::{
    self, expect_map, invalid, shown, wrong_kind, FromNode, HostsList, IgnoredKey, KeyPolicy,
    Mapping, MappingWithEquals, NamedMap, Reader, ShellCommand, ShortOrLong, StringList,
};
use crate::error::Invalid;
use crate::located::Located;
use crate::units::{self, Duration};
use crate::yaml::{Node, Value};
use crate::Location;

/// Top-level keys besides the sections.
const FILE_KEYS: KeyPolicy = KeyPolicy {
    open: false,
    ignored: &[(
        "name",
        "the docker CLI's stack schema has no top-level `name`; the stack's name is the one given on the command line",
    )],
    forbidden: &[],
};

compose_struct! {
    /// One compose file, before it is merged with the others.
    pub struct ComposeFile("the top level", FILE_KEYS) {
        "version" => version: Option<Located<String>>,
        "services" => services: Option<NamedMap<Service>>,
        "networks" => networks: Option<NamedMap<NetworkDefinition>>,
        "volumes" => volumes: Option<NamedMap<VolumeDefinition>>,
        "secrets" => secrets: Option<NamedMap<FileObjectDefinition>>,
        "configs" => configs: Option<NamedMap<ConfigDefinition>>,
    }
}

/// Service keys `docker stack deploy` accepts and does nothing with, and why.
const IGNORED_SERVICE_KEYS: &[(&str, &str)] = &[
    ("build", "docker stack deploy builds nothing: build and push the image, then name it in `image`"),
    ("cgroupns_mode", "Swarm services cannot set the cgroup namespace mode"),
    ("cgroup_parent", "Swarm services cannot set a cgroup parent"),
    ("container_name", "Swarm names a service's containers itself"),
    ("depends_on", "Swarm starts services in no particular order: make the service retry until what it needs answers"),
    ("devices", "Swarm services cannot map devices"),
    ("domainname", "Swarm services cannot set a domain name"),
    ("expose", "services on the same network reach each other's containers on any port"),
    ("external_links", "Swarm services cannot link to containers"),
    ("ipc", "Swarm services cannot set the IPC mode"),
    ("links", "Swarm services cannot link to containers: use a network"),
    ("mac_address", "Swarm services cannot set a MAC address"),
    ("network_mode", "Swarm services cannot set a network mode: use `networks`"),
    ("pid", "Swarm services cannot set the PID mode"),
    ("privileged", "Swarm services cannot run privileged: use `cap_add`"),
    ("security_opt", "Swarm services cannot set security options"),
    ("shm_size", "Swarm services cannot set the size of /dev/shm: mount a `type: tmpfs` volume at /dev/shm"),
    ("tmpfs", "docker stack deploy reads it and does not apply it: use a volume with `type: tmpfs`"),
    ("userns_mode", "Swarm services cannot set the user namespace mode"),
];

/// Service keys the docker CLI refuses, with its reasons.
const FORBIDDEN_SERVICE_KEYS: &[(&str, &str)] = &[
    ("extends", "Support for `extends` is not implemented yet."),
    ("volume_driver", "Instead of setting the volume driver on the service, define a volume using the top-level `volumes` option and specify the driver there."),
    ("volumes_from", "To share a volume between services, define it using the top-level `volumes` option and reference it from each service that shares it using the service-level `volumes` option."),
    ("cpu_quota", "Set resource limits using deploy.resources"),
    ("cpu_shares", "Set resource limits using deploy.resources"),
    ("cpuset", "Set resource limits using deploy.resources"),
    ("mem_limit", "Set resource limits using deploy.resources"),
    ("memswap_limit", "Set resource limits using deploy.resources"),
];

const SERVICE_KEYS: KeyPolicy = KeyPolicy {
    open: false,
    ignored: IGNORED_SERVICE_KEYS,
    forbidden: FORBIDDEN_SERVICE_KEYS,
};

compose_struct! {
    /// A service as written under `services:`.
    pub struct Service("service", SERVICE_KEYS) {
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
        /// The docker CLI's fallback when `deploy.restart_policy` is not set: `no`, `always`,
        /// `unless-stopped` or `on-failure[:N]`.
        "restart" => restart: Option<Located<String>>,
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
        /// Written to the container spec; engines before API 1.46 drop it. (The docker CLI's
        /// loader loses this key, so `docker stack deploy` never sends it: a bug not copied.)
        "oom_score_adj" => oom_score_adj: Option<Located<i64>>,
        "credential_spec" => credential_spec: Option<Located<CredentialSpec>>,
        ;
        /// Where the service's name is written (in the first file that defines it).
        at: Location,
        /// The keys set on this service that `docker stack deploy` accepts and ignores.
        ignored: Vec<IgnoredKey>,
    }
}

impl Service {
    /// The keys set on this service that `docker stack deploy` ignores, with their places.
    pub fn ignored_keys(&self) -> Vec<(&str, Location)> {
        self.ignored
            .iter()
            .map(|ignored| (ignored.key.as_str(), ignored.at))
            .collect()
    }
}

compose_struct! {
    /// `credential_spec:` (Windows): exactly one of a config of the stack, a file or a
    /// registry value.
    pub struct CredentialSpec("credential_spec") {
        "config" => config: Option<String>,
        "file" => file: Option<String>,
        "registry" => registry: Option<String>,
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

/// `vip` or `dnsrr`, in any case: the docker CLI lower-cases it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointMode {
    Vip,
    Dnsrr,
}

impl EndpointMode {
    pub const fn as_str(self) -> &'static str {
        match self {
            EndpointMode::Vip => "vip",
            EndpointMode::Dnsrr => "dnsrr",
        }
    }
}

impl FromNode for EndpointMode {
    fn from_node(node: &Node, key: &str, r: &mut Reader) -> Result<Self, Invalid> {
        let text = String::from_node(node, key, r)?;
        match text.to_lowercase().as_str() {
            "vip" => Ok(EndpointMode::Vip),
            "dnsrr" => Ok(EndpointMode::Dnsrr),
            _ => Err(invalid(
                node,
                format!("invalid endpoint mode {text:?}: expected `vip` or `dnsrr`"),
            )),
        }
    }
}

compose_struct! {
    pub struct Placement("placement") {
        /// Each where it is written, so a constraint no node meets is pointed at.
        "constraints" => constraints: Option<Vec<Located<String>>>,
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
        "max_failure_ratio" => max_failure_ratio: Option<Located<f32>>,
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
/// `["NONE"]`), or a string, which runs in a shell (`["CMD-SHELL", string]`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HealthcheckTest(pub Vec<String>);

impl FromNode for HealthcheckTest {
    fn from_node(node: &Node, key: &str, r: &mut Reader) -> Result<Self, Invalid> {
        match &node.value {
            Value::Seq(_) => Vec::<String>::from_node(node, key, r).map(HealthcheckTest),
            Value::Str(command) => Ok(HealthcheckTest(vec![
                "CMD-SHELL".to_string(),
                command.clone(),
            ])),
            _ => Err(wrong_kind(node, key, "a command string or a list")),
        }
    }
}

compose_struct! {
    pub struct Logging("logging") {
        "driver" => driver: Option<Located<String>>,
        /// Values written as numbers are kept as Go prints them; null is empty. Each value
        /// keeps its place, so a refused option is pointed at.
        "options" => options: Option<BTreeMap<String, Located<String>>>,
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

impl FromNode for Ulimit {
    fn from_node(node: &Node, key: &str, r: &mut Reader) -> Result<Self, Invalid> {
        match &node.value {
            Value::Map(_) => {
                let limits = UlimitLimits::from_node(node, key, r)?;
                match (limits.soft, limits.hard) {
                    (Some(soft), Some(hard)) => Ok(Ulimit { soft, hard }),
                    _ => Err(invalid(
                        node,
                        format!("ulimit `{key}` needs both `soft` and `hard`"),
                    )),
                }
            }
            _ => {
                let value = i64::from_node(node, key, r)?;
                Ok(Ulimit {
                    soft: value,
                    hard: value,
                })
            }
        }
    }
}

/// Durations are written as Go writes them: `10s`, `1m30s`, `500ms`.
impl FromNode for Duration {
    fn from_node(node: &Node, key: &str, r: &mut Reader) -> Result<Self, Invalid> {
        let text = String::from_node(node, key, r)?;
        units::parse_duration(&text).map_err(|e| invalid(node, e))
    }
}

/// A memory size in bytes, written as bytes or with a unit (`512m`, `2g`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Bytes(pub u64);

impl FromNode for Bytes {
    fn from_node(node: &Node, key: &str, r: &mut Reader) -> Result<Self, Invalid> {
        let text = String::from_node(node, key, r)?;
        units::parse_bytes(&text)
            .map(Bytes)
            .map_err(|e| invalid(node, e))
    }
}

/// CPUs in billionths, written as a decimal number of CPUs (`0.5`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct NanoCpus(pub u64);

impl FromNode for NanoCpus {
    fn from_node(node: &Node, key: &str, r: &mut Reader) -> Result<Self, Invalid> {
        let text = String::from_node(node, key, r)?;
        units::parse_nano_cpus(&text)
            .map(NanoCpus)
            .map_err(|e| invalid(node, e))
    }
}

/// `ports:`, each item in the place it was written (a short range stands for several ports).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Ports(pub Vec<Located<Port>>);

impl FromNode for Ports {
    fn from_node(node: &Node, key: &str, r: &mut Reader) -> Result<Self, Invalid> {
        ShortOrLong::from_node(node, key, r).map(|list| Ports(list.0))
    }
}

/// A published port. The short syntax always sets protocol and mode, as the docker CLI does;
/// the long syntax leaves them to the Engine's defaults (`tcp`, `ingress`) when not written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Port {
    pub target: u32,
    /// `None` (or 0): the Engine picks one, for ingress ports.
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
        "target" => target: Option<PortNumber>,
        "published" => published: Option<PortNumber>,
        "protocol" => protocol: Option<Protocol>,
        "mode" => mode: Option<PublishMode>,
    }
}

/// A port number, 0 to 65535, written as a number or a string.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct PortNumber(pub u32);

impl FromNode for PortNumber {
    fn from_node(node: &Node, key: &str, _: &mut Reader) -> Result<Self, Invalid> {
        let text = node
            .scalar_text()
            .ok_or_else(|| wrong_kind(node, key, "a port number"))?;
        crate::syntax::parse_port_number(&text)
            .map(PortNumber)
            .map_err(|_| {
                invalid(
                    node,
                    format!(
                        "invalid {key} port {}: expected a number from 0 to 65535",
                        shown(node)
                    ),
                )
            })
    }
}

/// `networks:` of a service: a list of names or a map of names to attachment options.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ServiceNetworks(pub BTreeMap<String, Located<ServiceNetwork>>);

const SERVICE_NETWORK_KEYS: KeyPolicy = KeyPolicy {
    open: false,
    ignored: &[
        (
            "ipv4_address",
            "Swarm assigns the addresses of a service's tasks itself",
        ),
        (
            "ipv6_address",
            "Swarm assigns the addresses of a service's tasks itself",
        ),
    ],
    forbidden: &[],
};

compose_struct! {
    /// How a service joins one network; all defaults for a name written alone.
    pub struct ServiceNetwork("service network", SERVICE_NETWORK_KEYS) {
        "aliases" => aliases: Option<Vec<String>>,
        "driver_opts" => driver_opts: Option<BTreeMap<String, String>>,
    }
}

impl FromNode for ServiceNetworks {
    fn from_node(node: &Node, key: &str, r: &mut Reader) -> Result<Self, Invalid> {
        let mut networks = BTreeMap::new();
        match &node.value {
            Value::Seq(items) => {
                for item in items {
                    let name = String::from_node(item, key, r)?;
                    networks.insert(name, Located::new(ServiceNetwork::default(), item.at));
                }
            }
            Value::Map(entries) => {
                for entry in entries {
                    let options = r
                        .within(&entry.key, |r| {
                            Option::<ServiceNetwork>::from_node(&entry.value, &entry.key, r)
                        })?
                        .unwrap_or_default();
                    networks.insert(entry.key.clone(), Located::new(options, entry.at));
                }
            }
            _ => {
                return Err(wrong_kind(
                    node,
                    key,
                    "a list of network names or a mapping of names to options",
                ))
            }
        }
        Ok(ServiceNetworks(networks))
    }
}

/// `volumes:` of a service: mounts in short (`SOURCE:TARGET:MODE`) or long syntax.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ServiceVolumes(pub Vec<Located<ServiceVolume>>);

impl FromNode for ServiceVolumes {
    fn from_node(node: &Node, key: &str, r: &mut Reader) -> Result<Self, Invalid> {
        ShortOrLong::from_node(node, key, r).map(|list| ServiceVolumes(list.0))
    }
}

/// The type of a mount. The docker CLI passes any other word to the Engine, which refuses it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    Volume,
    Bind,
    Tmpfs,
    Npipe,
    Cluster,
    Image,
}

impl MountType {
    pub const fn as_str(&self) -> &'static str {
        match self {
            MountType::Volume => "volume",
            MountType::Bind => "bind",
            MountType::Tmpfs => "tmpfs",
            MountType::Npipe => "npipe",
            MountType::Cluster => "cluster",
            MountType::Image => "image",
        }
    }
}

impl FromNode for MountType {
    fn from_node(node: &Node, key: &str, r: &mut Reader) -> Result<Self, Invalid> {
        let text = String::from_node(node, key, r)?;
        match text.as_str() {
            "volume" => Ok(MountType::Volume),
            "bind" => Ok(MountType::Bind),
            "tmpfs" => Ok(MountType::Tmpfs),
            "npipe" => Ok(MountType::Npipe),
            "cluster" => Ok(MountType::Cluster),
            "image" => Ok(MountType::Image),
            _ => Err(invalid(
                node,
                format!(
                    "invalid mount type {text:?}: expected {}",
                    de::one_of(&["volume", "bind", "tmpfs", "npipe", "cluster", "image"])
                ),
            )),
        }
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
    /// The docker CLI's schema lets any key in here; only `propagation` is used.
    pub struct BindOptions("bind options", de::OPEN) {
        "propagation" => propagation: Option<String>,
    }
}

compose_struct! {
    pub struct VolumeOptions("volume options", de::OPEN) {
        "nocopy" => nocopy: Option<bool>,
        /// A path inside the volume to mount instead of its root (Engine API 1.45).
        "subpath" => subpath: Option<String>,
    }
}

compose_struct! {
    pub struct TmpfsOptions("tmpfs options", de::OPEN) {
        /// In bytes; a unit (`64m`) is accepted too, where the docker CLI wants a number.
        "size" => size: Option<Bytes>,
        /// The mount's permission bits, octal (`1777`); `docker stack deploy` ignores it,
        /// `docker compose` reads it.
        "mode" => mode: Option<FileMode>,
    }
}

/// Permission bits. A YAML number is taken as YAML reads it, as `docker compose` does
/// (`0o1777` and `01777` are octal, `1777` is decimal); a string is always read as octal, as
/// `chmod` reads it (`"1777"`, `"0o1777"`). At most `0o7777`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FileMode(pub u32);

impl FileMode {
    /// Reads `text` as octal permission bits; the message says what is wrong.
    pub fn parse(text: &str) -> Result<FileMode, String> {
        let trimmed = text.trim();
        let digits = trimmed
            .strip_prefix("0o")
            .or_else(|| trimmed.strip_prefix("0O"))
            .unwrap_or(trimmed);
        match u32::from_str_radix(digits, 8) {
            Ok(mode) if digits.bytes().all(|b| b.is_ascii_digit()) => FileMode::bounded(mode),
            _ => Err(format!(
                "mode {trimmed:?} is not an octal file mode: write permission bits such as 1777 \
                 or 0755"
            )),
        }
    }

    fn bounded(mode: u32) -> Result<FileMode, String> {
        if mode <= 0o7777 {
            Ok(FileMode(mode))
        } else {
            Err(format!(
                "mode {mode:o} (octal) is not an octal file mode: permission bits are at most 7777"
            ))
        }
    }
}

impl FromNode for FileMode {
    fn from_node(node: &Node, key: &str, r: &mut Reader) -> Result<Self, Invalid> {
        let read = match node.value {
            crate::yaml::Value::Int(n) => u32::try_from(n)
                .map_err(|_| {
                    format!("mode {n} is not an octal file mode: it is negative or too large")
                })
                .and_then(FileMode::bounded),
            _ => FileMode::parse(&String::from_node(node, key, r)?),
        };
        read.map_err(|e| invalid(node, e))
    }
}

impl FromShort for ServiceVolume {
    const WHAT: &'static str = "volumes";
    type Long = ServiceVolume;

    fn from_short(text: &str, _: Location, _: &mut Reader) -> Result<Vec<ServiceVolume>, String> {
        crate::syntax::parse_volume(text).map(|volume| vec![volume])
    }

    fn from_long(long: ServiceVolume) -> Result<ServiceVolume, String> {
        if long.kind.is_none() {
            return Err(
                "a volume in long syntax needs a `type`: `volume`, `bind`, `tmpfs`, `npipe`, `cluster` or `image`"
                    .to_string(),
            );
        }
        Ok(long)
    }
}

use crate::de::FromShort;

impl FromShort for Port {
    const WHAT: &'static str = "ports";
    type Long = PortLong;

    fn from_short(text: &str, at: Location, r: &mut Reader) -> Result<Vec<Port>, String> {
        let parsed = crate::syntax::parse_ports(text)?;
        if let Some(ip) = parsed.ignored_ip {
            r.ignore(
                "host_ip",
                at,
                format!("the address {ip} in {text:?} is ignored: a Swarm service publishes its ports on every address"),
            );
        }
        Ok(parsed.ports)
    }

    fn from_long(long: PortLong) -> Result<Port, String> {
        Ok(Port {
            target: long.target.ok_or("a port needs a `target`")?.0,
            published: long.published.map(|p| p.0).filter(|p| *p != 0),
            protocol: long.protocol,
            mode: long.mode,
        })
    }
}

/// `secrets:` or `configs:` of a service: names, or mappings with where and how to mount.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FileReferences(pub Vec<Located<FileReference>>);

impl FromNode for FileReferences {
    fn from_node(node: &Node, key: &str, r: &mut Reader) -> Result<Self, Invalid> {
        ShortOrLong::from_node(node, key, r).map(|list| FileReferences(list.0))
    }
}

compose_struct! {
    /// The docker CLI's schema lets any key in here; the others are noted and ignored.
    pub struct FileReference("secret or config reference", de::OPEN) {
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

    fn from_short(text: &str, _: Location, _: &mut Reader) -> Result<Vec<FileReference>, String> {
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
    pub struct ExternalName("external", de::OPEN) {
        "name" => name: Option<String>,
    }
}

impl FromNode for External {
    fn from_node(node: &Node, key: &str, r: &mut Reader) -> Result<Self, Invalid> {
        match &node.value {
            Value::Map(_) => Ok(External {
                external: true,
                name: ExternalName::from_node(node, key, r)?.name,
            }),
            _ => Ok(External {
                external: bool::from_node(node, key, r)?,
                name: None,
            }),
        }
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
    /// A volume under the top-level `volumes:`. Its `x-cluster-spec` is skipped, as the
    /// docker CLI reads it and does not use it.
    pub struct VolumeDefinition("volume") {
        "driver" => driver: Option<String>,
        "driver_opts" => driver_opts: Option<BTreeMap<String, String>>,
        "external" => external: Option<External>,
        "name" => name: Option<String>,
        "labels" => labels: Option<Mapping>,
    }
}

compose_struct! {
    /// A secret under the top-level `secrets:`; a config is read as one without drivers.
    pub struct FileObjectDefinition("secret") {
        "file" => file: Option<String>,
        "external" => external: Option<External>,
        "name" => name: Option<String>,
        "labels" => labels: Option<Mapping>,
        "driver" => driver: Option<String>,
        "driver_opts" => driver_opts: Option<BTreeMap<String, String>>,
        "template_driver" => template_driver: Option<String>,
    }
}

compose_struct! {
    /// A config under the top-level `configs:`.
    pub struct ConfigDefinition("config") {
        "file" => file: Option<String>,
        "external" => external: Option<External>,
        "name" => name: Option<String>,
        "labels" => labels: Option<Mapping>,
        "template_driver" => template_driver: Option<String>,
    }
}

impl From<ConfigDefinition> for FileObjectDefinition {
    fn from(config: ConfigDefinition) -> Self {
        FileObjectDefinition {
            file: config.file,
            external: config.external,
            name: config.name,
            labels: config.labels,
            driver: None,
            driver_opts: None,
            template_driver: config.template_driver,
        }
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

/// The `version` values the docker CLI has a schema for; none means the newest.
pub(crate) fn check_version(version: &Located<String>) -> Result<(), Invalid> {
    let known = match version.value.as_str() {
        "" | "3" => true,
        v => v
            .strip_prefix("3.")
            .and_then(|minor| minor.parse::<u32>().ok().filter(|m| m.to_string() == minor))
            .is_some_and(|minor| minor <= 13),
    };
    if known {
        return Ok(());
    }
    Err(Invalid::new(
        version.at,
        format!(
            "unsupported compose file version {:?}: docker stack deploy reads versions 3.0 to 3.13 (or none)",
            version.value
        ),
    ))
}

/// Reads the top level of a file from its tree.
pub(crate) fn read_file(root: &Node, r: &mut Reader) -> Result<ComposeFile, Invalid> {
    expect_map(root, "file", "a mapping with `services`")?;
    ComposeFile::from_node(root, "file", r)
}
