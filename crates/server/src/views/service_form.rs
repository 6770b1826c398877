//! The service form: what a create or edit form holds, read from a running service's spec
//! ([`ServiceForm::of_view`]) and turned into the spec to send ([`build`]).
//!
//! A form is written as one service of a compose file (each field its own lines, every value
//! quoted, `$` escaped) and read back by `swarmkeeper_compose`, so the form takes the stack
//! file's grammars — ports, mounts, durations, sizes, CPUs — with the same messages, and a
//! compose error's line names the form field that wrote it. Pure: the shell passes the
//! secrets' and configs' ids in, and lays the result over the running spec
//! (`engine::overlay_form_fields`), so fields the form does not show (networks, healthcheck,
//! …) stay as they are.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};
use swarmkeeper_compose::spec::ServiceSpec;
use swarmkeeper_compose::{
    bare_variable, engine_refusals, load, network_name, parse_bytes, parse_nano_cpus, reference,
    service_spec, ComposeError, Environment, Location, SourceFile, Stack, LABEL_IMAGE,
    LABEL_NAMESPACE,
};
use swarmkeeper_engine::{PublishMode, ServiceMode, ServiceView, UpdateConfig, COMPOSE_ONLY_KEYS};
use swarmkeeper_lint::mode_change;
use swarmkeeper_rollout::preflight::{Unmet, Unplaceable};
use swarmkeeper_rollout::{shown_entry, HIDDEN};
use swarmkeeper_units::format_duration;

use super::FieldError;

/// The form as posted (and its JSON twin, field for field). Lists are one item a line.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceForm {
    /// The service's whole name (`shop_web` for service `web` of stack `shop`).
    #[serde(deserialize_with = "text")]
    pub name: String,
    /// `app:1.2`, `registry:5000/app@sha256:…`.
    #[serde(deserialize_with = "text")]
    pub image: String,
    /// The image's entrypoint replaced, as shell words; empty: the image's.
    #[serde(deserialize_with = "text")]
    pub entrypoint: String,
    /// The command (arguments), as shell words; empty: the image's.
    #[serde(deserialize_with = "text")]
    pub command: String,
    /// `KEY=VALUE` lines.
    #[serde(deserialize_with = "text")]
    pub env: String,
    /// Compose port lines: `8080:80`, `53:53/udp`, or `published=8080,target=80,mode=host`.
    #[serde(deserialize_with = "text")]
    pub ports: String,
    /// Compose volume lines (`data:/var/lib/data`, `/srv:/srv:ro`) or
    /// `type=tmpfs,target=/tmp` (the keys of the long syntax; options dotted:
    /// `volume.nocopy`, `volume.subpath`, `tmpfs.size`, `tmpfs.mode` in octal,
    /// `bind.propagation`; a named volume's driver `volume.driver` and
    /// `volume.driver_opts.KEY`). A part holding a comma is quoted, as the docker CLI's
    /// `--mount` takes it: `"volume.driver_opts.o=addr=10.0.0.1,rw"`.
    #[serde(deserialize_with = "text")]
    pub mounts: String,
    /// Secret lines: `NAME` (read at `/run/secrets/NAME`) or `NAME:TARGET`.
    #[serde(deserialize_with = "text")]
    pub secrets: String,
    /// Config lines: `NAME` (at `/NAME`) or `NAME:/PATH`.
    #[serde(deserialize_with = "text")]
    pub configs: String,
    /// CPUs (`0.5`) and memory (`256M`) a task may use; empty: no limit.
    #[serde(deserialize_with = "text")]
    pub limit_cpus: String,
    #[serde(deserialize_with = "text")]
    pub limit_memory: String,
    /// CPUs and memory reserved for each task.
    #[serde(deserialize_with = "text")]
    pub reserve_cpus: String,
    #[serde(deserialize_with = "text")]
    pub reserve_memory: String,
    /// Placement constraint lines: `node.role==worker`.
    #[serde(deserialize_with = "text")]
    pub constraints: String,
    /// Spread preference lines: `node.labels.zone`.
    #[serde(deserialize_with = "text")]
    pub preferences: String,
    /// `replicated` (the default) or `global`.
    #[serde(deserialize_with = "text")]
    pub mode: String,
    /// For `replicated`; empty: 1 for a new service, the current count for an edit.
    #[serde(deserialize_with = "text")]
    pub replicas: String,
    /// `any`, `on-failure`, `none`; empty: no restart policy written (Swarm's default).
    #[serde(deserialize_with = "text")]
    pub restart_condition: String,
    #[serde(deserialize_with = "text")]
    pub restart_delay: String,
    #[serde(deserialize_with = "text")]
    pub restart_max_attempts: String,
    #[serde(deserialize_with = "text")]
    pub restart_window: String,
    #[serde(deserialize_with = "text")]
    pub update_parallelism: String,
    #[serde(deserialize_with = "text")]
    pub update_delay: String,
    /// `pause`, `continue`, `rollback`.
    #[serde(deserialize_with = "text")]
    pub update_failure_action: String,
    #[serde(deserialize_with = "text")]
    pub update_monitor: String,
    #[serde(deserialize_with = "text")]
    pub update_max_failure_ratio: String,
    /// `stop-first`, `start-first`.
    #[serde(deserialize_with = "text")]
    pub update_order: String,
    #[serde(deserialize_with = "text")]
    pub rollback_parallelism: String,
    #[serde(deserialize_with = "text")]
    pub rollback_delay: String,
    #[serde(deserialize_with = "text")]
    pub rollback_failure_action: String,
    #[serde(deserialize_with = "text")]
    pub rollback_monitor: String,
    #[serde(deserialize_with = "text")]
    pub rollback_max_failure_ratio: String,
    #[serde(deserialize_with = "text")]
    pub rollback_order: String,
    /// The service's labels, `KEY=VALUE` lines.
    #[serde(deserialize_with = "text")]
    pub labels: String,
    /// `local`, `json-file`, …; empty: the node's default.
    #[serde(deserialize_with = "text")]
    pub log_driver: String,
    /// `KEY=VALUE` lines: `max-size=10m`.
    #[serde(deserialize_with = "text")]
    pub log_options: String,
}

/// A form field as JSON may send it: text, a number, a boolean, a list (one item a line) or
/// an object (`KEY=VALUE` lines); `null` is empty.
fn text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    use serde_json::Value;
    fn line(value: &Value) -> String {
        match value {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
    Ok(match Value::deserialize(deserializer)? {
        Value::Array(items) => items.iter().map(line).collect::<Vec<_>>().join("\n"),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", line(v)))
            .collect::<Vec<_>>()
            .join("\n"),
        other => line(&other),
    })
}

/// One field of the form as the page shows it.
#[derive(Clone, Debug, Serialize)]
pub struct FieldRow {
    pub name: &'static str,
    pub label: &'static str,
    /// What the field takes, in a few words.
    pub hint: &'static str,
    pub value: String,
    /// A text area (one item a line) rather than one line.
    pub multiline: bool,
    pub error: Option<String>,
}

/// `(field, label, hint, multiline)`, in the form's order.
const ROWS: &[(&str, &str, &str, bool)] = &[
    (
        "name",
        "Name",
        "the service's whole name; a stack's service is STACK_NAME",
        false,
    ),
    ("image", "Image", "repository:tag or @sha256 digest", false),
    (
        "entrypoint",
        "Entrypoint",
        "shell words; empty: the image's",
        false,
    ),
    (
        "command",
        "Command",
        "shell words; empty: the image's",
        false,
    ),
    ("env", "Environment", "KEY=VALUE, one a line", true),
    (
        "ports",
        "Ports",
        "8080:80, 53:53/udp, or published=8080,target=80,mode=host",
        true,
    ),
    (
        "mounts",
        "Mounts",
        "data:/data, /srv:/srv:ro, type=volume,source=data,target=/data,volume.nocopy=true,volume.driver=local,volume.driver_opts.type=nfs,\"volume.driver_opts.o=addr=10.0.0.1,rw\", or type=tmpfs,target=/tmp,tmpfs.size=64m,tmpfs.mode=1777 (octal)",
        true,
    ),
    (
        "secrets",
        "Secrets",
        "NAME or NAME:TARGET, one a line; the file's owner and mode after a comma: NAME:TARGET,uid=70,gid=70,mode=0400",
        true,
    ),
    (
        "configs",
        "Configs",
        "NAME or NAME:/PATH, one a line; owner and mode as for secrets",
        true,
    ),
    ("limit_cpus", "CPU limit", "CPUs, like 0.5", false),
    ("limit_memory", "Memory limit", "bytes or 256M", false),
    ("reserve_cpus", "CPU reservation", "CPUs", false),
    (
        "reserve_memory",
        "Memory reservation",
        "bytes or 128M",
        false,
    ),
    (
        "constraints",
        "Placement constraints",
        "node.role==worker, one a line",
        true,
    ),
    (
        "preferences",
        "Spread over",
        "node.labels.zone, one a line",
        true,
    ),
    (
        "mode",
        "Mode",
        "replicated or global; Swarm cannot change a service's mode once created",
        false,
    ),
    (
        "replicas",
        "Replicas",
        "for replicated; empty keeps the current count",
        false,
    ),
    (
        "restart_condition",
        "Restart condition",
        "any, on-failure or none",
        false,
    ),
    ("restart_delay", "Restart delay", "like 5s", false),
    (
        "restart_max_attempts",
        "Restart attempts",
        "0: no limit",
        false,
    ),
    ("restart_window", "Restart window", "like 1m", false),
    (
        "update_parallelism",
        "Update parallelism",
        "tasks at once; 0: all",
        false,
    ),
    (
        "update_delay",
        "Update delay",
        "between batches, like 10s",
        false,
    ),
    (
        "update_failure_action",
        "Update failure action",
        "pause, continue or rollback",
        false,
    ),
    ("update_monitor", "Update monitor", "like 30s", false),
    (
        "update_max_failure_ratio",
        "Update max failure ratio",
        "0 to 1",
        false,
    ),
    (
        "update_order",
        "Update order",
        "stop-first or start-first",
        false,
    ),
    (
        "rollback_parallelism",
        "Rollback parallelism",
        "tasks at once; 0: all",
        false,
    ),
    ("rollback_delay", "Rollback delay", "like 0s", false),
    (
        "rollback_failure_action",
        "Rollback failure action",
        "pause or continue",
        false,
    ),
    ("rollback_monitor", "Rollback monitor", "like 5s", false),
    (
        "rollback_max_failure_ratio",
        "Rollback max failure ratio",
        "0 to 1",
        false,
    ),
    (
        "rollback_order",
        "Rollback order",
        "stop-first or start-first",
        false,
    ),
    ("labels", "Labels", "KEY=VALUE, one a line", true),
    (
        "log_driver",
        "Log driver",
        "local, json-file, …; empty: the node's default",
        false,
    ),
    (
        "log_options",
        "Log options",
        "max-size=10m, one a line",
        true,
    ),
];

/// The form's fields with their values and the message next to each that is wrong.
pub fn field_rows(form: &ServiceForm, errors: &[FieldError]) -> Vec<FieldRow> {
    ROWS.iter()
        .map(|&(name, label, hint, multiline)| FieldRow {
            name,
            label,
            hint,
            value: form.value(name).to_owned(),
            multiline,
            error: errors
                .iter()
                .find(|e| e.field == name)
                .map(|e| e.message.clone()),
        })
        .collect()
}

/// Each field's name, for the template and the JSON twin's errors.
pub const FIELDS: &[&str] = &[
    "name",
    "image",
    "entrypoint",
    "command",
    "env",
    "ports",
    "mounts",
    "secrets",
    "configs",
    "limit_cpus",
    "limit_memory",
    "reserve_cpus",
    "reserve_memory",
    "constraints",
    "preferences",
    "mode",
    "replicas",
    "restart_condition",
    "restart_delay",
    "restart_max_attempts",
    "restart_window",
    "update_parallelism",
    "update_delay",
    "update_failure_action",
    "update_monitor",
    "update_max_failure_ratio",
    "update_order",
    "rollback_parallelism",
    "rollback_delay",
    "rollback_failure_action",
    "rollback_monitor",
    "rollback_max_failure_ratio",
    "rollback_order",
    "labels",
    "log_driver",
    "log_options",
];

/// What the form's spec may refer to outside itself.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// The stack the service belongs to (`com.docker.stack.namespace`); `None`: a service of
    /// its own.
    pub stack: Option<String>,
    /// Secret and config ids by name.
    pub secrets: HashMap<String, String>,
    pub configs: HashMap<String, String>,
    /// Network ids by name: the networks a compose text's `networks:` may attach to.
    pub networks: HashMap<String, String>,
    /// The mode of each service that runs already, by its whole name: Swarm cannot change it.
    pub modes: HashMap<String, ServiceMode>,
    /// The environment (`KEY=VALUE` entries) of each service that runs already, by its whole
    /// name: a credential shown as [`HIDDEN`] keeps its value from here ([`keep_hidden`]).
    pub env: HashMap<String, Vec<String>>,
}

/// `env`'s `KEY=VALUE` entries as shown: the non-empty value of a variable that
/// [`swarmkeeper_rollout::holds_credential`] replaced by [`HIDDEN`], every other entry as it is.
pub fn shown_env(env: &[String]) -> Vec<String> {
    env.iter().map(|entry| shown_entry(entry, HIDDEN)).collect()
}

/// Gives each entry of `env` still exactly as the service's entry of that variable is shown
/// (`current`, its `KEY=VALUE` entries, shown by [`shown_env`]: `KEY=<hidden>`, or a URL
/// with `<hidden>` for its password) the service's entry, so saving a page as shown changes
/// nothing and the placeholder never reaches the engine; a value typed in its place replaces
/// it, a variable removed stays removed. `Err(KEY)`: an entry still holds [`HIDDEN`] but is
/// not how the service's `KEY` is shown (a new or renamed variable, or a URL changed around
/// its hidden password), whose value only the operator can type.
pub fn keep_hidden(env: &mut [String], current: &[String]) -> Result<(), String> {
    for entry in env.iter_mut() {
        let Some((key, value)) = entry.split_once('=') else {
            continue;
        };
        if !value.contains(HIDDEN) {
            continue;
        }
        let key = key.to_owned();
        let kept = current
            .iter()
            .find(|c| {
                c.split_once('=').is_some_and(|(k, _)| k == key) && shown_entry(c, HIDDEN) == *entry
            })
            .ok_or_else(|| key.clone())?;
        *entry = kept.clone();
    }
    Ok(())
}

