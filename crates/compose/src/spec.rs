//! Engine API request bodies, as `docker stack deploy` sends them: serialised with the
//! Engine's field names, a [`ServiceSpec`] can be POSTed to `/services/create` as is (once
//! the deployer has filled in the ids of the secrets and configs it created).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::units::Duration;

/// The body of `POST /services/create` and `POST /services/{id}/update`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceSpec {
    /// `STACK_service`.
    pub name: String,
    /// `deploy.labels`, plus `com.docker.stack.namespace` and `com.docker.stack.image`.
    pub labels: BTreeMap<String, String>,
    pub task_template: TaskSpec,
    pub mode: ServiceMode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_config: Option<UpdateConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_config: Option<UpdateConfig>,
    pub endpoint_spec: EndpointSpec,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskSpec {
    pub container_spec: ContainerSpec,
    pub resources: ResourceRequirements,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<RestartPolicy>,
    pub placement: Placement,
    pub networks: Vec<NetworkAttachment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_driver: Option<Driver>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerSpec {
    pub image: String,
    /// `labels` of the service (container labels), plus the stack namespace.
    pub labels: BTreeMap<String, String>,
    /// The compose `entrypoint`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// The compose `command`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    /// `KEY=VALUE`, or `KEY` alone for a variable without a value, sorted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub dir: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<Duration>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stop_signal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    /// `IP HOSTNAME` lines for `/etc/hosts`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    #[serde(rename = "DNSConfig", skip_serializing_if = "Option::is_none")]
    pub dns_config: Option<DnsConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretReference>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<ConfigReference>,
    #[serde(rename = "TTY", skip_serializing_if = "std::ops::Not::not")]
    pub tty: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub open_stdin: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub isolation: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capability_add: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capability_drop: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<Ulimit>,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub oom_score_adj: i64,
    /// Only when the service has a `credential_spec`; the docker CLI sends an empty one, which
    /// the Engine stores as nulls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privileges: Option<Privileges>,
}

fn is_zero_i64(value: &i64) -> bool {
    *value == 0
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Privileges {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_spec: Option<CredentialSpec>,
}

/// A Windows credential spec: one of a config (by id, once the deployer knows it: it holds the
/// config's name until then, see [`ContainerSpec::link_credential_spec`]), a file or a registry
/// value.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CredentialSpec {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub config: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub file: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub registry: String,
}

impl ContainerSpec {
    /// Points the credential spec at its config's id, once the deployer has filled in the ids
    /// of [`ContainerSpec::configs`]: the Engine wants the id, and the stack only names the
    /// config (its runtime reference carries both).
    pub fn link_credential_spec(&mut self) {
        let Some(spec) = self
            .privileges
            .as_mut()
            .and_then(|p| p.credential_spec.as_mut())
            .filter(|spec| !spec.config.is_empty())
        else {
            return;
        };
        if let Some(reference) = self
            .configs
            .iter()
            .find(|c| c.runtime.is_some() && c.config_name == spec.config)
        {
            spec.config = reference.config_id.clone();
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Mount {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
    pub target: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub consistency: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_options: Option<BindOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_options: Option<VolumeOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs_options: Option<TmpfsOptions>,
    /// `{}` on a `cluster` mount, as the docker CLI sends it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_options: Option<Empty>,
}

/// Whether a mount of `kind` (`volume`, `bind`, …) from `source` holds data that two tasks of
/// one service on a node would write at once: a bind mount or a named volume (the same on
/// every task of the node) not mounted read-only. A volume without a source is anonymous,
/// new for each task; a tmpfs is each task's own. Start-first updates run two such tasks
/// side by side (lint SK015; the safe defaults pick stop-first for them).
pub fn writes_shared_data(kind: &str, source: &str, read_only: bool) -> bool {
    !read_only && (kind == "bind" || (kind == "volume" && !source.is_empty()))
}

impl Mount {
    /// [`writes_shared_data`] of this mount.
    pub fn writes_shared_data(&self) -> bool {
        writes_shared_data(&self.kind, &self.source, self.read_only)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BindOptions {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub propagation: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeOptions {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_copy: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver_config: Option<Driver>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subpath: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TmpfsOptions {
    pub size_bytes: u64,
    /// Permission bits (`0o1777`); 0: not given, the Engine's default (1777).
    #[serde(skip_serializing_if = "is_zero_mode")]
    pub mode: u32,
}

fn is_zero_mode(mode: &u32) -> bool {
    *mode == 0
}

/// Health probe settings; durations are nanoseconds, zero meaning "the image's or the
/// Engine's default".
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub interval: Duration,
    #[serde(skip_serializing_if = "is_zero")]
    pub timeout: Duration,
    #[serde(skip_serializing_if = "is_zero")]
    pub start_period: Duration,
    #[serde(skip_serializing_if = "is_zero")]
    pub start_interval: Duration,
    #[serde(skip_serializing_if = "is_zero_count")]
    pub retries: u64,
}

fn is_zero(duration: &Duration) -> bool {
    *duration == Duration::ZERO
}

fn is_zero_count(count: &u64) -> bool {
    *count == 0
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DnsConfig {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
}

/// A secret mounted as a file. `SecretID` is the Engine's id of the secret named
/// `SecretName`, which only exists once the deployer has created or found it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretReference {
    pub file: FileTarget,
    #[serde(rename = "SecretID")]
    pub secret_id: String,
    pub secret_name: String,
}

/// A config mounted as a file, or used by the runtime (a credential spec's config); see
/// [`SecretReference`] about the id.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigReference {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<FileTarget>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Empty>,
    #[serde(rename = "ConfigID")]
    pub config_id: String,
    pub config_name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FileTarget {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "UID")]
    pub uid: String,
    #[serde(rename = "GID")]
    pub gid: String,
    /// File mode bits, `0o444` unless the compose file says otherwise.
    #[serde(rename = "Mode")]
    pub mode: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceRequirements {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservations: Option<Reservation>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Limit {
    #[serde(rename = "NanoCPUs", skip_serializing_if = "is_zero_count")]
    pub nano_cpus: u64,
    #[serde(skip_serializing_if = "is_zero_count")]
    pub memory_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Reservation {
    #[serde(rename = "NanoCPUs", skip_serializing_if = "is_zero_count")]
    pub nano_cpus: u64,
    #[serde(skip_serializing_if = "is_zero_count")]
    pub memory_bytes: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub generic_resources: Vec<GenericResource>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenericResource {
    pub discrete_resource_spec: DiscreteGenericResource,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DiscreteGenericResource {
    pub kind: String,
    pub value: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub condition: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<Duration>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Placement {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub preferences: Vec<PlacementPreference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_replicas: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PlacementPreference {
    pub spread: SpreadOver,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SpreadOver {
    pub spread_descriptor: String,
}

/// A network the service's tasks join. `Target` is the network's name; the Engine resolves
/// it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkAttachment {
    pub target: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Driver {
    pub name: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

/// Exactly one of the four modes is set.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceMode {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicated: Option<Replicated>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global: Option<Empty>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicated_job: Option<ReplicatedJob>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global_job: Option<Empty>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Replicated {
    /// Absent means the Engine's default, one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReplicatedJob {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_completions: Option<u64>,
}

/// `{}` in JSON.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Empty {}

/// How Swarm rolls tasks over, field for field as the Engine API has it (and with the same
/// fields left out when zero). An empty `failure_action` or `order` means "not written" (safe
/// defaults fill them in); it is sent as the value the Engine stores for it, `pause` and
/// `stop-first`, so that a deployed spec compares equal to the one written.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateConfig {
    pub parallelism: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub delay: Duration,
    #[serde(serialize_with = "failure_action_or_pause")]
    pub failure_action: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub monitor: Duration,
    pub max_failure_ratio: f32,
    #[serde(serialize_with = "order_or_stop_first")]
    pub order: String,
}

fn failure_action_or_pause<S: serde::Serializer>(
    action: &str,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(if action.is_empty() { "pause" } else { action })
}

fn order_or_stop_first<S: serde::Serializer>(
    order: &str,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(if order.is_empty() {
        "stop-first"
    } else {
        order
    })
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointSpec {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mode: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortConfig>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    pub target_port: u32,
    #[serde(skip_serializing_if = "is_zero_port")]
    pub published_port: u32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub publish_mode: String,
}

fn is_zero_port(port: &u32) -> bool {
    *port == 0
}

/// The body of `POST /networks/create` for a network the stack owns.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkCreate {
    pub name: String,
    pub driver: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub internal: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub attachable: bool,
    #[serde(rename = "IPAM", skip_serializing_if = "Option::is_none")]
    pub ipam: Option<Ipam>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ipam {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub driver: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<IpamConfig>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamConfig {
    pub subnet: String,
}

/// A secret or config the stack owns: the body of `POST /secrets/create` or
/// `POST /configs/create` once `Data` holds the base64 of the file at `file`, which this pure
/// mapping does not read.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FileObjectCreate {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Where the content is; empty for a secret made by a driver.
    #[serde(skip)]
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<Driver>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub templating: Option<Driver>,
}
