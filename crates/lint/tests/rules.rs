//! Each rule fires where it should, at the place it should, and stays quiet otherwise.

mod common;

use swarmkeeper_lint::{has_errors, lint, rule, Finding, Severity, RULES};

fn findings(text: &str) -> Vec<Finding> {
    lint(&common::stack(text))
}

/// `(rule, line, column)` of each finding.
fn hits(text: &str) -> Vec<(&'static str, u32, u32)> {
    findings(text)
        .iter()
        .map(|f| (f.rule, f.line, f.column))
        .collect()
}

use common::GOOD;

fn with(replace: &str, by: &str) -> String {
    assert!(GOOD.contains(replace), "{replace}");
    GOOD.replace(replace, by)
}

#[test]
fn a_careful_service_has_no_findings() {
    assert_eq!(hits(GOOD), []);
}

#[test]
fn logging_driver_none_is_an_error() {
    let text = with(
        "{driver: local, options: {max-size: 10m}}",
        "{driver: none}",
    );
    assert_eq!(hits(&text), [("SK001", 5, 23)]);
    assert!(has_errors(&findings(&text)));
}

#[test]
fn json_file_needs_max_size() {
    assert_eq!(
        hits(&with(
            "driver: local, options: {max-size: 10m}",
            "driver: json-file"
        )),
        [("SK002", 5, 23)]
    );
    assert_eq!(hits(&with("driver: local", "driver: json-file")), []);
}

#[test]
fn no_logging_is_noted() {
    assert_eq!(
        hits(&with(
            "    logging: {driver: local, options: {max-size: 10m}}\n",
            ""
        )),
        [("SK003", 2, 3)]
    );
}

#[test]
fn updates_need_a_config_that_rolls_back() {
    let none = with("      update_config: {parallelism: 1, delay: 5s, failure_action: rollback, monitor: 30s, order: start-first}\n", "      replicas: 2\n");
    assert_eq!(hits(&none), [("SK010", 2, 3)]);
    assert_eq!(
        hits(&with("failure_action: rollback", "failure_action: pause")),
        [("SK011", 7, 66)]
    );
    assert_eq!(
        hits(&with("failure_action: rollback, ", "")),
        [("SK011", 7, 22)]
    );
}

#[test]
fn rollback_needs_a_healthcheck() {
    let text = with(
        "    healthcheck: {test: [CMD, /health], interval: 5s, timeout: 2s, retries: 3}\n",
        "",
    );
    assert_eq!(hits(&text), [("SK012", 6, 66)]);
    let disabled = with(
        "{test: [CMD, /health], interval: 5s, timeout: 2s, retries: 3}",
        "{disable: true}",
    );
    assert_eq!(hits(&disabled), [("SK012", 7, 66)]);
}

#[test]
fn monitor_must_outlast_the_healthcheck() {
    let found = findings(&with("monitor: 30s", "monitor: 10s"));
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].rule, found[0].line, found[0].column),
        ("SK013", 7, 85)
    );
    assert_eq!(
        found[0].message,
        "`monitor` is 10s, but the healthcheck needs up to 17s to report a failure"
    );
    // Left out, monitor is Swarm's 5s and the healthcheck's timings are the Engine's defaults.
    let defaults =
        with("monitor: 30s, ", "").replace("interval: 5s, timeout: 2s, retries: 3", "interval: 5s");
    let found = findings(&defaults);
    assert_eq!(
        found.iter().map(|f| f.rule).collect::<Vec<_>>(),
        ["SK013", "SK031"]
    );
    assert!(
        found[0].message.contains("`monitor` is 5s") && found[0].message.contains("up to 45s"),
        "{}",
        found[0].message
    );
}

#[test]
fn start_first_warns_of_data_the_old_and_the_new_task_write_at_once() {
    let mounting = |volume: &str| {
        with(
            "    logging:",
            &format!("    volumes: [{volume}]\n    logging:"),
        ) + "volumes:\n  db: {}\n"
    };
    let named = findings(&mounting("\"db:/var/lib/db\""));
    assert_eq!(
        named
            .iter()
            .map(|f| (f.rule, f.line, f.column))
            .collect::<Vec<_>>(),
        [("SK015", 8, 97)]
    );
    assert_eq!(named[0].severity, Severity::Warning);
    assert!(
        named[0].message.contains("db:/var/lib/db"),
        "{}",
        named[0].message
    );
    assert_eq!(
        hits(&mounting("\"./data:/data\"")),
        [("SK015", 8, 97)],
        "a bind"
    );
    assert_eq!(
        hits(&mounting("{type: volume, source: db, target: /d}")),
        [("SK015", 8, 97)],
        "long syntax"
    );
    for each_tasks_own in [
        "\"db:/var/lib/db:ro\"",
        "{type: bind, source: /srv, target: /srv, read_only: true}",
        "\"/scratch\"",
        "{type: tmpfs, target: /tmp}",
    ] {
        assert_eq!(hits(&mounting(each_tasks_own)), [], "{each_tasks_own}");
    }
    assert_eq!(
        hits(&mounting("\"db:/var/lib/db\"").replace("start-first", "stop-first")),
        []
    );
}