/// Why a variable left with [`HIDDEN`] is refused ([`keep_hidden`]'s `Err`).
fn hidden_refusal(key: &str) -> String {
    format!(
        "{key}: {HIDDEN} keeps a value only for a variable the service has, left as shown: \
         type its value"
    )
}

/// A form made a spec.
#[derive(Clone, Debug, PartialEq)]
pub struct Built {
    /// The Engine API spec of the fields the form holds (no networks: an edit keeps the
    /// service's, a create attaches none, as `docker service create` does), typed: the deploy
    /// engine completes it (`deploy::complete_specs`) before it becomes JSON.
    pub spec: ServiceSpec,
    /// The compose text the form was read as, as a preview shows it: each credential's value
    /// [`HIDDEN`] ([`shown_env`]; tryout 13: the value just typed was printed below the change
    /// line that hides it).
    pub compose: String,
}

impl Built {
    /// The spec as the engine takes it, before the deploy engine completes it.
    pub fn json(&self) -> serde_json::Value {
        serde_json::to_value(&self.spec).expect("a service spec serialises")
    }
}

/// The Swarm service name grammar (swarmkit's `validateName`): letters and digits, with `-`
/// or `_` between them, at most 63 characters.
pub fn check_service_name(name: &str) -> Result<(), FieldError> {
    let refuse = |why: &str| Err(FieldError::new("name", format!("{name:?} {why}")));
    if name.is_empty() {
        return Err(FieldError::new("name", "a name is required".to_owned()));
    }
    if name.len() > 63 {
        return refuse("is longer than 63 characters");
    }
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !edge(name.chars().next()) || !edge(name.chars().last()) {
        return refuse("must start and end with a letter or digit");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return refuse("may hold only letters, digits, '-' and '_'");
    }
    Ok(())
}

impl ServiceForm {
    /// The form of a running service, from its spec read typed: building it again gives the
    /// same fields back.
    pub fn of_view(view: &ServiceView) -> ServiceForm {
        let lines = |items: &[String]| items.join("\n");
        let pairs = |map: &BTreeMap<String, String>| {
            map.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let (mode, replicas) = match &view.mode {
            ServiceMode::Global => ("global", String::new()),
            other => ("replicated", other.replicas().unwrap_or(1).to_string()),
        };
        let labels: BTreeMap<String, String> = view
            .labels
            .iter()
            .filter(|(k, _)| k.as_str() != LABEL_NAMESPACE && k.as_str() != LABEL_IMAGE)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let cpus = |nano: u64| {
            if nano == 0 {
                String::new()
            } else {
                let text = format!("{}.{:09}", nano / 1_000_000_000, nano % 1_000_000_000);
                text.trim_end_matches('0').trim_end_matches('.').to_owned()
            }
        };
        let memory = |bytes: u64| {
            if bytes == 0 {
                String::new()
            } else {
                swarmkeeper_units::size(bytes)
            }
        };
        let mut form = ServiceForm {
            name: view.name.clone(),
            image: written_image(view),
            entrypoint: shell_words(&view.command),
            command: shell_words(&view.args),
            env: lines(&shown_env(&view.env)),
            ports: view
                .ports
                .iter()
                .map(|p| {
                    if p.publish_mode == PublishMode::Host {
                        format!(
                            "published={},target={},protocol={},mode=host",
                            p.published_port, p.target_port, p.protocol
                        )
                    } else if p.published_port == 0 {
                        format!("{}/{}", p.target_port, p.protocol)
                    } else {
                        format!("{}:{}/{}", p.published_port, p.target_port, p.protocol)
                    }
                })
                .collect::<Vec<_>>()
                .join("\n"),
            mounts: view
                .mounts
                .iter()
                .map(|m| match (m.kind.as_str(), mount_options(m)) {
                    ("volume" | "bind", options) if !m.source.is_empty() && options.is_empty() => {
                        format!(
                            "{}:{}{}",
                            m.source,
                            m.target,
                            if m.read_only { ":ro" } else { "" }
                        )
                    }
                    (kind, options) => format!(
                        "type={kind},target={}{}{}{options}",
                        m.target,
                        if m.source.is_empty() {
                            String::new()
                        } else {
                            format!(",source={}", m.source)
                        },
                        if m.read_only { ",read_only=true" } else { "" }
                    ),
                })
                .collect::<Vec<_>>()
                .join("\n"),
            secrets: view
                .secrets
                .iter()
                .map(|s| file_line_of(s, &s.name))
                .collect::<Vec<_>>()
                .join("\n"),
            configs: view
                .configs
                .iter()
                .filter(|c| !c.target.is_empty())
                .map(|c| file_line_of(c, &format!("/{}", c.name)))
                .collect::<Vec<_>>()
                .join("\n"),
            limit_cpus: cpus(view.limits.nano_cpus),
            limit_memory: memory(view.limits.memory_bytes),
            reserve_cpus: cpus(view.reservations.nano_cpus),
            reserve_memory: memory(view.reservations.memory_bytes),
            constraints: lines(&view.constraints),
            preferences: lines(&view.spread_over),
            mode: mode.to_owned(),
            replicas,
            labels: pairs(&labels),
            log_driver: view
                .log_driver
                .as_ref()
                .map(|d| d.name.clone())
                .unwrap_or_default(),
            log_options: view
                .log_driver
                .as_ref()
                .map(|d| pairs(&d.options))
                .unwrap_or_default(),
            ..ServiceForm::default()
        };
        if let Some(restart) = &view.restart_policy {
            form.restart_condition = restart.condition.as_str().to_owned();
            form.restart_delay = format_duration(restart.delay);
            form.restart_max_attempts = restart.max_attempts.to_string();
            form.restart_window = format_duration(restart.window);
        }
        if view.update_config.written {
            let [p, d, f, m, r, o] = update_fields(&view.update_config);
            (
                form.update_parallelism,
                form.update_delay,
                form.update_failure_action,
                form.update_monitor,
                form.update_max_failure_ratio,
                form.update_order,
            ) = (p, d, f, m, r, o);
        }
        if view.rollback_config.written {
            let [p, d, f, m, r, o] = update_fields(&view.rollback_config);
            (
                form.rollback_parallelism,
                form.rollback_delay,
                form.rollback_failure_action,
                form.rollback_monitor,
                form.rollback_max_failure_ratio,
                form.rollback_order,
            ) = (p, d, f, m, r, o);
        }
        form
    }

    /// The form's value of `field` (one of [`FIELDS`]).
    pub fn value(&self, field: &str) -> &str {
        match field {
            "name" => &self.name,
            "image" => &self.image,
            "entrypoint" => &self.entrypoint,
            "command" => &self.command,
            "env" => &self.env,
            "ports" => &self.ports,
            "mounts" => &self.mounts,
            "secrets" => &self.secrets,
            "configs" => &self.configs,
            "limit_cpus" => &self.limit_cpus,
            "limit_memory" => &self.limit_memory,
            "reserve_cpus" => &self.reserve_cpus,
            "reserve_memory" => &self.reserve_memory,
            "constraints" => &self.constraints,
            "preferences" => &self.preferences,
            "mode" => &self.mode,
            "replicas" => &self.replicas,
            "restart_condition" => &self.restart_condition,
            "restart_delay" => &self.restart_delay,
            "restart_max_attempts" => &self.restart_max_attempts,
            "restart_window" => &self.restart_window,
            "update_parallelism" => &self.update_parallelism,
            "update_delay" => &self.update_delay,
            "update_failure_action" => &self.update_failure_action,
            "update_monitor" => &self.update_monitor,
            "update_max_failure_ratio" => &self.update_max_failure_ratio,
            "update_order" => &self.update_order,
            "rollback_parallelism" => &self.rollback_parallelism,
            "rollback_delay" => &self.rollback_delay,
            "rollback_failure_action" => &self.rollback_failure_action,
            "rollback_monitor" => &self.rollback_monitor,
            "rollback_max_failure_ratio" => &self.rollback_max_failure_ratio,
            "rollback_order" => &self.rollback_order,
            "labels" => &self.labels,
            "log_driver" => &self.log_driver,
            "log_options" => &self.log_options,
            _ => "",
        }
    }
}

/// The image as the form shows it: for a stack's service pinned by its deploy, the reference
/// the stack file wrote (`com.docker.stack.image`), which a deploy pins again, as
/// `docker stack deploy` and `swarmkeeper deploy` do with an unchanged file; else the image
/// the spec runs. Showing the pin would write it into the stack's label as well.
fn written_image(view: &ServiceView) -> String {
    let running = view.image.to_string();
    let Some(written) = view.labels.get(LABEL_IMAGE) else {
        return running;
    };
    // A deploy pins `app` as `app:latest@sha256:…`.
    let pinned_from_written = view.image.digest.is_some()
        && !written.contains('@')
        && (view.image.name == *written || view.image.name == format!("{written}:latest"));
    if pinned_from_written {
        written.clone()
    } else {
        running
    }
}

fn update_fields(config: &UpdateConfig) -> [String; 6] {
    [
        config.parallelism.to_string(),
        format_duration(config.delay),
        config.failure_action.as_str().to_owned(),
        format_duration(config.monitor),
        config.max_failure_ratio.to_string(),
        config.order.as_str().to_owned(),
    ]
}

/// Words joined so that the docker CLI's shell splitting gives them back.
fn shell_words(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            if !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c))
            {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The compose text being written, with the form field that wrote each line.
struct Writer {
    text: String,
    /// `owners[line - 1]`: the field of that line.
    owners: Vec<&'static str>,
}

impl Writer {
    fn line(&mut self, field: &'static str, indent: usize, text: &str) {
        self.text.push_str(&" ".repeat(indent));
        self.text.push_str(text);
        self.text.push('\n');
        self.owners.push(field);
    }

    fn owner(&self, line: u32) -> Option<&'static str> {
        self.owners
            .get(usize::try_from(line).ok()?.checked_sub(1)?)
            .copied()
    }
}

/// A value as a YAML scalar that compose reads back as written: a number stays a number
/// (compose wants them for counts and ports), anything else is a quoted string whose `$` is
/// not interpolated.
fn scalar(value: &str) -> String {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        value.to_owned()
    } else {
        quoted(value)
    }
}

fn quoted(value: &str) -> String {
    serde_json::Value::from(value.replace('$', "$$")).to_string()
}

/// One line of the Secrets or Configs field: `NAME` or `NAME:TARGET`, then, after commas, the
/// file's `uid=`, `gid=` (numeric) and `mode=` (octal permission bits, `0400`), as `docker
/// service create --secret source=…,target=…,uid=…,gid=…,mode=…` takes them.
struct FileLine<'a> {
    source: &'a str,
    target: &'a str,
    uid: Option<&'a str>,
    gid: Option<&'a str>,
    mode: Option<u32>,
}

/// Reads a [`FileLine`]; `Err`: what is wrong in it.
fn file_line(item: &str) -> Result<FileLine<'_>, String> {
    let mut parts = item.split(',');
    let head = parts.next().unwrap_or_default();
    let (source, target) = head.split_once(':').unwrap_or((head, ""));
    let mut line = FileLine {
        source: source.trim(),
        target: target.trim(),
        uid: None,
        gid: None,
        mode: None,
    };
    for part in parts {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        let value = value.trim();
        match key.trim() {
            "uid" | "gid" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                if key.trim() == "uid" {
                    line.uid = Some(value);
                } else {
                    line.gid = Some(value);
                }
            }
            "uid" | "gid" => {
                return Err(format!("{item:?}: {} is a number, such as 70", key.trim()))
            }
            // The one octal grammar, a tmpfs mode's.
            "mode" => match swarmkeeper_compose::FileMode::parse(value) {
                Ok(mode) => line.mode = Some(mode.0),
                Err(why) => return Err(format!("{item:?}: {why}")),
            },
            other => {
                return Err(format!(
                    "{item:?}: {other:?} is not uid=, gid= or mode= of the file"
                ))
            }
        }
    }
    Ok(line)
}

/// How the Secrets or Configs field shows a file: `NAME` when it is read at its default place
/// (`default_target`), else `NAME:TARGET`; its owner and mode after it when they are not the
/// docker CLI's defaults, so that saving the line keeps them (tryout 13 finding 8).
fn file_line_of(file: &swarmkeeper_engine::FileRef, default_target: &str) -> String {
    let mut line = if file.target == default_target || file.target.is_empty() {
        file.name.clone()
    } else {
        format!("{}:{}", file.name, file.target)
    };
    if file.has_own_owner_or_mode() {
        for (key, id) in [("uid", &file.uid), ("gid", &file.gid)] {
            if !id.is_empty() && id != "0" {
                line.push_str(&format!(",{key}={id}"));
            }
        }
        if ![0, 0o444].contains(&file.mode) {
            line.push_str(&format!(",mode=0{:o}", file.mode));
        }
    }
    line
}

/// The non-empty lines of a list field, trimmed.
fn items(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(str::trim).filter(|l| !l.is_empty())
}

/// `a=1,b=2` as the keys of a mapping, each its own line.
fn write_keyed(w: &mut Writer, field: &'static str, indent: usize, item: &str) {
    let mut first = true;
    for part in item.split(',') {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        let prefix = if first { "- " } else { "  " };
        first = false;
        w.line(
            field,
            indent,
            &format!("{prefix}{}: {}", quoted(key.trim()), scalar(value)),
        );
    }
}

/// A keyed mount line (`type=volume,source=data,target=/data,volume.nocopy=true`) as
/// compose's long syntax: each `KEY=VALUE` a key of the mount, a dotted key's value under
/// its type's options (`volume: {nocopy: true}`, `tmpfs: {size: 16m}`). A volume's driver
/// (`volume.driver`, `volume.driver_opts.KEY`) is the volume's, declared at the top
/// ([`write_document`]); a tmpfs mode is written as text, which compose reads as octal.
fn write_mount(w: &mut Writer, parts: &[(String, String)]) {
    let mut first = true;
    let mut options: Vec<(&str, Vec<(&str, &str)>)> = Vec::new();
    for (key, value) in parts {
        if is_driver_key(key) {
            continue;
        }
        if let Some((group, option)) = key.split_once('.') {
            match options.iter_mut().find(|(g, _)| *g == group) {
                Some((_, list)) => list.push((option, value)),
                None => options.push((group, vec![(option, value)])),
            }
            continue;
        }
        let prefix = if first { "- " } else { "  " };
        first = false;
        w.line(
            "mounts",
            6,
            &format!("{prefix}{}: {}", quoted(key), scalar(value)),
        );
    }
    for (group, list) in options {
        w.line("mounts", 8, &format!("{}:", quoted(group)));
        for (option, value) in list {
            let value = if (group, option) == ("tmpfs", "mode") {
                quoted(value)
            } else {
                scalar(value)
            };
            w.line("mounts", 10, &format!("{}: {value}", quoted(option)));
        }
    }
}

