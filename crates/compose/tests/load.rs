//! Loading compose files: interpolation, env files, merging, and errors that point at the
//! file, line and column.

mod support;

use support::{load_files as load_with, load_one};
use swarmkeeper_compose::{
    ComposeError, DeployMode, FailureAction, Location, MountType, Port, Protocol, PublishMode,
    UpdateOrder,
};

fn error_of(text: &str) -> ComposeError {
    load_one(text).expect_err("the file should be refused")
}

#[test]
fn reads_a_full_service() {
    let text = r#"
version: "3.8"
services:
  web:
    image: registry.example/web:1.4
    command: ["serve", "--port", "8080"]
    entrypoint: /entrypoint.sh --verbose
    environment:
      - MODE=production
      - EMPTY=
    labels:
      team: web
    ports:
      - "80:8080"
      - target: 9090
        published: 9090
        mode: host
    volumes:
      - data:/var/lib/web
      - ./static:/static:ro
      - type: tmpfs
        target: /tmp
        tmpfs:
          size: 64m
    healthcheck:
      test: curl -f http://localhost:8080/health
      interval: 10s
      timeout: 2s
      retries: 3
    logging:
      driver: local
      options:
        max-size: 10m
        max-file: 3
    stop_grace_period: 1m30s
    deploy:
      mode: replicated
      replicas: 3
      resources:
        limits: {cpus: '0.5', memory: 256M}
      update_config:
        parallelism: 1
        delay: 10s
        failure_action: rollback
        monitor: 30s
        order: start-first
      restart_policy:
        condition: on-failure
        max_attempts: 3
volumes:
  data:
"#;
    let stack = load_one(text).unwrap();
    let web = &stack.services["web"];
    assert_eq!(
        web.at,
        Location {
            file: 0,
            line: 4,
            column: 3
        }
    );
    assert_eq!(
        web.image.as_ref().unwrap().value,
        "registry.example/web:1.4"
    );
    assert_eq!(
        web.image.as_ref().unwrap().at,
        Location {
            file: 0,
            line: 5,
            column: 12
        }
    );
    assert_eq!(web.command.as_ref().unwrap().0, ["serve", "--port", "8080"]);
    assert_eq!(
        web.entrypoint.as_ref().unwrap().0,
        ["/entrypoint.sh", "--verbose"]
    );
    let env = &web.environment.as_ref().unwrap().0;
    assert_eq!(env["MODE"].as_deref(), Some("production"));
    assert_eq!(env["EMPTY"].as_deref(), Some(""));
    let ports: Vec<&Port> = web
        .ports
        .as_ref()
        .unwrap()
        .0
        .iter()
        .map(|p| &p.value)
        .collect();
    assert_eq!(
        ports,
        [
            &Port {
                target: 8080,
                published: Some(80),
                protocol: Some(Protocol::Tcp),
                mode: Some(PublishMode::Ingress)
            },
            &Port {
                target: 9090,
                published: Some(9090),
                protocol: None,
                mode: Some(PublishMode::Host)
            },
        ]
    );
    let mounts = &web.volumes.as_ref().unwrap().0;
    assert_eq!(mounts[0].kind, Some(MountType::Volume));
    assert_eq!(mounts[1].kind, Some(MountType::Bind));
    assert_eq!(mounts[1].source.as_deref(), Some("/srv/app/static"));
    assert_eq!(mounts[1].read_only, Some(true));
    assert_eq!(mounts[2].tmpfs.as_ref().unwrap().size.unwrap().0, 64 << 20);
    let health = web.healthcheck.as_ref().unwrap();
    assert_eq!(
        health.test.as_ref().unwrap().0,
        ["CMD-SHELL", "curl -f http://localhost:8080/health"]
    );
    assert_eq!(health.interval.as_ref().unwrap().value.to_string(), "10s");
    let logging = web.logging.as_ref().unwrap();
    assert_eq!(logging.options.as_ref().unwrap()["max-file"].value, "3");
    let deploy = web.deploy.as_ref().unwrap();
    assert_eq!(deploy.mode.as_ref().unwrap().value, DeployMode::Replicated);
    let update = deploy.update_config.as_ref().unwrap();
    assert_eq!(
        update.failure_action.as_ref().unwrap().value,
        FailureAction::Rollback
    );
    assert_eq!(
        update.failure_action.as_ref().unwrap().at,
        Location {
            file: 0,
            line: 44,
            column: 25
        }
    );
    assert_eq!(
        update.order.as_ref().unwrap().value,
        UpdateOrder::StartFirst
    );
    let limits = deploy.resources.as_ref().unwrap().limits.as_ref().unwrap();
    assert_eq!(limits.cpus.as_ref().unwrap().value.0, 500_000_000);
    assert_eq!(limits.memory.as_ref().unwrap().value.0, 256 << 20);
}

