//! What a deploy of a stack file would do, as the stack's deploy page shows it before the
//! operator confirms: `swarmkeeper_deploy::preview`, the same comparison `swarmkeeper diff`
//! prints, made plain data.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;
use swarmkeeper_compose::spec::ServiceSpec;
use swarmkeeper_deploy::Preview;
use swarmkeeper_engine::ServiceView;
use swarmkeeper_lint::{lint_running, Finding};
use swarmkeeper_rollout::{apply_safe_defaults, describe_change, DiffKind};

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

/// The lint rules the safe defaults cure on `spec`: those that fire on it as a file wrote it
/// and no longer once [`apply_safe_defaults`] has filled it in, as the deploy engine will.
/// The lint rules themselves decide, so what a review calls cured is what the deploy cures,
/// whatever rows the defaults or the rules gain.
pub fn cured_rules(spec: &ServiceSpec) -> BTreeSet<&'static str> {
    let mut completed = spec.clone();
    if apply_safe_defaults(&mut completed).is_empty() {
        return BTreeSet::new();
    }
    let before = firing(spec);
    let after = firing(&completed);
    before.difference(&after).copied().collect()
}

/// For each of `findings` (a stack file's, by compose service name), whether the safe
/// defaults cure it on that service's spec among `specs` ([`cured_rules`]).
pub fn cured_findings(findings: &[Finding], specs: &BTreeMap<String, ServiceSpec>) -> Vec<bool> {
    let cured: BTreeMap<&str, BTreeSet<&'static str>> = specs
        .iter()
        .map(|(service, spec)| (service.as_str(), cured_rules(spec)))
        .collect();
    findings
        .iter()
        .map(|f| {
            cured
                .get(f.service.as_str())
                .is_some_and(|rules| rules.contains(f.rule))
        })
        .collect()
}

/// The rules that fire on a spec, read as the engine will hold it.
fn firing(spec: &ServiceSpec) -> BTreeSet<&'static str> {
    let json = serde_json::to_value(spec).expect("a service spec serialises");
    ServiceView::read(&json)
        .map(|view| lint_running(&view).into_iter().map(|f| f.rule).collect())
        .unwrap_or_default()
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
                .map(|c| FieldChange {
                    path: c.path.clone(),
                    before: c.before.clone(),
                    after: c.after.clone(),
                    text: describe_change(c),
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

    /// The stack file's findings and the specs it deploys to, as the deploy page reads them.
    fn reviewed(text: &str) -> (Vec<Finding>, BTreeMap<String, ServiceSpec>) {
        use swarmkeeper_compose::{Environment, SourceFile};
        let variables = std::collections::HashMap::new();
        let read_file = |path: &str| -> std::io::Result<String> {
            Err(std::io::Error::other(format!("no {path}")))
        };
        let environment = Environment {
            variables: &variables,
            working_dir: std::path::Path::new("/"),
            read_file: &read_file,
        };
        let files = [SourceFile {
            name: "stack.yml",
            text,
        }];
        let stack = swarmkeeper_compose::load(&files, &environment).unwrap();
        let findings = swarmkeeper_lint::lint(&stack);
        let spec = swarmkeeper_compose::stack_spec("s", &stack).unwrap();
        (findings, spec.services)
    }

    fn cured<'a>(findings: &'a [Finding], marks: &[bool]) -> Vec<(&'a str, &'a str)> {
        findings
            .iter()
            .zip(marks)
            .filter(|(_, cured)| **cured)
            .map(|(f, _)| (f.service.as_str(), f.rule))
            .collect()
    }

    #[test]
    fn the_defaults_cure_what_they_fill_in_and_nothing_else() {
        let (findings, specs) = reviewed(
            "services:\n  bare:\n    image: app:1\n  \
             partial:\n    image: app:1\n    logging: {driver: none}\n    \
             healthcheck: {test: [CMD, /health], interval: 10s, retries: 3, timeout: 2s}\n    \
             deploy:\n      update_config: {parallelism: 2}\n",
        );
        let marks = cured_findings(&findings, &specs);
        let mut cured = cured(&findings, &marks);
        cured.sort();
        // `partial` sets update_config without failure_action or monitor: the defaults fill
        // both in, so SK011 and SK013 go; its `driver: none` (SK001) stays.
        assert_eq!(
            cured,
            [
                ("bare", "SK003"),
                ("bare", "SK010"),
                ("partial", "SK011"),
                ("partial", "SK013"),
            ],
            "{findings:?}"
        );
    }

    proptest::proptest! {
        /// Every finding a review says the defaults cure is gone from the spec the deploy
        /// engine completes with them, and every finding it does not is still there.
        #[test]
        fn a_finding_said_cured_is_cured_by_the_deploy(
            logging in proptest::sample::select(&["", "    logging: {driver: none}\n", "    logging: {driver: json-file}\n", "    logging: {driver: local}\n"][..]),
            health in proptest::bool::ANY,
            mode in proptest::sample::select(&["", "      mode: global\n"][..]),
            ports in proptest::sample::select(&["", "    ports: [{target: 80, published: 8080, mode: host}]\n", "    ports: ['8080:80']\n"][..]),
            update in proptest::sample::select(&["", "      update_config: {parallelism: 2}\n", "      update_config: {failure_action: pause, monitor: 1s}\n", "      update_config: {order: start-first}\n", "      update_config: {failure_action: rollback, order: stop-first, monitor: 1m}\n"][..]),
            rollback in proptest::sample::select(&["", "      rollback_config: {parallelism: 0}\n", "      rollback_config: {order: start-first}\n"][..]),
        ) {
            let health = if health {
                "    healthcheck: {test: [CMD, /health], interval: 10s, retries: 3, timeout: 2s}\n"
            } else {
                ""
            };
            let text = format!(
                "services:\n  web:\n    image: app:1\n{logging}{health}{ports}    deploy:\n{mode}{update}{rollback}      restart_policy: {{condition: on-failure}}\n"
            );
            let (findings, specs) = reviewed(&text);
            let marks = cured_findings(&findings, &specs);
            let written = firing(&specs["web"]);
            let mut completed = specs["web"].clone();
            apply_safe_defaults(&mut completed);
            let deployed = firing(&completed);
            for (finding, cured) in findings.iter().zip(&marks) {
                let gone = written.contains(finding.rule) && !deployed.contains(finding.rule);
                proptest::prop_assert_eq!(gone, *cured, "{} in\n{}", finding.rule, text);
            }
        }
    }
}
