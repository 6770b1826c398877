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
        serde_json::json!([{"id": "sha256:old", "reason": "space", "bytes": 450, "repo_tags": ["app:1"], "name": "app:1"}])
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
fn a_bad_alert_webhook_names_the_flag_but_never_the_url() {
    let out = swarmkeeper(&[
        "server",
        "--alert-webhook",
        "https://hooks.example.com/ok",
        "--alert-webhook",
        "ftp://user:hunter2@hooks.example.com/x",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("--alert-webhook (URL number 2)"), "{err}");
    assert!(err.contains("http:// or https://"), "{err}");
    assert!(
        !err.contains("hunter2"),
        "the URL's credentials leaked: {err}"
    );
}

#[test]
fn disk_pressure_settings_name_the_flag() {
    let out = swarmkeeper(&["server", "--disk-pressure-threshold", "150"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(
            "invalid --disk-pressure-threshold \"150\": must be a percentage from 0 to 100"
        ),
        "{}",
        stderr(&out)
    );
    let out = swarmkeeper(&["server", "--disk-pressure-threshold", "-1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--disk-pressure-threshold"),
        "{}",
        stderr(&out)
    );
    let out = swarmkeeper(&["server", "--disk-pressure-release", "5 minutes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--disk-pressure-release"),
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

/// A server serving HTTPS with its self-signed certificate, checked as the stack file's
/// healthcheck does (with the server's own variables): over TLS, trusting that certificate;
/// without them, the command says the server answered in TLS (it used to fail three times and
/// have Swarm roll the server back to plain HTTP).
#[test]
fn healthcheck_asks_a_server_on_tls_with_its_own_certificate() {
    let dir = std::env::temp_dir().join(format!("swarmkeeper-cli-{}-tls", std::process::id()));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let state_dir = dir.to_str().unwrap();
    let variables = [
        ("SWARMKEEPER_LISTEN", listen.as_str()),
        ("SWARMKEEPER_STATE_DIR", state_dir),
        ("SWARMKEEPER_TLS_SELF_SIGNED", "true"),
    ];
    let mut server = Command::new(env!("CARGO_BIN_EXE_swarmkeeper"))
        .arg("server")
        .envs(variables)
        .env("DOCKER_HOST", "unix:///nonexistent/swarmkeeper-test.sock")
        .env("SWARMKEEPER_ADMIN_PASSWORD", "a long enough admin password")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let healthcheck = |tls: &str| {
        Command::new(env!("CARGO_BIN_EXE_swarmkeeper"))
            .arg("healthcheck")
            .envs(variables)
            .env("SWARMKEEPER_TLS_SELF_SIGNED", tls)
            .output()
            .unwrap()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut over_tls = healthcheck("true");
    while over_tls.status.code() != Some(0) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
        over_tls = healthcheck("true");
    }
    // Empty, as `${SWARMKEEPER_TLS_SELF_SIGNED:-}` in the stack file leaves it: plain HTTP.
    let plain = healthcheck("");
    server.kill().unwrap();
    server.wait().unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(over_tls.status.code(), Some(0), "{}", stderr(&over_tls));
    assert!(String::from_utf8_lossy(&over_tls.stdout).starts_with("HTTP/1.1 200"));
    assert_eq!(plain.status.code(), Some(1), "{}", stderr(&plain));
    assert!(
        stderr(&plain).contains("answered in TLS"),
        "{}",
        stderr(&plain)
    );
}

fn plan_json(args: &[&str]) -> serde_json::Value {
    let out = swarmkeeper(&[&["gc", "plan", "--json"][..], args].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn plan_text(args: &[&str]) -> String {
    let out = swarmkeeper(&[&["gc", "plan"][..], args].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn deleted_names(plan: &serde_json::Value) -> Vec<&str> {
    plan["delete"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect()
}

/// Field case gc-shared-layers: blob1 <- blob2 <- blob3 (1 GiB each), none used, and other:1
/// used this morning. Deleting the three frees about 3 GiB, more than the 1.4 GiB needed, so
/// other:1 stays: with the images' layers (exact) and without them (the bound from sizes).
#[test]
fn images_built_on_each_other_free_their_shared_layers_together() {
    for (file, accounting) in [
        ("snapshot-with-layers.json", "layers"),
        ("snapshot.json", "sizes"),
    ] {
        let snap = fixture(&format!("field-cases/gc-shared-layers/{file}"));
        let plan = plan_json(&["--snapshot", &snap]);
        assert_eq!(plan["accounting"], accounting, "{file}");
        assert_eq!(plan["usage_percent"], 98);
        assert_eq!(plan["bytes_to_free"], 1_503_238_554u64, "{file}");
        assert_eq!(
            deleted_names(&plan),
            [
                "example.com/blobs/blob1:local",
                "example.com/blobs/blob2:local",
                "example.com/blobs/blob3:local"
            ],
            "{file}"
        );
        let bytes: Vec<u64> = plan["delete"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["bytes"].as_u64().unwrap())
            .collect();
        // The base layers go with the last image holding them.
        assert_eq!(bytes, [0, 0, 3_228_565_504], "{file}");
        assert_eq!(plan["planned_free_bytes"], 3_228_565_504u64);
        assert_eq!(plan["shortfall_bytes"], 0);
        let other = plan["keep"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == "example.com/other:1")
            .unwrap_or_else(|| panic!("{file}: other:1 is not kept: {plan}"));
        assert_eq!(other["reason"], "not-needed");
    }
    let text = plan_text(&[
        "--snapshot",
        &fixture("field-cases/gc-shared-layers/snapshot.json"),
    ]);
    assert!(text.contains("a lower bound"), "{text}");
}

/// Field case gc-pin-digest-only: Swarm pulled postgres by digest only; a pin on the
/// repository's glob keeps it like the tagged redis:7, and every output names images.
#[test]
fn pins_match_the_repository_of_digest_only_images() {
    let snap = fixture("field-cases/gc-pin-digest-only/snapshot.json");
    let args = [
        "--snapshot",
        snap.as_str(),
        "--pin",
        "registry.example.com/base/*",
    ];
    let plan = plan_json(&args);
    let showcase = "registry.example.com/demo-infra/showcase@sha256:3333333333333333333333333333333333333333333333333333333333333333";
    assert_eq!(deleted_names(&plan), [showcase]);
    let reason = |name: &str| {
        plan["keep"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == name)
            .map(|k| k["reason"].as_str().unwrap().to_string())
    };
    let postgres = "registry.example.com/base/postgres@sha256:1111111111111111111111111111111111111111111111111111111111111111";
    assert_eq!(reason(postgres).as_deref(), Some("pinned"));
    assert_eq!(
        reason("registry.example.com/base/redis:7").as_deref(),
        Some("pinned")
    );
    assert_eq!(
        reason("registry.example.com/infra/pause:3.9").as_deref(),
        Some("pinned")
    );

    let text = plan_text(&args);
    assert!(text.contains(showcase), "{text}");
    assert!(
        text.contains(&format!("pinned: {postgres}")) || text.contains(postgres),
        "{text}"
    );
    assert!(!text.contains("<none>"), "{text}");

    // Without the pin the digest-only image is a candidate like any other.
    let plan = plan_json(&["--snapshot", &snap]);
    assert!(deleted_names(&plan).contains(&postgres), "{plan}");
}

/// The seed incident at 84 %: under the 85 % threshold, but 41 MiB free is less than a pull of
/// the next 31 MiB version needs. The default policy collects the oldest version.
#[test]
fn the_default_policy_keeps_room_for_the_next_pull() {
    let snap = fixture("incident-84/snapshot.json");
    let plan = plan_json(&["--snapshot", &snap]);
    let mib = 1u64 << 20;
    assert_eq!(plan["usage_percent"], 84);
    assert_eq!(plan["space_trigger"], "pull-headroom");
    assert_eq!(plan["pull_headroom_bytes"], 62 * mib);
    assert_eq!(plan["available_bytes"], 41 * mib);
    assert_eq!(plan["headroom_bytes_to_free"], 21 * mib);
    assert_eq!(plan["accounting"], "layers");
    let oldest = format!("registry.local:5000/app@sha256:{:064x}", 101);
    assert_eq!(deleted_names(&plan), [oldest.as_str()]);
    assert_eq!(plan["delete"][0]["bytes"], 30 * mib);
    assert_eq!(plan["shortfall_bytes"], 0);

    let text = plan_text(&["--snapshot", &snap]);
    assert!(
        text.contains("free 41.0 MiB < headroom 62.0 MiB: collect 21.0 MiB"),
        "{text}"
    );

    // Off, or smaller than what is free: the kubelet's thresholds alone, nothing to do.
    for headroom in ["0", "40MiB"] {
        let plan = plan_json(&["--snapshot", &snap, "--pull-headroom", headroom]);
        assert!(plan["space_trigger"].is_null(), "{headroom}: {plan}");
        assert!(plan["delete"].as_array().unwrap().is_empty());
    }
    let plan = plan_json(&["--snapshot", &snap, "--pull-headroom", "100m"]);
    assert_eq!(plan["pull_headroom_bytes"], 100 * mib);
    assert_eq!(deleted_names(&plan).len(), 2, "{plan}");
}

#[test]
fn a_bad_pull_headroom_names_the_flag() {
    let snap = fixture("contract-snapshot.json");
    let out = swarmkeeper(&["gc", "plan", "--snapshot", &snap, "--pull-headroom", "lots"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--pull-headroom"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("expected auto, 0 (off)"),
        "{}",
        stderr(&out)
    );
}

/// Field case cli-closed-pipe: `swarmkeeper lint … | head -1` or `| grep -q` closes the pipe
/// while the command still writes. Every command must end quietly then (as a Unix tool killed
/// by SIGPIPE: status 141), never with a panic and status 101. The reading end is closed before
/// the command writes, many times over, so the race the field case saw is taken every time.
#[test]
fn a_closed_pipe_ends_every_command_quietly() {
    use std::process::Stdio;
    let lint_file = format!(
        "{}/../lint/tests/fixtures/incident-1-auto-deploy.yml",
        env!("CARGO_MANIFEST_DIR")
    );
    let snapshot = fixture("field-cases/gc-pin-digest-only/snapshot.json");
    let commands: Vec<Vec<&str>> = vec![
        vec!["lint", "-c", &lint_file],
        vec!["lint", "-c", &lint_file, "--format", "json"],
        vec!["lint", "-c", &lint_file, "--format", "sarif"],
        vec!["gc", "plan", "--snapshot", &snapshot],
        vec!["gc", "plan", "--snapshot", &snapshot, "--json"],
        vec!["gc", "--help"],
        vec!["--version"],
    ];
    let mut closed = 0;
    for round in 0..25 {
        for args in &commands {
            let mut child = Command::new(env!("CARGO_BIN_EXE_swarmkeeper"))
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            drop(child.stdout.take());
            let out = child.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                !err.contains("panicked") && out.status.code() != Some(101),
                "round {round}, {args:?}: {:?}\n{err}",
                out.status
            );
            // Lint exits 1 on its findings when the pipe happens to take them all.
            assert!(
                matches!(out.status.code(), Some(0 | 1 | 141)),
                "round {round}, {args:?}: {:?}\n{err}",
                out.status
            );
            if out.status.code() == Some(141) {
                assert!(err.is_empty(), "{args:?} said: {err}");
                closed += 1;
            }
        }
    }
    assert!(closed > 0, "no run met the closed pipe");
}

/// A policy error quotes the value as the user typed it, and a negative size is named as a
/// bad size of its flag, not taken for an unknown flag.
#[test]
fn policy_flag_errors_quote_the_value_as_given() {
    let snapshot = fixture("contract-snapshot.json");
    let plan = |extra: &[&str]| {
        let mut args = vec!["gc", "plan", "--snapshot", &snapshot];
        args.extend_from_slice(extra);
        swarmkeeper(&args)
    };
    let out = plan(&["--min-age", "5m", "--max-age", "5m"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(r#"invalid --max-age "5m":"#),
        "{}",
        stderr(&out)
    );
    let out = plan(&["--pull-headroom", "-1"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("'--pull-headroom <SIZE>'") && stderr(&out).contains(r#"not "-1""#),
        "{}",
        stderr(&out)
    );
}

/// A stack name Swarm would refuse, or an empty one (which as a filter selects every stack's
/// services: `diff --prune ''` planned to remove them all), is a usage error before any engine
/// is asked: exit 2 naming the argument, here with no engine at all.
#[test]
fn a_stack_name_swarm_refuses_is_a_usage_error_for_every_command() {
    let file = scratch_file("stack-name.yml", "services:\n  web:\n    image: busybox\n");
    let file = file.to_str().unwrap();
    for name in ["", "a.b", "Try_Bad!", "shop-"] {
        for args in [
            vec!["deploy", "-c", file, name],
            vec!["diff", "--prune", "-c", file, name],
            vec!["history", name],
            vec!["rollback", name, "--to", "1"],
            vec!["outdated", name],
        ] {
            let out = swarmkeeper(&args);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert!(
                err.contains("STACK") && err.contains(&format!("invalid stack name {name:?}")),
                "{args:?}: {err}"
            );
        }
    }
}

#[test]
fn tls_san_names_the_self_signed_certificate_s_hosts_only() {
    let out = swarmkeeper(&["server", "--tls-san", "dash.example"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(
            "invalid --tls-san \"dash.example\": it names hosts in the self-signed certificate; give --tls-self-signed too"
        ),
        "{}",
        stderr(&out)
    );
}

/// Tryout 11 finding 1: the stack file's self-signed certificate named only `localhost` and the
/// container's host name, so `curl --cacert` failed on the address operators use. It now names
/// every swarm node's address (the routing mesh answers on each) and what `--tls-san` adds.
#[test]
fn the_self_signed_certificate_names_the_swarm_s_nodes_and_tls_san() {
    let addr = Command::new("docker")
        .args(["node", "inspect", "self", "--format", "{{.Status.Addr}}"])
        .output()
        .unwrap();
    assert!(addr.status.success(), "{}", stderr(&addr));
    let addr = String::from_utf8(addr.stdout).unwrap().trim().to_owned();
    let dir = std::env::temp_dir().join(format!("swarmkeeper-cli-{}-san", std::process::id()));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_swarmkeeper"))
        .args(["server", "--tls-self-signed", "--tls-san", "dash.example, "])
        .env("SWARMKEEPER_LISTEN", format!("127.0.0.1:{port}"))
        .env("SWARMKEEPER_STATE_DIR", &dir)
        .env("SWARMKEEPER_ADMIN_PASSWORD", "a long enough admin password")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let names_file = dir.join("tls/self-signed.names");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !names_file.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    server.kill().unwrap();
    server.wait().unwrap();
    let names = std::fs::read_to_string(&names_file).unwrap_or_default();
    std::fs::remove_dir_all(&dir).ok();
    let names: Vec<&str> = names.lines().collect();
    assert!(names.contains(&"localhost"), "{names:?}");
    assert!(names.contains(&"dash.example"), "{names:?}");
    assert!(names.contains(&addr.as_str()), "{addr} not in {names:?}");
}