#[test]
fn start_first_cannot_share_host_ports() {
    let replicated = with(
        "    logging:",
        "    ports: [{target: 80, published: 8080, mode: host}]\n    logging:",
    );
    let found = findings(&replicated);
    assert_eq!(
        found
            .iter()
            .map(|f| (f.rule, f.line, f.column))
            .collect::<Vec<_>>(),
        [("SK014", 8, 97)]
    );
    assert_eq!(found[0].severity, Severity::Error);
    let global = replicated.replace("    deploy:\n", "    deploy:\n      mode: global\n");
    let found = findings(&global);
    assert!(
        found[0].message.contains("can never finish"),
        "{}",
        found[0].message
    );
    assert_eq!(hits(&replicated.replace("start-first", "stop-first")), []);
    assert_eq!(
        hits(&with(
            "    logging:",
            "    ports: [\"80:8080\"]\n    logging:"
        )),
        [],
        "ingress ports are shared"
    );
}

#[test]
fn images_need_a_version() {
    assert_eq!(hits(&with("app:1.0", "app")), [("SK020", 3, 12)]);
    assert_eq!(hits(&with("app:1.0", "app:latest")), [("SK020", 3, 12)]);
    assert_eq!(
        hits(&with("app:1.0", "registry:5000/app")),
        [("SK020", 3, 12)]
    );
    assert_eq!(hits(&with("app:1.0", "registry:5000/app:2")), []);
    assert_eq!(
        hits(&with(
            "app:1.0",
            "app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        )),
        []
    );
}

#[test]
fn restarting_forever_is_flagged() {
    let text = with(
        "      update_config:",
        "      restart_policy: {condition: any}\n      update_config:",
    );
    assert_eq!(hits(&text), [("SK021", 7, 35)]);
    assert_eq!(
        hits(&text.replace("{condition: any}", "{condition: any, max_attempts: 5}")),
        []
    );
    assert_eq!(
        hits(&text.replace("{condition: any}", "{condition: on-failure}")),
        []
    );
}

#[test]
fn parallelism_zero_is_all_at_once() {
    assert_eq!(
        hits(&with("parallelism: 1", "parallelism: 0")),
        [("SK030", 7, 36)]
    );
}

#[test]
fn delay_must_be_shorter_than_monitor() {
    assert_eq!(hits(&with("delay: 5s", "delay: 30s")), [("SK031", 7, 46)]);
}

#[test]
fn a_rollback_cannot_roll_back() {
    let text = with(
        "      update_config:",
        "      rollback_config: {failure_action: rollback}\n      update_config:",
    );
    assert_eq!(hits(&text), [("SK032", 7, 41)]);
}

#[test]
fn keys_stack_deploy_ignores_are_noted() {
    let text = with(
        "    logging:",
        "    privileged: true\n    build: .\n    logging:",
    );
    assert_eq!(hits(&text), [("SK040", 5, 17), ("SK040", 6, 12)]);
}

#[test]
fn every_rule_is_documented_and_unique() {
    let mut ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
    ids.dedup();
    assert_eq!(ids.len(), RULES.len());
    for r in RULES {
        assert!(r.id.starts_with("SK") && r.id.len() == 5, "{}", r.id);
        assert!(
            !r.summary.is_empty() && !r.why.is_empty() && !r.fix.is_empty(),
            "{}",
            r.id
        );
        assert_eq!(rule(r.id), Some(r));
    }
}

/// The label the server reads with `autodeploy::settings`: an interval below its minimum or a
/// switch that is not `true`/`false` once turned auto-deploy off with a word on the service
/// page only (found by a new-user tryout); now `deploy` refuses it like any error.
#[test]
fn an_autodeploy_label_the_server_would_not_follow_is_an_error() {
    let label = |labels: &str| {
        with(
            "      update_config:",
            &format!("      labels: {labels}\n      update_config:"),
        )
    };
    let text = label("{swarmkeeper.autodeploy: \"true\", swarmkeeper.autodeploy.interval: 5s}");
    let found = findings(&text);
    assert_eq!(hits(&text), [("SK050", 2, 3)]);
    assert!(
        found[0].message.contains("must be at least 10s"),
        "{found:?}"
    );
    assert!(has_errors(&found));
    let switch = label("{swarmkeeper.autodeploy: \"yes\"}");
    assert_eq!(hits(&switch), [("SK050", 2, 3)]);
    for fine in [
        "{swarmkeeper.autodeploy: \"true\", swarmkeeper.autodeploy.interval: 10s}",
        "{swarmkeeper.autodeploy: \"true\"}",
        "{swarmkeeper.autodeploy: \"false\", swarmkeeper.autodeploy.interval: 1s}",
    ] {
        assert_eq!(hits(&label(fine)), [], "{fine}");
    }
}
