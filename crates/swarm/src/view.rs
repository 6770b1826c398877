//! A service spec read typed: [`ServiceView`].

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::image::ImageRef;
use crate::service::STACK_NAMESPACE_LABEL;
use crate::state::{FailureAction, RestartCondition, UpdateOrder};

/// Swarm's update and rollback defaults (swarmkit's `defaults.Service`), which apply where a
/// spec leaves the config out.
const DEFAULT_PARALLELISM: u64 = 1;
const DEFAULT_MONITOR: Duration = Duration::from_secs(5);

/// A spec that cannot be read: a field has a type the Engine API does not give it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError(pub String);

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the service spec cannot be read: {}", self.0)
    }
}

impl std::error::Error for SpecError {}

/// A service spec (`Spec` of `GET /services/{id}`, or a spec swarmkeeper sends) read typed,
/// with Swarm's defaults where the spec says nothing, so that what it shows is what runs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceView {
    /// `Name`.
    pub name: String,
    /// `Labels`: the service's own labels (`deploy.labels` in a stack file).
    pub labels: BTreeMap<String, String>,
    /// `TaskTemplate.ContainerSpec.Labels`: the labels of each task's container (a stack
    /// file's service-level `labels`).
    pub container_labels: BTreeMap<String, String>,
    pub mode: ServiceMode,
    /// `TaskTemplate.ContainerSpec.Image`.
    pub image: ImageRef,
    /// `TaskTemplate.LogDriver`; `None`: the daemon's default driver of each node.
    pub log_driver: Option<LogDriver>,
    /// `TaskTemplate.RestartPolicy`; `None`: Swarm's default, [`RestartPolicy::default`].
    pub restart_policy: Option<RestartPolicy>,
    /// `TaskTemplate.ContainerSpec.Healthcheck`; `None`: the image's own, if it has one.
    pub healthcheck: Option<Healthcheck>,
    /// `TaskTemplate.ContainerSpec.ReadOnly`: the container's root filesystem is read-only.
    pub read_only: bool,
    /// `TaskTemplate.ContainerSpec.StopGracePeriod`; `None`: not set (the engine's 10 s).
    pub stop_grace_period: Option<Duration>,
    /// `TaskTemplate.ContainerSpec.StopSignal`; empty: the image's (else `SIGTERM`).
    pub stop_signal: String,
    /// `TaskTemplate.ContainerSpec.User`: `NAME`, `UID`, `UID:GID`; empty: the image's.
    pub user: String,
    /// `TaskTemplate.ContainerSpec.Hostname`; empty: the container's id.
    pub hostname: String,
    /// `TaskTemplate.ContainerSpec.Dir`: the working directory; empty: the image's.
    pub working_dir: String,
    /// `TaskTemplate.ContainerSpec.Init`: run an init as PID 1; `None`: the daemon's default.
    pub init: Option<bool>,
    /// `TaskTemplate.ContainerSpec.TTY`.
    pub tty: bool,
    /// `TaskTemplate.ContainerSpec.OpenStdin`.
    pub open_stdin: bool,
    /// `TaskTemplate.ContainerSpec.CapabilityAdd` and `CapabilityDrop`: `CAP_NET_ADMIN`, `ALL`.
    pub capability_add: Vec<String>,
    pub capability_drop: Vec<String>,
    /// `TaskTemplate.ContainerSpec.DNSConfig.Nameservers` and `Search`.
    pub dns_nameservers: Vec<String>,
    pub dns_search: Vec<String>,
    /// `UpdateConfig`, Swarm's defaults filled in.
    pub update_config: UpdateConfig,
    /// `RollbackConfig`, Swarm's defaults filled in.
    pub rollback_config: UpdateConfig,
    /// `EndpointSpec.Ports`.
    pub ports: Vec<PortConfig>,
    /// `TaskTemplate.ContainerSpec.Secrets`.
    pub secrets: Vec<FileRef>,
    /// `TaskTemplate.ContainerSpec.Configs` (a credential spec's config included).
    pub configs: Vec<FileRef>,
    /// `TaskTemplate.Networks[].Target`: the networks the tasks attach to, by id as the
    /// engine stores them (a spec swarmkeeper writes may name them).
    pub networks: Vec<String>,
    /// `TaskTemplate.ContainerSpec.Command`: the image's entrypoint replaced (compose's
    /// `entrypoint`); empty: the image's own.
    pub command: Vec<String>,
    /// `TaskTemplate.ContainerSpec.Args` (compose's `command`).
    pub args: Vec<String>,
    /// `TaskTemplate.ContainerSpec.Env`: `KEY=VALUE` (or `KEY`), as stored.
    pub env: Vec<String>,
    /// `TaskTemplate.ContainerSpec.Mounts`.
    pub mounts: Vec<MountView>,
    /// `TaskTemplate.Resources.Limits`.
    pub limits: ResourceAmounts,
    /// `TaskTemplate.Resources.Reservations`.
    pub reservations: ResourceAmounts,
    /// `TaskTemplate.Placement.Constraints`: `node.role==manager`, …
    pub constraints: Vec<String>,
    /// `TaskTemplate.Placement.Preferences[].Spread.SpreadDescriptor`: the labels tasks spread
    /// over, in order.
    pub spread_over: Vec<String>,
    /// `TaskTemplate.Placement.Platforms`: the platforms the image runs on, as the docker CLI
    /// records them from its manifest; empty: any.
    pub platforms: Vec<Platform>,
    /// `TaskTemplate.Placement.MaxReplicas`: the most tasks of the service on one node
    /// (compose's `max_replicas_per_node`); 0: no limit.
    pub max_replicas: u64,
}

