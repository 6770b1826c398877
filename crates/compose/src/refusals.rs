//! What the Engine refuses in a service that the docker CLI's loader lets through: a spec
//! `docker stack deploy` would send and the engine (or the node, at the task's start) turns
//! down. The dashboard's "edit as compose" and its service form (written as compose) check a
//! text with [`engine_refusals`] before anything is sent, so a refusal names the file's line
//! and column (and the form's field, by [`Refusal::setting`]) instead of a task that never
//! runs. Pure; each rule is defined here once.

use std::collections::BTreeMap;

use crate::error::Location;
use crate::model::{FailureAction, Protocol, Service};
use crate::units::parse_bytes;
use crate::Stack;

/// The least memory the engine lets a task have or reserve (6 MiB; dockerd's
/// `Minimum memory limit allowed is 6MB`).
pub const MIN_MEMORY: u64 = 6 * 1024 * 1024;

/// One setting the engine would refuse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub service: String,
    /// The compose setting, dotted: `deploy.resources.limits.memory`, `ports`,
    /// `logging.options`, `deploy.update_config.max_failure_ratio`, ….
    pub setting: &'static str,
    /// Where the offending value is written.
    pub at: Location,
    /// Why, with the value: `1k is below the engine's minimum of 6M`.
    pub message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.service, self.setting, self.message)
    }
}

/// Every refusal of every service, in the stack's service order then the rules' order.
pub fn engine_refusals(stack: &Stack) -> Vec<Refusal> {
    let mut out = Vec::new();
    for (name, service) in &stack.services {
        let mut refuse = |setting, at, message| {
            out.push(Refusal {
                service: name.clone(),
                setting,
                at,
                message,
            })
        };
        for (setting, at, message) in service_refusals(service) {
            refuse(setting, at, message);
        }
    }
    out
}

