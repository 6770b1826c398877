//! A private image on a lab WORKER (`lab/lab.sh up --registry-auth USER:PASS`): the lab's
//! registry wants a password, the worker has no credentials of its own, and only the
//! `X-Registry-Auth` swarmkeeper sends with the service create lets it pull. The same deploy
//! with `--no-registry-auth` is the control: its task is rejected on the worker.
//!
//! Runs as root (CI does); skips otherwise.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use support::{is_root, tempdir, SwarmLab};

const USER: &str = "ci";
const PASSWORD: &str = "lab-registry-pw";

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `docker login` against the lab's registry, through the manager's daemon, into `config`.
fn login(lab: &SwarmLab, config: &Path) {
    let mut child = Command::new("docker")
        .env("DOCKER_HOST", lab.host("manager"))
        .env("DOCKER_CONFIG", config)
        .args(["login", lab.registry(), "-u", USER, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(PASSWORD.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "docker login: {}", text(&out));
}

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
    login(&lab, &config);
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
        assert!(!text(&out).contains(PASSWORD), "{}", text(&out));
        out
    };

    // The control: no credentials, the worker cannot pull, the task is rejected there.
    let out = deploy("control", &["--no-registry-auth"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("No such image"), "{}", text(&out));
    assert!(!lab.has_image("worker1", &pinned));

    // With the credentials docker login stored: the task runs on the worker, pinned.
    let out = deploy("private", &[]);
    assert!(out.status.success(), "{}", text(&out));
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
