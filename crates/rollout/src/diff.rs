//! Whether a spec would change anything: the engine's spec against the one a deploy wants,
//! with the fields the engine fills in by itself taken as equal to their absence.

use serde_json::Value;
use swarmkeeper_units::format_duration;

use crate::preflight::{self, NodeFacts};

/// Whether the engine's spec `current` already is `desired`: every field of `desired` equals
/// the engine's, and every field only one side has is empty or a value the engine fills in
/// by itself (`Isolation: default`, `Runtime: container`, `Mode: vip`, …). Numbers compare by
/// value, lists in order.
pub fn spec_matches(desired: &Value, current: &Value) -> bool {
    match (desired, current) {
        (Value::Object(d), Value::Object(c)) => {
            d.iter().all(|(key, dv)| match c.get(key) {
                Some(cv) => spec_matches(dv, cv),
                None => is_default(key, dv),
            }) && c
                .iter()
                .all(|(key, cv)| d.contains_key(key) || is_default(key, cv))
        }
        (Value::Array(d), Value::Array(c)) => {
            d.len() == c.len() && d.iter().zip(c).all(|(d, c)| spec_matches(d, c))
        }
        (Value::Number(d), Value::Number(c)) => d.as_f64() == c.as_f64(),
        (Value::Null, other) | (other, Value::Null) => is_default("", other),
        (d, c) => d == c,
    }
}

/// One field a deploy would change: its path in the Engine API spec
/// (`TaskTemplate.ContainerSpec.Image`, `TaskTemplate.ContainerSpec.Mounts[0].Source`), what the
/// engine holds (`None`: nothing, or only what the engine fills in by itself) and what the
/// deploy would send.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldChange {
    pub path: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// Every field where `desired` and `current` differ, in the spec's order, by the rules of
/// [`spec_matches`] (empty exactly when it holds). Objects are compared key by key and lists
/// of the same length item by item; a list whose length changed is one change of the whole
/// list.
pub fn changes(desired: &Value, current: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    collect("", "", Some(desired), Some(current), &mut out);
    out
}

fn collect(
    path: &str,
    key: &str,
    desired: Option<&Value>,
    current: Option<&Value>,
    out: &mut Vec<FieldChange>,
) {
    match (present(desired), present(current)) {
        (Some(Value::Object(d)), Some(Value::Object(c))) => {
            let keys = d.keys().chain(c.keys().filter(|k| !d.contains_key(*k)));
            for k in keys {
                let inner = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                collect(&inner, k, d.get(k), c.get(k), out);
            }
        }
        (Some(Value::Array(d)), Some(Value::Array(c))) if d.len() == c.len() => {
            for (i, (d, c)) in d.iter().zip(c).enumerate() {
                collect(&format!("{path}[{i}]"), "", Some(d), Some(c), out);
            }
        }
        (Some(d), Some(c)) if !spec_matches(d, c) => out.push(FieldChange {
            path: path.to_string(),
            before: Some(c.clone()),
            after: Some(d.clone()),
        }),
        (Some(v), None) if !is_default(key, v) => out.push(FieldChange {
            path: path.to_string(),
            before: None,
            after: Some(v.clone()),
        }),
        (None, Some(v)) if !is_default(key, v) => out.push(FieldChange {
            path: path.to_string(),
            before: Some(v.clone()),
            after: None,
        }),
        _ => {}
    }
}

fn present(value: Option<&Value>) -> Option<&Value> {
    value.filter(|v| !v.is_null())
}

/// What a deploy would do to one service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiffKind {
    /// Not in the swarm yet.
    Create,
    /// Its spec changes where Swarm replaces no task (labels, scale, update and rollback
    /// settings).
    Update,
    /// Its task template or endpoint changes: Swarm replaces its tasks, a rolling update
    /// (swarmkit's `IsTaskDirty` compares exactly these two).
    Restart,
    Unchanged,
    /// In the swarm, not in the files (`--prune` removes it).
    Remove,
}

