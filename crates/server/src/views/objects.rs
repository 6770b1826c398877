//! Secrets and configs: each with the services and tasks that use it (one rule,
//! `swarmkeeper_swarm::file_users`), the name a rotation gives the next version, and the
//! checks of a name and a value before anything is sent to the engine. Pure.

use std::collections::{BTreeMap, HashMap, HashSet};

use jiff::Timestamp;
use serde::Serialize;
use swarmkeeper_engine::{
    file_users, FileKind, FileRef, Service, SwarmObject, Task, TaskHolding, UpdateState,
};

pub use super::FieldError;

/// The most a secret or config may hold: Swarm refuses more (`MaxSecretSize`,
/// `MaxConfigSize` in swarmkit, 500 KiB each).
pub const MAX_DATA_BYTES: usize = 500 * 1024;

/// Swarm's longest object name.
const MAX_NAME_CHARS: usize = 64;

/// A service that uses a secret or config, and the file its tasks read it from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct User {
    pub service: String,
    /// `File.Name`; empty for a config used as a credential spec.
    pub target: String,
}

/// A task that still runs with a secret or config its service no longer names
/// ([`swarmkeeper_swarm::TaskHolding`]), as the pages and a refused removal name it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TaskUser {
    /// `SERVICE.SLOT` for a replicated service's task, `SERVICE` for a global one's (its node
    /// says which), `ID (its service is removed)` (the task's short id) when the service is
    /// gone.
    pub task: String,
    pub id: String,
    /// Its service's name, `None` when the service is gone.
    pub service: Option<String>,
    /// Its node's hostname (the node's id when Swarm no longer lists it; empty before Swarm
    /// assigned it one).
    pub node: String,
    /// `Status.State` (`running` while it stops) and what Swarm wants of it (`shutdown`,
    /// `remove`, `running`).
    pub state: String,
    pub desired_state: String,
    /// The file its container reads it as.
    pub target: String,
}

impl TaskUser {
    /// `held` named for people, its node by `hostnames` (node id → hostname).
    fn of(held: TaskHolding, hostnames: &HashMap<String, String>) -> TaskUser {
        let task = match (&held.service, held.slot) {
            (Some(service), Some(slot)) => format!("{service}.{slot}"),
            (Some(service), None) => service.clone(),
            (None, _) => format!(
                "{} (its service is removed)",
                swarmkeeper_units::short_id(&held.task_id)
            ),
        };
        TaskUser {
            task,
            node: hostnames
                .get(&held.node_id)
                .cloned()
                .unwrap_or_else(|| held.node_id.clone()),
            id: held.task_id,
            service: held.service,
            state: held.state.to_string(),
            desired_state: held.desired_state.to_string(),
            target: held.target,
        }
    }

    /// `web.1 on node-2 (running, desired shutdown)`.
    pub fn describe(&self) -> String {
        let on = if self.node.is_empty() {
            String::new()
        } else {
            format!(" on {}", self.node)
        };
        format!(
            "{}{on} ({}, desired {})",
            self.task, self.state, self.desired_state
        )
    }
}

/// A secret or config as its page lists it. Its value is never part of it.
#[derive(Clone, Debug, Serialize)]
pub struct ObjectRow {
    pub id: String,
    pub name: String,
    pub created_at: Option<Timestamp>,
    pub labels: BTreeMap<String, String>,
    /// The stack that made it (`com.docker.stack.namespace`).
    pub stack: Option<String>,
    /// Services that use it, by name.
    pub users: Vec<User>,
    /// Tasks still running with it though their service's spec no longer names it (an old
    /// task stopping within its grace period, or kept on a paused node; a removed service's
    /// task that has not stopped yet): removing it takes their file's source away.
    pub tasks: Vec<TaskUser>,
    /// The stack whose deploy history (a `swarmkeeper-rev-*` revision or the
    /// `swarmkeeper-lock-*` lock) this config is; `None`: an operator's object.
    pub history_of: Option<String>,
}

/// The label prefixes of swarmkeeper's own deploy-history configs: revisions
/// (`swarmkeeper.revision.*`, see `swarmkeeper_deploy`'s codec) and locks (`swarmkeeper.lock.*`).
const HISTORY_LABELS: [(&str, &str); 2] = [
    (
        swarmkeeper_deploy::REVISION_STACK_LABEL,
        "swarmkeeper.revision.",
    ),
    (swarmkeeper_deploy::LOCK_STACK_LABEL, "swarmkeeper.lock."),
];

