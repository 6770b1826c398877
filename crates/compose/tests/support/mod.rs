//! Loading stack files in tests: named texts, variables and env files from tables, relative
//! paths resolved against a fixed directory.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;
use swarmkeeper_compose::{load, stack_spec, ComposeError, Environment, SourceFile, Stack};

/// Where relative paths start, unless a test says otherwise.
pub const WORKING_DIR: &str = "/srv/app";

/// Loads `files` (name, text) in order with `variables`, from `dir`; `env_files` (absolute
/// path, text) are the only files there are.
pub fn load_in(
    dir: &str,
    files: &[(&str, &str)],
    variables: &[(&str, &str)],
    env_files: &[(&str, &str)],
) -> Result<Stack, ComposeError> {
    let variables: HashMap<String, String> = variables
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let read = |path: &str| -> std::io::Result<String> {
        env_files
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, text)| text.to_string())
            .ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, format!("{path} not found"))
            })
    };
    let sources: Vec<SourceFile> = files
        .iter()
        .map(|(name, text)| SourceFile { name, text })
        .collect();
    load(
        &sources,
        &Environment {
            variables: &variables,
            working_dir: Path::new(dir),
            read_file: &read,
        },
    )
}

/// [`load_in`] from [`WORKING_DIR`], with no env files.
pub fn load_files(
    files: &[(&str, &str)],
    variables: &[(&str, &str)],
) -> Result<Stack, ComposeError> {
    load_in(WORKING_DIR, files, variables, &[])
}

/// One file called `stack.yml`, no variables.
pub fn load_one(text: &str) -> Result<Stack, ComposeError> {
    load_files(&[("stack.yml", text)], &[])
}

/// The Engine API body of each service of `stack`, deployed as `demo`, by service name.
pub fn service_specs(stack: &Stack) -> Value {
    let spec = stack_spec("demo", stack).expect("the stack converts");
    serde_json::to_value(&spec.services).unwrap()
}