type Found = (&'static str, Location, String);

/// A byte count as a stack file writes it: `4M`, `512K`, else `6850 bytes` (tryout 13: a
/// typed `4M` came back as `4194304 bytes`).
fn as_written(bytes: u64) -> String {
    let size = swarmkeeper_units::size(bytes);
    if size.bytes().all(|b| b.is_ascii_digit()) {
        format!("{size} bytes")
    } else {
        size
    }
}

fn service_refusals(service: &Service) -> Vec<Found> {
    let mut found = Vec::new();
    let deploy = service.deploy.as_ref();
    let resources = deploy.and_then(|d| d.resources.as_ref());
    let memory = [
        (
            "deploy.resources.limits.memory",
            resources
                .and_then(|r| r.limits.as_ref())
                .and_then(|l| l.memory.as_ref()),
        ),
        (
            "deploy.resources.reservations.memory",
            resources
                .and_then(|r| r.reservations.as_ref())
                .and_then(|r| r.memory.as_ref()),
        ),
    ];
    for (setting, memory) in memory {
        if let Some(memory) = memory {
            let bytes = memory.value.0;
            if bytes > 0 && bytes < MIN_MEMORY {
                found.push((
                    setting,
                    memory.at,
                    format!(
                        "{} is below the engine's minimum of 6M (6 MiB)",
                        as_written(bytes)
                    ),
                ));
            }
        }
    }
    for (setting, config) in [
        (
            "deploy.update_config.max_failure_ratio",
            deploy.and_then(|d| d.update_config.as_ref()),
        ),
        (
            "deploy.rollback_config.max_failure_ratio",
            deploy.and_then(|d| d.rollback_config.as_ref()),
        ),
    ] {
        let Some(ratio) = config.and_then(|c| c.max_failure_ratio.as_ref()) else {
            continue;
        };
        if let Some(why) = ratio_refused(ratio.value) {
            found.push((setting, ratio.at, why));
        }
    }
    if let Some(config) = deploy.and_then(|d| d.rollback_config.as_ref()) {
        if let Some(action) = &config.failure_action {
            if action.value == FailureAction::Rollback {
                found.push((
                    "deploy.rollback_config.failure_action",
                    action.at,
                    "a rollback that fails can pause or continue, not roll back".to_owned(),
                ));
            }
        }
    }
    if let Some(ports) = &service.ports {
        let mut seen: BTreeMap<(u32, Protocol), ()> = BTreeMap::new();
        for port in &ports.0 {
            let Some(published) = port.published.filter(|p| *p != 0) else {
                continue;
            };
            let protocol = port.protocol.unwrap_or(Protocol::Tcp);
            if seen.insert((published, protocol), ()).is_some() {
                found.push((
                    "ports",
                    port.at,
                    format!("port {published}/{} is published twice", protocol.as_str()),
                ));
            }
        }
    }
    if let Some(logging) = &service.logging {
        for (key, value) in logging.options.iter().flatten() {
            let wrong = match key.as_str() {
                "max-size" => parse_bytes(&value.value).is_err(),
                "max-file" => !value.value.trim().parse::<u32>().is_ok_and(|n| n > 0),
                _ => false,
            };
            if wrong {
                found.push((
                    "logging.options",
                    value.at,
                    format!(
                        "{key}={:?}: max-size is a size like 10m, max-file a number of \
                         files from 1",
                        value.value
                    ),
                ));
            }
        }
    }
    found
}

fn ratio_refused(ratio: f32) -> Option<String> {
    (!(0.0..=1.0).contains(&ratio))
        .then(|| format!("{ratio}: the ratio of failed tasks is a number from 0 to 1"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use super::*;
    use crate::{load, Environment, SourceFile};

    fn refusals(service: &str) -> Vec<(&'static str, u32, String)> {
        let text = format!("services:\n  web:\n    image: nginx\n{service}");
        let variables = HashMap::new();
        let environment = Environment {
            variables: &variables,
            working_dir: Path::new("/"),
            read_file: &|_| Err(std::io::Error::other("no files")),
        };
        let stack = load(
            &[SourceFile {
                name: "s.yml",
                text: &text,
            }],
            &environment,
        )
        .unwrap();
        engine_refusals(&stack)
            .into_iter()
            .map(|r| (r.setting, r.at.line, r.message))
            .collect()
    }

    #[test]
    fn memory_below_six_mib_is_refused_where_it_is_written() {
        let found = refusals(
            "    deploy:\n      resources:\n        limits: {memory: 1k}\n        \
             reservations:\n          memory: 6m\n",
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].0, found[0].1),
            ("deploy.resources.limits.memory", 6)
        );
        assert!(found[0].2.starts_with("1K is below"), "{found:?}");
        let found = refusals("    deploy:\n      resources:\n        reservations: {memory: 5M}\n");
        assert_eq!(found[0].0, "deploy.resources.reservations.memory");
        assert!(found[0].2.starts_with("5M is below"), "{found:?}");
        let found = refusals("    deploy:\n      resources:\n        limits: {memory: 6850}\n");
        assert!(found[0].2.starts_with("6850 bytes is below"), "{found:?}");
        assert!(
            refusals("    deploy:\n      resources:\n        limits: {memory: 0}\n").is_empty()
        );
    }

    #[test]
    fn a_failure_ratio_outside_zero_to_one_is_refused() {
        let found = refusals("    deploy:\n      update_config:\n        max_failure_ratio: 2\n");
        assert_eq!(found[0].0, "deploy.update_config.max_failure_ratio");
        assert_eq!(found[0].1, 6);
        let found =
            refusals("    deploy:\n      rollback_config:\n        max_failure_ratio: -0.5\n");
        assert_eq!(found[0].0, "deploy.rollback_config.max_failure_ratio");
        assert!(
            refusals("    deploy:\n      update_config:\n        max_failure_ratio: 1\n")
                .is_empty()
        );
    }

    #[test]
    fn a_rollback_that_rolls_back_is_refused() {
        let found =
            refusals("    deploy:\n      rollback_config:\n        failure_action: rollback\n");
        assert_eq!(
            (found[0].0, found[0].1),
            ("deploy.rollback_config.failure_action", 6)
        );
        assert!(
            refusals("    deploy:\n      update_config:\n        failure_action: rollback\n")
                .is_empty()
        );
    }

    #[test]
    fn a_port_published_twice_is_refused_at_the_second() {
        let found = refusals("    ports:\n      - 8080:80\n      - 8080:81\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].0, found[0].1), ("ports", 6));
        assert!(found[0].2.contains("8080/tcp"), "{found:?}");
        // Another protocol, or no published port, is another port.
        assert!(refusals(
            "    ports:\n      - 8080:80\n      - 8080:80/udp\n      - 80\n      - 80\n"
        )
        .is_empty());
    }

    #[test]
    fn log_options_the_driver_cannot_read_are_refused() {
        let found = refusals(
            "    logging:\n      driver: local\n      options: {max-size: banana, max-file: \"0\"}\n",
        );
        assert_eq!(found.len(), 2, "{found:?}");
        // Each at its value, on the line of `options` (the block starts a line above).
        assert!(
            found.iter().all(|f| f.0 == "logging.options" && f.1 == 6),
            "{found:?}"
        );
        assert!(refusals(
            "    logging:\n      driver: local\n      options: {max-size: 10m, max-file: \"3\"}\n"
        )
        .is_empty());
    }
}
