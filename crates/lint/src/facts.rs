//! What the rules read about one service, whether it comes from a stack file (each setting
//! with the place it is written) or from a spec as the engine runs it (no places). The rules
//! run on [`Facts`] only, so a file and the service deployed from it get the same findings:
//! every setting a rule reads survives into the Engine API spec.

use std::collections::BTreeMap;
use std::time::Duration;

use swarmkeeper_compose::spec::writes_shared_data;
use swarmkeeper_compose::{
    DeployMode, Healthcheck as FileHealthcheck, Location, PublishMode as FilePublishMode, Service,
    UpdateConfig as FileUpdateConfig,
};
use swarmkeeper_swarm::{
    FailureAction, Healthcheck, RestartCondition, ServiceView, UpdateConfig, UpdateOrder,
};

/// A setting's value and, from a file, where it is written.
#[derive(Clone, Debug)]
pub(crate) struct At<T> {
    pub value: T,
    pub at: Option<Location>,
}

impl<T> At<T> {
    fn file(value: T, at: Location) -> At<T> {
        At {
            value,
            at: Some(at),
        }
    }

    fn spec(value: T) -> At<T> {
        At { value, at: None }
    }
}

/// Where the facts were read, which decides how messages name a setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// A stack file: messages use its keys (`update_config`, `failure_action`).
    File,
    /// A running service's spec.
    Spec,
}

#[derive(Clone, Debug)]
pub(crate) struct Facts {
    pub source: Source,
    /// The service itself.
    pub at: Option<Location>,
    /// A job: its tasks run to completion, with no rollout to protect.
    pub job: bool,
    /// One task per node.
    pub global: bool,
    /// `logging` / `LogDriver`; `None`: the daemon's default applies.
    pub logging: Option<Logging>,
    pub update: Option<Update>,
    pub rollback: Option<Update>,
    /// `restart_policy` / `RestartPolicy`; `None`: none written (Swarm's default applies).
    pub restart: Option<Restart>,
    /// How long an enabled healthcheck needs to report a failure; `None`: none in the spec.
    pub health_detection: Option<Duration>,
    /// The first port published in host mode, as `PUBLISHED:TARGET` or `TARGET`.
    pub host_port: Option<String>,
    /// The first mount whose data two tasks on a node would write at once
    /// ([`swarmkeeper_compose::spec::writes_shared_data`]), as `SOURCE:TARGET`.
    pub shared_mount: Option<At<String>>,
    pub image: Option<At<String>>,
    /// The service's own labels (`deploy.labels` / `Labels`).
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug)]
pub(crate) struct Logging {
    /// `None` when only options are given.
    pub driver: Option<At<String>>,
    pub has_max_size: bool,
}

/// An update or rollback config as written; a field left out is `None` (Swarm's default).
#[derive(Clone, Debug)]
pub(crate) struct Update {
    pub at: Option<Location>,
    pub parallelism: Option<At<u64>>,
    pub failure_action: Option<At<FailureAction>>,
    pub monitor: Option<At<Duration>>,
    pub delay: Option<At<Duration>>,
    pub order: Option<At<UpdateOrder>>,
}

#[derive(Clone, Debug)]
pub(crate) struct Restart {
    pub at: Option<Location>,
    pub condition: Option<At<RestartCondition>>,
    /// 0 and `None` both mean no limit.
    pub max_attempts: Option<u64>,
}

fn std_duration(duration: swarmkeeper_compose::Duration) -> Duration {
    Duration::from_nanos(duration.as_nanos())
}