/// A keyed mount line's `KEY=VALUE` parts, split at the commas outside double quotes: a part
/// written `"volume.driver_opts.o=addr=10.0.0.1,rw"` keeps its comma, as the docker CLI's
/// `--mount` reads CSV (`""` in quotes is a quote). Keys and values trimmed; a part without
/// `=` has an empty value. Errs on a quote left open.
fn mount_parts(item: &str) -> Result<Vec<(String, String)>, String> {
    let mut parts = Vec::new();
    let mut part = String::new();
    let mut quoted = false;
    let mut chars = item.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                part.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => parts.push(std::mem::take(&mut part)),
            c => part.push(c),
        }
    }
    if quoted {
        return Err(format!("{item:?}: a quote is left open"));
    }
    parts.push(part);
    Ok(parts
        .iter()
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect())
}

/// `KEY=VALUE` as a part of a mount line, in quotes when the value holds a comma or a quote.
fn mount_part(key: &str, value: &str) -> String {
    if value.contains([',', '"']) {
        format!("\"{key}={}\"", value.replace('"', "\"\""))
    } else {
        format!("{key}={value}")
    }
}

/// `volume.driver` and `volume.driver_opts.KEY`: the volume's driver, not the mount's.
fn is_driver_key(key: &str) -> bool {
    key == "volume.driver" || key.starts_with("volume.driver_opts.")
}

/// The driver a mount line gives its volume, if it names one.
#[derive(Clone, Debug, Default, PartialEq)]
struct VolumeDriver {
    name: String,
    options: BTreeMap<String, String>,
}

fn volume_driver(parts: &[(String, String)]) -> Option<VolumeDriver> {
    let mut driver = None::<VolumeDriver>;
    for (key, value) in parts {
        if key == "volume.driver" {
            driver.get_or_insert_default().name = value.clone();
        } else if let Some(option) = key.strip_prefix("volume.driver_opts.") {
            driver
                .get_or_insert_default()
                .options
                .insert(option.to_owned(), value.clone());
        }
    }
    driver
}

/// A running mount's options as the form's dotted keys (`,volume.nocopy=true,tmpfs.size=64M`),
/// so that an edit keeps them; empty when it has none.
fn mount_options(mount: &swarmkeeper_engine::MountView) -> String {
    let mut options = String::new();
    if mount.no_copy {
        options.push_str(",volume.nocopy=true");
    }
    if !mount.subpath.is_empty() {
        options.push_str(&format!(",volume.subpath={}", mount.subpath));
    }
    if mount.tmpfs_size_bytes > 0 {
        options.push_str(&format!(
            ",tmpfs.size={}",
            swarmkeeper_units::size(mount.tmpfs_size_bytes)
        ));
    }
    if mount.tmpfs_mode > 0 {
        options.push_str(&format!(",tmpfs.mode={:o}", mount.tmpfs_mode));
    }
    if !mount.driver.is_empty() {
        options.push_str(&format!(",{}", mount_part("volume.driver", &mount.driver)));
    }
    for (key, value) in &mount.driver_options {
        let key = format!("volume.driver_opts.{key}");
        options.push_str(&format!(",{}", mount_part(&key, value)));
    }
    if !mount.propagation.is_empty() {
        options.push_str(&format!(",bind.propagation={}", mount.propagation));
    }
    options
}

/// The mount options the form takes as dotted keys, and the mount type each fits (compose's
/// `volume.nocopy`, `volume.subpath`, `tmpfs.size`, `tmpfs.mode`, `bind.propagation`; and the
/// volume's `volume.driver` and `volume.driver_opts.KEY`, declared with the volume).
const MOUNT_OPTIONS: [(&str, &str); 7] = [
    ("volume.nocopy", "volume"),
    ("volume.subpath", "volume"),
    ("volume.driver", "volume"),
    ("volume.driver_opts.KEY", "volume"),
    ("tmpfs.size", "tmpfs"),
    ("tmpfs.mode", "tmpfs"),
    ("bind.propagation", "bind"),
];

/// Why a keyed mount line's options do not fit it: an option the form does not know, one of
/// another type, `nocopy` not `true`/`false`, a value missing, a driver for a volume without
/// a name. The values' grammars (sizes, octal modes) are compose's, which names the field.
fn mount_option_error(item: &str, pairs: &[(String, String)]) -> Option<String> {
    let kind = pairs
        .iter()
        .find(|(k, _)| k == "type")
        .map_or("volume", |(_, v)| v.as_str());
    for (key, value) in pairs.iter().filter(|(k, _)| k.contains('.')) {
        let known = if key.starts_with("volume.driver_opts.") && key.len() > 19 {
            "volume.driver_opts.KEY"
        } else {
            key.as_str()
        };
        let Some((_, fits)) = MOUNT_OPTIONS.iter().find(|(k, _)| *k == known) else {
            let known: Vec<&str> = MOUNT_OPTIONS.iter().map(|(k, _)| *k).collect();
            return Some(format!(
                "{item:?}: {key} is not a mount option (one of {})",
                known.join(", ")
            ));
        };
        if *fits != kind {
            return Some(format!(
                "{item:?}: {key} is an option of type={fits} mounts, this one is type={kind}"
            ));
        }
        let wrong = match known {
            "volume.nocopy" => !["true", "false"].contains(&value.as_str()),
            "volume.driver_opts.KEY" => false,
            _ => value.is_empty(),
        };
        if wrong {
            return Some(format!(
                "{item:?}: {key}={value:?} does not read ({})",
                match known {
                    "volume.nocopy" => "true or false",
                    _ => "a value is needed",
                }
            ));
        }
        let named = pairs.iter().any(|(k, v)| k == "source" && !v.is_empty());
        if is_driver_key(key) && !named {
            return Some(format!(
                "{item:?}: {key} is the driver of a named volume: give it source=NAME"
            ));
        }
    }
    None
}

/// The form as a compose file of one service (key `key`), and who wrote each line.
fn write_compose(form: &ServiceForm, key: &str) -> Writer {
    write_document(&[(key.to_owned(), form.clone(), Vec::new())])
}

/// Forms as the services of one compose file (by key), and who wrote each line.
/// Each service's `extra` lines (its running keys, [`running_lines`]) follow its form's.
fn write_document(forms: &[(String, ServiceForm, Vec<String>)]) -> Writer {
    let mut w = Writer {
        text: String::new(),
        owners: Vec::new(),
    };
    w.line("name", 0, "version: \"3.8\"");
    w.line("name", 0, "services:");
    let mut external = Vec::new();
    let mut drivers = BTreeMap::new();
    for (key, form, extra) in forms {
        external.push(write_service(&mut w, key, form, &mut drivers));
        for line in extra {
            w.line("name", 4, line);
        }
    }
    // The objects the services name are the swarm's own: external, by their names; a volume
    // given a driver is declared with it, under its own name, so the mounts carry the driver
    // (`VolumeOptions.DriverConfig`) to the nodes that create it.
    for (index, (field, key)) in [
        ("mounts", "volumes"),
        ("secrets", "secrets"),
        ("configs", "configs"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut names: Vec<&String> = external.iter().flat_map(|e| &e[index]).collect();
        if names.is_empty() {
            continue;
        }
        names.sort();
        names.dedup();
        w.line(field, 0, &format!("{key}:"));
        for name in names {
            w.line(field, 2, &format!("{}:", quoted(name)));
            match drivers.get(name.as_str()).filter(|_| key == "volumes") {
                Some(driver) => {
                    w.line(field, 4, &format!("name: {}", quoted(name)));
                    if !driver.name.is_empty() {
                        w.line(field, 4, &format!("driver: {}", quoted(&driver.name)));
                    }
                    if !driver.options.is_empty() {
                        w.line(field, 4, "driver_opts:");
                        for (option, value) in &driver.options {
                            w.line(field, 6, &format!("{}: {}", quoted(option), quoted(value)));
                        }
                    }
                }
                None => w.line(field, 4, "external: true"),
            }
        }
    }
    w
}

/// One service's lines; answers the volumes, secrets and configs it names, and adds the
/// drivers its mount lines give volumes to `drivers` (the first given wins).
fn write_service(
    w: &mut Writer,
    key: &str,
    form: &ServiceForm,
    drivers: &mut BTreeMap<String, VolumeDriver>,
) -> [Vec<String>; 3] {
    w.line("name", 2, &format!("{}:", quoted(key)));
    w.line("image", 4, &format!("image: {}", quoted(form.image.trim())));
    for (field, key, value) in [
        ("entrypoint", "entrypoint", &form.entrypoint),
        ("command", "command", &form.command),
    ] {
        if !value.trim().is_empty() {
            w.line(field, 4, &format!("{key}: {}", quoted(value.trim())));
        }
    }
    let list = |w: &mut Writer, field: &'static str, key: &str, text: &str, indent: usize| {
        if items(text).next().is_some() {
            w.line(field, indent, &format!("{key}:"));
            for item in items(text) {
                w.line(field, indent + 2, &format!("- {}", quoted(item)));
            }
        }
    };
    list(w, "env", "environment", &form.env, 4);
    if items(&form.ports).next().is_some() {
        w.line("ports", 4, "ports:");
        for item in items(&form.ports) {
            if item.contains('=') {
                write_keyed(w, "ports", 6, item);
            } else {
                w.line("ports", 6, &format!("- {}", quoted(item)));
            }
        }
    }
    let mut volumes = Vec::new();
    if items(&form.mounts).next().is_some() {
        w.line("mounts", 4, "volumes:");
        for item in items(&form.mounts) {
            if item.contains('=') {
                // A line that does not split is refused by `check_fields` before this runs.
                let parts = mount_parts(item).unwrap_or_default();
                write_mount(w, &parts);
                let source = parts.iter().find(|(k, _)| k == "source");
                let volume = parts.iter().any(|(k, v)| k == "type" && v == "volume");
                if let (Some((_, source)), true) = (source, volume) {
                    volumes.push(source.clone());
                    if let Some(driver) = volume_driver(&parts) {
                        drivers.entry(source.clone()).or_insert(driver);
                    }
                }
            } else {
                w.line("mounts", 6, &format!("- {}", quoted(item)));
                let source = item.split(':').next().unwrap_or_default();
                let named = item.contains(':')
                    && !source.is_empty()
                    && !source.starts_with(['/', '.', '~']);
                if named {
                    volumes.push(source.to_owned());
                }
            }
        }
    }
    let files = |w: &mut Writer, field: &'static str, key: &str, text: &str| {
        let mut names = Vec::new();
        if items(text).next().is_some() {
            w.line(field, 4, &format!("{key}:"));
            // A wrong line is the field's error (`check_fields`), set aside before this.
            for line in items(text).filter_map(|item| file_line(item).ok()) {
                w.line(field, 6, &format!("- source: {}", quoted(line.source)));
                if !line.target.is_empty() {
                    w.line(field, 8, &format!("target: {}", quoted(line.target)));
                }
                for (key, id) in [("uid", line.uid), ("gid", line.gid)] {
                    if let Some(id) = id {
                        w.line(field, 8, &format!("{key}: {}", quoted(id)));
                    }
                }
                if let Some(mode) = line.mode {
                    w.line(field, 8, &format!("mode: 0{mode:o}"));
                }
                names.push(line.source.to_owned());
            }
        }
        names
    };
    let secrets = files(w, "secrets", "secrets", &form.secrets);
    let configs = files(w, "configs", "configs", &form.configs);
    w.line("mode", 4, "deploy:");
    let mode = form.mode.trim();
    w.line(
        "mode",
        6,
        &format!(
            "mode: {}",
            quoted(if mode.is_empty() { "replicated" } else { mode })
        ),
    );
    if !form.replicas.trim().is_empty() {
        w.line(
            "replicas",
            6,
            &format!("replicas: {}", scalar(&form.replicas)),
        );
    }
    list(w, "labels", "labels", &form.labels, 6);
    let resources = [
        (
            "limits",
            "limit_cpus",
            &form.limit_cpus,
            "limit_memory",
            &form.limit_memory,
        ),
        (
            "reservations",
            "reserve_cpus",
            &form.reserve_cpus,
            "reserve_memory",
            &form.reserve_memory,
        ),
    ];
    if resources
        .iter()
        .any(|(_, _, c, _, m)| !c.trim().is_empty() || !m.trim().is_empty())
    {
        w.line("limit_cpus", 6, "resources:");
        for (key, cpu_field, cpus, memory_field, memory) in resources {
            if cpus.trim().is_empty() && memory.trim().is_empty() {
                continue;
            }
            w.line(cpu_field, 8, &format!("{key}:"));
            if !cpus.trim().is_empty() {
                w.line(cpu_field, 10, &format!("cpus: {}", quoted(cpus.trim())));
            }
            if !memory.trim().is_empty() {
                w.line(
                    memory_field,
                    10,
                    &format!("memory: {}", quoted(memory.trim())),
                );
            }
        }
    }
    if items(&form.constraints).next().is_some() || items(&form.preferences).next().is_some() {
        w.line("constraints", 6, "placement:");
        list(w, "constraints", "constraints", &form.constraints, 8);
        if items(&form.preferences).next().is_some() {
            w.line("preferences", 8, "preferences:");
            for item in items(&form.preferences) {
                w.line("preferences", 10, &format!("- spread: {}", quoted(item)));
            }
        }
    }
    let block = |w: &mut Writer, key: &str, fields: &[(&'static str, &str, &str)]| {
        if fields.iter().all(|(_, _, v)| v.trim().is_empty()) {
            return;
        }
        w.line(fields[0].0, 6, &format!("{key}:"));
        for (field, key, value) in fields {
            if !value.trim().is_empty() {
                w.line(field, 8, &format!("{key}: {}", scalar(value)));
            }
        }
    };
    block(
        w,
        "restart_policy",
        &[
            ("restart_condition", "condition", &form.restart_condition),
            ("restart_delay", "delay", &form.restart_delay),
            (
                "restart_max_attempts",
                "max_attempts",
                &form.restart_max_attempts,
            ),
            ("restart_window", "window", &form.restart_window),
        ],
    );
    block(
        w,
        "update_config",
        &[
            (
                "update_parallelism",
                "parallelism",
                &form.update_parallelism,
            ),
            ("update_delay", "delay", &form.update_delay),
            (
                "update_failure_action",
                "failure_action",
                &form.update_failure_action,
            ),
            ("update_monitor", "monitor", &form.update_monitor),
            (
                "update_max_failure_ratio",
                "max_failure_ratio",
                &form.update_max_failure_ratio,
            ),
            ("update_order", "order", &form.update_order),
        ],
    );
    block(
        w,
        "rollback_config",
        &[
            (
                "rollback_parallelism",
                "parallelism",
                &form.rollback_parallelism,
            ),
            ("rollback_delay", "delay", &form.rollback_delay),
            (
                "rollback_failure_action",
                "failure_action",
                &form.rollback_failure_action,
            ),
            ("rollback_monitor", "monitor", &form.rollback_monitor),
            (
                "rollback_max_failure_ratio",
                "max_failure_ratio",
                &form.rollback_max_failure_ratio,
            ),
            ("rollback_order", "order", &form.rollback_order),
        ],
    );
    if !form.log_driver.trim().is_empty() || items(&form.log_options).next().is_some() {
        w.line("log_driver", 4, "logging:");
        if !form.log_driver.trim().is_empty() {
            w.line(
                "log_driver",
                6,
                &format!("driver: {}", quoted(form.log_driver.trim())),
            );
        }
        if items(&form.log_options).next().is_some() {
            w.line("log_options", 6, "options:");
            for item in items(&form.log_options) {
                let (key, value) = item.split_once('=').unwrap_or((item, ""));
                w.line(
                    "log_options",
                    8,
                    &format!("{}: {}", quoted(key.trim()), quoted(value.trim())),
                );
            }
        }
    }
    [volumes, secrets, configs]
}

