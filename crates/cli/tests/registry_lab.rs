//! A private image on a lab WORKER (`lab/lab.sh up --registry-auth USER:PASS`): the lab's
//! registry wants a password, the worker has no credentials of its own, and only the
//! `X-Registry-Auth` swarmkeeper sends with the service create lets it pull. The same deploy
//! with `--no-registry-auth` is the control: its task is rejected on the worker.
//!
//! Runs as root (CI does); skips otherwise.

mod support;

use std::process::Command;

use support::{is_root, output_text, tempdir, SwarmLab};

const USER: &str = "ci";
const PASSWORD: &str = "lab-registry-pw";

#[test]
fn a_private_image_runs_on_a_worker_only_with_registry_auth() {
    if !is_root() {
        eprintln!("skipped: the Swarm lab (lab/lab.sh) needs root");
        return;
    }
    let lab = SwarmLab::up(
        "ri",
        &[
            "--workers",
            "1",
            "--registry-auth",
            &format!("{USER}:{PASSWORD}"),
        ],
    );
    let dir = tempdir("registry-lab");
    let config = dir.join("docker");
    std::fs::create_dir_all(&config).unwrap();
    lab.login(&config, USER, PASSWORD);
    // This process's docker CLI (the lab's push helper) and swarmkeeper read it from here.
    std::env::set_var("DOCKER_CONFIG", &config);
    let pinned = lab.push_image("private/app:1", 1);
    assert!(
        !lab.has_image("worker1", &pinned),
        "the worker must not have the image yet"
    );
    let image = format!("{}/private/app:1", lab.registry());
    let file = dir.join("app.yml");
    std::fs::write(
        &file,
        format!(
            "services:\n  app:\n    image: {image}\n    command: [\"/bin/busybox\", \"sleep\", \"3600\"]\n    stop_grace_period: 1s\n    deploy:\n      placement:\n        constraints: [\"node.labels.lab.node==worker1\"]\n"
        ),
    )
    .unwrap();
    let deploy = |stack: &str, extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_swarmkeeper"))
            .env("DOCKER_HOST", lab.host("manager"))
            .env("SWARMKEEPER_STATE_DIR", dir.join("state"))
            .args(["deploy", "--progress", "plain", "--timeout", "60s", "-c"])
            .arg(&file)
            .args(extra)
            .arg(stack)
            .output()
            .unwrap();
        assert!(
            !output_text(&out).contains(PASSWORD),
            "{}",
            output_text(&out)
        );
        out
    };

    // The control: no credentials, the worker cannot pull, the task is rejected there.
    let out = deploy("control", &["--no-registry-auth"]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(
        output_text(&out).contains("No such image"),
        "{}",
        output_text(&out)
    );
    assert!(!lab.has_image("worker1", &pinned));

    // With the credentials docker login stored: the task runs on the worker, pinned.
    let out = deploy("private", &[]);
    assert!(out.status.success(), "{}", output_text(&out));
    let tasks = lab.docker(
        "manager",
        &[
            "service",
            "ps",
            "private_app",
            "--filter",
            "desired-state=running",
            "--format",
            "{{.Node}} {{.CurrentState}} {{.Image}}",
        ],
    );
    assert!(
        tasks.starts_with(&format!("{} Running", lab.hostname("worker1"))),
        "{tasks}"
    );
    assert!(lab.has_image("worker1", &pinned), "{tasks}");
    std::fs::remove_dir_all(&dir).ok();
}