impl Facts {
    /// A service of a stack file, with Swarm's and the Engine's defaults left as absences.
    pub fn of_file(service: &Service) -> Facts {
        let deploy = service.deploy.as_ref();
        let update = |config: &swarmkeeper_compose::Located<FileUpdateConfig>| Update {
            at: Some(config.at),
            parallelism: config.parallelism.as_ref().map(|p| At::file(p.value, p.at)),
            failure_action: config
                .failure_action
                .as_ref()
                .map(|a| At::file(FailureAction::parse(a.value.as_str()), a.at)),
            monitor: config
                .monitor
                .as_ref()
                .map(|m| At::file(std_duration(m.value), m.at)),
            delay: config
                .delay
                .as_ref()
                .map(|d| At::file(std_duration(d.value), d.at)),
            order: config
                .order
                .as_ref()
                .map(|o| At::file(UpdateOrder::parse(o.value.as_str()), o.at)),
        };
        let mode = deploy
            .and_then(|d| d.mode.as_ref())
            .map_or(DeployMode::Replicated, |m| m.value);
        Facts {
            source: Source::File,
            at: Some(service.at),
            job: matches!(mode, DeployMode::ReplicatedJob | DeployMode::GlobalJob),
            global: matches!(mode, DeployMode::Global | DeployMode::GlobalJob),
            logging: service.logging.as_ref().map(|logging| Logging {
                driver: logging
                    .driver
                    .as_ref()
                    .map(|d| At::file(d.value.clone(), d.at)),
                has_max_size: logging
                    .options
                    .as_ref()
                    .is_some_and(|o| o.contains_key("max-size")),
            }),
            update: deploy.and_then(|d| d.update_config.as_ref()).map(update),
            rollback: deploy.and_then(|d| d.rollback_config.as_ref()).map(update),
            restart: deploy
                .and_then(|d| d.restart_policy.as_ref())
                .map(|policy| Restart {
                    at: Some(policy.at),
                    condition: policy
                        .condition
                        .as_ref()
                        .map(|c| At::file(RestartCondition::parse(c.value.as_str()), c.at)),
                    max_attempts: policy.max_attempts.as_ref().map(|m| m.value),
                }),
            health_detection: service
                .healthcheck
                .as_ref()
                .filter(|h| h.disable != Some(true))
                .map(|h| file_healthcheck(h))
                .filter(|h| !h.is_disabled())
                .map(|h| h.detection_time()),
            host_port: service
                .ports
                .iter()
                .flat_map(|p| &p.0)
                .find(|port| port.mode == Some(FilePublishMode::Host))
                .map(|port| match port.published {
                    Some(published) => format!("{published}:{}", port.target),
                    None => port.target.to_string(),
                }),
            shared_mount: service
                .volumes
                .iter()
                .flat_map(|v| &v.0)
                .find(|v| {
                    writes_shared_data(
                        v.kind.as_ref().map_or("volume", |k| k.as_str()),
                        v.source.as_deref().unwrap_or_default(),
                        v.read_only == Some(true),
                    )
                })
                .map(|v| {
                    let source = v.source.as_deref().unwrap_or_default();
                    let target = v.target.as_deref().unwrap_or_default();
                    At::file(format!("{source}:{target}"), v.at)
                }),
            image: service
                .image
                .as_ref()
                .map(|i| At::file(i.value.clone(), i.at)),
            labels: deploy
                .and_then(|d| d.labels.as_ref())
                .map(|labels| labels.0.clone())
                .unwrap_or_default(),
        }
    }

    /// A service as the engine runs it.
    pub fn of_spec(view: &ServiceView) -> Facts {
        let update = |config: &UpdateConfig| {
            config.written.then(|| Update {
                at: None,
                parallelism: Some(At::spec(config.parallelism)),
                failure_action: Some(At::spec(config.failure_action.clone())),
                monitor: Some(At::spec(config.monitor)),
                delay: Some(At::spec(config.delay)),
                order: Some(At::spec(config.order.clone())),
            })
        };
        Facts {
            source: Source::Spec,
            at: None,
            job: view.mode.is_job(),
            global: view.mode.is_global(),
            logging: view.log_driver.as_ref().map(|driver| Logging {
                driver: (!driver.name.is_empty()).then(|| At::spec(driver.name.clone())),
                has_max_size: driver.options.contains_key("max-size"),
            }),
            update: update(&view.update_config),
            rollback: update(&view.rollback_config),
            restart: view.restart_policy.as_ref().map(|policy| Restart {
                at: None,
                condition: Some(At::spec(policy.condition.clone())),
                max_attempts: Some(policy.max_attempts),
            }),
            health_detection: view
                .healthcheck
                .as_ref()
                .filter(|h| !h.is_disabled())
                .map(Healthcheck::detection_time),
            host_port: view.host_ports().next().map(|port| {
                if port.published_port == 0 {
                    port.target_port.to_string()
                } else {
                    format!("{}:{}", port.published_port, port.target_port)
                }
            }),
            shared_mount: view
                .mounts
                .iter()
                .find(|m| writes_shared_data(&m.kind, &m.source, m.read_only))
                .map(|m| At::spec(format!("{}:{}", m.source, m.target))),
            image: Some(view.image.to_string())
                .filter(|image| !image.is_empty())
                .map(At::spec),
            labels: view.labels.clone(),
        }
    }

    /// `file` in a stack file, `spec` for a running service.
    pub fn say(&self, file: impl Into<String>, spec: impl Into<String>) -> String {
        match self.source {
            Source::File => file.into(),
            Source::Spec => spec.into(),
        }
    }
}

/// What of the file's healthcheck decides how long a failure takes to show, as the Engine
/// will run it.
fn file_healthcheck(healthcheck: &FileHealthcheck) -> Healthcheck {
    let duration = |d: &Option<swarmkeeper_compose::Located<swarmkeeper_compose::Duration>>| {
        d.as_ref().map_or(Duration::ZERO, |d| std_duration(d.value))
    };
    Healthcheck {
        test: healthcheck.test.clone().map(|t| t.0).unwrap_or_default(),
        interval: duration(&healthcheck.interval),
        timeout: duration(&healthcheck.timeout),
        retries: healthcheck.retries.as_ref().map_or(0, |r| r.value),
        ..Healthcheck::default()
    }
}