/// One of `TaskTemplate.Placement.Platforms`; an empty field matches any node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Platform {
    /// `OS`, e.g. `linux`.
    #[serde(rename = "OS", default, deserialize_with = "nullable")]
    pub os: String,
    /// `Architecture`, e.g. `amd64` or `arm64`.
    #[serde(default, deserialize_with = "nullable")]
    pub architecture: String,
}

/// One of `TaskTemplate.ContainerSpec.Mounts`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MountView {
    /// `volume` (Swarm's default), `bind`, `tmpfs`, `npipe`, `cluster`.
    pub kind: String,
    /// A volume's name or a bind's host path; empty for tmpfs or an anonymous volume.
    pub source: String,
    pub target: String,
    pub read_only: bool,
    /// `VolumeOptions.NoCopy`: a new volume is not filled from the image's files.
    pub no_copy: bool,
    /// `VolumeOptions.Subpath`: the part of the volume mounted; empty: all of it.
    pub subpath: String,
    /// `TmpfsOptions.SizeBytes`; 0: no limit.
    pub tmpfs_size_bytes: u64,
    /// `TmpfsOptions.Mode`: the permission bits (`0o1777`); 0: Docker's default (1777).
    pub tmpfs_mode: u32,
    /// `VolumeOptions.DriverConfig.Name`: the driver that creates the volume on a node where
    /// it does not exist yet; empty: none given (`local`).
    pub driver: String,
    /// `VolumeOptions.DriverConfig.Options`, given to that driver.
    pub driver_options: BTreeMap<String, String>,
    /// `BindOptions.Propagation`; empty: Docker's default.
    pub propagation: String,
}

/// CPU and memory a task may use (limits) or is guaranteed (reservations); 0: not set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResourceAmounts {
    /// Billionths of a CPU (`NanoCPUs`).
    pub nano_cpus: u64,
    /// Bytes (`MemoryBytes`).
    pub memory_bytes: u64,
}

/// A secret or config a service's tasks receive (`SecretReference`, `ConfigReference`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileRef {
    /// `SecretID` or `ConfigID`.
    pub id: String,
    /// `SecretName` or `ConfigName`.
    pub name: String,
    /// `File.Name`: where the task reads it (relative to `/run/secrets/` for a secret); empty
    /// for a config used only as a credential spec (`Runtime`).
    pub target: String,
    /// `File.UID` and `File.GID`: the file's owner, numeric, as text (`"0"`, `""` when unset).
    pub uid: String,
    pub gid: String,
    /// `File.Mode`: its permission bits (`0o444`, the docker CLI's default; 0 when unset).
    pub mode: u32,
}

impl FileRef {
    /// Whether the file has an owner or mode other than the docker CLI's (root, `0444`): what
    /// a text that names the file must write for it to stay so.
    pub fn has_own_owner_or_mode(&self) -> bool {
        !["", "0"].contains(&self.uid.as_str())
            || !["", "0"].contains(&self.gid.as_str())
            || ![0, 0o444].contains(&self.mode)
    }
}

impl ServiceView {
    /// Reads a raw spec. Missing fields and `null`s take Swarm's defaults; only a field of
    /// the wrong type is an error.
    pub fn read(spec: &Value) -> Result<ServiceView, SpecError> {
        let wire = SpecWire::deserialize(spec).map_err(|e| SpecError(e.to_string()))?;
        Ok(wire.into_view())
    }

    /// [`ServiceView::read`] of a spec kept as JSON text (a recorded one), without building
    /// the whole tree first.
    pub fn read_json(spec: &str) -> Result<ServiceView, SpecError> {
        let wire: SpecWire = serde_json::from_str(spec).map_err(|e| SpecError(e.to_string()))?;
        Ok(wire.into_view())
    }

    /// Whether the service or its tasks' containers carry label `key` with `value`: a stack
    /// file's `deploy.labels` become service labels, its service-level `labels` container
    /// labels, and operators use either.
    pub fn labelled(&self, key: &str, value: &str) -> bool {
        [&self.labels, &self.container_labels]
            .iter()
            .any(|labels| labels.get(key).is_some_and(|v| v == value))
    }

    /// The stack the service belongs to (`com.docker.stack.namespace`).
    pub fn stack(&self) -> Option<&str> {
        self.labels.get(STACK_NAMESPACE_LABEL).map(String::as_str)
    }

    /// Ports published on the node's own interface (`mode: host`) rather than through the
    /// ingress mesh: only one task per node can hold one.
    pub fn host_ports(&self) -> impl Iterator<Item = &PortConfig> {
        self.ports
            .iter()
            .filter(|p| p.publish_mode == PublishMode::Host)
    }
}

/// How Swarm runs a service's tasks (`Mode`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceMode {
    /// `replicas` long-running tasks (1 when the spec does not say).
    Replicated { replicas: u64 },
    /// One long-running task on every node that qualifies.
    Global,
    /// Tasks that run to completion: `total_completions` in all, at most `max_concurrent` at
    /// once.
    ReplicatedJob {
        max_concurrent: u64,
        total_completions: u64,
    },
    /// One task that runs to completion on every node that qualifies.
    GlobalJob,
}

