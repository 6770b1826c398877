//! `swarmkeeper deploy --no-safe-defaults` must produce the service specs `docker stack deploy`
//! produces for the same file: the same file is deployed both ways on the real swarm, as two
//! stacks, and the stored specs are compared with the stack names taken out.

mod support;

use std::process::Command;

use serde_json::Value;
use support::{docker, tempdir};

const HOST: &str = "unix:///var/run/docker.sock";

const STACK_FILE: &str = r#"version: "3.8"
services:
  web:
    image: IMAGE
    command: ["/bin/busybox", "sh", "-c", "exec /bin/busybox sleep 3600"]
    environment:
      MODE: production
      EMPTY: ""
    labels:
      team: payments
    user: "1000:1000"
    working_dir: /tmp
    hostname: web-host
    stop_grace_period: 3s
    healthcheck:
      test: ["CMD", "/bin/busybox", "true"]
      interval: 5s
      timeout: 2s
      retries: 3
      start_period: 1s
    logging:
      driver: json-file
      options:
        max-size: 10m
        max-file: "3"
    networks: [backend]
    secrets:
      - source: token
        target: api-token
        mode: 0400
    configs:
      - source: settings
        target: /etc/settings.conf
    deploy:
      replicas: 2
      labels:
        tier: front
      placement:
        constraints: [node.role == manager]
        max_replicas_per_node: 2
      resources:
        limits: {cpus: "0.5", memory: 64M}
        reservations: {memory: 16M}
      restart_policy: {condition: on-failure, delay: 2s, max_attempts: 3, window: 30s}
      update_config: {parallelism: 1, delay: 1s, failure_action: rollback, monitor: 5s, order: start-first, max_failure_ratio: 0.1}
      rollback_config: {parallelism: 2, failure_action: pause, order: stop-first}
  worker:
    image: IMAGE
    entrypoint: /bin/busybox
    command: sleep 3600
    deploy:
      mode: global
      endpoint_mode: dnsrr
networks:
  backend:
    driver: overlay
    attachable: true
    labels: [purpose=tests]
secrets:
  token:
    file: ./token.txt
configs:
  settings:
    file: ./settings.conf
"#;

struct Stacks {
    names: [String; 2],
    dir: std::path::PathBuf,
}

impl Stacks {
    /// Two stacks named `ours` and `other` followed by a short pid (`deploy` deploys the
    /// first), and a temporary folder for `purpose`.
    fn new(ours: &str, other: &str, purpose: &str) -> Stacks {
        let pid = std::process::id() % 100_000;
        Stacks {
            names: [format!("{ours}{pid}"), format!("{other}{pid}")],
            dir: tempdir(purpose),
        }
    }