/// The stack whose deploy history an object with these labels is, or `None` for an
/// operator's object. An object with a history label but no stack label still counts (under
/// its name), so that no half-labelled record is ever offered for removal.
pub fn history_stack(name: &str, labels: &BTreeMap<String, String>) -> Option<String> {
    HISTORY_LABELS.iter().find_map(|(stack_label, prefix)| {
        labels.keys().any(|k| k.starts_with(prefix)).then(|| {
            labels
                .get(*stack_label)
                .cloned()
                .unwrap_or_else(|| name.to_owned())
        })
    })
}

/// Why a history object may not be removed or rotated here: where its history is shown and
/// how it is trimmed.
pub fn history_refusal(kind: FileKind, name: &str, stack: &str) -> String {
    format!(
        "{} {name} is part of stack {stack}'s deploy history (see /stacks/{stack}); \
         swarmkeeper keeps and trims it itself: use `swarmkeeper deploy --keep-revisions N` \
         to keep fewer revisions",
        kind.as_str()
    )
}

/// The references of one kind a service's spec makes.
pub fn refs(service: &Service, kind: FileKind) -> &[FileRef] {
    kind.refs(service)
}

/// Each object with its users — the services whose spec names it and the tasks that still
/// run with it ([`file_users`]), nodes named by `hostnames` (node id → hostname) — sorted by
/// name; one pass over the services and the tasks whatever their number.
pub fn object_rows(
    objects: &[SwarmObject],
    services: &[Service],
    tasks: &[Task],
    hostnames: &HashMap<String, String>,
    kind: FileKind,
) -> Vec<ObjectRow> {
    let mut users = file_users(kind, services, tasks);
    let mut rows: Vec<ObjectRow> = objects
        .iter()
        .map(|object| {
            let found = users.remove(object.id.as_str()).unwrap_or_default();
            let users = found
                .services
                .into_iter()
                .map(|(service, target)| User { service, target })
                .collect();
            let tasks = found
                .tasks
                .into_iter()
                .map(|held| TaskUser::of(held, hostnames))
                .collect();
            ObjectRow {
                id: object.id.clone(),
                name: object.name.clone(),
                created_at: object.created_at,
                stack: object
                    .labels
                    .get(swarmkeeper_engine::STACK_NAMESPACE_LABEL)
                    .cloned(),
                labels: object.labels.clone(),
                users,
                tasks,
                history_of: history_stack(&object.name, &object.labels),
            }
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    rows
}

/// The name of the next version of `name`: `db_password` → `db_password.v2`, `tls.v7` →
/// `tls.v8`, the first such name not `taken`.
pub fn next_version(name: &str, taken: &HashSet<&str>) -> String {
    let (base, mut version) = swarmkeeper_rollout::preflight::rotation_version(name)
        .map_or((name, 2), |(base, n)| (base, n + 1));
    loop {
        let candidate = format!("{base}.v{version}");
        if !taken.contains(candidate.as_str()) {
            return candidate;
        }
        version += 1;
    }
}

/// What a rotation's clean-up removes once its moves ended: whether every move succeeded, and
/// whether a service uses each version — asked of the engine after the moves, never inferred
/// from their outcomes, since an interrupted or failed move may have applied some services.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cleanup {
    /// Only after every move succeeded and once nothing uses it; after a failed or interrupted
    /// move it stays, for Swarm's own rollback and for the services still on it.
    pub remove_old: bool,
    /// Only when no service uses it: the rotation then changed nothing.
    pub remove_new: bool,
}

/// See [`Cleanup`].
pub fn rotation_cleanup(succeeded: bool, old_in_use: bool, new_in_use: bool) -> Cleanup {
    Cleanup {
        remove_old: succeeded && !old_in_use,
        remove_new: !succeeded && !new_in_use,
    }
}

/// What a rotation of `old` to `new` left, in one sentence for its answer: the services now on
/// `new` (`moved`) and still on `old` (`on_old`), and which version was removed.
pub fn rotation_summary(
    old: &str,
    new: &str,
    moved: &[String],
    on_old: &[String],
    cleanup: Cleanup,
) -> String {
    let mut said = Vec::new();
    if !moved.is_empty() {
        said.push(format!("{} moved to {new}", moved.join(", ")));
    }
    if !on_old.is_empty() {
        said.push(format!("{} still on {old}", on_old.join(", ")));
    }
    if moved.is_empty() && on_old.is_empty() {
        said.push("no service uses either version".to_owned());
    }
    said.push(if cleanup.remove_old {
        format!("{old} removed")
    } else {
        format!("{old} is kept")
    });
    if cleanup.remove_new {
        said.push(format!("{new} removed: the rotation changed nothing"));
    }
    said.join("; ")
}

/// Swarm's rule for object names (`^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$`, at most
/// 64 characters), checked here so that a form says which field is wrong.
pub fn check_name(field: &'static str, name: &str) -> Result<(), FieldError> {
    let refuse = |why: &str| Err(FieldError::new(field, format!("{name:?} {why}")));
    if name.is_empty() {
        return Err(FieldError::new(field, "a name is required".to_owned()));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return refuse("is longer than 64 characters");
    }
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !edge(name.chars().next()) || !edge(name.chars().last()) {
        return refuse("must start and end with a letter or digit");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return refuse("may hold only letters, digits, '-', '_' and '.'");
    }
    Ok(())
}

/// Labels Swarm would keep: no empty key (the engine takes one, and it cannot be filtered
/// on or removed by name afterwards).
pub fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), FieldError> {
    match labels.keys().any(|k| k.trim().is_empty()) {
        true => Err(FieldError::new(
            "labels",
            "a label needs a key (an empty one was given)".to_owned(),
        )),
        false => Ok(()),
    }
}