impl Default for ServiceMode {
    /// A spec without a mode is replicated with one replica.
    fn default() -> ServiceMode {
        ServiceMode::Replicated { replicas: 1 }
    }
}

impl ServiceMode {
    /// `replicated`, `global`, `replicated-job` or `global-job`, as the compose file's
    /// `deploy.mode` and `docker service ls` write it.
    pub fn as_str(&self) -> &'static str {
        match self {
            ServiceMode::Replicated { .. } => "replicated",
            ServiceMode::Global => "global",
            ServiceMode::ReplicatedJob { .. } => "replicated-job",
            ServiceMode::GlobalJob => "global-job",
        }
    }

    /// Its tasks run to completion rather than for ever.
    pub fn is_job(&self) -> bool {
        matches!(
            self,
            ServiceMode::ReplicatedJob { .. } | ServiceMode::GlobalJob
        )
    }

    /// One task per node rather than a count.
    pub fn is_global(&self) -> bool {
        matches!(self, ServiceMode::Global | ServiceMode::GlobalJob)
    }

    /// The replica count of a replicated service; `None` for the other modes.
    pub fn replicas(&self) -> Option<u64> {
        match self {
            ServiceMode::Replicated { replicas } => Some(*replicas),
            _ => None,
        }
    }
}

/// `TaskTemplate.LogDriver`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogDriver {
    /// `local`, `json-file`, `none`, `syslog`, …; empty when the spec gives only options.
    pub name: String,
    pub options: BTreeMap<String, String>,
}

/// `TaskTemplate.RestartPolicy`. Its [`Default`] is Swarm's: restart on any exit, 5 s apart,
/// without limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestartPolicy {
    pub condition: RestartCondition,
    pub delay: Duration,
    /// 0: no limit.
    pub max_attempts: u64,
    /// How long a restart is counted against `max_attempts`; 0: for ever.
    pub window: Duration,
}

impl Default for RestartPolicy {
    fn default() -> RestartPolicy {
        RestartPolicy {
            condition: RestartCondition::Any,
            delay: Duration::from_secs(5),
            max_attempts: 0,
            window: Duration::ZERO,
        }
    }
}

impl RestartPolicy {
    /// A task that keeps failing is restarted for ever.
    pub fn restarts_forever(&self) -> bool {
        self.condition == RestartCondition::Any && self.max_attempts == 0
    }
}

/// The Engine's healthcheck defaults, for the values a healthcheck leaves at zero.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_HEALTH_RETRIES: u64 = 3;

/// `TaskTemplate.ContainerSpec.Healthcheck`; zero durations and retries mean the Engine's
/// defaults ([`DEFAULT_HEALTH_INTERVAL`], [`DEFAULT_HEALTH_TIMEOUT`],
/// [`DEFAULT_HEALTH_RETRIES`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Healthcheck {
    /// `["CMD", …]`, `["CMD-SHELL", …]`, or `["NONE"]` to turn the image's own off.
    pub test: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    /// `StartInterval` (Engine API 1.44): the probes' interval during `start_period`; zero:
    /// not set.
    pub start_interval: Duration,
    pub retries: u64,
}

impl Healthcheck {
    /// `["NONE"]`: the image's healthcheck is turned off and none replaces it.
    pub fn is_disabled(&self) -> bool {
        self.test.first().map(String::as_str) == Some("NONE")
    }

    /// How long the healthcheck can take to call a running task unhealthy: `retries` failed
    /// probes `interval` apart, the last taking up to `timeout`. An update's `monitor` shorter
    /// than this never sees the failure.
    pub fn detection_time(&self) -> Duration {
        let or = |value: Duration, default| {
            if value.is_zero() {
                default
            } else {
                value
            }
        };
        let retries = if self.retries == 0 {
            DEFAULT_HEALTH_RETRIES
        } else {
            self.retries
        };
        or(self.interval, DEFAULT_HEALTH_INTERVAL)
            .saturating_mul(u32::try_from(retries).unwrap_or(u32::MAX))
            .saturating_add(or(self.timeout, DEFAULT_HEALTH_TIMEOUT))
    }
}

/// `UpdateConfig` or `RollbackConfig`, with Swarm's defaults where the spec leaves the config
/// or one of its fields out.
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateConfig {
    /// Tasks replaced at once; 0 means all of them.
    pub parallelism: u64,
    /// Wait between batches.
    pub delay: Duration,
    pub failure_action: FailureAction,
    /// How long a new task is watched for failure after it runs.
    pub monitor: Duration,
    /// The share of tasks that may fail before `failure_action` applies, 0 to 1.
    pub max_failure_ratio: f64,
    pub order: UpdateOrder,
    /// The spec writes this config; `false`: every value above is Swarm's default.
    pub written: bool,
}

impl Default for UpdateConfig {
    fn default() -> UpdateConfig {
        UpdateConfig {
            parallelism: DEFAULT_PARALLELISM,
            delay: Duration::ZERO,
            failure_action: FailureAction::Pause,
            monitor: DEFAULT_MONITOR,
            max_failure_ratio: 0.0,
            order: UpdateOrder::StopFirst,
            written: false,
        }
    }
}

/// `PublishMode` of a port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PublishMode {
    /// Swarm's default: through the routing mesh, on every node.
    #[default]
    Ingress,
    /// On the node that runs the task only.
    Host,
}

