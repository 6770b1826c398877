//! The real-engine deploy tests' setup: images built once per test binary, a uniquely named
//! stack with its own state directory (removed when dropped, passed or not), stack files of
//! short-lived busybox services, and what the tests read back (a service's spec, its
//! environment revision, an object's id, the history).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use super::{docker, tempdir};

pub const HOST: &str = "unix:///var/run/docker.sock";

/// Images shared by the tests of this file, built once: `ok` sleeps, `bad` exits 1 at once.
pub fn images() -> &'static (String, String) {
    static IMAGES: OnceLock<(String, String)> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let repo = format!("skdeploy{}", std::process::id());
        // A test binary cannot clean up after its last test; the next run removes what earlier
        // runs left, by label (an image still used by a stack being removed stays).
        let stale = docker(
            HOST,
            &["image", "ls", "-q", "--filter", "label=swarmkeeper.test=deploy-engine"],
        );
        for id in stale.lines() {
            let _ = Command::new("docker").args(["rmi", "-f", id]).output();
        }
        let build = |tag: &str, cmd: &str| {
            let dir = tempdir(&format!("img-{tag}"));
            std::fs::copy("/bin/busybox", dir.join("busybox")).unwrap();
            std::fs::write(
                dir.join("Dockerfile"),
                format!(
                    "FROM scratch\nCOPY busybox /bin/busybox\n\
                     LABEL swarmkeeper.test=deploy-engine\nCMD {cmd}\n"
                ),
            )
            .unwrap();
            let image = format!("{repo}:{tag}");
            let out = Command::new("docker")
                .env("DOCKER_BUILDKIT", "0")
                .args(["build", "-q", "-t", &image])
                .arg(&dir)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            std::fs::remove_dir_all(dir).ok();
            image
        };
        (
            build("ok", r#"["/bin/busybox", "sh", "-c", "echo hello-from-task; exec /bin/busybox sleep 3600"]"#),
            build("bad", r#"["/bin/busybox", "sh", "-c", "echo boom-before-exit; exit 1"]"#),
        )
    })
}

/// A stack of this test and its state directory, removed when dropped.
pub struct Stack {
    pub name: String,
    pub dir: PathBuf,
}

impl Stack {
    pub fn new(what: &str) -> Stack {
        images();
        Stack {
            name: format!("skd{}{what}", std::process::id() % 100_000),
            dir: tempdir(&format!("deploy-{what}")),
        }
    }

    pub fn file(&self, name: &str, yaml: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, yaml).unwrap();
        path
    }

    /// `swarmkeeper` against the test engine, with this stack's state directory.
    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_swarmkeeper"));
        command
            .env("DOCKER_HOST", HOST)
            .env("SWARMKEEPER_STATE_DIR", self.dir.join("state"));
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    pub fn deploy(&self, file: &Path, extra: &[&str]) -> Output {
        let mut args = vec!["deploy", "--progress", "plain", "--by", "tester", "-c"];
        args.push(file.to_str().unwrap());
        args.extend_from_slice(extra);
        args.push(&self.name);
        self.run(&args)
    }

    /// `{{json .Spec...}}` of a service of this stack.
    pub fn spec(&self, service: &str, format: &str) -> String {
        docker(
            HOST,
            &[
                "service",
                "inspect",
                &format!("{}_{service}", self.name),
                "--format",
                format,
            ],
        )
    }

    pub fn version(&self, service: &str) -> String {
        self.spec(service, "{{.Version.Index}}")
    }

    /// `COMMAND… -c FILE EXTRA… STACK`.
    pub fn with_file(&self, command: &[&str], file: &Path, extra: &[&str]) -> Output {
        let mut args = command.to_vec();
        args.extend(["-c", file.to_str().unwrap()]);
        args.extend_from_slice(extra);
        args.push(&self.name);
        self.run(&args)
    }

    pub fn diff(&self, file: &Path, extra: &[&str]) -> Output {
        self.with_file(&["diff"], file, extra)
    }

    /// Whether the engine has anything of this stack: services or networks.
    pub fn has_anything(&self) -> bool {
        let label = format!("label=com.docker.stack.namespace={}", self.name);
        !docker(HOST, &["service", "ls", "-q", "--filter", &label]).is_empty()
            || !docker(HOST, &["network", "ls", "-q", "--filter", &label]).is_empty()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        super::remove_stack(&self.name);
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

pub fn text(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A service file: `image`, an environment revision, short monitors and grace periods.
pub fn service(name: &str, image: &str, rev: u32, extra: &str) -> String {
    format!(
        "  {name}:
    image: {image}
    stop_grace_period: 1s
    environment:
      REV: \"{rev}\"
    deploy:
      update_config:
        monitor: 2s
      restart_policy:
        delay: 1s
{extra}"
    )
}

pub fn stack_file(services: &[String]) -> String {
    format!("version: \"3.8\"\nservices:\n{}", services.concat())
}

impl Stack {
    /// Writes `name` with `services` and deploys it; the deploy must succeed.
    pub fn deploy_services(&self, name: &str, services: &[String]) -> PathBuf {
        let file = self.file(name, &stack_file(services));
        self.deploy_ok(&file, &[]);
        file
    }

    /// Deploys `file`; the deploy must succeed. Returns its output.
    pub fn deploy_ok(&self, file: &Path, extra: &[&str]) -> Output {
        let out = self.deploy(file, extra);
        assert!(out.status.success(), "{}", text(&out));
        out
    }

    /// Whether `service` runs environment revision `rev` (see [`service`]).
    pub fn runs_rev(&self, service: &str, rev: u32) -> bool {
        self.spec(service, "{{json .Spec.TaskTemplate.ContainerSpec.Env}}")
            .contains(&format!("REV={rev}"))
    }

    /// The id of the stack's `kind` (`network`, `config`, …) named `STACK_object`.
    pub fn object_id(&self, kind: &str, object: &str) -> String {
        let format = if kind == "network" {
            "{{.Id}}"
        } else {
            "{{.ID}}"
        };
        docker(
            HOST,
            &[
                kind,
                "inspect",
                "-f",
                format,
                &format!("{}_{object}", self.name),
            ],
        )
    }

    /// Whether the engine lists the stack's `kind` named `STACK_object`.
    pub fn has_object(&self, kind: &str, object: &str) -> bool {
        Command::new("docker")
            .args([kind, "inspect", &format!("{}_{object}", self.name)])
            .output()
            .unwrap()
            .status
            .success()
    }

    /// `docker KIND rm STACK_object`, which must succeed.
    pub fn remove_object(&self, kind: &str, object: &str) {
        docker(HOST, &[kind, "rm", &format!("{}_{object}", self.name)]);
    }

    /// `swarmkeeper history STACK --json`.
    pub fn history(&self) -> serde_json::Value {
        let out = self.run(&["history", &self.name, "--json"]);
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

/// `deploy:` lines (after [`service`]'s) that the host engine's single node can never
/// converge on while the preflight lets them through: two replicas that each reserve 60 % of
/// the node's memory. The preflight weighs a reservation against a node's total, the scheduler
/// against what is free, so the second task stays pending ("no suitable node (insufficient
/// resources …)").
pub fn room_for_one_replica() -> String {
    let total: u64 = super::docker(HOST, &["info", "--format", "{{.MemTotal}}"])
        .trim()
        .parse()
        .expect("the engine's memory");
    format!(
        "      replicas: 2\n      resources:\n        reservations:\n          memory: {}M\n",
        total / 1024 / 1024 * 6 / 10
    )
}