#[test]
fn short_port_ranges_expand() {
    let stack = load_one("services:\n  dns:\n    image: dns:1\n    ports:\n      - 127.0.0.1:5353-5354:53-54/udp\n      - \"9000\"\n").unwrap();
    let ports: Vec<(u32, Option<u32>, Option<Protocol>)> = stack.services["dns"]
        .ports
        .as_ref()
        .unwrap()
        .0
        .iter()
        .map(|p| (p.target, p.published, p.protocol))
        .collect();
    assert_eq!(
        ports,
        [
            (53, Some(5353), Some(Protocol::Udp)),
            (54, Some(5354), Some(Protocol::Udp)),
            (9000, None, Some(Protocol::Tcp))
        ]
    );
}

#[test]
fn interpolates_like_the_docker_cli() {
    let text = "services:\n  web:\n    image: app:${TAG}\n    environment:\n      A: ${UNSET:-fallback}\n      B: ${EMPTY-kept}\n      C: $$HOME\n      D: $TAG\n      E: ${EMPTY:-replaced}\n    deploy:\n      replicas: ${REPLICAS}\n";
    let stack = load_with(
        &[("stack.yml", text)],
        &[("TAG", "1.2"), ("EMPTY", ""), ("REPLICAS", "4")],
    )
    .unwrap();
    let web = &stack.services["web"];
    assert_eq!(web.image.as_ref().unwrap().value, "app:1.2");
    let env = &web.environment.as_ref().unwrap().0;
    assert_eq!(env["A"].as_deref(), Some("fallback"));
    assert_eq!(env["B"].as_deref(), Some(""));
    assert_eq!(env["C"].as_deref(), Some("$HOME"));
    assert_eq!(env["D"].as_deref(), Some("1.2"));
    assert_eq!(env["E"].as_deref(), Some("replaced"));
    assert_eq!(
        web.deploy
            .as_ref()
            .unwrap()
            .replicas
            .as_ref()
            .unwrap()
            .value,
        4
    );
}

#[test]
fn a_missing_required_variable_is_an_error_where_it_is_used() {
    let text = "services:\n  web:\n    image: app:${TAG:?set TAG to the release}\n";
    let err = load_with(&[("stack.yml", text)], &[]).unwrap_err();
    assert_eq!(
        (err.file.as_str(), err.line, err.column),
        ("stack.yml", 3, 12)
    );
    assert!(
        err.message.contains("TAG") && err.message.contains("set TAG to the release"),
        "{}",
        err.message
    );
    assert_eq!(
        err.snippet,
        "3 |     image: app:${TAG:?set TAG to the release}\n  |            ^"
    );
}

#[test]
fn env_files_are_read_relative_to_the_working_dir_and_overridden_by_environment() {
    let env_files = [(
        "/srv/app/common.env",
        "# shared\nLEVEL=info\nREGION=eu\nFROM_SHELL\n",
    )];
    let load_with = |files: &[(&str, &str)], variables: &[(&str, &str)]| {
        support::load_in(support::WORKING_DIR, files, variables, &env_files)
    };
    let text = "services:\n  web:\n    image: app:1\n    env_file: ./common.env\n    environment:\n      LEVEL: debug\n      TOKEN:\n";
    let stack = load_with(
        &[("stack.yml", text)],
        &[("FROM_SHELL", "yes"), ("TOKEN", "t0k")],
    )
    .unwrap();
    let env = &stack.services["web"].environment.as_ref().unwrap().0;
    assert_eq!(env["LEVEL"].as_deref(), Some("debug"));
    assert_eq!(env["REGION"].as_deref(), Some("eu"));
    assert_eq!(env["FROM_SHELL"].as_deref(), Some("yes"));
    assert_eq!(env["TOKEN"].as_deref(), Some("t0k"));

    let err = load_with(
        &[(
            "stack.yml",
            "services:\n  web:\n    image: a:1\n    env_file: [missing.env]\n",
        )],
        &[],
    )
    .unwrap_err();
    assert_eq!((err.line, err.column), (4, 15));
    assert!(
        err.message.contains("/srv/app/missing.env"),
        "{}",
        err.message
    );
}