/// One of `EndpointSpec.Ports`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortConfig {
    /// `tcp` (the default), `udp` or `sctp`.
    pub protocol: String,
    pub target_port: u32,
    /// 0 when Swarm picks one.
    pub published_port: u32,
    pub publish_mode: PublishMode,
}

/// Treats `null` like an absent field; pair with `#[serde(default)]`.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Go's durations travel as integer nanoseconds; a negative one means nothing here.
fn nanos(value: i64) -> Duration {
    Duration::from_nanos(u64::try_from(value).unwrap_or(0))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct SpecWire {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "nullable")]
    mode: ModeWire,
    #[serde(default, deserialize_with = "nullable")]
    task_template: TaskTemplateWire,
    #[serde(default)]
    update_config: Option<UpdateConfigWire>,
    #[serde(default)]
    rollback_config: Option<UpdateConfigWire>,
    #[serde(default, deserialize_with = "nullable")]
    endpoint_spec: EndpointSpecWire,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ModeWire {
    #[serde(default)]
    replicated: Option<ReplicatedWire>,
    #[serde(default)]
    global: Option<IgnoredAny>,
    #[serde(default)]
    replicated_job: Option<ReplicatedJobWire>,
    #[serde(default)]
    global_job: Option<IgnoredAny>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ReplicatedWire {
    #[serde(default)]
    replicas: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ReplicatedJobWire {
    #[serde(default)]
    max_concurrent: Option<u64>,
    #[serde(default)]
    total_completions: Option<u64>,
}

/// `Resources.Limits` of a task spec (a service's `TaskTemplate`, a task's `Spec`); none when
/// the spec cannot be read.
pub(crate) fn template_limits(template: &Value) -> ResourceAmounts {
    TaskTemplateWire::deserialize(template)
        .map(|t| t.resources.limits.into_amounts())
        .unwrap_or_default()
}

/// The named volumes a task spec mounts (`ContainerSpec.Mounts` of type `volume`, Swarm's
/// default, with a source), in order; none when the spec cannot be read.
pub(crate) fn template_volumes(template: &Value) -> Vec<String> {
    TaskTemplateWire::deserialize(template)
        .map(|t| {
            t.container_spec
                .mounts
                .into_iter()
                .filter(|m| matches!(m.r#type.as_str(), "" | "volume") && !m.source.is_empty())
                .map(|m| m.source)
                .collect()
        })
        .unwrap_or_default()
}

/// The secrets (`ContainerSpec.Secrets`) or configs (`ContainerSpec.Configs`) a task spec
/// gives its container, in order; none when the spec cannot be read.
pub(crate) fn template_files(template: &Value, kind: crate::FileKind) -> Vec<FileRef> {
    TaskTemplateWire::deserialize(template)
        .map(|t| {
            let refs = match kind {
                crate::FileKind::Secret => t.container_spec.secrets,
                crate::FileKind::Config => t.container_spec.configs,
            };
            refs.into_iter().map(FileRefWire::into_ref).collect()
        })
        .unwrap_or_default()
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct TaskTemplateWire {
    #[serde(default, deserialize_with = "nullable")]
    container_spec: ContainerSpecWire,
    #[serde(default, deserialize_with = "nullable")]
    networks: Vec<NetworkAttachmentWire>,
    #[serde(default)]
    log_driver: Option<LogDriverWire>,
    #[serde(default)]
    restart_policy: Option<RestartPolicyWire>,
    #[serde(default, deserialize_with = "nullable")]
    resources: ResourcesWire,
    #[serde(default, deserialize_with = "nullable")]
    placement: PlacementWire,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ResourcesWire {
    #[serde(default, deserialize_with = "nullable")]
    limits: AmountsWire,
    #[serde(default, deserialize_with = "nullable")]
    reservations: AmountsWire,
}

#[derive(Deserialize, Default)]
struct AmountsWire {
    #[serde(rename = "NanoCPUs", default, deserialize_with = "nullable")]
    nano_cpus: i64,
    #[serde(rename = "MemoryBytes", default, deserialize_with = "nullable")]
    memory_bytes: i64,
}

impl AmountsWire {
    fn into_amounts(self) -> ResourceAmounts {
        ResourceAmounts {
            nano_cpus: u64::try_from(self.nano_cpus).unwrap_or(0),
            memory_bytes: u64::try_from(self.memory_bytes).unwrap_or(0),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct PlacementWire {
    #[serde(default, deserialize_with = "nullable")]
    constraints: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    preferences: Vec<PreferenceWire>,
    #[serde(default, deserialize_with = "nullable")]
    platforms: Vec<Platform>,
    #[serde(default, deserialize_with = "nullable")]
    max_replicas: u64,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct PreferenceWire {
    #[serde(default)]
    spread: Option<SpreadWire>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct SpreadWire {
    #[serde(default, deserialize_with = "nullable")]
    spread_descriptor: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct MountWire {
    #[serde(default, deserialize_with = "nullable")]
    r#type: String,
    #[serde(default, deserialize_with = "nullable")]
    source: String,
    #[serde(default, deserialize_with = "nullable")]
    target: String,
    #[serde(default, deserialize_with = "nullable")]
    read_only: bool,
    #[serde(default, deserialize_with = "nullable")]
    volume_options: MountOptionsWire,
    #[serde(default, deserialize_with = "nullable")]
    tmpfs_options: MountOptionsWire,
    #[serde(default, deserialize_with = "nullable")]
    bind_options: MountOptionsWire,
}

/// The fields of a mount's `VolumeOptions`, `TmpfsOptions` and `BindOptions` read.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct MountOptionsWire {
    #[serde(default, deserialize_with = "nullable")]
    no_copy: bool,
    #[serde(default, deserialize_with = "nullable")]
    subpath: String,
    #[serde(default, deserialize_with = "nullable")]
    size_bytes: u64,
    #[serde(default, deserialize_with = "nullable")]
    mode: u32,
    #[serde(default, deserialize_with = "nullable")]
    driver_config: DriverWire,
    #[serde(default, deserialize_with = "nullable")]
    propagation: String,
}

/// `VolumeOptions.DriverConfig`.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct DriverWire {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    options: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ContainerSpecWire {
    #[serde(default, deserialize_with = "nullable")]
    image: String,
    #[serde(default, deserialize_with = "nullable")]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    healthcheck: Option<HealthcheckWire>,
    #[serde(default, deserialize_with = "nullable")]
    read_only: bool,
    #[serde(default, deserialize_with = "nullable")]
    stop_grace_period: i64,
    #[serde(default, deserialize_with = "nullable")]
    stop_signal: String,
    #[serde(default, deserialize_with = "nullable")]
    user: String,
    #[serde(default, deserialize_with = "nullable")]
    hostname: String,
    #[serde(default, deserialize_with = "nullable")]
    dir: String,
    #[serde(default)]
    init: Option<bool>,
    #[serde(rename = "TTY", default, deserialize_with = "nullable")]
    tty: bool,
    #[serde(default, deserialize_with = "nullable")]
    open_stdin: bool,
    #[serde(default, deserialize_with = "nullable")]
    capability_add: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    capability_drop: Vec<String>,
    #[serde(rename = "DNSConfig", default, deserialize_with = "nullable")]
    dns_config: DnsConfigWire,
    #[serde(default, deserialize_with = "nullable")]
    secrets: Vec<FileRefWire>,
    #[serde(default, deserialize_with = "nullable")]
    configs: Vec<FileRefWire>,
    #[serde(default, deserialize_with = "nullable")]
    command: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    args: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    env: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    mounts: Vec<MountWire>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct DnsConfigWire {
    #[serde(default, deserialize_with = "nullable")]
    nameservers: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    search: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct NetworkAttachmentWire {
    #[serde(default, deserialize_with = "nullable")]
    target: String,
}

/// `SecretReference` and `ConfigReference` differ only in their field names' prefix.
#[derive(Deserialize, Default)]
struct FileRefWire {
    #[serde(
        rename = "SecretID",
        alias = "ConfigID",
        default,
        deserialize_with = "nullable"
    )]
    id: String,
    #[serde(
        rename = "SecretName",
        alias = "ConfigName",
        default,
        deserialize_with = "nullable"
    )]
    name: String,
    #[serde(rename = "File", default, deserialize_with = "nullable")]
    file: FileTargetWire,
}

#[derive(Deserialize, Default)]
struct FileTargetWire {
    #[serde(rename = "Name", default, deserialize_with = "nullable")]
    name: String,
    #[serde(rename = "UID", default, deserialize_with = "nullable")]
    uid: String,
    #[serde(rename = "GID", default, deserialize_with = "nullable")]
    gid: String,
    #[serde(rename = "Mode", default, deserialize_with = "nullable")]
    mode: u32,
}

impl FileRefWire {
    fn into_ref(self) -> FileRef {
        FileRef {
            id: self.id,
            name: self.name,
            target: self.file.name,
            uid: self.file.uid,
            gid: self.file.gid,
            mode: self.file.mode,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct LogDriverWire {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    options: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RestartPolicyWire {
    #[serde(default, deserialize_with = "nullable")]
    condition: String,
    #[serde(default)]
    delay: Option<i64>,
    #[serde(default, deserialize_with = "nullable")]
    max_attempts: u64,
    #[serde(default, deserialize_with = "nullable")]
    window: i64,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct HealthcheckWire {
    #[serde(default, deserialize_with = "nullable")]
    test: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    interval: i64,
    #[serde(default, deserialize_with = "nullable")]
    timeout: i64,
    #[serde(default, deserialize_with = "nullable")]
    start_period: i64,
    #[serde(default, deserialize_with = "nullable")]
    start_interval: i64,
    #[serde(default, deserialize_with = "nullable")]
    retries: u64,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct UpdateConfigWire {
    #[serde(default)]
    parallelism: Option<u64>,
    #[serde(default, deserialize_with = "nullable")]
    delay: i64,
    #[serde(default, deserialize_with = "nullable")]
    failure_action: String,
    #[serde(default, deserialize_with = "nullable")]
    monitor: i64,
    #[serde(default, deserialize_with = "nullable")]
    max_failure_ratio: f64,
    #[serde(default, deserialize_with = "nullable")]
    order: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct EndpointSpecWire {
    #[serde(default, deserialize_with = "nullable")]
    ports: Vec<PortWire>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct PortWire {
    #[serde(default, deserialize_with = "nullable")]
    protocol: String,
    #[serde(default, deserialize_with = "nullable")]
    target_port: u32,
    #[serde(default, deserialize_with = "nullable")]
    published_port: u32,
    #[serde(default, deserialize_with = "nullable")]
    publish_mode: String,
}

impl SpecWire {
    fn into_view(self) -> ServiceView {
        let template = self.task_template;
        let container = template.container_spec;
        let networks = template.networks.into_iter().map(|n| n.target).collect();
        ServiceView {
            name: self.name,
            labels: self.labels,
            mode: self.mode.into_mode(),
            image: ImageRef::parse(&container.image),
            log_driver: template.log_driver.map(|d| LogDriver {
                name: d.name,
                options: d.options,
            }),
            restart_policy: template.restart_policy.map(|r| RestartPolicy {
                condition: if r.condition.is_empty() {
                    RestartCondition::Any
                } else {
                    RestartCondition::parse(&r.condition)
                },
                delay: r.delay.map_or(RestartPolicy::default().delay, nanos),
                max_attempts: r.max_attempts,
                window: nanos(r.window),
            }),
            healthcheck: container.healthcheck.map(|h| Healthcheck {
                test: h.test,
                interval: nanos(h.interval),
                timeout: nanos(h.timeout),
                start_period: nanos(h.start_period),
                start_interval: nanos(h.start_interval),
                retries: h.retries,
            }),
            read_only: container.read_only,
            stop_grace_period: Some(nanos(container.stop_grace_period))
                .filter(|grace| !grace.is_zero()),
            stop_signal: container.stop_signal,
            user: container.user,
            hostname: container.hostname,
            working_dir: container.dir,
            init: container.init,
            tty: container.tty,
            open_stdin: container.open_stdin,
            capability_add: container.capability_add,
            capability_drop: container.capability_drop,
            dns_nameservers: container.dns_config.nameservers,
            dns_search: container.dns_config.search,
            update_config: update_config(self.update_config),
            rollback_config: update_config(self.rollback_config),
            ports: self
                .endpoint_spec
                .ports
                .into_iter()
                .map(|p| PortConfig {
                    protocol: if p.protocol.is_empty() {
                        "tcp".to_owned()
                    } else {
                        p.protocol
                    },
                    target_port: p.target_port,
                    published_port: p.published_port,
                    publish_mode: if p.publish_mode == "host" {
                        PublishMode::Host
                    } else {
                        PublishMode::Ingress
                    },
                })
                .collect(),
            secrets: container
                .secrets
                .into_iter()
                .map(FileRefWire::into_ref)
                .collect(),
            configs: container
                .configs
                .into_iter()
                .map(FileRefWire::into_ref)
                .collect(),
            networks,
            command: container.command,
            args: container.args,
            env: container.env,
            container_labels: container.labels,
            mounts: container
                .mounts
                .into_iter()
                .map(|m| MountView {
                    kind: if m.r#type.is_empty() {
                        "volume".to_owned()
                    } else {
                        m.r#type
                    },
                    source: m.source,
                    target: m.target,
                    read_only: m.read_only,
                    no_copy: m.volume_options.no_copy,
                    subpath: m.volume_options.subpath,
                    tmpfs_size_bytes: m.tmpfs_options.size_bytes,
                    tmpfs_mode: m.tmpfs_options.mode,
                    driver: m.volume_options.driver_config.name,
                    driver_options: m.volume_options.driver_config.options,
                    propagation: m.bind_options.propagation,
                })
                .collect(),
            limits: template.resources.limits.into_amounts(),
            reservations: template.resources.reservations.into_amounts(),
            constraints: template.placement.constraints,
            spread_over: template
                .placement
                .preferences
                .into_iter()
                .filter_map(|p| p.spread.map(|s| s.spread_descriptor))
                .collect(),
            platforms: template.placement.platforms,
            max_replicas: template.placement.max_replicas,
        }
    }
}

impl ModeWire {
    /// The engine sets exactly one mode; were there several, Swarm's own order decides.
    fn into_mode(self) -> ServiceMode {
        if self.global.is_some() {
            ServiceMode::Global
        } else if let Some(job) = self.replicated_job {
            // Swarm runs one at a time unless told, and as many in all as at once.
            let max_concurrent = job.max_concurrent.filter(|&n| n > 0).unwrap_or(1);
            ServiceMode::ReplicatedJob {
                max_concurrent,
                total_completions: job
                    .total_completions
                    .filter(|&n| n > 0)
                    .unwrap_or(max_concurrent),
            }
        } else if self.global_job.is_some() {
            ServiceMode::GlobalJob
        } else {
            ServiceMode::Replicated {
                replicas: self
                    .replicated
                    .and_then(|r| r.replicas)
                    .unwrap_or(DEFAULT_PARALLELISM),
            }
        }
    }
}

/// The config as Swarm applies it. The engine always sends `Parallelism` with a config; one
/// written without it (by hand) is taken as Swarm's default.
fn update_config(wire: Option<UpdateConfigWire>) -> UpdateConfig {
    let Some(wire) = wire else {
        return UpdateConfig::default();
    };
    let defaults = UpdateConfig::default();
    UpdateConfig {
        parallelism: wire.parallelism.unwrap_or(defaults.parallelism),
        delay: nanos(wire.delay),
        failure_action: if wire.failure_action.is_empty() {
            defaults.failure_action
        } else {
            FailureAction::parse(&wire.failure_action)
        },
        // Swarm watches for its default time when the spec says 0.
        monitor: if wire.monitor > 0 {
            nanos(wire.monitor)
        } else {
            defaults.monitor
        },
        max_failure_ratio: wire.max_failure_ratio,
        order: if wire.order.is_empty() {
            defaults.order
        } else {
            UpdateOrder::parse(&wire.order)
        },
        written: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view(spec: Value) -> ServiceView {
        ServiceView::read(&spec).unwrap()
    }

    #[test]
    fn a_label_counts_on_the_service_or_on_its_containers() {
        let on_containers = view(json!({
            "Labels": {"com.docker.stack.namespace": "swarmkeeper"},
            "TaskTemplate": {"ContainerSpec": {"Image": "swarmkeeper:0.1.0",
                                               "Labels": {"swarmkeeper.agent": "true"}}}
        }));
        assert!(on_containers.labelled("swarmkeeper.agent", "true"));
        assert_eq!(on_containers.container_labels.len(), 1);
        let on_service = view(json!({"Labels": {"swarmkeeper.agent": "true"}}));
        assert!(on_service.labelled("swarmkeeper.agent", "true"));
        let other = view(json!({"TaskTemplate": {"ContainerSpec": {"Labels": null}}}));
        assert!(!other.labelled("swarmkeeper.agent", "true"));
        assert!(!on_service.labelled("swarmkeeper.agent", "false"));
    }

    #[test]
    fn the_container_resources_and_placement_are_read() {
        let v = view(json!({"TaskTemplate": {
            "ContainerSpec": {
                "Command": ["sh", "-c"], "Args": ["echo hi"], "Env": ["A=1", "B"],
                "Mounts": [{"Source": "data", "Target": "/data"},
                           {"Type": "bind", "Source": "/srv", "Target": "/srv", "ReadOnly": true}]
            },
            "Resources": {"Limits": {"NanoCPUs": 500000000, "MemoryBytes": 67108864},
                          "Reservations": null},
            "Placement": {"Constraints": ["node.role==worker"],
                          "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}],
                          "Platforms": [{"Architecture": "amd64", "OS": "linux"}, {"OS": "linux"}]}
        }}));
        assert_eq!(
            v.platforms,
            [
                Platform {
                    os: "linux".into(),
                    architecture: "amd64".into()
                },
                Platform {
                    os: "linux".into(),
                    architecture: String::new()
                }
            ]
        );
        assert_eq!(v.command, ["sh", "-c"]);
        assert_eq!(v.args, ["echo hi"]);
        assert_eq!(v.env, ["A=1", "B"]);
        assert_eq!(v.mounts[0].kind, "volume");
        assert!(v.mounts[1].read_only && v.mounts[1].kind == "bind");
        assert_eq!(v.limits.nano_cpus, 500_000_000);
        assert_eq!(v.limits.memory_bytes, 64 << 20);
        assert_eq!(v.reservations, ResourceAmounts::default());
        assert_eq!(v.constraints, ["node.role==worker"]);
        assert_eq!(v.spread_over, ["node.labels.zone"]);
    }

    #[test]
    fn the_four_modes_are_told_apart() {
        let mode = |m: Value| view(json!({ "Mode": m })).mode;
        assert_eq!(
            mode(json!({"Replicated": {"Replicas": 2}})),
            ServiceMode::Replicated { replicas: 2 }
        );
        assert_eq!(
            mode(json!({"Replicated": {}})),
            ServiceMode::Replicated { replicas: 1 }
        );
        assert_eq!(mode(json!({"Global": {}})), ServiceMode::Global);
        assert_eq!(
            mode(json!({"ReplicatedJob": {"MaxConcurrent": 2}})),
            ServiceMode::ReplicatedJob {
                max_concurrent: 2,
                total_completions: 2
            }
        );
        assert_eq!(
            mode(json!({"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 5}})),
            ServiceMode::ReplicatedJob {
                max_concurrent: 1,
                total_completions: 5
            }
        );
        assert_eq!(mode(json!({"GlobalJob": {}})), ServiceMode::GlobalJob);
        assert_eq!(
            mode(json!({"Global": null, "Replicated": {}})),
            ServiceMode::Replicated { replicas: 1 }
        );
        assert_eq!(view(json!({"Name": "x"})).mode, ServiceMode::default());
        assert_eq!(ServiceMode::GlobalJob.as_str(), "global-job");
        assert!(ServiceMode::GlobalJob.is_job() && ServiceMode::GlobalJob.is_global());
    }

    #[test]
    fn an_absent_update_config_is_swarms_default() {
        let bare = view(json!({"Name": "x"}));
        assert_eq!(bare.update_config, UpdateConfig::default());
        assert!(!bare.update_config.written);
        assert_eq!(bare.update_config.failure_action, FailureAction::Pause);
        assert_eq!(bare.update_config.monitor, Duration::from_secs(5));
        assert_eq!(bare.rollback_config.order, UpdateOrder::StopFirst);
        let written = view(json!({"UpdateConfig": {
            "Parallelism": 0, "FailureAction": "rollback", "Monitor": 30_000_000_000i64,
            "Delay": 500_000_000, "Order": "start-first", "MaxFailureRatio": 0.5
        }}));
        let update = written.update_config;
        assert_eq!(
            (update.parallelism, update.failure_action, update.order),
            (0, FailureAction::Rollback, UpdateOrder::StartFirst)
        );
        assert_eq!(update.monitor, Duration::from_secs(30));
        assert_eq!(update.delay, Duration::from_millis(500));
        assert_eq!(update.max_failure_ratio, 0.5);
        assert!(update.written);
    }

    #[test]
    fn the_task_template_is_read() {
        let spec = json!({
            "Name": "shop_web",
            "Labels": {"com.docker.stack.namespace": "shop"},
            "TaskTemplate": {
                "ContainerSpec": {"Image": "app:1@sha256:abc", "Healthcheck": {"Test": ["CMD", "true"], "Retries": 2}},
                "LogDriver": {"Name": "json-file", "Options": {"max-size": "10m"}},
                "RestartPolicy": {"Condition": "on-failure", "MaxAttempts": 3},
                "Networks": null
            },
            "EndpointSpec": {"Ports": [{"TargetPort": 80, "PublishedPort": 8080, "PublishMode": "host"}]}
        });
        let v = view(spec.clone());
        assert_eq!(v.stack(), Some("shop"));
        assert_eq!(v.image.name, "app:1");
        assert_eq!(v.image.digest.as_deref(), Some("sha256:abc"));
        let driver = v.log_driver.as_ref().unwrap();
        assert_eq!(
            (driver.name.as_str(), driver.options["max-size"].as_str()),
            ("json-file", "10m")
        );
        let restart = v.restart_policy.as_ref().unwrap();
        assert_eq!(restart.condition, RestartCondition::OnFailure);
        assert_eq!(restart.delay, Duration::from_secs(5));
        assert!(!restart.restarts_forever());
        assert!(RestartPolicy::default().restarts_forever());
        let health = v.healthcheck.as_ref().unwrap();
        assert_eq!(health.retries, 2);
        assert_eq!(health.detection_time(), Duration::from_secs(2 * 30 + 30));
        assert_eq!(v.host_ports().count(), 1);
        assert_eq!(v.ports[0].protocol, "tcp");
    }

    #[test]
    fn the_container_process_settings_are_read() {
        let v = view(json!({"TaskTemplate": {"ContainerSpec": {
            "User": "1000:1000", "Hostname": "web-{{.Task.Slot}}", "Dir": "/app",
            "StopSignal": "SIGINT", "Init": false, "TTY": true, "OpenStdin": true,
            "CapabilityAdd": ["CAP_NET_ADMIN"], "CapabilityDrop": ["CAP_MKNOD"],
            "DNSConfig": {"Nameservers": ["1.1.1.1"], "Search": ["lan"], "Options": ["ndots:2"]}
        }}}));
        assert_eq!(
            (v.user.as_str(), v.hostname.as_str(), v.working_dir.as_str()),
            ("1000:1000", "web-{{.Task.Slot}}", "/app")
        );
        assert_eq!(v.stop_signal, "SIGINT");
        assert_eq!((v.init, v.tty, v.open_stdin), (Some(false), true, true));
        assert_eq!(
            (v.capability_add, v.capability_drop),
            (
                vec!["CAP_NET_ADMIN".to_owned()],
                vec!["CAP_MKNOD".to_owned()]
            )
        );
        assert_eq!(
            (v.dns_nameservers, v.dns_search),
            (vec!["1.1.1.1".to_owned()], vec!["lan".to_owned()])
        );
        // Not set: the image's and the daemon's, told apart from `false`.
        let v = view(json!({"TaskTemplate": {"ContainerSpec": {"Image": "app"}}}));
        assert_eq!((v.init, v.tty, v.user.as_str()), (None, false, ""));
    }

    #[test]
    fn nulls_are_absent_and_wrong_types_are_errors() {
        let v = view(
            json!({"Labels": null, "Mode": null, "TaskTemplate": null, "UpdateConfig": null, "EndpointSpec": {"Ports": null}}),
        );
        assert_eq!(v, ServiceView::default());
        let error =
            ServiceView::read(&json!({"Mode": {"Replicated": {"Replicas": "two"}}})).unwrap_err();
        assert!(error.to_string().contains("cannot be read"), "{error}");
    }

    #[test]
    fn secrets_configs_and_networks_are_read_with_their_targets() {
        let read = view(json!({"TaskTemplate": {
            "ContainerSpec": {
                "Secrets": [{"SecretID": "s1", "SecretName": "pw", "File": {"Name": "db_pw", "Mode": 292}}],
                "Configs": [{"ConfigID": "c1", "ConfigName": "cred", "Runtime": {}}],
            },
            "Networks": [{"Target": "n1", "Aliases": ["web"]}],
        }}));
        assert_eq!(
            read.secrets,
            [FileRef {
                id: "s1".into(),
                name: "pw".into(),
                target: "db_pw".into(),
                uid: String::new(),
                gid: String::new(),
                mode: 0o444,
            }]
        );
        assert!(!read.secrets[0].has_own_owner_or_mode());
        let owned = view(
            json!({"TaskTemplate": {"ContainerSpec": {"Secrets": [{"SecretName": "key",
            "File": {"Name": "server.key", "UID": "70", "GID": "70", "Mode": 256}}]}}}),
        );
        let key = &owned.secrets[0];
        assert_eq!(
            (key.uid.as_str(), key.gid.as_str(), key.mode),
            ("70", "70", 0o400)
        );
        assert!(key.has_own_owner_or_mode());
        assert_eq!(read.configs[0].target, "", "a credential spec has no file");
        assert_eq!(read.networks, ["n1"]);
        let bare =
            view(json!({"TaskTemplate": {"ContainerSpec": {"Secrets": null}, "Networks": null}}));
        assert!(bare.secrets.is_empty() && bare.networks.is_empty());
    }
}
