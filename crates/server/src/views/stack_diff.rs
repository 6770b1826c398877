//! What a deploy of a stack file would do, as the stack's deploy page shows it before the
//! operator confirms: `swarmkeeper_deploy::preview`, the same comparison `swarmkeeper diff`
//! prints, made plain data.

use serde::Serialize;
use serde_json::Value;
use swarmkeeper_deploy::Preview;
use swarmkeeper_rollout::{describe_change, shown, DiffKind};

/// One service: `create`, `update` (no task replaced), `restart` (a rolling update),
/// `unchanged` or `remove`, with each field that changes.
#[derive(Debug, PartialEq, Serialize)]
pub struct ServiceChange {
    pub name: String,
    pub action: &'static str,
    pub changes: Vec<FieldChange>,
}

/// A changed field: its path in the spec, the values (absent: not set), and the line
/// `swarmkeeper diff` prints for it (`image app:1 → app:2`, `…Env: +A=1 -B=2`).
#[derive(Debug, PartialEq, Serialize)]
pub struct FieldChange {
    pub path: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub text: String,
}

/// A network, secret or config of the stack: `create` or `exists`.
#[derive(Debug, PartialEq, Serialize)]
pub struct ObjectChange {
    pub kind: &'static str,
    pub name: String,
    pub action: &'static str,
}

/// The diff of a deploy, and what confirms exactly this file's deploy.
#[derive(Debug, PartialEq, Serialize)]
pub struct StackDiff {
    pub stack: String,
    /// Whether the deploy would change anything.
    pub changes: bool,
    pub services: Vec<ServiceChange>,
    pub objects: Vec<ObjectChange>,
    /// Services of the stack the file no longer names: a deploy leaves them as they are.
    pub left_alone: Vec<String>,
    /// Services that would be created, updated, restarted or removed.
    pub changed: usize,
    /// What the deploy engine said while it prepared the deploy, as `swarmkeeper diff` prints
    /// it: each safe default it adds (`safe default: s_web: update_config.order = start-first
    /// (…)`), each image it pins to a digest, its warnings.
    pub notes: Vec<String>,
    /// Given back with the deploy, it confirms the file, variables and name this diff was
    /// made from: the SHA-256 of them.
    pub confirm: String,
}

/// The diff of `preview`, a deploy of `stack` confirmed by `confirm`; `notes` are the deploy
/// engine's lines while it prepared it.
pub fn stack_diff(
    stack: &str,
    preview: &Preview,
    notes: Vec<String>,
    confirm: String,
) -> StackDiff {
    let services: Vec<ServiceChange> = preview
        .services
        .iter()
        .map(|s| ServiceChange {
            name: s.service.clone(),
            action: s.kind.as_str(),
            changes: s
                .changes
                .iter()
                .map(|c| {
                    // Never a credential's value, in the JSON twin's values as in the text.
                    let shown = shown(c);
                    FieldChange {
                        text: describe_change(c),
                        path: shown.path,
                        before: shown.before,
                        after: shown.after,
                    }
                })
                .collect(),
        })
        .collect();
    StackDiff {
        stack: stack.to_owned(),
        changes: preview.changes_anything(),
        changed: preview
            .services
            .iter()
            .filter(|s| s.kind != DiffKind::Unchanged)
            .count(),
        services,
        objects: preview
            .objects
            .iter()
            .map(|o| ObjectChange {
                kind: o.kind,
                name: o.name.clone(),
                action: if o.create { "create" } else { "exists" },
            })
            .collect(),
        left_alone: preview.left_alone.clone(),
        notes,
        confirm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use swarmkeeper_deploy::StackObject;
    use swarmkeeper_rollout::service_diff;

    #[test]
    fn each_service_and_field_is_shown_as_the_cli_prints_it() {
        let before =
            json!({"Name": "s_web", "TaskTemplate": {"ContainerSpec": {"Image": "app:1"}}});
        let after = json!({"Name": "s_web", "TaskTemplate": {"ContainerSpec": {"Image": "app:2"}}});
        let preview = Preview {
            services: vec![
                service_diff("s_web", Some(&after), Some(&before)),
                service_diff("s_db", Some(&before), Some(&before)),
                service_diff("s_new", Some(&after), None),
            ],
            objects: vec![StackObject {
                kind: "network",
                name: "s_default".into(),
                create: true,
            }],
            left_alone: vec!["s_old".into()],
        };
        let diff = stack_diff(
            "s",
            &preview,
            vec!["safe default: s_web: logging".into()],
            "abc".into(),
        );
        assert!(diff.changes);
        assert_eq!(diff.changed, 2);
        let actions: Vec<(&str, &str)> = diff
            .services
            .iter()
            .map(|s| (s.name.as_str(), s.action))
            .collect();
        assert_eq!(
            actions,
            [
                ("s_web", "restart"),
                ("s_db", "unchanged"),
                ("s_new", "create")
            ]
        );
        assert_eq!(diff.services[0].changes[0].text, "image app:1 → app:2");
        assert_eq!(diff.objects[0].action, "create");
        assert_eq!(diff.left_alone, ["s_old"]);
        assert_eq!(diff.notes, ["safe default: s_web: logging"]);
    }
}