#[test]
fn later_files_override_and_merge() {
    let base = r#"
services:
  web:
    image: app:1
    command: serve
    environment: {A: "1", B: "1"}
    labels: [tier=front]
    ports: ["80:8080", "443:8443"]
    volumes: ["data:/data", "./conf:/conf"]
    logging: {driver: json-file, options: {max-size: 10m}}
    deploy:
      replicas: 2
      placement: {constraints: [node.role==worker]}
      update_config: {parallelism: 2, failure_action: pause}
  db:
    image: postgres:16
volumes:
  data: {}
"#;
    let prod = r#"
services:
  web:
    image: app:2
    environment: [B=2, C=3]
    ports: ["80:8080", "8081:8081"]
    volumes: ["other:/data"]
    logging: {options: {max-file: "5"}}
    deploy:
      placement: {constraints: [node.labels.zone==a]}
      update_config: {failure_action: rollback}
  cache:
    image: redis:7
volumes:
  other: {}
"#;
    let stack = load_with(&[("base.yml", base), ("prod.yml", prod)], &[]).unwrap();
    assert_eq!(
        stack.services.keys().collect::<Vec<_>>(),
        ["cache", "db", "web"]
    );
    let web = &stack.services["web"];
    assert_eq!(
        web.at.file, 0,
        "a merged service stays where it was first written"
    );
    assert_eq!(web.image.as_ref().unwrap().value, "app:2");
    assert_eq!(web.image.as_ref().unwrap().at.file, 1);
    assert_eq!(web.command.as_ref().unwrap().0, ["serve"]);
    let env = &web.environment.as_ref().unwrap().0;
    assert_eq!(
        (
            env["A"].as_deref(),
            env["B"].as_deref(),
            env["C"].as_deref()
        ),
        (Some("1"), Some("2"), Some("3"))
    );
    let published: Vec<Option<u32>> = web
        .ports
        .as_ref()
        .unwrap()
        .0
        .iter()
        .map(|p| p.published)
        .collect();
    assert_eq!(published, [Some(80), Some(443), Some(8081)]);
    let mounts: Vec<(&str, &str)> = web
        .volumes
        .as_ref()
        .unwrap()
        .0
        .iter()
        .map(|m| (m.source.as_deref().unwrap(), m.target.as_deref().unwrap()))
        .collect();
    assert_eq!(mounts, [("/srv/app/conf", "/conf"), ("other", "/data")]);
    let logging = web.logging.as_ref().unwrap();
    assert_eq!(logging.driver.as_ref().unwrap().value, "json-file");
    assert_eq!(logging.options.as_ref().unwrap().len(), 2);
    let deploy = web.deploy.as_ref().unwrap();
    assert_eq!(deploy.replicas.as_ref().unwrap().value, 2);
    assert_eq!(
        deploy
            .placement
            .as_ref()
            .unwrap()
            .constraints
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| c.value.as_str())
            .collect::<Vec<_>>(),
        ["node.role==worker", "node.labels.zone==a"]
    );
    let update = deploy.update_config.as_ref().unwrap();
    assert_eq!(update.parallelism.as_ref().unwrap().value, 2);
    assert_eq!(
        update.failure_action.as_ref().unwrap().value,
        FailureAction::Rollback
    );
    assert_eq!(update.failure_action.as_ref().unwrap().at.file, 1);
    assert_eq!(stack.volumes.keys().collect::<Vec<_>>(), ["data", "other"]);
}

#[test]
fn a_different_logging_driver_replaces_the_options() {
    let base = "services:\n  web:\n    image: a:1\n    logging: {driver: json-file, options: {max-size: 10m}}\n";
    let later = "services:\n  web:\n    logging: {driver: local}\n";
    let stack = load_with(&[("a.yml", base), ("b.yml", later)], &[]).unwrap();
    let logging = stack.services["web"].logging.as_ref().unwrap();
    assert_eq!(logging.driver.as_ref().unwrap().value, "local");
    assert!(logging.options.is_none());
}