/// Whether a re-key's old key may go, from the update states of the servers that use its new
/// version (`routes::objects::retire_old_key`): `Ok(true)` once Swarm completed every one's
/// update (or reports none), `Ok(false)` while one still updates (Swarm may yet roll it back
/// to the spec that names the old key), and why it stays when no server uses the new version
/// or Swarm rolled one back to the old.
pub fn old_key_retirable(states: &[Option<&UpdateState>]) -> Result<bool, &'static str> {
    let rolled_back = |s: &Option<&UpdateState>| {
        matches!(
            s,
            Some(
                UpdateState::RollbackStarted
                    | UpdateState::RollbackPaused
                    | UpdateState::RollbackCompleted
            )
        )
    };
    if states.is_empty() {
        Err("no server uses its new version")
    } else if states.iter().any(rolled_back) {
        Err("Swarm rolled the server back to it")
    } else {
        Ok(states
            .iter()
            .all(|s| matches!(s, None | Some(UpdateState::Completed))))
    }
}

/// The bytes a posted value stands for. `encoding` `base64` decodes it (binary content: a
/// keystore, a DER certificate; Swarmpit's and Portainer's "encoded in base64"); otherwise it
/// is the text itself, and a form's CRLF line ends become LF: a browser sends a textarea's
/// lines as CRLF, while `docker secret create` stores a file's bytes, and a script or a
/// password with a stray `\r` fails (tryout 14 finding 20). The JSON API's text is kept as
/// sent.
pub fn posted_value(data: &str, encoding: &str, from_form: bool) -> Result<Vec<u8>, FieldError> {
    use base64::Engine as _;
    match encoding.trim() {
        "" | "text" if from_form => Ok(data.replace("\r\n", "\n").into_bytes()),
        "" | "text" => Ok(data.as_bytes().to_vec()),
        "base64" => {
            let packed: String = data.split_whitespace().collect();
            base64::engine::general_purpose::STANDARD
                .decode(packed)
                .map_err(|e| FieldError::new("data", format!("is not base64: {e}")))
        }
        other => Err(FieldError::new(
            "encoding",
            format!("{other:?} is not an encoding: text (the default) or base64"),
        )),
    }
}

/// A value Swarm will take: not empty, at most [`MAX_DATA_BYTES`].
pub fn check_data(kind: FileKind, data: &[u8]) -> Result<(), FieldError> {
    if data.is_empty() {
        return Err(FieldError::new(
            "data",
            format!("a {} needs a value", kind.as_str()),
        ));
    }
    if data.len() > MAX_DATA_BYTES {
        return Err(FieldError::new(
            "data",
            format!(
                "{} bytes is more than a {} may hold ({MAX_DATA_BYTES} bytes)",
                data.len(),
                kind.as_str()
            ),
        ));
    }
    Ok(())
}

