//! `swarmkeeper lint` run as a user runs it: golden outputs for real-world stack shapes and the
//! three incidents, exit codes, and the messages for files that cannot be read or parsed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../lint/tests/fixtures");

/// Runs `swarmkeeper ARGS` in `dir`, with no variables that could change the output.
fn swarmkeeper_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_swarmkeeper"))
        .args(args)
        .current_dir(dir)
        .env_remove("TAG")
        .envs(env.iter().copied())
        .output()
        .expect("run swarmkeeper")
}

fn lint_fixture(files: &[&str], format: &str) -> Output {
    let mut args = vec!["lint"];
    for file in files {
        args.extend(["-c", file]);
    }
    args.extend(["--format", format]);
    swarmkeeper_in(Path::new(FIXTURES), &args, &[])
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("utf-8 output")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("utf-8 output")
}

/// A fresh directory of its own for one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(purpose: &str) -> TempDir {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "swarmkeeper-lint-{purpose}-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        TempDir(dir)
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Lints `fixture` as JSON, checks the exit code, and returns the output for a snapshot.
fn golden_json(files: &[&str], exit_code: i32) -> String {
    let output = lint_fixture(files, "json");
    assert_eq!(
        output.status.code(),
        Some(exit_code),
        "stderr: {}",
        stderr(&output)
    );
    stdout(&output)
}

#[test]
fn good_stack_has_no_findings() {
    let output = lint_fixture(&["good.yml"], "table");
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    assert_eq!(stdout(&output), "no findings in 1 file(s)\n");
    assert_eq!(golden_json(&["good.yml"], 0), "{\n  \"findings\": []\n}\n");
}

#[test]
fn webapp_with_database() {
    insta::assert_snapshot!(golden_json(&["webapp-db.yml"], 0));
}

#[test]
fn webapp_with_production_overrides() {
    insta::assert_snapshot!(golden_json(&["webapp-db.yml", "webapp-db.prod.yml"], 0));
}

#[test]
fn global_monitoring_agent_with_host_ports() {
    insta::assert_snapshot!(golden_json(&["monitoring-agent.yml"], 1));
}

#[test]
fn secrets_and_configs() {
    insta::assert_snapshot!(golden_json(&["secrets-configs.yml"], 1));
}

#[test]
fn incident_1_auto_deployed_latest_images() {
    insta::assert_snapshot!(golden_json(&["incident-1-auto-deploy.yml"], 0));
}

#[test]
fn incident_2_logging_driver_none() {
    insta::assert_snapshot!(golden_json(&["incident-2-logs-none.yml"], 1));
}

#[test]
fn incident_3_failed_update_pauses() {
    insta::assert_snapshot!(golden_json(&["incident-3-pause.yml"], 0));
}

#[test]
fn table_explains_each_rule_once() {
    let output = lint_fixture(&["webapp-db.yml"], "table");
    assert_eq!(output.status.code(), Some(0));
    insta::assert_snapshot!(stdout(&output));
}

#[test]
fn sarif_for_code_scanning() {
    let output = lint_fixture(&["incident-2-logs-none.yml"], "sarif");
    assert_eq!(output.status.code(), Some(1));
    let sarif: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("SARIF is JSON");
    assert_eq!(sarif["version"], "2.1.0");
    let result = &sarif["runs"][0]["results"][0];
    assert_eq!(result["ruleId"], "SK001");
    assert_eq!(result["level"], "error");
    assert_eq!(
        result["locations"][0]["physicalLocation"]["region"],
        serde_json::json!({"startLine": 8, "startColumn": 15})
    );
    let rule_index = result["ruleIndex"].as_u64().expect("a rule index") as usize;
    assert_eq!(
        sarif["runs"][0]["tool"]["driver"]["rules"][rule_index]["id"],
        "SK001"
    );
    insta::assert_snapshot!(stdout(&output));
}

