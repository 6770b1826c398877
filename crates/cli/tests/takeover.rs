//! Taking a stack over from `docker stack deploy` is a no-op: a rich file deployed with the
//! docker CLI, then the same file with `swarmkeeper deploy --no-safe-defaults`, leaves every
//! service at the version the docker CLI gave it. Any difference in how the two read the file
//! (an untagged image, a bind source's trailing `/`, the order of ports, capabilities, env
//! files, interpolation) would update the service.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{docker, tempdir};

const HOST: &str = "unix:///var/run/docker.sock";

/// Keys whose values the Engine keeps on API 1.41 (Debian's docker.io 20.10) and newer; keys
/// an older Engine drops (`oom_score_adj`, `healthcheck.start_interval`, `volume.subpath`)
/// would differ there for any client.
const STACK_FILE: &str = r#"version: "3.8"
x-logging: &logging
  driver: json-file
  options:
    max-size: 10m
    max-file: "3"
x-env: &env
  MODE: production
services:
  web:
    image: IMAGE
    command: /bin/busybox sh -c 'exec /bin/busybox httpd -f -p 8080'
    environment:
      <<: *env
      PASSWORD_HASH: ${SKTO_HASH:-$2y$05$Qm9vZ2xlRm9vQmFyQmF6Lu/K1Ab2Cd3Ef4Gh5Ij6Kl7Mn8Op9Qr0St}
      FROM_SHELL:
      EMPTY: ""
    env_file: ./web.env
    labels:
      com.example.tier: front
    ports:
      - "P3:8080"
      - "P1-P2:7000-7001"
      - "P4:5353/udp"
      - target: 9090
        published: P5
        mode: host
    volumes:
      - DIR/data/:/data:ro
      - ./conf:/etc/app
      - cache:/cache:nocopy
      - type: tmpfs
        target: /scratch
        tmpfs:
          size: 16777216
    tmpfs: [/run]
    networks:
      front:
      back:
        aliases: [web-internal]
    secrets:
      - source: token
        target: api-token
        mode: 0400
    configs: [settings]
    healthcheck:
      test: /bin/busybox true
      interval: 10s
      timeout: 2s
      retries: 3
      start_period: 5s
    logging: *logging
    cap_add: [net_admin]
    cap_drop: [ALL]
    ulimits:
      nofile: {soft: 1024, hard: 2048}
      nproc: 512
    init: true
    read_only: true
    stop_grace_period: 3s
    stop_signal: SIGTERM
    user: "1000:1000"
    working_dir: /tmp
    hostname: "{{.Service.Name}}-{{.Task.Slot}}"
    dns: [192.0.2.53]
    extra_hosts: {db.local: 10.0.0.5, ipv6.local: "::1"}
    sysctls: {net.core.somaxconn: 1024}
    deploy:
      replicas: ${SKTO_REPLICAS:-1}
      labels: [com.example.owner=takeover]
      placement:
        constraints: [node.role == manager]
        preferences: [{spread: node.id}]
        max_replicas_per_node: 2
      resources:
        limits: {cpus: "0.5", memory: 64M}
        reservations: {memory: 16M}
      restart_policy: {condition: on-failure, delay: 2s, max_attempts: 3, window: 30s}
      update_config: {parallelism: 1, delay: 1s, failure_action: rollback, monitor: 5s, order: start-first}
      rollback_config: {parallelism: 2, order: stop-first}
  worker:
    image: IMAGE
    entrypoint: ["/bin/busybox"]
    command: sleep 3600
    restart: on-failure:3
    networks: [back]
    deploy:
      mode: global
      endpoint_mode: dnsrr
networks:
  front:
  back:
    driver: overlay
    attachable: true
    labels: {purpose: takeover}
volumes:
  cache:
    labels: [purpose=takeover]
secrets:
  token:
    file: ./token.txt
configs:
  settings:
    file: ./settings.conf
"#;

/// The stack, its folder and its image; all removed when dropped.
struct Takeover {
    stack: String,
    image: String,
    dir: PathBuf,
}