    /// Builds `image` from scratch with busybox in this test's folder; with `sleep`, its
    /// command keeps the task running.
    fn build_image(&self, image: &str, sleep: bool) {
        std::fs::copy("/bin/busybox", self.dir.join("busybox")).unwrap();
        let cmd = if sleep {
            "CMD [\"/bin/busybox\", \"sleep\", \"3600\"]\n"
        } else {
            ""
        };
        std::fs::write(
            self.dir.join("Dockerfile"),
            format!("FROM scratch\nCOPY busybox /bin/busybox\n{cmd}"),
        )
        .unwrap();
        let out = Command::new("docker")
            .env("DOCKER_BUILDKIT", "0")
            .args(["build", "-q", "-t", image])
            .arg(&self.dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `swarmkeeper deploy` of `file` as the first stack, with this test's state directory.
    fn deploy(&self, file: &std::path::Path, extra: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_swarmkeeper"))
            .env("DOCKER_HOST", HOST)
            .args(["deploy", "--progress", "plain", "--timeout", "60s"])
            .args(extra)
            .args(["--state-dir", self.dir.join("state").to_str().unwrap()])
            .args(["-c", file.to_str().unwrap(), &self.names[0]])
            .output()
            .unwrap()
    }
}

impl Drop for Stacks {
    fn drop(&mut self) {
        for name in &self.names {
            support::remove_stack(name);
        }
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// The stored spec with everything that names the stack replaced by `STACK`, and the IDs of
/// secrets, configs and networks (different objects by construction) left out.
fn normalised(spec: &Value, stack: &str) -> Value {
    match spec {
        Value::String(s) => Value::String(s.replace(stack, "STACK")),
        Value::Array(items) => Value::Array(items.iter().map(|v| normalised(v, stack)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "SecretID" | "ConfigID" | "Target"))
                .filter(|(k, v)| {
                    // The docker CLI sends an empty `Privileges`, which the engine stores as
                    // nulls and false; swarmkeeper leaves it out. Both mean "nothing set".
                    !(k.as_str() == "Privileges"
                        && v.as_object().is_some_and(|m| {
                            m.values().all(|v| v.is_null() || v == &Value::Bool(false))
                        }))
                })
                .map(|(k, v)| (k.replace(stack, "STACK"), normalised(v, stack)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn specs(stack: &str) -> Vec<(String, Value)> {
    let ids = docker(
        HOST,
        &[
            "service",
            "ls",
            "-q",
            "--filter",
            &format!("label=com.docker.stack.namespace={stack}"),
        ],
    );
    let mut specs: Vec<(String, Value)> = ids
        .lines()
        .map(|id| {
            let text = docker(
                HOST,
                &["service", "inspect", id, "--format", "{{json .Spec}}"],
            );
            let spec: Value = serde_json::from_str(&text).unwrap();
            let name = spec["Name"].as_str().unwrap().replace(stack, "STACK");
            (name, normalised(&spec, stack))
        })
        .collect();
    specs.sort_by(|a, b| a.0.cmp(&b.0));
    specs
}

#[test]
fn specs_equal_those_of_docker_stack_deploy() {
    let pid = std::process::id() % 100_000;
    // Ours first (`Stacks::deploy` deploys the first), then docker's.
    let stacks = Stacks::new("skcmps", "skcmpd", "compat");
    let dir = &stacks.dir;
    let image = format!("skcompat{pid}:1");
    stacks.build_image(&image, false);
    std::fs::write(dir.join("token.txt"), "s3cret").unwrap();
    std::fs::write(dir.join("settings.conf"), "level=debug\n").unwrap();
    let file = dir.join("stack.yml");
    std::fs::write(&file, STACK_FILE.replace("IMAGE", &image)).unwrap();
    let file = file.to_str().unwrap();

    let docker_deploy = Command::new("docker")
        .args([
            "stack",
            "deploy",
            "--resolve-image",
            "never",
            "-c",
            file,
            &stacks.names[1],
        ])
        .output()
        .unwrap();
    assert!(
        docker_deploy.status.success(),
        "{}",
        String::from_utf8_lossy(&docker_deploy.stderr)
    );
    let ours = stacks.deploy(
        std::path::Path::new(file),
        &["--no-safe-defaults", "--no-resolve-image"],
    );
    assert!(
        ours.status.success(),
        "{}{}",
        String::from_utf8_lossy(&ours.stdout),
        String::from_utf8_lossy(&ours.stderr)
    );

    let theirs = specs(&stacks.names[1]);
    let mine = specs(&stacks.names[0]);
    assert_eq!(theirs.len(), 2);
    for ((name, a), (_, b)) in theirs.iter().zip(&mine) {
        assert_eq!(
            a,
            b,
            "{name}: docker stack deploy (left) and swarmkeeper (right) differ:\n{}\n{}",
            serde_json::to_string_pretty(a).unwrap(),
            serde_json::to_string_pretty(b).unwrap()
        );
    }
    let _ = Command::new("docker").args(["rmi", &image]).output();
}

#[test]
fn a_changed_secret_file_is_refused_before_anything_changes() {
    let pid = std::process::id() % 100_000;
    let stacks = Stacks::new("sksec", "sksecunused", "secret-change");
    let dir = &stacks.dir;
    let image = format!("sksecret{pid}:1");
    stacks.build_image(&image, true);
    let file = dir.join("stack.yml");
    let write_stack = |rev: u32| {
        std::fs::write(
            &file,
            format!(
                "services:\n  app:\n    image: {image}\n    stop_grace_period: 1s\n    \
                 environment: {{REV: \"{rev}\"}}\n    secrets: [token]\n\
                 secrets:\n  token:\n    file: ./token.txt\n"
            ),
        )
        .unwrap();
    };
    let deploy = || stacks.deploy(&file, &["--no-resolve-image"]);
    std::fs::write(dir.join("token.txt"), "first").unwrap();
    write_stack(1);
    let first = deploy();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let service = format!("{}_app", stacks.names[0]);
    let version = docker(
        HOST,
        &[
            "service",
            "inspect",
            &service,
            "--format",
            "{{.Version.Index}}",
        ],
    );

    std::fs::write(dir.join("token.txt"), "second").unwrap();
    write_stack(2);
    let second = deploy();
    assert_eq!(second.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&format!(
            "secret {}_token exists with other content",
            stacks.names[0]
        )),
        "{stderr}"
    );
    let after = docker(
        HOST,
        &[
            "service",
            "inspect",
            &service,
            "--format",
            "{{.Version.Index}}",
        ],
    );
    assert_eq!(
        after, version,
        "the service was changed although the deploy was refused"
    );
    drop(stacks);
    let _ = Command::new("docker").args(["rmi", &image]).output();
}

/// A `docker-registry` (Debian's registry v2) on a loopback port, stopped when dropped.
struct Registry {
    child: std::process::Child,
    addr: String,
    dir: std::path::PathBuf,
}

impl Registry {
    fn start() -> Registry {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let dir = tempdir("registry");
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("docker-registry is installed (scripts/ensure-engine.sh)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the registry did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Registry { child, addr, dir }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

#[test]
fn images_are_pinned_to_the_registry_digest() {
    let registry = Registry::start();
    let stacks = Stacks::new("skpin", "skpinunused", "pin");
    let dir = &stacks.dir;
    let image = format!("{}/skpin:1", registry.addr);
    stacks.build_image(&image, true);
    docker(HOST, &["push", "-q", &image]);
    let pushed = docker(
        HOST,
        &[
            "image",
            "inspect",
            "--format",
            "{{index .RepoDigests 0}}",
            &image,
        ],
    );
    let digest = pushed.split_once('@').unwrap().1.to_string();

    let file = dir.join("stack.yml");
    std::fs::write(
        &file,
        format!("services:\n  app:\n    image: {image}\n    stop_grace_period: 1s\n"),
    )
    .unwrap();
    let out = stacks.deploy(&file, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deployed = docker(
        HOST,
        &[
            "service",
            "inspect",
            &format!("{}_app", stacks.names[0]),
            "--format",
            "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
        ],
    );
    assert_eq!(deployed, format!("{image}@{digest}"));
    drop(stacks);
    let _ = Command::new("docker").args(["rmi", &image]).output();
}