#[test]
fn error_findings_exit_1_with_a_summary_on_stderr() {
    let output = lint_fixture(&["incident-2-logs-none.yml"], "table");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "swarmkeeper: lint: 1 error, 0 warnings, 0 notes\n"
    );
    assert!(
        stdout(&output).contains("incident-2-logs-none.yml:8:15"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn an_invalid_file_exits_2_with_the_place_and_nothing_on_stdout() {
    let dir = TempDir::new("invalid");
    let text = "services:\n  web:\n    image: app:1\n    deploy:\n      update_config:\n        delay: 10x\n";
    std::fs::write(dir.join("stack.yml"), text).unwrap();
    let output = swarmkeeper_in(&dir, &["lint", "-c", "stack.yml"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(stdout(&output), "");
    assert_eq!(
        stderr(&output),
        "swarmkeeper: error: stack.yml:6:16: invalid duration \"10x\": unknown unit \"x\", expected ns, us, ms, s, m or h\n\
         6 |         delay: 10x\n  \
           |                ^\n"
    );

    std::fs::write(
        dir.join("enum.yml"),
        text.replace("delay: 10x", "failure_action: explode"),
    )
    .unwrap();
    let output = swarmkeeper_in(&dir, &["lint", "-c", "enum.yml", "--format", "json"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(stdout(&output), "");
    assert!(stderr(&output).starts_with("swarmkeeper: error: enum.yml:6:25: invalid failure action \"explode\": expected one of `continue`, `pause`, `rollback`\n"), "{}", stderr(&output));

    std::fs::write(dir.join("key.yml"), "services:\n  web:\n    imag: app:1\n").unwrap();
    let output = swarmkeeper_in(&dir, &["lint", "-c", "key.yml"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output)
            .contains("key.yml:3:5: unknown key `imag` in service: did you mean `image`?"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn variables_come_from_the_environment() {
    let dir = TempDir::new("variables");
    std::fs::write(
        dir.join("stack.yml"),
        "services:\n  web:\n    image: app:${TAG:?set TAG to the release}\n",
    )
    .unwrap();
    let output = swarmkeeper_in(&dir, &["lint", "-c", "stack.yml"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).starts_with("swarmkeeper: error: stack.yml:3:12: "),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("set TAG to the release"),
        "{}",
        stderr(&output)
    );

    let output = swarmkeeper_in(
        &dir,
        &["lint", "-c", "stack.yml", "--format", "json"],
        &[("TAG", "latest")],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("image `app:latest` is tagged `latest`"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn env_files_are_relative_to_the_compose_file() {
    let dir = TempDir::new("env-file");
    std::fs::create_dir_all(dir.join("deploy")).unwrap();
    std::fs::write(dir.join("deploy/app.env"), "MODE=production\n").unwrap();
    std::fs::write(
        dir.join("deploy/stack.yml"),
        "services:\n  web:\n    image: app:1\n    env_file: app.env\n",
    )
    .unwrap();
    let output = swarmkeeper_in(&dir, &["lint", "-c", "deploy/stack.yml"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    std::fs::write(
        dir.join("deploy/stack.yml"),
        "services:\n  web:\n    image: app:1\n    env_file: missing.env\n",
    )
    .unwrap();
    let output = swarmkeeper_in(&dir, &["lint", "-c", "deploy/stack.yml"], &[]);
    assert_eq!(output.status.code(), Some(2));
    // The path is made absolute from the compose file's directory, as the docker CLI does.
    assert!(
        stderr(&output).contains("deploy/stack.yml:4:15: env_file /")
            && stderr(&output).contains("/deploy/missing.env: "),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_missing_file_or_flag_is_a_usage_error() {
    let dir = TempDir::new("missing");
    let output = swarmkeeper_in(&dir, &["lint", "-c", "nope.yml"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).starts_with("swarmkeeper: error: nope.yml: "),
        "{}",
        stderr(&output)
    );
    assert_eq!(stdout(&output), "");

    let output = swarmkeeper_in(&dir, &["lint"], &[]);
    assert_eq!(output.status.code(), Some(2), "clap's usage error");
}

#[test]
fn the_shipped_stack_file_has_no_findings() {
    let file = format!(
        "{}/../../deploy/swarmkeeper.yml",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_swarmkeeper"))
        .args(["lint", "-c", &file])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no findings"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
