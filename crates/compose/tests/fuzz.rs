//! Whatever text comes in, loading ends in a stack or an error, never a panic; and an error
//! always points inside the file.

use std::collections::HashMap;
use std::path::Path;

use proptest::prelude::*;
use swarmkeeper_compose::{load, Environment, SourceFile};

const VALID: &str = r#"version: "3.8"
services:
  web:
    image: app:${TAG:-1}
    command: serve --port 80
    environment: [A=1, B=]
    ports: ["80:8080", {target: 9000, published: 9000, mode: host}]
    volumes: ["data:/data", "./x:/x:ro", {type: tmpfs, target: /t}]
    secrets: [{source: s, mode: 0400}]
    healthcheck: {test: [CMD, "true"], interval: 5s, retries: 3}
    logging: {driver: json-file, options: {max-size: 1m}}
    deploy:
      mode: replicated
      replicas: 2
      resources: {limits: {cpus: "0.5", memory: 64m}}
      update_config: {parallelism: 1, delay: 1m30s, failure_action: rollback, order: start-first}
      restart_policy: {condition: any, max_attempts: 3}
volumes: {data: {}}
secrets: {s: {file: ./s.txt}}
"#;

fn check(text: &str) {
    let variables = HashMap::from([("TAG".to_string(), "2".to_string())]);
    let read = |_: &str| Ok("K=V\n".to_string());
    let environment = Environment {
        variables: &variables,
        working_dir: Path::new("/w"),
        read_file: &read,
    };
    if let Err(err) = load(
        &[SourceFile {
            name: "f.yml",
            text,
        }],
        &environment,
    ) {
        let lines = text.lines().count().max(1) as u32;
        assert!(
            err.line <= lines + 1,
            "{err} is past the end of a {lines}-line file"
        );
    }
}

/// Small edits of a valid file: the likely typos.
fn mutation() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        ":", "-", " ", "\n", "[", "{", "}", "\"", "'", "$", "${", "&a", "*a", "<<", "0x", "~",
        "\t", "é",
    ]);
    (0..VALID.len(), 0..4usize, pieces).prop_map(|(at, cut, piece)| {
        let at = (0..=at)
            .rev()
            .find(|i| VALID.is_char_boundary(*i))
            .unwrap_or(0);
        let end = (at + cut..=VALID.len())
            .find(|i| VALID.is_char_boundary(*i))
            .unwrap_or(VALID.len());
        format!("{}{}{}", &VALID[..at], piece, &VALID[end..])
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn edited_files_never_panic(text in mutation()) {
        check(&text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        check(&text);
    }

    #[test]
    fn yaml_shaped_text_never_panics(text in "(services:\n  [a-z]{1,3}:\n    [a-z_]{1,12}: [-a-z0-9:${}\\[\\] ]{0,20}\n){1,3}") {
        check(&text);
    }
}

#[test]
fn the_valid_file_loads() {
    let variables = HashMap::new();
    let read = |_: &str| Ok(String::new());
    let environment = Environment {
        variables: &variables,
        working_dir: Path::new("/w"),
        read_file: &read,
    };
    load(
        &[SourceFile {
            name: "f.yml",
            text: VALID,
        }],
        &environment,
    )
    .unwrap();
}