impl DiffKind {
    /// The word `swarmkeeper diff` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            DiffKind::Create => "create",
            DiffKind::Update => "update",
            DiffKind::Restart => "restart",
            DiffKind::Unchanged => "unchanged",
            DiffKind::Remove => "remove",
        }
    }
}

/// One service: what a deploy would do to it and which fields it would change.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceDiff {
    pub service: String,
    pub kind: DiffKind,
    /// The fields an update or restart changes; empty otherwise.
    pub changes: Vec<FieldChange>,
}

/// Compares the spec a deploy wants (`None`: the service is not in the files) with the
/// engine's (`None`: no such service).
pub fn service_diff(
    service: &str,
    desired: Option<&Value>,
    current: Option<&Value>,
) -> ServiceDiff {
    let (kind, changes) = match (desired, current) {
        (Some(_), None) => (DiffKind::Create, Vec::new()),
        (None, Some(_)) => (DiffKind::Remove, Vec::new()),
        (None, None) => (DiffKind::Unchanged, Vec::new()),
        (Some(desired), Some(current)) => {
            let changes = changes(desired, current);
            let restarts = changes
                .iter()
                .any(|c| c.path.starts_with("TaskTemplate") || c.path.starts_with("EndpointSpec"));
            let kind = if changes.is_empty() {
                DiffKind::Unchanged
            } else if restarts {
                DiffKind::Restart
            } else {
                DiffKind::Update
            };
            (kind, changes)
        }
    };
    ServiceDiff {
        service: service.to_string(),
        kind,
        changes,
    }
}

/// The fields that name a secret or config a task mounts, with what it is, and the field of
/// the same reference that holds its id.
const FILE_NAMES: [(&str, &str); 2] = [("SecretName", "secret"), ("ConfigName", "config")];
const FILE_IDS: [(&str, &str); 2] = [("SecretID", "SecretName"), ("ConfigID", "ConfigName")];

/// Every change of `changes` as [`describe_change`] says it, but the id of a secret or config
/// reference whose name changed too: `secret db_pw → db_pw.v2` says it, the ids add nothing.
pub fn describe_changes(changes: &[FieldChange]) -> Vec<String> {
    changes
        .iter()
        .filter(|c| {
            !FILE_IDS.iter().any(|(id, name)| {
                c.path.strip_suffix(id).is_some_and(|reference| {
                    changes
                        .iter()
                        .any(|n| n.path == format!("{reference}{name}"))
                })
            })
        })
        .map(describe_change)
        .collect()
}

/// The image path of a service spec.
pub const IMAGE_PATH: &str = "TaskTemplate.ContainerSpec.Image";

