//! Loading a stack file as the tests lint it: one file, no variables, env files readable as
//! comments.

use std::collections::HashMap;
use std::path::Path;

use swarmkeeper_compose::{load, Environment, SourceFile, Stack};

/// `text` as `stack.yml`, working directory `/w`; panics with the loader's message.
pub fn stack(text: &str) -> Stack {
    let variables = HashMap::new();
    let read = |path: &str| -> std::io::Result<String> { Ok(format!("# {path}\n")) };
    let environment = Environment {
        variables: &variables,
        working_dir: Path::new("/w"),
        read_file: &read,
    };
    load(
        &[SourceFile {
            name: "stack.yml",
            text,
        }],
        &environment,
    )
    .unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// A service that every rule is happy with; tests change one thing at a time.
pub const GOOD: &str = "services:
  web:
    image: app:1.0
    healthcheck: {test: [CMD, /health], interval: 5s, timeout: 2s, retries: 3}
    logging: {driver: local, options: {max-size: 10m}}
    deploy:
      update_config: {parallelism: 1, delay: 5s, failure_action: rollback, monitor: 30s, order: start-first}
";
