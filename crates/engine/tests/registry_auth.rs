//! Registry credentials reach the engine: against a real registry that wants a password
//! (Debian's `docker-registry` with htpasswd), the digest lookup and the service create work
//! only with the `X-Registry-Auth` value a deploy hands over.

#[allow(dead_code)]
mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::json;
use swarmkeeper_engine::{force_update, Engine, Task, TaskState};

use common::{docker, temp_file, unique, Scratch};

const USER: &str = "skuser";
const PASSWORD: &str = "sk-secret-pw";

/// A registry on a loopback port that wants `USER`/`PASSWORD`; stopped and removed when
/// dropped.
struct Registry {
    child: Child,
    addr: String,
    dir: PathBuf,
}

impl Registry {
    fn start() -> Registry {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let dir = temp_file("registry");
        std::fs::create_dir_all(&dir).unwrap();
        let htpasswd = Command::new("htpasswd")
            .args(["-Bbn", USER, PASSWORD])
            .output()
            .expect("htpasswd (apache2-utils) is installed (scripts/ensure-engine.sh)");
        assert!(htpasswd.status.success());
        std::fs::write(dir.join("htpasswd"), htpasswd.stdout).unwrap();
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {data}\n\
                 http:\n  addr: {addr}\n\
                 auth:\n  htpasswd:\n    realm: swarmkeeper-test\n    path: {htpasswd}\n",
                data = dir.join("data").display(),
                htpasswd = dir.join("htpasswd").display(),
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry is installed (scripts/ensure-engine.sh)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "the registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry { child, addr, dir }
    }

    /// The `X-Registry-Auth` value the docker CLI sends for this registry.
    fn auth(&self) -> String {
        let config = json!({"username": USER, "password": PASSWORD, "serveraddress": self.addr});
        base64::engine::general_purpose::URL_SAFE.encode(config.to_string())
    }

    /// Pushes `image` with credentials kept in a docker config of the test's own, so the
    /// engine itself holds none.
    fn push(&self, image: &str) -> String {
        let config_dir = self.dir.join("docker-config");
        let login = Command::new("docker")
            .env("DOCKER_CONFIG", &config_dir)
            .args(["login", "-u", USER, "--password-stdin", &self.addr])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(PASSWORD.as_bytes())?;
                child.wait_with_output()
            })
            .unwrap();
        assert!(
            login.status.success(),
            "{}",
            String::from_utf8_lossy(&login.stderr)
        );
        let push = Command::new("docker")
            .env("DOCKER_CONFIG", &config_dir)
            .args(["push", "-q", image])
            .output()
            .unwrap();
        assert!(
            push.status.success(),
            "{}",
            String::from_utf8_lossy(&push.stderr)
        );
        let pinned = docker(&[
            "image",
            "inspect",
            "--format",
            "{{index .RepoDigests 0}}",
            image,
        ]);
        pinned.split_once('@').unwrap().1.to_string()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Removes the services, then (once their containers are gone) the image, when dropped.
struct Cleanup {
    services: Vec<String>,
    image: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for name in &self.services {
            let _ = Command::new("docker")
                .args(["service", "rm", name])
                .output();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for name in &self.services {
            let filter = format!("label=com.docker.swarm.service.name={name}");
            while Instant::now() < deadline {
                match Command::new("docker")
                    .args(["ps", "-aq", "--filter", &filter])
                    .output()
                {
                    Ok(out) if out.status.success() && !out.stdout.trim_ascii().is_empty() => {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    _ => break,
                }
            }
        }
        let _ = Command::new("docker").args(["rmi", &self.image]).output();
    }
}

#[tokio::test]
async fn credentials_go_with_digest_lookups_and_creates() {
    let registry = Registry::start();
    let image = format!("{}/{}:1", registry.addr, unique("private"));
    let (with, without) = (unique("authed"), unique("anonymous"));
    // Dropped after the cleanup below, which removes the services before the image.
    let mut scratch = Scratch::default();
    let _cleanup = Cleanup {
        services: vec![with.clone(), without.clone()],
        image: image.clone(),
    };
    scratch.build(&image, None, 1024);
    let digest = registry.push(&image);
    let engine = Engine::from_env().unwrap();
    let auth = registry.auth();

    let refused = engine.distribution_digest(&image, None).await.unwrap_err();
    assert!(
        refused.to_string().contains("unauthorized") || refused.to_string().contains("auth"),
        "{refused}"
    );
    assert_eq!(
        engine
            .distribution_digest(&image, Some(&auth))
            .await
            .unwrap(),
        digest
    );

    // Only the registry has the image now: a node must pull it, with what the engine gives it.
    docker(&["rmi", &image]);
    let spec = |name: &str| {
        json!({
            "Name": name,
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": image,
                    "Command": ["/bin/busybox", "sleep", "60"],
                    "StopGracePeriod": 1_000_000_000u64
                },
                "RestartPolicy": {"Condition": "none"}
            },
            "Mode": {"Replicated": {"Replicas": 1}}
        })
    };
    engine
        .create_service(&spec(&with), Some(&auth))
        .await
        .unwrap();
    engine.create_service(&spec(&without), None).await.unwrap();
    let running = wait_for_task(&engine, &with, |t| t.state == TaskState::Running).await;
    assert_eq!(running.image().digest, None, "the spec names the tag");
    let refused = wait_for_task(&engine, &without, |t| t.state.is_failed()).await;
    assert!(
        refused.err.contains("No such image") || refused.err.contains("auth"),
        "{refused:?}"
    );

    // An update sends them too: the anonymous service runs once they come with a change.
    let current = engine.inspect_service(&without).await.unwrap();
    engine
        .change_service(current, Some(&auth), |s| {
            let mut spec = s.spec.clone();
            force_update(&mut spec);
            Ok(spec)
        })
        .await
        .unwrap();
    wait_for_task(&engine, &without, |t| t.state == TaskState::Running).await;
}

/// The first task of `service` for which `matches` holds, within a minute.
async fn wait_for_task(engine: &Engine, service: &str, matches: impl Fn(&Task) -> bool) -> Task {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let tasks = engine.list_tasks(service).await.unwrap();
        if let Some(task) = tasks.into_iter().find(|t| matches(t)) {
            return task;
        }
        assert!(
            Instant::now() < deadline,
            "no such task of {service}: {:?}",
            engine.list_tasks(service).await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