/// A change as people read it, one line: `image app:1 → app:2` for the image,
/// `PATH: OLD → NEW` otherwise, and for a list of plain values the items added (`+`) and
/// removed (`-`). Never a credential's value: the change is described [`crate::shown`].
pub fn describe_change(change: &FieldChange) -> String {
    let change = &crate::shown(change);
    // Durations and sizes in the units a stack file and the form take, not the API's.
    let last = change.path.rsplit('.').next().unwrap_or_default();
    let duration = [
        "Delay",
        "Monitor",
        "Window",
        "Interval",
        "Timeout",
        "StartPeriod",
    ]
    .contains(&last)
        || change.path.ends_with("StopGracePeriod");
    let size = ["MemoryBytes", "MemorySwap"].contains(&last);
    // A secret's or config's permission bits, octal as `chmod` and compose write them.
    let mode = change.path.ends_with("File.Mode");
    let show = |v: &Option<Value>| match v {
        None => "(none)".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) if duration && n.as_u64().is_some() => format_duration(
            std::time::Duration::from_nanos(n.as_u64().unwrap_or_default()),
        ),
        Some(Value::Number(n)) if size && n.as_u64().is_some() => {
            swarmkeeper_units::size(n.as_u64().unwrap_or_default())
        }
        Some(Value::Number(n)) if mode && n.as_u64().is_some() => {
            format!("0{:o}", n.as_u64().unwrap_or_default())
        }
        Some(other) => other.to_string(),
    };
    if change.path == IMAGE_PATH {
        return format!("image {} → {}", show(&change.before), show(&change.after));
    }
    // A rotation swaps a secret or config reference for the new version's: say it by name.
    for (field, noun) in FILE_NAMES {
        if last == field {
            return format!("{noun} {} → {}", show(&change.before), show(&change.after));
        }
    }
    let items = |v: &Option<Value>| -> Option<Vec<Value>> {
        match v {
            None => Some(Vec::new()),
            Some(Value::Array(items)) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
                Some(items.clone())
            }
            _ => None,
        }
    };
    if let (Some(before), Some(after)) = (items(&change.before), items(&change.after)) {
        if !before.is_empty() || !after.is_empty() {
            let word = |v: &Value| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let mut parts: Vec<String> = after
                .iter()
                .filter(|v| !before.contains(v))
                .map(|v| format!("+{}", word(v)))
                .collect();
            parts.extend(
                before
                    .iter()
                    .filter(|v| !after.contains(v))
                    .map(|v| format!("-{}", word(v))),
            );
            if parts.is_empty() {
                parts.push("reordered".to_string());
            }
            return format!("{}: {}", change.path, parts.join(" "));
        }
    }
    format!(
        "{}: {} → {}",
        change.path,
        show(&change.before),
        show(&change.after)
    )
}

/// Service spec fields an engine drops when it speaks an older Engine API than the one that
/// added them: the path, the API version that added it (from the Engine API's version
/// history), the compose key that writes it.
pub const ADDED_IN_API: &[(&[&str], (u32, u32), &str)] = &[(
    &["TaskTemplate", "ContainerSpec", "OomScoreAdj"],
    (1, 46),
    "oom_score_adj",
)];

/// Takes out of `desired` every field of [`ADDED_IN_API`] an engine speaking API `api` would
/// drop (it stores the spec without them, so comparing with them would update every service
/// on every deploy), and returns the compose keys of those that were set.
pub fn drop_unsupported(desired: &mut Value, api: (u32, u32)) -> Vec<&'static str> {
    let mut dropped = Vec::new();
    for (path, added, key) in ADDED_IN_API {
        if api >= *added {
            continue;
        }
        let (last, parents) = path.split_last().expect("paths are not empty");
        let parent = parents.iter().try_fold(&mut *desired, |v, k| v.get_mut(*k));
        if let Some(Value::Object(parent)) = parent {
            if let Some(value) = parent.remove(*last) {
                if !is_default(last, &value) {
                    dropped.push(*key);
                }
            }
        }
    }
    dropped
}

/// Whether a task runs the service's current `TaskTemplate`
/// ([`swarmkeeper_swarm::Service::task_template`]), which is whether Swarm keeps it rather
/// than replace it, by swarmkit's rule (`IsTaskDirty` in `manager/orchestrator/task.go`):
///
/// - its spec is a copy of the template made when Swarm created it, so a task whose spec
///   equals the template is current (the engine leaves `Runtime` out of the task's copy);
/// - a task whose spec differs from the template only in `Placement` is current when `node`,
///   the node it was given, meets the template's placement `constraints` (the service's,
///   as [`swarmkeeper_swarm::ServiceView::constraints`] reads them)
///   ([`preflight::node_matches`], swarmkit's `IsTaskDirtyPlacementConstraintsOnly` and
///   `nodeMatches`): Swarm keeps it, with its old spec, for as long as the service's spec
///   stays. `None` (no node yet, or one Swarm no longer lists): it is replaced.
///
/// What else `IsTaskDirty` weighs is not in the Engine API's task: the spec version (an
/// equal one makes any task current: its copy then equals the template anyway), the
/// `PullOptions` it ignores for a task between READY and RUNNING (the API shows no
/// `PullOptions` on either side), and the task's endpoint (a changed `EndpointSpec` is seen
/// in the service's update status: Swarm replaces the tasks in an update, which a follow
/// waits out).
pub fn task_is_current(
    task_spec: &Value,
    template: &Value,
    constraints: &[String],
    node: Option<&NodeFacts>,
) -> bool {
    if same_but(task_spec, template, &["Runtime"]) {
        return true;
    }
    node.is_some_and(|node| preflight::node_matches(constraints, node))
        && same_but(task_spec, template, &["Runtime", "Placement"])
}

