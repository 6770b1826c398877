//! Several `-c` files merged with the docker CLI's rules, key by key (`src/merge.rs` lists
//! them, and where swarmkeeper deliberately differs).

mod support;

use serde_json::{json, Value};

/// The Engine API body of service `web` after merging `files` in order.
fn web(files: &[&str]) -> Value {
    let names: Vec<String> = (0..files.len()).map(|i| format!("f{i}.yml")).collect();
    let files: Vec<(&str, &str)> = names
        .iter()
        .map(String::as_str)
        .zip(files.iter().copied())
        .collect();
    let stack = support::load_files(&files, &[("FROM_SHELL", "shell")]).unwrap();
    support::service_specs(&stack)["web"].clone()
}

const BASE: &str = "services:
  web:
    image: app:1
    command: serve
    read_only: true
    hostname: base
    environment: {A: '1', B: '1', C: '1', FROM_SHELL: written}
    labels: {x: '1'}
    cap_add: [NET_ADMIN]
    dns: [192.0.2.1]
    volumes: ['/b:/b', '/a:/a']
    secrets: [s2, s1]
    networks:
      front: {aliases: [one]}
      back: {aliases: [two], driver_opts: {k: v}}
    healthcheck: {test: [CMD, a], interval: 5s}
    logging: {driver: json-file}
    deploy:
      replicas: 2
      placement: {constraints: [node.role == worker]}
      update_config: {parallelism: 2, failure_action: pause}
networks: {front: {}, back: {}}
secrets:
  s1: {file: ./s1}
  s2: {file: ./s2}
";

#[test]
fn a_service_in_both_files_merges_key_by_key() {
    let later = "services:
  web:
    read_only: false
    hostname: ''
    command: []
    environment: [B=2, C=, FROM_SHELL]
    labels: {y: '2'}
    cap_add: [SYS_TIME]
    dns: 192.0.2.2
    networks:
      front:
      back: {aliases: [three]}
    healthcheck: {test: [CMD, b]}
    logging: {options: {max-size: 10m}}
    deploy:
      placement: {constraints: [node.labels.zone == a]}
      update_config: {failure_action: rollback}
";
    let spec = web(&[BASE, later]);
    let container = &spec["TaskTemplate"]["ContainerSpec"];
    // What is written later wins, `false` and empty included; an empty command does not.
    assert_eq!(container["ReadOnly"], Value::Null);
    assert_eq!(container["Hostname"], Value::Null);
    assert_eq!(container["Args"], json!(["serve"]));
    // Mappings merge key by key; a variable written without a value (or empty) takes the
    // environment's value when it has one.
    assert_eq!(
        container["Env"],
        json!(["A=1", "B=2", "C=", "FROM_SHELL=shell"])
    );
    assert_eq!(
        container["Labels"],
        json!({"x": "1", "y": "2", "com.docker.stack.namespace": "demo"})
    );
    // Other lists are appended to.
    assert_eq!(
        container["CapabilityAdd"],
        json!(["CAP_NET_ADMIN", "CAP_SYS_TIME"])
    );
    assert_eq!(
        container["DNSConfig"]["Nameservers"],
        json!(["192.0.2.1", "192.0.2.2"])
    );
    assert_eq!(
        spec["TaskTemplate"]["Placement"]["Constraints"],
        json!(["node.role == worker", "node.labels.zone == a"])
    );
    // Mounts and secrets are re-keyed and sorted, although the later file lists none.
    let targets: Vec<&str> = container["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["/a", "/b"]);
    // A network named alone clears its options; with options, the aliases are replaced and
    // the driver options kept.
    assert_eq!(
        spec["TaskTemplate"]["Networks"],
        json!([
            {"Target": "demo_back", "Aliases": ["three", "web"], "DriverOpts": {"k": "v"}},
            {"Target": "demo_front", "Aliases": ["web"]}
        ])
    );
    // The health command is replaced (the docker CLI appends the two into one).
    assert_eq!(container["Healthcheck"]["Test"], json!(["CMD", "b"]));
    assert_eq!(container["Healthcheck"]["Interval"], 5_000_000_000u64);
    // Logging with no driver named keeps the earlier driver and adds the options.
    assert_eq!(
        spec["TaskTemplate"]["LogDriver"],
        json!({"Name": "json-file", "Options": {"max-size": "10m"}})
    );
    assert_eq!(spec["Mode"]["Replicated"]["Replicas"], 2);
    assert_eq!(spec["UpdateConfig"]["Parallelism"], 2);
    assert_eq!(spec["UpdateConfig"]["FailureAction"], "rollback");
}

#[test]
fn another_logging_driver_replaces_the_whole() {
    let base = "services:\n  web:\n    image: a:1\n    logging: {driver: json-file, options: {max-size: 10m}}\n";
    let later = "services:\n  web:\n    logging: {driver: local}\n";
    assert_eq!(
        web(&[base, later])["TaskTemplate"]["LogDriver"],
        json!({"Name": "local"})
    );
}

#[test]
fn a_service_in_one_file_keeps_its_order() {
    let base = "services:\n  web:\n    image: a:1\n    volumes: ['/b:/b', '/a:/a']\n";
    let other = "services:\n  other:\n    image: b:1\n";
    let targets = |spec: Value| -> Vec<String> {
        spec["TaskTemplate"]["ContainerSpec"]["Mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Target"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(targets(web(&[base, other])), ["/b", "/a"]);
    let same = "services:\n  web:\n    image: a:2\n";
    assert_eq!(targets(web(&[base, same])), ["/a", "/b"]);
}
