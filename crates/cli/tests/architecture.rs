//! The layering ARCHITECTURE.md promises, read from `cargo metadata`: the pure crates (the
//! decisions) depend on no shell crate (engine, disk, SQLite, network, CLI) and on no library
//! that does I/O, so their decisions stay testable without an engine. A new crate must be put
//! in one of the two lists below before the workspace passes.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// Crates that decide, on plain data, without I/O.
const PURE: &[&str] = &[
    "swarmkeeper-gc",
    "swarmkeeper-compose",
    "swarmkeeper-lint",
    "swarmkeeper-rollout",
    "swarmkeeper-report",
    "swarmkeeper-swarm",
    "swarmkeeper-units",
    "swarmkeeper-reference",
    "swarmkeeper-autodeploy",
    "swarmkeeper-alerts",
];

/// Crates that talk to the engine, the disk, SQLite, the network or a terminal.
const SHELL: &[&str] = &[
    "swarmkeeper-engine",
    "swarmkeeper-store",
    "swarmkeeper-agent",
    "swarmkeeper-deploy",
    "swarmkeeper-auth",
    "swarmkeeper-server",
    "swarmkeeper-cli",
    "swarmkeeper-registry",
    "swarmkeeper-notify",
    "swarmkeeper-cgroup",
];

/// Libraries whose job is I/O; a pure crate has no use for them.
const IO_LIBRARIES: &[&str] = &[
    "tokio",
    "hyper",
    "hyper-util",
    "http-body-util",
    "axum",
    "tower",
    "rusqlite",
    "rustix",
    "bollard",
    "reqwest",
    "ureq",
    "lettre",
    "indicatif",
    "tracing-subscriber",
];

/// Each workspace crate's non-dev dependencies.
fn workspace() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: Value = serde_json::from_slice(&out.stdout).unwrap();
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| {
            let dependencies = package["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].as_str() != Some("dev"))
                .map(|d| d["name"].as_str().unwrap().to_string())
                .collect();
            (package["name"].as_str().unwrap().to_string(), dependencies)
        })
        .collect()
}

#[test]
fn every_crate_is_pure_or_shell() {
    for name in workspace().keys() {
        assert!(
            PURE.contains(&name.as_str()) || SHELL.contains(&name.as_str()),
            "{name} is in neither list of tests/architecture.rs: decide whether it is pure \
             (decisions on plain data) or a shell, and write it down in ARCHITECTURE.md too"
        );
    }
}

#[test]
fn pure_crates_depend_on_nothing_that_does_io() {
    let crates = workspace();
    let mut wrong = Vec::new();
    for (name, dependencies) in crates.iter().filter(|(n, _)| PURE.contains(&n.as_str())) {
        for dependency in dependencies {
            if SHELL.contains(&dependency.as_str()) || IO_LIBRARIES.contains(&dependency.as_str()) {
                wrong.push(format!("{name} → {dependency}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "pure crates must not depend on shell crates or I/O libraries: {}",
        wrong.join(", ")
    );
}

#[test]
fn nothing_depends_on_the_binary_and_the_agent_not_on_the_server() {
    let crates = workspace();
    for (name, dependencies) in &crates {
        assert!(
            !dependencies.contains("swarmkeeper-cli"),
            "{name} depends on the binary"
        );
    }
    assert!(!crates["swarmkeeper-agent"].contains("swarmkeeper-server"));
    assert!(!crates["swarmkeeper-engine"]
        .iter()
        .any(|d| d.starts_with("swarmkeeper-") && d != "swarmkeeper-swarm"));
}