/// Whether two task specs are equal but for the top-level fields `skip`, by the rules of
/// [`spec_matches`].
fn same_but(task_spec: &Value, template: &Value, skip: &[&str]) -> bool {
    let (Some(task), Some(template)) = (task_spec.as_object(), template.as_object()) else {
        return task_spec == template;
    };
    task.keys()
        .chain(template.keys())
        .filter(|key| !skip.contains(&key.as_str()))
        .all(|key| {
            let (task, template) = (task.get(key), template.get(key));
            // Most parts of a current task's copy are equal to the letter: check that first.
            task == template
                || spec_matches(
                    task.unwrap_or(&Value::Null),
                    template.unwrap_or(&Value::Null),
                )
        })
}

/// A value the engine writes when the spec says nothing, or the absence of one.
fn is_default(key: &str, value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        // A replicated service without `Replicas` runs one.
        // Swarm's update and rollback configs without `Monitor` watch tasks for 5 s.
        Value::Number(n) => {
            n.as_f64() == Some(0.0)
                || (key == "Replicas" && n.as_u64() == Some(1))
                || (key == "Monitor" && n.as_u64() == Some(5_000_000_000))
        }
        Value::String(s) => {
            s.is_empty()
                || matches!(
                    (key, s.as_str()),
                    ("Isolation", "default")
                        | ("Runtime", "container")
                        | ("Mode", "vip")
                        | ("Condition", "any")
                )
        }
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.iter().all(|(k, v)| is_default(k, v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_engine_s_own_fields_do_not_make_a_difference() {
        let desired = json!({
            "Name": "s_web",
            "TaskTemplate": {"ContainerSpec": {"Image": "a:1", "Labels": {"x": "y"}}, "Resources": {}, "Placement": {}},
            "Mode": {"Replicated": {"Replicas": 1}},
            "EndpointSpec": {}
        });
        let current = json!({
            "Name": "s_web",
            "TaskTemplate": {"ContainerSpec": {"Image": "a:1", "Labels": {"x": "y"},
                "Privileges": {"CredentialSpec": null, "SELinuxContext": null}, "Isolation": "default"},
                "Resources": {}, "Placement": {}, "ForceUpdate": 0, "Runtime": "container"},
            "Mode": {"Replicated": {"Replicas": 1}},
            "EndpointSpec": {"Mode": "vip"}
        });
        assert!(spec_matches(&desired, &current));
        let mut changed = current.clone();
        changed["TaskTemplate"]["ContainerSpec"]["Image"] = json!("a:2");
        assert!(!spec_matches(&desired, &changed));
        let mut more = current.clone();
        more["TaskTemplate"]["ContainerSpec"]["Env"] = json!(["A=1"]);
        assert!(
            !spec_matches(&desired, &more),
            "a field removed from the file is a change"
        );
        let paths = |current: &Value| -> Vec<String> {
            changes(&desired, current)
                .into_iter()
                .map(|c| c.path)
                .collect()
        };
        assert!(paths(&current).is_empty());
        assert_eq!(paths(&changed), ["TaskTemplate.ContainerSpec.Image"]);
        assert_eq!(paths(&more), ["TaskTemplate.ContainerSpec.Env"]);
    }

    #[test]
    fn every_changed_field_is_listed_with_both_sides() {
        let current = json!({
            "Name": "s_web",
            "Labels": {"a": "1"},
            "TaskTemplate": {"ContainerSpec": {"Image": "app:1", "Env": ["A=1", "B=2"],
                "Mounts": [{"Source": "/a", "Target": "/x"}]}, "ForceUpdate": 0},
            "Mode": {"Replicated": {"Replicas": 2}},
            "EndpointSpec": {"Mode": "vip"}
        });
        let mut desired = current.clone();
        desired["TaskTemplate"]["ContainerSpec"]["Image"] = json!("app:2");
        desired["TaskTemplate"]["ContainerSpec"]["Env"] = json!(["A=1", "C=3", "D=4"]);
        desired["TaskTemplate"]["ContainerSpec"]["Mounts"][0]["Source"] = json!("/b");
        desired["Labels"] = json!({"a": "1", "b": "2"});
        desired["EndpointSpec"] = json!({});
        let found = changes(&desired, &current);
        let paths: Vec<&str> = found.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "Labels.b",
                "TaskTemplate.ContainerSpec.Env",
                "TaskTemplate.ContainerSpec.Image",
                "TaskTemplate.ContainerSpec.Mounts[0].Source",
            ],
            "the engine's own `Mode: vip` is no change"
        );
        let lines: Vec<String> = found.iter().map(describe_change).collect();
        assert_eq!(lines[0], "Labels.b: (none) → 2");
        assert_eq!(lines[1], "TaskTemplate.ContainerSpec.Env: +C=3 +D=4 -B=2");
        assert_eq!(lines[2], "image app:1 → app:2");
        assert_eq!(
            lines[3],
            "TaskTemplate.ContainerSpec.Mounts[0].Source: /a → /b"
        );
        assert!(changes(&current, &current).is_empty());
    }

    #[test]
    fn the_default_monitor_is_no_change() {
        let current = json!({"UpdateConfig": {"Parallelism": 1},
            "RollbackConfig": {"Parallelism": 1}});
        let desired = json!({"UpdateConfig": {"Parallelism": 1, "Monitor": 5_000_000_000u64},
            "RollbackConfig": {"Parallelism": 1, "Monitor": 5_000_000_000u64}});
        assert!(changes(&desired, &current).is_empty());
        let mut longer = desired.clone();
        longer["UpdateConfig"]["Monitor"] = json!(6_000_000_000u64);
        assert_eq!(changes(&longer, &current).len(), 1);
    }

    #[test]
    fn durations_and_sizes_read_as_the_form_takes_them() {
        let current = json!({"UpdateConfig": {"Monitor": 5_000_000_000u64},
            "TaskTemplate": {"Resources": {"Limits": {"MemoryBytes": 33_554_432}}}});
        let desired = json!({"UpdateConfig": {"Monitor": 90_000_000_000u64},
            "TaskTemplate": {"Resources": {"Limits": {"MemoryBytes": 67_108_864}}}});
        let lines: Vec<String> = changes(&desired, &current)
            .iter()
            .map(describe_change)
            .collect();
        assert_eq!(
            lines,
            [
                "TaskTemplate.Resources.Limits.MemoryBytes: 32M → 64M",
                "UpdateConfig.Monitor: 5s → 1m30s",
            ]
        );
        // A file's mode in octal, as `chmod` writes it (tryout 13: `256 → 292` was 0400 → 0444).
        let mode = |mode: u32| {
            json!({"TaskTemplate": {"ContainerSpec": {"Secrets": [
            {"SecretName": "key", "File": {"Name": "key", "Mode": mode}}]}}})
        };
        let lines: Vec<String> = changes(&mode(0o444), &mode(0o400))
            .iter()
            .map(describe_change)
            .collect();
        assert_eq!(
            lines,
            ["TaskTemplate.ContainerSpec.Secrets[0].File.Mode: 0400 → 0444"]
        );
    }

    #[test]
    fn a_rotated_reference_is_said_by_name_and_its_ids_are_left_out() {
        let spec = |secret: &str, id: &str, config: &str, config_id: &str| {
            json!({"TaskTemplate": {"ContainerSpec": {
                "Secrets": [{"SecretName": secret, "SecretID": id, "File": {"Name": "db_password"}}],
                "Configs": [{"ConfigName": config, "ConfigID": config_id, "File": {"Name": "app.conf"}}]}}})
        };
        let before = spec("db_pw", "rxfrjw4s", "app", "c1");
        let rotated = spec("db_pw.v2", "ka9096dj", "app", "c1");
        assert_eq!(
            describe_changes(&changes(&rotated, &before)),
            ["secret db_pw → db_pw.v2"]
        );
        let both = spec("db_pw.v2", "ka9096dj", "app.v2", "c2");
        assert_eq!(
            describe_changes(&changes(&both, &before)),
            ["config app → app.v2", "secret db_pw → db_pw.v2"]
        );
        // An id that changed alone (the object was removed and made again) is still said.
        let remade = spec("db_pw", "zz", "app", "c1");
        assert_eq!(
            describe_changes(&changes(&remade, &before)),
            ["TaskTemplate.ContainerSpec.Secrets[0].SecretID: rxfrjw4s → zz"]
        );
    }

    #[test]
    fn a_service_is_created_updated_restarted_left_alone_or_removed() {
        let current = json!({"Name": "s_web", "Labels": {},
            "TaskTemplate": {"ContainerSpec": {"Image": "app:1"}},
            "Mode": {"Replicated": {"Replicas": 1}}});
        let kind = |desired: &Value| service_diff("s_web", Some(desired), Some(&current)).kind;
        assert_eq!(kind(&current), DiffKind::Unchanged);
        let mut scaled = current.clone();
        scaled["Mode"]["Replicated"]["Replicas"] = json!(3);
        scaled["Labels"] = json!({"team": "a"});
        assert_eq!(kind(&scaled), DiffKind::Update);
        let mut image = current.clone();
        image["TaskTemplate"]["ContainerSpec"]["Image"] = json!("app:2");
        assert_eq!(kind(&image), DiffKind::Restart);
        let mut ports = current.clone();
        ports["EndpointSpec"] = json!({"Ports": [{"TargetPort": 80, "PublishedPort": 8080}]});
        assert_eq!(kind(&ports), DiffKind::Restart);
        assert_eq!(
            service_diff("s_web", Some(&current), None).kind,
            DiffKind::Create
        );
        assert_eq!(
            service_diff("s_web", None, Some(&current)).kind,
            DiffKind::Remove
        );
        let restart = service_diff("s_web", Some(&image), Some(&current));
        assert_eq!(restart.changes.len(), 1);
        assert_eq!(restart.kind.as_str(), "restart");
    }

    #[test]
    fn a_field_an_older_engine_drops_is_not_compared() {
        let with = json!({"TaskTemplate": {"ContainerSpec": {"Image": "a", "OomScoreAdj": 500}}});
        let stored = json!({"TaskTemplate": {"ContainerSpec": {"Image": "a"}}});
        let mut old_engine = with.clone();
        assert_eq!(
            drop_unsupported(&mut old_engine, (1, 41)),
            ["oom_score_adj"]
        );
        assert!(spec_matches(&old_engine, &stored));
        let mut new_engine = with.clone();
        assert!(drop_unsupported(&mut new_engine, (1, 46)).is_empty());
        assert_eq!(new_engine, with);
        let mut zero = json!({"TaskTemplate": {"ContainerSpec": {"Image": "a", "OomScoreAdj": 0}}});
        assert!(
            drop_unsupported(&mut zero, (1, 41)).is_empty(),
            "a default is no loss"
        );
        assert_eq!(zero, stored);
    }

    #[test]
    fn task_currency_ignores_the_runtime() {
        let template =
            json!({"ContainerSpec": {"Image": "a"}, "ForceUpdate": 0, "Runtime": "container"});
        assert!(task_is_current(
            &json!({"ContainerSpec": {"Image": "a"}, "ForceUpdate": 0}),
            &template,
            &[],
            None
        ));
        assert!(!task_is_current(
            &json!({"ContainerSpec": {"Image": "b"}, "ForceUpdate": 0}),
            &template,
            &[],
            None
        ));
        assert!(!task_is_current(
            &json!({"ContainerSpec": {"Image": "a"}, "ForceUpdate": 1}),
            &template,
            &[],
            None
        ));
    }

    /// Tryout 11 finding 3: `constraints: node.labels.nosuch != x` added to a running service.
    /// Whether a task running image `a` with no placement is current against a template of
    /// `image` placed by `constraints`.
    fn current_under(constraints: &[&str], image: &str, node: Option<&NodeFacts>) -> bool {
        let template = json!({"ContainerSpec": {"Image": image}, "ForceUpdate": 0,
            "Placement": {"Constraints": constraints}, "Runtime": "container"});
        let constraints: Vec<String> = constraints.iter().map(|c| c.to_string()).collect();
        task_is_current(&unplaced_task(), &template, &constraints, node)
    }

    fn unplaced_task() -> Value {
        json!({"ContainerSpec": {"Image": "a"}, "ForceUpdate": 0})
    }

    fn manager() -> NodeFacts {
        NodeFacts {
            id: "n1".into(),
            hostname: "box".into(),
            role: "manager".into(),
            labels: [("zone".to_owned(), "a".to_owned())].into(),
            ..NodeFacts::default()
        }
    }

    #[test]
    fn a_task_whose_spec_differs_only_in_placement_its_node_meets_is_current() {
        let node = manager();
        for constraints in [
            &["node.labels.nosuch != x"][..],
            &["node.labels.zone==a", "node.role==manager"],
            &["node.hostname==BOX"],
        ] {
            assert!(
                current_under(constraints, "a", Some(&node)),
                "{constraints:?}"
            );
        }
        // A placement removed: no constraint is left to miss.
        let constrained = json!({"ContainerSpec": {"Image": "a"}, "ForceUpdate": 0,
            "Placement": {"Constraints": ["node.labels.zone==a"]}});
        assert!(task_is_current(
            &constrained,
            &unplaced_task(),
            &[],
            Some(&node)
        ));
    }

    #[test]
    fn a_task_whose_node_misses_the_new_placement_is_stale() {
        let node = manager();
        for constraints in [
            &["node.labels.zone==b"][..],
            &["node.labels.zone==a", "node.role==worker"],
            &["node.labels.gpu==yes"],
            // No address reported: left to the engine by the preflight, no task kept here.
            &["node.ip==10.0.0.1"],
        ] {
            assert!(
                !current_under(constraints, "a", Some(&node)),
                "{constraints:?}"
            );
        }
        // No node (pending, or one Swarm no longer lists): Swarm replaces it.
        assert!(!current_under(&["node.labels.nosuch!=x"], "a", None));
    }

    #[test]
    fn a_task_whose_placement_and_anything_else_changed_is_stale() {
        let node = manager();
        assert!(!current_under(&["node.labels.nosuch!=x"], "b", Some(&node)));
        let mut forced = json!({"ContainerSpec": {"Image": "a"}, "ForceUpdate": 1,
            "Placement": {"Constraints": ["node.labels.nosuch!=x"]}, "Runtime": "container"});
        let constraints = ["node.labels.nosuch!=x".to_owned()];
        assert!(!task_is_current(
            &unplaced_task(),
            &forced,
            &constraints,
            Some(&node)
        ));
        forced["ForceUpdate"] = json!(0);
        assert!(task_is_current(
            &unplaced_task(),
            &forced,
            &constraints,
            Some(&node)
        ));
        // A node that meets the constraints keeps no task whose image changed.
        assert!(!current_under(&[], "b", Some(&node)));
    }
}
