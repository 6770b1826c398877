//! The rules. Each looks at one service's [`Facts`], with Swarm's and the Engine's defaults
//! filled in where the file or spec leaves a setting out, because the defaults are what runs.
//! A stack file and the service deployed from it give the same facts, so the same findings.

use swarmkeeper_compose::{Location, Service};
use swarmkeeper_swarm::{FailureAction, RestartCondition, UpdateConfig, UpdateOrder};
use swarmkeeper_units::format_duration;

use crate::facts::{Facts, Update};
use crate::{Rule, Severity};

const LOGGING_NONE: Rule = Rule {
    id: "SK001",
    name: "logging-driver-none",
    severity: Severity::Error,
    summary: "logging driver `none`: the service's logs cannot be read",
    why: "`docker logs` and every log viewer then answer \"configured logging driver does not support reading\": a failing service cannot be debugged",
    fix: "use `driver: local` with `options: {max-size: 10m, max-file: \"3\"}`: bounded on disk and readable",
};

const JSON_FILE_UNBOUNDED: Rule = Rule {
    id: "SK002",
    name: "json-file-without-max-size",
    severity: Severity::Warning,
    summary: "logging driver `json-file` without `max-size`: logs grow without bound",
    why: "json-file keeps every line forever unless `max-size` is set; a chatty task fills the node's disk, and then pulls and new tasks fail on that node",
    fix: "add `options: {max-size: 10m, max-file: \"3\"}`, or use `driver: local`, which rotates by default",
};

const LOGGING_DEFAULT: Rule = Rule {
    id: "SK003",
    name: "logging-not-configured",
    severity: Severity::Info,
    summary: "no `logging`: the daemon's default driver applies",
    why: "the Engine's default is json-file without rotation unless each node's daemon.json says otherwise, so disk use depends on how every node was set up",
    fix: "set `logging: {driver: local, options: {max-size: 10m}}` in the stack file so every node behaves the same",
};

const NO_UPDATE_CONFIG: Rule = Rule {
    id: "SK010",
    name: "no-update-config",
    severity: Severity::Warning,
    summary: "no `update_config`: a failed update pauses with the service down",
    why: "Swarm's default `failure_action: pause` stops a failed rollout where it is: tasks already replaced by a bad image stay broken until someone acts",
    fix: "add `deploy.update_config: {parallelism: 1, delay: 10s, failure_action: rollback, monitor: 30s, order: start-first}`",
};

const FAILURE_ACTION_NOT_ROLLBACK: Rule = Rule {
    id: "SK011",
    name: "failure-action-not-rollback",
    severity: Severity::Warning,
    summary: "`update_config.failure_action` is not `rollback`",
    why: "with `pause` a failed update leaves the service half-updated and down; with `continue` Swarm goes on replacing healthy tasks with failing ones",
    fix: "set `failure_action: rollback` so Swarm returns to the previous spec by itself",
};

const ROLLBACK_WITHOUT_HEALTHCHECK: Rule = Rule {
    id: "SK012",
    name: "rollback-without-healthcheck",
    severity: Severity::Warning,
    summary: "`failure_action: rollback` without a healthcheck",
    why: "without a healthcheck a task counts as running as soon as its process starts: an app that starts but does not serve, or crashes after the monitor window, is never seen as a failed update (unless the image has a HEALTHCHECK)",
    fix: "add a `healthcheck` that probes what users need (an HTTP health endpoint, a query), with `interval`, `timeout` and `retries`",
};

const MONITOR_TOO_SHORT: Rule = Rule {
    id: "SK013",
    name: "monitor-shorter-than-healthcheck",
    severity: Severity::Warning,
    summary: "`monitor` is shorter than the healthcheck needs to report a failure",
    why: "a task only turns unhealthy after `retries` failed probes `interval` apart, each up to `timeout`; if `monitor` ends first, Swarm has already counted the task as updated",
    fix: "set `monitor` to at least `interval` × `retries` + `timeout` of the healthcheck",
};

const START_FIRST_HOST_PORTS: Rule = Rule {
    id: "SK014",
    name: "start-first-with-host-ports",
    severity: Severity::Error,
    summary: "`order: start-first` with ports published in `mode: host`",
    why: "start-first runs the new task before stopping the old one, but only one task per node can bind a host-mode port: the new task stays pending on every node the old ones hold",
    fix: "use `order: stop-first` for services that publish host-mode ports, or publish through the ingress mesh (`mode: ingress`)",
};

