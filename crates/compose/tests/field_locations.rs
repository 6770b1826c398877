//! Every error about a compose field names the line and column of the offending value, not
//! the block it sits in (tryout 7, finding 3: a bad `update_config` field pointed at the
//! block's first key). One table over the kinds of field: deploy (update and rollback
//! config, resources, restart policy, placement, mode), healthcheck, logging, ports — both
//! what the loader refuses and what the engine would refuse (`engine_refusals`).

mod support;

use swarmkeeper_compose::engine_refusals;

/// A service whose every block holds several good keys before and after the bad one, so a
/// place of the block (or of its first key) is told apart from the value's.
const SERVICE: &str = "services:
  web:
    image: nginx:1
    stop_grace_period: 10s
    healthcheck:
      test: [CMD, true]
      interval: 10s
      timeout: 5s
      retries: 3
      start_period: 5s
    logging:
      driver: local
      options:
        max-file: \"3\"
        max-size: 10m
    ports:
      - 8080:80
      - 8081:81
    deploy:
      mode: replicated
      replicas: 2
      endpoint_mode: vip
      resources:
        limits:
          cpus: \"0.5\"
          memory: 64M
          pids: 100
        reservations:
          cpus: \"0.25\"
          memory: 32M
      restart_policy:
        condition: on-failure
        delay: 5s
        max_attempts: 3
        window: 1m
      placement:
        constraints: [node.role==worker]
        max_replicas_per_node: 2
      update_config:
        parallelism: 1
        delay: 10s
        failure_action: continue
        monitor: 30s
        max_failure_ratio: 0
        order: start-first
      rollback_config:
        parallelism: 1
        delay: 0s
        failure_action: pause
        monitor: 30s
        max_failure_ratio: 0
        order: stop-first
";

