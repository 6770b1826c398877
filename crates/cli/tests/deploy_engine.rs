//! `swarmkeeper deploy / diff / rollback / history / logs` against the real single-node swarm: each
//! test deploys its own uniquely named stack and removes it when it ends, passed or not.

mod support;

use std::process::Command;
use std::time::Duration;

use support::deploy::{images, room_for_one_replica, service, stack_file, text, Stack, HOST};
use support::docker;

#[test]
fn a_good_deploy_converges_and_a_repeat_touches_nothing() {
    let (ok, _) = images();
    let stack = Stack::new("good");
    let file = stack.file("s.yml", &stack_file(&[service("web", ok, 1, "")]));
    let out = stack.deploy_ok(&file, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("web: converged"), "{}", text(&out));
    assert!(stdout.contains("safe default"), "{}", text(&out));
    assert!(
        stdout.contains("digest could not be resolved"),
        "{}",
        text(&out)
    );
    assert_eq!(
        stack.spec("web", "{{.Spec.UpdateConfig.FailureAction}}"),
        "rollback"
    );
    assert_eq!(
        stack.spec("web", "{{.Spec.TaskTemplate.LogDriver.Name}}"),
        "local"
    );
    assert!(docker(HOST, &["stack", "ls"]).contains(&stack.name));

    // The image was built here and never pushed: `outdated` says so and asks no registry
    // (it used to ask Docker Hub, which cannot be reached here, and exit 3).
    let outdated = stack.run(&["outdated", &stack.name, "--json"]);
    assert_eq!(outdated.status.code(), Some(0), "{}", text(&outdated));
    let json: serde_json::Value = serde_json::from_slice(&outdated.stdout).unwrap();
    assert_eq!(
        json["services"][0]["status"],
        "local",
        "{}",
        text(&outdated)
    );
    assert_eq!(
        json["services"][0]["registry_digest"],
        serde_json::Value::Null
    );
    let table = stack.run(&["outdated", &stack.name]);
    assert_eq!(table.status.code(), Some(0), "{}", text(&table));
    assert!(
        String::from_utf8_lossy(&table.stdout).contains("local image, cannot check"),
        "{}",
        text(&table)
    );

    let version = stack.version("web");
    let again = stack.deploy(&file, &[]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(String::from_utf8_lossy(&again.stdout).contains("web: unchanged"));
    assert_eq!(
        stack.version("web"),
        version,
        "a no-op deploy must not touch the spec"
    );

    // Scaled by hand, then deployed again from a file that does not set replicas: the scale
    // stays, as with `docker stack deploy`, and the spec is not touched.
    docker(
        HOST,
        &["service", "scale", "-d", &format!("{}_web=2", stack.name)],
    );
    let version = stack.version("web");
    let scaled = stack.deploy(&file, &[]);
    assert!(scaled.status.success(), "{}", text(&scaled));
    assert!(
        String::from_utf8_lossy(&scaled.stdout).contains("web: unchanged"),
        "{}",
        text(&scaled)
    );
    assert_eq!(stack.spec("web", "{{.Spec.Mode.Replicated.Replicas}}"), "2");
    assert_eq!(stack.version("web"), version);

    // Logs: merged, each line led by its task's name.
    let logs = stack.run(&["logs", &stack.name, "--tail", "5"]);
    assert!(logs.status.success(), "{}", text(&logs));
    let stdout = String::from_utf8_lossy(&logs.stdout);
    assert!(
        stdout.contains(&format!("{}_web.1.", stack.name)) && stdout.contains("hello-from-task"),
        "{}",
        text(&logs)
    );
    let grep = stack.run(&[
        "logs",
        &format!("{}_web", stack.name),
        "--grep",
        "^nothing-like-this$",
    ]);
    assert!(grep.status.success());
    assert!(grep.stdout.is_empty(), "{}", text(&grep));

    let json = stack.history();
    let revisions = json["revisions"].as_array().unwrap();
    assert_eq!(revisions.len(), 3);
    assert_eq!(revisions[0]["outcome"], "unchanged");
    assert_eq!(revisions[2]["outcome"], "succeeded");
    assert_eq!(revisions[2]["by"], "tester");
    assert_eq!(
        revisions[2]["files"][0]["sha256"].as_str().unwrap().len(),
        64
    );
}

#[test]
fn an_image_that_exits_1_rolls_back_and_the_deploy_fails_with_the_reason() {
    let (ok, bad) = images();
    let stack = Stack::new("exit");
    stack.deploy_services("v1.yml", &[service("web", ok, 1, "")]);
    let v2 = stack.file("v2.yml", &stack_file(&[service("web", bad, 2, "")]));
    let out = stack.deploy(&v2, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("non-zero exit (1)"), "{}", text(&out));
    assert!(
        stdout.contains("boom-before-exit"),
        "the failing task's logs: {}",
        text(&out)
    );
    assert_eq!(
        stack.spec("web", "{{.Spec.TaskTemplate.ContainerSpec.Image}}"),
        *ok
    );
}

#[test]
fn a_failing_healthcheck_rolls_back() {
    let (ok, _) = images();
    let stack = Stack::new("health");
    let health = |healthy: bool| {
        let path = if healthy {
            "/bin/busybox"
        } else {
            "/nonexistent"
        };
        format!(
            "    healthcheck:
      test: [\"CMD\", \"/bin/busybox\", \"test\", \"-f\", \"{path}\"]
      interval: 1s
      timeout: 1s
      retries: 1
"
        )
    };
    let v1 = stack.file(
        "v1.yml",
        &stack_file(&[service("web", ok, 1, &health(true))]),
    );
    stack.deploy_ok(&v1, &[]);
    let v2 = stack.file(
        "v2.yml",
        &stack_file(&[service("web", ok, 2, &health(false))]),
    );
    let out = stack.deploy(&v2, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(stack.runs_rev("web", 1), "{}", text(&out));
}

#[test]
fn one_failing_service_rolls_the_whole_stack_back() {
    let (ok, bad) = images();
    let stack = Stack::new("pair");
    stack.deploy_services(
        "v1.yml",
        &[service("a", ok, 1, ""), service("b", ok, 1, "")],
    );
    let v2 = stack.file(
        "v2.yml",
        &stack_file(&[service("a", ok, 2, ""), service("b", bad, 2, "")]),
    );
    let out = stack.deploy(&v2, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("rolling back every service"),
        "{}",
        text(&out)
    );
    assert!(stdout.contains("rollback requested"), "{}", text(&out));
    for service in ["a", "b"] {
        assert!(
            stack.runs_rev(service, 1),
            "{service} was not put back: {}",
            text(&out)
        );
    }
    let history = stack.run(&["history", &stack.name]);
    assert!(
        String::from_utf8_lossy(&history.stdout).contains("rolled back"),
        "{}",
        text(&history)
    );
    // Each service as it ended (put back), not as it was when the rollback began, with the
    // image the revision tried and the one it replaced.
    let json = stack.history();
    let failed = &json["revisions"][0];
    assert_eq!(failed["outcome"], "rolled back", "{failed}");
    let services = failed["services"].as_array().unwrap();
    assert_eq!(services.len(), 2, "{failed}");
    for service in services {
        assert_eq!(service["outcome"], "rolled back", "{failed}");
    }
    let b = services
        .iter()
        .find(|s| s["service"] == format!("{}_b", stack.name))
        .unwrap();
    assert_eq!(b["image"], bad.as_str());
    assert_eq!(b["previous_image"], ok.as_str());
    let a = services
        .iter()
        .find(|s| s["service"] == format!("{}_a", stack.name))
        .unwrap();
    assert_eq!(a["image"], ok.as_str());
    assert!(a.get("previous_image").is_none(), "{a}");
}

/// `deploy … | head -2`: the reader goes away while the service is updated. The deploy still
/// follows it, rolls the stack back and records the revision's end, and exits with its own
/// code, not 141 with the revision left "running".
#[test]
fn a_deploy_whose_output_closes_early_still_rolls_back_and_records_its_end() {
    use std::io::BufRead;
    let (ok, bad) = images();
    let stack = Stack::new("pipe");
    stack.deploy_services("v1.yml", &[service("web", ok, 1, "")]);
    let v2 = stack.file("v2.yml", &stack_file(&[service("web", bad, 2, "")]));
    let mut child = stack
        .command()
        .args(["deploy", "--progress", "plain", "--by", "tester", "-c"])
        .arg(&v2)
        .arg(&stack.name)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "first line {first:?}; stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stack.runs_rev("web", 1), "web was not put back");
    let json = stack.history();
    assert_eq!(json["revisions"][0]["outcome"], "rolled back", "{json}");
}

/// A CI job in a container often has neither `USER` nor `LOGNAME`: the history names the
/// user as the system does (`root`), not `uid 0`.
#[test]
fn without_user_or_logname_the_history_names_the_system_s_user() {
    let (ok, _) = images();
    let stack = Stack::new("who");
    let file = stack.file("s.yml", &stack_file(&[service("web", ok, 1, "")]));
    let out = stack
        .command()
        .env_remove("USER")
        .env_remove("LOGNAME")
        .args(["deploy", "--progress", "plain", "-c"])
        .arg(&file)
        .arg(&stack.name)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let id = Command::new("id").arg("-un").output().unwrap();
    let name = String::from_utf8_lossy(&id.stdout).trim().to_string();
    assert!(!name.is_empty(), "`id -un` names no user");
    let json = stack.history();
    assert_eq!(json["revisions"][0]["by"], name.as_str(), "{json}");
}

/// A no-op deploy on top of v2, then `rollback` without `--to`: back to v1, not to the v2
/// that already runs.
#[test]
fn a_rollback_after_a_no_op_deploy_goes_back_to_what_ran_before() {
    let (ok, _) = images();
    let stack = Stack::new("noop");
    let v1 = stack.file("v1.yml", &stack_file(&[service("web", ok, 1, "")]));
    let v2 = stack.file("v2.yml", &stack_file(&[service("web", ok, 2, "")]));
    for file in [&v1, &v2, &v2] {
        let out = stack.deploy(file, &[]);
        assert!(out.status.success(), "{}", text(&out));
    }
    let out = stack.run(&["rollback", &stack.name, "--progress", "plain"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("re-applying revision 1"),
        "{}",
        text(&out)
    );
    assert!(stack.runs_rev("web", 1), "{}", text(&out));
}

#[test]
fn every_machine_shares_one_history_in_the_swarm_and_a_second_deploy_waits() {
    let (ok, _) = images();
    let stack = Stack::new("shared");
    let file = stack.file("s.yml", &stack_file(&[service("web", ok, 1, "")]));
    // Deployed first with the docker CLI; this laptop's older swarmkeeper kept a local history.
    let docker_deploy = Command::new("docker")
        .args(["stack", "deploy", "-c"])
        .arg(&file)
        .arg(&stack.name)
        .output()
        .unwrap();
    assert!(docker_deploy.status.success(), "{}", text(&docker_deploy));
    let laptop = stack.dir.join("laptop");
    let old = swarmkeeper_store::Store::open(&laptop).unwrap();
    let t0 = jiff::Timestamp::from_second(1_700_000_000).unwrap();
    let kind = swarmkeeper_store::DeployKind::Deploy;
    old.begin_deploy(&stack.name, "alice", None, &kind, &[], t0)
        .unwrap();
    old.finish_deploy(
        &stack.name,
        1,
        &swarmkeeper_store::DeployOutcome::Succeeded,
        "",
        &[],
        t0,
    )
    .unwrap();
    drop(old);
    let on = |dir: &std::path::Path, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_swarmkeeper"))
            .env("DOCKER_HOST", HOST)
            .env("SWARMKEEPER_STATE_DIR", dir)
            .args(args)
            .output()
            .unwrap()
    };
    let file = file.to_str().unwrap();
    let deploy = [
        "deploy",
        "--progress",
        "plain",
        "--no-safe-defaults",
        "-c",
        file,
    ];
    let laptop_deploy = on(
        &laptop,
        &[&deploy[..], &["--by", "alice", &stack.name]].concat(),
    );
    assert!(laptop_deploy.status.success(), "{}", text(&laptop_deploy));
    assert!(
        String::from_utf8_lossy(&laptop_deploy.stderr)
            .contains(&format!("imported 1 revision(s) of {}", stack.name)),
        "{}",
        text(&laptop_deploy)
    );
    // CI: another machine, no local history at all.
    let ci = stack.dir.join("ci");
    let ci_deploy = on(&ci, &[&deploy[..], &["--by", "ci", &stack.name]].concat());
    assert!(ci_deploy.status.success(), "{}", text(&ci_deploy));
    assert!(!ci.exists(), "nothing is written on the machine any more");

    // A third machine sees one history: the imported revision, then the laptop's, then CI's.
    let history = on(
        &stack.dir.join("third"),
        &["history", &stack.name, "--json"],
    );
    assert!(history.status.success(), "{}", text(&history));
    let json: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    let who: Vec<(u64, &str)> = json["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["revision"].as_u64().unwrap(), r["by"].as_str().unwrap()))
        .collect();
    assert_eq!(who, [(3, "ci"), (2, "alice"), (1, "alice")], "{json}");

    // Another deploy holds the stack: --no-wait fails at once saying who since when; without
    // it the deploy waits until the stack is free.
    let lock = format!("swarmkeeper-lock-{}", stack.name);
    let holder = stack.file("holder", "bob\n");
    docker(
        HOST,
        &[
            "config",
            "create",
            "--label",
            "swarmkeeper.lock.holder=bob",
            &lock,
            holder.to_str().unwrap(),
        ],
    );
    let busy = on(&ci, &[&deploy[..], &["--no-wait", &stack.name]].concat());
    assert_eq!(busy.status.code(), Some(1), "{}", text(&busy));
    assert!(
        String::from_utf8_lossy(&busy.stderr).contains(&format!(
            "stack {} is being deployed by bob since",
            stack.name
        )),
        "{}",
        text(&busy)
    );
    let waiting = Command::new(env!("CARGO_BIN_EXE_swarmkeeper"))
        .env("DOCKER_HOST", HOST)
        .env("SWARMKEEPER_STATE_DIR", &ci)
        .args(deploy)
        .arg(&stack.name)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    docker(HOST, &["config", "rm", &lock]);
    let waited = waiting.wait_with_output().unwrap();
    assert!(waited.status.success(), "{}", text(&waited));
    let stdout = String::from_utf8_lossy(&waited.stdout);
    assert!(
        stdout.contains(&format!("waiting for the deploy of {} by bob", stack.name))
            && stdout.contains("revision 4"),
        "{}",
        text(&waited)
    );
}

#[test]
fn a_reservation_no_node_has_is_refused_before_anything_changes() {
    let (ok, _) = images();
    let stack = Stack::new("toobig");
    stack.deploy_services("v1.yml", &[service("web", ok, 1, "")]);
    let reservation = "      resources:\n        reservations:\n          memory: 100000G\n";
    let v2 = stack.file("v2.yml", &stack_file(&[service("web", ok, 2, reservation)]));
    let out = stack.deploy(&v2, &["--timeout", "4s"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("memory reservation of 97.7 TiB"),
        "{}",
        text(&out)
    );
    assert_eq!(
        stack.spec("web", "{{json .Spec.TaskTemplate.Resources.Reservations}}"),
        "null",
        "nothing changed"
    );
}

#[test]
fn a_task_pending_for_room_times_out_and_rolls_back() {
    let (ok, _) = images();
    let stack = Stack::new("pending");
    stack.deploy_services("v1.yml", &[service("web", ok, 1, "")]);
    // The node has room for one replica: Swarm leaves the second pending, which the
    // preflight cannot know.
    let reservation = room_for_one_replica();
    let v2 = stack.file(
        "v2.yml",
        &stack_file(&[service("web", ok, 2, &reservation)]),
    );
    let out = stack.deploy(&v2, &["--timeout", "4s"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("timed out") && stdout.contains("no suitable node"),
        "{}",
        text(&out)
    );
    assert_eq!(
        stack.spec("web", "{{json .Spec.TaskTemplate.Resources.Reservations}}"),
        "null",
        "put back as before"
    );
}

#[test]
fn rollback_to_restores_an_older_revision() {
    let (ok, _) = images();
    let stack = Stack::new("revs");
    for rev in 1..=2 {
        // Revision 2 adds a service that revision 1 did not have.
        let mut services = vec![service("web", ok, rev, "")];
        if rev == 2 {
            services.push(service("extra", ok, rev, ""));
        }
        let file = stack.file(&format!("v{rev}.yml"), &stack_file(&services));
        stack.deploy_ok(&file, &[]);
    }
    let out = stack.run(&["rollback", &stack.name, "--to", "1", "--progress", "plain"]);
    assert!(out.status.success(), "{}", text(&out));
    // Revision 1 had no `extra`: the rollback removes it.
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("{}_extra: remove", stack.name)),
        "{}",
        text(&out)
    );
    assert!(stack.runs_rev("web", 1));
    let missing = stack.run(&["rollback", &stack.name, "--to", "99"]);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    let json = stack.history();
    assert_eq!(json["revisions"][0]["kind"], "rollback");
    assert_eq!(json["revisions"][0]["outcome"], "succeeded");
}

#[test]
fn unreadable_logs_are_explained_with_the_fix() {
    let (ok, _) = images();
    let stack = Stack::new("nolog");
    let logging = "    logging:\n      driver: none\n";
    let file = stack.file("s.yml", &stack_file(&[service("web", ok, 1, logging)]));
    // `driver: none` is an error-level lint finding: deployed only when told to.
    let out = stack.deploy(&file, &["--ignore-lint"]);
    assert!(out.status.success(), "{}", text(&out));
    let logs = stack.run(&["logs", &stack.name]);
    assert_eq!(logs.status.code(), Some(1), "{}", text(&logs));
    let stderr = String::from_utf8_lossy(&logs.stderr);
    assert!(
        stderr.contains("does not support reading") && stderr.contains("driver: local"),
        "{}",
        text(&logs)
    );
}

/// A file `lint` finds nothing in, deployed with the defaults, runs as a service the
/// dashboard's running-spec lint finds nothing in either (it once flagged SK021 on every such
/// service: the file has no `restart_policy`, which the file rule rightly leaves alone), and that the dashboard calls
/// converged by the same definition the deploy followed it by. Its secret comes from a file the
/// CLI read, not the deploy library.
#[test]
fn a_lint_clean_file_runs_as_a_lint_clean_service() {
    let (ok, _) = images();
    let stack = Stack::new("clean");
    let secret = stack.file("token.txt", "s3cret\n");
    let file = stack.file(
        "s.yml",
        &format!(
            "version: \"3.8\"
services:
  web:
    image: {ok}
    stop_grace_period: 1s
    healthcheck:
      test: [\"CMD\", \"/bin/busybox\", \"true\"]
      interval: 1s
      timeout: 1s
      retries: 2
    logging:
      driver: local
      options: {{max-size: 10m}}
    secrets: [token]
    deploy:
      update_config:
        parallelism: 1
        delay: 1s
        failure_action: rollback
        monitor: 5s
        order: start-first
secrets:
  token:
    file: {}
",
            secret.display()
        ),
    );
    let lint = stack.run(&["lint", "-c", file.to_str().unwrap(), "--format", "json"]);
    assert!(lint.status.success(), "{}", text(&lint));
    let findings: serde_json::Value = serde_json::from_slice(&lint.stdout).unwrap();
    assert_eq!(
        findings["findings"],
        serde_json::json!([]),
        "{}",
        text(&lint)
    );

    let out = stack.deploy_ok(&file, &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("web: converged"));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let engine = swarmkeeper_engine::Engine::connect(HOST).unwrap();
    let (service, tasks) = runtime.block_on(async {
        let service = engine
            .inspect_service(&format!("{}_web", stack.name))
            .await
            .unwrap();
        let tasks = engine.list_tasks(&service.id).await.unwrap();
        (service, tasks)
    });
    let findings = swarmkeeper_lint::lint_running(&service.view);
    assert!(findings.is_empty(), "{findings:#?}");
    let tasks: Vec<&swarmkeeper_engine::Task> = tasks.iter().collect();
    let observed = swarmkeeper_rollout::observe(&service, &tasks, &[], None);
    assert!(swarmkeeper_rollout::converged(&observed), "{observed:#?}");
    let secrets = docker(
        HOST,
        &[
            "secret",
            "ls",
            "-q",
            "--filter",
            &format!("name={}_token", stack.name),
        ],
    );
    assert_eq!(secrets.lines().count(), 1);
    drop(stack);
    for id in secrets.lines() {
        let _ = Command::new("docker").args(["secret", "rm", id]).output();
    }
}

#[test]
fn diff_and_dry_run_show_each_change_and_change_nothing() {
    let (ok, _) = images();
    let stack = Stack::new("show");
    let v1 = stack.file("v1.yml", &stack_file(&[service("web", ok, 1, "")]));

    let out = stack.diff(&v1, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("service {}_web: create", stack.name)),
        "{}",
        text(&out)
    );
    assert!(
        stdout.contains(&format!("network {}_default: create", stack.name)),
        "{}",
        text(&out)
    );
    let dry = stack.deploy(&v1, &["--dry-run"]);
    assert_eq!(dry.status.code(), Some(1), "{}", text(&dry));
    assert!(!stack.has_anything(), "a diff and a dry run create nothing");

    stack.deploy_ok(&v1, &[]);
    let same = stack.diff(&v1, &[]);
    assert_eq!(same.status.code(), Some(0), "{}", text(&same));
    assert!(String::from_utf8_lossy(&same.stdout)
        .contains(&format!("service {}_web: unchanged", stack.name)));

    let v2 = stack.file(
        "v2.yml",
        &stack_file(&[service("web", ok, 2, ""), service("worker", ok, 1, "")]),
    );
    let version = stack.spec("web", "{{.Version.Index}}");
    let out = stack.deploy(&v2, &["--dry-run"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("service {}_web: restart", stack.name))
            && stdout.contains("~ TaskTemplate.ContainerSpec.Env[0]: REV=1 → REV=2")
            && stdout.contains(&format!("service {}_worker: create", stack.name)),
        "{}",
        text(&out)
    );
    assert_eq!(stack.spec("web", "{{.Version.Index}}"), version);

    // A service the files no longer name: left alone, or removed with --prune.
    let only_worker = stack.file("w.yml", &stack_file(&[service("worker", ok, 1, "")]));
    let out = stack.diff(&only_worker, &["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["left_alone"][0], format!("{}_web", stack.name));
    let out = stack.diff(&only_worker, &["--json", "--prune"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let web = json["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == format!("{}_web", stack.name))
        .unwrap();
    assert_eq!(web["action"], "remove");

    let missing = stack.diff(&stack.dir.join("nope.yml"), &[]);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
}

/// A credential in the environment is never printed (issue 14): `diff`, its JSON and a
/// deploy's progress (which land in CI logs) name the variable that changed, not its values.
#[test]
fn a_credential_s_values_are_never_printed_by_diff_or_deploy() {
    let (ok, _) = images();
    let stack = Stack::new("cred");
    let with = |password: &str| {
        stack_file(&[service("web", ok, 1, "")]).replace(
            "      REV: \"1\"",
            &format!("      REV: \"1\"\n      DB_PASSWORD: {password}"),
        )
    };
    let v1 = stack.file("v1.yml", &with("s3cret"));
    stack.deploy_ok(&v1, &[]);
    let v2 = stack.file("v2.yml", &with("n3w"));
    let human = stack.diff(&v2, &[]);
    let json = stack.diff(&v2, &["--json"]);
    let deploy = stack.deploy(&v2, &[]);
    assert_eq!(deploy.status.code(), Some(0), "{}", text(&deploy));
    for out in [&human, &json, &deploy] {
        let all = text(out);
        assert!(all.contains("DB_PASSWORD=<changed>"), "{all}");
        assert!(!all.contains("s3cret") && !all.contains("n3w"), "{all}");
    }
    assert!(stack
        .spec("web", "{{json .Spec.TaskTemplate.ContainerSpec.Env}}")
        .contains("DB_PASSWORD=n3w"));
}

#[test]
fn a_placement_only_change_the_node_still_meets_converges_at_once_and_keeps_the_task() {
    // Tryout 11 finding 3: Swarm keeps a task whose node meets the new constraints
    // (swarmkit's `IsTaskDirty`); the deploy used to wait for a replacement that never came,
    // time out and roll back.
    let (ok, _) = images();
    let stack = Stack::new("place");
    stack.deploy_services("v1.yml", &[service("web", ok, 1, "")]);
    let running = || {
        docker(
            HOST,
            &[
                "service",
                "ps",
                "-q",
                "--filter",
                "desired-state=running",
                &format!("{}_web", stack.name),
            ],
        )
    };
    let before = running();
    assert_eq!(before.lines().count(), 1, "{before}");
    let v2 = stack.file(
        "v2.yml",
        &stack_file(&[service(
            "web",
            ok,
            1,
            "      placement:\n        constraints: [\"node.labels.nosuch != x\"]\n",
        )]),
    );
    let started = std::time::Instant::now();
    let out = stack.deploy(&v2, &["--timeout", "30s"]);
    let took = started.elapsed();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("web: converged"),
        "{}",
        text(&out)
    );
    assert!(
        took < Duration::from_secs(15),
        "took {took:?}: {}",
        text(&out)
    );
    assert_eq!(running(), before, "Swarm kept the task");
    assert_eq!(
        stack.spec("web", "{{json .Spec.TaskTemplate.Placement.Constraints}}"),
        r#"["node.labels.nosuch != x"]"#
    );
    eprintln!("constraint-only deploy converged in {took:?}");
}

#[test]
fn a_failed_preflight_changes_nothing_and_names_the_service() {
    let (ok, _) = images();
    let stack = Stack::new("pre");
    let port = 20_000 + std::process::id() % 20_000;
    let cases = [
        (
            "constraint",
            stack_file(&[service(
                "web",
                ok,
                1,
                "      placement:\n        constraints: [node.labels.skdeploy-nowhere == yes]\n",
            )]),
            "cannot be placed: no ready, active node matches the placement constraint",
        ),
        (
            "ports",
            format!(
                "{}    ports: [\"{port}:80\"]\n{}    ports: [\"{port}:81\"]\n",
                stack_file(&[service("web", ok, 1, "")]),
                service("api", ok, 1, "")
            ),
            "publishes port",
        ),
        (
            "secret",
            format!(
                "{}    secrets: [gone]\nsecrets:\n  gone:\n    external: true\n    name: skdeploy-no-such-secret\n",
                stack_file(&[service("web", ok, 1, "")])
            ),
            "secret skdeploy-no-such-secret is external but does not exist",
        ),
    ];
    for (what, yaml, expected) in cases {
        let file = stack.file(&format!("{what}.yml"), &yaml);
        for command in [&["deploy", "--progress", "plain"][..], &["diff"][..]] {
            let out = stack.with_file(command, &file, &[]);
            assert_eq!(out.status.code(), Some(2), "{what}: {}", text(&out));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains(expected), "{what}: {}", text(&out));
            assert!(stderr.contains(&stack.name), "{what}: {}", text(&out));
            assert!(!stack.has_anything(), "{what}: nothing was created");
        }
    }
}

#[test]
fn deploy_refuses_lint_errors_unless_told_to_ignore_them() {
    let (ok, _) = images();
    let stack = Stack::new("lint");
    let file = stack.file(
        "s.yml",
        &stack_file(&[service("web", ok, 1, "    logging:\n      driver: none\n")]),
    );
    let out = stack.deploy(&file, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--ignore-lint") && stderr.contains("s.yml:"),
        "{}",
        text(&out)
    );
    assert!(!stack.has_anything());
    let out = stack.deploy(&file, &["--ignore-lint"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_failure_shows_the_failing_task_s_own_logs_and_a_retry_not_the_last_failure() {
    let (ok, bad) = images();
    let stack = Stack::new("fail");
    stack.deploy_services("v1.yml", &[service("web", ok, 1, "")]);
    let v2 = stack.file("v2.yml", &stack_file(&[service("web", bad, 1, "")]));
    let out = stack.deploy(&v2, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("image {ok} → {bad}")),
        "old → new image: {}",
        text(&out)
    );
    let logs = stdout
        .split("last log lines:")
        .nth(1)
        .expect("a failure report with log lines");
    assert!(logs.contains("boom-before-exit"), "{}", text(&out));
    assert!(
        !logs.contains("hello-from-task"),
        "an old task's lines are not the failure's: {}",
        text(&out)
    );

    // The first attempt's failed tasks say nothing about the second.
    let first_attempt = docker(
        HOST,
        &[
            "service",
            "ps",
            "-q",
            "--no-trunc",
            "--filter",
            "desired-state=shutdown",
            &format!("{}_web", stack.name),
        ],
    );
    assert!(!first_attempt.is_empty());
    let out = stack.deploy(&v2, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let before_rollback = stdout.split("rolling back").next().unwrap();
    for id in first_attempt.lines() {
        assert!(
            !before_rollback.contains(&id[..10]),
            "task {id} failed in the first attempt: {}",
            text(&out)
        );
    }
}

#[test]
fn prune_removes_what_the_files_dropped_and_rollback_brings_it_back() {
    let (ok, bad) = images();
    let stack = Stack::new("prune");
    stack.deploy_services(
        "both.yml",
        &[service("web", ok, 1, ""), service("extra", ok, 1, "")],
    );
    let web_only = stack.file("web.yml", &stack_file(&[service("web", ok, 1, "")]));
    let kept = stack.deploy(&web_only, &[]);
    assert!(kept.status.success(), "{}", text(&kept));
    assert!(
        !stack.spec("extra", "{{.ID}}").is_empty(),
        "no --prune: kept"
    );

    // A prune that fails elsewhere is undone with the rest: `extra` comes back.
    let web_bad = stack.file("bad.yml", &stack_file(&[service("web", bad, 1, "")]));
    let out = stack.deploy(&web_bad, &["--prune"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("{}_extra: remove", stack.name)),
        "{}",
        text(&out)
    );
    assert!(
        !stack.spec("extra", "{{.ID}}").is_empty(),
        "recreated by the stack rollback"
    );

    let out = stack.deploy(&web_only, &["--prune"]);
    assert!(out.status.success(), "{}", text(&out));
    let gone = Command::new("docker")
        .args(["service", "inspect", &format!("{}_extra", stack.name)])
        .output()
        .unwrap();
    assert!(!gone.status.success(), "pruned");
    let json = stack.history();
    let newest = json["revisions"][0].to_string();
    assert!(
        newest.contains("removed"),
        "the prune is recorded: {newest}"
    );

    // Back to the first revision: `extra` is created again.
    let out = stack.run(&["rollback", &stack.name, "--to", "1", "--progress", "plain"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!stack.spec("extra", "{{.ID}}").is_empty(), "{}", text(&out));
}

#[test]
fn a_deploy_right_after_docker_stack_rm_waits_for_the_network() {
    let (ok, _) = images();
    let stack = Stack::new("rm");
    let file = stack.deploy_services("s.yml", &[service("web", ok, 1, "")]);
    let rm = Command::new("docker")
        .args(["stack", "rm", &stack.name])
        .output()
        .unwrap();
    assert!(rm.status.success());
    // The network is still listed while the task stops: the deploy waits for it to go
    // instead of creating the service on it ("network … not found").
    stack.deploy_ok(&file, &[]);
    assert!(!stack.spec("web", "{{.ID}}").is_empty());
}

#[test]
fn a_field_the_engine_drops_does_not_update_the_service_on_every_deploy() {
    let (ok, _) = images();
    let stack = Stack::new("oom");
    let file = stack.file(
        "s.yml",
        &stack_file(&[service("web", ok, 1, "")]).replace(
            "    stop_grace_period: 1s\n",
            "    stop_grace_period: 1s\n    oom_score_adj: 500\n",
        ),
    );
    let first = stack.deploy(&file, &[]);
    assert!(first.status.success(), "{}", text(&first));
    let api = docker(HOST, &["version", "--format", "{{.Server.APIVersion}}"]);
    let minor: u32 = api.trim().split('.').nth(1).unwrap().parse().unwrap();
    if minor < 46 {
        assert!(
            String::from_utf8_lossy(&first.stdout).contains("`oom_score_adj` is left out"),
            "{}",
            text(&first)
        );
    }
    let diff = stack.diff(&file, &[]);
    assert_eq!(diff.status.code(), Some(0), "{}", text(&diff));
    let again = stack.deploy(&file, &[]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("0 service(s) changed"),
        "{}",
        text(&again)
    );
}

#[test]
fn rollback_to_right_after_network_rm_waits_for_the_network_to_go_and_creates_it_again() {
    let (ok, _) = images();
    let stack = Stack::new("netrm");
    let name = &stack.name;
    let v1 = stack.file(
        "v1.yml",
        &format!(
            "{}networks:\n  front: {{}}\n",
            stack_file(&[service("web", ok, 1, "    networks: [front]\n")])
        ),
    );
    stack.deploy_ok(&v1, &[]);
    let net = format!("{name}_front");
    let first_net = stack.object_id("network", "front");
    stack.deploy_services("v2.yml", &[service("web", ok, 2, "")]);
    stack.remove_object("network", "front");
    // No waiting here: the engine still lists the network under its old id while revision
    // 1's task stops; the rollback must not take it as existing.
    let out = stack.run(&["rollback", name, "--to", "1", "--progress", "plain"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&format!("{net}: create network")), "{said}");
    let new_net = stack.object_id("network", "front");
    assert_ne!(new_net, first_net);
    let attached = stack.spec("web", "{{json .Spec.TaskTemplate.Networks}}");
    assert!(attached.contains(&new_net), "{attached}");
}

#[test]
fn rollback_to_creates_the_revision_s_gone_network_and_config_and_refuses_a_gone_secret() {
    let (ok, _) = images();
    let stack = Stack::new("objs");
    let name = &stack.name;
    std::fs::write(stack.dir.join("conf.txt"), "config-of-revision-1\n").unwrap();
    std::fs::write(stack.dir.join("db.txt"), "hunter2\n").unwrap();
    let uses = "    networks: [front]\n    configs: [conf]\n    secrets: [db]\n";
    let v1 = stack.file(
        "v1.yml",
        &format!(
            "{}networks:\n  front: {{}}\nconfigs:\n  conf:\n    file: ./conf.txt\n\
             secrets:\n  db:\n    file: ./db.txt\n",
            stack_file(&[service("web", ok, 1, uses)])
        ),
    );
    stack.deploy_ok(&v1, &[]);
    let first_net = stack.object_id("network", "front");
    // Revision 2 uses none of them, so they can be removed by hand.
    stack.deploy_services("v2.yml", &[service("web", ok, 2, "")]);
    stack.remove_object("network", "front");
    stack.remove_object("config", "conf");
    stack.remove_object("secret", "db");
    // The engine lists a removed overlay network until revision 1's task has stopped.
    let gone = || !stack.has_object("network", "front");
    support::wait_until(
        "the network is no longer listed",
        Duration::from_secs(60),
        gone,
    );

    // A secret's data is not in the swarm's history: refused, naming it, before any change.
    let before = stack.version("web");
    let refused = stack.run(&["rollback", name, "--to", "1", "--progress", "plain"]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    let said = text(&refused);
    assert!(
        said.contains(&format!("used secret {name}_db which no longer exists")),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "docker secret create --label com.docker.stack.namespace={name} {name}_db FILE"
        )),
        "{said}"
    );
    assert_eq!(stack.version("web"), before, "nothing changed");
    assert!(gone(), "the network was not created before the refusal");

    // Given the secret again, the rollback creates the network and the config as revision 1
    // had them, and the service names them by their new ids.
    let out = Command::new("docker")
        .args(["secret", "create", "--label"])
        .arg(format!("com.docker.stack.namespace={name}"))
        .arg(format!("{name}_db"))
        .arg(stack.dir.join("db.txt"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = stack.run(&["rollback", name, "--to", "1", "--progress", "plain"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!("{name}_front: create network")),
        "{said}"
    );
    assert!(
        said.contains(&format!("{name}_conf: create config")),
        "{said}"
    );
    let new_net = stack.object_id("network", "front");
    assert_ne!(new_net, first_net);
    assert_eq!(
        docker(
            HOST,
            &[
                "network",
                "inspect",
                "-f",
                "{{.Driver}} {{index .Labels \"com.docker.stack.namespace\"}}",
                &format!("{name}_front")
            ]
        ),
        format!("overlay {name}")
    );
    let attached = stack.spec("web", "{{json .Spec.TaskTemplate.Networks}}");
    assert!(attached.contains(&new_net), "{attached}");
    let data = docker(
        HOST,
        &[
            "config",
            "inspect",
            "-f",
            "{{json .Spec.Data}}",
            &format!("{name}_conf"),
        ],
    );
    assert_eq!(
        data.trim_matches('"'),
        swarmkeeper_deploy::base64(b"config-of-revision-1\n")
    );
    let config_id = stack.object_id("config", "conf");
    assert!(stack
        .spec("web", "{{json .Spec.TaskTemplate.ContainerSpec.Configs}}")
        .contains(&config_id));
    assert!(stack.runs_rev("web", 1));
}

/// Finding 26: a created service whose task exits 1 a second after it started is not
/// "converged": its task must run through the monitor window, and the deploy fails (exit 1)
/// naming the task, and removes the service it created (a failed deploy changes nothing).
#[test]
fn a_created_service_whose_task_exits_within_the_monitor_window_fails_the_deploy() {
    let (ok, _) = images();
    let stack = Stack::new("ex1");
    let file = stack.file(
        "s.yml",
        &format!(
            "version: \"3.8\"\nservices:\n  x:\n    image: {ok}\n    \
             entrypoint: [\"/bin/busybox\", \"sh\", \"-c\", \"sleep 1; exit 1\"]\n    \
             deploy:\n      restart_policy:\n        condition: none\n"
        ),
    );
    let out = stack.deploy(&file, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("x: converged"), "{}", text(&out));
    assert!(
        stdout.contains("exited 1") && stdout.contains("monitor window"),
        "{}",
        text(&out)
    );
    let label = format!("label=com.docker.stack.namespace={}", stack.name);
    assert!(
        docker(HOST, &["service", "ls", "-q", "--filter", &label]).is_empty(),
        "the created service is removed again: {}",
        text(&out)
    );
}
