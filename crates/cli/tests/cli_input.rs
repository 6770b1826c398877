//! The command line's answers to bad input and to a missing engine: exit codes 2 and 3 with
//! messages that name the file position or the flag. None of these need an engine.

use std::process::{Command, Output};

fn swarmkeeper(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_swarmkeeper"))
        .env("DOCKER_HOST", "unix:///nonexistent/swarmkeeper-test.sock")
        .env_remove("SWARMKEEPER_STATE_DIR")
        .args(args)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn scratch_file(name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("swarmkeeper-cli-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn plans_the_contract_example_from_a_snapshot() {
    let out = swarmkeeper(&[
        "gc",
        "plan",
        "--snapshot",
        &fixture("contract-snapshot.json"),
        "--json",
        "--high-threshold",
        "90",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["usage_percent"], 95);
    assert_eq!(plan["high_threshold_percent"], 90);
    assert_eq!(plan["low_threshold_percent"], 80);
    assert_eq!(plan["bytes_to_free"], 150);
    assert_eq!(
        plan["delete"],
        serde_json::json!([{"id": "sha256:old", "reason": "space", "bytes": 450, "repo_tags": ["app:1"]}])
    );
    assert_eq!(
        (
            plan["planned_free_bytes"].as_u64(),
            plan["shortfall_bytes"].as_u64()
        ),
        (Some(450), Some(0))
    );
    let keep: Vec<(String, String)> = plan["keep"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["id"].as_str().unwrap().into(),
                k["reason"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(keep.contains(&("sha256:current".into(), "in-use".into())));
    assert!(keep.contains(&("sha256:fresh".into(), "too-young".into())));

    let human = swarmkeeper(&[
        "gc",
        "plan",
        "--snapshot",
        &fixture("contract-snapshot.json"),
        "--high-threshold",
        "90",
    ]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains("usage 95% (high 90%, low 80%)"), "{text}");
    assert!(text.contains("app:1") && text.contains("space"), "{text}");
}

#[test]
fn a_malformed_snapshot_names_file_line_and_column() {
    let path = scratch_file(
        "broken.json",
        "{\n  \"version\": 1,\n  \"taken_at\": oops\n}\n",
    );
    let out = swarmkeeper(&["gc", "plan", "--snapshot", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!("{}:3:", path.display())),
        "{}",
        stderr(&out)
    );
    std::fs::remove_file(path).ok();
}

#[test]
fn a_missing_field_is_named() {
    let text = std::fs::read_to_string(fixture("contract-snapshot.json"))
        .unwrap()
        .replace("\"size_bytes\": 50, ", "");
    let path = scratch_file("missing.json", &text);
    let out = swarmkeeper(&["gc", "plan", "--snapshot", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("missing field `size_bytes`"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains(&format!("{}:14:", path.display())),
        "{}",
        stderr(&out)
    );
    std::fs::remove_file(path).ok();
}

#[test]
fn an_unreadable_snapshot_file_is_named() {
    let out = swarmkeeper(&["gc", "plan", "--snapshot", "/nonexistent/snap.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--snapshot /nonexistent/snap.json"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn impossible_policies_name_the_flag_and_value() {
    let snap = fixture("contract-snapshot.json");
    for (args, expected) in [
        (
            vec!["--high-threshold", "150"],
            "invalid --high-threshold \"150\"",
        ),
        (
            vec!["--low-threshold", "-5"],
            "invalid --low-threshold \"-5\"",
        ),
        (
            vec!["--high-threshold", "70", "--low-threshold", "75"],
            "must not exceed --high-threshold (70)",
        ),
        (vec!["--max-age", "1m"], "invalid --max-age \"1m\""),
        (vec!["--min-age", "soon"], "--min-age"),
        (vec!["--pin", "[unclosed"], "invalid --pin \"[unclosed\""),
    ] {
        let out = swarmkeeper(&[&["gc", "plan", "--snapshot", &snap][..], &args].concat());
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn policy_comes_from_the_environment_too() {
    let out = Command::new(env!("CARGO_BIN_EXE_swarmkeeper"))
        .env("SWARMKEEPER_HIGH_THRESHOLD", "101")
        .args([
            "gc",
            "plan",
            "--snapshot",
            &fixture("contract-snapshot.json"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid --high-threshold \"101\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_unreachable_engine_is_exit_3_and_named() {
    for args in [
        vec!["disk"],
        vec!["gc", "plan"],
        vec!["gc", "run"],
        vec!["gc", "snapshot"],
    ] {
        let out = swarmkeeper(&args);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("unix:///nonexistent/swarmkeeper-test.sock"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn agent_setup_problems_are_usage_errors() {
    let out = swarmkeeper(&["agent", "--listen", "not-an-address"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--listen"), "{}", stderr(&out));

    let out = swarmkeeper(&[
        "agent",
        "--listen",
        "127.0.0.1:0",
        "--state-dir",
        "/proc/swarmkeeper-no",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/proc/swarmkeeper-no"),
        "{}",
        stderr(&out)
    );

    let out = swarmkeeper(&["agent", "--listen", "127.0.0.1:0", "--interval", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--interval"), "{}", stderr(&out));

    let out = swarmkeeper(&["agent", "--metrics-token-file", "/nonexistent/token"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--metrics-token-file /nonexistent/token"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn empty_settings_count_as_unset() {
    let out = Command::new(env!("CARGO_BIN_EXE_swarmkeeper"))
        .env("SWARMKEEPER_PRUNE_STANDALONE_CONTAINERS", "")
        .env("SWARMKEEPER_FS_PATH", "")
        .env("SWARMKEEPER_HIGH_THRESHOLD", "")
        .args([
            "gc",
            "plan",
            "--snapshot",
            &fixture("contract-snapshot.json"),
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["high_threshold_percent"], 85);
}

#[test]
fn healthcheck_fails_when_no_agent_answers() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = swarmkeeper(&["healthcheck", "--listen", &format!("127.0.0.1:{port}")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("does not answer"), "{}", stderr(&out));
}