/// What a removal must say about users — the services whose spec names it, then the tasks
/// that still run with it (each with its node and state) —; `None` when nothing uses it.
pub fn in_use(kind: FileKind, name: &str, users: &[User], tasks: &[TaskUser]) -> Option<String> {
    let mut said = Vec::new();
    if !users.is_empty() {
        let names: Vec<&str> = users.iter().map(|u| u.service.as_str()).collect();
        said.push(format!(
            "{} {name} is used by {}: remove it from them first, or rotate it",
            kind.as_str(),
            names.join(", ")
        ));
    }
    if !tasks.is_empty() {
        let held: Vec<String> = tasks.iter().map(TaskUser::describe).collect();
        said.push(format!(
            "{}{name} is still mounted by task{} {}: removing it would take the file from \
             under {}; remove it once {} stopped (a task stops within its service's \
             stop_grace_period; one kept on a paused node stops once the node is active or \
             drained)",
            if said.is_empty() {
                format!("{} ", kind.as_str())
            } else {
                String::new()
            },
            if tasks.len() == 1 { "" } else { "s" },
            held.join(", "),
            if tasks.len() == 1 { "it" } else { "them" },
            if tasks.len() == 1 {
                "it has"
            } else {
                "they have"
            },
        ));
    }
    (!said.is_empty()).then(|| said.join("; "))
}

/// A global service's task that a rotation could not move: Swarm starts no new task on a
/// node that is not active, so after the update the task there would keep the old version
/// (and, once removed, lose it). `service`, its node's `hostname` and `availability`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unmovable<'a> {
    pub service: &'a str,
    pub hostname: &'a str,
    pub availability: &'a str,
}