/// (the line as written in [`SERVICE`], the line with a bad value, the bad value's text,
/// what the message says).
const CASES: &[(&str, &str, &str, &str)] = &[
    // update_config and rollback_config
    (
        "        parallelism: 1\n        delay: 10s",
        "        parallelism: -1\n        delay: 10s",
        "-1",
        "parallelism",
    ),
    (
        "        delay: 10s",
        "        delay: 10x",
        "10x",
        "duration",
    ),
    (
        "        failure_action: continue",
        "        failure_action: bogus",
        "bogus",
        "failure action",
    ),
    (
        "        monitor: 30s\n        max_failure_ratio: 0\n        order: start-first",
        "        monitor: abc\n        max_failure_ratio: 0\n        order: start-first",
        "abc",
        "duration",
    ),
    (
        "        max_failure_ratio: 0\n        order: start-first",
        "        max_failure_ratio: 2\n        order: start-first",
        "2",
        "from 0 to 1",
    ),
    (
        "        order: start-first",
        "        order: sideways",
        "sideways",
        "update order",
    ),
    (
        "        failure_action: pause",
        "        failure_action: rollback",
        "rollback",
        "not roll back",
    ),
    (
        "        max_failure_ratio: 0\n        order: stop-first",
        "        max_failure_ratio: -0.5\n        order: stop-first",
        "-0.5",
        "from 0 to 1",
    ),
    (
        "        order: stop-first",
        "        order: first",
        "first",
        "update order",
    ),
    (
        "        delay: 0s",
        "        delay: soon",
        "soon",
        "duration",
    ),
    // deploy.resources
    (
        "          cpus: \"0.5\"",
        "          cpus: lots",
        "lots",
        "CPU",
    ),
    (
        "          memory: 64M",
        "          memory: 1k",
        "1k",
        "minimum of 6M",
    ),
    (
        "          memory: 64M",
        "          memory: plenty",
        "plenty",
        "plenty",
    ),
    (
        "          pids: 100",
        "          pids: many",
        "many",
        "pids",
    ),
    (
        "          cpus: \"0.25\"",
        "          cpus: \"-1\"",
        "\"-1\"",
        "-1",
    ),
    (
        "          memory: 32M",
        "          memory: 5M",
        "5M",
        "minimum of 6M",
    ),
    // deploy.restart_policy
    (
        "        condition: on-failure",
        "        condition: sometimes",
        "sometimes",
        "restart condition",
    ),
    (
        "        delay: 5s",
        "        delay: \"5\"",
        "\"5\"",
        "duration",
    ),
    (
        "        max_attempts: 3",
        "        max_attempts: -2",
        "-2",
        "max_attempts",
    ),
    ("        window: 1m", "        window: 1y", "1y", "duration"),
    // deploy.placement
    (
        "        constraints: [node.role==worker]",
        "        constraints: node.role==worker",
        "node.role==worker",
        "list",
    ),
    (
        "        max_replicas_per_node: 2",
        "        max_replicas_per_node: -1",
        "-1",
        "max_replicas_per_node",
    ),
    // deploy itself
    (
        "      mode: replicated",
        "      mode: sometimes",
        "sometimes",
        "deploy mode",
    ),
    (
        "      replicas: 2",
        "      replicas: two",
        "two",
        "replicas",
    ),
    (
        "      endpoint_mode: vip",
        "      endpoint_mode: round-robin",
        "round-robin",
        "endpoint mode",
    ),
    // healthcheck
    (
        "      interval: 10s",
        "      interval: often",
        "often",
        "duration",
    ),
    (
        "      timeout: 5s",
        "      timeout: \"5\"",
        "\"5\"",
        "duration",
    ),
    ("      retries: 3", "      retries: -3", "-3", "retries"),
    (
        "      start_period: 5s",
        "      start_period: later",
        "later",
        "duration",
    ),
    // logging
    (
        "        max-size: 10m",
        "        max-size: banana",
        "banana",
        "max-size",
    ),
    (
        "        max-file: \"3\"",
        "        max-file: \"0\"",
        "\"0\"",
        "max-file",
    ),
    (
        "      driver: local",
        "      driver: [local]",
        "[local]",
        "driver",
    ),
    // ports, the service itself
    (
        "      - 8081:81",
        "      - 8080:81",
        "8080:81",
        "published twice",
    ),
    (
        "    stop_grace_period: 10s",
        "    stop_grace_period: later",
        "later",
        "duration",
    ),
];

/// 1-based line and column (in characters) of `needle`, found in `changed` written at byte
/// `start` of `text`.
fn place(text: &str, start: usize, changed: &str, needle: &str) -> (u32, u32) {
    let offset = start
        + changed
            .find(needle)
            .expect("the value is in the changed text");
    let before = &text[..offset];
    let line = before.matches('\n').count() as u32 + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..offset].chars().count() as u32 + 1;
    (line, column)
}

#[test]
fn the_service_as_written_is_accepted() {
    let stack = support::load_one(SERVICE).unwrap();
    assert_eq!(engine_refusals(&stack), Vec::new());
}

#[test]
fn every_field_error_points_at_the_offending_value() {
    let mut wrong = Vec::new();
    for (good, bad, value, says) in CASES {
        assert_eq!(SERVICE.matches(good).count(), 1, "{good:?} is not unique");
        let start = SERVICE.find(good).expect("the good text is in the file");
        let text = SERVICE.replacen(good, bad, 1);
        let expected = place(&text, start, bad, value);
        let found = match support::load_one(&text) {
            Err(e) => Some((e.line, e.column, e.message)),
            Ok(stack) => engine_refusals(&stack)
                .into_iter()
                .next()
                .map(|r| (r.at.line, r.at.column, r.to_string())),
        };
        match found {
            Some((line, column, message)) => {
                if (line, column) != expected || !message.contains(says) {
                    wrong.push(format!(
                        "{bad:?}: at {line}:{column} ({message}), expected {}:{} saying {says:?}",
                        expected.0, expected.1
                    ));
                }
            }
            None => wrong.push(format!("{bad:?}: accepted")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
