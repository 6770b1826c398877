//! Real parts for the registry tests: Debian's `docker-registry` on loopback with htpasswd or
//! token auth, a token issuer (`fixtures/token_issuer.py`), images pushed with the docker CLI
//! under a `DOCKER_CONFIG` of the test's own, and moto's AWS emulator.
//!
//! A tool that is missing makes a test skip with a message, except under `CI`, where
//! `scripts/ensure-engine.sh` installs them all and a missing one is a failure.

#![allow(dead_code)] // each test binary uses part of this

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether `program` runs (`program --version` or `-h`, whatever it exits with). Missing:
/// skip (a message), or fail under CI.
pub fn have(program: &str, why: &str) -> bool {
    let found = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        if std::env::var_os("CI").is_some() {
            panic!("{program} is missing ({why}); scripts/ensure-engine.sh installs it");
        }
        eprintln!("skipped: {program} is missing ({why}); run scripts/ensure-engine.sh");
    }
    found
}

/// Whether Python can import `module`, with the same skip/fail rule as [`have`].
pub fn have_python_module(module: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var_os("CI").is_some() {
            panic!("python3 cannot import {module}; scripts/ensure-engine.sh installs it");
        }
        eprintln!("skipped: python3 cannot import {module}; run scripts/ensure-engine.sh");
    }
    ok
}

