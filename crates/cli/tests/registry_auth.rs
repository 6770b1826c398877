//! Private images end to end on the host's single-node swarm: a password-protected
//! `docker-registry` on loopback, `docker login` into a `DOCKER_CONFIG` of the test's own, and
//! `swarmkeeper deploy` / `outdated` finding the credentials there as the docker CLI does.
//! Bad input (wrong credentials, a tag the registry lacks, a registry that is down) ends with
//! exit 2 or 3 and nothing created. The registry parts are the registry crate's test support.

#[path = "../../registry/tests/common/mod.rs"]
mod registry_support;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use registry_support::{DockerCli, Registry};
use support::{docker, json, tempdir};

const HOST: &str = "unix:///var/run/docker.sock";
const USER: &str = "ci";
const PASSWORD: &str = "s3cret-registry-pw";

struct Stacks {
    names: Vec<String>,
    dir: PathBuf,
}

impl Drop for Stacks {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = Command::new("docker").args(["stack", "rm", name]).output();
        }
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

fn swarmkeeper(config: &Path, state: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_swarmkeeper"))
        .env("DOCKER_HOST", HOST)
        .env("DOCKER_CONFIG", config)
        .env("SWARMKEEPER_STATE_DIR", state)
        .args(args)
        .output()
        .unwrap();
    let all = text(&out);
    assert!(!all.contains(PASSWORD), "a credential was printed: {all}");
    out
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stack_file(dir: &Path, name: &str, image: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yml"));
    std::fs::write(
        &path,
        format!(
            "services:\n  app:\n    image: {image}\n    command: [\"/bin/busybox\", \"sleep\", \"3600\"]\n    stop_grace_period: 1s\n"
        ),
    )
    .unwrap();
    path
}

#[test]
fn private_images_deploy_with_the_docker_cli_credentials_and_only_with_them() {
    let (Some(registry), Some(cli)) = (Registry::htpasswd(USER, PASSWORD), DockerCli::new()) else {
        return;
    };
    cli.login(&registry.addr, USER, PASSWORD);
    let repo = format!("{}/{}", registry.addr, registry_support::repository("cli"));
    let v1 = cli.push(&format!("{repo}:1"), "v1");
    let id = std::process::id() % 100_000;
    let mut stacks = Stacks {
        names: Vec::new(),
        dir: tempdir("registry-auth"),
    };
    let config = cli.config_dir.path().to_path_buf();
    let state = stacks.dir.join("state");
    let deploy = |stack: &str, file: &Path, extra: &[&str], config: &Path| {
        let mut args = vec!["deploy", "--progress", "plain", "--timeout", "60s", "-c"];
        args.push(file.to_str().unwrap());
        args.extend_from_slice(extra);
        args.push(stack);
        swarmkeeper(config, &state, &args)
    };
    let file = stack_file(&stacks.dir, "app", &format!("{repo}:1"));

    // The control first, while the engine has no copy of the image: without credentials the
    // node cannot pull it, the task is rejected and the deploy rolls back.
    let control = format!("skra{id}c");
    stacks.names.push(control.clone());
    let out = deploy(&control, &file, &["--no-registry-auth"], &config);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("No such image"), "{}", text(&out));

    // With the credentials docker login stored, the same file deploys and runs v1, pinned.
    let good = format!("skra{id}g");
    stacks.names.push(good.clone());
    let out = deploy(&good, &file, &[], &config);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        docker(
            HOST,
            &[
                "service",
                "inspect",
                &format!("{good}_app"),
                "--format",
                "{{.Spec.TaskTemplate.ContainerSpec.Image}}"
            ]
        ),
        format!("{repo}:1@{v1}")
    );

    // outdated: current now (exit 0), outdated once the tag moves (exit 1).
    let outdated = |config: &Path| swarmkeeper(config, &state, &["outdated", &good, "--json"]);
    let out = outdated(&config);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(json(&out)["services"][0]["status"], "current");
    let v2 = cli.push(&format!("{repo}:1"), "v2");
    let out = outdated(&config);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let row = &json(&out)["services"][0];
    assert_eq!(row["status"], "outdated", "{}", text(&out));
    assert_eq!(row["running_digest"], v1.as_str());
    assert_eq!(row["registry_digest"], v2.as_str());

    // Wrong credentials: outdated and deploy say so and exit 2; the deploy creates nothing.
    let wrong = tempdir("registry-auth-wrong");
    std::fs::write(
        wrong.join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"username":"{USER}","password":"not-the-password"}}}}}}"#,
            registry.addr
        ),
    )
    .unwrap();
    let out = outdated(&wrong);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("HTTP 401"), "{}", text(&out));
    let refused = format!("skra{id}w");
    stacks.names.push(refused.clone());
    let out = deploy(&refused, &file, &[], &wrong);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("refused the credentials"),
        "{}",
        text(&out)
    );
    // A tag the registry does not have: exit 2, nothing created either.
    let missing = stack_file(&stacks.dir, "missing", &format!("{repo}:no-such-tag"));
    let out = deploy(&refused, &missing, &[], &config);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("does not have it"), "{}", text(&out));
    for kind in ["service", "network"] {
        let left = docker(
            HOST,
            &[
                kind,
                "ls",
                "-q",
                "--filter",
                &format!("label=com.docker.stack.namespace={refused}"),
            ],
        );
        assert!(left.is_empty(), "a refused deploy left a {kind}: {left}");
    }
    std::fs::remove_dir_all(&wrong).ok();

    // The registry down: the check cannot be made, exit 3.
    drop(registry);
    let out = outdated(&config);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("cannot be reached"), "{}", text(&out));
}