const START_FIRST_SHARED_MOUNT: Rule = Rule {
    id: "SK015",
    name: "start-first-with-shared-mount",
    severity: Severity::Warning,
    summary: "`order: start-first` on a service that writes to a named volume or bind mount",
    why: "start-first starts the new task before it stops the old one, on the same node when the node keeps it: both then write the same volume or host directory at once — a database's files can be corrupted, or the new task cannot take the data's lock and the update fails",
    fix: "use `order: stop-first` for a service that writes to a named volume or bind mount (or mount it `read_only: true` where the service only reads it)",
};

const IMAGE_NOT_PINNED: Rule = Rule {
    id: "SK020",
    name: "image-without-version",
    severity: Severity::Warning,
    summary: "image without a tag, or tagged `latest`",
    why: "a moving tag means nodes can run different builds, and a rollback returns to whatever `latest` is now rather than to the previous release",
    fix: "deploy an immutable tag per release (`app:1.4.2` or the commit id), or pin a digest (`app@sha256:…`)",
};

const RESTART_FOREVER: Rule = Rule {
    id: "SK021",
    name: "restart-any-without-max-attempts",
    severity: Severity::Warning,
    summary: "`restart_policy.condition: any` without `max_attempts`",
    why: "a task that crashes on start is restarted forever: each attempt is a new container with its own logs, the crash loop burns CPU and disk on the node, and the service looks alive in `docker service ls`",
    fix: "set `max_attempts` (with a `window`, such as `max_attempts: 5, window: 2m`) so a broken task stops and shows as failed",
};

const PARALLELISM_ZERO: Rule = Rule {
    id: "SK030",
    name: "parallelism-zero",
    severity: Severity::Warning,
    summary: "`parallelism: 0` replaces every task at once",
    why: "all tasks are stopped and restarted together, so the service is down for the whole update and a bad image takes every replica down at once",
    fix: "set `parallelism: 1` (or a small fraction of the replicas)",
};

const DELAY_NOT_SHORTER_THAN_MONITOR: Rule = Rule {
    id: "SK031",
    name: "delay-not-shorter-than-monitor",
    severity: Severity::Warning,
    summary: "update `delay` is not shorter than `monitor`, with `failure_action: rollback`",
    why: "Swarm watches each updated batch only for `monitor`; with a longer wait before the next batch, a task that fails late in the wait is not counted and the update rolls on",
    fix: "make `monitor` longer than `delay` (for example `delay: 10s`, `monitor: 30s`)",
};

const ROLLBACK_OF_ROLLBACK: Rule = Rule {
    id: "SK032",
    name: "rollback-config-failure-action-rollback",
    severity: Severity::Error,
    summary: "`rollback_config.failure_action: rollback` is not valid",
    why: "a rollback cannot roll back: Swarm accepts only `pause` or `continue` when a rollback fails, and refuses the service spec",
    fix: "set `rollback_config.failure_action` to `pause` (stop and wait for an operator) or `continue`",
};

const IGNORED_KEY: Rule = Rule {
    id: "SK040",
    name: "ignored-by-stack-deploy",
    severity: Severity::Info,
    summary: "a key that `docker stack deploy` ignores",
    why: "these keys only mean something to `docker compose`; in a stack they do nothing, which surprises whoever relies on them",
    fix: "remove the key, or use the Swarm equivalent (`deploy.restart_policy` for `restart`, an image for `build`)",
};

const AUTODEPLOY_LABEL: Rule = Rule {
    id: "SK050",
    name: "autodeploy-label-invalid",
    severity: Severity::Error,
    summary: "a `swarmkeeper.autodeploy` label auto-deploy cannot follow",
    why: "the server's auto-deploy reads these labels with this same rule and does not follow such a service: pushes to its tag are never rolled out",
    fix: "set `swarmkeeper.autodeploy` to `true` or `false`, and `swarmkeeper.autodeploy.interval` to a duration of at least 10s (a registry hook rolls a push out at once)",
};

