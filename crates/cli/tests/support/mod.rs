//! Helpers for tests against real Docker engines: throwaway small-disk engines from
//! `lab/small-engine.sh`, images built `FROM scratch` with busybox and random bytes, and the
//! `swarmkeeper` binary itself.

#![allow(dead_code)]

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

pub fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn build(host: &str, tag: &str, base: Option<&str>, mib: usize, labels: &[&str]) -> String {
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
