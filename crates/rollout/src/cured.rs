//! Which lint findings the safe defaults cure: a stack's deploy review marks them "fixed by
//! the safe defaults" rather than asking the operator to fix them. The lint rules themselves
//! decide, run on the spec as the file wrote it and as [`apply_safe_defaults`] completes it,
//! so what a review calls cured is what the deploy cures, whatever rows the defaults or the
//! rules gain.

use std::collections::{BTreeMap, BTreeSet};

use swarmkeeper_compose::spec::ServiceSpec;
use swarmkeeper_lint::{lint_running, Finding};
use swarmkeeper_swarm::ServiceView;

use crate::apply_safe_defaults;

/// The lint rules the safe defaults cure on `spec`: those that fire on it as a file wrote it
/// and no longer once [`apply_safe_defaults`] has filled it in, as the deploy engine will.
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

#[cfg(test)]
mod tests {
    use super::*;

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
