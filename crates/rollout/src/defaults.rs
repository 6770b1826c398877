//! The safe defaults swarmkeeper adds to a service spec where the stack file says nothing, as
//! a table: each row names the setting, says why, and fills it in.

use std::time::Duration;

use swarmkeeper_compose::spec::{Driver, ServiceSpec, UpdateConfig};
use swarmkeeper_compose::Duration as SpecDuration;
use swarmkeeper_swarm::Healthcheck;
use swarmkeeper_units::format_duration;

/// One safe default swarmkeeper applied, to be printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub service: String,
    pub setting: &'static str,
    pub value: String,
    pub why: &'static str,
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} = {} ({})",
            self.service, self.setting, self.value, self.why
        )
    }
}

/// One row of [`SAFE_DEFAULTS`].
pub struct SafeDefault {
    /// The compose setting it fills in, e.g. `update_config.failure_action`.
    pub setting: &'static str,
    /// Why, as the note says it (the order rows say why they chose `stop-first` instead).
    pub why: &'static str,
    /// Sets the value when the spec leaves it unset and the default suits the service;
    /// returns the value set and why, for the note.
    fill: fn(&mut ServiceSpec, &Service) -> Option<(String, &'static str)>,
}

/// What the rows need to know about the service, read before any row changes it.
struct Service {
    /// The update and rollback order and why: for a replicated service without host-mode
    /// ports, `start-first` unless it mounts a writable volume or bind mount (two tasks would
    /// write one data directory at once: a database corrupts), `stop-first` then.
    order: Option<(&'static str, &'static str)>,
    /// How long the healthcheck needs to report a failure, when there is one.
    monitor: Option<SpecDuration>,
}

const WHY_ROLLBACK: &str =
    "a failed update goes back to the running version instead of leaving the service down";
const WHY_PAUSE: &str = "a rollback that fails too stops for a human";
const WHY_START_FIRST: &str = "the old task keeps serving until its replacement runs";
const WHY_STOP_FIRST: &str = "the service writes to a volume or bind mount: start-first would run the old and the new task on the same data at once";
const WHY_LOCAL_LOGS: &str = "bounded on disk and readable with `swarmkeeper logs`";
const WHY_MONITOR: &str = "long enough for the healthcheck to fail (interval × retries + timeout)";

/// Every safe default, in the order they are applied and reported:
/// - update `failure_action: rollback` and rollback `failure_action: pause`;
/// - `order: start-first` for a replicated service without host-mode ports, `stop-first` when
///   it also mounts a writable volume or bind mount (update and rollback alike);
/// - a `monitor` long enough for the healthcheck to fail (interval × retries + timeout);
/// - `local` logging with `max-size: 20m` when the file names no log driver.
pub static SAFE_DEFAULTS: &[SafeDefault] = &[
    SafeDefault {
        setting: "update_config.failure_action",
        why: WHY_ROLLBACK,
        fill: |spec, _| fill_text(&mut update(spec).failure_action, "rollback", WHY_ROLLBACK),
    },
    SafeDefault {
        setting: "update_config.order",
        why: WHY_START_FIRST,
        fill: |spec, service| {
            let (order, why) = service.order?;
            fill_text(&mut update(spec).order, order, why)
        },
    },
    SafeDefault {
        setting: "update_config.monitor",
        why: WHY_MONITOR,
        fill: |spec, service| {
            let monitor = service.monitor?;
            fill_monitor(&mut update(spec).monitor, monitor).map(|v| (v, WHY_MONITOR))
        },
    },
    SafeDefault {
        setting: "rollback_config.failure_action",
        why: WHY_PAUSE,
        fill: |spec, _| fill_text(&mut rollback(spec).failure_action, "pause", WHY_PAUSE),
    },
    SafeDefault {
        setting: "rollback_config.order",
        why: WHY_START_FIRST,
        fill: |spec, service| {
            let (order, why) = service.order?;
            fill_text(&mut rollback(spec).order, order, why)
        },
    },
    SafeDefault {
        setting: "rollback_config.monitor",
        why: WHY_MONITOR,
        fill: |spec, service| {
            let monitor = service.monitor?;
            fill_monitor(&mut rollback(spec).monitor, monitor).map(|v| (v, WHY_MONITOR))
        },
    },
    SafeDefault {
        setting: "logging",
        why: WHY_LOCAL_LOGS,
        fill: |spec, _| {
            if spec.task_template.log_driver.is_some() {
                return None;
            }
            spec.task_template.log_driver = Some(Driver {
                name: "local".to_string(),
                options: [("max-size".to_string(), "20m".to_string())].into(),
            });
            Some(("local, max-size 20m".to_string(), WHY_LOCAL_LOGS))
        },
    },
];

/// Adds the [`SAFE_DEFAULTS`] the file does not set itself, and says which. Idempotent:
/// applied twice, the second time changes nothing and reports nothing.
pub fn apply_safe_defaults(spec: &mut ServiceSpec) -> Vec<Note> {
    let side_by_side = spec.mode.replicated.is_some()
        && !spec
            .endpoint_spec
            .ports
            .iter()
            .any(|p| p.publish_mode == "host");
    let service = Service {
        order: side_by_side.then(|| {
            if writes_a_mount(spec) {
                ("stop-first", WHY_STOP_FIRST)
            } else {
                ("start-first", WHY_START_FIRST)
            }
        }),
        monitor: spec
            .task_template
            .container_spec
            .healthcheck
            .as_ref()
            .map(|h| Healthcheck {
                test: h.test.clone(),
                interval: std_duration(h.interval),
                timeout: std_duration(h.timeout),
                start_period: std_duration(h.start_period),
                start_interval: std_duration(h.start_interval),
                retries: h.retries,
            })
            .filter(|h| !h.is_disabled())
            .map(|h| SpecDuration(h.detection_time().as_nanos() as u64)),
    };
    SAFE_DEFAULTS
        .iter()
        .filter_map(|row| {
            (row.fill)(spec, &service).map(|(value, why)| Note {
                service: spec.name.clone(),
                setting: row.setting,
                value,
                why,
            })
        })
        .collect()
}

/// Whether a task of `spec` writes to data another task of it would share
/// ([`swarmkeeper_compose::spec::writes_shared_data`]).
fn writes_a_mount(spec: &ServiceSpec) -> bool {
    spec.task_template
        .container_spec
        .mounts
        .iter()
        .any(swarmkeeper_compose::spec::Mount::writes_shared_data)
}

fn std_duration(duration: SpecDuration) -> Duration {
    Duration::from_nanos(duration.as_nanos())
}

/// A config as the docker CLI writes one the file leaves out: parallelism 1, the rest unset.
fn new_config() -> UpdateConfig {
    UpdateConfig {
        parallelism: 1,
        delay: SpecDuration::ZERO,
        failure_action: String::new(),
        monitor: SpecDuration::ZERO,
        max_failure_ratio: 0.0,
        order: String::new(),
    }
}

fn update(spec: &mut ServiceSpec) -> &mut UpdateConfig {
    spec.update_config.get_or_insert_with(new_config)
}

fn rollback(spec: &mut ServiceSpec) -> &mut UpdateConfig {
    spec.rollback_config.get_or_insert_with(new_config)
}

fn fill_text(
    setting: &mut String,
    value: &str,
    why: &'static str,
) -> Option<(String, &'static str)> {
    setting.is_empty().then(|| {
        *setting = value.to_string();
        (value.to_string(), why)
    })
}

fn fill_monitor(setting: &mut SpecDuration, monitor: SpecDuration) -> Option<String> {
    (*setting == SpecDuration::ZERO).then(|| {
        *setting = monitor;
        format_duration(std_duration(monitor))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_names_a_setting_and_a_reason() {
        for row in SAFE_DEFAULTS {
            assert!(!row.setting.is_empty() && !row.why.is_empty());
        }
        let settings: Vec<&str> = SAFE_DEFAULTS.iter().map(|r| r.setting).collect();
        let mut unique = settings.clone();
        unique.dedup();
        assert_eq!(settings, unique);
    }
}
