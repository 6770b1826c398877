//! Helpers for tests against real Docker engines: throwaway small-disk engines from
//! `lab/small-engine.sh`, images built `FROM scratch` with busybox and random bytes, and the
//! `swarmkeeper` binary itself.

#![allow(dead_code)]

pub mod deploy;
pub mod server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A Docker daemon of its own whose data root is a tmpfs: a node with a small disk. Stopped and
/// removed when dropped.
pub struct Lab {
    pub name: String,
    pub host: String,
}

impl Lab {
    pub fn up(purpose: &str, size: &str) -> Lab {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        // Lab names end up in network namespace and cgroup names: short and unique per test.
        let name = format!(
            "{purpose}{}x{}",
            std::process::id() % 100_000,
            COUNT.fetch_add(1, Ordering::SeqCst)
        );
        let out = Command::new("bash")
            .arg(repo_root().join("lab/small-engine.sh"))
            .args(["up", &name, size])
            .output()
            .expect("run lab/small-engine.sh");
        assert!(
            out.status.success(),
            "lab up failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let host = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .expect("lab up prints its socket")
            .trim()
            .to_string();
        Lab { name, host }
    }

    pub fn docker(&self, args: &[&str]) -> String {
        docker(&self.host, args)
    }

    pub fn swarmkeeper(&self, args: &[&str]) -> Output {
        swarmkeeper(&self.host, args)
    }

    /// Builds `tag` from scratch: busybox plus `mib` MiB of random bytes, so that no two images
    /// share their data layer. Returns the image id.
    pub fn build(&self, tag: &str, mib: usize, labels: &[&str]) -> String {
        build(&self.host, tag, None, mib, labels)
    }

    /// Builds `tag` on top of `base`, adding `mib` MiB of its own.
    pub fn build_on(&self, base: &str, tag: &str, mib: usize) -> String {
        build(&self.host, tag, Some(base), mib, &[])
    }

    pub fn image_ids(&self) -> Vec<String> {
        self.docker(&["images", "-q", "--no-trunc"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    pub fn has_image(&self, id: &str) -> bool {
        self.image_ids().iter().any(|i| i == id)
    }

    /// Usage percent of the lab's data root, with the kubelet's arithmetic, as swarmkeeper
    /// measures it.
    pub fn usage_percent(&self) -> u64 {
        let out = self.swarmkeeper(&["disk", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        json(&out)["usage_percent"].as_u64().unwrap()
    }
}

impl Lab {
    /// Stops the daemon and throws its disk away; `up` with the same name brings a fresh one
    /// back on the same socket.
    pub fn down(&self) {
        let out = Command::new("bash")
            .arg(repo_root().join("lab/small-engine.sh"))
            .args(["down", &self.name])
            .output()
            .expect("run lab/small-engine.sh");
        assert!(
            out.status.success(),
            "lab down: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn restart(&self, size: &str) {
        let out = Command::new("bash")
            .arg(repo_root().join("lab/small-engine.sh"))
            .args(["up", &self.name, size])
            .output()
            .expect("run lab/small-engine.sh");
        assert!(
            out.status.success(),
            "lab up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A running `swarmkeeper agent`, stopped with SIGTERM when dropped.
pub struct Agent {
    pub child: std::process::Child,
    pub port: u16,
}

impl Agent {
    pub fn start(host: &str, args: &[&str]) -> Agent {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_swarmkeeper"))
            .env("DOCKER_HOST", host)
            .env("SWARMKEEPER_LOG", "info")
            .arg("agent")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("start swarmkeeper agent");
        let agent = Agent { child, port };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while agent.get("/healthz").is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "the agent did not start serving"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        agent
    }

    /// An agent at its defaults but for its state directory, reporting to the server on
    /// 127.0.0.1:`server_port` with the secret in the file `secret`.
    pub fn reporting(host: &str, state: &Path, server_port: u16, secret: &Path) -> Agent {
        Agent::start(
            host,
            &[
                "--state-dir",
                state.to_str().unwrap(),
                "--server",
                &format!("http://127.0.0.1:{server_port}"),
                "--report-secret-file",
                secret.to_str().unwrap(),
            ],
        )
    }

    /// GET a path from the agent's HTTP endpoint; `None` when nothing answers.
    pub fn get(&self, path: &str) -> Option<String> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        Some(response)
    }

    /// Sends SIGTERM and waits; returns the exit code.
    pub fn stop(mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        std::mem::forget(self);
        status.code()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of a metric line `NAME VALUE` (or `NAME{labels} VALUE`) in a metrics text.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.split(' ').next() == Some(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo_root().join("lab/small-engine.sh"))
            .args(["down", &self.name])
            .output();
    }
}

/// Removes a test's service, its image and its state directory when dropped, whether the
/// test passed or failed.
pub struct ServiceCleanup {
    pub host: String,
    pub service: String,
    pub image: String,
    pub dir: PathBuf,
}

impl Drop for ServiceCleanup {
    fn drop(&mut self) {
        for args in [
            vec!["service", "rm", self.service.as_str()],
            vec!["image", "rm", "-f", self.image.as_str()],
        ] {
            let _ = Command::new("docker")
                .env("DOCKER_HOST", &self.host)
                .args(args)
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The host engine's side of an alert test named `name`: a service name `skalert-NAME-PID`
/// and a busybox image `skalert-NAME:PID` (built), removed with the state directory when the
/// test ends; a `swarmkeeper server` sending alerts to a webhook receiver on this machine; the
/// report secret file its agent needs.
pub struct AlertSetup {
    pub host: String,
    pub service: String,
    pub image: String,
    pub dir: PathBuf,
    pub secret: PathBuf,
    pub server: server::Server,
    /// The receiver's URL the server sends to (`SWARMKEEPER_ALERT_WEBHOOK`).
    pub webhook: String,
    pub messages: std::sync::mpsc::Receiver<(std::time::SystemTime, Value)>,
    /// Bind it for the whole test (`cleanup: _cleanup`): dropping it removes everything.
    pub cleanup: ServiceCleanup,
}

/// The next message from `rule` about `subject` the receiver got within `within` (the host's
/// swarm is shared: other services may alert too), with when it arrived.
pub fn next_alert(
    messages: &std::sync::mpsc::Receiver<(std::time::SystemTime, Value)>,
    rule: &str,
    subject: &str,
    within: std::time::Duration,
) -> Option<(std::time::SystemTime, Value)> {
    let deadline = std::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let (at, body) = messages.recv_timeout(left).ok()?;
        if body["rule"] == rule && body["subject"] == subject {
            return Some((at, body));
        }
    }
}

/// The ongoing alert from `rule` about `subject` as the server's `GET /api/alerts` lists it.
pub fn ongoing_alert(
    server: &server::Server,
    token: &str,
    rule: &str,
    subject: &str,
) -> Option<Value> {
    let (status, body) = server.get("/api/alerts", token);
    assert_eq!(status, 200, "{body}");
    let view: Value = serde_json::from_str(&body).unwrap();
    view["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["rule"] == rule && a["subject"] == subject)
        .cloned()
}

impl AlertSetup {
    pub fn start(name: &str) -> AlertSetup {
        let host = std::env::var("DOCKER_HOST").unwrap_or("unix:///var/run/docker.sock".into());
        let id = std::process::id();
        let service = format!("skalert-{name}-{id}");
        let image = format!("skalert-{name}:{id}");
        let dir = tempdir(&format!("alert-{name}"));
        let cleanup = ServiceCleanup {
            host: host.clone(),
            service: service.clone(),
            image: image.clone(),
            dir: dir.clone(),
        };
        build(&host, &image, None, 0, &[]);
        let (port, messages) = webhook_receiver();
        let secret = dir.join("report-secret");
        std::fs::write(&secret, format!("alert-{name}-report-secret\n")).unwrap();
        let webhook = format!("http://127.0.0.1:{port}/hook");
        let server = AlertSetup::server(&host, &dir, &secret, &webhook, &[]);
        AlertSetup {
            host,
            service,
            image,
            dir,
            secret,
            server,
            webhook,
            messages,
            cleanup,
        }
    }

    /// A `swarmkeeper server` on a setup's engine, state directory (`dir/server`), report
    /// secret and receiver, with `extra` variables: what `start` starts, and a test that
    /// restarts the server starts again.
    pub fn server(
        host: &str,
        dir: &Path,
        secret: &Path,
        webhook: &str,
        extra: &[(&str, &str)],
    ) -> server::Server {
        let mut env = vec![
            ("DOCKER_HOST", host),
            ("SWARMKEEPER_REPORT_SECRET_FILE", secret.to_str().unwrap()),
            ("SWARMKEEPER_ALERT_WEBHOOK", webhook),
        ];
        env.extend_from_slice(extra);
        server::Server::start_with(&dir.join("server"), &env)
    }

    /// Restarts the setup's server: `stop` ends the running one (`Server::stop`, SIGTERM and
    /// a wait, as `docker service update --force` does it; `drop`, SIGKILL: a crash), then
    /// after `down` it starts again on the same engine, state directory, report secret and
    /// receiver, with `extra` variables.
    pub fn restart_server(
        &mut self,
        stop: impl FnOnce(server::Server),
        down: std::time::Duration,
        extra: &[(&str, &str)],
    ) {
        // Nothing listens on port 0: the placeholder is never called.
        let running = std::mem::replace(&mut self.server, server::Server::remote("127.0.0.1", 0));
        stop(running);
        std::thread::sleep(down);
        self.server = AlertSetup::server(&self.host, &self.dir, &self.secret, &self.webhook, extra);
    }

    /// Creates the test's service (detached): one task of its busybox image limited to
    /// `memory_limit` (docker's `--limit-memory`), running `script` with `sh -c`.
    pub fn create_service(&self, memory_limit: &str, script: &str) {
        docker(
            &self.host,
            &[
                "service",
                "create",
                "--detach",
                "--name",
                &self.service,
                "--limit-memory",
                memory_limit,
                &self.image,
                "/bin/busybox",
                "sh",
                "-c",
                script,
            ],
        );
    }

    /// Creates the test's service (detached) with a placement constraint no node meets: its
    /// task stays pending, so it never converges.
    pub fn create_unplaceable_service(&self) {
        docker(
            &self.host,
            &[
                "service",
                "create",
                "--detach",
                "--name",
                &self.service,
                "--constraint",
                "node.labels.swarmkeeper-test-no-such-label==1",
                &self.image,
                "/bin/busybox",
                "sleep",
                "3600",
            ],
        );
    }

    /// Changes the alert rules with `rules` (the body of `PUT /api/alerts/rules`), as the
    /// holder of `token`; panics unless the server answers 200.
    pub fn set_rules(&self, token: &str, rules: &str) {
        let (status, _, body) = self.server.call(
            "PUT /api/alerts/rules",
            &[
                format!("Authorization: Bearer {token}"),
                "Content-Type: application/json".into(),
            ],
            rules,
        );
        assert_eq!(status, 200, "{body}");
    }

    /// A `swarmkeeper agent` on the host engine reporting to this server, at its defaults for
    /// what alerts read (cgroup stats every 10 s, a report every 30 s) with `extra` flags
    /// after them, and a GC policy that cannot delete anything the test did not create: the
    /// host engine is shared, its disk is often past the default 85 %, and an agent at the
    /// default policy would collect other tests' unused images and finished task containers.
    /// Space GC starts only on a full disk (100 %) and a finished task container goes only
    /// after a day; no image is older than max-age (off). The OOM and memory paths do not
    /// depend on the GC policy; the GC defaults are tested on throwaway engines
    /// (`gc_engine.rs`, `agent_engine.rs`).
    pub fn agent(&self, extra: &[&str]) -> Agent {
        let state = self.dir.join("agent");
        let server = format!("http://127.0.0.1:{}", self.server.port());
        let mut args = vec![
            "--state-dir",
            state.to_str().unwrap(),
            "--server",
            &server,
            "--report-secret-file",
            self.secret.to_str().unwrap(),
            "--high-threshold",
            "100",
            "--low-threshold",
            "99",
            "--pull-headroom",
            "0",
            "--container-min-age",
            "24h",
        ];
        args.extend_from_slice(extra);
        Agent::start(&self.host, &args)
    }
}

pub fn docker(host: &str, args: &[&str]) -> String {
    let out = Command::new("docker")
        .env("DOCKER_HOST", host)
        .args(args)
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn swarmkeeper(host: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_swarmkeeper"))
        .env("DOCKER_HOST", host)
        .env_remove("SWARMKEEPER_STATE_DIR")
        .args(args)
        .output()
        .expect("run swarmkeeper")
}

/// A command's exit code, stdout and stderr, for an assertion's message.
pub fn output_text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Builds `tag` on the engine at `host`: `FROM base`, or `FROM scratch` with busybox, plus
/// `mib` MiB of random bytes (none for 0) and `labels`. Returns the image id.
pub fn build(host: &str, tag: &str, base: Option<&str>, mib: usize, labels: &[&str]) -> String {
    let dir = tempdir(&format!("build-{}", tag.replace(['/', ':'], "-")));
    let mut dockerfile = match base {
        Some(base) => format!("FROM {base}\n"),
        None => {
            std::fs::copy("/bin/busybox", dir.join("busybox"))
                .expect("busybox-static is installed");
            "FROM scratch\nCOPY busybox /bin/busybox\n".to_string()
        }
    };
    if mib > 0 {
        std::fs::write(dir.join("blob"), random_bytes(mib << 20)).unwrap();
        dockerfile.push_str(&format!(
            "COPY blob /blob-{}\n",
            tag.replace(['/', ':'], "-")
        ));
    }
    for label in labels {
        dockerfile.push_str(&format!("LABEL {label}\n"));
    }
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    let out = Command::new("docker")
        .env("DOCKER_HOST", host)
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", "-t", tag])
        .arg(&dir)
        .output()
        .expect("run docker build");
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        out.status.success(),
        "build {tag}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Bytes that no compression or deduplication can shrink, different for every call.
fn random_bytes(len: usize) -> Vec<u8> {
    static SEED: AtomicUsize = AtomicUsize::new(0);
    let mut x = (std::process::id() as u64) << 32
        | SEED.fetch_add(1, Ordering::SeqCst) as u64
        | std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn tempdir(purpose: &str) -> PathBuf {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "swarmkeeper-test-{}-{}-{purpose}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// --- Swarm labs (lab/lab.sh): several daemons in one swarm, a registry --------------------

/// True when the tests run as root. Tests that need a Swarm lab skip (and say why) otherwise.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A Swarm of its own on this machine (`lab/lab.sh`): a manager and workers, each a daemon in
/// its own namespaces, and a registry they all pull from. Brought down when dropped, even when
/// the test fails.
pub struct SwarmLab {
    pub name: String,
    pub env: std::collections::BTreeMap<String, String>,
}

impl SwarmLab {
    /// `lab/lab.sh up --name PREFIX<pid> ARGS…`. Labs of earlier runs with the same prefix
    /// whose process is gone (a test run that was killed) are brought down first.
    pub fn up(prefix: &str, args: &[&str]) -> SwarmLab {
        reap_stale_labs(prefix);
        let name = format!("{prefix}{}", std::process::id());
        let start = std::time::Instant::now();
        let out = lab_sh(&[&["up", "--name", &name][..], args].concat());
        let lab = SwarmLab {
            name,
            env: parse_env(&String::from_utf8_lossy(&out.stdout)),
        };
        assert!(
            out.status.success(),
            "lab up failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("lab {} up in {:.1?}", lab.name, start.elapsed());
        lab
    }

    /// The seed incident's swarm: a manager and two workers, worker1 on a 256 MiB disk, the
    /// manager and worker2 on 1 GiB disks of their own (so that their agents do not measure,
    /// and collect on, the host's disk).
    pub fn up_small_worker(prefix: &str) -> SwarmLab {
        SwarmLab::up(
            prefix,
            &[
                "--workers",
                "2",
                "--worker-disk",
                "256m",
                "--disk",
                "manager=1g",
                "--disk",
                "worker2=1g",
            ],
        )
    }

    pub fn var(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("lab/lab.sh env has no {key}: {:?}", self.env))
    }

    fn node_var(&self, node: &str, what: &str) -> &str {
        self.var(&format!("LAB_{}_{what}", node.to_uppercase()))
    }

    /// `ADDR:PORT` of the lab's registry, as every daemon of the lab reaches it.
    pub fn registry(&self) -> &str {
        self.var("LAB_REGISTRY")
    }

    /// `unix://…` of a node's daemon (for `DOCKER_HOST`).
    pub fn host(&self, node: &str) -> &str {
        self.node_var(node, "HOST")
    }

    pub fn addr(&self, node: &str) -> &str {
        self.node_var(node, "ADDR")
    }

    pub fn hostname(&self, node: &str) -> &str {
        self.node_var(node, "HOSTNAME")
    }

    /// The node's data root as seen from the host (its daemon sees it as /var/lib/docker).
    pub fn data(&self, node: &str) -> PathBuf {
        PathBuf::from(self.node_var(node, "DATA"))
    }

    pub fn docker(&self, node: &str, args: &[&str]) -> String {
        docker(self.host(node), args)
    }

    /// The docker CLI against a node, with its output whatever the exit code.
    pub fn docker_output(&self, node: &str, args: &[&str]) -> Output {
        Command::new("docker")
            .env("DOCKER_HOST", self.host(node))
            .args(args)
            .output()
            .expect("run docker")
    }

    /// `lab/lab.sh CMD --name NAME ARGS…`, asserting success.
    pub fn lab(&self, cmd: &str, args: &[&str]) -> String {
        let out = lab_sh(&[&[cmd, "--name", &self.name][..], args].concat());
        assert!(
            out.status.success(),
            "lab/lab.sh {cmd} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Runs a command inside a node's namespaces (mount, UTS, network): there
    /// /var/run/docker.sock is the node's engine and /var/lib/docker its data root.
    pub fn exec(&self, node: &str, cmd: &[&str]) -> Output {
        Command::new("bash")
            .arg(repo_root().join("lab/lab.sh"))
            .args(["exec", "--name", &self.name, node])
            .args(cmd)
            .env_remove("DOCKER_HOST")
            .output()
            .expect("run lab/lab.sh exec")
    }

    /// Builds `REGISTRY/repo:tag` on the manager (busybox and `mib` MiB of random bytes, a
    /// layer of its own), pushes it and removes it from the manager. Returns
    /// `REGISTRY/repo@sha256:…`.
    pub fn push_image(&self, repo_tag: &str, mib: usize) -> String {
        let name = format!("{}/{repo_tag}", self.registry());
        build(self.host("manager"), &name, None, mib, &[]);
        let out = Command::new("timeout")
            .args(["120", "docker", "push", "-q", &name])
            .env("DOCKER_HOST", self.host("manager"))
            .output()
            .expect("run docker push");
        assert!(
            out.status.success(),
            "push {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let digests = self.docker(
            "manager",
            &[
                "image",
                "inspect",
                "-f",
                "{{range .RepoDigests}}{{println .}}{{end}}",
                &name,
            ],
        );
        let repo = name.rsplit_once(':').unwrap().0;
        let reference = digests
            .lines()
            .find(|d| d.starts_with(&format!("{repo}@")))
            .unwrap_or_else(|| panic!("no digest for {name}: {digests}"))
            .to_string();
        self.docker("manager", &["image", "rm", "-f", &name]);
        reference
    }

    /// The swarmkeeper image, built by `packaging/build-image.sh` (static release binary,
    /// `FROM scratch`) on the manager and pushed to the lab's registry. Returns its reference
    /// with digest. `SWARMKEEPER_STATIC_BINARY=PATH` uses that static binary instead of
    /// building one (`build-image.sh --binary`), for a local run whose agent code is unchanged.
    pub fn push_agent_image(&self) -> String {
        let tag = format!("{}/swarmkeeper:test", self.registry());
        let start = std::time::Instant::now();
        let mut build = Command::new("bash");
        build
            .arg(repo_root().join("packaging/build-image.sh"))
            .args(["--push", &tag])
            .env("DOCKER_HOST", self.host("manager"));
        without_test_cargo_env(&mut build);
        // A static binary built already (`packaging/build-image.sh --binary-only`) saves the
        // release build when a lab test runs alone.
        if let Some(binary) = std::env::var_os("SWARMKEEPER_STATIC_BINARY") {
            build.arg("--binary").arg(binary);
        }
        let out = build.output().expect("run packaging/build-image.sh");
        assert!(
            out.status.success(),
            "packaging/build-image.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        eprintln!("agent image built and pushed in {:.1?}", start.elapsed());
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .expect("build-image.sh prints the image")
            .trim()
            .to_string()
    }

    /// `docker stack deploy -c deploy/swarmkeeper.yml swarmkeeper` on the manager, with
    /// `SWARMKEEPER_IMAGE=image` and the given variables in its environment (the file takes
    /// every agent option from there).
    pub fn deploy_agent(&self, image: &str, env: &[(&str, &str)]) {
        // The stack's external secrets: the one its agents report to its server with, and the
        // key the server seals alert-channel and registry credentials with.
        for (name, value) in [
            ("swarmkeeper_report_secret", "lab-report-secret"),
            (
                "swarmkeeper_secret_key",
                "6c61622d7365616c696e672d6b65792d6f662d33322d62797465732d2d2d2d21",
            ),
        ] {
            let mut secret = Command::new("docker")
                .env("DOCKER_HOST", self.host("manager"))
                .args(["secret", "create", name, "-"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("run docker secret create");
            {
                use std::io::Write;
                let mut stdin = secret.stdin.take().expect("piped stdin");
                let _ = stdin.write_all(value.as_bytes());
            }
            // An existing secret from an earlier deploy in this lab is fine.
            let _ = secret.wait();
        }
        let mut cmd = Command::new("docker");
        cmd.env("DOCKER_HOST", self.host("manager"))
            .env("SWARMKEEPER_IMAGE", image)
            // The workers pull the image with the deployer's credentials when the lab's
            // registry wants a password (`--registry-auth`); nothing is sent otherwise.
            .args(["stack", "deploy", "--with-registry-auth", "-c"])
            .arg(repo_root().join("deploy/swarmkeeper.yml"))
            .arg("swarmkeeper");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run docker stack deploy");
        assert!(
            out.status.success(),
            "docker stack deploy: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The metrics of the agent on `node` (published on port 9465 of the node's address).
    pub fn metrics(&self, node: &str) -> Option<String> {
        http_get(self.addr(node), 9465, "/metrics")
    }

    /// Waits until the agent answers /metrics on every node of the lab.
    pub fn wait_agents(&self, limit: std::time::Duration) {
        let start = std::time::Instant::now();
        for node in self.nodes() {
            while self.metrics(&node).is_none() {
                assert!(
                    start.elapsed() < limit,
                    "the agent on {node} does not answer after {limit:?}: {}",
                    self.docker(
                        "manager",
                        &["service", "ps", "--no-trunc", "swarmkeeper_agent"]
                    )
                );
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        }
    }

    pub fn nodes(&self) -> Vec<String> {
        self.var("LAB_NODES")
            .split(',')
            .map(str::to_string)
            .collect()
    }

    /// Ids of the images on a node.
    pub fn image_ids(&self, node: &str) -> Vec<String> {
        self.docker(node, &["images", "-aq", "--no-trunc"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// `docker login` to the lab's registry (through the manager's daemon) as `user`, keeping
    /// the credentials in `config` (a `DOCKER_CONFIG` folder) only.
    pub fn login(&self, config: &Path, user: &str, password: &str) {
        use std::io::Write;
        let mut child = Command::new("docker")
            .env("DOCKER_HOST", self.host("manager"))
            .env("DOCKER_CONFIG", config)
            .args(["login", self.registry(), "-u", user, "--password-stdin"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run docker login");
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(password.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "docker login: {}", output_text(&out));
    }

    /// Whether a node has an image (by id or reference).
    pub fn has_image(&self, node: &str, image: &str) -> bool {
        self.docker_output(node, &["image", "inspect", "-f", "{{.Id}}", image])
            .status
            .success()
    }
}

impl Drop for SwarmLab {
    fn drop(&mut self) {
        if std::env::var_os("SWARMKEEPER_KEEP_LAB").is_some() {
            eprintln!(
                "SWARMKEEPER_KEEP_LAB is set: lab {0} stays up (lab/lab.sh down --name {0})",
                self.name
            );
            return;
        }
        let start = std::time::Instant::now();
        let out = lab_sh(&["down", "--name", &self.name]);
        if out.status.success() {
            eprintln!("lab {} down in {:.1?}", self.name, start.elapsed());
        } else {
            eprintln!(
                "lab {} down failed: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// Removes from `cmd`'s environment what `cargo test` sets for this test process only (the
/// package's `CARGO_MANIFEST_*`, `CARGO_PKG_*`, `CARGO_CRATE_NAME`, `CARGO_BIN_EXE_*`, and
/// `OUT_DIR` since `crates/cli` has a build script, …), so that a `cargo build` it runs sees
/// the environment of a plain build. ring's build script declares `rerun-if-env-changed` on
/// `CARGO_MANIFEST_DIR`, `CARGO_PKG_*` and `OUT_DIR`: inherited, they
/// made the static release build (`packaging/build-image.sh`, built by CI just before the
/// tests) rebuild ring and everything above it in the first lab test, about two minutes.
fn without_test_cargo_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if key.starts_with("CARGO_MANIFEST_")
            || key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_BIN_")
            || matches!(
                key,
                "CARGO_CRATE_NAME" | "CARGO_PRIMARY_PACKAGE" | "CARGO_TARGET_TMPDIR" | "OUT_DIR"
            )
        {
            cmd.env_remove(key);
        }
    }
}

fn lab_sh(args: &[&str]) -> Output {
    Command::new("bash")
        .arg(repo_root().join("lab/lab.sh"))
        .args(args)
        .output()
        .expect("run lab/lab.sh")
}

/// `KEY=VALUE` lines, as `lab/lab.sh env` prints them.
fn parse_env(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Brings down labs named PREFIX<pid> whose test process no longer runs.
fn reap_stale_labs(prefix: &str) {
    let out = lab_sh(&["list"]);
    for name in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(pid) = name.strip_prefix(prefix) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("bringing down lab {name} of an earlier run (process {pid} is gone)");
            lab_sh(&["down", "--name", name]);
        }
    }
}

/// A plain HTTP/1.1 GET; the body, or `None` when nothing answers or the status is not 200.
pub fn http_get(addr: &str, port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    use std::time::Duration;
    let sock: std::net::SocketAddr = format!("{addr}:{port}").parse().ok()?;
    let mut stream = std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// Size and free space of the filesystem holding `path` (statvfs, through `stat -f`):
/// `(capacity_bytes, available_bytes)`.
pub fn fs_space(path: &Path) -> (u64, u64) {
    let out = Command::new("stat")
        .args(["-f", "-c", "%S %b %a"])
        .arg(path)
        .output()
        .expect("run stat -f");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<u64> = text
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(v.len(), 3, "stat -f {}: {text}", path.display());
    (v[0] * v[1], v[0] * v[2])
}

/// Usage percent with the kubelet's arithmetic: `100 - floor(available * 100 / capacity)`.
pub fn usage_percent(capacity: u64, available: u64) -> u64 {
    100 - available * 100 / capacity
}

/// The sum of every sample of a metric, whatever its labels (`NAME VALUE` and
/// `NAME{…} VALUE` lines).
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Follows a daemon's events (`docker events --format '{{json .}}'` with `filters`), in the
/// background, until dropped.
pub struct EventFollower {
    child: std::process::Child,
    events: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
}

impl EventFollower {
    pub fn start(host: &str, filters: &[&str]) -> EventFollower {
        let mut cmd = Command::new("docker");
        cmd.env("DOCKER_HOST", host)
            .args(["events", "--format", "{{json .}}"]);
        for f in filters {
            cmd.args(["--filter", f]);
        }
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run docker events");
        let stdout = child.stdout.take().unwrap();
        let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = events.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    sink.lock().unwrap().push(v);
                }
            }
        });
        // `docker events` only reports what happens after it is connected.
        std::thread::sleep(std::time::Duration::from_millis(300));
        EventFollower { child, events }
    }

    /// The events so far.
    pub fn events(&self) -> Vec<Value> {
        self.events.lock().unwrap().clone()
    }
}

impl Drop for EventFollower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Samples the space of a filesystem every `every`, in the background, until stopped.
pub struct DiskSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<(std::time::SystemTime, u64, u64)>>>,
}

impl DiskSampler {
    pub fn start(path: &Path, every: std::time::Duration) -> DiskSampler {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let path = path.to_path_buf();
        let thread = std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                let at = std::time::SystemTime::now();
                let (capacity, available) = fs_space(&path);
                samples.push((at, capacity, available));
                std::thread::sleep(every);
            }
            samples
        });
        DiskSampler {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops sampling; returns `(when, capacity_bytes, available_bytes)` samples in order.
    pub fn stop(mut self) -> Vec<(std::time::SystemTime, u64, u64)> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for DiskSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Polls `done` every 200 ms until it holds; fails naming `what` after `limit`.
pub fn wait_until(what: &str, limit: std::time::Duration, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not after {limit:?}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// `docker stack rm NAME`, and the stack's deploy history and lock in the swarm, which
/// `docker stack rm` leaves in place on purpose.
pub fn remove_stack(name: &str) {
    let _ = Command::new("docker").args(["stack", "rm", name]).output();
    let listed = Command::new("docker")
        .args(["config", "ls", "-q", "--filter"])
        .arg(format!("label=swarmkeeper.revision.stack={name}"))
        .output();
    let mut ids: Vec<String> = listed
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    ids.push(format!("swarmkeeper-lock-{name}"));
    let _ = Command::new("docker")
        .args(["config", "rm"])
        .args(&ids)
        .output();
}

/// A webhook receiver on a thread of its own: each JSON body posted to it, with the wall
/// clock time it arrived. Answers 200 and closes.
pub fn webhook_receiver() -> (
    u16,
    std::sync::mpsc::Receiver<(std::time::SystemTime, Value)>,
) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (port, webhook_receiver_on(listener))
}

/// A port of this machine nothing listens on (bound, then let go): connection refused.
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// [`webhook_receiver`] on a listener already bound (a receiver that comes up at an address
/// the server was already told).
pub fn webhook_receiver_on(
    listener: std::net::TcpListener,
) -> std::sync::mpsc::Receiver<(std::time::SystemTime, Value)> {
    use std::io::{BufRead, Read, Write};
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let at = std::time::SystemTime::now();
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            if let Ok(json) = serde_json::from_slice(&body) {
                let _ = tx.send((at, json));
            }
        }
    });
    rx
}