/// The checks compose's grammar does not make, or makes with a message that would not name
/// the form's field.
fn check_fields(form: &ServiceForm, context: &Context) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Err(e) = check_service_name(form.name.trim()) {
        errors.push(e);
    }
    if let Some(stack) = &context.stack {
        if !form.name.trim().starts_with(&format!("{stack}_")) {
            errors.push(FieldError::new(
                "name",
                format!("a service of stack {stack} is named {stack}_…"),
            ));
        }
    }
    let image = form.image.trim();
    if image.is_empty() {
        errors.push(FieldError::new("image", "an image is required".to_owned()));
    } else if let Err(why) = reference::validate(image) {
        errors.push(FieldError::new("image", why));
    }
    match form.mode.trim() {
        "" | "replicated" => {
            let replicas = form.replicas.trim();
            if !replicas.is_empty() {
                match replicas.parse::<u64>() {
                    Err(_) => errors.push(FieldError::new(
                        "replicas",
                        format!("{replicas:?} is not a number of replicas"),
                    )),
                    Ok(n) => {
                        if let Err(why) = swarmkeeper_compose::check_replicas(n) {
                            errors.push(FieldError::new("replicas", why));
                        }
                    }
                }
            }
        }
        "global" => {
            if !form.replicas.trim().is_empty() {
                errors.push(FieldError::new(
                    "replicas",
                    "a global service runs one task per node: leave replicas empty".to_owned(),
                ));
            }
        }
        other => errors.push(FieldError::new(
            "mode",
            format!("{other:?}: the mode is replicated or global"),
        )),
    }
    for (field, value) in [
        ("limit_cpus", &form.limit_cpus),
        ("reserve_cpus", &form.reserve_cpus),
    ] {
        if !value.trim().is_empty() {
            if let Err(why) = parse_nano_cpus(value.trim()) {
                errors.push(FieldError::new(field, why));
            }
        }
    }
    for (field, value) in [
        ("limit_memory", &form.limit_memory),
        ("reserve_memory", &form.reserve_memory),
    ] {
        if !value.trim().is_empty() {
            if let Err(why) = parse_bytes(value.trim()) {
                errors.push(FieldError::new(field, why));
            }
        }
    }
    for (field, text, known, kind) in [
        ("secrets", &form.secrets, &context.secrets, "secret"),
        ("configs", &form.configs, &context.configs, "config"),
    ] {
        for item in items(text) {
            let name = match file_line(item) {
                Ok(line) => line.source,
                Err(why) => {
                    errors.push(FieldError::new(field, why));
                    continue;
                }
            };
            if !known.contains_key(name) {
                errors.push(FieldError::new(
                    field,
                    format!("there is no {kind} named {name:?}: create it first"),
                ));
            }
        }
    }
    for (field, text) in [
        ("env", &form.env),
        ("labels", &form.labels),
        ("log_options", &form.log_options),
    ] {
        for item in items(text) {
            let key = item.split_once('=').map_or(item, |(k, _)| k);
            if key.trim().is_empty() || key.contains(char::is_whitespace) {
                errors.push(FieldError::new(
                    field,
                    format!("{item:?}: each line is KEY=VALUE, the key without spaces"),
                ));
            }
        }
    }
    // Written from the service's stack (as `docker stack deploy` writes them), so a line
    // setting one would be dropped without a word.
    for item in items(&form.labels) {
        let key = item.split_once('=').map_or(item, |(k, _)| k).trim();
        if [LABEL_NAMESPACE, LABEL_IMAGE].contains(&key) {
            errors.push(FieldError::new(
                "labels",
                format!("{key}: reserved for docker stack (set from the service's stack)"),
            ));
        }
    }
    // A bare NAME follows the compose path's rule; the dashboard has no environment to give.
    if let Some(Err(message)) = items(&form.env)
        .find(|item| !item.contains('='))
        .map(|name| bare_variable(name.trim(), |_| None))
    {
        errors.push(FieldError::new("env", message));
    }
    let mut drivers: BTreeMap<String, VolumeDriver> = BTreeMap::new();
    for item in items(&form.mounts).filter(|m| m.contains('=')) {
        let parts = match mount_parts(item) {
            Ok(parts) => parts,
            Err(message) => {
                errors.push(FieldError::new("mounts", message));
                continue;
            }
        };
        let has_target = parts
            .iter()
            .any(|(k, v)| ["target", "destination", "dst"].contains(&k.as_str()) && !v.is_empty());
        if !has_target {
            errors.push(FieldError::new(
                "mounts",
                format!("{item:?}: a mount needs target=PATH in the container"),
            ));
        }
        if let Some(message) = mount_option_error(item, &parts) {
            errors.push(FieldError::new("mounts", message));
        }
        // A driver is the volume's: two mounts of one volume cannot give two.
        let source = parts.iter().find(|(k, _)| k == "source").map(|(_, v)| v);
        if let (Some(source), Some(driver)) = (source, volume_driver(&parts)) {
            match drivers.get(source) {
                Some(given) if *given != driver => errors.push(FieldError::new(
                    "mounts",
                    format!(
                        "{item:?}: volume {source} is given another driver or options on \
                         another line: a volume has one driver"
                    ),
                )),
                _ => {
                    drivers.insert(source.clone(), driver);
                }
            }
        }
    }
    for item in items(&form.preferences) {
        let known = ["node.labels.", "engine.labels."]
            .iter()
            .any(|prefix| item.starts_with(prefix) && item.len() > prefix.len());
        if !known || item.contains(char::is_whitespace) {
            errors.push(FieldError::new(
                "preferences",
                format!("{item:?}: tasks spread over node.labels.NAME or engine.labels.NAME"),
            ));
        }
    }
    let driver = form.log_driver.trim();
    if !driver
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.:/".contains(c))
    {
        errors.push(FieldError::new(
            "log_driver",
            format!("{driver:?} is not a log driver's name"),
        ));
    }
    for item in items(&form.constraints) {
        if !["==", "!="].iter().any(|op| item.contains(op)) {
            errors.push(FieldError::new(
                "constraints",
                format!("{item:?}: a constraint is ATTRIBUTE==VALUE or ATTRIBUTE!=VALUE"),
            ));
        }
    }
    errors
}

/// The field to mark when the swarm has no node for the service: the need no node meets.
pub fn placement_error(unplaceable: &Unplaceable) -> FieldError {
    let field = match unplaceable.unmet {
        Unmet::LogDriver => "log_driver",
        Unmet::Memory => "reserve_memory",
        Unmet::Cpus => "reserve_cpus",
        Unmet::Nodes | Unmet::Constraints | Unmet::Together => "constraints",
    };
    FieldError::new(
        field,
        format!("no node could run this service: {}", unplaceable.why),
    )
}

/// The form field that writes a compose setting the engine refuses
/// (`swarmkeeper_compose::engine_refusals`, `swarmkeeper_lint::mode_change`).
fn field_of_setting(setting: &str) -> Option<&'static str> {
    Some(match setting {
        "deploy.resources.limits.memory" => "limit_memory",
        "deploy.resources.reservations.memory" => "reserve_memory",
        "deploy.update_config.max_failure_ratio" => "update_max_failure_ratio",
        "deploy.rollback_config.max_failure_ratio" => "rollback_max_failure_ratio",
        "deploy.rollback_config.failure_action" => "rollback_failure_action",
        "deploy.mode" => "mode",
        "ports" => "ports",
        "logging.options" => "log_options",
        "environment" => "env",
        _ => return None,
    })
}

/// The spec the form describes, or every field that is wrong (each once, in the form's
/// order). Nothing here touches the engine: the shell sends the result.
pub fn build(form: &ServiceForm, context: &Context) -> Result<Built, Vec<FieldError>> {
    let mut errors = check_fields(form, context);
    // The compose reading stops at its first error. Each wrong field is set aside and the rest
    // read again, so one answer marks every wrong field by the reader's own rules (tryout 12
    // finding 9). It ends: each round adds a field not yet wrong, or stops.
    loop {
        let wrong: Vec<&'static str> = errors.iter().map(|e| e.field).collect();
        match read_form(&set_aside(form, &wrong, context), context) {
            Ok(built) if errors.is_empty() => return Ok(built),
            Ok(_) => break,
            Err(error) if wrong.contains(&error.field) => break,
            Err(error) => errors.push(error),
        }
    }
    errors.sort_by_key(|e| FIELDS.iter().position(|f| *f == e.field));
    errors.dedup_by_key(|e| e.field);
    Err(errors)
}

/// `form` with each of `fields` set aside for the reading of the others: emptied (the
/// default compose gives), the name and the image given stand-ins any reading takes.
fn set_aside(form: &ServiceForm, fields: &[&str], context: &Context) -> ServiceForm {
    if fields.is_empty() {
        return form.clone();
    }
    let mut value = serde_json::to_value(form).expect("a form serialises");
    for field in fields {
        let stand_in = match *field {
            "name" => context
                .stack
                .as_ref()
                .map_or("service".to_owned(), |stack| format!("{stack}_service")),
            "image" => "busybox".to_owned(),
            _ => String::new(),
        };
        value[*field] = serde_json::Value::String(stand_in);
    }
    serde_json::from_value(value).expect("a form's fields are text")
}

/// The spec `form` makes, checked, or the first field its compose reading refuses.
fn read_form(form: &ServiceForm, context: &Context) -> Result<Built, FieldError> {
    let name = form.name.trim();
    // A service of its own is written as one of a stack; `read_compose` removes the marks.
    let key = match &context.stack {
        Some(stack) => &name[stack.len() + 1..],
        None => name,
    };
    let writer = write_compose(form, key);
    let mut specs = read_compose(&writer.text, "form", context).map_err(|e| {
        let field = match &e {
            ComposeRefusal::Compose(e) => writer.owner(e.line).unwrap_or("name"),
            ComposeRefusal::Refused { error, setting, .. } => field_of_setting(setting)
                .or_else(|| writer.owner(error.line))
                .unwrap_or("name"),
        };
        FieldError::new(field, e.message())
    })?;
    let spec = specs.pop().expect("the form writes exactly one service");
    let env: Vec<String> = items(&form.env).map(str::to_owned).collect();
    let shown = ServiceForm {
        env: shown_env(&env).join("\n"),
        ..form.clone()
    };
    Ok(Built {
        spec,
        compose: write_compose(&shown, key).text,
    })
}

/// What an edit as compose is refused for after it reads: a need of the service no node meets
/// (the placement check's), or a port another service publishes.
pub enum Refused<'a> {
    Unplaceable(&'a Unplaceable),
    Port {
        published: u32,
        protocol: &'a str,
    },
    /// More replicas than nodes can take (`max_replicas_per_node`): the replicas' count.
    Replicas,
}

/// Where in the compose text `text` service `key` writes what it is `refused` for: the
/// memory or CPU reservation, the log driver, the constraint the reason names (else the
/// first), the port's entry; for a need of no one setting, the `deploy` key (several needs
/// together) or the service's own (no node at all). `None` when the text names no service
/// `key`.
pub fn refused_place(text: &str, key: &str, refused: Refused<'_>) -> Option<Location> {
    let variables = HashMap::new();
    let environment = Environment {
        variables: &variables,
        working_dir: Path::new("/"),
        read_file: &|_| Err(std::io::Error::other("the dashboard reads no file")),
    };
    let stack = load(&[SourceFile { name: "", text }], &environment).ok()?;
    let service = stack.services.get(key)?;
    let deploy = service.deploy.as_ref();
    let reservations = deploy
        .and_then(|d| d.resources.as_ref())
        .and_then(|r| r.reservations.as_ref());
    let written = match refused {
        Refused::Unplaceable(unplaceable) => match unplaceable.unmet {
            Unmet::Memory => reservations.and_then(|r| r.memory.as_ref()).map(|m| m.at),
            Unmet::Cpus => reservations.and_then(|r| r.cpus.as_ref()).map(|c| c.at),
            Unmet::LogDriver => service
                .logging
                .as_ref()
                .and_then(|l| l.driver.as_ref())
                .map(|d| d.at),
            Unmet::Constraints => deploy
                .and_then(|d| d.placement.as_ref())
                .and_then(|p| p.constraints.as_ref())
                .and_then(|constraints| {
                    constraints
                        .iter()
                        .find(|c| unplaceable.why.contains(c.value.trim()))
                        .or(constraints.first())
                })
                .map(|c| c.at),
            Unmet::Together => deploy.map(|d| d.at),
            Unmet::Nodes => None,
        },
        Refused::Port {
            published,
            protocol,
        } => service.ports.as_ref().and_then(|ports| {
            ports
                .0
                .iter()
                .find(|p| {
                    p.published == Some(published)
                        && p.protocol.map_or("tcp", |p| p.as_str()) == protocol
                })
                .map(|p| p.at)
        }),
        Refused::Replicas => deploy.and_then(|d| d.replicas.as_ref()).map(|r| r.at),
    };
    Some(written.unwrap_or(service.at))
}

/// The setting a missing secret or config is refused at.
fn kind_setting(kind: &str) -> &'static str {
    match kind {
        "secret" => "secrets",
        _ => "configs",
    }
}