impl Drop for Takeover {
    fn drop(&mut self) {
        support::remove_stack(&self.stack);
        // The stack's containers and networks go after its tasks; the image can go once no
        // container uses it.
        let label = format!("label=com.docker.stack.namespace={}", self.stack);
        for _ in 0..150 {
            let left = |args: &[&str]| {
                Command::new("docker")
                    .args(args)
                    .args(["-q", "--filter", &label])
                    .output()
                    .map(|o| !o.stdout.is_empty())
                    .unwrap_or(false)
            };
            if !left(&["ps", "-a"]) && !left(&["network", "ls"]) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let _ = Command::new("docker").args(["rmi", &self.image]).output();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

fn run(command: &mut Command) -> Output {
    let out = command.output().expect("run the command");
    assert!(
        out.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The variables both deploys see.
fn with_environment(command: &mut Command) -> &mut Command {
    command
        .env("DOCKER_HOST", HOST)
        .env("FROM_SHELL", "shell value")
        .env("FROM_FILE", "file value")
        .env_remove("SKTO_HASH")
        .env_remove("SKTO_REPLICAS")
        .env_remove("MISSING")
}

/// `(name, version)` of each service of `stack`, by name.
fn versions(stack: &str) -> Vec<(String, String)> {
    let mut versions: Vec<(String, String)> = docker(
        HOST,
        &[
            "service",
            "ls",
            "--filter",
            &format!("label=com.docker.stack.namespace={stack}"),
            "--format",
            "{{.Name}}",
        ],
    )
    .lines()
    .map(|name| {
        let version = docker(
            HOST,
            &["service", "inspect", name, "--format", "{{.Version.Index}}"],
        );
        (name.to_string(), version)
    })
    .collect();
    versions.sort();
    versions
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn a_stack_deployed_by_docker_is_taken_over_without_a_change() {
    let pid = std::process::id() % 100_000;
    let takeover = Takeover {
        stack: format!("sktakeover{pid}"),
        image: format!("sktakeover{pid}"),
        dir: tempdir("takeover"),
    };
    let dir = &takeover.dir;

    // An image tagged `latest` only, named in the file without a tag; busybox is its shell
    // too, for the healthcheck written as a string.
    std::fs::copy("/bin/busybox", dir.join("busybox")).unwrap();
    write(
        dir,
        "Dockerfile",
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY busybox /bin/sh\n",
    );
    run(Command::new("docker")
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", "-t", &format!("{}:latest", takeover.image)])
        .arg(dir));

    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::create_dir_all(dir.join("conf")).unwrap();
    write(dir, "token.txt", "s3cret");
    write(dir, "settings.conf", "level=debug\n");
    write(
        dir,
        "web.env",
        "LEVEL=info\nFROM_FILE\nMISSING\nEMPTY_IN_FILE=\n",
    );
    // Published ports of this test's own, away from other tests on the shared swarm.
    let base = 20_000 + pid % 20_000;
    let mut text = STACK_FILE
        .replace("IMAGE", &takeover.image)
        .replace("DIR", dir.to_str().unwrap());
    for (placeholder, offset) in [("P1", 0), ("P2", 1), ("P3", 2), ("P4", 3), ("P5", 4)] {
        text = text.replace(placeholder, &(base + offset).to_string());
    }
    write(dir, "stack.yml", &text);

    run(with_environment(&mut Command::new("docker"))
        .current_dir(dir)
        .args(["stack", "deploy", "--resolve-image", "never"])
        .args(["-c", "stack.yml", &takeover.stack]));
    let before = versions(&takeover.stack);
    assert_eq!(before.len(), 2, "{before:?}");

    // `diff` says so before: nothing would change.
    let diff = with_environment(&mut Command::new(env!("CARGO_BIN_EXE_swarmkeeper")))
        .current_dir(dir)
        .args(["diff", "--no-safe-defaults", "--no-resolve-image"])
        .args(["-c", "stack.yml", &takeover.stack])
        .output()
        .unwrap();
    assert_eq!(
        diff.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&diff.stdout),
        String::from_utf8_lossy(&diff.stderr)
    );
    let ours = run(
        with_environment(&mut Command::new(env!("CARGO_BIN_EXE_swarmkeeper")))
            .current_dir(dir)
            .args(["deploy", "--no-safe-defaults", "--no-resolve-image"])
            // The file keeps docker's own settings, start-first with a host port (an
            // error-level lint finding) included: taken over as it is.
            .args(["--ignore-lint", "--progress", "plain", "--timeout", "60s"])
            .args(["--state-dir", dir.join("state").to_str().unwrap()])
            .args(["-c", "stack.yml", &takeover.stack]),
    );
    let after = versions(&takeover.stack);
    assert_eq!(
        after,
        before,
        "swarmkeeper updated services the docker CLI had deployed from the same file:\n{}{}",
        String::from_utf8_lossy(&ours.stdout),
        String::from_utf8_lossy(&ours.stderr)
    );
}