/// Every rule, in id order.
pub static RULES: &[Rule] = &[
    LOGGING_NONE,
    JSON_FILE_UNBOUNDED,
    LOGGING_DEFAULT,
    NO_UPDATE_CONFIG,
    FAILURE_ACTION_NOT_ROLLBACK,
    ROLLBACK_WITHOUT_HEALTHCHECK,
    MONITOR_TOO_SHORT,
    START_FIRST_HOST_PORTS,
    START_FIRST_SHARED_MOUNT,
    IMAGE_NOT_PINNED,
    RESTART_FOREVER,
    PARALLELISM_ZERO,
    DELAY_NOT_SHORTER_THAN_MONITOR,
    ROLLBACK_OF_ROLLBACK,
    IGNORED_KEY,
    AUTODEPLOY_LABEL,
];

/// A rule, where it applies (`None` for a running service), and what was found there.
pub(crate) type Hit = (&'static Rule, Option<Location>, String);

/// Every rule on one service of a stack file, the file-only ones (keys the Engine never sees)
/// included.
pub(crate) fn check_file_service(service: &Service) -> Vec<Hit> {
    let mut hits = check(&Facts::of_file(service));
    for (key, at) in service.ignored_keys() {
        hits.push((
            &IGNORED_KEY,
            Some(at),
            format!("`{key}` is ignored by docker stack deploy"),
        ));
    }
    hits
}

/// The rules whose settings survive into the Engine API spec, on one service's facts.
pub(crate) fn check(facts: &Facts) -> Vec<Hit> {
    let mut hits = Vec::new();
    logging(facts, &mut hits);
    updates(facts, &mut hits);
    image(facts, &mut hits);
    restart(facts, &mut hits);
    autodeploy(facts, &mut hits);
    hits
}

/// The auto-deploy labels, read by the auto-deploy loop's own rule
/// ([`swarmkeeper_autodeploy::settings`]), so lint and the server never disagree.
fn autodeploy(facts: &Facts, hits: &mut Vec<Hit>) {
    if let Err(error) = swarmkeeper_autodeploy::settings(&facts.labels) {
        hits.push((&AUTODEPLOY_LABEL, facts.at, error.to_string()));
    }
}

fn logging(facts: &Facts, hits: &mut Vec<Hit>) {
    let Some(logging) = &facts.logging else {
        hits.push((
            &LOGGING_DEFAULT,
            facts.at,
            facts.say(
                "no `logging` configured",
                "no log driver in the spec: the daemon's default applies",
            ),
        ));
        return;
    };
    let Some(driver) = &logging.driver else {
        return;
    };
    match driver.value.as_str() {
        "none" => hits.push((
            &LOGGING_NONE,
            driver.at,
            "logging driver is `none`".to_string(),
        )),
        "json-file" if !logging.has_max_size => hits.push((
            &JSON_FILE_UNBOUNDED,
            driver.at,
            facts.say(
                "logging driver `json-file` has no `max-size`",
                "logging driver `json-file` without `max-size`",
            ),
        )),
        _ => {}
    }
}

fn updates(facts: &Facts, hits: &mut Vec<Hit>) {
    if facts.job {
        // Jobs run to completion; there is no rollout of long-running tasks to protect.
        return;
    }
    if let Some(rollback) = &facts.rollback {
        if let Some(action) = rollback
            .failure_action
            .as_ref()
            .filter(|a| a.value == FailureAction::Rollback)
        {
            hits.push((
                &ROLLBACK_OF_ROLLBACK,
                action.at,
                facts.say(
                    "`rollback_config.failure_action` is `rollback`",
                    "rollback failure action is `rollback`",
                ),
            ));
        }
        parallelism(facts, rollback, ("rollback_config", "rollback"), hits);
    }
    let Some(update) = &facts.update else {
        hits.push((
            &NO_UPDATE_CONFIG,
            facts.at,
            facts.say(
                "no `update_config`: a failed update pauses (Swarm's default)",
                "no update config",
            ),
        ));
        return;
    };
    parallelism(facts, update, ("update_config", "update"), hits);
    let rollback = match &update.failure_action {
        Some(action) if action.value == FailureAction::Rollback => Some(action),
        Some(action) => {
            hits.push((
                &FAILURE_ACTION_NOT_ROLLBACK,
                action.at,
                facts.say(
                    format!("`failure_action` is `{}`", action.value),
                    format!("update failure action is `{}`", action.value),
                ),
            ));
            None
        }
        None => {
            hits.push((
                &FAILURE_ACTION_NOT_ROLLBACK,
                update.at,
                "`update_config` has no `failure_action`: a failed update pauses (Swarm's default)"
                    .to_string(),
            ));
            None
        }
    };
    let monitor = update
        .monitor
        .as_ref()
        .map_or(UpdateConfig::default().monitor, |m| m.value);
    let monitor_at = update.monitor.as_ref().map_or(update.at, |m| m.at);
    match (rollback, facts.health_detection) {
        (Some(action), None) => hits.push((
            &ROLLBACK_WITHOUT_HEALTHCHECK,
            action.at,
            facts.say(
                "`failure_action: rollback` but the service has no healthcheck",
                "update failure action is `rollback` but the service has no healthcheck",
            ),
        )),
        (_, Some(detection)) if monitor < detection => hits.push((
            &MONITOR_TOO_SHORT,
            monitor_at,
            format!(
                "`monitor` is {}, but the healthcheck needs up to {} to report a failure",
                format_duration(monitor),
                format_duration(detection)
            ),
        )),
        _ => {}
    }
    if let Some(delay) = &update.delay {
        if rollback.is_some() && !delay.value.is_zero() && delay.value >= monitor {
            hits.push((
                &DELAY_NOT_SHORTER_THAN_MONITOR,
                delay.at,
                format!(
                    "`delay` is {}, `monitor` is {}",
                    format_duration(delay.value),
                    format_duration(monitor)
                ),
            ));
        }
    }
    if let Some(order) = update
        .order
        .as_ref()
        .filter(|o| o.value == UpdateOrder::StartFirst)
    {
        if let Some(port) = &facts.host_port {
            let message = if facts.global {
                format!("`order: start-first` in global mode with host port {port}: the update can never finish, every node already runs a task holding the port")
            } else {
                format!("`order: start-first` with host port {port}: new tasks wait for a node where the port is free")
            };
            hits.push((&START_FIRST_HOST_PORTS, order.at, message));
        }
        if let Some(mount) = &facts.shared_mount {
            hits.push((
                &START_FIRST_SHARED_MOUNT,
                order.at,
                format!(
                    "`order: start-first` with mount {}, which the old and the new task write at once",
                    mount.value
                ),
            ));
        }
    }
}

/// `section` names the config in a file (`update_config`), `word` in a spec (`update`).
fn parallelism(facts: &Facts, config: &Update, (section, word): (&str, &str), hits: &mut Vec<Hit>) {
    if let Some(parallelism) = config.parallelism.as_ref().filter(|p| p.value == 0) {
        hits.push((
            &PARALLELISM_ZERO,
            parallelism.at,
            facts.say(
                format!("`{section}.parallelism` is 0: all tasks at once"),
                format!("{word} parallelism is 0"),
            ),
        ));
    }
}

fn image(facts: &Facts, hits: &mut Vec<Hit>) {
    let Some(image) = &facts.image else {
        return;
    };
    if image.value.contains('@') {
        return;
    }
    // A tag follows the last `:` after the last `/`; a `:` before it belongs to a registry port.
    let name = image.value.rsplit('/').next().unwrap_or(&image.value);
    let message = match name.split_once(':') {
        None => format!("image `{}` has no tag (it means `latest`)", image.value),
        Some((_, "")) => format!(
            "image `{}` has an empty tag (an unset variable?)",
            image.value
        ),
        Some((_, "latest")) => format!("image `{}` is tagged `latest`", image.value),
        Some(_) => return,
    };
    hits.push((&IMAGE_NOT_PINNED, image.at, message));
}

/// Only a restart policy that is written counts: without one, Swarm's default (restart on any
/// exit, without limit) applies to nearly every service, and flagging them all would bury the
/// findings that matter.
fn restart(facts: &Facts, hits: &mut Vec<Hit>) {
    let Some(policy) = &facts.restart else {
        return;
    };
    let condition = policy.condition.as_ref();
    let restarts_always = condition.is_none_or(|c| c.value == RestartCondition::Any);
    // Swarm reads `max_attempts: 0` as no limit.
    if restarts_always && policy.max_attempts.unwrap_or(0) == 0 {
        hits.push((
            &RESTART_FOREVER,
            condition.map_or(policy.at, |c| c.at),
            facts.say(
                "restart condition `any` without `max_attempts`: a crashing task restarts forever",
                "restart condition `any` without a maximum of attempts",
            ),
        ));
    }
}
