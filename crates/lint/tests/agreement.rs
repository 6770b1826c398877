//! A stack file and the service `swarmkeeper deploy --no-safe-defaults` makes of it get the same
//! findings: [`lint`] on the file and [`lint_running`] on each service's Engine API spec, read
//! back typed, name the same rules (keys the Engine never sees aside). The dashboard once
//! flagged SK021 on services deployed from files `lint` found nothing in.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use swarmkeeper_compose::stack_spec;
use swarmkeeper_lint::{lint, lint_running};

use common::GOOD;
use swarmkeeper_swarm::ServiceView;

/// Rules about keys `docker stack deploy` ignores: they cannot survive into a spec.
const FILE_ONLY: &[&str] = &["SK040"];

/// Each service's rule ids from the file, and from its spec.
type RulesByService = BTreeMap<String, BTreeSet<&'static str>>;

fn both_ways(text: &str) -> (RulesByService, RulesByService) {
    let stack = common::stack(text);
    let mut from_file = RulesByService::new();
    for name in stack.services.keys() {
        from_file.insert(name.clone(), BTreeSet::new());
    }
    for finding in lint(&stack) {
        if !FILE_ONLY.contains(&finding.rule) {
            from_file
                .get_mut(&finding.service)
                .unwrap()
                .insert(finding.rule);
        }
    }
    let spec = stack_spec("st", &stack).unwrap();
    let from_spec = spec
        .services
        .iter()
        .map(|(name, service)| {
            let raw = serde_json::to_value(service).unwrap();
            let view = ServiceView::read(&raw).unwrap();
            let rules = lint_running(&view).into_iter().map(|f| f.rule).collect();
            (name.clone(), rules)
        })
        .collect();
    (from_file, from_spec)
}

fn assert_agree(text: &str) {
    let (file, spec) = both_ways(text);
    assert_eq!(file, spec, "file and running spec disagree on\n{text}");
}

#[test]
fn every_fixture_agrees() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yml") {
            assert_agree(&std::fs::read_to_string(&path).unwrap());
            seen += 1;
        }
    }
    assert!(seen >= 8, "{seen} fixtures");
}

/// A service that every rule is happy with, and one change at a time, each making a rule fire
/// or not.
#[test]
fn each_setting_agrees() {
    let variants: &[(&str, &str)] = &[
        ("", ""),
        ("{driver: local, options: {max-size: 10m}}", "{driver: none}"),
        ("driver: local, options: {max-size: 10m}", "driver: json-file"),
        ("driver: local, options: {max-size: 10m}", "driver: json-file, options: {max-size: 1m}"),
        ("driver: local, options: {max-size: 10m}", "options: {max-size: 10m}"),
        ("    logging: {driver: local, options: {max-size: 10m}}\n", ""),
        ("failure_action: rollback", "failure_action: pause"),
        ("failure_action: rollback", "failure_action: continue"),
        ("failure_action: rollback, ", ""),
        ("parallelism: 1", "parallelism: 0"),
        ("parallelism: 1, ", ""),
        ("monitor: 30s", "monitor: 10s"),
        ("monitor: 30s, ", ""),
        ("delay: 5s", "delay: 30s"),
        ("delay: 5s, ", ""),
        ("order: start-first", "order: stop-first"),
        ("{test: [CMD, /health], interval: 5s, timeout: 2s, retries: 3}", "{disable: true}"),
        ("{test: [CMD, /health], interval: 5s, timeout: 2s, retries: 3}", "{test: [NONE]}"),
        ("interval: 5s, timeout: 2s, retries: 3", "interval: 5s"),
        ("    healthcheck: {test: [CMD, /health], interval: 5s, timeout: 2s, retries: 3}\n", ""),
        ("app:1.0", "app"),
        ("app:1.0", "app:latest"),
        ("app:1.0", "app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
        ("    logging:", "    ports: [{target: 80, published: 8080, mode: host}]\n    logging:"),
        ("    logging:", "    volumes: [\"/srv/data:/data\"]\n    logging:"),
        ("    logging:", "    volumes: [\"/srv/data:/data:ro\", /scratch]\n    logging:"),
        ("    logging:", "    volumes: [{type: tmpfs, target: /tmp}]\n    logging:"),
        ("    deploy:\n", "    ports: [{target: 80, mode: host}]\n    deploy:\n      mode: global\n"),
        ("    deploy:\n", "    deploy:\n      mode: replicated-job\n"),
        ("    deploy:\n", "    deploy:\n      mode: global-job\n"),
        ("      update_config: {parallelism: 1, delay: 5s, failure_action: rollback, monitor: 30s, order: start-first}\n", "      replicas: 2\n"),
        ("      update_config:", "      restart_policy: {condition: any}\n      update_config:"),
        ("      update_config:", "      restart_policy: {max_attempts: 0}\n      update_config:"),
        ("      update_config:", "      restart_policy: {condition: any, max_attempts: 5}\n      update_config:"),
        ("      update_config:", "      restart_policy: {condition: on-failure}\n      update_config:"),
        ("      update_config:", "      rollback_config: {failure_action: rollback, parallelism: 0}\n      update_config:"),
        ("      update_config:", "      rollback_config: {failure_action: pause}\n      update_config:"),
        ("      update_config:", "      labels: {swarmkeeper.autodeploy: \"true\", swarmkeeper.autodeploy.interval: 5s}\n      update_config:"),
        ("      update_config:", "      labels: {swarmkeeper.autodeploy: \"true\", swarmkeeper.autodeploy.interval: 2m}\n      update_config:"),
        ("      update_config:", "      labels: {swarmkeeper.autodeploy: \"yes\"}\n      update_config:"),
    ];
    for (replace, by) in variants {
        assert!(GOOD.contains(replace), "{replace}");
        assert_agree(&GOOD.replacen(replace, by, 1));
    }
}