/// A child process killed (and reaped) when dropped.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port free now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, what: &str, process: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = process.try_wait() {
            panic!("{what} exited before listening: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} does not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Debian's `docker-registry` on `127.0.0.1:PORT`.
pub struct Registry {
    pub dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`, the reference domain.
    pub addr: String,
    process: Process,
}

impl Registry {
    /// With `auth: htpasswd` for one user (`htpasswd -Bbn`). `None` (skip) without the tools.
    pub fn htpasswd(user: &str, password: &str) -> Option<Registry> {
        if !have("docker-registry", "Debian's docker-registry")
            || !have("htpasswd", "apache2-utils")
        {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("htpasswd")
            .args(["-Bbn", user, password])
            .output()
            .unwrap();
        assert!(out.status.success());
        std::fs::write(dir.path().join("htpasswd"), &out.stdout).unwrap();
        let auth = format!(
            "auth:\n  htpasswd:\n    realm: swarmkeeper-test\n    path: {}\n",
            dir.path().join("htpasswd").display()
        );
        Some(Registry::start(dir, &auth))
    }

    /// Without auth: anyone may pull and push (a public registry). `None` (skip) without it.
    pub fn anonymous() -> Option<Registry> {
        if !have("docker-registry", "Debian's docker-registry") {
            return None;
        }
        Some(Registry::start(tempfile::tempdir().unwrap(), ""))
    }

    /// With `auth: token`, trusting the issuer's certificate.
    pub fn token(issuer: &Issuer) -> Option<Registry> {
        if !have("docker-registry", "Debian's docker-registry") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let auth = format!(
            "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
            issuer.port,
            Issuer::SERVICE,
            Issuer::ISSUER,
            issuer.cert.display()
        );
        Some(Registry::start(dir, &auth))
    }

    fn start(dir: tempfile::TempDir, auth: &str) -> Registry {
        let port = free_port();
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
            dir.path().join("data").display()
        );
        let path = dir.path().join("config.yml");
        std::fs::write(&path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&path)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("run docker-registry");
        wait_for_port(port, "docker-registry", &mut child);
        Registry {
            dir,
            addr: format!("127.0.0.1:{port}"),
            process: Process(child),
        }
    }
}

/// `fixtures/token_issuer.py` on loopback.
pub struct Issuer {
    pub port: u16,
    pub cert: PathBuf,
    _dir: tempfile::TempDir,
    _process: Process,
}

impl Issuer {
    pub const SERVICE: &str = "swarmkeeper-test-registry";
    pub const ISSUER: &str = "swarmkeeper-test-issuer";
    pub const THROTTLED: &str = "throttled";

    pub fn start(user: &str, password: &str) -> Option<Issuer> {
        if !have("python3", "the token issuer") || !have_python_module("cryptography") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("issuer.pem");
        let mut child = Command::new("python3")
            .arg(fixture("token_issuer.py"))
            .arg(&cert)
            .args([
                Issuer::SERVICE,
                Issuer::ISSUER,
                user,
                password,
                Issuer::THROTTLED,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run token_issuer.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the issuer prints its port");
        Some(Issuer {
            port,
            cert,
            _dir: dir,
            _process: Process(child),
        })
    }

    /// How many tokens it issued so far.
    pub async fn issued(&self) -> u64 {
        let stats: serde_json::Value = serde_json::from_slice(
            &http(None)
                .get(format!("http://127.0.0.1:{}/stats", self.port))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap(),
        )
        .unwrap();
        stats["issued"].as_u64().unwrap()
    }
}

/// A `DOCKER_CONFIG` folder of the test's own, used with the host's docker CLI.
pub struct DockerCli {
    pub config_dir: tempfile::TempDir,
}

impl DockerCli {
    pub fn new() -> Option<DockerCli> {
        if !have("docker", "the docker CLI and engine") {
            return None;
        }
        Some(DockerCli {
            config_dir: tempfile::tempdir().unwrap(),
        })
    }

    pub fn config_file(&self) -> PathBuf {
        self.config_dir.path().join("config.json")
    }

    fn docker(&self) -> Command {
        let mut command = Command::new("docker");
        command.env("DOCKER_CONFIG", self.config_dir.path());
        command.env("DOCKER_BUILDKIT", "0");
        command
    }

    /// `docker login SERVER -u USER --password-stdin`.
    pub fn login(&self, server: &str, user: &str, password: &str) {
        let mut child = self
            .docker()
            .args(["login", server, "-u", user, "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(password.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "docker login {server}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Builds an image `FROM scratch` with busybox and a label `marker` (so each marker gives
    /// its own digest), pushes it as `reference`, removes it locally; returns the digest
    /// `docker push` printed.
    pub fn push(&self, reference: &str, marker: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy("/bin/busybox", dir.path().join("busybox"))
            .expect("busybox-static is installed");
        std::fs::write(
            dir.path().join("Dockerfile"),
            format!(
                "FROM scratch\nCOPY busybox /bin/busybox\nLABEL swarmkeeper.test.marker={marker}\n"
            ),
        )
        .unwrap();
        let out = self
            .docker()
            .args(["build", "-q", "-t", reference])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker build: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = self.docker().args(["push", reference]).output().unwrap();
        let _ = self
            .docker()
            .args(["image", "rm", "-f", reference])
            .output();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "docker push {reference}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
            .split_whitespace()
            .find(|w| w.starts_with("sha256:"))
            .unwrap_or_else(|| panic!("no digest in docker push's output: {stdout}"))
            .to_string()
    }
}

/// A unique repository path for this test run.
pub fn repository(test: &str) -> String {
    format!("swarmkeeper-test/{test}-{}", std::process::id())
}

/// A plain HTTP client for the tests' own calls (the issuer's stats, the engine's socket).
pub fn http(unix_socket: Option<&str>) -> reqwest::Client {
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    let mut builder = reqwest::Client::builder().tls_backend_preconfigured(tls);
    if let Some(path) = unix_socket {
        builder = builder.unix_socket(path);
    }
    builder.build().unwrap()
}

/// The engine's `GET /distribution/{reference}/json` (what `docker service create` asks
/// before pinning), with `X-Registry-Auth` when given: the digest, or the engine's error.
pub async fn engine_distribution_digest(
    reference: &str,
    x_registry_auth: Option<&str>,
) -> Result<String, String> {
    let mut request = http(Some("/var/run/docker.sock"))
        .get(format!("http://localhost/distribution/{reference}/json"));
    if let Some(header) = x_registry_auth {
        request = request.header("X-Registry-Auth", header);
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body: serde_json::Value =
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap_or_default();
    if !status.is_success() {
        return Err(format!("{status}: {}", body["message"]));
    }
    Ok(body["Descriptor"]["digest"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}