/// Why `kind` `name` cannot be rotated while these global services' tasks sit on nodes Swarm
/// places nothing new on; `None` when there is none. A replicated service's task moves to
/// another node, so only global ones are ever `stuck`.
pub fn rotation_blocked(kind: FileKind, name: &str, stuck: &[Unmovable<'_>]) -> Option<String> {
    let first = stuck.first()?;
    let tasks: Vec<String> = stuck
        .iter()
        .map(|u| format!("{} on {} ({})", u.service, u.hostname, u.availability))
        .collect();
    Some(format!(
        "{} {name} cannot be rotated now: the global service's task {} would keep {name}, since \
         Swarm starts no new task on a node that is not active; make {} active first (a drain \
         would stop that task instead)",
        kind.as_str(),
        tasks.join(", "),
        first.hostname
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use serde_json::Value;

    fn service(name: &str, secrets: Value) -> Service {
        let spec = json!({"Name": name, "TaskTemplate": {"ContainerSpec": {"Image": "nginx", "Secrets": secrets}}});
        Service::new(format!("id-{name}"), 1, spec, None, None).unwrap()
    }

    fn object(id: &str, name: &str) -> SwarmObject {
        SwarmObject {
            id: id.into(),
            name: name.into(),
            labels: BTreeMap::new(),
            created_at: None,
        }
    }

    #[test]
    fn each_object_lists_the_services_that_use_it() {
        let services = [
            service(
                "web",
                json!([{"SecretID": "s1", "SecretName": "pw", "File": {"Name": "db_pw"}}]),
            ),
            service(
                "api",
                json!([{"SecretID": "s1", "SecretName": "pw", "File": {"Name": "pw"}}]),
            ),
            service("idle", Value::Null),
        ];
        let rows = object_rows(
            &[object("s2", "tls"), object("s1", "pw")],
            &services,
            &[],
            &HashMap::new(),
            FileKind::Secret,
        );
        assert_eq!(rows[0].name, "pw");
        assert_eq!(
            rows[0].users,
            [
                User {
                    service: "api".into(),
                    target: "pw".into()
                },
                User {
                    service: "web".into(),
                    target: "db_pw".into()
                }
            ]
        );
        assert!(rows[1].users.is_empty());
        // Configs are another list: the same ids do not count.
        let configs = object_rows(
            &[object("s1", "pw")],
            &services,
            &[],
            &HashMap::new(),
            FileKind::Config,
        );
        assert!(configs[0].users.is_empty());
    }

    #[test]
    fn the_next_version_counts_up_and_skips_taken_names() {
        let none = HashSet::new();
        assert_eq!(next_version("db_password", &none), "db_password.v2");
        assert_eq!(next_version("tls.v7", &none), "tls.v8");
        assert_eq!(next_version("a.v02", &none), "a.v02.v2");
        assert_eq!(next_version("a.vx", &none), "a.vx.v2");
        assert_eq!(next_version(".v3", &none), ".v3.v2");
        let taken = HashSet::from(["pw.v2", "pw.v3"]);
        assert_eq!(next_version("pw", &taken), "pw.v4");
    }

    #[test]
    fn names_and_values_follow_swarms_rules() {
        for good in ["a", "db_password", "tls.v2", "A-1"] {
            assert_eq!(check_name("name", good), Ok(()), "{good}");
        }
        for bad in ["", "-a", "a.", "a b", "é", &"x".repeat(65)] {
            let error = check_name("name", bad).unwrap_err();
            assert_eq!(error.field, "name", "{bad}");
        }
        assert!(check_data(FileKind::Secret, b"x").is_ok());
        assert!(check_data(FileKind::Config, b"").is_err());
        let big = "x".repeat(MAX_DATA_BYTES + 1);
        let error = check_data(FileKind::Config, big.as_bytes()).unwrap_err();
        assert!(error.message.contains("512000 bytes"), "{}", error.message);
    }

    #[test]
    fn an_old_key_goes_once_swarm_completed_every_server_s_update() {
        use UpdateState::*;
        assert_eq!(old_key_retirable(&[Some(&Completed)]), Ok(true));
        assert_eq!(old_key_retirable(&[None]), Ok(true));
        assert_eq!(
            old_key_retirable(&[Some(&Completed), Some(&Updating)]),
            Ok(false)
        );
        assert_eq!(old_key_retirable(&[Some(&Paused)]), Ok(false));
        assert!(old_key_retirable(&[Some(&RollbackCompleted)]).is_err());
        assert!(old_key_retirable(&[Some(&Updating), Some(&RollbackStarted)]).is_err());
        assert!(old_key_retirable(&[]).is_err());
    }

    #[test]
    fn a_posted_value_is_the_bytes_it_stands_for() {
        // A textarea's lines come as CRLF: stored as LF, as a file's would be.
        assert_eq!(
            posted_value("line1\r\nline2\r\n", "", true).unwrap(),
            b"line1\nline2\n"
        );
        assert_eq!(
            posted_value("line1\r\nline2", "text", false).unwrap(),
            b"line1\r\nline2",
            "the JSON API's text is kept as sent"
        );
        // Binary content, base64 with or without line breaks.
        assert_eq!(
            posted_value("AAEC\r\n/w==", "base64", true).unwrap(),
            [0u8, 1, 2, 255]
        );
        assert_eq!(
            posted_value("not base64!", "base64", false)
                .unwrap_err()
                .field,
            "data"
        );
        assert_eq!(
            posted_value("x", "hex", false).unwrap_err().field,
            "encoding"
        );
    }

    #[test]
    fn a_used_object_names_its_users() {
        let users = [User {
            service: "web".into(),
            target: "pw".into(),
        }];
        assert_eq!(
            in_use(FileKind::Secret, "pw", &users, &[]).as_deref(),
            Some("secret pw is used by web: remove it from them first, or rotate it")
        );
        assert_eq!(in_use(FileKind::Secret, "pw", &[], &[]), None);
    }

    #[test]
    fn a_task_still_running_with_an_object_its_service_left_is_a_user_named_with_its_node() {
        use swarmkeeper_engine::TaskState;
        // web moved to pw.v2; its old task still stops on node-1, and a removed service's
        // task too.
        let services = [service(
            "web",
            json!([{"SecretID": "s2", "SecretName": "pw.v2", "File": {"Name": "pw"}}]),
        )];
        let holding = |id: &str, service: &str, slot, state, desired| Task {
            id: id.into(),
            service_id: service.into(),
            slot,
            node_id: "n1".into(),
            state,
            desired_state: desired,
            spec: json!({"ContainerSpec": {"Secrets": [
                {"SecretID": "s1", "SecretName": "pw", "File": {"Name": "pw"}}]}}),
            ..Task::default()
        };
        let tasks = [
            holding(
                "t1",
                "id-web",
                Some(1),
                TaskState::Running,
                TaskState::Shutdown,
            ),
            holding(
                "0123456789abcdef",
                "id-gone",
                None,
                TaskState::Running,
                TaskState::Remove,
            ),
            holding(
                "t0",
                "id-web",
                Some(1),
                TaskState::Shutdown,
                TaskState::Shutdown,
            ),
        ];
        let hostnames = HashMap::from([("n1".to_owned(), "node-1".to_owned())]);
        let rows = object_rows(
            &[object("s1", "pw"), object("s2", "pw.v2")],
            &services,
            &tasks,
            &hostnames,
            FileKind::Secret,
        );
        let old = &rows[0];
        assert!(old.users.is_empty(), "no service names it any more");
        let named: Vec<String> = old.tasks.iter().map(TaskUser::describe).collect();
        assert_eq!(
            named,
            [
                "0123456789ab (its service is removed) on node-1 (running, desired remove)",
                "web.1 on node-1 (running, desired shutdown)"
            ]
        );
        let why = in_use(FileKind::Secret, "pw", &old.users, &old.tasks).unwrap();
        assert!(
            why.starts_with("secret pw is still mounted by tasks 0123456789ab"),
            "{why}"
        );
        assert!(
            why.contains("web.1 on node-1 (running, desired shutdown)"),
            "{why}"
        );
        let both = in_use(FileKind::Secret, "pw.v2", &rows[1].users, &old.tasks[1..]).unwrap();
        assert!(
            both.starts_with("secret pw.v2 is used by web: remove it from them first, or rotate it; pw.v2 is still mounted by task web.1"),
            "{both}"
        );
        assert!(rows[1].tasks.is_empty());
    }

    #[test]
    fn a_label_needs_a_key() {
        let labels = |k: &str| BTreeMap::from([(k.to_owned(), "v".to_owned())]);
        assert!(check_labels(&labels("team")).is_ok());
        for empty in ["", "  "] {
            let error = check_labels(&labels(empty)).unwrap_err();
            assert_eq!(error.field, "labels");
        }
    }

    #[test]
    fn deploy_history_and_locks_are_told_from_operator_objects() {
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let revision = labels(&[
            ("swarmkeeper.revision.stack", "tr_form"),
            ("swarmkeeper.revision.record", "end"),
        ]);
        assert_eq!(
            history_stack("swarmkeeper-rev-tr_form-3-end", &revision).as_deref(),
            Some("tr_form")
        );
        let lock = labels(&[
            ("swarmkeeper.lock.stack", "shop"),
            ("swarmkeeper.lock.holder", "alice"),
        ]);
        assert_eq!(
            history_stack("swarmkeeper-lock-shop", &lock).as_deref(),
            Some("shop")
        );
        // A damaged record without its stack label is still history, named by itself.
        let damaged = labels(&[("swarmkeeper.revision.number", "3")]);
        assert_eq!(history_stack("x", &damaged).as_deref(), Some("x"));
        let stack_config = labels(&[("com.docker.stack.namespace", "shop")]);
        assert_eq!(history_stack("shop_nginx", &stack_config), None);
        let why = history_refusal(FileKind::Config, "swarmkeeper-lock-shop", "shop");
        assert!(
            why.contains("/stacks/shop") && why.contains("--keep-revisions"),
            "{why}"
        );
    }

    #[test]
    fn a_rotations_clean_up_never_removes_a_version_in_use() {
        let c = rotation_cleanup;
        let cleanup = |remove_old, remove_new| Cleanup {
            remove_old,
            remove_new,
        };
        // Every move succeeded: the old version goes once unused.
        assert_eq!(c(true, false, true), cleanup(true, false));
        assert_eq!(c(true, true, true), cleanup(false, false));
        // Finding 8: interrupted after the services moved: both stay.
        assert_eq!(c(false, false, true), cleanup(false, false));
        // Rolled back: the unused new version goes.
        assert_eq!(c(false, true, false), cleanup(false, true));
        let moved = ["a".to_owned(), "b".to_owned()];
        let kept = rotation_summary("pw", "pw.v2", &moved, &[], c(false, false, true));
        assert_eq!(kept, "a, b moved to pw.v2; pw is kept");
        let back = rotation_summary("pw", "pw.v2", &[], &moved[..1], c(false, true, false));
        assert_eq!(
            back,
            "a still on pw; pw is kept; pw.v2 removed: the rotation changed nothing"
        );
    }

    #[test]
    fn a_global_task_on_a_paused_node_blocks_a_rotation() {
        assert_eq!(rotation_blocked(FileKind::Secret, "db", &[]), None);
        let stuck = [Unmovable {
            service: "gsec",
            hostname: "w1",
            availability: "pause",
        }];
        let why = rotation_blocked(FileKind::Secret, "db", &stuck).unwrap();
        assert_eq!(
            why,
            "secret db cannot be rotated now: the global service's task gsec on w1 (pause) \
             would keep db, since Swarm starts no new task on a node that is not active; make \
             w1 active first (a drain would stop that task instead)"
        );
    }
}