/// Where service `key` of `stack` names the secret or config (`kind`) the swarm knows as
/// `name`: the reference whose source is declared with that `name:`, or is that name.
fn reference_place(stack: &Stack, key: &str, kind: &str, name: &str) -> Option<Location> {
    let service = stack.services.get(key)?;
    let references = match kind {
        "secret" => service.secrets.as_ref()?,
        _ => service.configs.as_ref()?,
    };
    let declared_name = |source: &str| -> Option<&str> {
        match kind {
            "secret" => stack.secrets.get(source)?.name.as_deref(),
            _ => stack.configs.get(source)?.name.as_deref(),
        }
    };
    references
        .0
        .iter()
        .find(|r| {
            r.source
                .as_deref()
                .is_some_and(|source| declared_name(source).unwrap_or(source) == name)
        })
        .map(|r| r.at)
}

/// Why a compose text cannot be read into specs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ComposeRefusal {
    /// Compose's own error: file, line, column, what is wrong.
    Compose(swarmkeeper_compose::ComposeError),
    /// It reads, but the engine would refuse a setting (or the change of a running
    /// service's mode), or it names a secret or config the swarm does not have: where,
    /// which setting, why.
    Refused {
        error: swarmkeeper_compose::ComposeError,
        setting: &'static str,
        message: String,
    },
}

impl ComposeRefusal {
    /// The message alone (a form shows it next to its field).
    pub fn message(&self) -> String {
        match self {
            ComposeRefusal::Compose(e) => e.message.clone(),
            ComposeRefusal::Refused { message, .. } => message.clone(),
        }
    }
}

impl std::fmt::Display for ComposeRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ComposeRefusal::Compose(e) | ComposeRefusal::Refused { error: e, .. } => {
                write!(f, "{e}")
            }
        }
    }
}

/// Every service of a compose text as the Engine API spec its keys make (the mapping
/// `swarmkeeper deploy` applies), named by the service's whole name (`STACK_KEY` in
/// `context.stack`, else the key): what a form builds, once the deploy engine completed it
/// (safe defaults, digests). Secrets, configs and volumes are the swarm's own (declare them
/// `external`); secret and config ids come from `context`. Networks as [`read_compose_edit`]
/// reads them (a form names none).
pub fn read_compose(
    text: &str,
    file_name: &str,
    context: &Context,
) -> Result<Vec<ServiceSpec>, ComposeRefusal> {
    let read = read_compose_edit(text, file_name, context)?;
    Ok(read.services.into_iter().map(|(spec, _)| spec).collect())
}

/// A compose text read for "edit as compose".
#[derive(Debug)]
pub struct ComposeEdit {
    /// Each service's spec (as [`read_compose`] reads it), with the keys of
    /// `engine::COMPOSE_ONLY_KEYS` its text writes: `engine::overlay_compose` applies those.
    pub services: Vec<(ServiceSpec, Vec<&'static str>)>,
    /// Each key the text writes that `docker stack deploy` ignores, and so is not applied
    /// either, at its place, as `swarmkeeper lint` says it (SK040):
    /// `web.yml:7:5: web: `container_name` is ignored by docker stack deploy (why): not applied`.
    pub ignored: Vec<String>,
}

/// A compose text read as [`read_compose`] reads it, and what "edit as compose" applies of it:
/// the keys each service writes besides the form's, and the ignored keys. A service that names
/// `networks:` is attached to those networks by id; one the swarm does not have is refused at
/// its place in the service's list, as `swarmkeeper deploy` refuses a missing external network
/// (an edit creates no network). A service that names none keeps its own: the text is not
/// given the stack's default network. `credential_spec` is refused at its place: it needs a
/// config linked to the service, which only a stack deploy does.
pub fn read_compose_edit(
    text: &str,
    file_name: &str,
    context: &Context,
) -> Result<ComposeEdit, ComposeRefusal> {
    let variables = HashMap::new();
    let no_files = |path: &str| -> std::io::Result<String> {
        Err(std::io::Error::other(format!(
            "{path}: the dashboard reads no file"
        )))
    };
    let environment = Environment {
        variables: &variables,
        working_dir: Path::new("/"),
        read_file: &no_files,
    };
    let file = SourceFile {
        name: file_name,
        text,
    };
    let stack = load(&[file], &environment).map_err(ComposeRefusal::Compose)?;
    let refused = |at: swarmkeeper_compose::Location, setting, message: String, said: String| {
        ComposeRefusal::Refused {
            error: ComposeError::at(file_name, text, at.line, at.column, said),
            setting,
            message,
        }
    };
    if let Some(r) = engine_refusals(&stack).into_iter().next() {
        return Err(refused(r.at, r.setting, r.message.clone(), r.to_string()));
    }
    let namespace = context.stack.as_deref().unwrap_or("");
    let place =
        |at: swarmkeeper_compose::Location| format!("{file_name}:{}:{}", at.line, at.column);
    let mut ignored: Vec<String> = stack
        .ignored
        .iter()
        .map(|i| {
            format!(
                "{}: `{}` is ignored by docker stack deploy ({}): not applied",
                place(i.at),
                i.key,
                i.reason
            )
        })
        .collect();
    let mut services = Vec::with_capacity(stack.services.len());
    for (key, service) in &stack.services {
        if let Some(credential_spec) = &service.credential_spec {
            let why = "edit as compose cannot link a credential spec to the service: deploy the stack file".to_owned();
            let said = format!("{key}: credential_spec: {why}");
            return Err(refused(credential_spec.at, "credential_spec", why, said));
        }
        ignored.extend(service.ignored.iter().map(|i| {
            format!(
                "{}: {key}: `{}` is ignored by docker stack deploy ({}): not applied",
                place(i.at),
                i.key,
                i.reason
            )
        }));
        let mut spec: ServiceSpec = service_spec(namespace, key, service, &stack);
        spec.name = match &context.stack {
            Some(stack) => format!("{stack}_{key}"),
            None => key.clone(),
        };
        match &service.networks {
            None => spec.task_template.networks.clear(),
            Some(networks) => {
                for attachment in &mut spec.task_template.networks {
                    if let Some(id) = context.networks.get(&attachment.target) {
                        attachment.target = id.clone();
                        continue;
                    }
                    // The service's entry that names it (a text without entries is given the
                    // stack's default network).
                    let entry = networks.0.iter().find(|(network, _)| {
                        let definition = stack.networks.get(*network).map(|d| &d.value);
                        network_name(
                            namespace,
                            network,
                            definition.unwrap_or(&Default::default()),
                        ) == attachment.target
                    });
                    let external = entry
                        .and_then(|(network, _)| stack.networks.get(network))
                        .and_then(|d| d.value.external.as_ref())
                        .is_some_and(|e| e.external);
                    let name = &attachment.target;
                    let why = match external {
                        true => format!("network {name} is declared external but does not exist: create it first"),
                        false => format!("network {name} does not exist: edit as compose creates no network (create it, then declare it `external: true`)"),
                    };
                    let at = entry.map_or(service.at, |(_, e)| e.at);
                    return Err(refused(
                        at,
                        "networks",
                        why.clone(),
                        format!("{key}: {why}"),
                    ));
                }
            }
        }
        let current = context.env.get(&spec.name).map_or(&[][..], Vec::as_slice);
        if let Err(name) = keep_hidden(&mut spec.task_template.container_spec.env, current) {
            let at = service
                .environment
                .as_ref()
                .and_then(|e| e.1.get(&name).copied())
                .unwrap_or(service.at);
            let why = hidden_refusal(&name);
            return Err(refused(
                at,
                "environment",
                why.clone(),
                format!("{key}: {why}"),
            ));
        }
        if let Some(current) = context.modes.get(&spec.name) {
            let wanted = serde_json::to_value(&spec)
                .ok()
                .and_then(|json| ServiceView::read(&json).ok())
                .map(|view| view.mode);
            if let Some(why) = wanted.and_then(|wanted| mode_change(current, &wanted)) {
                let at = service
                    .deploy
                    .as_ref()
                    .and_then(|d| d.mode.as_ref().map(|m| m.at))
                    .unwrap_or(service.at);
                let said = format!("{key}: deploy.mode: {why}");
                return Err(refused(at, "deploy.mode", why, said));
            }
        }
        if context.stack.is_none() {
            spec.labels.remove(LABEL_NAMESPACE);
            spec.labels.remove(LABEL_IMAGE);
            spec.task_template
                .container_spec
                .labels
                .remove(LABEL_NAMESPACE);
            // A volume the form declares with a driver belongs to no stack either.
            for mount in &mut spec.task_template.container_spec.mounts {
                if let Some(options) = &mut mount.volume_options {
                    options.labels.remove(LABEL_NAMESPACE);
                }
            }
        }
        let missing = |kind: &'static str, name: &str| {
            let why = format!("there is no {kind} named {name:?}: create it first");
            let said = format!("{key}: {why}");
            let at = reference_place(&stack, key, kind, name).unwrap_or(service.at);
            refused(at, kind_setting(kind), why, said)
        };
        for secret in &mut spec.task_template.container_spec.secrets {
            secret.secret_id = context
                .secrets
                .get(&secret.secret_name)
                .ok_or_else(|| missing("secret", &secret.secret_name))?
                .clone();
        }
        for config in &mut spec.task_template.container_spec.configs {
            config.config_id = context
                .configs
                .get(&config.config_name)
                .ok_or_else(|| missing("config", &config.config_name))?
                .clone();
        }
        services.push((spec, written_keys(service)));
    }
    Ok(ComposeEdit { services, ignored })
}

/// The keys of `engine::COMPOSE_ONLY_KEYS` that `service` writes (`deploy.endpoint_mode`
/// dotted), a key written with an empty value included: it empties its field.
fn written_keys(service: &swarmkeeper_compose::Service) -> Vec<&'static str> {
    // The model's fields are named as its keys; a key the text does not write is `None`.
    let written = serde_json::to_value(service).unwrap_or_default();
    COMPOSE_ONLY_KEYS
        .iter()
        .map(|(key, _)| *key)
        .filter(|key| match *key {
            "deploy.endpoint_mode" => service
                .deploy
                .as_ref()
                .is_some_and(|d| d.endpoint_mode.is_some()),
            key => written.get(key).is_some_and(|v| !v.is_null()),
        })
        .collect()
}

/// Running services as the compose text that would produce them (the fields the form
/// holds), `views` all of `context.stack` or one service of its own. Reading it back with
/// [`read_compose`] gives their specs.
pub fn compose_of(views: &[&ServiceView], context: &Context) -> String {
    render(views, context, |_| Vec::new())
}

/// As [`compose_of`], each service with the keys of `engine::COMPOSE_RENDERED_KEYS` it has
/// ([`running_lines`]): what "edit as compose" shows, so a healthcheck, a user, added
/// capabilities, DNS settings, … can be seen, changed and deleted. Reading it back with
/// [`read_compose_edit`] and laying it over the specs (`engine::overlay_compose`) changes
/// nothing.
pub fn compose_of_running(views: &[&ServiceView], context: &Context) -> String {
    render(views, context, running_lines)
}

/// `views` as one compose document, each service with the form's fields and the lines
/// `extra` gives it.
fn render(
    views: &[&ServiceView],
    context: &Context,
    extra: impl Fn(&ServiceView) -> Vec<String>,
) -> String {
    let forms: Vec<(String, ServiceForm, Vec<String>)> = views
        .iter()
        .map(|view| {
            let key = match &context.stack {
                Some(stack) => view
                    .name
                    .strip_prefix(&format!("{stack}_"))
                    .unwrap_or(&view.name)
                    .to_owned(),
                None => view.name.clone(),
            };
            (key, ServiceForm::of_view(view), extra(view))
        })
        .collect();
    write_document(&forms).text
}