#[test]
fn an_unknown_key_is_an_error_with_a_suggestion() {
    let err = error_of("services:\n  web:\n    image: app:1\n    deploy:\n      replicaz: 2\n");
    assert_eq!((err.line, err.column), (5, 7));
    assert_eq!(
        err.message,
        "unknown key `replicaz` in deploy: did you mean `replicas`?"
    );
    assert_eq!(
        err.to_string(),
        "stack.yml:5:7: unknown key `replicaz` in deploy: did you mean `replicas`?\n5 |       replicaz: 2\n  |       ^"
    );
}

#[test]
fn extension_keys_are_skipped_and_forbidden_keys_explained() {
    assert!(load_one(
        "x-common: &common {a: 1}\nservices:\n  web:\n    image: a:1\n    x-note: hi\n"
    )
    .is_ok());
    let err = error_of("services:\n  web:\n    image: a:1\n    volumes_from: [db]\n");
    assert_eq!((err.line, err.column), (4, 5));
    assert!(
        err.message
            .starts_with("`volumes_from` is not allowed in a stack file"),
        "{}",
        err.message
    );
}

#[test]
fn a_bad_duration_points_at_the_value_and_says_what_is_expected() {
    let err = error_of("services:\n  web:\n    image: a:1\n    deploy:\n      update_config:\n        delay: 10x\n");
    assert_eq!((err.line, err.column), (6, 16));
    assert_eq!(
        err.message,
        "invalid duration \"10x\": unknown unit \"x\", expected ns, us, ms, s, m or h"
    );
}

#[test]
fn a_bad_enum_value_lists_the_allowed_ones() {
    let err = error_of("services:\n  web:\n    image: a:1\n    deploy:\n      update_config:\n        failure_action: explode\n");
    assert_eq!((err.line, err.column), (6, 25));
    assert_eq!(
        err.message,
        "invalid failure action \"explode\": expected one of `continue`, `pause`, `rollback`"
    );
}

#[test]
fn a_wrong_type_is_an_error() {
    let err = error_of("services:\n  web:\n    image: a:1\n    deploy:\n      replicas: many\n");
    assert_eq!((err.line, err.column), (5, 17));
    let err = error_of("services:\n  web:\n    image: [a, b]\n");
    assert_eq!((err.line, err.column), (3, 12));
}

#[test]
fn a_bad_port_points_at_the_item() {
    let err = error_of("services:\n  web:\n    image: a:1\n    ports:\n      - \"80:http\"\n");
    assert_eq!((err.line, err.column), (5, 9));
    assert_eq!(
        err.message,
        "invalid port \"80:http\": target port \"http\" is not a number"
    );
}

#[test]
fn broken_yaml_is_an_error() {
    let err = error_of("services:\n  web:\n    image: [a\n");
    assert_eq!(err.file, "stack.yml");
    assert!(err.line >= 3, "{err}");
    let err = error_of("");
    assert_eq!((err.line, err.column), (1, 1));
}

#[test]
fn references_must_be_defined() {
    let err = error_of("services:\n  web:\n    image: a:1\n    networks: [backend]\n");
    assert_eq!((err.line, err.column), (4, 16));
    assert!(err.message.contains("network `backend`"), "{}", err.message);
    let err = error_of("services:\n  web:\n    image: a:1\n    secrets: [token]\n");
    assert!(err.message.contains("secret `token`"), "{}", err.message);
    let err = error_of("services:\n  web:\n    image: a:1\n    volumes: [\"data:/data\"]\n");
    assert!(err.message.contains("volume `data`"), "{}", err.message);
    let err = error_of("services:\n  web:\n    command: serve\n");
    assert_eq!((err.line, err.column), (2, 3));
    assert!(err.message.contains("no `image`"), "{}", err.message);
    let err = error_of(
        "services:\n  agent:\n    image: a:1\n    deploy:\n      mode: global\n      replicas: 2\n",
    );
    assert_eq!((err.line, err.column), (6, 17));
}

#[test]
fn octal_modes_read_like_go_yaml() {
    let stack = load_one("services:\n  web:\n    image: a:1\n    secrets:\n      - source: token\n        mode: 0400\nsecrets:\n  token:\n    file: ./token.txt\n").unwrap();
    let secret = &stack.services["web"].secrets.as_ref().unwrap().0[0];
    assert_eq!(secret.mode, Some(0o400));
    assert_eq!(
        stack.secrets["token"].file.as_deref(),
        Some("/srv/app/token.txt")
    );
}