/// The lines (without their service's indent) of the keys of `engine::COMPOSE_RENDERED_KEYS`
/// `view` has, each as the compose mapping reads it back to the same field: `user`,
/// `hostname`, `working_dir`, `stop_signal`, `init`, `tty`, `stdin_open`, `cap_add`,
/// `cap_drop`, `dns`, `dns_search`, `read_only: true`, `stop_grace_period`, and `healthcheck`
/// (`disable: true` for `["NONE"]`, else its test and each duration or count that is set).
fn running_lines(view: &ServiceView) -> Vec<String> {
    let duration =
        |value: std::time::Duration| (!value.is_zero()).then(|| quoted(&format_duration(value)));
    let list = |items: &[String]| {
        let items: Vec<String> = items.iter().map(|item| quoted(item)).collect();
        format!("[{}]", items.join(", "))
    };
    let mut lines = Vec::new();
    for (key, value) in [
        ("user", &view.user),
        ("hostname", &view.hostname),
        ("working_dir", &view.working_dir),
        ("stop_signal", &view.stop_signal),
    ] {
        if !value.is_empty() {
            lines.push(format!("{key}: {}", quoted(value)));
        }
    }
    if let Some(init) = view.init {
        lines.push(format!("init: {init}"));
    }
    for (key, on) in [("tty", view.tty), ("stdin_open", view.open_stdin)] {
        if on {
            lines.push(format!("{key}: true"));
        }
    }
    for (key, items) in [
        ("cap_add", &view.capability_add),
        ("cap_drop", &view.capability_drop),
        ("dns", &view.dns_nameservers),
        ("dns_search", &view.dns_search),
    ] {
        if !items.is_empty() {
            lines.push(format!("{key}: {}", list(items)));
        }
    }
    if view.read_only {
        lines.push("read_only: true".to_owned());
    }
    if let Some(grace) = view.stop_grace_period.and_then(duration) {
        lines.push(format!("stop_grace_period: {grace}"));
    }
    if let Some(health) = &view.healthcheck {
        lines.push("healthcheck:".to_owned());
        if health.is_disabled() {
            lines.push("  disable: true".to_owned());
            return lines;
        }
        if !health.test.is_empty() {
            let words: Vec<String> = health.test.iter().map(|word| quoted(word)).collect();
            lines.push(format!("  test: [{}]", words.join(", ")));
        }
        for (key, value) in [
            ("interval", health.interval),
            ("timeout", health.timeout),
            ("start_period", health.start_period),
            ("start_interval", health.start_interval),
        ] {
            if let Some(value) = duration(value) {
                lines.push(format!("  {key}: {value}"));
            }
        }
        if health.retries > 0 {
            lines.push(format!("  retries: {}", health.retries));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn form(name: &str, image: &str) -> ServiceForm {
        ServiceForm {
            name: name.into(),
            image: image.into(),
            ..ServiceForm::default()
        }
    }

    fn context() -> Context {
        Context {
            stack: None,
            secrets: HashMap::from([("db-pass".to_owned(), "sec1".to_owned())]),
            configs: HashMap::from([("nginx.conf".to_owned(), "cfg1".to_owned())]),
            networks: HashMap::from([("shop_default".to_owned(), "net1".to_owned())]),
            modes: HashMap::new(),
            env: HashMap::new(),
        }
    }

    #[test]
    fn a_running_service_keeps_its_mode_in_the_form_and_as_compose() {
        let context = Context {
            modes: HashMap::from([("web".to_owned(), ServiceMode::Replicated { replicas: 2 })]),
            ..context()
        };
        let mut f = form("web", "nginx");
        f.replicas = "5".into();
        assert!(build(&f, &context).is_ok());
        f.mode = "global".into();
        f.replicas = String::new();
        let refused = build(&f, &context).unwrap_err();
        assert_eq!(refused[0].field, "mode");
        assert!(
            refused[0].message.contains("stays replicated"),
            "{refused:?}"
        );
        let text = "services:\n  web:\n    image: nginx\n    deploy:\n      mode: global\n";
        let refused = read_compose(text, "web.yml", &context).unwrap_err();
        let said = refused.to_string();
        assert!(said.starts_with("web.yml:5:"), "{said}");
        assert!(said.contains("deploy.mode"), "{said}");
    }

    fn error_fields(form: &ServiceForm) -> Vec<&'static str> {
        build(form, &context())
            .expect_err("refused")
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    fn full() -> ServiceForm {
        ServiceForm {
            name: "web".into(),
            image: "nginx:1.25".into(),
            entrypoint: "/docker-entrypoint.sh".into(),
            command: "nginx -g 'daemon off;'".into(),
            env: "A=1\nPRICE=$5".into(),
            ports: "8080:80\n53/udp\npublished=9000,target=90,protocol=tcp,mode=host".into(),
            mounts: "data:/data\n/srv:/srv:ro\ntype=tmpfs,target=/tmp".into(),
            secrets: "db-pass\ndb-pass:other".into(),
            configs: "nginx.conf:/etc/nginx/nginx.conf".into(),
            limit_cpus: "0.5".into(),
            limit_memory: "64M".into(),
            reserve_cpus: "0.25".into(),
            reserve_memory: "32M".into(),
            constraints: "node.role==worker".into(),
            preferences: "node.labels.zone".into(),
            mode: "replicated".into(),
            replicas: "3".into(),
            restart_condition: "on-failure".into(),
            restart_delay: "5s".into(),
            restart_max_attempts: "3".into(),
            restart_window: "1m0s".into(),
            update_parallelism: "2".into(),
            update_delay: "10s".into(),
            update_failure_action: "rollback".into(),
            update_monitor: "30s".into(),
            update_max_failure_ratio: "0.5".into(),
            update_order: "start-first".into(),
            rollback_parallelism: "1".into(),
            rollback_failure_action: "pause".into(),
            rollback_order: "stop-first".into(),
            labels: "team=shop".into(),
            log_driver: "local".into(),
            log_options: "max-size=10m".into(),
            ..ServiceForm::default()
        }
    }

    #[test]
    fn mount_options_reach_the_spec_and_refuse_what_does_not_fit() {
        let form = ServiceForm {
            mounts: "type=volume,source=data,target=/data,volume.nocopy=true,read_only=true\n\
                     type=tmpfs,target=/cache,tmpfs.size=64m"
                .into(),
            ..full()
        };
        let built = build(&form, &context()).unwrap().json();
        let mounts = &built["TaskTemplate"]["ContainerSpec"]["Mounts"];
        assert_eq!(mounts[0]["Source"], "data");
        assert_eq!(mounts[0]["ReadOnly"], true);
        assert_eq!(mounts[0]["VolumeOptions"]["NoCopy"], true, "{mounts}");
        assert_eq!(mounts[1]["Type"], "tmpfs");
        assert_eq!(mounts[1]["TmpfsOptions"]["SizeBytes"], 64 << 20, "{mounts}");
        // The running service's form keeps them, so an edit does not drop them.
        let view = ServiceView::read(&built).unwrap();
        let again = ServiceForm::of_view(&view);
        assert_eq!(
            again.mounts,
            "type=volume,target=/data,source=data,read_only=true,volume.nocopy=true\n\
             type=tmpfs,target=/cache,tmpfs.size=64M"
        );
        let rebuilt = build(
            &ServiceForm {
                mounts: again.mounts,
                ..form.clone()
            },
            &context(),
        )
        .unwrap()
        .json();
        assert_eq!(rebuilt["TaskTemplate"]["ContainerSpec"]["Mounts"], *mounts);
        for (bad, says) in [
            (
                "type=tmpfs,target=/x,volume.nocopy=true",
                "an option of type=volume mounts",
            ),
            ("type=tmpfs,target=/x,tmpfs.size=lots", "lots"),
            (
                "type=volume,source=v,target=/x,volume.nocopy=maybe",
                "true or false",
            ),
            (
                "type=volume,source=v,target=/x,volume.driver_config=local",
                "is not a mount option",
            ),
            (
                "type=tmpfs,target=/x,tmpfs.mode=8",
                "mode \"8\" is not an octal file mode",
            ),
            (
                "type=tmpfs,target=/x,tmpfs.mode=17777",
                "permission bits are at most 7777",
            ),
            (
                "type=volume,target=/x,volume.driver=nfs",
                "give it source=NAME",
            ),
            (
                "type=volume,source=v,target=/x,\"volume.driver_opts.o=a,b",
                "a quote is left open",
            ),
            (
                "type=volume,source=v,target=/x,volume.driver=a\n\
                 type=volume,source=v,target=/y,volume.driver=b",
                "a volume has one driver",
            ),
        ] {
            let form = ServiceForm {
                mounts: bad.into(),
                ..full()
            };
            let errors = build(&form, &context()).unwrap_err();
            assert!(
                errors
                    .iter()
                    .any(|e| e.field == "mounts" && e.message.contains(says)),
                "{bad}: {errors:?}"
            );
        }
    }

    #[test]
    fn volume_drivers_and_tmpfs_modes_reach_the_spec_and_come_back_as_saved() {
        let form = ServiceForm {
            mounts: "type=volume,source=shared,target=/data,volume.driver=local,\
                     volume.driver_opts.type=tmpfs,volume.driver_opts.device=tmpfs,\
                     \"volume.driver_opts.o=size=64m,uid=1000\"\n\
                     shared:/again:ro\n\
                     type=tmpfs,target=/cache,tmpfs.size=64m,tmpfs.mode=1770"
                .into(),
            ..full()
        };
        let built = build(&form, &context()).unwrap().json();
        let mounts = &built["TaskTemplate"]["ContainerSpec"]["Mounts"];
        let driver = &mounts[0]["VolumeOptions"]["DriverConfig"];
        assert_eq!(mounts[0]["Source"], "shared", "{mounts}");
        assert_eq!(driver["Name"], "local", "{mounts}");
        assert_eq!(driver["Options"]["o"], "size=64m,uid=1000", "{mounts}");
        assert_eq!(driver["Options"]["type"], "tmpfs", "{mounts}");
        assert_eq!(
            mounts[1]["VolumeOptions"]["DriverConfig"], *driver,
            "the volume's driver goes with each of its mounts"
        );
        assert!(
            mounts[0]["VolumeOptions"].get("Labels").is_none(),
            "a lone service's volume carries no stack label: {mounts}"
        );
        assert_eq!(mounts[2]["TmpfsOptions"]["Mode"], 0o1770, "{mounts}");
        // What was saved is what the form shows, and shows again once saved.
        let view = ServiceView::read(&built).unwrap();
        let again = ServiceForm::of_view(&view);
        assert_eq!(
            again.mounts,
            "type=volume,target=/data,source=shared,volume.driver=local,\
             volume.driver_opts.device=tmpfs,\"volume.driver_opts.o=size=64m,uid=1000\",\
             volume.driver_opts.type=tmpfs\n\
             type=volume,target=/again,source=shared,read_only=true,volume.driver=local,\
             volume.driver_opts.device=tmpfs,\"volume.driver_opts.o=size=64m,uid=1000\",\
             volume.driver_opts.type=tmpfs\n\
             type=tmpfs,target=/cache,tmpfs.size=64M,tmpfs.mode=1770"
        );
        let rebuilt = build(
            &ServiceForm {
                mounts: again.mounts.clone(),
                ..form.clone()
            },
            &context(),
        )
        .unwrap()
        .json();
        assert_eq!(rebuilt["TaskTemplate"]["ContainerSpec"]["Mounts"], *mounts);
        let view = ServiceView::read(&rebuilt).unwrap();
        assert_eq!(ServiceForm::of_view(&view).mounts, again.mounts);
    }

    #[test]
    fn every_field_reaches_the_spec() {
        let built = build(&full(), &context()).unwrap();
        let s = &built.json();
        let c = &s["TaskTemplate"]["ContainerSpec"];
        assert_eq!(s["Name"], "web");
        assert_eq!(c["Image"], "nginx:1.25");
        assert_eq!(c["Command"], json!(["/docker-entrypoint.sh"]));
        assert_eq!(c["Args"], json!(["nginx", "-g", "daemon off;"]));
        assert_eq!(c["Env"], json!(["A=1", "PRICE=$5"]));
        assert_eq!(c["Mounts"].as_array().unwrap().len(), 3);
        assert_eq!(c["Mounts"][0]["Source"], "data");
        assert_eq!(c["Mounts"][1]["ReadOnly"], true);
        assert_eq!(c["Mounts"][2]["Type"], "tmpfs");
        assert_eq!(c["Secrets"][0]["SecretID"], "sec1");
        assert_eq!(c["Secrets"][1]["File"]["Name"], "other");
        assert_eq!(c["Configs"][0]["ConfigID"], "cfg1");
        assert_eq!(c["Configs"][0]["File"]["Name"], "/etc/nginx/nginx.conf");
        let t = &s["TaskTemplate"];
        assert_eq!(t["Resources"]["Limits"]["NanoCPUs"], 500_000_000);
        assert_eq!(t["Resources"]["Reservations"]["MemoryBytes"], 32 << 20);
        assert_eq!(t["Placement"]["Constraints"], json!(["node.role==worker"]));
        assert_eq!(
            t["Placement"]["Preferences"][0]["Spread"]["SpreadDescriptor"],
            "node.labels.zone"
        );
        assert_eq!(t["RestartPolicy"]["Condition"], "on-failure");
        assert_eq!(t["RestartPolicy"]["MaxAttempts"], 3);
        assert_eq!(t["LogDriver"]["Name"], "local");
        assert_eq!(t["LogDriver"]["Options"]["max-size"], "10m");
        assert!(t.get("Networks").is_none_or(|n| n == &json!([])));
        assert_eq!(s["Mode"]["Replicated"]["Replicas"], 3);
        assert_eq!(s["UpdateConfig"]["FailureAction"], "rollback");
        assert_eq!(s["UpdateConfig"]["Order"], "start-first");
        assert_eq!(s["RollbackConfig"]["Parallelism"], 1);
        assert_eq!(s["Labels"], json!({"team": "shop"}));
        let ports = s["EndpointSpec"]["Ports"].as_array().unwrap();
        assert_eq!(ports.len(), 3);
        assert_eq!(ports[2]["PublishMode"], "host");
    }

    #[test]
    fn a_service_read_back_gives_the_same_form() {
        // The first reading writes Swarm's defaults out; from then on nothing moves.
        let read_back =
            |spec: &serde_json::Value| ServiceForm::of_view(&ServiceView::read(spec).unwrap());
        let first = build(&full(), &context()).unwrap();
        let second = build(&read_back(&first.json()), &context()).unwrap();
        let third = build(&read_back(&second.json()), &context()).unwrap();
        assert_eq!(read_back(&second.json()), read_back(&third.json()));
        assert_eq!(second.json(), third.json());
        let mut without_defaults = second.json();
        without_defaults["RollbackConfig"]
            .as_object_mut()
            .unwrap()
            .remove("Monitor");
        assert_eq!(without_defaults, first.json());
    }

    #[test]
    fn a_stack_service_keeps_its_stack_marks() {
        let context = Context {
            stack: Some("shop".into()),
            ..context()
        };
        let built = build(&form("shop_web", "nginx"), &context).unwrap();
        assert_eq!(built.json()["Name"], "shop_web");
        assert_eq!(built.json()["Labels"][LABEL_NAMESPACE], "shop");
        let refused = build(&form("web", "nginx"), &context).unwrap_err();
        assert_eq!(refused[0].field, "name");
    }

    #[test]
    fn memory_reads_back_in_its_unit() {
        let mut f = form("web", "nginx");
        f.limit_memory = "32M".into();
        f.reserve_memory = "1536m".into();
        let spec = build(&f, &context()).unwrap().json();
        let read = ServiceForm::of_view(&ServiceView::read(&spec).unwrap());
        assert_eq!(read.limit_memory, "32M");
        assert_eq!(read.reserve_memory, "1536M");
    }

    #[test]
    fn what_the_engine_takes_passes() {
        let mut f = form("web", "nginx");
        f.ports = "8080:80\n8080:80/udp\n80".into();
        f.update_max_failure_ratio = "1".into();
        f.rollback_max_failure_ratio = "0.25".into();
        f.limit_memory = "6M".into();
        f.log_options = "max-size=10m\nmax-file=3".into();
        assert!(build(&f, &context()).is_ok());
    }

    #[test]
    fn global_mode() {
        let mut f = form("agent", "busybox");
        f.mode = "global".into();
        let built = build(&f, &context()).unwrap();
        assert_eq!(built.json()["Mode"], json!({"Global": {}}));
        f.replicas = "2".into();
        assert_eq!(error_fields(&f), ["replicas"]);
    }

    /// Bad input in every field is refused naming that field.
    #[test]
    fn bad_input_names_its_field() {
        let mut missed = Vec::new();
        for (field, spoil) in SPOILS {
            let mut f = form("web", "nginx");
            spoil(&mut f);
            match build(&f, &context()) {
                Ok(_) => missed.push(format!("{field}: accepted {f:?}")),
                Err(errors) if errors[0].field != *field => {
                    missed.push(format!("{field}: named {errors:?}"))
                }
                Err(_) => {}
            }
        }
        assert!(missed.is_empty(), "{missed:#?}");
    }

    /// Tryout 12 finding 9: one answer marks every wrong field, not the first the compose
    /// reading meets.
    #[test]
    fn every_wrong_field_is_marked_in_one_answer() {
        let mut f = form("web", "nginx");
        let mut fields: Vec<&str> = Vec::new();
        for (field, spoil) in SPOILS {
            if !fields.contains(field) {
                spoil(&mut f);
                fields.push(field);
            }
        }
        let marked: Vec<&str> = build(&f, &context())
            .unwrap_err()
            .iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(marked, fields);
        // The tryout's two pairs.
        for (spoil, fields) in [
            (
                (|f: &mut ServiceForm| {
                    f.mode = "globall".into();
                    f.update_order = "sideways".into();
                }) as Spoil,
                ["mode", "update_order"],
            ),
            (
                |f: &mut ServiceForm| {
                    f.restart_delay = "5 parsecs".into();
                    f.update_max_failure_ratio = "2".into();
                },
                ["restart_delay", "update_max_failure_ratio"],
            ),
        ] {
            let mut f = form("web", "nginx");
            spoil(&mut f);
            let marked: Vec<&str> = build(&f, &context())
                .unwrap_err()
                .iter()
                .map(|e| e.field)
                .collect();
            assert_eq!(marked, fields);
        }
    }

    type Spoil = fn(&mut ServiceForm);

    /// A wrong value of each field, the field first; a field may come more than once.
    const SPOILS: &[(&str, Spoil)] = &[
        ("name", |f| f.name = "-web".into()),
        ("name", |f| f.name = String::new()),
        ("image", |f| f.image = "Nginx:UPPER".into()),
        ("image", |f| f.image = String::new()),
        ("entrypoint", |f| f.entrypoint = "sh -c 'unclosed".into()),
        ("command", |f| f.command = "echo \"unclosed".into()),
        ("env", |f| f.env = "=1".into()),
        ("ports", |f| f.ports = "80:http".into()),
        ("ports", |f| f.ports = "published=80,target=x".into()),
        ("mounts", |f| f.mounts = "type=floppy,target=/a".into()),
        ("mounts", |f| f.mounts = "type=volume,source=x".into()),
        ("secrets", |f| f.secrets = "nope".into()),
        ("configs", |f| f.configs = "nope:/x".into()),
        ("limit_cpus", |f| f.limit_cpus = "half".into()),
        ("limit_memory", |f| f.limit_memory = "64 apples".into()),
        ("reserve_cpus", |f| f.reserve_cpus = "-1".into()),
        ("reserve_memory", |f| f.reserve_memory = "lots".into()),
        ("constraints", |f| f.constraints = "node.role=worker".into()),
        ("preferences", |f| {
            f.preferences = "node.labels.zone\nx:y".into()
        }),
        ("mode", |f| f.mode = "sometimes".into()),
        ("replicas", |f| f.replicas = "three".into()),
        ("restart_condition", |f| {
            f.restart_condition = "always".into()
        }),
        ("restart_delay", |f| f.restart_delay = "5 minutes".into()),
        ("restart_max_attempts", |f| {
            f.restart_max_attempts = "many".into()
        }),
        ("restart_window", |f| f.restart_window = "1x".into()),
        ("update_parallelism", |f| f.update_parallelism = "-2".into()),
        ("update_delay", |f| f.update_delay = "soon".into()),
        ("update_failure_action", |f| {
            f.update_failure_action = "panic".into()
        }),
        ("update_monitor", |f| f.update_monitor = "10".into()),
        ("update_max_failure_ratio", |f| {
            f.update_max_failure_ratio = "lots".into()
        }),
        ("update_order", |f| f.update_order = "random".into()),
        ("rollback_parallelism", |f| {
            f.rollback_parallelism = "x".into()
        }),
        ("rollback_delay", |f| f.rollback_delay = "x".into()),
        ("rollback_failure_action", |f| {
            f.rollback_failure_action = "rollback".into()
        }),
        ("rollback_monitor", |f| f.rollback_monitor = "x".into()),
        ("rollback_max_failure_ratio", |f| {
            f.rollback_max_failure_ratio = "x".into()
        }),
        ("rollback_order", |f| f.rollback_order = "x".into()),
        ("labels", |f| f.labels = "no key".into()),
        // Tryout 7 finding 18: dropped without a word before.
        ("labels", |f| {
            f.labels = "team=shop\ncom.docker.stack.namespace=evil".into()
        }),
        ("labels", |f| f.labels = "com.docker.stack.image=x".into()),
        ("log_driver", |f| f.log_driver = "no such driver".into()),
        ("log_options", |f| f.log_options = "=v".into()),
        // Issue #14: what passed the preview and failed only at the engine or rollout.
        ("update_max_failure_ratio", |f| {
            f.update_max_failure_ratio = "2".into()
        }),
        ("rollback_max_failure_ratio", |f| {
            f.rollback_max_failure_ratio = "-0.5".into()
        }),
        ("ports", |f| f.ports = "8080:80\n8080:81".into()),
        ("ports", |f| {
            f.ports = "8080:80\npublished=8080,target=81".into()
        }),
        ("log_options", |f| f.log_options = "max-size=banana".into()),
        ("log_options", |f| f.log_options = "max-file=0".into()),
        ("limit_memory", |f| f.limit_memory = "1k".into()),
        ("reserve_memory", |f| f.reserve_memory = "5M".into()),
        // Tryout finding 6: a bare name, and mounts the engine rejects the task for.
        ("env", |f| f.env = "A=1\nNOEQUALS".into()),
        ("mounts", |f| {
            f.mounts = "type=volume,target=relative".into()
        }),
        ("mounts", |f| f.mounts = "data:relative".into()),
        ("mounts", |f| f.mounts = "type=tmpfs,target=/".into()),
        ("mounts", |f| f.mounts = "data:/a\n/srv:/a".into()),
    ];

    #[test]
    fn a_stack_reads_as_compose_and_back() {
        let context = Context {
            stack: Some("shop".into()),
            ..context()
        };
        let mut web = full();
        web.name = "shop_web".into();
        let mut db = form("shop_db", "postgres:16");
        db.mounts = "pgdata:/var/lib/postgresql/data".into();
        let specs: Vec<serde_json::Value> = [&web, &db]
            .iter()
            .map(|f| build(f, &context).unwrap().json())
            .collect();
        let views: Vec<ServiceView> = specs
            .iter()
            .map(|s| ServiceView::read(s).unwrap())
            .collect();
        let text = compose_of(&views.iter().collect::<Vec<_>>(), &context);
        assert!(
            text.contains("\"web\":") && text.contains("\"db\":"),
            "{text}"
        );
        let read = read_compose(&text, "shop.yml", &context).unwrap();
        let names: Vec<&str> = read.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["shop_db", "shop_web"]);
        let again: Vec<ServiceView> = read
            .iter()
            .map(|s| ServiceView::read(&serde_json::to_value(s).unwrap()).unwrap())
            .collect();
        assert_eq!(
            compose_of(&again.iter().collect::<Vec<_>>(), &context),
            compose_of(&[&views[1], &views[0]], &context)
        );
    }

    #[test]
    fn a_credential_is_shown_hidden() {
        let env = ["DB_PASSWORD=s3cret", "PLAIN=1", "API_TOKEN=", "BARE"].map(String::from);
        assert_eq!(
            shown_env(&env),
            ["DB_PASSWORD=<hidden>", "PLAIN=1", "API_TOKEN=", "BARE"]
        );
    }

    #[test]
    fn a_hidden_value_is_kept_on_save_typed_replaces_removed_stays_removed() {
        let current = ["DB_PASSWORD=s3cret", "API_TOKEN=t0k", "PLAIN=1"].map(String::from);
        // As shown: the same environment back.
        let mut env = shown_env(&current);
        keep_hidden(&mut env, &current).unwrap();
        assert_eq!(env, current);
        // A value typed replaces it; a variable removed is not brought back.
        let mut env = ["DB_PASSWORD=n3w", "PLAIN=2"].map(String::from);
        keep_hidden(&mut env, &current).unwrap();
        assert_eq!(env, ["DB_PASSWORD=n3w", "PLAIN=2"]);
        // The placeholder on a variable the service does not have: refused, by its name.
        let mut env = ["DB_PASS_NEW=<hidden>", "PLAIN=1"].map(String::from);
        assert_eq!(
            keep_hidden(&mut env, &current),
            Err("DB_PASS_NEW".to_owned())
        );
        // A URL's hidden password: kept when the URL is left as shown, refused when the URL
        // around it changed (its password belongs to the old one).
        let current = ["DATABASE_URL=postgres://app:s3cret@db/app".to_owned()];
        let mut env = shown_env(&current);
        assert_eq!(env, ["DATABASE_URL=postgres://app:<hidden>@db/app"]);
        keep_hidden(&mut env, &current).unwrap();
        assert_eq!(env, current);
        let mut env = ["DATABASE_URL=postgres://app:<hidden>@db2/app".to_owned()];
        assert_eq!(
            keep_hidden(&mut env, &current),
            Err("DATABASE_URL".to_owned())
        );
    }

    /// Tryout 13 finding 8: a secret's owner and mode (a postgres key, uid 70, 0400) were
    /// written back as root and 0444 by any save of the form or the compose text.
    #[test]
    fn a_files_owner_and_mode_are_shown_and_kept() {
        let context = context();
        let mut db = form("db", "postgres:16");
        db.secrets = "db-pass:server.key,uid=70,gid=70,mode=0400\ndb-pass".into();
        let spec = build(&db, &context).unwrap().json();
        let secrets = &spec["TaskTemplate"]["ContainerSpec"]["Secrets"];
        assert_eq!(
            secrets[0]["File"],
            json!({"Name": "server.key", "UID": "70", "GID": "70", "Mode": 0o400}),
            "{spec}"
        );
        assert_eq!(secrets[1]["File"]["Mode"], 0o444, "{spec}");
        let view = ServiceView::read(&spec).unwrap();
        let shown = ServiceForm::of_view(&view);
        assert_eq!(shown.secrets, db.secrets);
        let secrets_of =
            |spec: &serde_json::Value| spec["TaskTemplate"]["ContainerSpec"]["Secrets"].clone();
        assert_eq!(
            secrets_of(&build(&shown, &context).unwrap().json()),
            *secrets
        );
        let text = compose_of(&[&view], &context);
        assert!(text.contains("        mode: 0400\n"), "{text}");
        let read = read_compose(&text, "db.yml", &context).unwrap();
        assert_eq!(
            secrets_of(&serde_json::to_value(&read[0]).unwrap()),
            *secrets
        );
        for wrong in [
            "db-pass,mode=999",
            "db-pass,mode=",
            "db-pass,uid=postgres",
            "db-pass,owner=70",
        ] {
            let mut f = db.clone();
            f.secrets = wrong.into();
            let errors = build(&f, &context).unwrap_err();
            assert_eq!(errors[0].field, "secrets", "{wrong}: {errors:?}");
        }
    }

    #[test]
    fn a_credential_is_hidden_in_the_form_and_as_compose_and_kept_on_save() {
        let mut db = form("db", "postgres:16");
        db.env = "DB_PASSWORD=s3cret\nPLAIN=1".into();
        let built = build(&db, &context()).unwrap();
        // The preview's compose block too (tryout 13 finding 2).
        assert!(
            !built.compose.contains("s3cret") && built.compose.contains("DB_PASSWORD=<hidden>"),
            "{}",
            built.compose
        );
        let spec = built.json();
        let view = ServiceView::read(&spec).unwrap();
        let shown = ServiceForm::of_view(&view);
        assert_eq!(shown.env, "DB_PASSWORD=<hidden>\nPLAIN=1");
        let text = compose_of(&[&view], &context());
        assert!(
            !text.contains("s3cret") && text.contains("PLAIN=1"),
            "{text}"
        );
        let context = Context {
            env: HashMap::from([("db".to_owned(), view.env.clone())]),
            ..context()
        };
        // Saved as shown, the form and the text give the running environment back.
        let env = |spec: &serde_json::Value| spec["TaskTemplate"]["ContainerSpec"]["Env"].clone();
        assert_eq!(env(&build(&shown, &context).unwrap().json()), env(&spec));
        let read = read_compose(&text, "db.yml", &context).unwrap();
        assert_eq!(env(&serde_json::to_value(&read[0]).unwrap()), env(&spec));
        // A new service has nothing to keep: refused at the field, and at the line.
        let mut new = shown.clone();
        new.name = "db2".into();
        let errors = build(&new, &context).unwrap_err();
        assert_eq!(errors[0].field, "env");
        assert!(errors[0].message.contains("type its value"), "{errors:?}");
        let renamed = text.replace("DB_PASSWORD=", "DB_PASS=");
        let refused = read_compose(&renamed, "db.yml", &context).unwrap_err();
        let line = renamed
            .lines()
            .position(|l| l.contains("DB_PASS="))
            .unwrap()
            + 1;
        assert!(
            refused.to_string().starts_with(&format!("db.yml:{line}:")),
            "{refused}"
        );
        assert!(refused.to_string().contains("type its value"), "{refused}");
    }

    #[test]
    fn compose_errors_name_the_line_and_unknown_objects_are_refused() {
        let text = "services:\n  web:\n    image: nginx\n    deploy:\n      replicas: lots\n";
        match read_compose(text, "web.yml", &context()).unwrap_err() {
            ComposeRefusal::Compose(e) => assert_eq!((e.file.as_str(), e.line), ("web.yml", 5)),
            other => panic!("{other:?}"),
        }
        let text = "services:\n  web:\n    image: nginx\n    secrets: [nope]\n\
                    secrets:\n  nope:\n    external: true\n";
        let refused = read_compose(text, "web.yml", &context()).unwrap_err();
        assert!(
            refused
                .to_string()
                .starts_with("web.yml:4:15: web: there is no secret named \"nope\""),
            "{refused}"
        );
        // Named by the swarm's name under another key, in the long syntax: at the reference.
        let text = "services:\n  web:\n    image: nginx\n    configs:\n      \
                    - source: site\n        target: /etc/site\n\
                    configs:\n  site:\n    external: true\n    name: site.v2\n";
        match read_compose(text, "web.yml", &context()).unwrap_err() {
            ComposeRefusal::Refused { error, setting, .. } => {
                assert_eq!((error.line, error.column, setting), (5, 9, "configs"));
                assert!(
                    error.message.contains("no config named \"site.v2\""),
                    "{error}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_edit_as_compose_reads_the_keys_the_form_does_not_hold() {
        let context = Context {
            stack: Some("shop".into()),
            ..context()
        };
        let text = "services:\n  web:\n    image: nginx\n    read_only: true\n    \
                    stop_grace_period: 3s\n    container_name: w\n    \
                    healthcheck: {test: [CMD, /bin/true], interval: 5s}\n    \
                    networks: [default]\n";
        let read = read_compose_edit(text, "shop.yml", &context).unwrap();
        let (spec, keys) = &read.services[0];
        assert_eq!(
            keys,
            &["stop_grace_period", "healthcheck", "read_only", "networks"]
        );
        let spec = serde_json::to_value(spec).unwrap();
        let container = &spec["TaskTemplate"]["ContainerSpec"];
        assert_eq!(container["ReadOnly"], true);
        assert_eq!(container["StopGracePeriod"], 3_000_000_000u64);
        assert_eq!(
            container["Healthcheck"]["Test"],
            json!(["CMD", "/bin/true"])
        );
        // By the network's id, as the engine keeps it.
        assert_eq!(spec["TaskTemplate"]["Networks"][0]["Target"], "net1");
        assert_eq!(
            read.ignored,
            [
                "shop.yml:6:21: web: `container_name` is ignored by docker stack deploy \
              (Swarm names a service's containers itself): not applied"
            ]
        );
        // A text that names no network keeps the service's: none read, no key written.
        let bare = read_compose_edit(
            "services:\n  web:\n    image: nginx\n",
            "shop.yml",
            &context,
        )
        .unwrap();
        assert!(bare.services[0].1.is_empty(), "{bare:?}");
        assert!(bare.services[0].0.task_template.networks.is_empty());
        // A network the swarm does not have: refused where the service names it.
        let text = "services:\n  web:\n    image: nginx\n    networks:\n      - front\n\
                    networks:\n  front:\n    external: true\n";
        match read_compose_edit(text, "shop.yml", &context).unwrap_err() {
            ComposeRefusal::Refused { error, setting, .. } => {
                assert_eq!((error.line, error.column, setting), (5, 9, "networks"));
                assert!(
                    error
                        .message
                        .contains("network front is declared external but does not exist"),
                    "{error}"
                );
            }
            other => panic!("{other:?}"),
        }
        let text =
            "services:\n  web:\n    image: nginx\n    networks: [back]\nnetworks:\n  back: {}\n";
        let refused = read_compose_edit(text, "shop.yml", &context).unwrap_err();
        assert!(
            refused.to_string().starts_with(
                "shop.yml:4:16: web: network shop_back does not exist: edit as compose creates no network"
            ),
            "{refused}"
        );
        let text = "services:\n  web:\n    image: nginx\n    credential_spec: {file: x.json}\n";
        let refused = read_compose_edit(text, "shop.yml", &context).unwrap_err();
        assert!(
            refused
                .to_string()
                .starts_with("shop.yml:4:22: web: credential_spec:"),
            "{refused}"
        );
    }

    #[test]
    fn the_running_keys_shown_read_back_to_no_change_and_deleted_are_removed() {
        let context = context();
        let mut web = form("web", "nginx");
        web.replicas = "1".into();
        let mut current = build(&web, &context).unwrap().json();
        let container = &mut current["TaskTemplate"]["ContainerSpec"];
        container["ReadOnly"] = json!(true);
        container["StopGracePeriod"] = json!(1_500_000_000u64);
        container["Healthcheck"] = json!({"Test": ["CMD-SHELL", "curl -f localhost/$PATH"],
            "Interval": 5_000_000_000u64, "Timeout": 250_000_000u64,
            "StartPeriod": 60_000_000_000u64, "StartInterval": 1_000_000_000u64, "Retries": 3});
        // Tryout 12: what `docker service create --user … --cap-add … --dns …` sets, shown too.
        for (field, value) in [
            ("User", json!("1000:1000")),
            ("Hostname", json!("web-{{.Task.Slot}}")),
            ("Dir", json!("/srv/$app")),
            ("StopSignal", json!("SIGINT")),
            ("Init", json!(false)),
            ("TTY", json!(true)),
            ("OpenStdin", json!(true)),
            ("CapabilityAdd", json!(["CAP_NET_ADMIN", "CAP_SYS_TIME"])),
            ("CapabilityDrop", json!(["CAP_MKNOD"])),
            (
                "DNSConfig",
                json!({"Nameservers": ["1.1.1.1"], "Search": ["lan"], "Options": ["ndots:2"]}),
            ),
        ] {
            container[field] = value;
        }
        let overlay_of = |text: &str, current: &serde_json::Value| {
            let read = read_compose_edit(text, "web.yml", &context).unwrap();
            let (spec, keys) = &read.services[0];
            let written = serde_json::to_value(spec).unwrap();
            swarmkeeper_engine::overlay_compose(current, &written, keys)
        };
        let view = ServiceView::read(&current).unwrap();
        let text = compose_of_running(&[&view], &context);
        assert!(text.contains("    read_only: true\n"), "{text}");
        assert!(text.contains("      start_interval: \"1s\"\n"), "{text}");
        for line in [
            "    user: \"1000:1000\"\n",
            "    working_dir: \"/srv/$$app\"\n",
            "    init: false\n",
            "    tty: true\n",
            "    cap_add: [\"CAP_NET_ADMIN\", \"CAP_SYS_TIME\"]\n",
            "    dns_search: [\"lan\"]\n",
        ] {
            assert!(text.contains(line), "{line}: {text}");
        }
        assert_eq!(overlay_of(&text, &current), current, "{text}");
        // The user and the added capabilities deleted: the image's user, no capability added,
        // the resolver options compose cannot write kept.
        let fewer = text
            .lines()
            .filter(|l| !l.starts_with("    user:") && !l.starts_with("    cap_add:"))
            .map(|l| format!("{l}\n"))
            .collect::<String>();
        let mut wanted = current.clone();
        let container = wanted["TaskTemplate"]["ContainerSpec"]
            .as_object_mut()
            .unwrap();
        container.remove("User");
        container.remove("CapabilityAdd");
        assert_eq!(overlay_of(&fewer, &current), wanted, "{fewer}");
        // Deleted from the text (its last lines): removed; the rest stays.
        let deleted = &text[..text.find("    healthcheck:").unwrap()];
        let spec = overlay_of(deleted, &current);
        let mut wanted = current.clone();
        let container = wanted["TaskTemplate"]["ContainerSpec"]
            .as_object_mut()
            .unwrap();
        container.remove("Healthcheck");
        assert_eq!(spec, wanted, "{deleted}");
        // The image's healthcheck turned off reads back as off.
        current["TaskTemplate"]["ContainerSpec"]["Healthcheck"] = json!({"Test": ["NONE"]});
        let view = ServiceView::read(&current).unwrap();
        let text = compose_of_running(&[&view], &context);
        assert!(text.contains("      disable: true\n"), "{text}");
        assert_eq!(overlay_of(&text, &current), current, "{text}");
    }

    #[test]
    fn a_refusal_after_reading_points_at_what_the_text_wrote() {
        let text = "services:\n  web:\n    image: nginx\n    ports:\n      - \"8080:80\"\n      \
                    - target: 53\n        published: 8053\n        protocol: udp\n    \
                    deploy:\n      resources:\n        reservations: {memory: 1T, cpus: '64'}\n";
        let place = |refused| refused_place(text, "web", refused).map(|at| (at.line, at.column));
        let port = |published, protocol| Refused::Port {
            published,
            protocol,
        };
        assert_eq!(place(port(8080, "tcp")), Some((5, 9)));
        assert_eq!(place(port(8053, "udp")), Some((6, 9)));
        // A port the text does not write (another protocol): the service itself.
        assert_eq!(place(port(8053, "tcp")), Some((2, 3)));
        let unmet = |unmet| Unplaceable {
            unmet,
            why: String::new(),
        };
        let (memory, together, nodes) = (
            unmet(Unmet::Memory),
            unmet(Unmet::Together),
            unmet(Unmet::Nodes),
        );
        assert_eq!(place(Refused::Unplaceable(&memory)), Some((11, 32)));
        // Several needs no one node meets together: the `deploy` key; no node at all: the
        // service.
        assert_eq!(place(Refused::Unplaceable(&together)), Some((10, 7)));
        assert_eq!(place(Refused::Unplaceable(&nodes)), Some((2, 3)));
        assert_eq!(refused_place(text, "db", port(8080, "tcp")), None);
    }

    proptest::proptest! {
        /// compose → spec → compose → spec is stable: the compose text written for a running
        /// service reads back into the same spec, and that spec writes the same text.
        #[test]
        fn compose_and_spec_round_trip(
            image in "(busybox|nginx:1\\.2[0-9]|registry:5000/app@sha256:[0-9a-f]{64})",
            env in proptest::collection::vec("[A-Z_]{1,8}=[ -~]{0,12}", 0..4),
            // Keyed by the published port: a port published twice is refused by the form.
            ports in proptest::collection::btree_map(1u32..65535, (1u32..65535, proptest::bool::ANY), 0..3),
            mounts in proptest::collection::vec("(data|/srv|/var/x)[0-9]?", 0..3),
            replicas in proptest::option::of(0u64..20),
            global in proptest::bool::ANY,
            cpus in proptest::option::of(1u64..4000),
            // From the engine's minimum up: below it the form refuses (`bad_input_names_its_field`).
            memory in proptest::option::of(swarmkeeper_compose::MIN_MEMORY..1 << 34),
            parallelism in proptest::option::of(0u64..5),
            order in proptest::option::of(proptest::sample::select(vec!["stop-first", "start-first"])),
            labels in proptest::collection::btree_map("[a-z.]{1,10}", "[ -~]{0,10}", 0..3),
            command in proptest::collection::vec("[ -~]{0,8}", 0..3),
        ) {
            let f = ServiceForm {
                name: "web".into(),
                image,
                env: env.join("\n"),
                ports: ports
                    .iter()
                    .map(|(p, (t, host))| if *host {
                        format!("published={p},target={t},mode=host")
                    } else {
                        format!("{p}:{t}")
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
                mounts: mounts
                    .iter()
                    .enumerate()
                    .map(|(i, m)| format!("{m}:/m{i}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
                mode: if global { "global".into() } else { "replicated".into() },
                replicas: if global { String::new() } else { replicas.map(|r| r.to_string()).unwrap_or_default() },
                limit_cpus: cpus.map(|c| format!("{}.{:03}", c / 1000, c % 1000)).unwrap_or_default(),
                reserve_memory: memory.map(|m| m.to_string()).unwrap_or_default(),
                update_parallelism: parallelism.map(|p| p.to_string()).unwrap_or_default(),
                update_order: order.unwrap_or_default().to_owned(),
                labels: labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
                command: shell_words(&command),
                ..ServiceForm::default()
            };
            let context = context();
            let first = build(&f, &context).unwrap();
            let text_of = |spec: &serde_json::Value| {
                compose_of(&[&ServiceView::read(spec).unwrap()], &context)
            };
            let spec_of = |text: &str| serde_json::to_value(read_compose(text, "c.yml", &context).unwrap().pop().unwrap()).unwrap();
            let c1 = text_of(&first.json());
            // The rendered text writes none of the keys the form does not hold.
            let read = read_compose_edit(&c1, "c.yml", &context).unwrap();
            proptest::prop_assert!(read.services[0].1.is_empty());
            proptest::prop_assert!(read.ignored.is_empty());
            let s1 = spec_of(&c1);
            let c2 = text_of(&s1);
            let s2 = spec_of(&c2);
            proptest::prop_assert_eq!(&c1, &c2);
            proptest::prop_assert_eq!(&s1, &s2);
            let c = &s1["TaskTemplate"]["ContainerSpec"];
            proptest::prop_assert_eq!(&c["Image"], &first.json()["TaskTemplate"]["ContainerSpec"]["Image"]);
            proptest::prop_assert_eq!(&c["Env"], &first.json()["TaskTemplate"]["ContainerSpec"]["Env"]);
            proptest::prop_assert_eq!(&c["Args"], &first.json()["TaskTemplate"]["ContainerSpec"]["Args"]);
            proptest::prop_assert_eq!(&s1["EndpointSpec"], &first.json()["EndpointSpec"]);
            proptest::prop_assert_eq!(&s1["Labels"], &first.json()["Labels"]);
        }
    }

    #[test]
    fn an_unplaceable_service_marks_the_need_no_node_meets() {
        let field = |unmet| {
            placement_error(&Unplaceable {
                unmet,
                why: "why".into(),
            })
            .field
        };
        assert_eq!(field(Unmet::LogDriver), "log_driver");
        assert_eq!(field(Unmet::Memory), "reserve_memory");
        assert_eq!(field(Unmet::Cpus), "reserve_cpus");
        assert_eq!(field(Unmet::Constraints), "constraints");
        for unmet in [
            Unmet::LogDriver,
            Unmet::Memory,
            Unmet::Cpus,
            Unmet::Constraints,
        ] {
            assert!(FIELDS.contains(&field(unmet)), "{unmet:?}");
        }
    }

    #[test]
    fn every_field_has_a_row() {
        let rows: Vec<&str> = ROWS.iter().map(|r| r.0).collect();
        assert_eq!(rows, FIELDS);
    }

    #[test]
    fn json_numbers_lists_and_objects_are_read() {
        let form: ServiceForm = serde_json::from_value(json!({
            "name": "web", "image": "nginx", "replicas": 2,
            "env": ["A=1", "B=2"], "labels": {"team": "shop"}
        }))
        .unwrap();
        assert_eq!(form.replicas, "2");
        assert_eq!(form.env, "A=1\nB=2");
        assert_eq!(form.labels, "team=shop");
    }

    #[test]
    fn dollars_are_not_interpolated() {
        let mut f = form("web", "nginx");
        f.env = "A=${HOME}".into();
        let built = build(&f, &context()).unwrap();
        assert_eq!(
            built.json()["TaskTemplate"]["ContainerSpec"]["Env"],
            json!(["A=${HOME}"])
        );
    }

    #[test]
    fn quotes_in_a_value_cannot_write_yaml() {
        let mut f = form("web", "nginx");
        f.env = "A=x\", image: \"evil\\".into();
        let built = build(&f, &context()).unwrap();
        let container = &built.json()["TaskTemplate"]["ContainerSpec"];
        assert_eq!(container["Image"], "nginx:latest");
        assert_eq!(container["Env"], json!(["A=x\", image: \"evil\\"]));
    }

    #[test]
    fn shell_words_split_back() {
        let words = vec!["sh".to_owned(), "-c".to_owned(), "echo 'hi' $X".to_owned()];
        let mut f = form("web", "busybox");
        f.command = shell_words(&words);
        let built = build(&f, &context()).unwrap();
        assert_eq!(
            built.json()["TaskTemplate"]["ContainerSpec"]["Args"],
            json!(words)
        );
    }
}
